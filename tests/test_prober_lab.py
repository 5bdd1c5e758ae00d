"""The prober with real packets in the IXP lab, side by side with the Debian scamper.

Each test runs our prober (``python3 -m ixpscamper.prober``, which writes a
warts file like ``scamper -O warts -o FILE``) and the real scamper on the
same commands inside the lab's collector namespace, reads both files with
the real ``sc_warts2json`` and compares hop addresses, stop reasons and
reply types (RTTs only within a loose bound: the lab has no delay emulation).
"""

from __future__ import annotations

import difflib
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


# -- trace -p (payload) and -G 2 (last-ditch) -------------------------------------

SNIFF = r"""
import select, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # every interface
print("ready", flush=True)
while True:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in r:
        break
    frame, addr = s.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    print(frame[14:].hex(), flush=True)
"""


def sniff_probes(lab, run):
    """The probes (IP packets from the collector) that reach dst while ``run()`` runs."""
    proc = lab.popen("dst", [sys.executable, "-c", SNIFF], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        result = run()
    finally:
        out = proc.communicate("", timeout=10)[0]
    probes = []
    for line in out.split():
        pkt = bytes.fromhex(line)
        if pkt[0] >> 4 == 4 and pkt[12:16] == bytes([192, 0, 2, 10]) and pkt[9] in (1, 17):
            probes.append((4, pkt[9], pkt[20:]))
        elif pkt[0] >> 4 == 6 and pkt[8:24] == bytes.fromhex("20010db8000100000000000000000010") \
                and pkt[6] in (17, 58):
            probes.append((6, pkt[6], pkt[40:]))
    return result, probes


def payload_view(probes) -> list[tuple]:
    """What of each probe's payload both tools must agree on: all of it, except
    the two bytes the paris methods steer the checksum with (known by the
    first payload bytes here differing from the -p value)."""
    view = []
    for fam, proto, l4 in probes:
        if proto in (1, 58) and l4[0] not in (8, 128):
            continue  # not an echo request
        body = l4[8:]
        view.append((fam, proto, len(body), body[2:], body[:2] if body[:2] == b"\x0b\xad" else b""))
    return sorted(view)


def test_trace_payload(lab, tmp_path):
    cmds = [f"trace -p 0badcafe {DST}", f"trace -P udp -p 0badcafe {DST}",
            f"trace -P icmp -p 0badcafe00 {DST}", f"trace -P icmp-paris -p 0badcafe {DST6}",
            f"trace -P udp -p 0bad {DST6}"]
    (ours, _), sent_ours = sniff_probes(lab, lambda: run_ours(lab, tmp_path, cmds))
    theirs, sent_theirs = sniff_probes(lab, lambda: run_scamper(lab, tmp_path, cmds))
    assert_same(ours, theirs)
    sizes = {(r["method"], r["dst"]): r["probe_size"] for r in ours}
    assert sizes == {("udp-paris", DST): 32, ("udp", DST): 32, ("icmp-echo", DST): 33,
                     ("icmp-echo-paris", DST6): 52, ("udp", DST6): 50}
    for r in ours:
        assert r["stop_reason"] == "COMPLETED" and all(h["icmp_q_ipl"] == r["probe_size"]
                                                       for h in r["hops"] if "icmp_q_ipl" in h)
    view = payload_view(sent_ours)
    assert len(view) == 5 and view == payload_view(sent_theirs)
    assert (4, 17, 4, b"\xca\xfe", b"\x0b\xad") in view  # -P udp: the payload as given


LASTDITCH = [f"trace -f 2 -w 1 -q 1 -g 1 -G 2 {DST}", f"trace -w 1 -q 1 -g 1 -G 2 -P icmp -r 192.0.2.2 {DST}",
             f"trace -w 1 -q 1 -g 1 -G 2 -P udp {DST6}", f"trace -w 1 -q 1 -g 1 -G 2 -P tcp {DST}",
             "trace -w 1 -q 1 -g 1 -G 2 198.18.9.9"]  # t1 has no route, and it is muted
# -N (parallel mode) on the same silent path: outstanding TTLs are finished
# (and re-probed) after the destination answers; the gap counts from TTL 1
SQUERIES = [f"trace -N 3 -w 1 -P icmp-paris {DST}", f"trace -N 2 -w 1 -q 1 -g 2 -P icmp {DST6}",
            "trace -N 4 -w 1 -q 1 -g 4 -P udp 198.18.9.9"]


def lastditch_of(path: Path) -> dict[tuple, list[tuple]]:
    """Each trace's last-ditch replies, read with our reader (sc_wartsdump does
    not show them for a trace without hops).  Hop flag 0x02 (dltxts) is left
    out: scamper sets it only when its datalink socket happens to report the
    outgoing probe after the reply was handled."""
    from ixpscamper.warts import iter_records
    from ixpscamper.warts.records import Trace
    with open(path, "rb") as f:
        return {(str(t.dst), str(t.rtr), t.method): [
            (h.probe_ttl, str(h.addr), h.probe_id, h.flags & ~0x02, h.icmp_type, h.icmp_code, h.tcp_flags,
             h.reply_size, h.probe_size) for h in (t.lastditch or [])]
            for t in iter_records(f) if isinstance(t, Trace)}


def test_trace_lastditch_and_squeries(lab, tmp_path):
    # t1 and t2 stay silent when a TTL expires (their per-destination ICMP
    # rate limit set far beyond the first token), so only rA/rB answer and the
    # gap limit is reached; the destination still answers TTL 255
    mute = ["net.ipv4.icmp_ratelimit=1000000", "net.ipv6.icmp.ratelimit=1000000"]
    for r in ("t1", "t2"):
        lab.run(r, ["sysctl", "-q", "-w", *mute])
    try:
        ours, _ = run_ours(lab, tmp_path, LASTDITCH + SQUERIES)
        ours_file = run_ours.last
        theirs = run_scamper(lab, tmp_path, LASTDITCH + SQUERIES)
        theirs_file = run_scamper.last
    finally:
        for r in ("t1", "t2"):
            lab.run(r, ["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"])
    assert_same(ours, theirs)
    assert {key(r): r["probe_count"] for r in ours} == {key(r): r["probe_count"] for r in theirs}
    par_keys = {("trace", "icmp-echo-paris", DST, None), ("trace", "icmp-echo", DST6, None),
                ("trace", "udp", "198.18.9.9", None)}
    par = {r["dst"]: r for r in ours if key(r) in par_keys}
    assert (par[DST]["stop_reason"], par[DST]["probe_count"], addrs(par[DST])) == \
        ("COMPLETED", 4, ["192.0.2.1", DST])  # TTL 2 tried twice, after the end
    assert (par["198.18.9.9"]["stop_reason"], par["198.18.9.9"]["hop_count"]) == ("GAPLIMIT", 5)
    ours = [r for r in ours if r not in par.values()]
    assert len(ours) == len(LASTDITCH)
    assert all(r["stop_reason"] == "GAPLIMIT" for r in ours), [trace_shape(r) for r in ours]
    ld = lastditch_of(ours_file)
    assert ld == lastditch_of(theirs_file)
    # keys: (dst, rtr, warts trace type: 1 icmp, 2 udp, 3 tcp, 5 udp-paris)
    assert [x[:2] for x in ld[(DST, "None", 5)]] == [(255, DST)]  # no hops, a reply at TTL 255
    assert ld[(DST, "None", 5)][0][4:6] == (3, 3) and ld[(DST, "None", 3)][0][6] == 0x14
    assert ld[(DST, "192.0.2.2", 1)][0][3:6] == (0x11, 0, 0)  # from the ICMP socket, not the datalink
    assert ld[(DST6, "None", 2)][0][4:6] == (1, 4) and ld[("198.18.9.9", "None", 5)] == []
    # sc_wartsdump shows every header field and the last-ditch hops (of traces with hops)
    a, b = dump_traces(ours_file), dump_traces(theirs_file)
    assert a == b, "\n".join(difflib.unified_diff(sum(a, []), sum(b, []), "ours", "scamper", lineterm=""))


def dump_traces(path: Path) -> list[list[str]]:
    """sc_wartsdump's traces (as in dump()), in a fixed order: the tools finish them differently."""
    traces: list[list[str]] = []
    for line in dump(path):
        if line.startswith("traceroute from"):
            traces.append([])
        if traces and not line.startswith(("cycle stop", " list", " cycle", " start")):
            m = re.match(r" flags: 0x([0-9a-f]{2})", line)
            if m and any(x.startswith("hop ") for x in traces[-1]):
                line = f" hop flags: 0x{int(m[1], 16) & ~0x02:02x}"  # without dltxts, as in lastditch_of
            traces[-1].append(line)
    return sorted(traces)


def test_trace_const_payload(lab, tmp_path):
    # all via a router: scamper times every trace on the datalink once one
    # trace (-r) has it open, so mixing them would make the hop flags differ
    cmds = [f"trace -O const-payload -r 192.0.2.1 {DST}",
            f"trace -O const-payload -p 0badcafe -r 192.0.2.2 {DST}",
            f"trace -O const-payload -P icmp-paris -r 192.0.2.1 {DST}"]
    (ours, _), sent_ours = sniff_probes(lab, lambda: run_ours(lab, tmp_path, cmds))
    ours_file = run_ours.last
    theirs, sent_theirs = sniff_probes(lab, lambda: run_scamper(lab, tmp_path, cmds))
    assert_same(ours, theirs)
    assert all(r["stop_reason"] == "COMPLETED" for r in ours)
    a, b = dump_traces(ours_file), dump_traces(run_scamper.last)
    assert a == b, "\n".join(difflib.unified_diff(sum(a, []), sum(b, []), "ours", "scamper", lineterm=""))
    assert sum(" flags: 0x40 ( const-payload )" in t for t in a) == 2
    assert payload_view(sent_ours) == payload_view(sent_theirs)
    # udp-paris: the payload is sent untouched (zeros or -p), not steered
    assert {(len(l4), l4[8:]) for _, proto, l4 in sent_ours if proto == 17} == \
        {(24, bytes(16)), (12, bytes.fromhex("0badcafe"))}
    # IPv6: scamper 20211212 leaves the flow label to the kernel and matches no
    # reply (ends on the gap limit); ours sets flow label = probe id + 1 and completes
    (six,), _ = run_ours(lab, tmp_path, [f"trace -O const-payload {DST6}"])
    assert six["stop_reason"] == "COMPLETED" and addrs(six) == VIA_RA6
