"""scamper's ``tracelb`` command (MDA traceroute) -> frozen attrs options.

Options and defaults as ``scamper_tracelb_cmd.c`` (20211212 and 20260420):
``-c`` confidence 95|99 (95), ``-d`` dport (33435), ``-f`` firsthop 1-254
(1), ``-g`` gaplimit 1-5 (3), ``-O ptr`` (refused: no DNS in the prober),
``-P udp-dport|icmp-echo|udp-sport|tcp-sport|tcp-ack-sport`` (udp-dport,
case-insensitive), ``-q`` attempts 1-5 (2), ``-Q`` maxprobec 50-65535
(3000), ``-r`` first-hop router (scamper accepts it for tracelb), ``-s``
sport (scamper 20211212 parses it but never uses it - its option switch
has no case for it - so its source port is always its pid default; 2026
uses it; ours does), ``-t`` tos 0-255, ``-U`` userid, ``-w`` wait 1-10 s (5), ``-W``
wait-probe 0.15-2 s in 10 ms steps (25 = 250 ms; a bare integer counts
centiseconds, 2026's ``0.5s`` / ``150ms`` forms are read too).

IPv6: scamper 2026 refuses the TCP methods for an IPv6 destination at run
time ("unexpected trace type"); we refuse them when the command is parsed.
"""

from __future__ import annotations

import ipaddress
from typing import Optional, Union

import attrs

from .commands import (CommandError, _addr, _family_addr, _int_in, _scan, _show, _strtol,
                       destination_problem, sport_default, time_arg)

__all__ = ["TracelbOptions", "parse_tracelb", "TRACELB_METHODS"]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

#: method name -> warts tracelb type code (scamper_tracelb.h)
TRACELB_METHODS: dict[str, int] = {
    "udp-dport": 0x01,
    "icmp-echo": 0x02,
    "udp-sport": 0x03,
    "tcp-sport": 0x04,
    "tcp-ack-sport": 0x05,
}

_SPEC: dict[str, Optional[str]] = {
    "c": "num", "d": "num", "f": "num", "g": "num", "O": "str", "P": "str", "q": "num",
    "Q": "num", "r": "str", "s": "num", "t": "num", "U": "num", "w": "str", "W": "str",
}

_INTS = {
    "d": ("dport", 1, 65535),
    "f": ("firsthop", 1, 254),
    "g": ("gaplimit", 1, 5),
    "q": ("attempts", 1, 5),
    "Q": ("probec_max", 50, 65535),
    "s": ("sport", 1, 65535),
    "t": ("tos", 0, 255),
    "U": ("userid", 0, 2**32 - 1),
}


@attrs.frozen
class TracelbOptions:
    """A parsed ``tracelb`` command; field comments name the option."""

    dst: IPAddress
    method: str = "udp-dport"  # -P
    confidence: int = 95  # -c
    dport: int = 32768 + 666 + 1  # -d
    sport: Optional[int] = None  # -s (None: scamper's default from the pid)
    firsthop: int = 1  # -f
    gaplimit: int = 3  # -g
    attempts: int = 2  # -q
    probec_max: int = 3000  # -Q
    tos: int = 0  # -t
    userid: int = 0  # -U
    wait_us: int = 5_000_000  # -w
    wait_probe_us: int = 250_000  # -W
    rtr: Optional[IPAddress] = None  # -r
    src: Optional[IPAddress] = None  # (no option: the kernel's choice)

    kind = "tracelb"

    @property
    def type_code(self) -> int:
        return TRACELB_METHODS[self.method]

    def effective_sport(self, pid: Optional[int] = None) -> int:
        """The source port / ICMP id scamper would use: (pid & 0x7fff) + 0x8000."""
        return self.sport if self.sport is not None else sport_default(pid)

    def to_command(self) -> str:
        """The command text that parses back to these options."""
        parts = ["tracelb"]
        d = TracelbOptions(dst=self.dst)
        if self.method != d.method:
            parts += ["-P", self.method]
        if self.confidence != d.confidence:
            parts += ["-c", str(self.confidence)]
        for letter, (name, _lo, _hi) in _INTS.items():
            v = getattr(self, name)
            if v is not None and v != getattr(d, name):
                parts += [f"-{letter}", str(v)]
        if self.wait_us != d.wait_us:
            parts += ["-w", str(self.wait_us // 1_000_000)]
        if self.wait_probe_us != d.wait_probe_us:
            parts += ["-W", str(self.wait_probe_us // 10_000)]
        if self.rtr is not None:
            parts += ["-r", str(self.rtr)]
        parts.append(str(self.dst))
        return " ".join(parts)


def _wait(value: str) -> int:
    us = time_arg(value, 1_000_000, "w", "timeout")
    if us is not None and us % 1_000_000:
        raise CommandError("-w failed: timeout cannot have fractions of second")
    if us is None or not 1_000_000 <= us <= 10_000_000:
        raise CommandError("-w failed: timeout must be within 1s - 10s")
    return us


def _wait_probe(value: str) -> int:
    us = time_arg(value, 10_000, "W", "inter-probe delay")
    if us is None:
        raise CommandError(f"-W failed: malformed inter-probe delay '{_show(value)}'")
    if us % 10_000:
        raise CommandError("-W failed: inter-probe granularity limited to 10ms")
    if not 150_000 <= us <= 2_000_000:
        raise CommandError("-W failed: inter-probe delay must be within 0.15s - 2s")
    return us


def parse_tracelb(args: str) -> TracelbOptions:
    """Parse the part of a tracelb command after the word ``tracelb``."""
    opts, addr = _scan(args, _SPEC, "tracelb")
    kw: dict[str, object] = {}
    seen: set[str] = set()
    rtr_text: Optional[str] = None
    for letter, value in opts:
        value = value or ""
        if letter in seen and letter != "O":
            raise CommandError(f"repeated option -{letter}")
        seen.add(letter)
        if letter in _INTS:
            name, lo, hi = _INTS[letter]
            kw[name] = _int_in(letter, name, lo, hi)(value)
        elif letter == "c":
            v = _strtol(value)
            if v not in (95, 99):
                raise CommandError("-c failed: confidence must be 95 or 99")
            kw["confidence"] = v
        elif letter == "P":
            method = value.lower()
            if method not in TRACELB_METHODS:
                raise CommandError(f"-P failed: invalid tracelb method '{_show(value)}'")
            kw["method"] = method
        elif letter == "O":
            if value.lower() == "ptr":
                raise CommandError("tracelb -O ptr is not supported by ixpscamper (no DNS lookups)")
            raise CommandError(f"-O failed: unknown option '{_show(value)}'")
        elif letter == "w":
            kw["wait_us"] = _wait(value)
        elif letter == "W":
            kw["wait_probe_us"] = _wait_probe(value)
        elif letter == "r":
            rtr_text = value
    if addr is None:
        raise CommandError("expected address to trace")
    dst = _addr(addr.split()[0] if addr.split() else None, "trace")
    if len(addr.split()) > 1:
        raise CommandError(f"could not parse tracelb command: unexpected '{_show(addr.split()[1])}'")
    problem = destination_problem(dst)
    if problem is not None:
        raise CommandError(f"cannot tracelb {dst}: it is {problem}")
    if rtr_text is not None:
        kw["rtr"] = _family_addr(rtr_text, dst, "router")
    method = str(kw.get("method", "udp-dport"))
    if dst.version == 6 and method in ("tcp-sport", "tcp-ack-sport"):
        raise CommandError(f"tracelb -P {method} is not available for IPv6 destinations")
    return TracelbOptions(dst=dst, **kw)  # type: ignore[arg-type]
