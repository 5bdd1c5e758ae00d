"""trace -G 2 (last-ditch), -p (payload), -O const-payload and -N (parallel) on the simulated network.

The behaviour follows scamper 20211212's scamper_trace_do.c: after the gap
limit, ``attempts`` probes with TTL 255; the first reply to one goes to the
record's last-ditch list and ends the trace; the stop reason is GAPLIMIT
either way.  The lab tests in test_prober_lab.py compare with the real tool.
"""

from __future__ import annotations

import io
import ipaddress
import shutil
import struct
import subprocess

import pytest

from ixpscamper.commands import parse_command
from ixpscamper.prober import ProberError, packets
from ixpscamper.prober.simnet import make_prober, run_until
from ixpscamper.prober.specs import unsupported
from ixpscamper.warts import WartsWriter, iter_records, render_text
from ixpscamper.warts.records import HopFlag, Trace, TraceFlag, TraceGapAction, TraceStop

DST = "198.51.100.66"
DST6 = "2001:db8:d::66"
SILENT = {DST: [None, None, DST], DST6: [None, None, DST6], "198.51.100.99": [None] * 10}


def run(*commands: str, paths=SILENT, setup=None):
    clock, net, prober = make_prober(paths)
    if setup:
        setup(net)
    tasks = [prober.submit(parse_command(c)) for c in commands]
    return run_until(clock, [t.deferred for t in tasks]), net


def roundtrip(t: Trace) -> Trace:
    buf = io.BytesIO()
    w = WartsWriter(buf)
    w.write(t)
    buf.seek(0)
    (back,) = [r for r in iter_records(buf) if isinstance(r, Trace)]
    return back


# -- last-ditch -----------------------------------------------------------------

@pytest.mark.parametrize("dst,reply", [(DST, (3, 3)), (DST6, (1, 4))])
def test_lastditch_reply_from_silent_path(dst, reply):
    (t,), net = run(f"trace -w 1 -q 1 -g 2 -G 2 {dst}")
    assert t.gapaction == TraceGapAction.LASTDITCH
    assert (t.stop_reason, t.stop_data) == (TraceStop.GAPLIMIT, 0)
    # the last-ditch probe is counted, hop_count is not moved by it
    assert (t.hop_count, t.probec, t.hops) == (2, 3, [])
    assert [packets.dissect(p).ttl for _, _, p in net.sent] == [1, 2, 255]
    (ld,) = t.lastditch
    assert (str(ld.addr), ld.probe_ttl, ld.probe_id, ld.probe_size) == (dst, 255, 1, t.probe_size)
    assert (ld.icmp_type, ld.icmp_code) == reply and ld.flags == HopFlag.TS_SOCK_RX | HopFlag.REPLY_TTL
    back = roundtrip(t)
    assert back.lastditch == t.lastditch and back.hops == [] and back.gapaction == 2
    # the text output (like sc_warts2text) does not show last-ditch hops
    assert render_text(t).splitlines()[1:] == [" 1  *", " 2  *"]


def test_lastditch_with_no_reply_sends_attempts_probes_and_writes_no_block():
    (t,), net = run("trace -w 1 -g 3 -G 2 198.51.100.99")
    assert (t.stop_reason, t.hop_count, t.probec) == (TraceStop.GAPLIMIT, 3, 3 * 2 + 2)
    assert t.lastditch is None
    assert [packets.dissect(p).ttl for _, _, p in net.sent] == [1, 1, 2, 2, 3, 3, 255, 255]
    times = [s[0] for s in net.sent]
    assert round(times[-1] - times[-2], 3) == 1.0
    assert roundtrip(t).lastditch is None


def test_lastditch_not_used_when_a_hop_answers_in_the_gap():
    (t,), net = run(f"trace -w 1 -q 1 -g 2 -G 2 {DST}", paths={DST: ["192.0.2.1", None, DST]})
    # TTL 2 is silent but the gap is 1 < 2: the trace goes on and completes
    assert t.stop_reason == TraceStop.COMPLETED and t.lastditch is None
    assert [h.probe_ttl for h in t.hops] == [1, 3]


def test_lastditch_tcp_reply():
    (t,), net = run(f"trace -P tcp -w 1 -q 1 -g 2 -G 2 {DST}")
    assert (t.stop_reason, t.hop_count, t.probec) == (TraceStop.GAPLIMIT, 2, 3)
    (ld,) = t.lastditch
    assert ld.is_tcp and ld.probe_ttl == 255 and ld.tcp_flags == 0x14


