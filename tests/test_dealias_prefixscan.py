"""dealias -m prefixscan and -m bump, sans-IO: the parser, the scan order and the
state machines on simulated routers (tests/test_dealias_engine.py's Router and IO).

The lab comparisons with Debian scamper are in tests/test_dealias_lab.py.
"""

from __future__ import annotations

import io
import ipaddress

import pytest

from ixpscamper.commands import CommandError
from ixpscamper.dealias_cmd import parse_dealias
from ixpscamper.prober.dealias import DealiasRun, unsupported_dealias
from ixpscamper.prober.prefixscan import scan_order
from ixpscamper.prober.specs import unsupported
from ixpscamper.warts import encode_record, iter_records
from ixpscamper.warts.records import DealiasPrefixscanFlag, DealiasResult
from tests.test_dealias_engine import IO, SRC, Router, run

A = "198.18.1.2"


def ips(*xs):
    return [ipaddress.ip_address(x) for x in xs]


def dsts(rec):
    return [str(p.probedef.dst) for p in rec.probes]


# -- the parser ---------------------------------------------------------------

def test_parse_prefixscan_defaults_and_b_as_given():
    o = parse_dealias(f"-m prefixscan -p '-P icmp-echo' {A} 198.18.11.1/29", pid=0x1234)
    assert (o.method, o.attempts, o.replyc, o.fudge, o.wait_probe_ms, o.wait_timeout) == \
        ("prefixscan", 2, 5, 200, 1000, 5)
    # B keeps its host bits: they decide the order of the scan
    assert (str(o.b), o.prefixlen) == ("198.18.11.1", 29)
    assert [str(p.dst) for p in o.probedefs] == [A] and o.probedefs[0].method == "icmp-echo"
    assert o.to_command() == f"dealias -m prefixscan {A} 198.18.11.1/29"
    o = parse_dealias(f"-m prefixscan -p '-P udp' -O inseq -O nobs -x 198.18.11.3 -o 3 -q 4 {A} 198.18.11.0/30")
    assert (o.fudge, o.nobs, o.replyc, o.attempts) == (0, True, 3, 4)
    assert o.excludes == tuple(ips("198.18.11.3"))


@pytest.mark.parametrize("cmd,msg", [
    (f"-m prefixscan {A} 198.18.11.0/30", "invalid parameters for prefixscan"),  # no -p
    (f"-m prefixscan -p '-P udp' -p '-P udp' {A} 198.18.11.0/30", "invalid parameters for prefixscan"),
    (f"-m prefixscan -p '-P udp' -d 80 {A} 198.18.11.0/30", "invalid parameters for prefixscan"),
    (f"-m prefixscan -p '-P udp' -O shuffle {A} 198.18.11.0/30", "invalid parameters for prefixscan"),
    (f"-m prefixscan -p '-P udp' -O inseq -f 10 {A} 198.18.11.0/30", "invalid parameters for prefixscan"),
    (f"-m prefixscan -p '-P udp' {A}", "expected address and prefix for prefixscan"),
    (f"-m prefixscan -p '-P udp' {A} 198.18.11.0", "missing prefix length in '198.18.11.0'"),
    (f"-m prefixscan -p '-P udp' {A} 198.18.11.0/23", "invalid prefix length '23' (24 to 31)"),
    (f"-m prefixscan -p '-P udp' {A} 198.18.11.0/32", "invalid prefix length '32' (24 to 31)"),
    (f"-m prefixscan -p '-P udp -i 10.0.0.1' {A} 198.18.11.0/30", "unexpected dst in prefixscan probedef"),
    ("-m prefixscan -p '-P udp' 2001:db8::1 2001:db8::/126", "invalid prefix length '126' (24 to 31)"),
    ("-m prefixscan -p '-P udp' 2001:db8::1 2001:db8::/30", "dealias -m prefixscan needs IPv4 addresses"),
    (f"-m prefixscan -p '-P udp' {A} 2001:db8::/30", "dst IP specified incorrectly"),
    ("-m bump -p '-P udp -i 10.0.0.1'", "invalid parameters for bump"),
    ("-m bump -p '-P udp -i 10.0.0.1' -p '-P udp' ", "missing dst address in probedef 1"),
    ("-m bump -p '-P udp -i 10.0.0.1' -p '-P udp -i 10.0.0.2' 10.0.0.3", "invalid parameters for bump"),
    ("-m bump -p '-P udp -i 2001:db8::1' -p '-P udp -i 2001:db8::2'", "dst address not IPv4 in probedef 0"),
])
def test_parse_prefixscan_and_bump_refusals(cmd, msg):
    with pytest.raises(CommandError) as e:
        parse_dealias(cmd)
    assert str(e.value) == msg


