"""scamper's ``trace`` and ``ping`` command language.

``parse_command("trace -r 192.0.2.2 198.51.100.66")`` returns a frozen
:class:`TraceOptions` (or :class:`PingOptions` for ``ping ...``) holding every
option with scamper 20211212's defaults, or raises :class:`CommandError`
whose message is what a user sees after ``ERR command not accepted: ``.
``options.to_command()`` writes the shortest command that parses back to
equal options.

What is accepted is what the Debian scamper 20211212 accepts (its
``scamper_do_trace_alloc`` / ``scamper_do_ping_alloc`` were read as the
specification): same option letters, value ranges, defaults and consistency
checks, the same word syntax (options before the address; flag letters may
be combined, ``-MQT``; a value is the next word, or a quoted string with
``\\"``/``\\\\`` escapes; numbers may not be glued to their letter, ``-q3``
is refused; a repeated option replaces the earlier value, except ``-r``,
``-S`` and ping's ``-T``).  The messages use the words of current scamper
(``-q failed: attempts must be within 1 - 20``, ``firsthop cannot be beyond
hoplimit``, ...); the 2021 binary gives no reason at all.  Only IP literals
are accepted as addresses (scamper resolves numeric hosts only, too).

scamper 2026's syntax is accepted as well (``scamper_ping_cmd.c`` /
``scamper_trace_cmd.c`` of 20260420 and its ``timeval_fromstr``), with the
values scamper 2026 records: every time option takes a decimal number with
an optional unit ``s``, ``ms`` or ``us`` (``-i 0.5s``, ``-i 500ms``,
``-W 1.5s``, ``trace -w 2.0s``, ``trace -W 50ms``) -- the forms the 2026
Python module's ``do_ping`` / ``do_trace`` write -- and ping ``-O dltx``.
A bare number keeps its option's unit: seconds for ping ``-i``/``-W`` and
trace ``-w``, 10 ms for trace ``-W``.  No exponents (Python writes 10 us as
``1e-05``; scamper refuses it too), nothing finer than a microsecond, no
fraction of ``us``.  Limits are 2026's: ping ``-i`` 1 ms - 20 s, ping ``-W``
1 ms - 255 s (kept to the microsecond: ``timeout`` + ``timeout_us``), trace
``-w`` whole seconds 1 - 10, trace ``-W`` steps of 10 ms up to 2 s.  Without
``-W``, a ping waits max(1 s, ``-i``) after its last probe, exactly (2026;
20211212 dropped the fraction of ``-i``, and the whole seconds agree).
Where the two versions read the same text differently, 20211212's meaning
is kept: a bare integer is read with strtol base 0 (``trace -w 010`` is 8
s; 2026 reads 10), repeated options replace earlier ones (2026 refuses
them), and ``ping -C`` counts its two checksum bytes in the default probe
size (86 for ICMP echo; 2026 gives 84).

Deliberate departures.  Refused with "... not supported by ixpscamper":
doubletree (``trace -z``/``-Z``), confidence probing (``trace -c``),
fragment traceroute (``trace -o``), ``trace -O ptr``, ping ``-O
spoof|nosrc|tbt`` and ping ``-M`` (pseudo-MTU); 2026's new options
(trace ``-H``/``-y``/``-O back|raw``, ping ``-b``/``-y``/``-O
mss=|raw|sockrx``, methods ``udp-sport``/``tcp-syn-sport``) are unknown.
Also refused: ``-U`` above 4294967295 (scamper wraps it to 32 bits) and
``ping -R`` to an IPv6 address (scamper 20211212 accepts it and crashes).
``ping -i`` is read as a decimal number of seconds, as scamper 2026 reads
it; scamper 20211212 reads the fraction with strtol base 0 and scales it by
its digit count, so its ``-i 0.05`` means 0.5 s (fractions without a
leading zero, ``-i 0.25``, agree).  Numbers elsewhere are read the
way scamper reads them (strtol base 0: ``0x10`` is 16, ``010`` is 8).

Defaults that depend on the process (scamper derives them from its pid) are
left ``None`` here and resolved by the prober: use
:meth:`TraceOptions.effective_sport`, :meth:`TraceOptions.effective_dport`,
:meth:`PingOptions.effective_sport`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable
from typing import Union

import attrs

__all__ = [
    "CommandError",
    "TraceOptions",
    "PingOptions",
    "Options",
    "IPAddress",
    "parse_command",
    "parse_trace",
    "parse_ping",
    "TRACE_METHODS",
    "PING_METHODS",
    "sport_default",
    "destination_problem",
]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


class CommandError(ValueError):
    """A command scamper would not accept; ``str(exc)`` is the reason."""


# method name -> warts trace type code (scamper_trace.h)
TRACE_METHODS: dict[str, int] = {
    "icmp": 0x01,
    "udp": 0x02,
    "tcp": 0x03,
    "icmp-paris": 0x04,
    "udp-paris": 0x05,
    "tcp-ack": 0x06,
}

# method name -> warts ping method code (scamper_ping.h)
PING_METHODS: dict[str, int] = {
    "icmp-echo": 0x00,
    "tcp-ack": 0x01,
    "tcp-ack-sport": 0x02,
    "udp": 0x03,
    "udp-dport": 0x04,
    "icmp-time": 0x05,
    "tcp-syn": 0x06,
    "tcp-synack": 0x07,
    "tcp-rst": 0x08,
}

# warts flag bits
TRACE_FLAG_ALLATTEMPTS = 0x01
TRACE_FLAG_PMTUD = 0x02
TRACE_FLAG_DL = 0x04
TRACE_FLAG_IGNORETTLDST = 0x08
TRACE_FLAG_ICMPCSUMDP = 0x20
TRACE_FLAG_CONSTPAYLOAD = 0x40
PING_FLAG_V4RR = 0x01
PING_FLAG_PAYLOAD = 0x04
PING_FLAG_TSONLY = 0x08
PING_FLAG_TSANDADDR = 0x10
PING_FLAG_ICMPSUM = 0x20
PING_FLAG_DL = 0x40
PING_FLAG_DLTX = 0x800  # 2026

TRACE_DPORT_DEFAULT = 32768 + 666 + 1  # 33435: scamper's traceroute base port
PING_DPORT_DEFAULT = 33435


def sport_default(pid: int | None = None) -> int:
    """scamper's default source port / ICMP id for traces: (pid & 0x7fff) + 0x8000."""
    if pid is None:
        pid = os.getpid()
    return (pid & 0x7FFF) + 0x8000


