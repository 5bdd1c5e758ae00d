"""ixp-peers: the plan (per-peer longest match, LAN next hops, exclusions),
--dry-run, and one clear line for each kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ixpscamper.bgp.rib import RIB
from ixpscamper.peers.plan import (
    Exclusions, PlanError, make_plan, parse_lans, read_dst_file, read_exclude_file,
)

from tests.peers_helpers import ip, net, write_mrt

LANS = parse_lans(["192.0.2.0/24", "2001:db8:1::/64"])
CLI = [sys.executable, "-m", "ixpscamper.peers.cli"]


@pytest.fixture
def mrt(tmp_path):
    peers = [("192.0.2.1", 65001), ("192.0.2.2", 65002), ("10.0.0.9", 65009), ("2001:db8:1::1", 65001)]
    routes = [
        (0, "198.51.100.0/24", [65001, 65011, 65020], "192.0.2.1"),
        (1, "198.51.0.0/16", [65002, 65020], "192.0.2.2"),        # rB only has the /16
        (1, "198.51.100.128/25", [65002, 65021], "192.0.2.2"),
        (2, "198.51.100.0/24", [65009, 65020], "10.0.0.9"),      # next hop off the LAN (multihop)
        (3, "2001:db8:d::/64", [65001, 65011, 65020], "2001:db8:1::1"),
    ]
    return write_mrt(tmp_path / "rib.mrt", peers, routes)


def test_each_peer_its_own_longest_match_and_lan_filter(mrt):
    rib = RIB.load(mrt)
    plan = make_plan(rib, [ip("198.51.100.66"), ip("2001:db8:d::66")], LANS)
    got = {(str(t.peer.ip), str(t.route.prefix), t.on_lan) for t in plan.targets}
    assert got == {("192.0.2.1", "198.51.100.0/24", True), ("192.0.2.2", "198.51.0.0/16", True),
                   ("10.0.0.9", "198.51.100.0/24", False), ("2001:db8:1::1", "2001:db8:d::/64", True)}
    assert [str(t.next_hop) for t in plan.to_probe] == ["192.0.2.1", "192.0.2.2", "2001:db8:1::1"]
    # the /25 wins for its own addresses
    plan = make_plan(rib, [ip("198.51.100.200")], LANS)
    assert {str(t.route.prefix) for t in plan.targets if str(t.peer.ip) == "192.0.2.2"} == {"198.51.100.128/25"}


def test_destination_without_route_is_reported_once(mrt):
    warnings = []
    plan = make_plan(RIB.load(mrt), [ip("203.0.113.1"), ip("203.0.113.1"), ip("198.51.100.1")], LANS,
                     warn=warnings.append)
    assert plan.no_route == [ip("203.0.113.1")]
    assert warnings == ["destination 203.0.113.1: no route in the RIB; skipped"]


def test_exclusions(mrt, tmp_path):
    f = tmp_path / "excl"
    f.write_text("# never\n198.51.100.64/26\nAS65002\n2001:db8:d::/48 # v6 too\n")
    ex = read_exclude_file(f)
    assert ex.asns == {65002} and net("198.51.100.64/26") in ex.prefixes
    plan = make_plan(RIB.load(mrt), [ip("198.51.100.66"), ip("198.51.100.1"), ip("2001:db8:d::66")], LANS, ex)
    probed = {(str(t.peer.ip), str(t.dst)) for t in plan.to_probe}
    assert probed == {("192.0.2.1", "198.51.100.1")}
    why = {(str(t.peer.ip), str(t.dst)): t.excluded for t in plan.excluded}
    assert why[("192.0.2.1", "198.51.100.66")] == "destination 198.51.100.66 is in excluded 198.51.100.64/26"
    assert why[("192.0.2.2", "198.51.100.1")] == "peer AS65002 is excluded"
    # an origin or a path AS excludes too
    p2 = make_plan(RIB.load(mrt), [ip("198.51.100.1")], LANS, Exclusions(asns=frozenset({65011})))
    assert [str(t.peer.ip) for t in p2.to_probe] == ["192.0.2.2"]
    assert p2.excluded[0].excluded == "the BGP path crosses excluded AS65011"
    p3 = make_plan(RIB.load(mrt), [ip("198.51.100.1")], LANS, Exclusions(asns=frozenset({65020})))
    assert p3.to_probe == [] and "originated by excluded AS65020" in p3.excluded[0].excluded
    p4 = make_plan(RIB.load(mrt), [ip("198.51.100.1")], LANS, Exclusions((net("192.0.2.2/32"),)))
    assert [str(t.peer.ip) for t in p4.to_probe] == ["192.0.2.1"]
    assert p4.excluded[0].excluded == "next hop 192.0.2.2 is in excluded 192.0.2.2/32"


@pytest.mark.parametrize("line", ["198.51.100.0/33", "ASfoo", "AS0", "hello"])
def test_bad_exclude_line_stops(tmp_path, line):
    f = tmp_path / "excl"
    f.write_text(f"192.0.2.0/24\n{line}\n")
    with pytest.raises(PlanError, match=r"excl:2: "):
        read_exclude_file(f)


def test_dst_file(tmp_path):
    f = tmp_path / "d"
    f.write_text("198.51.100.66\n\n# c\n2001:db8:d::66  # v6\n")
    assert read_dst_file(f) == [ip("198.51.100.66"), ip("2001:db8:d::66")]
    f.write_text("198.51.100.66\nnot-an-address\n")
    with pytest.raises(PlanError, match="d:2:"):
        read_dst_file(f)


def run_cli(*args, **kw):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=60, **kw)


def test_dry_run_json_rows(mrt, tmp_path):
    out = tmp_path / "plan.json"
    p = run_cli("--rib", mrt, "--ixp-lan", "192.0.2.0/24", "--ixp-lan", "2001:db8:1::/64",
                "--dst", "198.51.100.66", "--dst", "2001:db8:d::66", "--dst", "203.0.113.5",
                "--dry-run", "--json", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stderr == "ixp-peers: destination 203.0.113.5: no route in the RIB; skipped\n"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    off = [r for r in rows if not r["on_lan"]]
    assert off == [{"peer_ip": "10.0.0.9", "peer_asn": 65009, "next_hop": "10.0.0.9", "dst": "198.51.100.66",
                    "prefix": "198.51.100.0/24", "bgp_path": [65009, 65020], "bgp_collapsed": [65009, 65020],
                    "origins": [65020], "on_lan": False}]
    v6 = [r for r in rows if r["dst"] == "2001:db8:d::66"]
    assert v6[0]["next_hop"] == "2001:db8:1::1" and v6[0]["on_lan"] is True
    assert "3 trace(s) to send" in p.stdout


def test_bad_inputs_one_line_each(mrt, tmp_path):
    junk = tmp_path / "junk.mrt"
    junk.write_bytes(b"this is not MRT at all, not even close" * 4)
    base = ["--ixp-lan", "192.0.2.0/24", "--dst", "198.51.100.66", "--dry-run"]
    cases = [
        (["--rib", str(junk)], "--rib"),
        (["--rib", str(tmp_path / "nope.mrt")], "no such file"),
        (["--rib", "/dev/null"], "no route at all"),
        (["--rib", str(tmp_path)], "is a directory"),
        (["--rib", mrt, "--dst", "300.1.1.1"], "not an IP address"),
        (["--rib", mrt, "--ixp-lan", "192.0.2.0/99"], "not an IPv4 or IPv6 prefix"),
        (["--rib", mrt, "--exclude", str(tmp_path / "nope")], "nope"),
    ]
    for extra, what in cases:
        p = run_cli(*extra, *base)
        assert p.returncode == 1, (extra, p.stderr)
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("ixp-peers: ") and what in lines[0], (extra, p.stderr)
        assert "Traceback" not in p.stderr
    # measuring needs a VP; a missing socket is one line, nothing sent
    p = run_cli("--rib", mrt, "--ixp-lan", "192.0.2.0/24", "--dst", "198.51.100.66", "-U", str(tmp_path / "no.sock"))
    assert p.returncode == 1 and p.stderr.strip().endswith("no such socket") and len(p.stderr.splitlines()) == 1
    p = run_cli("--rib", mrt, "--ixp-lan", "192.0.2.0/24", "--dst", "198.51.100.66", "-U", str(tmp_path / "s"),
                "--trace-opts", "-P bogus")
    assert p.returncode == 1 and "--trace-opts" in p.stderr and len(p.stderr.splitlines()) == 1


def test_usage_errors_are_one_line(mrt, tmp_path):
    for args in ([], ["--rib", mrt, "--ixp-lan", "192.0.2.0/24", "--pps"], ["--rib", mrt, "--bogus"]):
        p = run_cli(*args)
        assert p.returncode == 2 and len(p.stderr.splitlines()) == 1 and p.stderr.startswith("ixp-peers: "), p.stderr
    # a state file that cannot be written: one line, before anything is sent
    p = run_cli("--rib", mrt, "--ixp-lan", "192.0.2.0/24", "--dst", "198.51.100.66", "-U", "/nonexistent.sock",
                "--json", str(tmp_path / "no" / "dir" / "out.json"))
    assert p.returncode == 1 and p.stderr.startswith("ixp-peers: state file ") and len(p.stderr.splitlines()) == 1


def test_cut_rib_is_one_warning_and_the_rest_is_used(mrt, tmp_path):
    data = open(mrt, "rb").read()
    cut = tmp_path / "cut.mrt"
    cut.write_bytes(data[:-7])      # the last record (the v6 route) is cut short
    out = tmp_path / "plan.json"
    p = run_cli("--rib", str(cut), "--ixp-lan", "192.0.2.0/24", "--dst", "198.51.100.66", "--dst", "2001:db8:d::66",
                "--dry-run", "--json", str(out))
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 2 and "cut.mrt" in lines[0] and "offset" in lines[0]
    assert lines[1] == "ixp-peers: destination 2001:db8:d::66: no route in the RIB; skipped"
    assert len(out.read_text().splitlines()) == 3
