"""Hypothesis strategies for the neighbourdisc, sting, sniff, http, udpprobe
and owamp records, and helpers to put them in a warts stream and to run
the scamper 2026 build on it (used by test_warts_misc_writers.py and
test_warts_owamp.py)."""

from __future__ import annotations

import ipaddress
import os
import struct
import subprocess
from pathlib import Path

from hypothesis import strategies as st

from conftest import TESTS
from ixpscamper.warts.owamp import Owamp, OwampRx, OwampSched, OwampTx
from ixpscamper.warts.records import (
    CycleStart, CycleStop, Http, HttpBuf, LinkAddress, Neighbourdisc, NeighbourdiscProbe, NeighbourdiscReply,
    Sniff, SniffPkt, Sting, StingPkt, Timeval, Udpprobe, UdpprobeProbe, UdpprobeReply, WartsList,
)
from ixpscamper.warts.writer import encode_cycle, encode_cycle_stop, encode_list, encode_record

S26 = Path(os.environ.get("SCAMPER_2026", TESTS.parents[1] / "shared" / "scamper-2026"))

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
#: usec below a second: what scamper itself stores (its printers assume it)
tvs = st.builds(Timeval, u32, st.integers(0, 999_999))
tv_or_zero = st.one_of(st.just(Timeval(0, 0)), tvs)
v4 = st.builds(ipaddress.IPv4Address, u32)
v6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2 ** 128 - 1))
macs = st.builds(LinkAddress, st.binary(min_size=6, max_size=6), st.just(3))
eui64 = st.builds(LinkAddress, st.binary(min_size=8, max_size=8), st.just(4))
ips = st.one_of(v4, v6)
addrs = st.one_of(v4, v6, macs, eui64)
#: strings scamper can hold: no NUL; mostly printable (its JSON stops at
#: the first unprintable byte, which is then exercised too)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=40)
ptexts = st.text(st.characters(min_codepoint=1, max_codepoint=126), max_size=40)
opt = st.none().__or__


def lists_cycles():
    """A (list, cycle) pair, or (None, None): what a record may refer to."""
    # (a list with an empty name and no options is 10 bytes, which readers
    # refuse: scamper's lists always have a name)
    lst = st.builds(WartsList, st.text(st.characters(min_codepoint=1, max_codepoint=126),
                                       min_size=1, max_size=20), u32, st.one_of(st.none(), ptexts),
                    st.one_of(st.none(), ptexts))
    return st.one_of(st.just((None, None)), lst.flatmap(
        lambda L: st.tuples(st.just(L), st.one_of(st.none(), st.builds(
            CycleStart, st.just(L), u32, u32, st.just(0), st.one_of(st.none(), ptexts))))))


@st.composite
def neighbourdiscs(draw, strings=texts):
    L, C = draw(lists_cycles())
    probes = draw(st.lists(st.builds(NeighbourdiscProbe, tvs, st.lists(
        st.builds(NeighbourdiscReply, tvs, addrs), max_size=3)), max_size=4))
    return Neighbourdisc(L, C, draw(u32), draw(opt(strings)), draw(tvs), draw(u8), draw(u16),
                         draw(u8), draw(u16), draw(u16), draw(opt(addrs)), draw(opt(addrs)),
                         draw(opt(addrs)), draw(opt(addrs)), draw(opt(strings)), probes)


@st.composite
def stings(draw, strings=texts, with_data=True, with_errmsg=True):
    L, C = draw(lists_cycles())
    pkts = draw(st.lists(st.builds(StingPkt, u8, tvs, st.binary(min_size=1, max_size=60)),
                         max_size=5))
    data = draw(st.binary(max_size=20)) if with_data else b""
    return Sting(draw(ips), draw(ips), L, C, draw(u32), draw(u16), draw(u16), draw(u16),
                 draw(u16), draw(u16), draw(u8), draw(u8), draw(u8), draw(u8), data, draw(tvs),
                 draw(tvs), draw(u16), draw(u16), draw(u8),
                 draw(opt(strings)) if with_errmsg else None, pkts)


@st.composite
def sniffs(draw, strings=texts):
    L, C = draw(lists_cycles())
    pkts = draw(st.lists(st.builds(SniffPkt, tvs, st.binary(min_size=1, max_size=80)),
                         max_size=5))
    return Sniff(draw(ips), L, C, draw(u32), draw(tvs), draw(tvs), draw(u8), draw(u32),
                 draw(u16), draw(u16), draw(opt(strings)), pkts)


@st.composite
def https(draw, strings=texts, host_file=False):
    """Http records; ``host_file``: always with a host and a file (scamper's
    writer dereferences both: it crashes on a record without them)."""
    L, C = draw(lists_cycles())
    hf = strings if host_file else opt(strings)
    typ = draw(st.sampled_from([0, 1, 0, 1, 2, 200]))
    bufs = draw(st.lists(st.builds(HttpBuf, st.integers(0, 1), st.integers(0, 127), tv_or_zero,
                                   st.binary(max_size=60)), max_size=5))
    return Http(draw(opt(ips)), draw(opt(ips)), L, C, draw(u32), draw(u16),
                draw(st.one_of(st.sampled_from([0, 80, 443]), u16)), draw(tv_or_zero), draw(u8),
                typ, draw(hf), draw(hf), draw(st.lists(strings, max_size=4)),
                draw(u32), draw(u32), draw(tv_or_zero), draw(opt(strings)), draw(u8),
                draw(opt(strings)), draw(opt(st.binary(min_size=1, max_size=30))),
                draw(opt(st.binary(min_size=1, max_size=30))), bufs)