def _is_tcp_trace(method: str) -> bool:
    return method in ("tcp", "tcp-ack")


def _is_icmp_ping(method: str) -> bool:
    return method in ("icmp-echo", "icmp-time")


def _is_tcp_ping(method: str) -> bool:
    return method.startswith("tcp-")


@attrs.frozen
class TraceOptions:
    """A parsed ``trace`` command; field comments name the option."""

    dst: IPAddress
    method: str = "udp-paris"  # -P
    attempts: int = 2  # -q
    all_attempts: bool = False  # -Q
    firsthop: int = 1  # -f
    hoplimit: int = 0  # -m; 0 means no limit but the 255 of IP
    gaplimit: int = 5  # -g
    gapaction: int = 1  # -G: 1 stop, 2 last-ditch probes
    loops: int = 1  # -l; 0 disables loop detection
    wait: int = 5  # -w, seconds to wait for a reply
    wait_probe: int = 0  # -W, minimum gap between probes in 10 ms units
    squeries: int = 1  # -N, hops with a probe outstanding at once
    sport: int | None = None  # -s; None: sport_default()
    dport: int | None = None  # -d; None: 33435, or for icmp-paris sport_default()
    tos: int = 0  # -t
    ignore_ttl_dst: bool = False  # -T
    userid: int = 0  # -U
    rtr: IPAddress | None = None  # -r, first-hop router
    src: IPAddress | None = None  # -S
    payload: bytes = b""  # -p
    pmtud: bool = False  # -M
    dl: bool = False  # -O dl
    const_payload: bool = False  # -O const-payload

    kind = "trace"

    @property
    def type_code(self) -> int:
        """The warts trace type of the method."""
        return TRACE_METHODS[self.method]

    @property
    def probe_size(self) -> int:
        """Probe size as scamper computes it for the record."""
        if self.dst.version == 4:
            if _is_tcp_trace(self.method):
                return 40
            return 44 if not self.payload else 28 + len(self.payload)
        if not self.payload or _is_tcp_trace(self.method):
            return 60
        return 48 + len(self.payload)

    @property
    def flags(self) -> int:
        """The warts trace flags this command sets."""
        f = 0
        if self.all_attempts:
            f |= TRACE_FLAG_ALLATTEMPTS
        if self.pmtud:
            f |= TRACE_FLAG_PMTUD
        if self.dl:
            f |= TRACE_FLAG_DL
        if self.ignore_ttl_dst:
            f |= TRACE_FLAG_IGNORETTLDST
        if self.method == "icmp-paris":
            f |= TRACE_FLAG_ICMPCSUMDP
        if self.const_payload:
            f |= TRACE_FLAG_CONSTPAYLOAD
        return f

    def effective_sport(self, pid: int | None = None) -> int:
        """The source port (UDP/TCP) or ICMP id scamper would use."""
        return self.sport if self.sport is not None else sport_default(pid)

    def effective_dport(self, pid: int | None = None) -> int:
        """The base destination port; for icmp-paris the ICMP checksum to keep."""
        if self.dport is not None:
            return self.dport
        return sport_default(pid) if self.method == "icmp-paris" else TRACE_DPORT_DEFAULT

    def to_command(self) -> str:
        """The shortest ``trace`` command that parses back to these options."""
        d = TraceOptions(dst=self.dst)
        w: list[str] = ["trace"]
        flags = "".join(
            c for c, on in (("M", self.pmtud), ("Q", self.all_attempts), ("T", self.ignore_ttl_dst)) if on
        )
        if flags:
            w.append("-" + flags)
        for letter, name in (
            ("d", "dport"), ("f", "firsthop"), ("g", "gaplimit"), ("G", "gapaction"), ("l", "loops"),
            ("m", "hoplimit"), ("N", "squeries"), ("q", "attempts"), ("s", "sport"), ("t", "tos"),
            ("U", "userid"), ("w", "wait"), ("W", "wait_probe"),
        ):
            value = getattr(self, name)
            if value != getattr(d, name):
                w += [f"-{letter}", str(value)]
        if self.method != d.method:
            w += ["-P", self.method]
        if self.payload:
            w += ["-p", self.payload.hex()]
        if self.dl:
            w += ["-O", "dl"]
        if self.const_payload:
            w += ["-O", "const-payload"]
        if self.rtr is not None:
            w += ["-r", str(self.rtr)]
        if self.src is not None:
            w += ["-S", str(self.src)]
        w.append(str(self.dst))
        return " ".join(w)


