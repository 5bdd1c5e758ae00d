"""tracelb through the lab's load-balanced segment, ours side by side with the Debian scamper.

The lab with ``ecmp=True`` has a multipath route at t1 over m1 and m2 to
203.0.113.66 (and 2001:db8:f::66).  Each test runs ``python3 -m
ixpscamper.prober`` (our warts) and ``scamper -O warts`` on the same command
in the collector namespace, reads both files with the real sc_warts2json,
and compares the nodes, the links and the parameters.  (A tracelb record
has no stop reason: the measurement ends when no branch is left to probe
or at -Q.)  Every comparison makes both programs send the same flows: then
the kernel (with the lab's fixed hash seed) hashes them onto the same next
hops, and probe sequence, graph and probe count must be equal.  scamper
20211212 parses ``tracelb -s`` but never uses it (its source port, the
base of every flow, is always derived from its pid), so scamper runs
first and ours is given the source port scamper's record names.

Linux hashes ICMP echo by its identifier (the tracelb's -s), not by the
checksum scamper varies, so ``-P icmp-echo`` sees one path through this
lab's multipath route (scamper too): which one depends on -s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import requires_root, requires_tool

pytestmark = [requires_root, requires_tool("scamper"), requires_tool("sc_warts2json"),
              pytest.mark.root, pytest.mark.interop, pytest.mark.slow]

DST = "203.0.113.66"
DST6 = "2001:db8:f::66"
LINKS4 = {("192.0.2.1", "198.18.1.2"), ("198.18.1.2", "198.18.11.2"),
          ("198.18.1.2", "198.18.12.2"), ("198.18.11.2", DST), ("198.18.12.2", DST)}
LINKS6 = {("2001:db8:1::1", "2001:db8:a::2"), ("2001:db8:a::2", "2001:db8:11::2"),
          ("2001:db8:a::2", "2001:db8:12::2"), ("2001:db8:11::2", DST6), ("2001:db8:12::2", DST6)}


@pytest.fixture(scope="module")
def lab():
    from ixpscamper.lab import Lab
    built = Lab.create(ecmp=True)
    try:
        yield built
    finally:
        built.teardown()


def _tracelbs(path: Path) -> list[dict]:
    """The file's tracelb records as sc_warts2json prints them, each with the
    source port added as ``_sport`` (sc_warts2json prints none for ICMP)."""
    from ixpscamper.warts import Tracelb, iter_records
    out = subprocess.run(["sc_warts2json", str(path)], capture_output=True, text=True, check=True).stdout
    recs = [r for r in map(json.loads, out.splitlines()) if r["type"] == "tracelb"]
    with path.open("rb") as f:
        sports = [r.sport for r in iter_records(f) if isinstance(r, Tracelb)]
    assert len(sports) == len(recs)
    for rec, sport in zip(recs, sports):
        rec["_sport"] = sport
    return recs


def run_ours(lab, tmp_path: Path, cmd: str) -> dict:
    out = tmp_path / f"ours-{time.monotonic_ns()}.warts"
    proc = lab.run("coll", [sys.executable, "-m", "ixpscamper.prober", "-o", str(out), cmd],
                   check=False, timeout=240)
    assert proc.returncode == 0, proc.stderr
    (rec,) = _tracelbs(out)
    return rec


def run_scamper(lab, tmp_path: Path, cmd: str) -> dict:
    out = tmp_path / f"scamper-{time.monotonic_ns()}.warts"
    lab.run("coll", ["scamper", "-O", "warts", "-o", str(out), "-I", cmd], timeout=240)
    (rec,) = _tracelbs(out)
    return rec


def run_both(lab, tmp_path: Path, cmd: str) -> tuple[dict, dict]:
    """scamper's record, then ours for ``cmd`` with scamper's source port.

    ``cmd`` is ``tracelb OPTIONS DST`` without ``-s``: scamper 20211212
    ignores it, so the flows are made the same the other way round.
    """
    assert " -s " not in cmd
    theirs = run_scamper(lab, tmp_path, cmd)
    head, dst = cmd.rsplit(" ", 1)
    ours = run_ours(lab, tmp_path, f"{head} -s {theirs['_sport']} {dst}")
    assert ours["_sport"] == theirs["_sport"]
    return ours, theirs


def flows(r: dict) -> list:
    """Every probe as (ttl, flow id, attempt), in the order sent."""
    probes = []
    for node in r["nodes"]:
        for group in node.get("links", []):
            for link in group:
                for p in link.get("probes", []):
                    probes.append(((p["tx"]["sec"], p["tx"]["usec"]),
                                   (p["ttl"], p["flowid"], p["attempt"])))
    return [p for _, p in sorted(probes)]


def shape(r: dict) -> dict:
    """What must agree: nodes (as a set: discovery order follows the flow hash), links, parameters."""
    links = set()
    for node in r["nodes"]:
        # sc_warts2json writes a node's links as [[{"addr": to, "probes": [...]}, ...]]
        for group in node.get("links", []):
            for link in group:
                links.add((node["addr"], link["addr"]))
    return {
        "nodes": sorted(n["addr"] for n in r["nodes"]),
        "links": links,
        "head": (r["method"], r["src"], r["dst"], r.get("rtr"), r["probe_size"], r["firsthop"],
                 r["attempts"], r["confidence"], r["gaplimit"], r["wait_timeout"],
                 r["wait_probe"], r["probec_max"], r.get("dport")),
        "q_ttl": sorted((n["addr"], n.get("q_ttl")) for n in r["nodes"]),
    }


def _seed_fixed(lab) -> bool:
    out = lab.run("t1", ["sysctl", "-n", "net.ipv4.fib_multipath_hash_seed"], check=False).stdout
    return out.strip() == "1"


def minimum(confidence: int, hops_single: int) -> int:
    """The MDA's floor on this diamond: one probe to find hop 1, k(2) per single hop, k(3) at
    the balancer, k(2) for its per-packet check, one per branch to reach the destination."""
    k2, k3 = (6, 11) if confidence == 95 else (8, 15)
    return 1 + k2 * hops_single + k3 + k2 + 2


@pytest.mark.parametrize("method", ["udp-dport", "icmp-echo", "udp-sport", "tcp-sport", "tcp-ack-sport"])
def test_tracelb_v4_same_flows_same_probes(lab, tmp_path, method):
    """Sent the same flows, both programs send the same probes and find the same graph."""
    ours, theirs = run_both(lab, tmp_path, f"tracelb -P {method} -W 15 -w 1 {DST}")
    assert flows(ours) == flows(theirs)
    assert shape(ours) == shape(theirs)
    assert ours["probec"] == theirs["probec"]
    if method == "icmp-echo":
        # one path (the ICMP id is the hash's "port")
        assert len(shape(ours)["links"]) == 3
    elif shape(ours)["links"] == LINKS4:
        assert ours["probec"] >= minimum(95, 1)
    # (scamper's flows come from its pid: in about 3 % of runs they all take
    # one branch and both programs rightly see one; the fixed flows below
    # check that the second branch is found)


@pytest.mark.parametrize("method", ["udp-dport", "udp-sport", "tcp-sport"])
def test_tracelb_v4_fixed_flows_find_both_branches(lab, tmp_path, method):
    """-s fixes the flows (ours uses it; scamper 20211212 does not): with the
    lab's fixed hash seed these spread over both next hops."""
    if not _seed_fixed(lab):
        pytest.skip("this kernel has no fixed multipath hash seed")
    ours = run_ours(lab, tmp_path, f"tracelb -P {method} -s 40000 -W 15 -w 1 {DST}")
    assert ours["_sport"] == 40000
    assert shape(ours)["links"] == LINKS4
    assert ours["probec"] >= minimum(95, 1)


