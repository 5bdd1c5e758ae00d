"""scamper's ``dealias`` command (alias resolution) -> frozen attrs options.

As ``scamper_dealias_cmd.c``: ``-m ally|mercator|radargun|prefixscan|bump``
(case-insensitive; mercator by default), ``-p 'probedef'`` (repeatable:
``-P udp|udp-dport|tcp-ack|tcp-ack-sport|tcp-syn-sport|icmp-echo``, ``-c``
ICMP checksum, ``-d`` dport (33435), ``-F`` sport, ``-i`` address, ``-s``
size, ``-t`` TTL (255), ``-M`` pseudo-MTU), ``-q`` attempts, ``-f`` fudge,
``-w`` wait-timeout (s), ``-W`` wait-probe (ms), ``-r`` wait-round (ms),
``-o`` replyc, ``-O nobs|inseq|shuffle``, ``-x`` exclude, ``-U`` userid,
and 20211212's mercator-only ``-d`` / ``-s`` / ``-t``.  Defaults per method:
mercator 3 attempts, 5 s; ally 5 attempts, 150 ms between probes, 5 s,
fudge 200.

The prober runs all five methods.  prefixscan (``A B/len``, len 24-31,
exactly one ``-p`` without ``-i``; attempts 2, replyc 5, fudge 200, 1000 ms
between probes) and bump (two ``-p`` with ``-i``; attempts 3, 1000 ms, the
bump limit is ``-f``, 30) are IPv4 only, as scamper's: its prefixscan
builds the addresses to scan from the first four bytes of B, and its bump
refuses IPv6.  scamper's dealias has no first-hop router option (its ``-r``
is the radargun round wait), so neither has ours.  The TCP probedef methods
go with every method but mercator (UDP only), as scamper's; the prober
refuses a TCP probedef with ``-s``, which scamper 20211212 parses but
cannot send (its task is never made).
"""

from __future__ import annotations

import ipaddress
from typing import Optional, Union

import attrs

from .commands import (CommandError, _NUM, _int_in, _ip, _scan, _show, _strtol,
                       destination_problem, sport_default)

__all__ = ["DealiasOptions", "ProbedefOptions", "parse_dealias", "DEALIAS_METHODS",
           "PROBEDEF_METHODS"]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

DEALIAS_METHODS = {"mercator": 1, "ally": 2, "radargun": 3, "prefixscan": 4, "bump": 5}
PROBEDEF_METHODS = {"icmp-echo": 1, "tcp-ack": 2, "udp": 3, "tcp-ack-sport": 4,
                    "udp-dport": 5, "tcp-syn-sport": 6}


@attrs.frozen
class ProbedefOptions:
    """One ``-p`` probe definition (or the method's default one)."""

    dst: Optional[IPAddress] = None  # -i
    method: str = "udp"  # -P
    sport: int = 0  # -F (0: scamper's default from the pid, filled by parse_dealias)
    dport: int = 33435  # -d
    ttl: int = 255  # -t
    size: int = 0  # -s (0: the smallest probe: IP + 8 + 2 bytes, TCP 40)
    mtu: int = 0  # -M
    csum: int = 0  # -c (ICMP)

    @property
    def code(self) -> int:
        return PROBEDEF_METHODS[self.method]

    @property
    def is_udp(self) -> bool:
        return self.method in ("udp", "udp-dport")

    @property
    def probe_size(self) -> int:
        """The size probes are sent with: -s, else IP + 8 + 2 (UDP, ICMP) or IP + 20 + 2 (TCP).

        scamper's unsized probe carries two bytes after its L4 header (TCP's
        a bare 20-byte one).
        """
        if self.size:
            return self.size
        assert self.dst is not None
        return (20 if self.dst.version == 4 else 40) + (22 if self.method.startswith("tcp") else 10)

    @property
    def is_icmp(self) -> bool:
        return self.method == "icmp-echo"