@attrs.frozen
class PingOptions:
    """A parsed ``ping`` command; field comments name the option."""

    dst: IPAddress
    method: str = "icmp-echo"  # -P
    count: int = 4  # -c
    wait_us: int = 1_000_000  # -i, between probes, microseconds
    timeout: int = 1  # -W, whole seconds to wait after the last probe
    timeout_us: int = 0  # -W, microseconds beyond ``timeout`` (0-999999), as the record keeps it
    ttl: int = 64  # -m
    reply_count: int = 0  # -o; 0: send all probes
    size: int = 84  # -s, probe size including IP header (computed default)
    sport: int | None = None  # -F; None: pid-derived, see effective_sport
    dport: int = 0  # -d; default 0 (first ICMP seq) for ICMP, else 33435
    tos: int = 0  # -z
    userid: int = 0  # -U
    rtr: IPAddress | None = None  # -r, first-hop router
    src: IPAddress | None = None  # -S
    payload: bytes = b""  # -B
    pattern: bytes = b""  # -p
    record_route: bool = False  # -R
    tcp_ack: int | None = None  # -A; None: random
    icmp_sum: int | None = None  # -C
    timestamp: str | None = None  # -T: "tsonly", "tsandaddr" or "tsprespec"
    ts_prespec: tuple[ipaddress.IPv4Address, ...] = ()  # -T tsprespec=a,b,...
    dl: bool = False  # -O dl
    dltx: bool = False  # -O dltx (2026): transmit on the datalink

    kind = "ping"

    @property
    def method_code(self) -> int:
        """The warts ping method."""
        return PING_METHODS[self.method]

    @property
    def wait(self) -> float:
        """-i in seconds."""
        return self.wait_us / 1e6

    @property
    def timeout_total_us(self) -> int:
        """-W in microseconds: ``timeout`` seconds plus ``timeout_us``."""
        return self.timeout * 1_000_000 + self.timeout_us

    @property
    def flags(self) -> int:
        """The warts ping flags this command sets."""
        f = 0
        if self.record_route:
            f |= PING_FLAG_V4RR
        if self.payload:
            f |= PING_FLAG_PAYLOAD
        if self.timestamp == "tsonly":
            f |= PING_FLAG_TSONLY
        elif self.timestamp == "tsandaddr":
            f |= PING_FLAG_TSANDADDR
        if self.icmp_sum is not None:
            f |= PING_FLAG_ICMPSUM
        if self.dl:
            f |= PING_FLAG_DL
        if self.dltx:
            f |= PING_FLAG_DLTX
        return f

    @property
    def data(self) -> bytes:
        """The bytes scamper stores as the probe data (payload or pattern)."""
        return self.payload or self.pattern

    def effective_sport(self, pid: int | None = None) -> int:
        """Source port (UDP/TCP) or ICMP id: pid & 0xffff, | 0x8000 for non-ICMP."""
        if self.sport is not None:
            return self.sport
        if pid is None:
            pid = os.getpid()
        return pid & 0xFFFF if _is_icmp_ping(self.method) else (pid & 0xFFFF) | 0x8000

    def to_command(self) -> str:
        """The shortest ``ping`` command that parses back to these options."""
        w: list[str] = ["ping"]
        if self.record_route:
            w.append("-R")
        if self.tcp_ack is not None:
            w += ["-A", str(self.tcp_ack)]
        if self.payload:
            w += ["-B", self.payload.hex()]
        if self.count != 4:
            w += ["-c", str(self.count)]
        if self.icmp_sum is not None:
            w += ["-C", str(self.icmp_sum)]
        if self.dport != (0 if _is_icmp_ping(self.method) else PING_DPORT_DEFAULT):
            w += ["-d", str(self.dport)]
        if self.sport is not None:
            w += ["-F", str(self.sport)]
        if self.wait_us != 1_000_000:
            w += ["-i", _format_seconds(self.wait_us)]
        if self.ttl != 64:
            w += ["-m", str(self.ttl)]
        if self.reply_count:
            w += ["-o", str(self.reply_count)]
        if self.dl:
            w += ["-O", "dl"]
        if self.dltx:
            w += ["-O", "dltx"]
        if self.pattern:
            w += ["-p", self.pattern.hex()]
        if self.method != "icmp-echo":
            w += ["-P", self.method]
        if self.rtr is not None:
            w += ["-r", str(self.rtr)]
        if self.size != _ping_sizes(self)[1]:
            w += ["-s", str(self.size)]
        if self.src is not None:
            w += ["-S", str(self.src)]
        if self.timestamp == "tsprespec":
            w += ["-T", "tsprespec=" + ",".join(map(str, self.ts_prespec))]
        elif self.timestamp is not None:
            w += ["-T", self.timestamp]
        if self.userid:
            w += ["-U", str(self.userid)]
        if self.timeout_total_us != _default_ping_timeout_us(self.wait_us):
            # whole seconds in the 20211212 form, fractions with 2026's unit
            w += ["-W", str(self.timeout) if not self.timeout_us
                  else _format_seconds(self.timeout_total_us) + "s"]
        if self.tos:
            w += ["-z", str(self.tos)]
        w.append(str(self.dst))
        return " ".join(w)


