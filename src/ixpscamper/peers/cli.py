"""``ixp-peers``: BGP path against data path through every member of an IXP.

::

    ixp-peers --rib rib4.mrt --rib rib6.mrt --ixp-lan 192.0.2.0/24 --ixp-lan 2001:db8:1::/64 \\
              --dst 198.51.100.66 --dst-file more.txt  (-U SOCKET | -R SOCKET | --mux PATH --vp NAME) \\
              [--trace-opts '-P icmp-paris -q 1'] [--pps N] [--per-peer N] [--concurrency N] \\
              [--exclude FILE] [--json F] [--csv F] [--warts F] [--html F] [--state F] [--dry-run]

See :mod:`ixpscamper.peers` and the README.  Exit status: 0 all done, 1 the
campaign stopped early (the VP went away; run the same command again to
continue) or bad input, 2 a usage error, 130 interrupted (likewise
resumable).
"""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
from typing import Optional, Sequence

from ixpscamper import cli_support

PROG = "ixp-peers"


class Fatal(Exception):
    """One line for the user, then exit 1."""


class _Parser(cli_support.ArgumentParser):
    """Usage errors in one line (``ixp-peers: ...``), exit status 2."""

    def error(self, message):  # type: ignore[override]
        self.exit(2, f"{PROG}: {message} (see {PROG} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=(
        "Compare each IXP member's BGP path (from the collector's MRT RIB) with the path its "
        "router forwards on (trace -r NEXT_HOP DST through a VP)."))
    p.add_argument("--rib", action="append", default=[], metavar="FILE", required=True,
                   help="MRT TABLE_DUMP_V2 RIB dump (repeatable; IPv4 and IPv6 files combine)")
    p.add_argument("--dst", action="append", default=[], metavar="ADDR", help="destination (repeatable)")
    p.add_argument("--dst-file", action="append", default=[], metavar="FILE",
                   help="destinations, one a line (# comments)")
    p.add_argument("--ixp-lan", action="append", default=[], metavar="PREFIX", required=True,
                   help="the exchange LAN (repeatable, v4/v6): routes whose next hop is there are traced")
    vp = p.add_argument_group("the VP (one of)")
    vp.add_argument("-U", dest="unix", metavar="SOCKET", help="a VP's own control socket (ixp-vp --unix)")
    vp.add_argument("-R", dest="remote", metavar="SOCKET", help="a controller's per-VP socket")
    vp.add_argument("--mux", metavar="PATH", help="a controller's mux socket (with --vp)")
    vp.add_argument("--vp", metavar="NAME", help="the VP's monitor name on the mux")
    p.add_argument("--trace-opts", default="", metavar="OPTS",
                   help="options for every trace, e.g. '-P icmp-paris -q 1' (not -r)")
    p.add_argument("--pps", type=float, default=0, metavar="N",
                   help="probes per second this campaign may ask of the VP (0: the VP's own limit only)")
    p.add_argument("--per-peer", type=int, default=2, metavar="N", help="traces in flight per peer (default 2)")
    p.add_argument("--concurrency", type=int, default=8, metavar="N", help="traces in flight in all (default 8)")
    p.add_argument("--exclude", action="append", default=[], metavar="FILE",
                   help="prefixes and ASNs never probed (one a line)")
    p.add_argument("--json", metavar="FILE", help="one JSON object per (peer, dst)")
    p.add_argument("--csv", metavar="FILE", help="one line per (peer, dst), with a header")
    p.add_argument("--warts", metavar="FILE", help="the raw traces")
    p.add_argument("--html", metavar="FILE", help="one self-contained page")
    p.add_argument("--state", metavar="FILE",
                   help="journal for resuming (default: FILE.state next to --json/--csv/--warts/--html)")
    p.add_argument("--dry-run", action="store_true", help="probe nothing: show (and --json) the plan")
    p.add_argument("-q", "--quiet", action="store_true", help="no table on stdout")
    return p


def _warn(msg: str) -> None:
    sys.stderr.write(f"{PROG}: {msg}\n")
    sys.stderr.flush()


