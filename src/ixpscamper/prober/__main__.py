"""``python3 -m ixpscamper.prober [-p PPS] [-w WINDOW] -o FILE CMD...``: a test driver.

Runs every command at once in one Prober and writes a warts file the way
``scamper -O warts -o FILE -I CMD ...`` does (list, cycle start, the
measurements as they finish, cycle stop).  The integration tests run it
inside the lab's collector namespace; operators want ``ixp-scamper``.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ixpscamper.prober")
    parser.add_argument("-p", type=int, default=20, dest="pps")
    parser.add_argument("-w", type=int, default=0, dest="window")
    parser.add_argument("-o", required=True, dest="out")
    parser.add_argument("commands", nargs="+")
    args = parser.parse_args(argv)

    from twisted.internet import defer, reactor

    from ixpscamper.commands import CommandError, parse_command
    from ixpscamper.prober import Prober, ProberError
    from ixpscamper.warts import CycleStart, CycleStop, WartsList, WartsWriter

    def parse(text: str):
        # tracelb / dealias have their own parsers until commands.parse_command dispatches to them
        word = text.split(None, 1)[0] if text.split() else ""
        rest = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
        if word == "tracelb":
            from ixpscamper.tracelb_cmd import parse_tracelb
            return parse_tracelb(rest)
        if word == "dealias":
            from ixpscamper.dealias_cmd import parse_dealias
            return parse_dealias(rest)
        return parse_command(text)

    try:
        options = [parse(c) for c in args.commands]
    except CommandError as exc:
        print(f"prober: {exc}", file=sys.stderr)
        return 1

    out = open(args.out, "wb")
    writer = WartsWriter(out)
    wl = WartsList()
    cycle = CycleStart(list=wl, start_time=int(time.time()), hostname=socket.gethostname())
    writer.write(wl)
    writer.write(cycle)
    prober = Prober(reactor, pps=args.pps, window=args.window)
    status = {"rc": 0}

    def record_done(rec):
        rec.list = wl
        rec.cycle = cycle
        writer.write(rec)
        out.flush()

    def failed(f):
        f.trap(ProberError)
        print(f"prober: {f.getErrorMessage()}", file=sys.stderr)
        status["rc"] = 1

    def finish(_):
        writer.write(CycleStop(cycle=cycle, stop_time=int(time.time())))
        out.close()
        prober.close()
        reactor.stop()

    def begin():
        ds = []
        for o in options:
            t = prober.submit(o)
            t.deferred.addCallbacks(record_done, failed)
            ds.append(t.deferred)
        defer.DeferredList(ds).addBoth(finish)

    reactor.callWhenRunning(begin)
    reactor.run()
    return status["rc"]


if __name__ == "__main__":
    sys.exit(main())