def test_tracelb_v4_confidence_99(lab, tmp_path):
    ours, theirs = run_both(lab, tmp_path, f"tracelb -c 99 -W 15 {DST}")
    assert flows(ours) == flows(theirs)
    assert shape(ours) == shape(theirs)
    assert ours["probec"] == theirs["probec"]
    if shape(ours)["links"] == LINKS4:
        assert ours["probec"] >= minimum(99, 1)


def test_tracelb_via_router(lab, tmp_path):
    """-r: probes go to rA's MAC (the collector's default is rA too, so the graph is the same)."""
    ours, theirs = run_both(lab, tmp_path, f"tracelb -r 192.0.2.1 -W 15 {DST}")
    assert ours.get("rtr") == "192.0.2.1"
    assert flows(ours) == flows(theirs)
    assert shape(ours) == shape(theirs)


def test_tracelb_via_rb_takes_rb_path(lab, tmp_path):
    """-r rB: rB sends to t2, which has no route to the ECMP destination; both stop after t2.

    t2's net unreachables are rate limited by Linux whatever the lab's
    ICMP sysctls say (ip_error: 1 per second per source after a burst of 5,
    net.ipv4.route.error_cost / error_burst, which exist only in the first
    network namespace), so which probes need a second attempt depends on
    what the run before left of the burst: the graph is compared, not the
    probe sequence.
    """
    ours, theirs = run_both(lab, tmp_path, f"tracelb -r 192.0.2.2 -W 15 -w 1 {DST}")
    assert "192.0.2.2" in shape(ours)["nodes"]
    assert shape(ours) == shape(theirs)