def _load(args):
    from ixpscamper.bgp.mrt import MrtError
    from ixpscamper.bgp.rib import RIB
    from ixpscamper.peers.plan import Exclusions, PlanError, parse_dst, parse_lans, read_dst_file, read_exclude_file

    try:
        lans = parse_lans(args.ixp_lan)
        dsts = [parse_dst(d) for d in args.dst]
        for f in args.dst_file:
            dsts += read_dst_file(f)
        excl = Exclusions()
        for f in args.exclude:
            e = read_exclude_file(f)
            excl = Exclusions(excl.prefixes + e.prefixes, excl.asns | e.asns)
    except PlanError as exc:
        raise Fatal(str(exc)) from None
    if not dsts:
        raise Fatal("no destination: give --dst ADDR or --dst-file FILE")
    for path in args.rib:
        if not os.path.exists(path):
            raise Fatal(f"--rib {path}: no such file")
        if os.path.isdir(path):
            raise Fatal(f"--rib {path}: is a directory")
    try:
        rib = RIB.load(args.rib, warn=_warn)
    except MrtError as exc:
        raise Fatal(f"--rib: {exc}") from None
    except OSError as exc:
        raise Fatal(f"--rib {getattr(exc, 'filename', '')}: {exc.strerror or exc}") from None
    if rib.route_count == 0:
        raise Fatal(f"--rib {' '.join(args.rib)}: no route at all in the RIB")
    return rib, lans, dsts, excl


def _state_path(args) -> Optional[str]:
    if args.state:
        return args.state
    for f in (args.json, args.csv, args.warts, args.html):
        if f:
            return f + ".state"
    return None


def _write_outputs(args, rows) -> None:
    from ixpscamper.peers import output

    for path, fn in ((args.json, output.write_json), (args.csv, output.write_csv),
                     (args.warts, output.write_warts), (args.html, output.write_html)):
        if path:
            try:
                fn(path, rows)
            except OSError as exc:
                _warn(f"{path}: {exc.strerror or exc}")


def _dry_run(args, plan) -> int:
    from ixpscamper.peers.output import dry_row

    rows = [dry_row(t) for t in plan.targets]
    if args.json:
        from ixpscamper.peers.output import write_json
        write_json(args.json, rows)
    if not args.quiet:
        for r in rows:
            flag = "trace" if r["on_lan"] and "excluded" not in r else (
                "excluded" if "excluded" in r else "off-LAN")
            sys.stdout.write(f"{flag:8} {r['peer_ip']:<22} AS{r['peer_asn']:<8} {r['dst']:<22} "
                             f"{r['prefix']:<20} next hop {r['next_hop'] or '-':<20} "
                             f"{' '.join(map(str, r['bgp_path']))}\n")
        sys.stdout.write(f"{len(plan.to_probe)} trace(s) to send; {len(plan.off_lan)} route(s) with a next hop off "
                         f"the LAN, {len(plan.excluded)} excluded, {len(plan.no_route)} destination(s) "
                         "without a route\n")
    return 0


def _connect(reactor, args):
    from twisted.internet import defer

    from ixpscamper.client.api import connect_control, connect_mux, connect_socket

    def need_socket(path: str, flag: str) -> None:
        try:
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                raise Fatal(f"{flag} {path}: not a socket")
        except FileNotFoundError:
            raise Fatal(f"{flag} {path}: no such socket") from None

    if args.unix:
        need_socket(args.unix, "-U")
        return connect_control(reactor, args.unix).addCallback(lambda c: (c, c.vps()[0]))
    if args.remote:
        need_socket(args.remote, "-R")
        return connect_socket(reactor, args.remote).addCallback(lambda c: (c, c.vps()[0]))
    need_socket(args.mux, "--mux")

    def pick(c):
        try:
            return (c, c.vp(args.vp))
        except KeyError:
            names = ", ".join(sorted(str(v.name) for v in c.vps())) or "none"
            raise Fatal(f"--vp {args.vp}: no such VP on {args.mux} (present: {names})") from None
    return defer.maybeDeferred(connect_mux, reactor, args.mux).addCallback(pick)


def _glue_trace_opts(argv: Sequence[str]) -> list[str]:
    """``--trace-opts '-P icmp-paris'``: argparse would take the value,
    which starts with '-', for an option of ours; glue it on with '='."""
    out, it = [], iter(argv)
    for a in it:
        if a == "--trace-opts":
            out.append("--trace-opts=" + next(it, ""))
        else:
            out.append(a)
    return out