Options = Union[TraceOptions, PingOptions]


# ---------------------------------------------------------------------------
# word scanning, as scamper_options_parse does it

_NUM = re.compile(r"-?[0-9]+")

# letter -> True if the option takes a value, False for a flag; and whether
# the value is a number (scanned as such) or a string
_TRACE_SPEC: dict[str, str | None] = {
    "c": "num", "d": "str", "f": "num", "g": "num", "G": "num", "l": "num", "m": "num",
    "M": None, "N": "num", "o": "num", "O": "str", "p": "str", "P": "str", "q": "num",
    "Q": None, "r": "str", "s": "num", "S": "str", "t": "num", "T": None, "U": "num",
    "w": "str", "W": "str", "z": "str", "Z": "str",
}
_PING_SPEC: dict[str, str | None] = {
    "A": "num", "B": "str", "c": "num", "C": "str", "d": "num", "F": "num", "i": "str",
    "m": "num", "M": "num", "o": "num", "O": "str", "p": "str", "P": "str", "r": "str",
    "R": None, "s": "num", "S": "str", "T": "str", "U": "num", "W": "str", "z": "num",
}


def _scan(text: str, spec: dict[str, str | None], what: str) -> tuple[list[tuple[str, str | None]], str | None]:
    """Split ``text`` (after the command word) into options and the address.

    Returns ([(letter, value-or-None)], address-or-None).
    """
    bad = f"could not parse {what} command"
    opts: list[tuple[str, str | None]] = []
    i, n = 0, len(text)

    def skip_ws(j: int) -> int:
        while j < n and text[j].isspace():
            j += 1
        return j

    i = skip_ws(i)
    while i < n:
        if text[i] != "-":
            return opts, text[i:]
        j = i
        while j < n and not text[j].isspace():
            j += 1
        word = text[i:j]
        nxt = skip_ws(j)
        if word.startswith("--"):
            raise CommandError(f"{bad}: unknown option {word}")
        letters = word[1:]
        i = nxt
        for k, letter in enumerate(letters):
            if letter not in spec:
                raise CommandError(f"{bad}: unknown option -{letter}")
            kind = spec[letter]
            if kind is None:
                opts.append((letter, None))
                continue
            if k != len(letters) - 1:
                raise CommandError(f"{bad}: -{letter} needs a value as the next word")
            if nxt >= n:
                raise CommandError(f"{bad}: -{letter} needs a value")
            value, i = _scan_value(text, nxt, kind, letter, bad)
            opts.append((letter, value))
            i = skip_ws(i)
    return opts, None


def _scan_value(text: str, i: int, kind: str, letter: str, bad: str) -> tuple[str, int]:
    n = len(text)
    if kind == "num":
        j = i
        while j < n and not text[j].isspace():
            j += 1
        word = text[i:j]
        if not _NUM.fullmatch(word):
            raise CommandError(f"{bad}: -{letter} needs a number, got '{_show(word)}'")
        return word, j
    if text[i] in "\"'":
        delim = text[i]
        out = []
        j = i + 1
        while j < n and text[j] != delim:
            if text[j] == "\\":
                j += 1
                if j >= n or text[j] not in ("\\", delim):
                    raise CommandError(f"{bad}: bad escape in quoted value of -{letter}")
            out.append(text[j])
            j += 1
        if j >= n:
            raise CommandError(f"{bad}: unterminated quote in value of -{letter}")
        return "".join(out), j + 1
    j = i
    while j < n and not text[j].isspace():
        j += 1
    return text[i:j], j


