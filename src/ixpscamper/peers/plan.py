"""Which (peer, destination) pairs to trace, and through which next hop.

Sans-IO: a RIB (anything with ``routes_for`` / ``origins`` / ``peers``, see
:mod:`ixpscamper.bgp.rib`) and lists of addresses in, :class:`Plan` out.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Callable, Iterable, Optional, Sequence, Union

import attrs

__all__ = [
    "Address", "Network", "PlanError", "Target", "Plan", "Exclusions",
    "parse_lans", "parse_dst", "read_dst_file", "read_exclude_file", "make_plan",
]

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class PlanError(ValueError):
    """Bad input to the plan (a prefix, an address, an exclude line); the
    message is the one line the user sees."""


def parse_lans(texts: Iterable[str]) -> list[Network]:
    """``--ixp-lan`` values (v4 or v6 prefixes) as networks."""
    out = []
    for t in texts:
        try:
            out.append(ipaddress.ip_network(t.strip(), strict=False))
        except ValueError:
            raise PlanError(f"--ixp-lan {t!r}: not an IPv4 or IPv6 prefix") from None
    return out


def parse_dst(text: str, where: str = "--dst") -> Address:
    """One destination address."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise PlanError(f"{where} {text.strip()[:60]!r}: not an IP address") from None


def _lines(path: Union[str, os.PathLike]) -> Iterable[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            data = f.read()
    except OSError as exc:
        raise PlanError(f"{os.fspath(path)}: {exc.strerror or exc}") from None
    for n, line in enumerate(data.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            yield n, line


def read_dst_file(path: Union[str, os.PathLike]) -> list[Address]:
    """Destinations, one a line (``#`` comments and blank lines ignored)."""
    return [parse_dst(line, f"{os.fspath(path)}:{n}:") for n, line in _lines(path)]


@attrs.frozen
class Exclusions:
    """Prefixes and ASNs that are never probed."""

    prefixes: tuple[Network, ...] = ()
    asns: frozenset[int] = frozenset()

    def why(self, dst: Address, next_hop: Optional[Address], peer_asn: int,
            dst_origins: Iterable[int] = (), path: Iterable[int] = ()) -> Optional[str]:
        """Why a trace of ``dst`` through ``next_hop`` must not be sent (None: it may)."""
        for net in self.prefixes:
            if dst.version == net.version and dst in net:
                return f"destination {dst} is in excluded {net}"
            if next_hop is not None and next_hop.version == net.version and next_hop in net:
                return f"next hop {next_hop} is in excluded {net}"
        if peer_asn in self.asns:
            return f"peer AS{peer_asn} is excluded"
        for asn in dst_origins:
            if asn in self.asns:
                return f"destination {dst} is originated by excluded AS{asn}"
        for asn in path:
            if asn in self.asns:
                return f"the BGP path crosses excluded AS{asn}"
        return None


def read_exclude_file(path: Union[str, os.PathLike]) -> Exclusions:
    """``--exclude FILE``: one prefix (v4/v6) or ASN (``65001`` / ``AS65001``) a line.

    Any line that is neither stops the run (PlanError naming file and line):
    an exclusion that cannot be read must not turn into a probe."""
    prefixes: list[Network] = []
    asns: set[int] = set()
    for n, line in _lines(path):
        word = line.split()[0]
        digits = word[2:] if word[:2].upper() == "AS" else word
        if digits.isdigit():
            asn = int(digits)
            if not 0 < asn < 2 ** 32:
                raise PlanError(f"{os.fspath(path)}:{n}: AS number {word!r} out of range")
            asns.add(asn)
            continue
        try:
            prefixes.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            raise PlanError(f"{os.fspath(path)}:{n}: {word[:60]!r} is neither a prefix nor an AS number") from None
    return Exclusions(tuple(prefixes), frozenset(asns))


@attrs.frozen
class Target:
    """One (peer, destination): the peer's own longest route to ``dst``."""

    peer: object           # ixpscamper.bgp.rib.Peer
    dst: Address
    route: object          # ixpscamper.bgp.rib.Route
    on_lan: bool
    excluded: Optional[str] = None

    @property
    def next_hop(self) -> Optional[Address]:
        return self.route.next_hop  # type: ignore[attr-defined]

    @property
    def key(self) -> tuple[str, int, str]:
        """What identifies the pair across runs (journal, resume)."""
        return (str(self.peer.ip), int(self.peer.asn), str(self.dst))  # type: ignore[attr-defined]

    @property
    def probe(self) -> bool:
        """Whether this pair is traced."""
        return self.on_lan and self.excluded is None


@attrs.define
class Plan:
    """Every (peer, destination) pair that has a route, in a stable order."""

    targets: list[Target] = attrs.field(factory=list)
    #: Destinations no peer has a route for.
    no_route: list[Address] = attrs.field(factory=list)

    @property
    def to_probe(self) -> list[Target]:
        return [t for t in self.targets if t.probe]

    @property
    def off_lan(self) -> list[Target]:
        return [t for t in self.targets if not t.on_lan]

    @property
    def excluded(self) -> list[Target]:
        return [t for t in self.targets if t.on_lan and t.excluded is not None]


def on_lan(addr: Optional[Address], lans: Sequence[Network]) -> bool:
    """Whether ``addr`` is inside one of the exchange LAN prefixes."""
    return addr is not None and any(addr.version == n.version and addr in n for n in lans)


def make_plan(rib, dsts: Iterable[Address], lans: Sequence[Network],
              exclusions: Exclusions = Exclusions(),
              warn: Callable[[str], None] = lambda m: None) -> Plan:
    """Per destination, each peer's longest match; a pair is traced when its
    next hop is on one of ``lans`` and nothing in ``exclusions`` forbids it.

    Destinations are de-duplicated (first occurrence kept); one with no
    route at all is reported with ``warn`` and listed in ``no_route``."""
    plan = Plan()
    seen: set[Address] = set()
    for dst in dsts:
        if dst in seen:
            continue
        seen.add(dst)
        routes = rib.routes_for(dst)
        if not routes:
            warn(f"destination {dst}: no route in the RIB; skipped")
            plan.no_route.append(dst)
            continue
        origins = rib.origins(dst)
        for r in routes:
            lan = on_lan(r.next_hop, lans)
            why = exclusions.why(dst, r.next_hop, r.peer.asn, origins, r.flat_path()) if lan else None
            plan.targets.append(Target(peer=r.peer, dst=dst, route=r, on_lan=lan, excluded=why))
    return plan