def test_late_reply_during_lastditch_goes_to_hops_and_does_not_stop():
    # TTL 2's router answers 1.5 s late: after the trace gave up on TTL 2 and
    # started last-ditch probing; the destination answers in 0.9 s, after that
    paths = {DST: [None, "198.18.1.2", DST]}

    def setup(net):
        real = net.deliver

        def slow(pkt, delay=None):
            late = packets.dissect(pkt).src == ipaddress.ip_address("198.18.1.2").packed
            real(pkt, 1.5 if late else 0.9)
        net.deliver = slow
    (t,), net = run(f"trace -w 1 -q 1 -g 2 -G 2 {DST}", paths=paths, setup=setup)
    assert [(h.probe_ttl, str(h.addr)) for h in t.hops] == [(2, "198.18.1.2")]
    assert t.stop_reason == TraceStop.GAPLIMIT and t.hop_count == 2
    assert [(h.probe_ttl, str(h.addr)) for h in t.lastditch] == [(255, DST)]


# -- payload --------------------------------------------------------------------

def _l4(pkt: bytes) -> bytes:
    return pkt[(pkt[0] & 0x0F) * 4:] if pkt[0] >> 4 == 4 else pkt[40:]


@pytest.mark.parametrize("dst", [DST, DST6])
def test_payload_is_sent_and_sizes_follow_it(dst):
    body = bytes.fromhex("0badcafe00112233")
    cmds = [f"trace -P {m} -p {body.hex()} {dst}" for m in ("udp", "udp-paris", "icmp", "icmp-paris")]
    recs, net = run(*cmds, paths={dst: ["192.0.2.1", dst] if dst == DST else ["2001:db8:1::1", dst]})
    size = (28 if dst == DST else 48) + len(body)
    by_method = {}
    for _, _, p in net.sent:
        rep = packets.dissect(p)
        assert rep.size == size
        by_method.setdefault((rep.proto, _l4(p)[0]), []).append(_l4(p))
    for t in recs:
        assert t.stop_reason == TraceStop.COMPLETED and t.probe_size == size
        assert all(h.probe_size == size and h.icmp_q_ipl in (None, size) for h in t.hops)
    sent = [_l4(p) for _, _, p in net.sent]
    assert len(sent) == 8
    payloads = [s[8:] for s in sent]
    # every probe carries the payload; paris methods overwrite its first two bytes
    assert all(pl[2:] == body[2:] for pl in payloads)
    assert sum(pl == body for pl in payloads) >= 4  # udp and icmp: untouched
    udp_paris = [s for s in sent if s[2:4] == struct.pack("!H", 33435) and s[8:] != body]
    assert [struct.unpack("!H", s[6:8])[0] for s in udp_paris] == [1, 2]  # checksum = probe id + 1


def test_payload_refusals_and_option_checks():
    assert unsupported(parse_command(f"trace -p 01 {DST}")) == \
        "trace -P udp-paris needs a payload (-p) of at least 2 bytes"
    assert unsupported(parse_command(f"trace -P udp -p 01 {DST}")) is None
    assert unsupported(parse_command(f"trace -G 2 -p 0badcafe {DST}")) is None
    assert unsupported(parse_command(f"trace -O const-payload -p 01 {DST}")) is None
    clock, net, prober = make_prober(SILENT)
    task = prober.submit(parse_command(f"trace -P icmp-paris -p 0b {DST}"))
    errs = []
    task.deferred.addErrback(lambda f: errs.append(f.value))
    assert len(errs) == 1 and isinstance(errs[0], ProberError)


def test_one_byte_udp_payload():
    (t,), net = run(f"trace -P udp -p ab {DST}", paths={DST: [DST]})
    assert t.probe_size == 29 and t.stop_reason == TraceStop.COMPLETED
    assert _l4(net.sent[0][2])[8:] == b"\xab"


@pytest.mark.skipif(shutil.which("sc_wartsdump") is None, reason="needs sc_wartsdump (Debian scamper)")
def test_real_wartsdump_reads_our_lastditch_block(tmp_path):
    # scamper 20211212's reader skips the optional blocks of a trace with no
    # hops at all, so give this one a first hop
    (t,), _ = run(f"trace -w 1 -q 1 -g 2 -G 2 {DST}", paths={DST: ["192.0.2.1", None, None, DST]})
    assert t.hop_count == 3 and len(t.lastditch) == 1
    path = tmp_path / "ld.warts"
    with open(path, "wb") as f:
        WartsWriter(f).write(t)
    out = subprocess.run(["sc_wartsdump", str(path)], capture_output=True, text=True, check=True).stdout
    assert "squeries: 1, gaplimit: 2, gapaction: lastditch" in out and "stop reason: gaplimit" in out
    hops = [line.split() for line in out.splitlines() if line.startswith("hop ")]
    assert hops == [["hop", "1", "192.0.2.1"], ["hop", "255", DST]]
    assert out.split("hop 255")[1].splitlines()[3].strip() == \
        "icmp-type: 3, icmp-code: 3, q-ttl: 1, q-len: 44, q-tos 0"


# -- const-payload ------------------------------------------------------------------

