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
    "TracelbReply", "TracelbProbe", "TracelbProbeset", "TracelbNode", "TracelbLink", "Tracelb",
    "TracelbType", "TracelbFlag", "TracelbNodeFlag", "TracelbReplyFlag",
    "DealiasProbedef", "DealiasReply", "DealiasProbe", "DealiasMercator", "DealiasAlly",
    "DealiasRadargun", "DealiasPrefixscan", "DealiasBump", "DealiasMidarest",
    "DealiasMidardiscRound", "DealiasMidardisc", "Dealias",
    "DealiasMethod", "DealiasProbedefMethod", "DealiasResult", "DealiasAllyFlag",
    "DealiasRadargunFlag", "DealiasPrefixscanFlag", "DealiasReplyFlag",
    "NeighbourdiscReply", "NeighbourdiscProbe", "Neighbourdisc", "SniffPkt", "Sniff",
    "StingPkt", "Sting", "UdpprobeReply", "UdpprobeProbe", "Udpprobe", "HttpBuf", "Http",
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


# --------------------------------------------------------------------------
# MDA traceroute (tracelb): mirrors scamper_tracelb_t and its parts

class TracelbType(enum.IntEnum):
    """Tracelb header field 9 (``-P``): what is varied to tell flows apart."""

    UDP_DPORT = 1
    ICMP_ECHO = 2
    UDP_SPORT = 3
    TCP_SPORT = 4
    TCP_ACK_SPORT = 5


class TracelbFlag(enum.IntFlag):
    """Tracelb header field 24."""

    PTR = 0x01


class TracelbNodeFlag(enum.IntFlag):
    """Tracelb node field 2."""

    QTTL = 0x01  # the node's q_ttl is meaningful


class TracelbReplyFlag(enum.IntFlag):
    """Tracelb reply field 4."""

    REPLY_TTL = 0x01
    TCP = 0x02


@attrs.define
class TracelbReply:
    """One reply to a tracelb probe (``scamper_tracelb_reply_t``).

    ``reply_icmp_*`` are meaningful for ICMP replies (no ``TCP`` flag),
    ``reply_tcp_flags`` for TCP ones; ``reply_ttl`` only with ``REPLY_TTL``.
    ``reply_icmp_exts`` holds RFC 4884 extension objects (None: none).
    """

    reply_from: Address
    reply_rx: Timeval = Timeval(0, 0)
    reply_ipid: int = 0
    reply_ttl: int = 0
    reply_flags: int = int(TracelbReplyFlag.REPLY_TTL)
    reply_icmp_type: int = 11
    reply_icmp_code: int = 0
    reply_icmp_q_tos: int = 0
    reply_icmp_q_ttl: int = 1
    reply_icmp_exts: Optional[list[IcmpExt]] = None
    reply_tcp_flags: int = 0


@attrs.define
class TracelbProbe:
    """One probe of a tracelb (``scamper_tracelb_probe_t``); ``attempt`` counts from 0."""

    tx: Timeval = Timeval(0, 0)
    flowid: int = 0
    ttl: int = 1
    attempt: int = 0
    rxs: list[TracelbReply] = attrs.field(factory=builtins.list)


@attrs.define
class TracelbProbeset:
    """The probes sent for one hop of a link (``scamper_tracelb_probeset_t``)."""

    probes: list[TracelbProbe] = attrs.field(factory=builtins.list)


@attrs.define
class TracelbNode:
    """A node (interface) a tracelb found (``scamper_tracelb_node_t``).

    ``addr`` is None for a node seen only as silence.  ``links`` are indices
    into :attr:`Tracelb.links` of the links leaving this node, in the
    order scamper files them (the order of ``Tracelb.links``); warts stores
    only their number, so the reader derives them.
    """

    addr: Optional[Address] = None
    name: Optional[str] = None
    flags: int = 0
    q_ttl: int = 0
    links: list[int] = attrs.field(factory=builtins.list)


@attrs.define
class TracelbLink:
    """A link between two nodes (``scamper_tracelb_link_t``).

    ``from_`` / ``to`` are indices into :attr:`Tracelb.nodes` (``to`` None:
    the link ends in silence); ``sets`` has one probeset per hop (``hopc``).
    """

    from_: int
    to: Optional[int] = None
    sets: list[TracelbProbeset] = attrs.field(factory=builtins.list)

    @property
    def hopc(self) -> int:
        return len(self.sets)


