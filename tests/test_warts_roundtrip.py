"""Hypothesis-generated traces and pings: write, read back equal; and files we
write are read by the real sc_warts2text / sc_warts2json / sc_wartsdump, whose
output must equal our renderers' (this catches writer bugs a self round trip
hides)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import requires_tool
from warts_render import _utc
from ixpscamper.warts import (CycleStart, CycleStop, IcmpExt, MplsLabel, Ping, PingReply,
                              PmtudNote, Timeval, Trace, TraceHop, TracePmtud, WartsDecoder,
                              WartsList, WartsWriter, encode_record, iter_text, read_records,
                              render_json, render_text)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
v4 = st.builds(ipaddress.IPv4Address, u32)
v6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
tval = st.builds(Timeval, st.integers(1, 0xFFFFFFFF), st.integers(0, 999999))
name = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


def _quoting(fam: int, flags: int, itype: int) -> bool:
    if flags & 0x60:
        return False
    return itype in ((3, 11) if fam == 4 else (1, 2, 3))


def _ptb(fam: int, flags: int, itype: int, icode: int) -> bool:
    if flags & 0x60:
        return False
    return (itype == 3 and icode == 4) if fam == 4 else itype == 2


@st.composite
def hops(draw, fam: int, trace_psize: int, sane: bool = False, ttl=None):
    """A hop in the canonical form the reader produces (so read(write(h)) == h)."""
    addr = draw(v4 if fam == 4 else v6)
    if sane:
        flags = draw(st.sampled_from([0x11, 0x14, 0x16, 0x31, 0x15]))
    else:
        flags = draw(u8)
    icmp = not flags & 0x60
    if sane and icmp:
        it, ic = draw(st.sampled_from(
            [(11, 0), (3, 3), (3, 1), (3, 0), (3, 13), (3, 4), (0, 0), (5, 1)] if fam == 4 else
            [(3, 0), (1, 4), (1, 0), (1, 3), (2, 0), (129, 0), (4, 2)]))
    elif icmp:
        it, ic = draw(u8), draw(u8)
    else:
        it = ic = 0
    psize = draw(u16)
    q = _quoting(fam, flags, it)
    if q:
        qttl = draw(u8)
        qipl = draw(u16)
        if qipl == trace_psize:
            qipl = psize  # written only when it differs; the reader fills in the probe size
        qtos = draw(u8) if fam == 4 else 0
    else:
        qttl = qipl = qtos = 0
    ext = None
    if not sane and draw(st.booleans()):
        ext = draw(st.lists(st.builds(IcmpExt, u8, u8, st.binary(max_size=12)), min_size=1,
                            max_size=3))
    elif sane and draw(st.integers(0, 4)) == 0:
        ext = [IcmpExt.mpls(draw(st.lists(st.builds(MplsLabel, st.integers(0, 2**20 - 1),
                                                    st.integers(0, 7), st.integers(0, 1), u8),
                                          min_size=1, max_size=3)))]
    return TraceHop(
        addr=addr, probe_ttl=ttl if ttl is not None else draw(st.integers(1, 255)),
        probe_id=draw(st.integers(0, 255)), probe_size=psize, rtt=draw(u32), flags=flags,
        reply_ttl=draw(u8), reply_tos=draw(u8), reply_ipid=draw(u16), reply_size=draw(u16),
        icmp_type=it, icmp_code=ic, icmp_q_ttl=qttl, icmp_q_ipl=qipl, icmp_q_tos=qtos,
        icmp_nhmtu=draw(u16) if _ptb(fam, flags, it, ic) else 0,
        tcp_flags=draw(u8) if flags & 0x20 else 0,
        tx=draw(st.none() | tval), icmpext=ext,
        name=None if sane else draw(st.none() | name))


@st.composite
def traces(draw, sane: bool = False):
    fam = draw(st.sampled_from([4, 6]))
    addr = v4 if fam == 4 else v6
    psize = draw(u16)
    nh = draw(st.integers(0, 6))
    if sane:
        ttls = sorted(draw(st.lists(st.integers(1, 30), min_size=nh, max_size=nh)))
        hl = [draw(hops(fam, psize, sane=True, ttl=t)) for t in ttls]
    else:
        # the writer stores hops by TTL (stably), so that is the canonical order
        hl = sorted((draw(hops(fam, psize)) for _ in range(nh)), key=lambda h: h.probe_ttl)
    maxttl = max((h.probe_ttl for h in hl), default=0)
    hc = draw(st.integers(maxttl, 255)) if draw(st.booleans()) or not hl else maxttl
    if not hl and draw(st.booleans()):
        hc = 0
    flags = draw(u32) if not sane else draw(st.sampled_from([0, 0x01, 0x20, 0x08, 0x100]))
    pm = None
    if not sane and draw(st.booleans()):
        ph = [draw(hops(fam, psize)) for _ in range(draw(st.integers(0, 2)))]
        for h in ph:
            h.icmpext = None
            h.name = None
        notes = draw(st.lists(st.builds(PmtudNote, u8, u16,
                                        st.none() | st.integers(0, max(len(ph) - 1, 0))),
                              max_size=3))
        if not ph:
            for n in notes:
                n.reply = None
        pm = TracePmtud(draw(u16), draw(u16), draw(u16), draw(u8), ph, notes)
    ld = None
    if not sane and draw(st.booleans()):
        ld = [draw(hops(fam, psize)) for _ in range(draw(st.integers(0, 2)))]
        for h in ld:
            h.icmpext = None
            h.name = None
    return Trace(
        dst=draw(addr), src=draw(st.none() | addr) if not sane else draw(addr),
        rtr=draw(st.none() | addr), start=draw(tval),
        stop_reason=draw(u8) if not sane else draw(st.integers(0, 9)), stop_data=draw(u8),
        flags=flags, attempts=draw(u8) if not sane else draw(st.integers(1, 3)),
        hoplimit=draw(u8), method=draw(u8) if not sane else draw(st.integers(1, 6)),
        probe_size=psize, sport=draw(u16), dport=draw(u16), firsthop=draw(u8) if not sane
        else draw(st.integers(1, 3)), tos=draw(u8), wait=draw(u8), loops=draw(u8),
        hop_count=hc, gaplimit=draw(u8), gapaction=draw(u8), loopaction=draw(u8),
        probec=draw(u16), wait_probe=draw(u8), confidence=draw(u8), userid=draw(u32),
        offset=draw(u16), squeries=draw(st.sampled_from([1]) | st.integers(2, 255)),
        stop_hop=0 if sane else draw(u8), errmsg=None if sane else draw(st.none() | name),
        hops=hl, pmtud=pm, lastditch=ld)


@st.composite
def pings(draw, sane: bool = False):
    fam = draw(st.sampled_from([4, 6]))
    addr = v4 if fam == 4 else v6
    method = draw(st.integers(0, 10)) if not sane else draw(st.integers(0, 8))
    icmp_method = method in (0, 5)
    sent = draw(st.integers(0, 8))
    flags = draw(u32) if not sane else draw(st.sampled_from([0, 1, 0x20, 0x08, 0x10]))
    reps = []
    for _ in range(draw(st.integers(0, 6)) if sent else 0):
        rfam = fam if sane else draw(st.sampled_from([4, 6]))
        raddr = draw(v4 if rfam == 4 else v6)
        rflags = draw(u8) if not sane else draw(st.sampled_from([0, 1, 3, 7]))
        if icmp_method:
            proto = 1 if fam == 4 else 58
        else:
            proto = draw(st.sampled_from([1, 6, 17, 58]) if sane else u8)
        ricmp = proto == (1 if rfam == 4 else 58)
        ts_times = draw(st.none() | st.lists(st.integers(0, 0xFFFFFFFF), max_size=4))
        ts_addrs = None
        # sc_warts2json 20211212 dereferences the missing address list (and
        # crashes) when a timestamp option without addresses meets a ping
        # without the tsonly flag: keep the oracle test away from that bug
        if ts_times and (draw(st.booleans()) or (sane and not flags & 0x08)):
            ts_addrs = draw(st.lists(v4, min_size=len(ts_times), max_size=len(ts_times)))
        reps.append(PingReply(
            addr=raddr, probe_id=draw(st.integers(0, sent - 1)), rtt=draw(u32), flags=rflags,
            reply_ttl=draw(u8) if rflags & 1 else 0, reply_size=draw(u16), reply_proto=proto,
            icmp_type=draw(u8) if ricmp else 0, icmp_code=draw(u8) if ricmp else 0,
            tcp_flags=draw(u8) if proto == 6 else 0,
            reply_ipid=draw(u16) if not (fam == 4 and not rflags & 2) else 0,
            probe_ipid=draw(u16) if not (fam == 4 and not rflags & 4) else 0,
            reply_ipid32=draw(u32) if not (fam == 6 and not rflags & 2) else 0,
            tx=draw(st.none() | tval),
            rr=draw(st.none() | st.lists(v4, min_size=1, max_size=4)),
            ts_times=ts_times, ts_addrs=ts_addrs,
            tsreply=draw(st.none() | st.tuples(u32, u32, u32)),
            probe_sport=None if sane else draw(st.none() | u16),
            reply_tos=None if sane else draw(st.none() | u8),
            ifname=None if sane else draw(st.none() | name),
            nhmtu=None if sane else draw(st.none() | u16)))
    reps.sort(key=lambda r: r.probe_id)
    wait = draw(u8)
    return Ping(
        dst=draw(addr), src=draw(addr) if sane else draw(st.none() | addr),
        rtr=draw(st.none() | addr), start=draw(tval),
        stop_reason=draw(u8), stop_data=draw(u8), pattern=draw(st.binary(max_size=8)),
        probe_count=draw(u16), probe_size=draw(u16), wait=wait, ttl=draw(u8),
        reply_count=draw(u16), ping_sent=sent, method=method, sport=draw(u16), dport=draw(u16),
        userid=draw(u32), flags=flags, tos=draw(u8),
        probe_tsps=draw(st.none() | st.lists(v4, min_size=1, max_size=3)),
        icmp_csum=draw(u16) if flags & 0x20 else 0, pmtu=draw(u16),
        timeout=draw(u8), wait_us=draw(u32), tcp_ack=draw(u32), tcp_seq=draw(u32),
        timeout_us=0 if sane else draw(u32), errmsg=None if sane else draw(st.none() | name),
        replies=reps)


@given(traces())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_trace_round_trip(tr):
    data = encode_record(tr)
    back = read_records(data)
    assert back == [tr]
    assert encode_record(back[0]) == data


@given(pings())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_ping_round_trip(p):
    data = encode_record(p)
    back = read_records(data)
    assert back == [p]
    assert encode_record(back[0]) == data


@given(st.lists(st.one_of(traces(), pings()), min_size=1, max_size=4), st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_writer_file_round_trip_any_chunking(recs, data):
    lst = WartsList(name="127.0.0.1:1_1", description=None, monitor="vp")
    cyc = CycleStart(lst, 1795760000, id=1, hostname="h")
    for r in recs:
        r.list, r.cycle = lst, cyc
    w = WartsWriter()
    blob = w.encode(lst) + w.encode(cyc) + b"".join(w.encode(r) for r in recs)
    blob += w.encode(CycleStop(cyc, 1795760009))
    cut = data.draw(st.integers(1, 64))
    dec = WartsDecoder()
    got = []
    for i in range(0, len(blob), cut):
        got += dec.feed(blob[i:i + cut])
    dec.close()
    assert got[0] == lst and got[1] == cyc and got[2:-1] == recs
    assert all(r.list is got[0] and r.cycle is got[1] for r in got[2:-1])
    assert got[-1].cycle is got[1]


@given(st.lists(traces() | traces(sane=True), min_size=1, max_size=4))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_text_fast_path_equals_full_render(recs):
    import io
    blob = b"".join(encode_record(r) for r in recs)
    assert "".join(iter_text(io.BytesIO(blob))) == "".join(render_text(r) for r in recs)


def test_writer_sorts_hops_and_replies_stably():
    a = ipaddress.IPv4Address
    hops = [TraceHop(a("10.0.0.3"), probe_ttl=3), TraceHop(a("10.0.0.1"), probe_ttl=1),
            TraceHop(a("10.0.0.9"), probe_ttl=3, probe_id=2)]
    tr = Trace(dst=a("10.0.0.3"), hop_count=3, hops=hops)
    back = read_records(encode_record(tr))[0]
    assert [(str(h.addr), h.probe_ttl) for h in back.hops] == [
        ("10.0.0.1", 1), ("10.0.0.3", 3), ("10.0.0.9", 3)]
    reps = [PingReply(a("10.0.0.3"), probe_id=2), PingReply(a("10.0.0.3"), probe_id=0),
            PingReply(a("10.0.0.4"), probe_id=2)]
    p = Ping(dst=a("10.0.0.3"), src=a("10.0.0.1"), ping_sent=3, replies=reps)
    back = read_records(encode_record(p))[0]
    assert [(str(r.addr), r.probe_id) for r in back.replies] == [
        ("10.0.0.3", 0), ("10.0.0.3", 2), ("10.0.0.4", 2)]


def test_writer_emits_cycle_definition_for_unseen_cycle():
    lst = WartsList()
    cyc = CycleStart(lst, 5, hostname="x")
    tr = Trace(dst=ipaddress.IPv4Address("192.0.2.1"), list=lst, cycle=cyc)
    blob = WartsWriter().encode(tr)
    types = []
    pos = 0
    while pos < len(blob):
        types.append(int.from_bytes(blob[pos + 2:pos + 4], "big"))
        pos += 8 + int.from_bytes(blob[pos + 4:pos + 8], "big")
    assert types == [1, 3, 6]


# ---------------------------------------------------------------- real tools

def _run(tool: str, path: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool, path], capture_output=True, timeout=30,
                          env={**os.environ, "TZ": "UTC"})


def _file_of(recs) -> str:
    lst = WartsList()
    cyc = CycleStart(lst, 1795760000, hostname="gen")
    fd, path = tempfile.mkstemp(suffix=".warts")
    with os.fdopen(fd, "wb") as f:
        w = WartsWriter(f)
        w.write(lst)
        w.write(cyc)
        for r in recs:
            r.list, r.cycle = lst, cyc
            w.write(r)
        w.write(CycleStop(cyc, 1795760100))
    return path


@requires_tool("sc_warts2text")
@requires_tool("sc_warts2json")
@requires_tool("sc_wartsdump")
@given(st.lists(st.one_of(traces(sane=True), pings(sane=True)), min_size=1, max_size=3))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_real_tools_render_our_files_like_we_do(recs):
    path = _file_of(recs)
    try:
        ours_json = _utc(lambda: "".join(render_json(r) for r in read_records(open(path, "rb").read())))
        ours_text = "".join(render_text(r) for r in recs)
        t = _run("/usr/bin/sc_warts2text", path)
        assert t.returncode == 0 and t.stderr == b""
        assert t.stdout.decode() == ours_text
        j = _run("/usr/bin/sc_warts2json", path)
        assert j.returncode == 0 and j.stderr == b""
        assert j.stdout.decode() == ours_json
        d = _run("/usr/bin/sc_wartsdump", path)
        assert d.returncode == 0 and d.stderr == b""
        assert d.stdout.count(b"traceroute from") + d.stdout.count(b"ping ") >= len(recs)
    finally:
        os.unlink(path)


def _with_source(p: Ping) -> Ping:
    # scamper 20211212 refuses pings without a source (2026 accepts them)
    if p.src is None:
        p.src = p.dst
    return p


@requires_tool("sc_wartsdump")
@requires_tool("sc_warts2text")
@given(st.lists(st.one_of(traces(), pings().map(_with_source)), min_size=1, max_size=3))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_debian_tools_read_any_record_we_write(recs):
    """Full-range records (every field, 2026 additions, PMTUD and last-ditch
    blocks, ICMP extensions): the 20211212 reader accepts all of them."""
    path = _file_of(recs)
    try:
        for tool in ("/usr/bin/sc_wartsdump", "/usr/bin/sc_warts2text"):
            r = _run(tool, path)
            assert r.returncode == 0 and r.stderr == b"", (tool, r.stderr)
        d = _run("/usr/bin/sc_wartsdump", path).stdout
        assert d.count(b"\ntraceroute ") + d.count(b"\nping ") == len(recs)
    finally:
        os.unlink(path)


@given(traces(sane=True))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hop_count_zero_renders_as_after_a_round_trip(tr):
    # a prober may leave hop_count at 0; scamper's reader then uses the last TTL
    tr.hop_count = 0
    back = read_records(encode_record(tr))[0]
    assert back.hop_count == max((h.probe_ttl for h in tr.hops), default=0)
    assert render_text(tr) == render_text(back)
    assert render_json(tr) == render_json(back)
