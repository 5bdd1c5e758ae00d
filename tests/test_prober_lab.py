"""The prober with real packets in the IXP lab, side by side with the Debian scamper.

Each test runs our prober (``python3 -m ixpscamper.prober``, which writes a
warts file like ``scamper -O warts -o FILE``) and the real scamper on the
same commands inside the lab's collector namespace, reads both files with
the real ``sc_warts2json`` and compares hop addresses, stop reasons and
reply types (RTTs only within a loose bound: the lab has no delay emulation).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import requires_root, requires_tool

pytestmark = [requires_root, requires_tool("scamper"), requires_tool("sc_warts2json"),
              pytest.mark.root, pytest.mark.interop, pytest.mark.slow]

DST = "198.51.100.66"
DST6 = "2001:db8:d::66"
VIA_RA = ["192.0.2.1", "198.18.1.2", DST]
VIA_RB = ["192.0.2.2", "198.18.2.2", DST]
VIA_RA6 = ["2001:db8:1::1", "2001:db8:a::2", DST6]
VIA_RB6 = ["2001:db8:1::2", "2001:db8:b::2", DST6]


@pytest.fixture(scope="module")
def lab():
    from ixpscamper.lab import Lab
    built = Lab.create()
    try:
        yield built
    finally:
        built.teardown()


def _records(path: Path) -> list[dict]:
    out = subprocess.run(["sc_warts2json", str(path)], capture_output=True, text=True, check=True).stdout
    return [r for r in map(json.loads, out.splitlines()) if r["type"] in ("trace", "ping")]


_VARYING = re.compile(r"(time|start|tx|rtt|ipid|sport|echo id|csum|dport|seq|ack|icmp-tsreply)[:=]? *[^,\n]*")


def dump(path: Path) -> list[str]:
    """sc_wartsdump's view of a file, without the values that differ between runs."""
    out = subprocess.run(["sc_wartsdump", str(path)], capture_output=True, text=True, check=True).stdout
    return [_VARYING.sub("", line) for line in out.splitlines()]