def run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(_glue_trace_opts(argv))
    modes = sum(bool(x) for x in (args.unix, args.remote, args.mux))
    if not args.dry_run and modes != 1:
        raise Fatal("give exactly one VP: -U SOCKET, -R SOCKET or --mux PATH --vp NAME")
    if args.mux and not args.vp:
        raise Fatal("--mux needs --vp NAME")
    rib, lans, dsts, excl = _load(args)

    from ixpscamper.peers.compare import Mapper
    from ixpscamper.peers.plan import make_plan

    plan = make_plan(rib, dsts, lans, excl, warn=_warn)
    for t in plan.excluded:
        _warn(f"not traced: {t.dst} via {t.next_hop} (peer {t.peer.ip} AS{t.peer.asn}): {t.excluded}")
    if args.dry_run:
        return _dry_run(args, plan)

    from ixpscamper.commands import CommandError
    from ixpscamper.peers.campaign import Campaign, CampaignStopped, Journal, build_trace_command

    try:
        build_trace_command(args.trace_opts, "192.0.2.1", "192.0.2.2")
    except CommandError as exc:
        raise Fatal(f"--trace-opts {args.trace_opts!r}: {exc}") from None

    import attrs
    from twisted.internet import reactor

    from ixpscamper.peers import output
    from ixpscamper.warts import WartsWriter

    state = _state_path(args)
    try:
        journal = Journal(state, warn=_warn)
    except OSError as exc:
        raise Fatal(f"state file {state}: {exc.strerror or exc}") from None
    mapper = Mapper(rib, lans)
    result: dict = {"status": 0}
    tty = sys.stderr.isatty()

    def warts_of(trace) -> bytes:
        # The VP's list/cycle records would be repeated (and clash) across
        # resumed runs; the traces stand alone.
        return WartsWriter().encode(attrs.evolve(trace, list=None, cycle=None))

    camp_box: dict = {}

    def progress(_row=None) -> None:
        c = camp_box.get("c")
        if not tty or c is None:
            return
        counts = output.summary_counts(journal.rows[t.key] for t in plan.to_probe if t.key in journal)
        sys.stderr.write(f"\r\033[K{PROG}: {c.done + c.skipped}/{c.total} done ({c.skipped} from {state}), "
                         f"{len(c.in_flight)} in flight; "
                         + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        sys.stderr.flush()

    def start(pair):
        client, vp = pair
        camp = Campaign(reactor, client, vp, plan.to_probe, journal, mapper, trace_opts=args.trace_opts,
                        pps=args.pps, concurrency=args.concurrency, per_peer=args.per_peer,
                        on_row=progress, warn=lambda m: (tty and sys.stderr.write("\r\033[K"), _warn(m)),
                        warts_of=warts_of)
        camp_box["c"] = camp
        if camp.skipped:
            _warn(f"resuming from {state}: {camp.skipped} of {camp.total} pair(s) already done")
        progress()
        return camp.run().addBoth(lambda r: (client.close(), r)[1])

    def failed(f):
        if f.check(Fatal):
            _warn(str(f.value))
        elif f.check(CampaignStopped):
            c = camp_box.get("c")
            left = (c.total - c.skipped - c.done) if c else len(plan.to_probe)
            _warn(f"stopped: {f.value}; {left} pair(s) not traced; run the same command again to continue")
        else:
            _warn(f"stopped: {f.getErrorMessage()}")
        result["status"] = 1

    def interrupted(signum, _frame) -> None:
        result["status"] = 143 if signum == signal.SIGTERM else 130
        c = camp_box.get("c")
        reactor.callFromThread(c.stop if c is not None else reactor.stop)

    def begin():
        signal.signal(signal.SIGINT, interrupted)
        signal.signal(signal.SIGTERM, interrupted)
        from twisted.internet import defer
        d = defer.maybeDeferred(_connect, reactor, args)
        d.addCallback(start)
        d.addErrback(failed)
        d.addBoth(lambda _: reactor.stop())

    try:
        reactor.callWhenRunning(begin)
        reactor.run()
    finally:
        journal.close()
        if tty:
            sys.stderr.write("\r\033[K")
        rows = [journal.rows[t.key] for t in plan.to_probe if t.key in journal]
        _write_outputs(args, rows)
    if not args.quiet:
        sys.stdout.write(output.render_table(rows))
    if result["status"] in (130, 143):
        _warn(f"interrupted: {len(rows)} of {len(plan.to_probe)} pair(s) done"
              + (f"; run the same command again to continue (state: {state})" if state else ""))
    return result["status"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``ixp-peers``."""
    from ixpscamper.cli_support import guarded

    def body() -> int:
        try:
            return run(sys.argv[1:] if argv is None else list(argv))
        except Fatal as exc:
            _warn(str(exc))
            return 1
    return guarded(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
