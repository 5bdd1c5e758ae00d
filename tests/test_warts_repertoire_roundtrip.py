"""Tracelb (type 8) and dealias (type 9) records: hypothesis-generated
records in the canonical form the reader produces write and read back equal,
alone and interleaved with traces and pings in one file fed in any chunks."""

from __future__ import annotations

import io
import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ixpscamper.warts import (CycleStart, IcmpExt, Timeval, WartsDecoder, WartsList,
                              WartsWriter, encode_record, read_records)
from ixpscamper.warts.records import (
    Dealias, DealiasAlly, DealiasBump, DealiasMercator, DealiasMidardisc, DealiasMidardiscRound,
    DealiasMidarest, DealiasPrefixscan, DealiasProbe, DealiasProbedef, DealiasRadargun,
    DealiasReply, Tracelb, TracelbLink, TracelbNode, TracelbProbe, TracelbProbeset,
    TracelbReply)
from ixpscamper.warts.writer import WartsEncodeError

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
v4 = st.builds(ipaddress.IPv4Address, u32)
v6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
addr = v4 | v6
tval = st.builds(Timeval, u32, st.integers(0, 999999))
name = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
exts = st.none() | st.lists(st.builds(IcmpExt, u8, u8, st.binary(max_size=12)), min_size=1,
                            max_size=2)


@st.composite
def tlb_replies(draw):
    fl = draw(u8)
    tcp = fl & 0x02
    return TracelbReply(
        draw(addr), draw(tval), draw(u16), draw(u8) if fl & 0x01 else 0, fl,
        0 if tcp else draw(u8), 0 if tcp else draw(u8), 0 if tcp else draw(u8),
        0 if tcp else draw(u8), None if tcp else draw(exts), draw(u8) if tcp else 0)


@st.composite
def tracelbs(draw):
    nodec = draw(st.integers(0, 4))
    nodes = []
    for _ in range(nodec):
        fl = draw(u8)
        nodes.append(TracelbNode(draw(st.none() | addr), draw(st.none() | name), fl,
                                 draw(u8) if fl & 1 else 0))
    links = []
    if nodec:
        for i in range(draw(st.integers(0, 5))):
            frm = draw(st.integers(0, nodec - 1))
            to = draw(st.none() | st.integers(0, nodec - 1))
            sets = [TracelbProbeset([TracelbProbe(draw(tval), draw(u16), draw(u8), draw(u8),
                                                  draw(st.lists(tlb_replies(), max_size=2)))
                                     for _ in range(draw(st.integers(0, 2)))])
                    for _ in range(draw(st.integers(0, 2)))]
            links.append(TracelbLink(frm, to, sets))
            nodes[frm].links.append(i)
    return Tracelb(
        dst=draw(addr), src=draw(st.none() | addr), rtr=draw(st.none() | addr),
        userid=draw(u32), start=draw(tval), sport=draw(u16), dport=draw(u16),
        probe_size=draw(u16), type=draw(u8), firsthop=draw(u8), attempts=draw(u8),
        confidence=draw(u8), tos=draw(u8), gaplimit=draw(u8), flags=draw(u8),
        probec=draw(u32), probec_max=draw(u32), wait_timeout=draw(u8), wait_probe=draw(u8),
        errmsg=draw(st.none() | name), nodes=nodes, links=links)


@st.composite
def probedefs(draw, i: int):
    m = draw(st.integers(1, 6))
    icmp, tcp = m == 1, m in (2, 4, 6)
    return DealiasProbedef(
        draw(addr), draw(st.none() | addr), i, m, draw(u8), draw(u8), draw(u16), draw(u16),
        draw(u16) if icmp else 0, draw(u16) if icmp else 0, 0 if icmp else draw(u16),
        0 if icmp else draw(u16), draw(u8) if tcp else 0)


