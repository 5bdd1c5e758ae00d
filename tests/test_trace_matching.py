"""Which ICMP errors a traceroute takes as replies to its probes.

The probes are the prober's own (``TraceRun.build_probe``); the replies are
built with scapy, an independent implementation of the headers, quoting
those probes the way a router does (IP header + the first 8 bytes), or
forging them the way test_prober_lab.py's storm does: the right ports and an
IP-ID in range, but a UDP checksum that no probe carried.
"""

from __future__ import annotations

import ipaddress
import random

import pytest
from scapy.all import ICMP, IP, UDP, ICMPv6DestUnreach, ICMPv6TimeExceeded, IPv6
from twisted.internet.task import Clock

from ixpscamper.prober import packets
from ixpscamper.prober.trace import TraceRun, TraceSpec
from ixpscamper.warts.records import TraceMethod
from tests.conftest import requires_root, requires_tool

SRC, DST, HOP = "192.0.2.10", "198.51.100.66", "192.0.2.1"
SRC6, DST6, HOP6 = "2001:db8:1::10", "2001:db8:d::66", "2001:db8:1::1"
SPORT = 0xB1A5


class FakeIO:
    def __init__(self) -> None:
        self.clock = Clock()
        self.sent: list[bytes] = []

    def now_ns(self) -> int:
        return int(self.clock.seconds() * 1e9)

    def request_send(self) -> None:
        pass

    def transmit(self, pkt: bytes) -> int:
        self.sent.append(pkt)
        return self.now_ns()

    def finished(self) -> None:
        pass


def trace(method=TraceMethod.UDP_PARIS, v6=False, probes=3, **kw) -> tuple[TraceRun, FakeIO]:
    """A trace that has sent ``probes`` probes (one per TTL: -q 1) and had no reply."""
    io = FakeIO()
    spec = TraceSpec(dst=ipaddress.ip_address(DST6 if v6 else DST),
                     src=ipaddress.ip_address(SRC6 if v6 else SRC), method=method,
                     sport=SPORT, attempts=1, **kw)
    run = TraceRun(spec, io)
    run.start(send=False)
    for _ in range(probes):
        run.send_now()
        io.clock.advance(spec.wait)  # time out: the next TTL
    assert len(io.sent) == probes and len(run.probes) == probes
    return run, io


def quote_v4(probe: bytes) -> bytes:
    """scapy's time exceeded from HOP quoting ``probe`` as routers do (20 + 8 bytes)."""
    return bytes(IP(src=HOP, dst=SRC, ttl=63) / ICMP(type=11, code=0) / probe[:28])


def forged_v4(probe: bytes, *, udp_sum=None, ipid=None, dst=None, sport=None, dport=None,
              unreach=False) -> bytes:
    """An ICMP error quoting ``probe`` with fields changed: a time exceeded from
    HOP, or (``unreach``) a port unreachable from DST, which would end the trace."""
    inner = IP(probe)
    if ipid is not None:
        inner.id = ipid
    if dst is not None:
        inner.dst = dst
    if sport is not None:
        inner[UDP].sport = sport
    if dport is not None:
        inner[UDP].dport = dport
    inner.chksum = None  # a router quotes a consistent IP header
    raw = bytearray(bytes(inner))
    if udp_sum is not None:
        raw[26:28] = udp_sum.to_bytes(2, "big")
    outer = IP(src=DST, dst=SRC, ttl=60) / ICMP(type=3, code=3) if unreach else \
        IP(src=HOP, dst=SRC, ttl=63) / ICMP(type=11, code=0)
    return bytes(outer / bytes(raw[:28]))


def forged_v6(probe: bytes, *, udp_sum=None, flow=None, typ="unreach") -> bytes:
    inner = IPv6(probe)
    if flow is not None:
        inner.fl = flow
    raw = bytearray(bytes(inner))
    if udp_sum is not None:
        raw[46:48] = udp_sum.to_bytes(2, "big")
    err = ICMPv6DestUnreach(code=4) if typ == "unreach" else ICMPv6TimeExceeded()
    return bytes(IPv6(src=DST6 if typ == "unreach" else HOP6, dst=SRC6) / err / bytes(raw))