@attrs.define
class Tracelb:
    """An MDA load-balancer traceroute (record type 8, ``scamper_tracelb_t``).

    ``wait_timeout`` is in seconds and ``wait_probe`` in hundredths of a
    second (the units warts stores).  ``probec`` is the number of probes
    sent, ``probec_max`` the limit.  ``nodes`` are in discovery order,
    ``links`` sorted as scamper sorts them.
    """

    dst: Address
    src: Optional[Address] = None
    rtr: Optional[Address] = None
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    start: Timeval = Timeval(0, 0)
    sport: int = 0
    dport: int = 33435
    probe_size: int = 44
    type: int = int(TracelbType.UDP_DPORT)
    firsthop: int = 1
    attempts: int = 2
    confidence: int = 95
    tos: int = 0
    gaplimit: int = 3
    flags: int = 0
    probec: int = 0
    probec_max: int = 3000
    wait_timeout: int = 5
    wait_probe: int = 25
    errmsg: Optional[str] = None
    nodes: list[TracelbNode] = attrs.field(factory=builtins.list)
    links: list[TracelbLink] = attrs.field(factory=builtins.list)


# --------------------------------------------------------------------------
# alias resolution (dealias): mirrors scamper_dealias_t and its parts

class DealiasMethod(enum.IntEnum):
    """Dealias header field 4."""

    MERCATOR = 1
    ALLY = 2
    RADARGUN = 3
    PREFIXSCAN = 4
    BUMP = 5
    MIDAREST = 6  # 2026
    MIDARDISC = 7  # 2026


class DealiasProbedefMethod(enum.IntEnum):
    """Dealias probedef field 4."""

    ICMP_ECHO = 1
    TCP_ACK = 2
    UDP = 3
    TCP_ACK_SPORT = 4
    UDP_DPORT = 5
    TCP_SYN_SPORT = 6


class DealiasResult(enum.IntEnum):
    """Dealias header field 5."""

    NONE = 0
    ALIASES = 1
    NOTALIASES = 2
    HALTED = 3
    IPIDECHO = 4
    ERROR = 5  # 2026


class DealiasAllyFlag(enum.IntFlag):
    NOBS = 1


class DealiasRadargunFlag(enum.IntFlag):
    SHUFFLE = 1


class DealiasPrefixscanFlag(enum.IntFlag):
    NOBS = 1
    CSA = 2


class DealiasReplyFlag(enum.IntFlag):
    IPID32 = 1


@attrs.define
class DealiasProbedef:
    """A probe definition (``scamper_dealias_probedef_t``).

    scamper's union ``un`` is flattened: ``icmp_id`` / ``icmp_csum`` for the
    ICMP method, ``sport`` / ``dport`` for UDP and TCP, ``tcp_flags`` for TCP.
    ``id`` is the definition's index in its method's list (probes refer to
    definitions by it).  ``size`` / ``mtu`` 0 mean unset.
    """

    dst: Address
    src: Optional[Address] = None
    id: int = 0
    method: int = int(DealiasProbedefMethod.ICMP_ECHO)
    ttl: int = 255
    tos: int = 0
    size: int = 0
    mtu: int = 0
    icmp_id: int = 0
    icmp_csum: int = 0
    sport: int = 0
    dport: int = 0
    tcp_flags: int = 0

    @property
    def is_icmp(self) -> bool:
        return self.method == 1

    @property
    def is_tcp(self) -> bool:
        return self.method in (2, 4, 6)

    @property
    def is_udp(self) -> bool:
        return self.method in (3, 5)


@attrs.define
class DealiasReply:
    """A reply to a dealias probe (``scamper_dealias_reply_t``).

    ``proto`` is the IP protocol of the reply (1/58 ICMP, 6 TCP, 17 UDP);
    ``ipid`` the 16-bit IPv4 IP-ID, ``ipid32`` the 32-bit IPv6 fragment id
    (``flags`` has ``IPID32`` when it was seen).
    """

    src: Address
    rx: Timeval = Timeval(0, 0)
    ipid: int = 0
    ipid32: int = 0
    ttl: int = 0
    size: int = 0
    flags: int = 0
    proto: int = 1
    icmp_type: int = 0
    icmp_code: int = 0
    icmp_q_ttl: int = 0
    tcp_flags: int = 0
    icmp_exts: Optional[list[IcmpExt]] = None

    @property
    def is_icmp(self) -> bool:
        return self.proto in (1, 58)

    @property
    def is_tcp(self) -> bool:
        return self.proto == 6


@attrs.define
class DealiasProbe:
    """A probe sent (``scamper_dealias_probe_t``; ``def`` is ``probedef``,
    the definition object itself, one of the method's ``probedefs``)."""

    probedef: DealiasProbedef
    seq: int = 0
    tx: Timeval = Timeval(0, 0)
    ipid: int = 0
    replies: list[DealiasReply] = attrs.field(factory=builtins.list)


