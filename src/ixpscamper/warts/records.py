"""Warts record classes: what a warts file holds, as typed attrs objects.

These are plain mutable attrs classes (``attrs.define``, slotted): the prober
builds them up as replies arrive, and the decoder makes hundreds of thousands
of them per second, which frozen classes would slow down several times over.

Conventions used by every class here:

* IP addresses are :class:`ipaddress.IPv4Address` / :class:`ipaddress.IPv6Address`;
  link-layer addresses (warts address types 3 and 4) are :class:`LinkAddress`.
* Times are :class:`Timeval` ``(sec, usec)`` named tuples; a plain
  ``(sec, usec)`` tuple is accepted anywhere a Timeval is expected.
* Round-trip times are ``int`` microseconds, stored as warts stores them
  (unsigned 32 bits: a negative RTT measured by scamper is 2**32 - n).
* Defaults are what scamper 20211212 writes for a plain ``trace`` / ``ping``.
* ``list`` / ``cycle`` attributes hold the :class:`WartsList` and
  :class:`CycleStart` (or :class:`CycleDefinition`) objects themselves; warts
  ids are assigned by the writer and resolved by the reader.
"""

from __future__ import annotations

import builtins
import enum
import ipaddress
from typing import NamedTuple, Optional, Union

import attrs

__all__ = [
    "Timeval", "LinkAddress", "Address",
    "WartsList", "CycleStart", "CycleDefinition", "CycleStop", "UnknownRecord",
    "MplsLabel", "IcmpExt", "TraceHop", "PmtudNote", "TracePmtud", "Trace",
    "PingReply", "Ping",
    "RecordType", "AddrType", "TraceMethod", "TraceStop", "TraceFlag", "TraceGapAction",
    "HopFlag", "PmtudNoteType", "PingMethod", "PingStop", "PingFlag", "PingReplyFlag",
    "TCP_FIN", "TCP_SYN", "TCP_RST", "TCP_PSH", "TCP_ACK", "TCP_URG", "TCP_ECE", "TCP_CWR",
]


class Timeval(NamedTuple):
    """A struct timeval: seconds since the Unix epoch and microseconds."""

    sec: int
    usec: int

    @classmethod
    def from_ns(cls, ns: int) -> "Timeval":
        """The timeval of a time in integer nanoseconds (microseconds truncated)."""
        return cls(ns // 1_000_000_000, (ns // 1000) % 1_000_000)


@attrs.define(frozen=True)
class LinkAddress:
    """A link-layer address: warts address type 3 (Ethernet MAC) or 4 (FireWire EUI-64)."""

    raw: bytes
    type: int = 3

    def __str__(self) -> str:
        return ":".join(f"{b:02x}" for b in self.raw)

    @property
    def version(self) -> int:
        """0: not an IP version (so ``addr.version == 4`` works on any address)."""
        return 0


Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address, LinkAddress]


class RecordType(enum.IntEnum):
    """Warts record types (the u16 in the 8-byte record header)."""

    LIST = 0x01
    CYCLE_START = 0x02
    CYCLE_DEF = 0x03
    CYCLE_STOP = 0x04
    ADDR = 0x05  # deprecated file-wide address table; never written
    TRACE = 0x06
    PING = 0x07
    TRACELB = 0x08
    DEALIAS = 0x09
    NEIGHBOURDISC = 0x0A
    TBIT = 0x0B
    STING = 0x0C
    SNIFF = 0x0D
    HOST = 0x0E
    HTTP = 0x0F
    UDPPROBE = 0x10
    OWAMP = 0x20


class AddrType(enum.IntEnum):
    """Address types inside warts address fields."""

    IPV4 = 1
    IPV6 = 2
    ETHERNET = 3
    FIREWIRE = 4


class TraceMethod(enum.IntEnum):
    """Trace header field 11 (``-P``)."""

    ICMP_ECHO = 1
    UDP = 2
    TCP = 3
    ICMP_ECHO_PARIS = 4
    UDP_PARIS = 5
    TCP_ACK = 6


class TraceStop(enum.IntEnum):
    """Trace stop reasons (header field 6)."""

    NONE = 0
    COMPLETED = 1
    UNREACH = 2
    ICMP = 3
    LOOP = 4
    GAPLIMIT = 5
    ERROR = 6
    HOPLIMIT = 7
    GSS = 8
    HALTED = 9
    INPROGRESS = 10  # 2026


