"""IP-to-AS with the collector's own RIB, and BGP path against trace path.

Sans-IO.  A hop is mapped to ASes this way:

* an address on the exchange LAN (``--ixp-lan``) belongs to the member
  whose BGP session uses it (the RIB's peer table) -- the LAN prefix itself
  is nobody's origin;
* any other address to the origin AS(es) of its longest match in the RIB;
  several when the peers disagree (MOAS), all of them kept in the hop;
* otherwise it is *unmapped*.

The trace's AS path is the sequence of mapped ASes, consecutive repeats
merged, silent and unmapped hops skipped (and counted).  Where a hop has
several origins, the one that continues the path (same AS as the previous
hop), else one on the BGP path, else the lowest, stands in the path; the hop
keeps them all.  The comparison is against the BGP path with prepending
removed.  Classes, first that applies:

``loop``          the trace stopped on a loop, or its AS path revisits an AS
``match``         the trace's AS path equals the BGP path
``unreached``     the trace did not reach the destination and what it saw is
                  a prefix of the BGP path (no disagreement, just too short)
``unmapped_hops`` the trace's path is a subsequence of the BGP path and some
                  replying hops had no AS: the gap may be them
``missing_as``    an AS of the BGP path is not on the data path
``extra_as``      the data path crosses an AS the BGP path does not have
``different_as``  both: the paths disagree on which AS is where
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Optional, Sequence

import attrs

from ixpscamper.peers.plan import Address, Network, on_lan

__all__ = ["CLASSES", "Hop", "Comparison", "Mapper", "trace_hops", "compare", "classify", "reached"]

#: Every class, in the order the table and the HTML summary list them.
CLASSES: tuple[str, ...] = (
    "match", "missing_as", "extra_as", "different_as", "unmapped_hops", "unreached", "loop", "error",
)

_STOP_COMPLETED = 1
_STOP_LOOP = 4


@attrs.frozen
class Hop:
    """One TTL of a trace: the first address that answered (None: silent)
    and what it maps to (``how``: ``lan`` member, ``rib`` origin, ``none``)."""

    ttl: int
    addr: Optional[str]
    asns: tuple[int, ...] = ()
    how: str = "none"


@attrs.frozen
class Comparison:
    """The outcome for one (peer, destination) pair."""

    bgp_path: list[int]          # as received, prepending kept
    bgp_collapsed: list[int]
    hops: list[Hop]
    trace_path: list[int]
    cls: str
    detail: str
    reached: bool

    @property
    def moas(self) -> list[Hop]:
        """Hops mapped to more than one AS."""
        return [h for h in self.hops if len(h.asns) > 1]

    @property
    def unmapped(self) -> list[str]:
        """Addresses of replying hops that mapped to no AS."""
        return [h.addr for h in self.hops if h.addr is not None and not h.asns]


class Mapper:
    """Address -> ASes with one RIB (see the module docstring)."""

    def __init__(self, rib, lans: Sequence[Network]) -> None:
        self.rib = rib
        self.lans = list(lans)
        # Several sessions (v4 and v6) of one member share its ASN; a LAN
        # address used by peers of different ASNs keeps them all.
        self.lan_owner: dict[Address, set[int]] = {}
        for p in getattr(rib, "peers", ()):
            if p.asn and on_lan(p.ip, self.lans):
                self.lan_owner.setdefault(p.ip, set()).add(int(p.asn))
        self._cache: dict[Address, tuple[tuple[int, ...], str]] = {}

    def map(self, addr: Address) -> tuple[tuple[int, ...], str]:
        """(ASes sorted, how) for ``addr``."""
        hit = self._cache.get(addr)
        if hit is not None:
            return hit
        if on_lan(addr, self.lans):
            owners = self.lan_owner.get(addr)
            out = (tuple(sorted(owners)), "lan") if owners else ((), "none")
        else:
            origins = self.rib.origins(addr)
            out = (tuple(sorted(origins)), "rib") if origins else ((), "none")
        self._cache[addr] = out
        return out


def trace_hops(trace) -> list[Optional[str]]:
    """One entry per TTL from the trace's first TTL to its last: the first
    address that replied, or None for a silent TTL."""
    by_ttl: dict[int, str] = {}
    for h in trace.hops:
        by_ttl.setdefault(int(h.probe_ttl), str(h.addr))
    first = int(getattr(trace, "firsthop", 1) or 1)
    last = max([int(trace.hop_count or 0)] + list(by_ttl))
    return [by_ttl.get(ttl) for ttl in range(first, last + 1)]


def reached(trace) -> bool:
    """Whether the trace got an answer from its destination."""
    if int(trace.stop_reason) == _STOP_COMPLETED:
        return True
    dst = str(trace.dst)
    return any(str(h.addr) == dst for h in trace.hops)


def _is_subsequence(small: Sequence[int], big: Sequence[int]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def _fmt(path: Iterable[int]) -> str:
    return " ".join(str(a) for a in path) or "(none)"


def classify(bgp: Sequence[int], data: Sequence[int], *, reached: bool, unmapped: int,
             loop: bool) -> tuple[str, str]:
    """(class, one-line detail) for a collapsed BGP path against a trace's AS path."""
    bgp, data = list(bgp), list(data)
    if loop or len(set(data)) != len(data):
        seen: set[int] = set()
        again = next((a for a in data if a in seen or seen.add(a)), None)  # type: ignore[func-returns-value]
        return "loop", (f"the data path returns to AS{again}" if again is not None
                        else "the trace stopped on a forwarding loop")
    if data == bgp:
        return "match", ""
    if not reached and data == bgp[:len(data)]:
        rest = bgp[len(data):]
        return "unreached", f"trace stopped before reaching {', '.join(f'AS{a}' for a in rest)}"
    if unmapped and _is_subsequence(data, bgp):
        gone = [a for a in bgp if a not in data]
        return "unmapped_hops", (f"{unmapped} replying hop(s) without an AS; "
                                 f"not seen: {', '.join(f'AS{a}' for a in gone)}")
    if _is_subsequence(data, bgp):
        gone = [a for a in bgp if a not in data]
        return "missing_as", f"on the BGP path, not on the data path: {', '.join(f'AS{a}' for a in gone)}"
    if _is_subsequence(bgp, data):
        extra = [a for a in data if a not in bgp]
        return "extra_as", f"on the data path, not on the BGP path: {', '.join(f'AS{a}' for a in extra)}"
    i = next((k for k, (a, b) in enumerate(zip(bgp, data)) if a != b), min(len(bgp), len(data)))
    want = f"AS{bgp[i]}" if i < len(bgp) else "(end)"
    got = f"AS{data[i]}" if i < len(data) else "(end)"
    return "different_as", f"AS path {i + 1}: BGP says {want}, the data path goes to {got}"