@st.composite
def dl_replies(draw):
    src = draw(addr)
    fam = src.version
    proto = draw(st.sampled_from([1 if fam == 4 else 58, 6, 17]) | u8.filter(
        lambda p: p not in (1, 58)))
    icmp = proto == (1 if fam == 4 else 58)
    return DealiasReply(
        src, draw(tval), draw(u16) if fam == 4 else 0, draw(u32) if fam == 6 else 0, draw(u8),
        draw(u16), draw(u8), proto, draw(u8) if icmp else 0, draw(u8) if icmp else 0,
        draw(u8) if icmp else 0, draw(u8) if proto == 6 else 0, draw(exts) if icmp else None)


@st.composite
def dealiases(draw):
    method = draw(st.integers(1, 7))
    n = {1: 1, 2: 2, 5: 2}.get(method) or draw(st.integers(1 if method != 4 else 0, 3))
    defs = [draw(probedefs(i)) for i in range(n)]
    if method == 1:
        data = DealiasMercator(defs[0], draw(u8), draw(u8))
    elif method == 2:
        data = DealiasAlly(defs, draw(u16), draw(u8), draw(u8), draw(u16), draw(u8))
    elif method == 3:
        data = DealiasRadargun(defs, draw(u16), draw(u16), draw(u32), draw(u8), draw(u8))
    elif method == 4:
        data = DealiasPrefixscan(draw(st.none() | addr), draw(st.none() | addr),
                                 draw(st.none() | addr), draw(st.lists(addr, max_size=3)),
                                 draw(u8), draw(u8), draw(u16), draw(u16), draw(u8), draw(u8),
                                 draw(u8), defs)
    elif method == 5:
        data = DealiasBump(defs, draw(u16), draw(u16), draw(u8))
    elif method == 6:
        data = DealiasMidarest(defs, draw(u8), draw(u32), draw(u32), draw(u32))
    else:
        data = DealiasMidardisc(defs, draw(u32), draw(st.lists(
            st.builds(DealiasMidardiscRound, tval, u32, u32), max_size=3)),
            draw(st.none() | tval))
    probes = []
    if defs:
        for _ in range(draw(st.integers(0, 4))):
            pd = defs[draw(st.integers(0, len(defs) - 1))]
            probes.append(DealiasProbe(pd, draw(u32), draw(tval),
                                       draw(u16) if pd.dst.version == 4 else 0,
                                       draw(st.lists(dl_replies(), max_size=2))))
    return Dealias(method, data, None, None, draw(u32), draw(tval), draw(u8),
                   draw(st.none() | name), probes)


@given(tracelbs())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_tracelb_round_trip(t):
    data = encode_record(t)
    assert read_records(data) == [t]
    assert encode_record(read_records(data)[0]) == data


@given(dealiases())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_dealias_round_trip(d):
    data = encode_record(d)
    assert read_records(data) == [d]
    assert encode_record(read_records(data)[0]) == data