@attrs.frozen
class DealiasOptions:
    """A parsed ``dealias`` command."""

    method: str  # -m
    probedefs: tuple[ProbedefOptions, ...]  # with their destinations filled in
    attempts: int
    wait_timeout: int  # seconds
    wait_probe_ms: int
    wait_round_ms: int = 0
    fudge: int = 0
    nobs: bool = False
    inseq: bool = False
    shuffle: bool = False
    replyc: int = 0
    excludes: tuple[IPAddress, ...] = ()  # prefixscan -x
    b: Optional[IPAddress] = None  # prefixscan: B as given (its host bits order the scan)
    prefixlen: int = 0  # prefixscan: the /len of B
    userid: int = 0
    src: Optional[IPAddress] = None
    rtr: Optional[IPAddress] = None  # always None: scamper's dealias has no -r router

    kind = "dealias"

    @property
    def dst(self) -> IPAddress:
        """The first target (the scheduler routes and checks by it)."""
        return self.probedefs[0].dst  # type: ignore[return-value]

    @property
    def sport(self) -> Optional[int]:
        return self.probedefs[0].sport

    @property
    def method_code(self) -> int:
        return DEALIAS_METHODS[self.method]

    def effective_sport(self, pid: Optional[int] = None) -> int:
        return self.probedefs[0].sport

    def to_command(self) -> str:
        if self.method == "prefixscan":
            return f"dealias -m prefixscan {self.dst} {self.b}/{self.prefixlen}"
        return f"dealias -m {self.method} " + " ".join(str(p.dst) for p in self.probedefs)


_SPEC = {"d": "num", "f": "num", "m": "str", "o": "num", "O": "str", "p": "str", "q": "num",
         "r": "str", "s": "num", "t": "num", "U": "num", "w": "str", "W": "str", "x": "str"}
_PD_SPEC = {"c": "num", "d": "num", "F": "num", "i": "str", "P": "str", "s": "num", "t": "num",
            "M": "num"}


def _probedef(text: str, pid: Optional[int]) -> ProbedefOptions:
    try:
        opts, rest = _scan(text, _PD_SPEC, "probedef")
    except CommandError:
        raise CommandError("-p failed: could not parse probedef options") from None
    if rest is not None:
        raise CommandError("-p failed: invalid option string")
    kw: dict[str, object] = {}
    seen: set[str] = set()
    for letter, value in opts:
        value = value or ""
        if letter in seen:
            raise CommandError(f"-p failed: -{letter} repeated in probedef")
        seen.add(letter)
        if letter == "c":
            kw["csum"] = _int_in("c", "csum", 0, 65535)(value)
        elif letter == "d":
            kw["dport"] = _int_in("d", "dport", 1, 65535)(value)
        elif letter == "F":
            kw["sport"] = _int_in("F", "sport", 1, 65535)(value)
        elif letter == "i":
            a = _ip(value)
            if a is None:
                raise CommandError("-p failed: invalid destination in probedef")
            kw["dst"] = a
        elif letter == "P":
            m = value.lower()
            if m not in PROBEDEF_METHODS:
                raise CommandError("-p failed: invalid probedef method")
            kw["method"] = m
        elif letter == "s":
            kw["size"] = _int_in("s", "size", 28, 65535)(value)
        elif letter == "t":
            kw["ttl"] = _int_in("t", "ttl", 1, 255)(value)
        elif letter == "M":
            kw["mtu"] = _int_in("M", "mtu", 100, 65535)(value)
    method = str(kw.get("method", "udp"))
    if method in ("udp", "udp-dport") and "csum" in kw:
        raise CommandError("-p failed: csum option not permitted for udp")
    if method == "icmp-echo" and ("sport" in kw or "dport" in kw):
        raise CommandError("-p failed: sport/dport option not permitted for icmp")
    if method.startswith("tcp") and "csum" in kw:
        raise CommandError("-p failed: csum option not permitted for tcp")
    kw.setdefault("sport", sport_default(pid))
    return ProbedefOptions(**kw)  # type: ignore[arg-type]


