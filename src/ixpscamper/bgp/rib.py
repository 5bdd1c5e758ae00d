"""The collector's RIB: every peer's routes, and longest-match lookups.

:meth:`RIB.load` reads one or more MRT TABLE_DUMP_V2 files (IPv4 and IPv6
combined; peers of several files merged by identity) into a compact form:

* the path attributes of a RIB entry are kept as the raw bytes, *interned*
  per (peer, address family) -- a full RIB has about 10 million entries
  but a few hundred thousand to a few million distinct blobs -- and decoded
  only when a lookup returns a route for them (then cached);
* per prefix only a tuple of attribute ids is kept (the id tells the peer);
* the prefix index is one ``dict`` per prefix length (key = the prefix's
  top bits as an int), searched from the longest length present down.  For
  IPv4 that is at most 25 or so dict probes per lookup (only the lengths
  that occur), and building it costs one dict store per prefix; see the
  README's dependency section for why this beats pytricia / py-radix here.

Lookups: :meth:`RIB.routes_for` (each peer's own longest match),
:meth:`RIB.origins` (origin ASes of the overall longest match, all of them
when the peers disagree), :meth:`RIB.prefix_for`.
"""

from __future__ import annotations

import ipaddress
import os
from array import array
from typing import Callable, Iterable, Optional, Union

import attrs

from ixpscamper.bgp.mrt import (
    MrtError, MrtReader, PathAttributes, Peer, Segment, decode_attributes,
)

__all__ = ["Peer", "Route", "RIB", "Address", "Network"]

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@attrs.frozen
class Route:
    """One peer's route to one prefix.

    ``as_path`` is a tuple of segments: ``tuple[int, ...]`` for an
    AS_SEQUENCE (order as received), ``frozenset[int]`` for an AS_SET.
    ``next_hop`` is the global next hop for IPv6 (``None`` if the route
    carried none).  ``origin_asns`` is the last AS of the path, or every AS
    of a final AS_SET; empty for an empty path (a locally originated route).
    """

    peer: Peer
    prefix: Network
    as_path: tuple[Segment, ...]
    next_hop: Optional[Address]
    origin_asns: frozenset[int]

    def flat_path(self) -> list[int]:
        """The AS path as a list of ints as received, prepending kept; an
        AS_SET contributes its members in ascending order."""
        out: list[int] = []
        for seg in self.as_path:
            out.extend(seg if isinstance(seg, tuple) else sorted(seg))
        return out

    def collapsed(self) -> list[int]:
        """:meth:`flat_path` with prepending (consecutive repeats) removed."""
        out: list[int] = []
        for asn in self.flat_path():
            if not out or out[-1] != asn:
                out.append(asn)
        return out