@given(st.lists(st.one_of(tracelbs(), dealiases()), min_size=1, max_size=5), st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mixed_file_round_trip_any_chunking(recs, data):
    lists = [WartsList("a", 1), WartsList("b", 2, None, "mon")]
    cycles = [CycleStart(lists[0], 10, 1), CycleStart(lists[1], 20, 2, 0, "h")]
    for i, r in enumerate(recs):
        r.list = lists[i % 2]
        r.cycle = cycles[i % 2]
    buf = io.BytesIO()
    w = WartsWriter(buf)
    for c in cycles:
        w.write(c)
    for r in recs:
        w.write(r)
    blob = buf.getvalue()
    dec = WartsDecoder()
    out = []
    pos = 0
    while pos < len(blob):
        n = data.draw(st.integers(1, 64))
        out += dec.feed(blob[pos:pos + n])
        pos += n
    dec.close()
    got = [r for r in out if isinstance(r, (Tracelb, Dealias))]
    assert got == recs


def test_tracelb_link_to_unknown_node_is_an_encode_error():
    t = Tracelb(ipaddress.ip_address("192.0.2.1"), nodes=[TracelbNode()],
                links=[TracelbLink(0, 3)])
    with pytest.raises(WartsEncodeError):
        encode_record(t)


def test_dealias_probe_with_foreign_probedef_is_an_encode_error():
    a = ipaddress.ip_address("192.0.2.1")
    pd = DealiasProbedef(a)
    other = DealiasProbedef(a, id=1)
    d = Dealias(1, DealiasMercator(pd), probes=[DealiasProbe(other)])
    with pytest.raises(WartsEncodeError):
        encode_record(d)


# --------------------------------------------------------------------------
# files we write, read by the real tools: their output must equal ours

import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

from conftest import requires_tool  # noqa: E402
from ixpscamper.warts import iter_text, render_json  # noqa: E402
from ixpscamper.warts.reader import iter_records  # noqa: E402
from warts_render import _utc  # noqa: E402

sv4 = st.builds(ipaddress.IPv4Address, st.integers(0x01000000, 0xDFFFFFFF))


@st.composite
def sane_tracelbs(draw):
    """Tracelbs of the shapes scamper produces (every node has an address,
    every hop at least one probe; a link may end in silence only when it is
    its node's only link)."""
    nodec = draw(st.integers(1, 5))
    nodes = [TracelbNode(draw(sv4), None, 1, draw(st.integers(0, 3))) for _ in range(nodec)]
    links = []
    for i in range(draw(st.integers(0, 6))):
        frm = draw(st.integers(0, nodec - 1))
        to = draw(st.integers(0, nodec - 1))
        sets = []
        for h in range(draw(st.integers(1, 3))):
            probes = []
            for k in range(draw(st.integers(1, 3))):
                tx = Timeval(draw(st.integers(1, 2**31)), draw(st.integers(0, 999999)))
                rxs = []
                for _ in range(draw(st.integers(0, 2))):
                    tcp = draw(st.booleans())
                    rx = Timeval(tx.sec + draw(st.integers(0, 2)), draw(st.integers(0, 999999)))
                    if tcp:
                        rxs.append(TracelbReply(draw(sv4), rx, draw(u16), draw(u8), 0x03, 0, 0,
                                                0, 0, None, draw(u8)))
                    else:
                        it, ic = draw(st.sampled_from([(11, 0), (3, 3), (3, 1), (0, 0)]))
                        rxs.append(TracelbReply(draw(sv4), rx, draw(u16), draw(u8), 0x01, it,
                                                ic, draw(u8), draw(u8), None, 0))
                probes.append(TracelbProbe(tx, draw(st.integers(0, 3)), draw(u8), k, rxs))
            sets.append(TracelbProbeset(probes))
        links.append(TracelbLink(frm, to, sets))
        nodes[frm].links.append(i)
    # a single link may end in silence
    for n in nodes:
        if len(n.links) == 1 and draw(st.booleans()):
            links[n.links[0]].to = None
    return Tracelb(dst=draw(sv4), src=draw(sv4), userid=draw(u32),
                   start=Timeval(draw(st.integers(1, 2**31)), draw(st.integers(0, 999999))),
                   sport=draw(u16), dport=draw(u16), probe_size=draw(u16),
                   type=draw(st.integers(1, 5)), firsthop=draw(st.integers(1, 5)),
                   attempts=draw(u8), confidence=draw(st.sampled_from([95, 99])),
                   tos=draw(u8), gaplimit=draw(u8), probec=draw(u32), probec_max=draw(u32),
                   wait_timeout=draw(u8), wait_probe=draw(st.integers(0, 100)),
                   nodes=nodes, links=links)


@st.composite
def sane_dealiases(draw):
    """Dealiases of the methods and fields scamper 20211212 knows."""
    method = draw(st.integers(1, 5))
    n = {1: 1, 2: 2, 5: 2}.get(method) or draw(st.integers(1, 4))
    defs = []
    for i in range(n):
        m = draw(st.integers(1, 5))
        icmp, tcp = m == 1, m in (2, 4)
        defs.append(DealiasProbedef(
            draw(sv4), draw(sv4), i, m, draw(u8), 0, 0, 0, draw(u16) if icmp else 0, 0,
            0 if icmp else draw(u16), 0 if icmp else draw(u16), draw(u8) if tcp else 0))
    if method == 1:
        data = DealiasMercator(defs[0], draw(u8), draw(u8))
    elif method == 2:
        data = DealiasAlly(defs, draw(u16), draw(u8), draw(u8), draw(u16), draw(st.integers(0, 1)))
    elif method == 3:
        data = DealiasRadargun(defs, draw(u16), draw(u16), draw(u16), draw(u8), 0)
    elif method == 4:
        a = draw(sv4)
        data = DealiasPrefixscan(a, draw(sv4), None, [], draw(st.integers(0, 32)), draw(u8),
                                 draw(u16), draw(u16), draw(u8), 0, draw(u8), defs)
    else:
        data = DealiasBump(defs, draw(u16), draw(u16), draw(u8))
    probes = []
    for s in range(draw(st.integers(0, 4))):
        pd = defs[draw(st.integers(0, len(defs) - 1))]
        reps = []
        for _ in range(draw(st.integers(0, 2))):
            proto = draw(st.sampled_from([1, 6, 17]))
            it, ic = draw(st.sampled_from([(0, 0), (3, 3), (11, 0)])) if proto == 1 else (0, 0)
            reps.append(DealiasReply(draw(sv4), Timeval(draw(st.integers(1, 2**31)),
                                                        draw(st.integers(0, 999999))),
                                     draw(u16), 0, draw(u8), 0, 0, proto, it, ic,
                                     draw(u8) if proto == 1 else 0,
                                     draw(u8) if proto == 6 else 0, None))
        probes.append(DealiasProbe(pd, s, Timeval(draw(st.integers(1, 2**31)),
                                                  draw(st.integers(0, 999999))),
                                   draw(u16), reps))
    return Dealias(method, data, None, None, draw(u32),
                   Timeval(draw(st.integers(1, 2**31)), draw(st.integers(0, 999999))),
                   draw(st.integers(0, 4)), None, probes)


def _tool(tool: str, path: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool, path], capture_output=True, timeout=30,
                          env={**os.environ, "TZ": "UTC"})