def _target(text: str) -> IPAddress:
    a = _ip(text)
    if a is None:
        raise CommandError(f"invalid target address '{_show(text)}'")
    problem = destination_problem(a)
    if problem is not None:
        raise CommandError(f"cannot dealias {a}: it is {problem}")
    return a


def _size_check(pd: ProbedefOptions) -> ProbedefOptions:
    assert pd.dst is not None
    hl = (20 if pd.dst.version == 4 else 40) + (20 if pd.method.startswith("tcp") else 10)
    # an unset size stays 0 in the record, as scamper 20211212 writes it;
    # the probe is then the smallest one (see ProbedefOptions.probe_size)
    if pd.size and pd.size < hl:
        raise CommandError(f"probedef size {pd.size} too small")
    return pd


def parse_dealias(args: str, pid: Optional[int] = None) -> DealiasOptions:
    """Parse the part of a dealias command after the word ``dealias``."""
    opts, addr = _scan(args, _SPEC, "dealias")
    method = "mercator"
    pds: list[ProbedefOptions] = []
    kw: dict[str, object] = {}
    seen: set[str] = set()
    excludes: list[IPAddress] = []
    for letter, value in opts:
        value = value or ""
        if letter in seen and letter not in ("p", "x", "O"):
            raise CommandError(f"repeated option -{letter}")
        seen.add(letter)
        if letter == "m":
            if value.lower() not in DEALIAS_METHODS:
                raise CommandError("-m failed: invalid dealias method")
            method = value.lower()
        elif letter == "p":
            pds.append(_probedef(value, pid))
        elif letter == "q":
            kw["attempts"] = _int_in("q", "attempts", 1, 255)(value)
        elif letter == "f":
            kw["fudge"] = _int_in("f", "fudge", 1, 65535)(value)
        elif letter == "o":
            kw["replyc"] = _int_in("o", "replyc", 3, 255)(value)
        elif letter == "U":
            kw["userid"] = _int_in("U", "userid", 0, 2**32 - 1)(value)
        elif letter == "w":
            v = _strtol(value.rstrip("s")) if _NUM.fullmatch(value.rstrip("s")) else None
            if v is None or not 1 <= v <= 255:
                raise CommandError("-w failed: wait-timeout must be within 1s - 255s")
            kw["wait_timeout"] = v
        elif letter == "W":
            v = _strtol(value.rstrip("ms")) if _NUM.fullmatch(value.rstrip("ms")) else None
            if v is None or not 1 <= v <= 10000:
                raise CommandError("-W failed: wait-probe must be within 1ms - 10s")
            kw["wait_probe_ms"] = v
        elif letter == "r":
            v = _strtol(value.rstrip("ms")) if _NUM.fullmatch(value.rstrip("ms")) else None
            if v is None or not 1 <= v <= 180000:
                raise CommandError("-r failed: wait-round must be within 1ms - 180s")
            kw["wait_round_ms"] = v
        elif letter == "O":
            o = value.lower()
            if o not in ("nobs", "inseq", "shuffle"):
                raise CommandError("-O failed: unknown option")
            kw[o] = True
        elif letter == "x":
            a = _ip(value)
            if a is None:
                raise CommandError("-x failed: invalid exclude address")
            excludes.append(a)
        elif letter in ("d", "s", "t"):
            # 20211212: mercator's dport, sport, ttl
            name, lo, hi = {"d": ("dport", 1, 65535), "s": ("sport", 1, 65535),
                            "t": ("ttl", 1, 255)}[letter]
            kw["_" + name] = _int_in(letter, name, lo, hi)(value)
    words = addr.split() if addr else []
    if method == "mercator":
        return _mercator(words, pds, kw, excludes, pid)
    if method == "ally":
        return _ally(words, pds, kw, excludes, pid)
    if method == "radargun":
        return _radargun(words, pds, kw, excludes, pid)
    if method == "prefixscan":
        return _prefixscan(words, pds, kw, excludes, pid)
    return _bump(words, pds, kw, excludes, pid)