def run_ours(lab, tmp_path: Path, cmds: list[str], pps: int = 20, check: bool = True):
    out = tmp_path / f"ours-{time.monotonic_ns()}.warts"
    proc = lab.run("coll", [sys.executable, "-m", "ixpscamper.prober", "-p", str(pps), "-o", str(out), *cmds],
                   check=False, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    run_ours.last = out
    return _records(out), proc


def run_scamper(lab, tmp_path: Path, cmds: list[str], pps: int = 20) -> list[dict]:
    out = tmp_path / f"scamper-{time.monotonic_ns()}.warts"
    argv = ["scamper", "-p", str(pps), "-O", "warts", "-o", str(out)]
    for c in cmds:
        argv += ["-I", c]
    lab.run("coll", argv, timeout=60)
    run_scamper.last = out
    return _records(out)


def key(r: dict) -> tuple:
    return (r["type"], r["method"], r["dst"], r.get("rtr"))


def by_key(recs: list[dict]) -> dict[tuple, dict]:
    return {key(r): r for r in recs}


def trace_shape(r: dict) -> dict:
    return {
        "stop": (r["stop_reason"], r["stop_data"]), "hop_count": r["hop_count"],
        "hops": [(h["probe_ttl"], h["addr"], h.get("icmp_type"), h.get("icmp_code"), h.get("tcp_flags"),
                  h["reply_size"], h.get("icmp_q_ipl"), h.get("icmp_q_ttl")) for h in r.get("hops", [])],
        "head": (r["attempts"], r["firsthop"], r["probe_size"], r["wait"], r["hoplimit"], r.get("rtr")),
    }


def ping_shape(r: dict) -> dict:
    return {
        "sent": r["ping_sent"], "size": r["probe_size"], "method": r["method"],
        "responses": [(x["seq"], x["from"], x["reply_proto"], x.get("icmp_type"), x.get("tcp_flags"),
                       x["reply_size"], x.get("RR")) for x in r["responses"]],
    }


def assert_same(ours: list[dict], theirs: list[dict], rtt_limit: float | None = 50) -> None:
    o, t = by_key(ours), by_key(theirs)
    assert o.keys() == t.keys()
    for k in o:
        shape = trace_shape if k[0] == "trace" else ping_shape
        assert shape(o[k]) == shape(t[k]), k
        rtts = [h["rtt"] for h in o[k].get("hops", [])] + [x["rtt"] for x in o[k].get("responses", [])]
        if rtt_limit is not None:  # milliseconds; the lab has no delay
            assert all(0 <= x < rtt_limit for x in rtts), (k, rtts)


def addrs(r: dict) -> list[str]:
    return [h["addr"] for h in r.get("hops", [])]


def test_trace_via_each_member(lab, tmp_path):
    cmds = [f"trace -r 192.0.2.1 {DST}", f"trace -r 192.0.2.2 {DST}",
            f"trace -P icmp-paris -r 2001:db8:1::2 {DST6}", f"trace -P icmp-paris -r 2001:db8:1::1 {DST6}"]
    ours, _ = run_ours(lab, tmp_path, cmds)
    theirs = run_scamper(lab, tmp_path, cmds)
    o = by_key(ours)
    assert addrs(o[("trace", "udp-paris", DST, "192.0.2.1")]) == VIA_RA
    assert addrs(o[("trace", "udp-paris", DST, "192.0.2.2")]) == VIA_RB
    assert addrs(o[("trace", "icmp-echo-paris", DST6, "2001:db8:1::2")]) == VIA_RB6
    assert addrs(o[("trace", "icmp-echo-paris", DST6, "2001:db8:1::1")]) == VIA_RA6
    assert all(r["stop_reason"] == "COMPLETED" for r in ours)
    assert_same(ours, theirs)


def test_trace_every_method_both_families(lab, tmp_path):
    cmds = [f"trace -P {m} {DST}" for m in ("udp-paris", "udp", "icmp", "icmp-paris", "tcp", "tcp-ack")]
    cmds += [f"trace -P {m} {DST6}" for m in ("udp", "icmp", "icmp-paris", "tcp", "tcp-ack")]
    ours, _ = run_ours(lab, tmp_path, cmds)
    theirs = run_scamper(lab, tmp_path, cmds)
    for r in ours:
        assert r["stop_reason"] == "COMPLETED", r
        assert addrs(r) == (VIA_RA if r["dst"] == DST else VIA_RA6)
    assert_same(ours, theirs)


def test_trace_udp_paris_ipv6(lab, tmp_path):
    # scamper 20211212 on Linux cannot match its own IPv6 udp-paris probes (it
    # ends on the gap limit with no replies); ours completes, on the path
    # scamper finds with -P udp
    ours, _ = run_ours(lab, tmp_path, [f"trace {DST6}"])
    theirs = run_scamper(lab, tmp_path, [f"trace -P udp {DST6}"])
    assert ours[0]["stop_reason"] == "COMPLETED"
    assert [(h["addr"], h["icmp_type"], h["icmp_code"]) for h in ours[0]["hops"]] == \
        [(h["addr"], h["icmp_type"], h["icmp_code"]) for h in theirs[0]["hops"]]


def test_ping_every_method_and_router(lab, tmp_path):
    cmds = [f"ping -c 2 -i 0.2 {DST}", f"ping -P udp -c 2 -i 0.2 {DST}",
            f"ping -P udp-dport -c 2 -i 0.2 {DST}", f"ping -P tcp-syn -d 80 -c 2 -i 0.2 {DST}",
            f"ping -P tcp-ack -c 2 -i 0.2 {DST}", f"ping -P tcp-ack-sport -c 2 -i 0.2 {DST}",
            f"ping -P icmp-time -c 2 -i 0.2 {DST}", f"ping -c 2 -i 0.2 {DST6}",
            f"ping -P tcp-syn -c 2 -i 0.2 {DST6}", f"ping -r 192.0.2.2 -c 3 -i 0.2 {DST}",
            f"ping -r 2001:db8:1::2 -c 2 -i 0.2 {DST6}"]
    ours, _ = run_ours(lab, tmp_path, cmds)
    theirs = run_scamper(lab, tmp_path, cmds)
    assert len(ours) == len(cmds)
    for r in ours:
        assert r["ping_sent"] == r["statistics"]["replies"] == len(r["responses"]), r
        assert {x["from"] for x in r["responses"]} == {r["dst"]}, r
    assert by_key(ours)[("ping", "icmp-echo", DST, "192.0.2.2")]["ping_sent"] == 3
    assert_same(ours, theirs)


def test_ping_record_route_and_ttl_errors(lab, tmp_path):
    cmds = [f"ping -R -c 2 -i 0.2 {DST}", f"ping -m 1 -c 2 -i 0.2 {DST}"]
    ours, _ = run_ours(lab, tmp_path, cmds)
    theirs = run_scamper(lab, tmp_path, cmds)
    rr = [r for r in ours if r["probe_size"] == 124][0]
    assert rr["flags"] == ["v4rr"] and all(len(x["RR"]) == 7 for x in rr["responses"])
    assert_same([r for r in ours if r["probe_size"] == 124], [r for r in theirs if r["probe_size"] == 124])
    assert_same([r for r in ours if r["ttl"] == 1], [r for r in theirs if r["ttl"] == 1])
    assert [x["from"] for x in [r for r in ours if r["ttl"] == 1][0]["responses"]] == ["192.0.2.1"] * 2


def test_unreachable_destinations(lab, tmp_path):
    cmds = ["trace -w 1 -q 1 -g 3 192.0.2.99", "trace -w 1 198.51.100.99", "ping -c 2 -i 0.2 198.51.100.99"]
    ours, _ = run_ours(lab, tmp_path, cmds)
    theirs = run_scamper(lab, tmp_path, cmds)
    o = by_key(ours)
    assert o[("trace", "udp-paris", "192.0.2.99", None)]["stop_reason"] == "GAPLIMIT"
    assert (o[("trace", "udp-paris", "198.51.100.99", None)]["stop_reason"],
            o[("trace", "udp-paris", "198.51.100.99", None)]["stop_data"]) == ("UNREACH", 1)
    assert o[("ping", "icmp-echo", "198.51.100.99", None)]["responses"] == []
    # the !H comes when t1 gives up on ARP, seconds later: no RTT bound here
    assert_same([r for r in ours if r["type"] == "trace"], [r for r in theirs if r["type"] == "trace"],
                rtt_limit=None)
    assert ping_shape(o[("ping", "icmp-echo", "198.51.100.99", None)]) == \
        ping_shape(by_key(theirs)[("ping", "icmp-echo", "198.51.100.99", None)])


def test_two_traces_to_the_same_destination_at_once(lab, tmp_path):
    cmds = [f"trace {DST}", f"trace {DST}", f"trace -r 192.0.2.2 {DST}", f"trace -r 192.0.2.2 {DST}",
            f"trace -P icmp-paris {DST6}", f"trace -P icmp-paris {DST6}"]
    ours, _ = run_ours(lab, tmp_path, cmds)
    theirs = run_scamper(lab, tmp_path, sorted(set(cmds)))
    assert len(ours) == 6
    expect = {(DST, None): VIA_RA, (DST, "192.0.2.2"): VIA_RB, (DST6, None): VIA_RA6}
    t = by_key(theirs)
    for r in ours:
        assert addrs(r) == expect[(r["dst"], r.get("rtr"))] and r["probe_count"] == 3, r
        assert trace_shape(r) == trace_shape(t[key(r)])
    udp = [r["sport"] for r in ours if r["method"] == "udp-paris"]
    icmp = [r["icmp_sum"] for r in ours if r["method"] == "icmp-echo-paris"]  # = the ICMP id here
    assert len(set(udp)) == 4 and len(set(icmp)) == 2


FLOOD = r"""
import os, random, socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
me = socket.inet_aton("198.51.100.66"); coll = socket.inet_aton("192.0.2.10")
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
rng = random.Random(1)
end = time.time() + float(sys.argv[1]); n = 0
while time.time() < end:
    if n % 2:
        body = struct.pack("!BBHHH", 0, 0, 0, rng.randrange(65536), rng.randrange(65536)) + bytes(16)
    else:
        udp = struct.pack("!HHHH", rng.randrange(65536), 33435, 24, rng.randrange(1, 65536)) + bytes(16)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 44, rng.randrange(1, 8), 0x4000, 1, 17, 0, coll, me)
        body = struct.pack("!BBHI", 3, 3, 0, 0) + ip + udp
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    try:
        s.sendto(body, ("192.0.2.10", 0)); n += 1
    except OSError:
        time.sleep(0.001)
print(n)
"""


def test_storm_of_unrelated_icmp(lab, tmp_path):
    cmds = [f"trace {DST}", f"trace -P icmp-paris -r 192.0.2.2 {DST}", f"ping -c 3 -i 0.2 {DST}"]
    theirs = run_scamper(lab, tmp_path, cmds)
    flood = lab.popen("dst", [sys.executable, "-c", FLOOD, "6"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        ours, _ = run_ours(lab, tmp_path, cmds)
    finally:
        sent = flood.communicate(timeout=30)[0]
    assert int(sent) > 10_000, sent  # the storm really happened
    print(f"storm: {int(sent)} unrelated ICMP packets in 6 s")
    assert_same(ours, theirs)


def test_router_problems(lab, tmp_path):
    t0 = time.monotonic()
    ours, _ = run_ours(lab, tmp_path, [f"trace -r 192.0.2.99 {DST}", f"ping -r 2001:db8:1::99 {DST6}"])
    assert time.monotonic() - t0 < 8
    assert {r["type"]: r.get("stop_reason", None) for r in ours}["trace"] == "ERROR"
    assert all(r.get("probe_count", r.get("ping_sent")) == 0 for r in ours)
    # scamper 20211212 also sends nothing, but records stop reason NONE
    theirs = run_scamper(lab, tmp_path, [f"trace -r 192.0.2.99 {DST}"])
    assert theirs[0]["probe_count"] == 0
    recs, proc = run_ours(lab, tmp_path, [f"trace -r 198.18.1.2 {DST}"], check=False)
    assert proc.returncode == 1 and recs == []
    assert proc.stderr.strip() == "prober: router 198.18.1.2 is not on a directly connected network"


@pytest.mark.parametrize("cmd", [f"trace -r 192.0.2.2 {DST}", f"trace -P tcp {DST}",
                                 f"ping -P tcp-syn -d 80 -c 2 -i 0.2 {DST}", f"trace -P icmp -q 3 -Q {DST6}"])
def test_every_field_as_scamper_dumps_it(lab, tmp_path, cmd):
    # sc_wartsdump shows every field, hop flags (sockrxts / dlrxts) included
    run_ours(lab, tmp_path, [cmd])
    run_scamper(lab, tmp_path, [cmd])
    assert dump(run_ours.last) == dump(run_scamper.last)


def test_loop_and_hoplimit(lab, tmp_path):
    # a forwarding loop inside the lab: t1 sends dst's t2-side address back to rA
    lab.run("t1", ["ip", "route", "add", "198.18.3.0/30", "via", "198.18.1.1"])
    try:
        cmds = ["trace -q 1 198.18.3.2", f"trace -m 2 {DST}"]
        ours, _ = run_ours(lab, tmp_path, cmds)
        theirs = run_scamper(lab, tmp_path, cmds)
    finally:
        lab.run("t1", ["ip", "route", "del", "198.18.3.0/30", "via", "198.18.1.1"])
    o = by_key(ours)
    loop = o[("trace", "udp-paris", "198.18.3.2", None)]
    assert loop["stop_reason"] == "LOOP" and addrs(loop) == ["192.0.2.1", "198.18.1.2", "192.0.2.1"]
    assert o[("trace", "udp-paris", DST, None)]["stop_reason"] == "HOPLIMIT"
    assert_same(ours, theirs)
