"""ixp-peers: IP-to-AS from the RIB, LAN hops to members, and every class."""

from __future__ import annotations

import pytest

from ixpscamper.bgp.rib import RIB
from ixpscamper.peers.compare import Mapper, classify, compare, trace_hops
from ixpscamper.peers.plan import parse_lans

from tests.peers_helpers import FakeRIB, ip, make_trace, write_mrt

LANS = parse_lans(["192.0.2.0/24", "2001:db8:1::/64"])


@pytest.fixture
def rib(tmp_path):
    peers = [("192.0.2.1", 65001), ("192.0.2.2", 65002), ("2001:db8:1::1", 65001), ("192.0.2.3", 65003)]
    routes = [
        (0, "198.51.100.0/24", [65001, 65011, 65020], "192.0.2.1"),
        (1, "198.51.100.0/24", [65002, 65002, 65020], "192.0.2.2"),
        (0, "198.18.1.0/30", [65001, 65011], "192.0.2.1"),
        (1, "198.18.2.0/30", [65002, 65012], "192.0.2.2"),
        # MOAS: the two peers disagree on who originates 203.0.113.0/24
        (0, "203.0.113.0/24", [65001, 65030], "192.0.2.1"),
        (1, "203.0.113.0/24", [65002, 65031], "192.0.2.2"),
        # someone announces the exchange LAN itself: a LAN hop is still the member's
        (1, "192.0.2.0/24", [65002, 64999], "192.0.2.2"),
        (2, "2001:db8:d::/64", [65001, 65011, 65020], "2001:db8:1::1"),
        (2, "2001:db8:a::/64", [65001, 65011], "2001:db8:1::1"),
    ]
    return RIB.load(write_mrt(tmp_path / "rib.mrt", peers, routes))


def route_of(rib, peer_ip, dst):
    return next(r for r in rib.routes_for(dst) if str(r.peer.ip) == peer_ip)


def test_match_through_member_and_transit(rib):
    m = Mapper(rib, LANS)
    r = route_of(rib, "192.0.2.1", "198.51.100.66")
    c = compare(r, make_trace("198.51.100.66", ["192.0.2.1", "198.18.1.2", "198.51.100.66"]), m)
    assert (c.cls, c.trace_path, c.reached) == ("match", [65001, 65011, 65020], True)
    assert [h.how for h in c.hops] == ["lan", "rib", "rib"]


def test_prepending_is_collapsed_and_the_lie_is_an_extra_as(rib):
    m = Mapper(rib, LANS)
    r = route_of(rib, "192.0.2.2", "198.51.100.66")
    c = compare(r, make_trace("198.51.100.66", ["192.0.2.2", "198.18.2.2", "198.51.100.66"]), m)
    assert c.bgp_path == [65002, 65002, 65020] and c.bgp_collapsed == [65002, 65020]
    assert c.cls == "extra_as" and "AS65012" in c.detail
    c2 = compare(r, make_trace("198.51.100.66", ["192.0.2.2", "198.51.100.66"]), m)
    assert c2.cls == "match"


def test_lan_hop_maps_to_the_member_not_the_lan_prefix_origin(rib):
    m = Mapper(rib, LANS)
    assert m.map(ip("192.0.2.2")) == ((65002,), "lan")
    assert m.map(ip("192.0.2.1")) == ((65001,), "lan")
    # a LAN address no peer uses maps to nobody (not to 64999, the LAN's "origin")
    assert m.map(ip("192.0.2.77")) == ((), "none")
    assert m.map(ip("2001:db8:1::1")) == ((65001,), "lan")


def test_moas_origins_are_all_reported(rib):
    m = Mapper(rib, LANS)
    assert m.map(ip("203.0.113.9")) == ((65030, 65031), "rib")
    r = route_of(rib, "192.0.2.2", "203.0.113.9")
    c = compare(r, make_trace("203.0.113.9", ["192.0.2.2", "203.0.113.9"]), m)
    assert [(h.addr, h.asns) for h in c.moas] == [("203.0.113.9", (65030, 65031))]
    # the origin on the BGP path stands in the data path: a match, MOAS still visible
    assert c.trace_path == [65002, 65031] and c.cls == "match"


