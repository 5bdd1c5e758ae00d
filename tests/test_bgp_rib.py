"""ixpscamper.bgp.rib: per-peer longest match, origins, several files.

Synthetic dumps from our writer, the RouteViews excerpts compared with a
longest match computed from ``bgpdump -m`` output, and (root, bird2
installed) a dump written by BIRD 2 itself.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ixpscamper.bgp.mrt import MrtError, Peer
from ixpscamper.bgp.mrtwrite import MrtWriter, encode_attributes
from ixpscamper.bgp.rib import RIB, Route

from tests.conftest import requires_root
from tests.test_bgp_mrt import RV_2008, RV2_2014, RV6_2015, _excerpt, bgpdump_routes, requires_bgpdump

v4 = ipaddress.IPv4Address
v6 = ipaddress.IPv6Address
net = ipaddress.ip_network

PA = Peer(0, v4("192.0.2.1"), v4("192.0.2.1"), 64501)
PB = Peer(1, v4("192.0.2.2"), v4("192.0.2.2"), 4200000002)
PC = Peer(2, v4("192.0.2.3"), v6("2001:db8::3"), 64503)


def write(path: Path, peers, routes) -> Path:
    """routes: {prefix: [(peer index, as_path segments, next hop)]}."""
    with open(path, "wb") as f:
        w = MrtWriter(f)
        w.write_peers(peers)
        for prefix, entries in sorted(routes.items(), key=lambda kv: (kv[0].version, kv[0])):
            w.write_rib(prefix, [(p, encode_attributes(seg, nh, prefix.version)) for p, seg, nh in entries])
    return path


@pytest.fixture
def rib(tmp_path) -> RIB:
    routes = {
        net("10.0.0.0/8"): [(0, ((64501, 3356, 100),), v4("192.0.2.1")),
                            (1, ((4200000002, 174, 100),), v4("192.0.2.2")),
                            (2, ((64503, 100),), v4("192.0.2.3"))],
        net("10.1.0.0/16"): [(0, ((64501, 200, 200, 200),), v4("192.0.2.1")),
                             (1, ((4200000002, 201),), v4("192.0.2.2"))],   # MOAS: 200 vs 201
        net("10.1.2.0/24"): [(0, ((64501, 300), frozenset({301, 302})), v4("192.0.2.1"))],
    }
    v6routes = {net("2001:db8:100::/40"): [(2, ((64503, 6939, 400),), v6("2001:db8::3"))]}
    write(tmp_path / "a.mrt", [PA, PB, PC], routes)
    write(tmp_path / "b.mrt", [PC], {k: [(0, s, nh) for _p, s, nh in v] for k, v in v6routes.items()})
    return RIB.load([tmp_path / "a.mrt", tmp_path / "b.mrt"])


def test_each_peer_its_own_longest_match(rib):
    got = {r.peer.ip: r for r in rib.routes_for("10.1.2.3")}
    assert {ip: r.prefix for ip, r in got.items()} == {
        v4("192.0.2.1"): net("10.1.2.0/24"),    # A has the /24
        v4("192.0.2.2"): net("10.1.0.0/16"),    # B only the /16
        v6("2001:db8::3"): net("10.0.0.0/8"),   # C only the /8
    }
    a = got[v4("192.0.2.1")]
    assert a.as_path == ((64501, 300), frozenset({301, 302}))
    assert a.origin_asns == {301, 302}
    assert a.next_hop == v4("192.0.2.1")
    assert [r.peer.index for r in rib.routes_for("10.1.2.3")] == [0, 1, 2]
    assert rib.routes_for("11.0.0.1") == []


def test_origins_of_longest_match_all_reported(rib):
    assert rib.origins("10.1.2.3") == {301, 302}          # AS_SET at the end
    assert rib.origins(v4("10.1.200.1")) == {200, 201}     # MOAS: both kept
    assert rib.origins("10.200.0.1") == {100}
    assert rib.origins("192.0.2.1") == frozenset()
    assert rib.origins("2001:db8:1ff::1") == {400}


def test_prefix_for(rib):
    assert rib.prefix_for("10.1.2.255") == net("10.1.2.0/24")
    assert rib.prefix_for("10.1.3.0") == net("10.1.0.0/16")
    assert rib.prefix_for("2001:db8:100::1") == net("2001:db8:100::/40")
    assert rib.prefix_for("2001:db9::1") is None
    assert rib.prefix_for("9.255.255.255") is None


def test_files_merged_peers_deduplicated(rib):
    # PC appears in both files (index 2 in a.mrt, 0 in b.mrt): one peer.
    assert rib.peers == [PA, PB, PC]
    r6 = rib.routes_for("2001:db8:100::1")
    assert [(r.peer, r.next_hop, r.flat_path()) for r in r6] == [(PC, v6("2001:db8::3"), [64503, 6939, 400])]
    assert len(rib) == 4 and rib.route_count == 7


def test_flat_path_and_collapsed():
    r = Route(peer=PA, prefix=net("10.0.0.0/8"), as_path=((1, 2, 2, 2, 3), frozenset({5, 4}), (6, 6)),
              next_hop=None, origin_asns=frozenset({6}))
    assert r.flat_path() == [1, 2, 2, 2, 3, 4, 5, 6, 6]
    assert r.collapsed() == [1, 2, 3, 4, 5, 6]


def test_routes_at(rib):
    assert [r.peer.index for r in rib.routes_at("10.1.0.0/16")] == [0, 1]
    assert rib.routes_at("10.1.0.0/17") == []


def test_default_route_and_host_route(tmp_path):
    p = write(tmp_path / "d.mrt", [PA], {net("0.0.0.0/0"): [(0, ((64501, 1),), v4("192.0.2.1"))],
                                         net("10.9.9.9/32"): [(0, ((64501, 2),), v4("192.0.2.1"))],
                                         net("::/0"): [(0, ((64501, 3),), v6("2001:db8::1"))]})
    rib = RIB.load(p)
    assert rib.origins("10.9.9.9") == {2}
    assert rib.origins("10.9.9.8") == {1}
    assert rib.prefix_for("2001:db8::1") == net("::/0")


def test_corrupt_attributes_found_at_lookup_warn_once(tmp_path):
    p = tmp_path / "c.mrt"
    with open(p, "wb") as f:
        w = MrtWriter(f)
        w.write_peers([PA, PB])
        good = encode_attributes(((64501, 9),), v4("192.0.2.1"))
        bad = b"\x40\x02\x06\x02\x05\x00\x00\x00\x01"  # AS_PATH claims 5 ASes, holds 1
        w.write_rib(net("10.0.0.0/8"), [(0, good), (1, bad)])
    warnings: list[str] = []
    rib = RIB.load(p, warn=warnings.append)
    assert warnings == []  # attributes are decoded lazily
    assert [r.peer for r in rib.routes_for("10.0.0.1")] == [PA]
    assert rib.origins("10.0.0.1") == {9}
    assert len(warnings) == 1 and "192.0.2.2" in warnings[0] and "10.0.0.0/8" in warnings[0]


def test_not_mrt_raises(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("not a RIB at all, just some text\n")
    with pytest.raises(MrtError, match="not an MRT file"):
        RIB.load(p)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_lookups_match_brute_force(tmp_path_factory, data):
    """routes_for / origins / prefix_for against a linear scan."""
    rnd = random.Random(data.draw(st.integers(0, 2**32)))
    peers = [Peer(i, v4(f"192.0.2.{i + 1}"), v4(f"192.0.2.{i + 1}"), 64500 + i) for i in range(4)]
    routes: dict = {}
    for _ in range(data.draw(st.integers(1, 30))):
        plen = rnd.randint(0, 32)
        prefix = ipaddress.IPv4Network((rnd.getrandbits(8) << 24 | rnd.getrandbits(24) & 0x0F0F0F, plen), strict=False)
        holders = rnd.sample(range(4), rnd.randint(1, 4))
        routes[prefix] = [(p, ((64500 + p, rnd.randint(1, 5)),), peers[p].ip) for p in holders]
    path = write(tmp_path_factory.mktemp("bf") / "r.mrt", peers, routes)
    rib = RIB.load(path)
    for _ in range(20):
        a = v4(rnd.getrandbits(8) << 24 | rnd.getrandbits(24) & 0x0F0F0F | rnd.getrandbits(2))
        covering = sorted((p for p in routes if a in p), key=lambda p: -p.prefixlen)
        want = {}
        for p in covering:
            for peer, seg, _nh in routes[p]:
                want.setdefault(peer, (p, seg))
        got = {r.peer.index: (r.prefix, r.as_path) for r in rib.routes_for(a)}
        assert got == want
        assert rib.prefix_for(a) == (covering[0] if covering else None)
        assert rib.origins(a) == (frozenset(s[0][-1] for _p, s, _n in routes[covering[0]]) if covering else frozenset())


# ------------------------------------------------------------------ real data

@pytest.mark.slow
@requires_bgpdump
@pytest.mark.parametrize("path,dests", [
    pytest.param(RV2_2014, ["1.0.0.1", "1.0.4.77", "1.2.3.4", "1.1.1.1", "2.0.0.1", "3.0.0.1",
                            "4.2.2.2", "8.8.8.8", "12.0.0.1", "14.0.0.1"], marks=_excerpt(RV2_2014)),
    pytest.param(RV6_2015, ["2001:4860:4860::8888", "2001:500:2f::f", "2001:200::1", "2001:db8::1",
                            "2001:678:3::1", "2001:7f8::1", "2a00:1450::1"], marks=_excerpt(RV6_2015)),
    pytest.param(RV_2008, ["3.0.0.1", "4.2.2.2", "4.79.1.1", "6.1.2.3", "8.8.8.8", "12.1.2.3"],
                 marks=_excerpt(RV_2008)),
], ids=["route-views2-2014", "route-views6-2015", "route-views-2008-table-dump-v1"])
def test_real_routes_for_equals_bgpdump(path, dests):
    warnings: list[str] = []
    rib = RIB.load(path, warn=warnings.append)
    assert len(warnings) == 1  # the excerpt is cut
    rows = bgpdump_routes(path)
    # (network int, length, prefix text, path, next hop) per peer; matched
    # with integer arithmetic (ipaddress containment is too slow here).
    by_peer: dict[str, list] = {}
    for peer_ip, prefix, aspath, nh in rows:
        n = ipaddress.ip_network(prefix)
        by_peer.setdefault(peer_ip, []).append((n.version, int(n.network_address), n.prefixlen,
                                                prefix, aspath, nh))
    compared = 0
    for dst in dests:
        a = ipaddress.ip_address(dst)
        ai, w = int(a), a.max_prefixlen
        want = {}
        for peer_ip, entries in by_peer.items():
            cover = [e for e in entries if e[0] == a.version and (ai ^ e[1]) >> (w - e[2]) == 0]
            if cover:
                _v, _n, _l, p, aspath, nh = max(cover, key=lambda e: e[2])
                want[peer_ip] = (p, aspath, nh)
        got = {str(r.peer.ip): (str(r.prefix), " ".join(
            " ".join(map(str, s)) if isinstance(s, tuple) else "{" + ",".join(map(str, sorted(s))) + "}"
            for s in r.as_path), str(r.next_hop)) for r in rib.routes_for(a)}
        assert got == want, dst
        compared += len(want)
    assert compared > 50  # the destinations are covered in the excerpt


# ------------------------------------------------------------------ BIRD 2

BIRD = shutil.which("bird")
requires_bird = pytest.mark.skipif(BIRD is None, reason="bird2 not installed (apt-get install bird2)")


def _start_bird(ns: str, d: Path, name: str, conf: str) -> subprocess.Popen:
    (d / f"{name}.conf").write_text(conf)
    return subprocess.Popen(["ip", "netns", "exec", ns, BIRD, "-f", "-c", str(d / f"{name}.conf"),
                             "-s", str(d / f"{name}.ctl"), "-P", str(d / f"{name}.pid")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.root
@requires_root
@requires_bird
def test_bird2_mrt_dump_of_bgp_routes(tmp_path):
    """A BIRD 2 "collector" with eBGP sessions (IPv4 and IPv6) to a BIRD 2
    "member" with a 4-byte ASN, in two network namespaces of our own joined
    by a veth pair; the collector's own mrt protocol writes the table dumps.
    Our routes must equal bgpdump's for the same files, and the IPv6 next
    hop be the member's global address (BIRD sends global + link-local)."""
    tag = os.getpid() % 100000
    ns_c, ns_m = f"ixpbgpc{tag}", f"ixpbgpm{tag}"
    procs: list[subprocess.Popen] = []
    made: list[str] = []
    dumps = [tmp_path / "c4.mrt", tmp_path / "c6.mrt"]
    try:
        for ns in (ns_c, ns_m):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
        sh = lambda ns, *a: subprocess.run(["ip", "-n", ns, *a], check=True)  # noqa: E731
        sh(ns_c, "link", "add", "vc", "type", "veth", "peer", "name", "vm", "netns", ns_m)
        for ns, dev, n in ((ns_c, "vc", 1), (ns_m, "vm", 2)):
            sh(ns, "addr", "add", f"192.0.2.{n}/24", "dev", dev)
            sh(ns, "addr", "add", f"2001:db8:77::{n}/64", "dev", dev, "nodad")
            sh(ns, "link", "set", dev, "up")
            sh(ns, "link", "set", "lo", "up")
        procs.append(_start_bird(ns_m, tmp_path, "member", """
router id 192.0.2.2;
protocol device { }
protocol static s4 { ipv4; route 198.51.100.0/24 blackhole; route 203.0.113.0/25 blackhole; }
protocol static s6 { ipv6; route 2001:db8:4200::/48 blackhole; }
protocol bgp c4 { local 192.0.2.2 as 4200000001; neighbor 192.0.2.1 as 65000;
  ipv4 { import none; export filter {
    if net = 203.0.113.0/25 then { bgp_path.prepend(64512); bgp_path.prepend(64512); }
    accept; }; }; }
protocol bgp c6 { local 2001:db8:77::2 as 4200000001; neighbor 2001:db8:77::1 as 65000;
  ipv6 { import none; export all; }; }
"""))
        procs.append(_start_bird(ns_c, tmp_path, "collector", f"""
router id 192.0.2.1;
protocol device {{ }}
protocol bgp m4 {{ local 192.0.2.1 as 65000; neighbor 192.0.2.2 as 4200000001;
  ipv4 {{ import all; export none; }}; }}
protocol bgp m6 {{ local 2001:db8:77::1 as 65000; neighbor 2001:db8:77::2 as 4200000001;
  ipv6 {{ import all; export none; }}; }}
protocol mrt d4 {{ table master4; filename "{dumps[0]}"; period 1; }}
protocol mrt d6 {{ table master6; filename "{dumps[1]}"; period 1; }}
"""))
        deadline = time.monotonic() + 45
        while True:
            for p in procs:
                if p.poll() is not None:
                    pytest.fail(f"bird exited: {p.stdout.read().decode(errors='replace')}")
            if all(f.exists() for f in dumps):
                rib = RIB.load(dumps)  # a dump being appended may end mid-record
                if rib.routes_for("203.0.113.1") and rib.routes_for("2001:db8:4200::1"):
                    break
            if time.monotonic() > deadline:
                pytest.fail("no BGP routes in BIRD's dumps within 45 s")
            time.sleep(0.5)
    finally:
        for p in procs:
            _stop(p)
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)
    warnings: list[str] = []
    rib = RIB.load(dumps, warn=warnings.append)
    assert warnings == []
    member = [p for p in rib.peers if p.asn == 4200000001]
    assert {str(p.ip) for p in member} == {"192.0.2.2", "2001:db8:77::2"}
    [r] = rib.routes_for("203.0.113.1")
    assert r.as_path == ((4200000001, 64512, 64512),) and r.collapsed() == [4200000001, 64512]
    assert r.origin_asns == {64512} and r.next_hop == v4("192.0.2.2")
    [r] = rib.routes_for("198.51.100.9")
    assert r.flat_path() == [4200000001] and r.origin_asns == {4200000001}
    [r6] = rib.routes_for("2001:db8:4200::1")
    assert r6.next_hop == v6("2001:db8:77::2") and r6.origin_asns == {4200000001}
    if shutil.which("bgpdump"):
        from ixpscamper.bgp.mrt import iter_routes
        from tests.test_bgp_mrt import our_path
        for f in dumps:
            ours = [(str(x.peer.ip), str(x.prefix), our_path(x.attributes.as_path),
                     str(x.attributes.next_hop)) for x in iter_routes(f, strict=True)]
            theirs = [t for t in bgpdump_routes(f) if t[0] != "::"]  # BIRD's own static routes
            assert [o for o in ours if o[0] != "::"] == theirs and theirs


def test_add_file_after_load_and_compact(tmp_path):
    p1 = write(tmp_path / "1.mrt", [PA], {net("10.0.0.0/8"): [(0, ((64501, 1),), v4("192.0.2.1"))]})
    p2 = write(tmp_path / "2.mrt", [PA, PB], {net("10.0.0.0/8"): [(1, ((4200000002, 2),), v4("192.0.2.2"))],
                                              net("10.2.0.0/16"): [(0, ((64501, 3),), v4("192.0.2.1"))]})
    rib = RIB.load(p1)
    rib.add_file(p2)
    assert [(r.peer, r.prefix) for r in rib.routes_for("10.2.0.1")] == [(PA, net("10.2.0.0/16")),
                                                                        (PB, net("10.0.0.0/8"))]
    assert rib.origins("10.0.0.1") == {1, 2}