class TraceGapAction(enum.IntEnum):
    """Trace header field 21."""

    STOP = 1
    LASTDITCH = 2


class TraceFlag(enum.IntFlag):
    """Trace flags (header fields 8 and 32)."""

    ALLATTEMPTS = 0x01
    PMTUD = 0x02
    DL = 0x04
    IGNORETTLDST = 0x08
    DOUBLETREE = 0x10
    ICMPCSUMDP = 0x20
    CONSTPAYLOAD = 0x40
    RXERR = 0x80
    PTR = 0x100
    RAW = 0x200  # 2026
    BACKWARDS = 0x400  # 2026


class HopFlag(enum.IntFlag):
    """Trace hop flags (hop field 4)."""

    TS_SOCK_RX = 0x01
    TS_DL_TX = 0x02
    TS_DL_RX = 0x04
    TS_TSC = 0x08
    REPLY_TTL = 0x10
    TCP = 0x20
    UDP = 0x40
    PENDING = 0x80  # 2026


class PmtudNoteType(enum.IntEnum):
    """Types of PMTUD notes."""

    PTB = 1
    PTB_BAD = 2
    SILENCE = 3


class PingMethod(enum.IntEnum):
    """Ping header field 16 (``-P``)."""

    ICMP_ECHO = 0
    TCP_ACK = 1
    TCP_ACK_SPORT = 2
    UDP = 3
    UDP_DPORT = 4
    ICMP_TIME = 5
    TCP_SYN = 6
    TCP_SYNACK = 7
    TCP_RST = 8
    TCP_SYN_SPORT = 9  # 2026
    UDP_SPORT = 10  # 2026


class PingStop(enum.IntEnum):
    """Ping stop reasons (header field 6)."""

    NONE = 0
    DONE = 1
    ERROR = 2
    HALTED = 3
    INPROGRESS = 4  # 2026


class PingFlag(enum.IntFlag):
    """Ping flags (header fields 22 and 30)."""

    V4RR = 0x01
    SPOOF = 0x02
    PAYLOAD = 0x04
    TSONLY = 0x08
    TSANDADDR = 0x10
    ICMPSUM = 0x20
    DL = 0x40
    TBT = 0x80
    NOSRC = 0x100
    RAW = 0x200  # 2026
    SOCKRX = 0x400  # 2026
    DLTX = 0x800  # 2026


class PingReplyFlag(enum.IntFlag):
    """Ping reply flags (reply field 2)."""

    REPLY_TTL = 0x01
    REPLY_IPID = 0x02
    PROBE_IPID = 0x04


TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20
TCP_ECE = 0x40
TCP_CWR = 0x80


# --------------------------------------------------------------------------
# lists and cycles

@attrs.define
class WartsList:
    """A list record (type 1): the measurement list the results belong to.

    ``id`` is the id a person gave the list (scamper: 0), not the warts id.
    scamper writes name and description ``default``; a remote scamper writes
    name ``IP:PORT_N``, no description, and ``monitor`` (``-M``).
    """

    name: str = "default"
    id: int = 0
    description: Optional[str] = "default"
    monitor: Optional[str] = None


@attrs.define
class CycleStart:
    """A cycle start record (type 2).

    ``id`` is the human cycle id (scamper: 0; remote scamper: 1);
    ``stop_time`` is only present if the writer knew it (normally 0).
    """

    list: WartsList = attrs.field(factory=WartsList)
    start_time: int = 0
    id: int = 0
    stop_time: int = 0
    hostname: Optional[str] = None


@attrs.define
class CycleDefinition(CycleStart):
    """A cycle definition record (type 3): a cycle whose start is in another file."""


@attrs.define
class CycleStop:
    """A cycle stop record (type 4): closes ``cycle`` at ``stop_time`` (Unix seconds)."""

    cycle: CycleStart
    stop_time: int = 0


@attrs.define
class UnknownRecord:
    """A record of a type this codec does not decode; its body is kept verbatim."""

    type: int
    data: bytes


# --------------------------------------------------------------------------
# traceroute

@attrs.define(frozen=True)
class MplsLabel:
    """One MPLS label stack entry from an RFC 4950 ICMP extension."""

    label: int
    exp: int = 0
    s: int = 0
    ttl: int = 0