def test_parse_bump_defaults():
    o = parse_dealias("-m bump -p '-P udp -i 10.0.0.1' -p '-P icmp-echo -i 10.0.0.2'")
    assert (o.method, o.attempts, o.wait_probe_ms, o.fudge) == ("bump", 3, 1000, 30)
    assert [str(p.dst) for p in o.probedefs] == ["10.0.0.1", "10.0.0.2"]
    assert parse_dealias("-m bump -f 100 -q 1 -W 50 -p '-P udp -i 10.0.0.1' -p '-P udp -i 10.0.0.2'").fudge == 100


def test_prober_accepts_prefixscan_and_bump():
    for cmd in (f"-m prefixscan -p '-P udp' {A} 198.18.11.0/30",
                "-m bump -p '-P udp -i 10.0.0.1' -p '-P udp -i 10.0.0.2'"):
        o = parse_dealias(cmd)
        assert unsupported(o) is None and unsupported_dealias(o) is None


# -- the scan order -------------------------------------------------------------

@pytest.mark.parametrize("b,plen,want", [
    # scamper_dealias_do.c's table: from 39 (0b100111) the /31 mate, the /30, the /29, the /28
    ("10.0.0.39", 31, [38]),
    ("10.0.0.39", 30, [38, 37, 36]),
    ("10.0.0.39", 29, [38, 37, 36, 32, 33, 34, 35]),
    ("10.0.0.39", 28, [38, 37, 36, 32, 33, 34, 35] + list(range(40, 48))),
    ("10.0.0.34", 29, [33, 32, 35, 36, 37, 38, 39]),
    ("10.0.0.41", 29, [42, 40, 43, 44, 45, 46, 47]),
    ("10.0.0.32", 30, [33, 34, 35]),
])
def test_scan_order(b, plen, want):
    got = scan_order(ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address(b), plen)
    assert [int(x) & 0xFF for x in got] == want


def test_scan_order_leaves_out_a_and_excludes():
    got = scan_order(ipaddress.ip_address("10.0.0.33"), ipaddress.ip_address("10.0.0.32"), 29,
                     ips("10.0.0.35", "10.0.0.38"))
    assert [int(x) & 0xFF for x in got] == [34, 36, 37, 39]
    assert len(scan_order(ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("10.0.0.0"), 24)) == 255


# -- prefixscan on simulated routers ---------------------------------------------

def test_prefixscan_finds_the_alias_with_a_shared_counter():
    # b = .1: its /30 is probed .2, .0, .3; .2 shares A's counter
    shared = Router([A, "198.18.11.2"], shared=True)
    rec, io = run(f"dealias -m prefixscan -p '-P icmp-echo' {A} 198.18.11.1/30", [shared])
    assert rec.result == DealiasResult.ALIASES
    assert str(rec.data.ab) == "198.18.11.2" and rec.data.flags == 0
    # replyc (5) replies in sequence, alternating A and the candidate
    assert dsts(rec) == [A, "198.18.11.2", A, "198.18.11.2", A]
    assert [str(d.dst) for d in rec.data.probedefs] == [A, "198.18.11.2"]
    assert [p.seq for p in rec.probes] == [0, 0, 1, 1, 2]
    times = [round(t, 3) for t, _, _ in io.sent]
    assert times == [0.0, 1.0, 2.0, 3.0, 4.0]  # wait_probe (1000 ms) apart