def offer(run: TraceRun, pkt: bytes) -> bool:
    rep = packets.dissect(pkt)
    assert rep is not None
    return run.on_reply(rep, run.io.now_ns(), False)


def answered(run: TraceRun) -> list[int]:
    """The ids of the probes a reply was taken for."""
    return [p.id for p in run.probes if p.replies]


def udp_sum(probe: bytes) -> int:
    off = 20 if probe[0] >> 4 == 4 else 40
    return int.from_bytes(probe[off + 6:off + 8], "big")


def test_probes_are_what_scapy_reads() -> None:
    run, io = trace()
    for pid, probe in enumerate(io.sent):
        p = IP(probe)
        assert (p.id, p[UDP].sport, p[UDP].dport, p[UDP].chksum) == (pid + 1, SPORT, 33435, pid + 1)
        assert p[UDP].chksum == UDP(bytes(p[UDP]))[UDP].chksum  # a valid checksum
        del p[UDP].chksum
        assert IP(bytes(p))[UDP].chksum == pid + 1  # scapy computes the same one


def test_genuine_time_exceeded_is_matched() -> None:
    run, io = trace()
    assert offer(run, quote_v4(io.sent[1]))
    assert answered(run) == [1] and run.probes[1].ttl == 2


@pytest.mark.parametrize("ipid", [0, 1, 2, 3])
def test_forged_checksum_with_ipid_in_range_is_refused(ipid: int) -> None:
    # The storm's packet: right sport, dport and destination, an IP-ID naming
    # a probe, a checksum no probe carried.  scamper 20211212 takes it (its
    # IP-ID fallback); ixpscamper does not.
    run, io = trace()
    sums = {udp_sum(p) for p in io.sent}
    rng = random.Random(ipid)
    for _ in range(50):
        s = rng.randrange(1, 65536)
        if s in sums or s == ipid:
            continue
        assert not offer(run, forged_v4(io.sent[-1], udp_sum=s, ipid=ipid, unreach=True))
    assert answered(run) == [] and not run.done


def test_ipid_rewritten_but_checksum_intact_is_matched() -> None:
    # what scamper's IP-ID fudge is for: a router that byte swaps the quoted
    # IP-ID, or increments it; the checksum still is the probe's
    run, io = trace()
    assert offer(run, forged_v4(io.sent[1], ipid=0x0200))
    assert offer(run, forged_v4(io.sent[2], ipid=4))  # one more than the last sent
    assert answered(run) == [1, 2]


def test_ipid_beyond_the_fudge_is_refused_as_by_scamper() -> None:
    run, io = trace()
    assert not offer(run, forged_v4(io.sent[0], ipid=7))
    assert answered(run) == []


def test_quote_of_another_destination_is_refused() -> None:
    run, io = trace()
    assert not offer(run, forged_v4(io.sent[0], dst="198.51.100.67"))
    assert offer(run, forged_v4(io.sent[0]))


def test_classic_udp_needs_the_checksum_of_that_probe() -> None:
    run, io = trace(method=TraceMethod.UDP)
    # probe 1's ports, probe 0's checksum: not a copy of any probe
    assert not offer(run, forged_v4(io.sent[1], udp_sum=udp_sum(io.sent[0])))
    assert not offer(run, forged_v4(io.sent[1], udp_sum=0x1234))
    assert offer(run, forged_v4(io.sent[1]))
    assert answered(run) == [1]


def test_const_payload_v4_by_ipid_with_its_constant_checksum() -> None:
    run, io = trace(const_payload=True, payload=bytes(16))
    assert len({udp_sum(p) for p in io.sent}) == 1  # the checksum names no probe
    assert not offer(run, forged_v4(io.sent[2], udp_sum=udp_sum(io.sent[2]) ^ 0x0101))
    assert offer(run, forged_v4(io.sent[2]))
    assert answered(run) == [2]


def test_v6_paris_by_checksum_and_forged_checksum_refused() -> None:
    run, io = trace(v6=True)
    assert not offer(run, forged_v6(io.sent[1], udp_sum=0x7777))
    assert not offer(run, forged_v6(io.sent[1], udp_sum=0))
    assert offer(run, forged_v6(io.sent[1], typ="ttl"))
    assert answered(run) == [1]