@pytest.mark.parametrize("dst", [DST, DST6])
def test_const_payload_keeps_the_checksum_and_ids_probes_by_ipid_or_flow(dst):
    path = ["192.0.2.1", "198.18.1.2", dst] if dst == DST else ["2001:db8:1::1", "2001:db8:a::2", dst]
    (t,), net = run(f"trace -O const-payload -p 0badcafe {dst}", paths={dst: path})
    assert t.stop_reason == TraceStop.COMPLETED and [str(h.addr) for h in t.hops] == path
    assert t.flags == TraceFlag.CONSTPAYLOAD and t.probe_size == (32 if dst == DST else 52)
    sent = [packets.dissect(p) for _, _, p in net.sent]
    l4 = [_l4(p) for _, _, p in net.sent]
    assert {s[6:8] for s in l4} == {l4[0][6:8]} and {s[8:] for s in l4} == {bytes.fromhex("0badcafe")}
    if dst == DST:
        assert [r.ipid for r in sent] == [1, 2, 3]
    else:
        assert [int.from_bytes(p[1:4], "big") & 0xFFFFF for _, _, p in net.sent] == [1, 2, 3]
    # icmp-paris ignores the option (as scamper), but the record still carries the flag
    (i,), net = run(f"trace -O const-payload -P icmp-paris {DST}", paths={DST: [DST]})
    assert i.stop_reason == TraceStop.COMPLETED and i.flags == TraceFlag.CONSTPAYLOAD | TraceFlag.ICMPCSUMDP


# -- -N squeries (parallel mode) ----------------------------------------------------

def _slow(delay):
    def setup(net):
        real = net.deliver
        net.deliver = lambda pkt, d=None: real(pkt, delay)
    return setup


def test_squeries_keeps_ttls_outstanding_and_finishes_them():
    # replies take 0.2 s: with -N 3, TTLs 1-3 go out before any answer, and
    # each answer opens the next TTL; the destination (TTL 3) ends the trace,
    # the TTLs already sent past it still count and are recorded
    (t,), net = run(f"trace -N 3 {DST}", paths={DST: ["192.0.2.1", "198.18.1.2", DST]},
                    setup=_slow(0.2))
    sends = [(round(at - 1_000_000, 3), packets.dissect(p).ttl) for at, _, p in net.sent]
    assert sends == [(0.0, 1), (0.05, 2), (0.1, 3), (0.2, 4), (0.25, 5)]
    assert (t.stop_reason, t.hop_count, t.probec, t.squeries) == (TraceStop.COMPLETED, 5, 5, 3)
    assert [(h.probe_ttl, str(h.addr)) for h in t.hops] == \
        [(1, "192.0.2.1"), (2, "198.18.1.2"), (3, DST), (4, DST), (5, DST)]
    assert roundtrip(t).squeries == 3
    # the serial trace on the same path waits for each answer
    (s,), net = run(f"trace {DST}", paths={DST: ["192.0.2.1", "198.18.1.2", DST]}, setup=_slow(0.2))
    assert (s.hop_count, s.probec, s.squeries) == (3, 3, 1)


def test_squeries_gap_limit_and_retries():
    # only TTL 1 answers: TTLs 2-4 are tried (twice) and given up on; the
    # gap limit (3) then holds, counted from TTL 1, the last that answered
    (t,), net = run("trace -N 3 -w 1 -g 3 198.51.100.99", paths={"198.51.100.99": ["192.0.2.1"] + [None] * 9})
    ttls = [packets.dissect(p).ttl for _, _, p in net.sent]
    assert ttls == [1, 2, 3, 4, 2, 3, 4]
    assert (t.stop_reason, t.hop_count, t.probec) == (TraceStop.GAPLIMIT, 4, 7)
    # -G 2 has no effect in parallel mode (as in scamper): no last-ditch probes
    (g,), net = run("trace -N 3 -w 1 -q 1 -g 3 -G 2 198.51.100.99",
                    paths={"198.51.100.99": ["192.0.2.1"] + [None] * 9})
    assert 255 not in [packets.dissect(p).ttl for _, _, p in net.sent] and g.lastditch is None


def test_squeries_hoplimit_and_refusals():
    (t,), _ = run(f"trace -N 4 -m 2 {DST}", paths={DST: ["192.0.2.1", "198.18.1.2", DST]})
    assert (t.stop_reason, t.hop_count, t.probec) == (TraceStop.HOPLIMIT, 2, 2)
    for cmd in (f"trace -N 2 -P tcp {DST}", f"trace -N 2 -r 192.0.2.2 {DST}"):
        assert unsupported(parse_command(cmd)) == \
            "trace -N is not supported by the ixpscamper prober with TCP methods or -r"
    assert unsupported(parse_command(f"trace -N 2 -P icmp-paris {DST6}")) is None