def test_prefixscan_moves_on_from_silent_and_out_of_sequence_candidates():
    ra = Router([A], start=1000)
    other = Router(["198.18.11.0"], start=30000)  # answers, its own counter
    shared = Router([A, "198.18.11.3"], shared=True)
    rec, _ = run(f"dealias -m prefixscan -W 100 -p '-P icmp-echo' {A} 198.18.11.1/30", [shared, ra, other])
    assert rec.result == DealiasResult.ALIASES and str(rec.data.ab) == "198.18.11.3"
    # .2 is silent: two attempts (seq 0, 1), then .0 at once; .0 answers, A after it
    # out of sequence; .3 continues from A's reply: A .3 A .3 A, five in sequence
    got = [(str(p.probedef.dst), p.seq, len(p.replies)) for p in rec.probes]
    assert got == [(A, 0, 1), ("198.18.11.2", 0, 0), ("198.18.11.2", 1, 0), ("198.18.11.0", 0, 1),
                   (A, 1, 1), ("198.18.11.3", 0, 1), (A, 2, 1), ("198.18.11.3", 1, 1), (A, 3, 1)]
    assert [str(d.dst) for d in rec.data.probedefs] == [A, "198.18.11.2", "198.18.11.0", "198.18.11.3"]


def test_prefixscan_none_when_candidates_run_out_and_silent_a():
    ra = Router([A], start=1000)
    rec, _ = run(f"dealias -m prefixscan -W 100 -p '-P icmp-echo' {A} 198.18.11.0/31", [ra])
    assert rec.result == DealiasResult.NONE
    assert dsts(rec) == [A, "198.18.11.1", "198.18.11.1"]
    rec, _ = run(f"dealias -m prefixscan -W 100 -q 3 -p '-P icmp-echo' {A} 198.18.11.0/30", [])
    assert rec.result == DealiasResult.NONE and dsts(rec) == [A] * 3  # A never answers


def test_prefixscan_port_unreachable_from_a_is_aliases():
    # the candidate's router answers the UDP probe from A's address (CSA)
    rec, _ = run(f"dealias -m prefixscan -W 100 -p '-P udp' {A} 198.18.11.1/30",
                 [Router([A]), Router(["198.18.11.2"], reply_from=A, start=40000)])
    assert rec.result == DealiasResult.ALIASES
    assert str(rec.data.ab) == "198.18.11.2" and rec.data.flags == int(DealiasPrefixscanFlag.CSA)
    assert dsts(rec) == [A, "198.18.11.2"]


def test_prefixscan_candidate_answering_from_an_address_a_answered_from():
    # A itself answers from 198.18.1.9; a candidate answering from there too is an alias,
    # and a candidate that *is* that address is not even probed
    x = "198.18.1.9"
    rec, _ = run(f"dealias -m prefixscan -W 100 -p '-P udp' {A} 198.18.11.1/30",
                 [Router([A], reply_from=x), Router(["198.18.11.2"], reply_from=x, start=40000)])
    assert rec.result == DealiasResult.ALIASES and str(rec.data.ab) == "198.18.11.2"
    rec, _ = run(f"dealias -m prefixscan -W 100 -p '-P udp' {A} 198.18.1.8/31",
                 [Router([A], reply_from=x)])
    assert rec.result == DealiasResult.ALIASES and str(rec.data.ab) == x
    assert dsts(rec) == [A] and rec.data.flags == int(DealiasPrefixscanFlag.CSA)


class EchoIO(IO):
    """Routers in ``echoers`` answer with the probe's own IP-ID."""

    def __init__(self, routers, echoers):
        super().__init__(routers)
        self.echoers = set(ips(*echoers))

    def _answer(self, pkt):
        dst = ipaddress.ip_address(pkt[16:20])
        if dst in self.echoers:
            for r in self.routers:
                if dst in r.addrs:
                    r.ipid = lambda _a, v=int.from_bytes(pkt[4:6], "big"): v
        super()._answer(pkt)