def _ours(path: str) -> tuple[bytes, bytes]:
    def render():
        with open(path, "rb") as f:
            text = "".join(iter_text(f, like="sc_warts2text"))
        with open(path, "rb") as f:
            js = "".join(render_json(r) for r in iter_records(f, like="sc_warts2json"))
        return text, js
    text, js = _utc(render)
    return text.encode(), js.encode()


@requires_tool("sc_warts2text")
@requires_tool("sc_warts2json")
@given(st.lists(st.one_of(sane_tracelbs(), sane_dealiases()), min_size=1, max_size=3))
@settings(max_examples=int(os.environ.get("WARTS_ORACLE_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
def test_real_tools_render_our_files_like_we_do(recs):
    lst = WartsList()
    cyc = CycleStart(lst, 100, 0, 0, "h")
    for r in recs:
        r.list, r.cycle = lst, cyc
    fd, path = tempfile.mkstemp(suffix=".warts")
    try:
        with os.fdopen(fd, "wb") as f:
            w = WartsWriter(f)
            w.write(cyc)
            for r in recs:
                w.write(r)
        text, js = _ours(path)
        t = _tool("sc_warts2text", path)
        j = _tool("sc_warts2json", path)
        assert t.returncode == 0 and j.returncode == 0
        assert text == t.stdout
        assert js == j.stdout
    finally:
        os.unlink(path)