@attrs.define
class IcmpExt:
    """One RFC 4884 ICMP extension object (trace hop field 17)."""

    class_num: int
    class_type: int
    data: bytes = b""

    @property
    def is_mpls(self) -> bool:
        """True for an MPLS label stack object (class 1, type 1)."""
        return self.class_num == 1 and self.class_type == 1

    @property
    def mpls_labels(self) -> list[MplsLabel]:
        """The MPLS label stack entries of an MPLS object (empty otherwise)."""
        if not self.is_mpls:
            return []
        out = []
        d = self.data
        for i in range(0, len(d) - len(d) % 4, 4):
            v = int.from_bytes(d[i:i + 4], "big")
            out.append(MplsLabel(v >> 12, (v >> 9) & 7, (v >> 8) & 1, v & 0xFF))
        return out

    @classmethod
    def mpls(cls, labels: list[MplsLabel]) -> "IcmpExt":
        """Build an MPLS label stack object from entries."""
        data = b"".join(
            (((m.label & 0xFFFFF) << 12) | ((m.exp & 7) << 9) | ((m.s & 1) << 8) | (m.ttl & 0xFF))
            .to_bytes(4, "big") for m in labels)
        return cls(1, 1, data)


@attrs.define
class TraceHop:
    """One reply to a traceroute probe (a warts hop record).

    ``probe_id`` is the attempt number counted from 1.  ``icmp_type`` /
    ``icmp_code`` / ``icmp_q_*`` are meaningful for ICMP replies (hop flags
    have neither ``TCP`` nor ``UDP``); ``tcp_flags`` for TCP replies.
    ``icmp_q_ipl`` of ``None`` means "the probe size" (what the reader fills
    in when the field is absent).  ``icmp_nhmtu`` is the next-hop MTU of a
    packet-too-big.
    """

    addr: Address
    probe_ttl: int = 1
    probe_id: int = 1
    probe_size: int = 44
    rtt: int = 0
    flags: int = int(HopFlag.TS_SOCK_RX | HopFlag.REPLY_TTL)
    reply_ttl: int = 0
    reply_tos: int = 0
    reply_ipid: int = 0
    reply_size: int = 0
    icmp_type: int = 0
    icmp_code: int = 0
    icmp_q_ttl: int = 1
    icmp_q_ipl: Optional[int] = None
    icmp_q_tos: int = 0
    icmp_nhmtu: int = 0
    tcp_flags: int = 0
    tx: Optional[Timeval] = None
    icmpext: Optional[list[IcmpExt]] = None
    name: Optional[str] = None

    @property
    def is_tcp(self) -> bool:
        return bool(self.flags & 0x20)

    @property
    def is_udp(self) -> bool:
        return bool(self.flags & 0x40)

    @property
    def is_icmp(self) -> bool:
        return not (self.flags & 0x60)


@attrs.define
class PmtudNote:
    """A PMTUD note: ``type`` (:class:`PmtudNoteType`), inferred next-hop MTU,
    and ``reply``: index into :attr:`TracePmtud.hops` of the reply it refers to."""

    type: int = 0
    nhmtu: int = 0
    reply: Optional[int] = None


@attrs.define
class TracePmtud:
    """The PMTUD optional block (type 1) written by ``trace -M``."""

    ifmtu: int = 0
    pmtu: int = 0
    outmtu: int = 0
    ver: int = 1
    hops: list[TraceHop] = attrs.field(factory=builtins.list)
    notes: list[PmtudNote] = attrs.field(factory=builtins.list)


@attrs.define
class Trace:
    """A traceroute (record type 6).

    ``hops`` holds every reply, in increasing ``probe_ttl`` and, within one
    TTL, arrival order (the order warts stores them).  ``hop_count`` is the
    number of TTLs covered (the text renderer prints that many lines).
    ``rtr`` is the next-hop router given with ``-r``.  ``flags`` is the full
    32-bit :class:`TraceFlag` set.  ``dport`` carries the ICMP checksum for
    icmp-paris (with ``TraceFlag.ICMPCSUMDP``), as scamper stores it.
    """

    dst: Address
    src: Optional[Address] = None
    rtr: Optional[Address] = None
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    start: Timeval = Timeval(0, 0)
    stop_reason: int = int(TraceStop.NONE)
    stop_data: int = 0
    flags: int = 0
    attempts: int = 2
    hoplimit: int = 0
    method: int = int(TraceMethod.UDP_PARIS)
    probe_size: int = 44
    sport: int = 0
    dport: int = 33435
    firsthop: int = 1
    tos: int = 0
    wait: int = 5
    loops: int = 1
    hop_count: int = 0
    gaplimit: int = 5
    gapaction: int = int(TraceGapAction.STOP)
    loopaction: int = 0
    probec: int = 0
    wait_probe: int = 0
    confidence: int = 0
    userid: int = 0
    offset: int = 0
    squeries: int = 1
    stop_hop: int = 0
    errmsg: Optional[str] = None
    hops: list[TraceHop] = attrs.field(factory=builtins.list)
    pmtud: Optional[TracePmtud] = None
    lastditch: Optional[list[TraceHop]] = None
    # doubletree and any block type this codec does not know, verbatim:
    # (block type, block body)
    other_blocks: list[tuple[int, bytes]] = attrs.field(factory=builtins.list)