@st.composite
def udpprobes(draw, strings=texts):
    """Udpprobe records (one probe sent and a probe count of 1 included:
    scamper leaves those fields out, and readers default them to 1)."""
    L, C = draw(lists_cycles())
    start = draw(tv_or_zero)
    reply = st.builds(UdpprobeReply, tv_or_zero, st.binary(max_size=20),
                      opt(st.sampled_from(["eth0", "eth1", "lo"]) | strings))
    probes = draw(st.lists(st.builds(UdpprobeProbe, tvs, u16, st.lists(reply, max_size=3)),
                           max_size=5))
    if probes:
        probes[0].tx = start
    pc = draw(u8)
    return Udpprobe(draw(opt(ips)), draw(opt(ips)), L, C, draw(u32), draw(u16), draw(u16),
                    start, draw(u32), draw(u32), draw(u8), draw(st.binary(max_size=20)),
                    draw(u8), draw(u8), pc, draw(opt(strings)), probes)


@st.composite
def owamps(draw, strings=texts):
    L, C = draw(lists_cycles())
    rx = st.builds(OwampRx, tv_or_zero, u16, st.integers(0, 7) | u8, u8, u8)
    tx = st.builds(OwampTx, tv_or_zero, tv_or_zero, u32, u16, st.integers(0, 3) | u8,
                   st.lists(rx, max_size=3))
    sched = st.builds(OwampSched, tv_or_zero, st.integers(0, 2) | u8)
    return Owamp(L, C, draw(u32), draw(opt(ips)), draw(opt(ips)),
                 draw(st.sampled_from([861, 0]) | u16), draw(u16), draw(tv_or_zero),
                 draw(tv_or_zero), draw(st.sampled_from([Timeval(2, 0)]) | tv_or_zero),
                 draw(st.lists(sched, max_size=3)), draw(st.sampled_from([10]) | u32),
                 draw(st.sampled_from([42]) | u16), draw(st.integers(0, 2) | u8), draw(u8),
                 draw(st.sampled_from([255]) | u8), draw(u32), draw(st.integers(0, 8) | u8),
                 draw(opt(strings)), draw(u16), draw(u16), draw(st.lists(tx, max_size=4)))


def stream(recs) -> bytes:
    """A warts file holding ``recs``, each after the list and cycle it refers to."""
    out: list[bytes] = []
    lists: dict[int, int] = {}
    cycles: dict[int, int] = {}
    for r in recs:
        lid = cid = 0
        if r.list is not None:
            lid = lists.get(id(r.list), 0)
            if not lid:
                lid = lists[id(r.list)] = len(lists) + 1
                out.append(encode_list(r.list, lid))
        if r.cycle is not None:
            cid = cycles.get(id(r.cycle), 0)
            if not cid:
                clid = lists.get(id(r.cycle.list), 0)
                if not clid:
                    clid = lists[id(r.cycle.list)] = len(lists) + 1
                    out.append(encode_list(r.cycle.list, clid))
                cid = cycles[id(r.cycle)] = len(cycles) + 1
                out.append(encode_cycle(r.cycle, cid, clid))
        out.append(encode_record(r, lid, cid))
    return b"".join(out)


def reencode(recs) -> bytes:
    """``recs`` (as read from a file) encoded again, lists and cycles numbered
    in stream order as scamper numbers them.  (WartsWriter would do, but it
    does not take the registered record classes yet.)"""
    lists: dict[int, int] = {}
    cycles: dict[int, int] = {}
    out = []
    for r in recs:
        if isinstance(r, WartsList):
            lists[id(r)] = len(lists) + 1
            out.append(encode_list(r, lists[id(r)]))
        elif isinstance(r, CycleStart):
            cycles[id(r)] = len(cycles) + 1
            out.append(encode_cycle(r, cycles[id(r)], lists[id(r.list)]))
        elif isinstance(r, CycleStop):
            out.append(encode_cycle_stop(r, cycles[id(r.cycle)]))
        else:
            out.append(encode_record(r, lists.get(id(r.list), 0), cycles.get(id(r.cycle), 0)))
    return b"".join(out)


def raw_records(data: bytes) -> list[tuple[int, bytes]]:
    """``(type, record bytes)`` for each record of a warts byte string."""
    out, pos = [], 0
    while pos < len(data):
        _m, t, ln = struct.unpack_from(">HHI", data, pos)
        out.append((t, data[pos:pos + 8 + ln]))
        pos += 8 + ln
    return out


def have_2026(tool: str = "sc_warts2json") -> bool:
    return (S26 / "bin" / tool).exists()


def run_2026(tool: str, path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(S26 / "bin" / tool), *args, str(path)], capture_output=True,
                          timeout=60, env={**os.environ, "TZ": "UTC"})


_REWRITE = """
import sys, scamper
inf = scamper.ScamperFile(sys.argv[1], "r")
out = scamper.ScamperFile(sys.argv[2], "w", kind="warts")
for o in inf:
    out.write(o)
out.close()
"""


def have_2026_python() -> bool:
    return (S26 / "python" / "scamper.so").exists() and Path("/usr/bin/python3").exists()


def rewrite_2026(src: Path, dst: Path) -> bytes:
    """What scamper 2026's libscamperfile writes for the objects it reads from ``src``."""
    subprocess.run(["/usr/bin/python3", "-c", _REWRITE, str(src), str(dst)], check=True,
                   capture_output=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": str(S26 / "python")})
    return dst.read_bytes()