@attrs.define
class DealiasMercator:
    """Mercator options (``scamper_dealias_mercator_t``); wait_timeout in seconds."""

    probedef: DealiasProbedef
    attempts: int = 3
    wait_timeout: int = 5

    @property
    def probedefs(self) -> list[DealiasProbedef]:
        return [self.probedef]


@attrs.define
class DealiasAlly:
    """Ally options (``scamper_dealias_ally_t``): two probedefs;
    ``wait_probe`` in ms, ``wait_timeout`` in s."""

    probedefs: list[DealiasProbedef]
    wait_probe: int = 150
    wait_timeout: int = 5
    attempts: int = 5
    fudge: int = 200
    flags: int = 0


@attrs.define
class DealiasRadargun:
    """Radargun options (``scamper_dealias_radargun_t``): ``wait_probe`` and
    ``wait_round`` in ms, ``wait_timeout`` in s."""

    probedefs: list[DealiasProbedef]
    rounds: int = 30
    wait_probe: int = 150
    wait_round: int = 0
    wait_timeout: int = 5
    flags: int = 0


@attrs.define
class DealiasPrefixscan:
    """Prefixscan options (``scamper_dealias_prefixscan_t``): ``a`` the
    address, ``b`` the prefix's base address (length ``prefix``), ``ab`` the
    alias found, ``xs`` addresses excluded; ``wait_probe`` ms, ``wait_timeout`` s."""

    a: Optional[Address] = None
    b: Optional[Address] = None
    ab: Optional[Address] = None
    xs: list[Address] = attrs.field(factory=builtins.list)
    prefix: int = 0
    attempts: int = 2
    fudge: int = 200
    wait_probe: int = 1000
    wait_timeout: int = 5
    flags: int = 0
    replyc: int = 5
    probedefs: list[DealiasProbedef] = attrs.field(factory=builtins.list)


@attrs.define
class DealiasBump:
    """Bump options (``scamper_dealias_bump_t``): two probedefs; ``wait_probe`` ms."""

    probedefs: list[DealiasProbedef]
    wait_probe: int = 1000
    bump_limit: int = 30
    attempts: int = 3


@attrs.define
class DealiasMidarest:
    """MIDAR estimation options (2026, ``scamper_dealias_midarest_t``):
    waits in microseconds."""

    probedefs: list[DealiasProbedef]
    rounds: int = 10
    wait_probe: int = 0
    wait_round: int = 0
    wait_timeout: int = 0


@attrs.define
class DealiasMidardiscRound:
    """One round of a MIDAR discovery schedule: start offset, probedef range."""

    start: Timeval = Timeval(0, 0)
    begin: int = 0
    end: int = 0


@attrs.define
class DealiasMidardisc:
    """MIDAR discovery options (2026, ``scamper_dealias_midardisc_t``):
    ``wait_timeout`` in microseconds; ``startat`` None if not given."""

    probedefs: list[DealiasProbedef]
    wait_timeout: int = 0
    sched: list[DealiasMidardiscRound] = attrs.field(factory=builtins.list)
    startat: Optional[Timeval] = None


DealiasData = Union[DealiasMercator, DealiasAlly, DealiasRadargun, DealiasPrefixscan,
                    DealiasBump, DealiasMidarest, DealiasMidardisc]


@attrs.define
class Dealias:
    """An alias resolution measurement (record type 9, ``scamper_dealias_t``).

    ``data`` is the method's options object (its class matches ``method``;
    None for a method this codec does not know, as scamper reads one).
    ``probes`` in the order sent.
    """

    method: int = int(DealiasMethod.MERCATOR)
    data: Optional[DealiasData] = None
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    start: Timeval = Timeval(0, 0)
    result: int = int(DealiasResult.NONE)
    errmsg: Optional[str] = None
    probes: list[DealiasProbe] = attrs.field(factory=builtins.list)


# --------------------------------------------------------------------------
# other record types, decoded (not yet encoded or rendered)

@attrs.define
class NeighbourdiscReply:
    """A neighbour discovery reply (``scamper_neighbourdisc_reply_t``)."""

    rx: Timeval
    mac: Address


@attrs.define
class NeighbourdiscProbe:
    """A neighbour discovery probe (``scamper_neighbourdisc_probe_t``)."""

    tx: Timeval = Timeval(0, 0)
    rxs: list[NeighbourdiscReply] = attrs.field(factory=builtins.list)