def test_tracelb_v6_icmp_same_graph_as_scamper(lab, tmp_path):
    # Debian scamper's IPv6 UDP probes get no answers in this lab (its trace
    # too); ICMP echo works for both, and takes one path through the
    # multipath route: which one depends on the ICMP id, the source port
    ours, theirs = run_both(lab, tmp_path, f"tracelb -P icmp-echo -W 15 {DST6}")
    assert flows(ours) == flows(theirs)
    assert shape(ours) == shape(theirs)
    assert len(shape(ours)["links"]) == 3
    assert shape(ours)["links"] <= LINKS6
    assert ours["probec"] == theirs["probec"]


@pytest.mark.parametrize("method", ["udp-dport", "udp-sport"])
def test_tracelb_v6_udp_ours(lab, tmp_path, method):
    # -s 40100: with the lab's fixed hash, -P udp-sport -s 40000 sends its
    # first six flows all to m1 (a 1 in 32 draw), and the MDA then rightly
    # stops at one next hop; these flows take both
    ours = run_ours(lab, tmp_path, f"tracelb -P {method} -s 40100 -W 15 {DST6}")
    if _seed_fixed(lab):
        assert shape(ours)["links"] == LINKS6
    else:
        assert len(shape(ours)["links"]) >= 3


def _hop3(lab, first_sport: int, flows: int) -> list:
    """The address that answers at TTL 3 for each of ``flows`` UDP flows (one per source port)."""
    argv = ["scamper", "-O", "json"]
    for sport in range(first_sport, first_sport + flows):
        argv += ["-I", f"trace -P udp-paris -f 3 -m 3 -q 1 -w 1 -s {sport} {DST}"]
    out = lab.run("coll", argv, timeout=120).stdout
    by_sport = {}
    for rec in map(json.loads, out.splitlines()):
        if rec.get("type") == "trace":
            by_sport[rec["sport"]] = rec["hops"][0]["addr"] if rec.get("hops") else None
    return [by_sport.get(s) for s in range(first_sport, first_sport + flows)]


def test_next_hop_is_a_function_of_the_flow_alone(lab):
    """A hash stored on a packet before t1 (here by RPS on t1's ingress) must not move a flow.

    With fib_multipath_hash_policy=1 Linux uses such a stored hash instead of
    its own, and which packets carry one varies from run to run; the lab
    uses the custom policy, which always hashes the 5-tuple.  16 flows: the
    chance that two different hashes agree on all of them is 2**-16.
    """
    rps = "/sys/class/net/down0/queues/rx-0/rps_cpus"
    before = _hop3(lab, 41000, 16)
    assert set(before) == {"198.18.11.2", "198.18.12.2"}, before
    lab.run("t1", ["sh", "-c", f"echo 3 > {rps}"])
    try:
        with_rps = _hop3(lab, 41000, 16)
    finally:
        lab.run("t1", ["sh", "-c", f"echo 0 > {rps}"])
    assert with_rps == before