# --------------------------------------------------------------------------
# ping

@attrs.define
class PingReply:
    """One reply to a ping probe (a warts ping reply record).

    ``probe_id`` is the 0-based probe sequence number.  ``reply_ipid`` and
    ``probe_ipid`` are the 16-bit IP-IDs of IPv4 replies; ``reply_ipid32``
    is the 32-bit one (IPv6 fragment id).  ``reply_proto`` is the IP protocol
    of the reply (1, 6, 17, 58).  ``rr`` holds IPv4 record-route entries,
    ``ts_times`` / ``ts_addrs`` the IPv4 timestamp option, ``tsreply`` the
    (originate, receive, transmit) of an ICMP timestamp reply.
    """

    addr: Address
    probe_id: int = 0
    rtt: int = 0
    flags: int = int(PingReplyFlag.REPLY_TTL)
    reply_ttl: int = 0
    reply_size: int = 0
    reply_proto: int = 1
    icmp_type: int = 0
    icmp_code: int = 0
    tcp_flags: int = 0
    reply_ipid: int = 0
    probe_ipid: int = 0
    reply_ipid32: int = 0
    tx: Optional[Timeval] = None
    rr: Optional[list[Address]] = None
    ts_times: Optional[list[int]] = None
    ts_addrs: Optional[list[Address]] = None
    tsreply: Optional[tuple[int, int, int]] = None
    # 2026 additions (read, and written only when set)
    probe_sport: Optional[int] = None
    reply_tos: Optional[int] = None
    ifname: Optional[str] = None
    nhmtu: Optional[int] = None

    @property
    def is_icmp(self) -> bool:
        """True if the reply is ICMP (protocol 1 from IPv4, 58 from IPv6)."""
        return self.reply_proto == (1 if self.addr.version == 4 else 58)

    @property
    def is_tcp(self) -> bool:
        return self.reply_proto == 6

    @property
    def is_udp(self) -> bool:
        return self.reply_proto == 17


def _default_timeout(self: "Ping") -> int:
    return self.wait


@attrs.define
class Ping:
    """A ping (record type 7).

    ``replies`` holds every reply in increasing ``probe_id``, several replies
    to one probe in arrival order.  ``pattern`` is the ``-p`` pattern, or the
    ``-B`` payload when ``flags`` has ``PingFlag.PAYLOAD``.  ``timeout``
    defaults to ``wait``.  ``rtr`` is the next-hop router given with ``-r``.
    """

    dst: Address
    src: Optional[Address] = None
    rtr: Optional[Address] = None
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    start: Timeval = Timeval(0, 0)
    stop_reason: int = int(PingStop.DONE)
    stop_data: int = 0
    pattern: bytes = b""
    probe_count: int = 4
    probe_size: int = 84
    wait: int = 1
    ttl: int = 64
    reply_count: int = 0
    ping_sent: int = 0
    method: int = int(PingMethod.ICMP_ECHO)
    sport: int = 0
    dport: int = 0
    userid: int = 0
    flags: int = 0
    tos: int = 0
    probe_tsps: Optional[list[Address]] = None
    icmp_csum: int = 0
    pmtu: int = 0
    timeout: int = attrs.field(default=attrs.Factory(_default_timeout, takes_self=True))
    wait_us: int = 0
    tcp_ack: int = 0
    tcp_seq: int = 0
    timeout_us: int = 0
    errmsg: Optional[str] = None
    replies: list[PingReply] = attrs.field(factory=builtins.list)