def _common(kw: dict, **defaults) -> dict:
    out = {k: v for k, v in kw.items() if not k.startswith("_")}
    for k, v in defaults.items():
        out.setdefault(k, v)
    return out


def _mercator(words, pds, kw, excludes, pid) -> DealiasOptions:
    if not words:
        raise CommandError("expected target address for mercator")
    if len(words) > 1:
        raise CommandError(f"could not parse dealias command: unexpected '{_show(words[1])}'")
    dst = _target(words[0])
    if len(pds) > 1 or excludes or "wait_probe_ms" in kw or "fudge" in kw \
            or kw.get("attempts", 3) > 3 or kw.get("nobs") or "replyc" in kw \
            or kw.get("shuffle") or kw.get("inseq"):
        raise CommandError("invalid parameters for mercator")
    if pds:
        pd = pds[0]
        if not pd.is_udp or pd.method != "udp":
            raise CommandError("expected UDP probedef method for mercator")
        if pd.dst is not None:
            raise CommandError("unexpected dst in mercator probedef")
    else:
        pd = ProbedefOptions(sport=kw.get("_sport", sport_default(pid)),
                             dport=kw.get("_dport", 33435), ttl=kw.get("_ttl", 255))
    pd = _size_check(attrs.evolve(pd, dst=dst))
    return DealiasOptions(method="mercator", probedefs=(pd,),
                          **_common(kw, attempts=3, wait_timeout=5, wait_probe_ms=0))


def _ally(words, pds, kw, excludes, pid) -> DealiasOptions:
    if len(pds) > 2 or excludes or "replyc" in kw or kw.get("shuffle") \
            or (kw.get("inseq") and "fudge" in kw):
        raise CommandError("invalid parameters for ally")
    if not pds:
        pds = [ProbedefOptions(sport=sport_default(pid)), ProbedefOptions(sport=sport_default(pid))]
    elif len(pds) == 1:
        if pds[0].dst is not None or not words:
            raise CommandError("dst IP specified incorrectly")
        pds = [pds[0], pds[0]]
    if not words:
        if pds[0].dst is None or pds[1].dst is None:
            raise CommandError("expected dst in ally probedef")
        dsts = [pds[0].dst, pds[1].dst]
    else:
        if pds[0].dst is not None or pds[1].dst is not None:
            raise CommandError("unexpected dst in ally probedef")
        if len(words) < 2:
            raise CommandError("expected second address")
        if len(words) > 2:
            raise CommandError(f"could not parse dealias command: unexpected '{_show(words[2])}'")
        dsts = [_target(words[0]), _target(words[1])]
    if dsts[0].version != dsts[1].version:
        raise CommandError("dst IP specified incorrectly")
    defs = tuple(_size_check(attrs.evolve(p, dst=d)) for p, d in zip(pds, dsts))
    fudge = 0 if kw.get("inseq") else kw.get("fudge", 200)
    nobs = bool(kw.get("nobs")) or dsts[0].version == 6
    out = _common(kw, attempts=5, wait_timeout=5, wait_probe_ms=150)
    out["fudge"], out["nobs"] = fudge, nobs
    return DealiasOptions(method="ally", probedefs=defs, **out)