def test_v6_const_payload_needs_flow_and_checksum() -> None:
    run, io = trace(v6=True, const_payload=True, payload=bytes(12))
    assert not offer(run, forged_v6(io.sent[0], udp_sum=udp_sum(io.sent[0]) ^ 0xFFFF))
    assert offer(run, forged_v6(io.sent[0], typ="ttl"))
    assert answered(run) == [0]


def test_storm_never_matches() -> None:
    # the lab storm in miniature, with our sport: 20000 port unreachables of
    # random checksum and IP-ID 1..7; none is a copy of a probe
    run, io = trace(probes=4)
    sums = {udp_sum(p) for p in io.sent}
    rng = random.Random(1)
    template = forged_v4(io.sent[0], unreach=True)
    matched = 0
    for _ in range(20000):
        s = rng.randrange(1, 65536)
        if s in sums:
            continue
        pkt = bytearray(template)
        inner = 28  # outer IP 20 + ICMP 8
        pkt[inner + 4:inner + 6] = rng.randrange(1, 8).to_bytes(2, "big")
        pkt[inner + 26:inner + 28] = s.to_bytes(2, "big")
        matched += offer(run, bytes(pkt))
    assert matched == 0 and answered(run) == []


def test_echo_reply_must_come_from_the_destination() -> None:
    run, io = trace(method=TraceMethod.ICMP_ECHO_PARIS)
    assert IP(io.sent[1])[ICMP].id == SPORT and IP(io.sent[1])[ICMP].seq == 1
    other = bytes(IP(src="198.51.100.67", dst=SRC) / ICMP(type=0, id=SPORT, seq=1))
    assert not offer(run, other)
    assert offer(run, bytes(IP(src=DST, dst=SRC) / ICMP(type=0, id=SPORT, seq=1)))
    assert answered(run) == [1]


# -- in the lab: a storm aimed at the trace, against the real scamper without one -----

FORGE = r"""
import random, socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
me = socket.inet_aton("198.51.100.66"); coll = socket.inet_aton("192.0.2.10")
sport = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
rng = random.Random(2)
print("ready", flush=True)
n = 0
end = time.time() + float(sys.argv[2])
while time.time() < end:
    ipid = rng.randrange(1, 4)
    udp_sum = rng.randrange(4, 65536)  # never a checksum the first probes carry (1..3)
    udp = struct.pack("!HHHH", sport, 33435, 24, udp_sum)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 44, ipid, 0x4000, 1, 17, 0, coll, me)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    body = struct.pack("!BBHI", 3, 3, 0, 0) + ip + udp
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    try:
        s.sendto(body, ("192.0.2.10", 0)); n += 1
    except OSError:
        time.sleep(0.001)
    if n % 20 == 0:
        time.sleep(0.0005)  # a storm, not a livelock of the lab's two cores
print(n, flush=True)
"""


@requires_root
@requires_tool("scamper")
@requires_tool("sc_warts2json")
def test_lab_forged_port_unreachables_aimed_at_the_trace(tmp_path):
    import subprocess
    import sys

    from tests.test_prober_lab import assert_same, run_ours, run_scamper

    from ixpscamper.lab import Lab

    sport = 45000
    cmd = f"trace -s {sport} -q 1 {DST}"
    lab = Lab.create()
    try:
        theirs = run_scamper(lab, tmp_path, [cmd])
        forge = lab.popen("dst", [sys.executable, "-c", FORGE, str(sport), "20"],
                          stdout=subprocess.PIPE, text=True)
        try:
            assert forge.stdout.readline().strip() == "ready"
            ours, _ = run_ours(lab, tmp_path, [cmd])
        finally:
            forge.terminate()
            forge.wait(timeout=10)
        # port unreachables "from the destination" quoting our source port,
        # dport and an IP-ID naming probe 1..3, at hundreds a second: taken
        # for the destination's answer, they would end the trace at TTL 1
        assert [h["addr"] for h in ours[0]["hops"]] == ["192.0.2.1", "198.18.1.2", DST]
        assert_same(ours, theirs)
    finally:
        lab.teardown()