def _run_io(cmd, io):
    o = parse_dealias(cmd.split(None, 1)[1], pid=0x1234)
    r = DealiasRun(o, SRC, io)
    io.run = r
    r.start()
    while not io.done:
        io.clock.advance(max(0.0, min(c.getTime() for c in io.clock.getDelayedCalls()) - io.clock.seconds()))
    return r.record


def test_prefixscan_ipid_echo():
    # A echoes the probes' IP-IDs (0xffff, 0xfdfd, ...); the candidate's counter
    # (from 0) follows 0xffff, so A is probed a second time: IPIDECHO
    io = EchoIO([Router([A]), Router(["198.18.11.1"], start=0)], [A])
    rec = _run_io(f"dealias -m prefixscan -W 100 -p '-P icmp-echo' {A} 198.18.11.0/31", io)
    assert rec.result == DealiasResult.IPIDECHO
    assert dsts(rec) == [A, "198.18.11.1", A]
    assert [p.replies[0].ipid for p in rec.probes] == [0xFFFF, 1, 0xFDFD]


def test_prefixscan_record_round_trips_through_warts():
    rec, _ = run(f"dealias -m prefixscan -W 100 -p '-P icmp-echo' -x 198.18.11.0 {A} 198.18.11.1/30",
                 [Router([A, "198.18.11.3"], shared=True)])
    (back,) = [r for r in iter_records(io.BytesIO(encode_record(rec))) if hasattr(r, "probes")]
    assert str(back.data.a) == A and str(back.data.b) == "198.18.11.1" and back.data.prefix == 30
    assert [str(x) for x in back.data.xs] == ["198.18.11.0"] and str(back.data.ab) == "198.18.11.3"
    assert len(back.probes) == len(rec.probes) and back.result == DealiasResult.ALIASES


# -- bump ---------------------------------------------------------------------

BUMP = "dealias -m bump -W 100 -p '-P udp -i 198.18.1.2' -p '-P udp -i 198.18.11.1'"


def test_bump_shared_counter_is_aliases():
    rec, io = run(BUMP, [Router([A, "198.18.11.1"], shared=True)])
    assert rec.result == DealiasResult.ALIASES
    d = ["a" if p.probedef.id == 0 else "b" for p in rec.probes]
    # a b a, then 2 x the gap (1, raised to 3) + 1 probes to b, a b: attempts + 1 bumps
    assert "".join(d[:3]) == "aba"
    assert "".join(d[3:9]) == "bbbbab"
    assert len(rec.probes) == 3 + 6 * 4
    assert all(p.seq == 0 for p in rec.probes)
    assert round(io.sent[1][0] - io.sent[0][0], 3) == 0.1


def test_bump_separate_counters_not_aliases_and_wrong_reply_none():
    rec, _ = run(BUMP, [Router([A]), Router(["198.18.11.1"], start=9000)])
    assert rec.result == DealiasResult.NOTALIASES and len(rec.probes) == 3
    # the second address's router answers a UDP probe with an ICMP echo reply? no: it is silent
    rec, _ = run(BUMP, [Router([A])])
    assert rec.result == DealiasResult.NONE and len(rec.probes) == 3


def test_bump_gap_beyond_the_limit_is_none():
    # step 50: the bump would be 100 probes, beyond -f 30
    rec, _ = run(BUMP, [Router([A, "198.18.11.1"], shared=True, step=50)])
    assert rec.result == DealiasResult.NONE and len(rec.probes) == 3


def test_ally_counts_a_port_unreachable_from_another_address():
    """scamper's FROM_TARGET is the reply's kind, not its source (it was the source here)."""
    r = Router(["198.18.1.2", "198.18.11.1"], shared=True, reply_from="198.18.1.9")
    rec, _ = run("dealias -m ally 198.18.1.2 198.18.11.1", [r])
    assert rec.result == DealiasResult.ALIASES