def compare(route, trace, mapper: Mapper) -> Comparison:
    """Compare a peer's route with the trace sent through its next hop."""
    bgp_flat = list(route.flat_path())
    bgp = list(route.collapsed())
    hops: list[Hop] = []
    path: list[int] = []
    unmapped = 0
    first = int(getattr(trace, "firsthop", 1) or 1)
    for i, addr in enumerate(trace_hops(trace)):
        ttl = first + i
        if addr is None:
            hops.append(Hop(ttl, None))
            continue
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            hops.append(Hop(ttl, addr))
            unmapped += 1
            continue
        asns, how = mapper.map(ip)
        hops.append(Hop(ttl, addr, asns, how))
        if not asns:
            unmapped += 1
            continue
        if len(asns) == 1:
            asn = asns[0]
        elif path and path[-1] in asns:
            asn = path[-1]
        else:
            on_bgp = [a for a in asns if a in bgp]
            asn = on_bgp[0] if on_bgp else asns[0]
        if not path or path[-1] != asn:
            path.append(asn)
    got = reached(trace)
    cls, detail = classify(bgp, path, reached=got, unmapped=unmapped,
                           loop=int(trace.stop_reason) == _STOP_LOOP)
    if not trace.hops:
        detail = "no reply at all: the next hop did not answer (ARP/ND?)"
    return Comparison(bgp_path=bgp_flat, bgp_collapsed=bgp, hops=hops, trace_path=path,
                      cls=cls, detail=detail, reached=got)