def test_missing_as(rib):
    m = Mapper(rib, LANS)
    r = route_of(rib, "192.0.2.1", "198.51.100.66")
    c = compare(r, make_trace("198.51.100.66", ["192.0.2.1", "198.51.100.66"]), m)
    assert c.cls == "missing_as" and "AS65011" in c.detail


def test_different_as(rib):
    m = Mapper(rib, LANS)
    r = route_of(rib, "192.0.2.1", "198.51.100.66")
    c = compare(r, make_trace("198.51.100.66", ["192.0.2.1", "198.18.2.2", "198.51.100.66"]), m)
    assert c.cls == "different_as" and "AS65011" in c.detail and "AS65012" in c.detail


def test_unmapped_hops(rib):
    m = Mapper(rib, LANS)
    r = route_of(rib, "192.0.2.1", "198.51.100.66")
    c = compare(r, make_trace("198.51.100.66", ["192.0.2.1", "10.9.9.9", "198.51.100.66"]), m)
    assert c.cls == "unmapped_hops" and c.unmapped == ["10.9.9.9"]


def test_unreached_and_silent_hops(rib):
    m = Mapper(rib, LANS)
    r = route_of(rib, "192.0.2.1", "198.51.100.66")
    t = make_trace("198.51.100.66", ["192.0.2.1", "198.18.1.2", None, None, None])
    assert trace_hops(t) == ["192.0.2.1", "198.18.1.2", None, None, None]
    c = compare(r, t, m)
    assert c.cls == "unreached" and not c.reached and "AS65020" in c.detail
    # a next hop that never answered ARP: no hop at all
    c = compare(r, make_trace("198.51.100.66", [], stop=6), m)
    assert c.cls == "unreached" and c.trace_path == []


def test_loop(rib):
    m = Mapper(rib, LANS)
    r = route_of(rib, "192.0.2.1", "198.51.100.66")
    c = compare(r, make_trace("198.51.100.66", ["192.0.2.1", "198.18.1.2", "192.0.2.1", "198.18.1.2"], stop=4), m)
    assert c.cls == "loop"
    # an AS path that returns to an AS is a loop even if the trace did not stop on one
    c = compare(r, make_trace("198.51.100.66", ["192.0.2.1", "198.18.1.2", "192.0.2.5", "198.18.1.1",
                                                "198.51.100.66"]), Mapper(FakeRIB(rib.peers, {
                                                    "198.18.1.0/30": [65011], "192.0.2.5/32": [65040],
                                                    "198.51.100.0/24": [65020]}), []))
    assert c.cls == "loop" and "AS65011" in c.detail


@pytest.mark.parametrize("bgp,data,reached,unmapped,want", [
    ([1, 2, 3], [1, 2, 3], True, 0, "match"),
    ([1, 2, 3], [1, 3], True, 0, "missing_as"),
    ([1, 3], [1, 2, 3], True, 0, "extra_as"),
    ([1, 2, 3], [1, 4, 3], True, 0, "different_as"),
    ([1, 2, 3], [1, 3], True, 1, "unmapped_hops"),
    ([1, 2, 3], [1, 2], False, 0, "unreached"),
    ([1, 2, 3], [1, 2, 1], True, 0, "loop"),
    ([1, 2, 3], [1, 4], False, 0, "different_as"),
])
def test_classify_table(bgp, data, reached, unmapped, want):
    assert classify(bgp, data, reached=reached, unmapped=unmapped, loop=False)[0] == want


def test_ipv6_match(rib):
    m = Mapper(rib, LANS)
    r = route_of(rib, "2001:db8:1::1", "2001:db8:d::66")
    c = compare(r, make_trace("2001:db8:d::66", ["2001:db8:1::1", "2001:db8:a::2", "2001:db8:d::66"]), m)
    assert c.cls == "match" and c.trace_path == [65001, 65011, 65020]