def _as_address(addr: Union[str, Address, int]) -> Address:
    if isinstance(addr, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return addr
    return ipaddress.ip_address(addr)


class RIB:
    """All routes of one or more RIB dumps.  Build with :meth:`load`."""

    def __init__(self) -> None:
        #: Every peer, ``peers[i].index == i`` (indices are RIB-wide: the
        #: files' own PEER_INDEX_TABLE indices are renumbered on merge).
        self.peers: list[Peer] = []
        self._peer_ids: dict[tuple, int] = {}
        # version -> {prefix length -> {network int -> tuple of attribute ids}}
        self._tables: dict[int, dict[int, dict[int, tuple[int, ...]]]] = {4: {}, 6: {}}
        self._lengths: dict[int, list[int]] = {4: [], 6: []}
        self._blobs: list[bytes] = []
        self._blob_peer = array("I")
        # Per blob: bit 0 = IPv6 route, bit 1 = 2-byte AS paths (TABLE_DUMP).
        self._blob_flags = bytearray()
        self._interns: dict[int, dict[bytes, int]] = {}
        self._decoded: dict[int, Optional[PathAttributes]] = {}
        # Decoded paths, next hops and origin sets, one object per value: a
        # peer's routes share a handful of next hops and many paths, and a
        # frozenset costs 216 bytes.
        self._canon: dict = {}
        self._warn: Callable[[str], None] = lambda msg: None
        #: Per file read: its MrtStats (path -> stats).
        self.file_stats: dict[str, object] = {}

    # ------------------------------------------------------------ building

    @classmethod
    def load(cls, paths: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]],
             warn: Optional[Callable[[str], None]] = None) -> "RIB":
        """Read the MRT files ``paths`` (one path or several) into a RIB.

        ``warn`` gets one line per problem (a cut file, a corrupt record, a
        corrupt attribute found at lookup time).  A file that is not MRT at
        all raises :class:`~ixpscamper.bgp.mrt.MrtError`."""
        rib = cls()
        if warn is not None:
            rib._warn = warn
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        for path in paths:
            rib.add_file(path)
        rib.compact()
        return rib

    def compact(self) -> None:
        """Drop the interning dicts (about a fifth of the memory).  Files
        added afterwards still load, but their attribute blobs are no longer
        shared with those read before."""
        self._interns = {}

    def _peer_id(self, p: Peer) -> int:
        key = (p.bgp_id, p.ip, p.asn)
        gid = self._peer_ids.get(key)
        if gid is None:
            gid = len(self.peers)
            self._peer_ids[key] = gid
            self.peers.append(Peer(index=gid, bgp_id=p.bgp_id, ip=p.ip, asn=p.asn))
        return gid

    def add_file(self, path: Union[str, os.PathLike]) -> None:
        """Add one MRT file's routes (see :meth:`load`)."""
        reader = MrtReader(path, warn=self._warn)
        blobs = self._blobs
        blob_peer = self._blob_peer
        blob_flags = self._blob_flags
        tables = self._tables
        # Per blob kind (flags) and local peer index: (the intern dict,
        # global peer id); rebuilt whenever the file's peers change.
        local: dict[int, list] = {}
        seen_peers = -1
        for rec in reader:
            if reader.peers_version != seen_peers:
                seen_peers = reader.peers_version
                gids = [self._peer_id(p) for p in reader.peers]
                local = {flag: [(self._interns.setdefault(gid * 4 + flag, {}), gid) for gid in gids]
                         for flag in range(4)}
            version = rec.version
            flag = (1 if version == 6 else 0) | (2 if rec.asn_size == 2 else 0)
            loc = local[flag]
            ids = []
            add = ids.append
            for peer, blob in rec.entries:
                d, gid = loc[peer]
                i = d.get(blob)
                if i is None:
                    i = len(blobs)
                    d[blob] = i
                    blobs.append(blob)
                    blob_peer.append(gid)
                    blob_flags.append(flag)
                add(i)
            bylen = tables[version]
            table = bylen.get(rec.length)
            if table is None:
                table = bylen[rec.length] = {}
                self._lengths[version] = sorted(bylen, reverse=True)
            old = table.get(rec.network)
            table[rec.network] = tuple(ids) if old is None else old + tuple(ids)
        if reader.peers_version != seen_peers:
            for p in reader.peers:  # a table without routes still names its peers
                self._peer_id(p)
        self.file_stats[os.fspath(path)] = reader.stats

    # ------------------------------------------------------------ lookups

    def __len__(self) -> int:
        """Number of distinct prefixes."""
        return sum(len(t) for bylen in self._tables.values() for t in bylen.values())

    @property
    def route_count(self) -> int:
        """Number of (peer, prefix) routes held."""
        return sum(len(ids) for bylen in self._tables.values() for t in bylen.values() for ids in t.values())

    def _matches(self, addr: Address):
        """(prefix length, network int, ids) of every prefix covering
        ``addr``, longest first."""
        v = addr.version
        width = 32 if v == 4 else 128
        a = int(addr)
        bylen = self._tables[v]
        for plen in self._lengths[v]:
            net = a >> (width - plen)
            ids = bylen[plen].get(net)
            if ids is not None:
                yield plen, net, ids

    def _network(self, v: int, plen: int, net: int) -> Network:
        width = 32 if v == 4 else 128
        cls = ipaddress.IPv4Network if v == 4 else ipaddress.IPv6Network
        return cls((net << (width - plen) if plen else 0, plen))

    def _attributes(self, i: int, prefix: Network) -> Optional[PathAttributes]:
        try:
            return self._decoded[i]
        except KeyError:
            pass
        try:
            flags = self._blob_flags[i]
            pa: Optional[PathAttributes] = decode_attributes(self._blobs[i], 6 if flags & 1 else 4,
                                                             2 if flags & 2 else 4)
            c = self._canon.setdefault
            pa = PathAttributes(as_path=c(pa.as_path, pa.as_path), next_hop=c(pa.next_hop, pa.next_hop),
                                origin_asns=c(pa.origin_asns, pa.origin_asns))
        except MrtError as exc:
            peer = self.peers[self._blob_peer[i]]
            self._warn(f"route of peer {peer.ip} (AS{peer.asn}) for {prefix}: "
                       f"corrupt path attributes: {exc.reason}; route ignored")
            pa = None
        self._decoded[i] = pa
        return pa

    def _route(self, i: int, prefix: Network) -> Optional[Route]:
        pa = self._attributes(i, prefix)
        if pa is None:
            return None
        return Route(peer=self.peers[self._blob_peer[i]], prefix=prefix, as_path=pa.as_path,
                     next_hop=pa.next_hop, origin_asns=pa.origin_asns)

    def routes_for(self, dst: Union[str, Address]) -> list[Route]:
        """For each peer that has a route covering ``dst``, its own longest
        matching route (peers differ: one may hold the /24, another only the
        /16).  Sorted by peer index."""
        addr = _as_address(dst)
        found: dict[int, Route] = {}
        npeers = len(self.peers)
        blob_peer = self._blob_peer
        for plen, net, ids in self._matches(addr):
            prefix = None
            for i in ids:
                gid = blob_peer[i]
                if gid in found:
                    continue
                if prefix is None:
                    prefix = self._network(addr.version, plen, net)
                r = self._route(i, prefix)
                if r is not None:
                    found[gid] = r
            if len(found) == npeers:
                break
        return [found[g] for g in sorted(found)]

    def prefix_for(self, addr: Union[str, Address]) -> Optional[Network]:
        """The longest prefix any peer has for ``addr`` (``None`` if none)."""
        a = _as_address(addr)
        for plen, net, _ids in self._matches(a):
            return self._network(a.version, plen, net)
        return None

    def routes_at(self, prefix: Union[str, Network]) -> list[Route]:
        """Every peer's route for exactly ``prefix`` (empty if none)."""
        net = ipaddress.ip_network(prefix, strict=False) if isinstance(prefix, str) else prefix
        v = net.version
        width = 32 if v == 4 else 128
        table = self._tables[v].get(net.prefixlen)
        ids = table.get(int(net.network_address) >> (width - net.prefixlen)) if table else None
        out = []
        for i in ids or ():
            r = self._route(i, net)
            if r is not None:
                out.append(r)
        return out

    def origins(self, addr: Union[str, Address]) -> frozenset[int]:
        """Origin AS(es) of the longest matching prefix across all peers.
        Several when peers disagree (MOAS) or a path ends in an AS_SET --
        reported, never reduced to one; empty if no route covers ``addr``."""
        a = _as_address(addr)
        for plen, net, ids in self._matches(a):
            prefix = self._network(a.version, plen, net)
            out: set[int] = set()
            for i in ids:
                pa = self._attributes(i, prefix)
                if pa is not None:
                    out |= pa.origin_asns
            return frozenset(out)
        return frozenset()