def _show(value: str, limit: int = 40) -> str:
    """A value for an error message: printable and bounded."""
    shown = "".join(c if c.isprintable() else "?" for c in value)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _ip(text: str) -> IPAddress | None:
    """A numeric address as getaddrinfo(AI_NUMERICHOST) reads it, else None.

    Like scamper, the short and hex/octal IPv4 forms of inet_aton (``127.1``)
    are accepted; they are stored as the address they mean.
    """
    if not text or any(c.isspace() for c in text) or not text.isascii():
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if ":" in text or not re.fullmatch(r"[0-9A-Fa-fxX.]+", text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


_V4_MULTICAST = ipaddress.IPv4Network("224.0.0.0/4")
_V4_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_V6_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_V6_COMPAT = ipaddress.IPv6Network("::/96")
_V6_LINKLOCAL = ipaddress.IPv6Network("fe80::/10")
_V6_MULTICAST = ipaddress.IPv6Network("ff00::/8")


def destination_problem(addr: IPAddress) -> str | None:
    """Why ``addr`` will not be probed, or None if it may be.

    scamper 20211212 and 20260420 parse any address and leave the refusal to
    the kernel, which they ask for a source address (a UDP ``connect``) and
    then bind their socket to it; that fails, so nothing is sent, for
    IPv4-mapped IPv6 (the bind), the limited broadcast and directed
    broadcasts (EACCES: no SO_BROADCAST), and IPv6 link-local unicast and
    link-scope multicast (EINVAL: no scope id).  ixpscamper refuses these up
    front instead.  Directed broadcasts depend on the
    interfaces, so they are left to the prober's route lookup (not a unicast
    route: refused).  Beyond scamper, which would send these, ixpscamper also
    refuses every multicast destination (any member of the group may answer,
    so the replies cannot be matched to one destination), the unspecified
    addresses (which scamper ends up probing the local host with, and which
    an IPv6 raw socket sends on the default route) and the deprecated
    IPv4-compatible IPv6 addresses ``::a.b.c.d`` (RFC 4291: a sit tunnel
    would carry them as IPv4).  Documentation, shared, private, benchmarking
    and reserved ranges (192.0.2.0/24, 198.18.0.0/15, 240.0.0.0/4, ...) are
    probed, as by scamper.

    The command language itself accepts every address (so that options
    round-trip through :meth:`TraceOptions.to_command`); this is the check
    the prober applies, through :func:`ixpscamper.prober.specs.unsupported`,
    before it sends anything.
    """
    if addr.version == 4:
        if addr == _V4_BROADCAST:
            return "the IPv4 limited broadcast address"
        if addr.is_unspecified:
            return "the unspecified address"
        if addr in _V4_MULTICAST:
            return "a multicast address"
        return None
    if addr.is_unspecified:
        return "the unspecified address"
    if addr in _V6_MAPPED:
        return f"an IPv4-mapped IPv6 address (probe {addr.ipv4_mapped} instead)"
    if addr in _V6_COMPAT and not addr.is_loopback:
        return "a deprecated IPv4-compatible IPv6 address"
    if addr in _V6_MULTICAST:
        return "a multicast address"
    if addr in _V6_LINKLOCAL:
        return "an IPv6 link-local address (no interface can be given)"
    return None


def _addr(text: str | None, what: str) -> IPAddress:
    if text is None:
        raise CommandError(f"expected address to {what}")
    addr = _ip(text)
    if addr is None:
        raise CommandError(f"invalid destination address '{_show(text)}'")
    return addr


def _family_addr(text: str, dst: IPAddress, role: str) -> IPAddress:
    addr = _ip(text)
    if addr is None or addr.version != dst.version:
        raise CommandError(f"invalid {role} address '{_show(text)}'")
    return addr


_STRTOL = re.compile(r"\s*(?P<sign>[+-]?)(?P<body>0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_LONG_MAX = 2**63 - 1


def _strtol(value: str) -> int | None:
    """C's strtol(value, &end, 0) as scamper uses it: base prefixes (0x hex,
    leading 0 octal) and trailing junk ignored; None where it reports ERANGE."""
    m = _STRTOL.match(value)
    if m is None:
        return 0
    body = m.group("body")
    if body[:2] in ("0x", "0X"):
        v = int(body, 16)
    elif body.startswith("0"):
        v = int(body, 8) if len(body) > 1 else 0
    else:
        v = int(body)
    if v > _LONG_MAX:
        return None
    return -v if m.group("sign") == "-" else v


def _int_in(letter: str, name: str, lo: int, hi: int) -> Callable[[str], int]:
    def conv(value: str) -> int:
        v = _strtol(value)
        if v is None or v < lo or v > hi:
            raise CommandError(f"-{letter} failed: {name} must be within {lo} - {hi}")
        return v

    return conv


def _hex(letter: str, what: str, value: str) -> bytes:
    if not value or not all(c in "0123456789abcdefABCDEF" for c in value):
        raise CommandError(f"-{letter} failed: {what} must be specified in hex")
    if len(value) % 2:
        raise CommandError(f"-{letter} failed: expected even number of hex characters")
    return bytes.fromhex(value)


def _unsupported(what: str) -> CommandError:
    return CommandError(f"{what} not supported by ixpscamper")


# ---------------------------------------------------------------------------
# trace

_TRACE_INTS = {
    "d": ("dport", 1, 65535),
    "f": ("firsthop", 1, 255),
    "g": ("gaplimit", 1, 255),
    "G": ("gapaction", 1, 2),
    "l": ("loops", 0, 255),
    "m": ("hoplimit", 0, 255),
    "N": ("squeries", 1, 255),
    "q": ("attempts", 1, 20),
    "s": ("sport", 1, 65535),
    "t": ("tos", 0, 255),
    "U": ("userid", 0, 0xFFFFFFFF),
}


def parse_trace(args: str) -> TraceOptions:
    """Parse the part of a trace command after the word ``trace``."""
    opts, addr = _scan(args, _TRACE_SPEC, "trace")
    kw: dict[str, object] = {}
    seen: set[str] = set()
    rtr = src = None
    for letter, value in opts:
        if letter in ("r", "S") and letter in seen:
            raise CommandError(f"repeated option -{letter}")
        seen.add(letter)
        if letter in _TRACE_INTS:
            name, lo, hi = _TRACE_INTS[letter]
            assert value is not None
            kw[name] = _int_in(letter, name, lo, hi)(value)
        elif letter == "w":
            kw["wait"] = _parse_trace_wait(value or "")
        elif letter == "W":
            kw["wait_probe"] = _parse_trace_wait_probe(value or "")
        elif letter == "P":
            method = (value or "").lower()
            if method not in TRACE_METHODS:
                raise CommandError(f"-P failed: invalid trace method '{_show(value or '')}'")
            kw["method"] = method
        elif letter == "p":
            kw["payload"] = _hex("p", "payload", value or "")
        elif letter == "O":
            opt = (value or "").lower()
            if opt == "dl":
                kw["dl"] = True
            elif opt == "const-payload":
                kw["const_payload"] = True
            elif opt in ("ptr", "dtree-noback"):
                raise _unsupported(f"-O {opt}")
            else:
                raise CommandError(f"-O failed: unknown option '{_show(value or '')}'")
        elif letter == "M":
            kw["pmtud"] = True
        elif letter == "Q":
            kw["all_attempts"] = True
        elif letter == "T":
            kw["ignore_ttl_dst"] = True
        elif letter == "r":
            rtr = value
        elif letter == "S":
            src = value
        elif letter == "c":
            v = _strtol(value or "")
            if v not in (95, 99):
                raise CommandError("-c failed: confidence must be 95 or 99")
            raise _unsupported("confidence probing (-c)")
        elif letter == "o":
            _int_in("o", "offset", 0, 8190)(value or "")
            raise _unsupported("fragment traceroute (-o)")
        elif letter in ("z", "Z"):
            raise _unsupported(f"doubletree (-{letter})")

    # consistency checks, in scamper's order
    firsthop = int(kw.get("firsthop", 1))  # type: ignore[arg-type]
    hoplimit = int(kw.get("hoplimit", 0))  # type: ignore[arg-type]
    if hoplimit != 0 and firsthop > hoplimit:
        raise CommandError("firsthop cannot be beyond hoplimit")
    method = str(kw.get("method", "udp-paris"))
    if kw.get("pmtud"):
        if firsthop > 1:
            raise CommandError("cannot do pmtud without all of path")
        if method not in ("udp", "udp-paris"):
            raise CommandError("cannot do pmtud with this probe method")
    dst = _addr(addr, "trace")
    if _is_tcp_trace(method) and kw.get("payload"):
        raise CommandError("cannot include a payload with TCP traceroute")
    if int(kw.get("squeries", 1)) > int(kw.get("gaplimit", 5)):  # type: ignore[arg-type]
        raise CommandError("squeries cannot be greater than gaplimit")
    if src is not None:
        kw["src"] = _family_addr(src, dst, "source")
    if rtr is not None:
        kw["rtr"] = _family_addr(rtr, dst, "router")
    return TraceOptions(dst=dst, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# ping

_PING_INTS = {
    "A": ("tcp_ack", "tcp-seq/ack", 0, 0xFFFFFFFF),
    "c": ("count", "attempts", 1, 65535),
    "d": ("dport", "dport", 0, 65535),
    "F": ("sport", "sport", 0, 65535),
    "m": ("ttl", "ttl", 1, 255),
    "o": ("reply_count", "stop-count", 0, 65535),
    "s": ("size", "probe-size", 0, 65535),
    "U": ("userid", "userid", 0, 0xFFFFFFFF),
    "z": ("tos", "tos", 0, 255),
}

def _parse_ping_wait(value: str) -> int:
    """ping -i: microseconds; a bare number is seconds (2026 and ixpscamper
    read its fraction as a decimal, see the module docs)."""
    us = _timeval_fromstr(value, 1_000_000)
    if us is None:
        raise CommandError(f"-i failed: malformed inter-probe delay '{_show(value)}'")
    if us < 1000 or us > 20_000_000:
        raise CommandError("-i failed: inter-probe delay must be within 1ms - 20s")
    return us


def time_arg(value: str, unit: int, letter: str, what: str) -> int | None:
    """A time option's value in microseconds, as the two scamper versions read it.

    A bare integer is read as 20211212 reads it (strtol base 0: ``010`` is
    8), in ``unit`` microseconds; None if strtol refuses it or it is
    negative (each option then names its own range).  Anything else is
    read as 2026 does (``1.5``, ``1.0s``, ``500ms``; a bare fraction in
    ``unit``); a value 2026 refuses raises ``-L failed: malformed WHAT``.
    """
    if _NUM.fullmatch(value):
        v = _strtol(value)
        return None if v is None or v < 0 else v * unit
    us = _timeval_fromstr(value, unit)
    if us is None:
        raise CommandError(f"-{letter} failed: malformed {what} '{_show(value)}'")
    return us


def _parse_ping_timeout(value: str) -> int:
    """ping -W: microseconds, within 2026's limits of 1 ms - 255 s."""
    us = time_arg(value, 1_000_000, "W", "timeout")
    if us is None or not 1000 <= us <= 255_000_000:
        raise CommandError("-W failed: timeout must be within 1ms - 255s")
    return us


def _parse_trace_wait(value: str) -> int:
    """trace -w: whole seconds, 1-10."""
    us = time_arg(value, 1_000_000, "w", "timeout")
    if us is not None and us % 1_000_000:
        raise CommandError(f"-w failed: timeout cannot have fractions of second, got '{_show(value)}'")
    if us is None or not 1_000_000 <= us <= 10_000_000:
        raise CommandError("-w failed: timeout must be within 1s - 10s")
    return us // 1_000_000


def _parse_trace_wait_probe(value: str) -> int:
    """trace -W: centiseconds (the record's unit), at most 2 s.  A bare
    integer counts 10 ms units (both versions); with a unit or a fraction it
    is read as 2026 does (``0.05s``, ``50ms``, ``5.0``), in steps of 10 ms."""
    us = time_arg(value, 10_000, "W", "inter-probe delay")
    if us is None:
        raise CommandError(f"-W failed: malformed inter-probe delay '{_show(value)}'")
    if us % 10_000:
        raise CommandError(f"-W failed: inter-probe granularity limited to 10ms, got '{_show(value)}'")
    if us > 2_000_000:
        raise CommandError("-W failed: inter-probe delay cannot be > 2s")
    return us // 10_000


_C_SPACE = " \t\n\v\f\r"
_TV_INT = re.compile(f"[{_C_SPACE}]*(?P<sign>[+-]?)(?P<digits>[0-9]+)")
_LLONG_MAX = 2**63 - 1


def _timeval_fromstr(value: str, unit: int) -> int | None:
    """scamper 2026's ``timeval_fromstr(out, in, unit)`` (utils.c): the time
    ``value`` stands for, in microseconds, or None where scamper refuses it.

    ``N[.F][s|ms|us]``: a decimal number (no exponent) with an optional unit;
    without one, ``unit`` microseconds per 1 (seconds for ping -i, 10 ms for
    trace -W).  Fractions finer than a microsecond are refused, as is a
    fraction of ``us``.  (Like scamper's strtoll, each number may start with
    blanks or a sign; a negative number is refused.)
    """
    m = _TV_INT.match(value)
    if m is None:
        return None
    whole = int(m.group("digits"))
    if whole > _LLONG_MAX or (m.group("sign") == "-" and whole != 0):
        return None
    rest = value[m.end():]
    frac = zeros = 0
    if rest.startswith("."):
        body = rest[1:]
        zeros = len(body) - len(body.lstrip("0"))
        f = _TV_INT.match(body)
        if f is None:
            return None
        frac = int(f.group("digits"))
        if frac > _LLONG_MAX or (f.group("sign") == "-" and frac != 0):
            return None
        rest = body[f.end():]
    suffix = {"s": 1_000_000, "ms": 1000, "us": 1, "": unit}.get(rest)
    if suffix is None:
        return None
    unit = suffix
    if frac > unit - 1:
        return None
    if unit == 1:
        return whole if frac == 0 else None
    # the fraction's place: its digits after the leading zeros, shifted by the unit
    zeros += {1_000_000: 0, 100_000: 1, 10_000: 2, 1000: 3, 100: 4, 10: 5}[unit]
    us = whole * unit
    if frac:
        digits = len(str(frac))
        if zeros + digits > 6:
            return None
        us += frac * 10 ** (6 - zeros - digits)
    return us


def _default_ping_timeout_us(wait_us: int) -> int:
    """-W when it is not given: 1 s, or -i if longer (scamper 2026, exactly;
    20211212 kept whole seconds of -i)."""
    return max(1_000_000, wait_us)


def _default_ping_timeout(wait_us: int) -> int:
    """Whole seconds of the default -W (the record's ``timeout``)."""
    return _default_ping_timeout_us(wait_us) // 1_000_000


def _ping_sizes(o: PingOptions) -> tuple[int, int]:
    """(minimum probe size, default probe size) as scamper computes them."""
    if o.dst.version == 4:
        cmps = 20
        if o.record_route:
            cmps += 40
        elif o.timestamp == "tsprespec":
            cmps += 8 * len(o.ts_prespec) + 4
        elif o.timestamp == "tsonly":
            cmps += 40
        elif o.timestamp == "tsandaddr":
            cmps += 36
    else:
        cmps = 40
    plen = len(o.payload)
    if _is_icmp_ping(o.method):
        cmps += 8
        if o.icmp_sum is not None:
            cmps += 2
        if o.method == "icmp-time":
            cmps += 12
        cmps += plen
        default = cmps + (0 if plen else (44 if o.method == "icmp-time" else 56))
    elif _is_tcp_ping(o.method):
        cmps += 20 + plen
        default = cmps
    else:
        cmps += 8 + plen
        default = cmps + (0 if plen else 12)
    return cmps, default


def _parse_tsopt(value: str) -> tuple[str, tuple[ipaddress.IPv4Address, ...]]:
    low = value.lower()
    if low in ("tsonly", "tsandaddr"):
        return low, ()
    if low.startswith("tsprespec="):
        parts = value[len("tsprespec="):].split(",")
        if 1 <= len(parts) <= 4:
            try:
                return "tsprespec", tuple(ipaddress.IPv4Address(p) for p in parts)
            except ValueError:
                pass
    raise CommandError(f"invalid timestamp option '{_show(value)}'")


def parse_ping(args: str) -> PingOptions:
    """Parse the part of a ping command after the word ``ping``."""
    opts, addr = _scan(args, _PING_SPEC, "ping")
    kw: dict[str, object] = {}
    seen: set[str] = set()
    rtr = src = tsopt = None
    size = 0
    timeout = None
    for letter, value in opts:
        if letter in ("r", "S", "T") and letter in seen:
            raise CommandError(f"repeated option -{letter}")
        seen.add(letter)
        v = value or ""
        if letter in _PING_INTS:
            field, name, lo, hi = _PING_INTS[letter]
            number = _int_in(letter, name, lo, hi)(v)
            if letter == "s":
                size = number
            else:
                kw[field] = number
        elif letter == "C":
            kw["icmp_sum"] = _int_in("C", "icmp-sum", 0, 65535)(v)
        elif letter == "W":
            timeout = _parse_ping_timeout(v)
        elif letter == "i":
            kw["wait_us"] = _parse_ping_wait(v)
        elif letter == "B":
            payload = _hex("B", "payload", v)
            if len(payload) > 1000:
                raise CommandError("-B failed: payload limit is 1000 bytes")
            kw["payload"] = payload
        elif letter == "p":
            if not v or not all(c in "0123456789abcdefABCDEF" for c in v):
                raise CommandError("-p failed: pattern must be specified in hex")
            if len(v) > 31:
                raise CommandError("-p failed: pattern can be at most 31 hex chars")
            # an odd number of digits is read with a leading zero nibble
            kw["pattern"] = bytes.fromhex(v if len(v) % 2 == 0 else "0" + v)
        elif letter == "P":
            method = v.lower()
            if method not in PING_METHODS:
                raise CommandError(f"-P failed: invalid ping method '{_show(v)}'")
            kw["method"] = method
        elif letter == "O":
            opt = v.lower()
            if opt == "dl":
                kw["dl"] = True
            elif opt == "dltx":
                kw["dltx"] = True
            elif opt in ("spoof", "nosrc", "tbt"):
                raise _unsupported(f"-O {opt}")
            else:
                raise CommandError(f"-O failed: unknown option '{_show(v)}'")
        elif letter == "M":
            _int_in("M", "path-mtu", 0, 65535)(v)
            raise _unsupported("pseudo-MTU (-M)")
        elif letter == "R":
            kw["record_route"] = True
        elif letter == "r":
            rtr = v
        elif letter == "S":
            src = v
        elif letter == "T":
            tsopt = v

    dst = _addr(addr, "ping")
    if kw.get("record_route") and dst.version != 4:
        # scamper 20211212 accepts this and then crashes (SIGSEGV)
        raise CommandError("record route option only valid with IPv4 dst")
    if kw.get("pattern") and kw.get("payload"):
        raise CommandError("only specify one of pattern or payload")
    if tsopt is not None:
        if dst.version != 4:
            raise CommandError("timestamp option only valid with IPv4 dst")
        if kw.get("record_route"):
            raise CommandError("cannot use both TS and RR options")
        kw["timestamp"], kw["ts_prespec"] = _parse_tsopt(tsopt)
    method = str(kw.get("method", "icmp-echo"))
    if "dport" not in kw:
        kw["dport"] = 0 if _is_icmp_ping(method) else PING_DPORT_DEFAULT
    wait_us = int(kw.get("wait_us", 1_000_000))  # type: ignore[arg-type]
    kw["timeout"], kw["timeout_us"] = divmod(
        timeout if timeout is not None else _default_ping_timeout_us(wait_us), 1_000_000)
    draft = PingOptions(dst=dst, **kw)  # type: ignore[arg-type]
    cmps, default = _ping_sizes(draft)
    if size == 0:
        size = default
    elif size < cmps:
        raise CommandError(f"specified probe size too small (at least {cmps})")
    if draft.icmp_sum is not None and not _is_icmp_ping(method):
        raise CommandError("icmp-csum only valid for ICMP methods")
    if src is not None:
        kw["src"] = _family_addr(src, dst, "source")
    if rtr is not None:
        kw["rtr"] = _family_addr(rtr, dst, "router")
    return attrs.evolve(draft, size=size, src=kw.get("src"), rtr=kw.get("rtr"))


# ---------------------------------------------------------------------------


def parse_command(text: str) -> Options:
    """Parse one scamper command line (``trace``, ``ping``, ``tracelb`` or ``dealias``)."""
    if "\x00" in text:
        raise CommandError("command contains a NUL byte")
    parts = text.split(None, 1)
    if not parts:
        raise CommandError("empty command")
    word, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    rest = rest.rstrip()
    if word == "trace":
        return parse_trace(rest)
    if word == "ping":
        return parse_ping(rest)
    if word == "tracelb":
        from .tracelb_cmd import parse_tracelb  # it imports this module
        return parse_tracelb(rest)
    if word == "dealias":
        from .dealias_cmd import parse_dealias
        return parse_dealias(rest)
    raise CommandError(f"unknown command '{_show(word)}' "
                       "(ixpscamper runs trace, ping, tracelb and dealias)")


def _format_seconds(us: int) -> str:
    s, frac = divmod(us, 1_000_000)
    if not frac:
        return str(s)
    return f"{s}.{frac:06d}".rstrip("0")