def _radargun(words, pds, kw, excludes, pid) -> DealiasOptions:
    if excludes or "replyc" in kw or "fudge" in kw or kw.get("nobs"):
        raise CommandError("invalid parameters for radargun")
    if words:
        if pds and any(p.dst is not None for p in pds):
            raise CommandError("unexpected dst in radargun probedef")
        bases = pds or [ProbedefOptions(sport=sport_default(pid))]
        if len(words) * len(bases) < 2:
            raise CommandError("expected at least two addresses")
        defs = tuple(_size_check(attrs.evolve(b, dst=_target(w))) for w in words for b in bases)
    else:
        if not pds or any(p.dst is None for p in pds):
            raise CommandError("expected dst in radargun probedef")
        defs = tuple(_size_check(p) for p in pds)
    out = _common(kw, attempts=30, wait_timeout=5, wait_probe_ms=150)
    # -r unset: scamper 20211212 records wait-probe x the number of -p
    # definitions (0 without -p); 2026 multiplies by the expanded count
    out.setdefault("wait_round_ms", out["wait_probe_ms"] * len(pds))
    return DealiasOptions(method="radargun", probedefs=defs, excludes=(), **out)


def _prefixscan(words, pds, kw, excludes, pid) -> DealiasOptions:
    # scamper_dealias_do.c: exactly one probedef, none of mercator's -d/-s/-t,
    # no shuffle, not both inseq and a fudge
    if len(pds) != 1 or not words or any(k.startswith("_") for k in kw) or kw.get("shuffle") \
            or (kw.get("inseq") and "fudge" in kw):
        raise CommandError("invalid parameters for prefixscan")
    if len(words) < 2:
        raise CommandError("expected address and prefix for prefixscan")
    if len(words) > 2:
        raise CommandError(f"could not parse dealias command: unexpected '{_show(words[2])}'")
    a = _target(words[0])
    addr, slash, plen = words[1].partition("/")
    if not slash:
        raise CommandError(f"missing prefix length in '{_show(words[1])}'")
    n = _strtol(plen) if _NUM.fullmatch(plen) else None
    if n is None or not 24 <= n < 32:
        raise CommandError(f"invalid prefix length '{_show(plen)}' (24 to 31)")
    b = _ip(addr)
    if b is None:
        raise CommandError(f"invalid prefix address '{_show(addr)}'")
    if b.version != a.version:
        raise CommandError("dst IP specified incorrectly")
    if a.version != 4:
        # scamper 20211212 builds the addresses from the first 4 bytes of B
        raise CommandError("dealias -m prefixscan needs IPv4 addresses")
    if pds[0].dst is not None:
        raise CommandError("unexpected dst in prefixscan probedef")
    if any(x.version != a.version for x in excludes):
        raise CommandError("-x failed: exclude address of another family")
    defs = (_size_check(attrs.evolve(pds[0], dst=a)),)
    out = _common(kw, attempts=2, wait_timeout=5, wait_probe_ms=1000, replyc=5)
    out["fudge"] = 0 if kw.get("inseq") else kw.get("fudge", 200)
    return DealiasOptions(method="prefixscan", probedefs=defs, excludes=tuple(excludes), b=b,
                          prefixlen=n, **out)


def _bump(words, pds, kw, excludes, pid) -> DealiasOptions:
    # scamper_dealias_do.c: two probedefs with their addresses, no target
    # words, no -x / -o / shuffle / mercator options
    if len(pds) != 2 or words or excludes or "replyc" in kw or kw.get("shuffle") \
            or any(k.startswith("_") for k in kw) or (kw.get("inseq") and "fudge" in kw):
        raise CommandError("invalid parameters for bump")
    for i, pd in enumerate(pds):
        if pd.dst is None:
            raise CommandError(f"missing dst address in probedef {i}")
        if pd.dst.version != 4:
            raise CommandError(f"dst address not IPv4 in probedef {i}")
        problem = destination_problem(pd.dst)
        if problem is not None:
            raise CommandError(f"cannot dealias {pd.dst}: it is {problem}")
    defs = tuple(_size_check(p) for p in pds)
    out = _common(kw, attempts=3, wait_timeout=5, wait_probe_ms=1000)
    out["fudge"] = kw.get("fudge", 30)  # the bump limit
    return DealiasOptions(method="bump", probedefs=defs, **out)