@attrs.define
class Neighbourdisc:
    """ARP / IPv6 neighbour discovery (record type 10, ``scamper_neighbourdisc_t``);
    ``wait_timeout`` in milliseconds, ``method`` 1 ARP, 2 NSOL."""

    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    ifname: Optional[str] = None
    start: Timeval = Timeval(0, 0)
    method: int = 0
    wait_timeout: int = 0
    flags: int = 0
    attempts: int = 0
    replyc: int = 0
    src_ip: Optional[Address] = None
    src_mac: Optional[Address] = None
    dst_ip: Optional[Address] = None
    dst_mac: Optional[Address] = None
    errmsg: Optional[str] = None
    probes: list[NeighbourdiscProbe] = attrs.field(factory=builtins.list)


@attrs.define
class SniffPkt:
    """A packet captured by sniff (``scamper_sniff_pkt_t``)."""

    tv: Timeval
    data: bytes


@attrs.define
class Sniff:
    """A packet capture (record type 13, ``scamper_sniff_t``); ``limit_time`` in seconds."""

    src: Address
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    start: Timeval = Timeval(0, 0)
    finish: Timeval = Timeval(0, 0)
    stop_reason: int = 0
    limit_pktc: int = 0
    limit_time: int = 0
    icmpid: int = 0
    errmsg: Optional[str] = None
    pkts: list[SniffPkt] = attrs.field(factory=builtins.list)


@attrs.define
class StingPkt:
    """A packet of a sting measurement (``scamper_sting_pkt_t``)."""

    flags: int
    tv: Timeval
    data: bytes


@attrs.define
class Sting:
    """A sting measurement (record type 12, ``scamper_sting_t``): ``mean`` and
    ``inter`` in milliseconds, ``hsrtt`` the handshake RTT as a Timeval."""

    src: Address
    dst: Address
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    sport: int = 0
    dport: int = 0
    count: int = 0
    mean: int = 0
    inter: int = 0
    dist: int = 0
    synretx: int = 0
    dataretx: int = 0
    seqskip: int = 0
    data: bytes = b""
    start: Timeval = Timeval(0, 0)
    hsrtt: Timeval = Timeval(0, 0)
    dataackc: int = 0
    holec: int = 0
    result: int = 0
    errmsg: Optional[str] = None
    pkts: list[StingPkt] = attrs.field(factory=builtins.list)


@attrs.define
class UdpprobeReply:
    """A reply to a udpprobe probe (``scamper_udpprobe_reply_t``)."""

    rx: Timeval = Timeval(0, 0)
    data: bytes = b""
    ifname: Optional[str] = None


@attrs.define
class UdpprobeProbe:
    """A udpprobe probe (``scamper_udpprobe_probe_t``)."""

    tx: Timeval = Timeval(0, 0)
    sport: int = 0
    replies: list[UdpprobeReply] = attrs.field(factory=builtins.list)


@attrs.define
class Udpprobe:
    """A UDP probe measurement (record type 16, 2026, ``scamper_udpprobe_t``):
    ``wait_timeout`` / ``wait_probe`` in microseconds, ``data`` the payload."""

    src: Optional[Address] = None
    dst: Optional[Address] = None
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    sport: int = 0
    dport: int = 0
    start: Timeval = Timeval(0, 0)
    wait_timeout: int = 0
    wait_probe: int = 0
    flags: int = 0
    data: bytes = b""
    stop: int = 0
    stop_count: int = 0
    probe_count: int = 0
    errmsg: Optional[str] = None
    probes: list[UdpprobeProbe] = attrs.field(factory=builtins.list)


@attrs.define
class HttpBuf:
    """A chunk of an HTTP exchange (``scamper_http_buf_t``): ``dir`` 0 rx / 1 tx,
    ``type`` 0 data, 1 header, 2 TLS."""

    dir: int = 0
    type: int = 0
    tv: Timeval = Timeval(0, 0)
    data: bytes = b""


@attrs.define
class Http:
    """An HTTP(S) fetch (record type 15, 2026, ``scamper_http_t``): ``type`` 0
    HTTPS / 1 HTTP, ``hsrtt`` in microseconds, ``maxtime`` a Timeval."""

    src: Optional[Address] = None
    dst: Optional[Address] = None
    list: Optional[WartsList] = None
    cycle: Optional[CycleStart] = None
    userid: int = 0
    sport: int = 0
    dport: int = 0
    start: Timeval = Timeval(0, 0)
    stop: int = 0
    type: int = 0
    host: Optional[str] = None
    file: Optional[str] = None
    headers: list[str] = attrs.field(factory=builtins.list)
    hsrtt: int = 0
    flags: int = 0
    maxtime: Timeval = Timeval(0, 0)
    errmsg: Optional[str] = None
    ech_status: int = 0
    ech_outer_sni: Optional[str] = None
    ech_config_list: Optional[bytes] = None
    ech_retry_config: Optional[bytes] = None
    bufs: list[HttpBuf] = attrs.field(factory=builtins.list)
