"""Helpers for the ixp-peers tests: MRT files written with our MRT writer,
synthetic warts traces, and a fake VP process (``python -m tests.peers_helpers
SOCKET PATHS.json LOG DELAY``) that answers ``trace -r`` on a control socket
from a table of paths, after DELAY seconds, and logs every command it starts."""

from __future__ import annotations

import ipaddress
import json
import sys
from typing import Iterable, Optional, Sequence

from ixpscamper.bgp.mrt import Peer
from ixpscamper.bgp.mrtwrite import MrtWriter, encode_attributes
from ixpscamper.warts.records import Timeval, Trace, TraceHop

ip = ipaddress.ip_address
net = ipaddress.ip_network


def write_mrt(path, peers: Sequence[tuple[str, int]], routes: Iterable[tuple[int, str, Sequence, Optional[str]]]):
    """An MRT file: ``peers`` = (ip, asn); ``routes`` = (peer index, prefix,
    AS path segments or a flat list, next hop)."""
    ps = [Peer(index=i, bgp_id=ip("10.255.0.%d" % (i + 1)), ip=ip(a), asn=asn) for i, (a, asn) in enumerate(peers)]
    by_prefix: dict = {}
    for pi, prefix, path_, nh in routes:
        n = net(prefix)
        segs = path_ if path_ and not isinstance(path_[0], int) else [tuple(path_)]
        blob = encode_attributes(segs, None if nh is None else ip(nh), version=n.version)
        by_prefix.setdefault(n, []).append((pi, blob))
    with open(path, "wb") as f:
        w = MrtWriter(f)
        w.write_peers(ps)
        for n, entries in by_prefix.items():
            w.write_rib(n, entries)
    return str(path)


def make_trace(dst: str, hops: Sequence[Optional[str]], rtr: Optional[str] = None, stop: Optional[int] = None,
               probec: Optional[int] = None) -> Trace:
    """A trace whose TTL i+1 answered from ``hops[i]`` (None: silent)."""
    th = [TraceHop(addr=ip(a), probe_ttl=i + 1) for i, a in enumerate(hops) if a is not None]
    if stop is None:
        stop = 1 if hops and hops[-1] == dst else 5
    return Trace(dst=ip(dst), rtr=None if rtr is None else ip(rtr), start=Timeval(1796000000, 0),
                 stop_reason=stop, hop_count=len(hops), hops=th,
                 probec=len(hops) * 2 if probec is None else probec)


class FakeRIB:
    """Just enough of a RIB for Mapper: peers and origins from a dict."""

    def __init__(self, peers=(), origins=None):
        self.peers = list(peers)
        self._origins = {net(k): frozenset(v) for k, v in (origins or {}).items()}

    def origins(self, addr):
        best = None
        for n, o in self._origins.items():
            if n.version == addr.version and addr in n and (best is None or n.prefixlen > best[0].prefixlen):
                best = (n, o)
        return best[1] if best else frozenset()


def _fake_vp(sock: str, paths_file: str, log: str, delay: float) -> None:
    from twisted.internet import defer, endpoints, reactor

    from ixpscamper.commands import CommandError, parse_command
    from ixpscamper.vp.control import ControlFactory
    from ixpscamper.vp.source import CommandRejected

    with open(paths_file) as f:
        paths = json.load(f)  # "rtr dst" -> [hop, ...]

    class Task:
        def __init__(self, opts):
            self.deferred = defer.Deferred()
            key = f"{opts.rtr} {opts.dst}"
            hops = paths.get(key, [])
            self.call = reactor.callLater(delay, self.deferred.callback,
                                          make_trace(str(opts.dst), hops, rtr=str(opts.rtr)))

        def halt(self):
            if self.call.active():
                self.call.cancel()
                self.deferred.callback(make_trace("192.0.2.250", [], stop=9))

    class Backend:
        def parse(self, command):
            try:
                return parse_command(command)
            except CommandError as e:
                raise CommandRejected(str(e)) from None

        def start(self, opts):
            with open(log, "a") as f:
                f.write(f"{opts.rtr} {opts.dst}\n")
            return Task(opts)

    ep = endpoints.UNIXServerEndpoint(reactor, sock)
    ep.listen(ControlFactory(reactor, Backend(), path=sock))
    reactor.run()


if __name__ == "__main__":
    _fake_vp(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
