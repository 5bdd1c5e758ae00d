"""ixp-peers end to end in the namespace lab: BIRD sessions between the
collector and the members rA, rB (IPv4 and IPv6) -> the collector's MRT
dump -> ixp-peers through ixp-vp's local control socket -> the congruence
table, with rB's false AS path detected as an extra AS on the data path.
A member whose next hop never answers ARP (added from a second MRT file)
gives one warning line and an ``unreached`` row; the campaign goes on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import requires_root
from tests.peers_helpers import write_mrt

pytestmark = [requires_root, pytest.mark.timeout(180),
              pytest.mark.skipif(shutil.which("bird") is None, reason="BIRD 2 not installed (apt-get install bird2)")]

TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0]='twistd'; run()"]


@pytest.fixture(scope="module")
def bgp_lab(tmp_path_factory):
    from ixpscamper.lab import Lab

    tmp = tmp_path_factory.mktemp("peers-lab")
    L = Lab.create(bgp=True)
    try:
        ribs = L.bgp.bgp_rib_files()
        # a member that is gone from the LAN: its next hop never answers ARP
        ghost = write_mrt(tmp / "ghost.mrt", [("192.0.2.99", 65099)],
                          [(0, "198.51.100.0/24", [65099, 65020], "192.0.2.99")])
        yield L, ribs + [ghost]
    finally:
        L.teardown()


def wait_path(path, what, timeout=20):
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, what
        time.sleep(0.1)


def test_congruence_in_the_lab(bgp_lab, tmp_path):
    L, ribs = bgp_lab
    sock = tmp_path / "vp.sock"
    log = open(tmp_path / "vp.log", "wb")
    L.popen("coll", TWISTD + ["-n", "--pidfile=", "ixp-vp", "--unix", str(sock), "--pps", "200"],
            stdout=log, stderr=subprocess.STDOUT)
    wait_path(sock, "ixp-vp did not open its control socket")
    out = tmp_path / "out.json"
    argv = [sys.executable, "-m", "ixpscamper.peers.cli", *sum((["--rib", r] for r in ribs), []),
            "--ixp-lan", "192.0.2.0/24", "--ixp-lan", "2001:db8:1::/64",
            "--dst", "198.51.100.66", "--dst", "2001:db8:d::66", "-U", str(sock),
            "--trace-opts", "-q 1 -w 1", "--json", str(out), "--warts", str(tmp_path / "out.warts")]
    p = L.run("coll", argv, check=False, timeout=120)
    print(p.stdout)
    assert p.returncode == 0, p.stderr
    rows = {(r["peer_ip"], r["dst"]): r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {("192.0.2.1", "198.51.100.66"), ("192.0.2.2", "198.51.100.66"),
                         ("2001:db8:1::1", "2001:db8:d::66"), ("2001:db8:1::2", "2001:db8:d::66"),
                         ("192.0.2.99", "198.51.100.66")}
    for v4, v6, dst4, dst6 in (("192.0.2.1", "2001:db8:1::1", "198.51.100.66", "2001:db8:d::66"),):
        a4, a6 = rows[(v4, dst4)], rows[(v6, dst6)]
        assert a4["class"] == a6["class"] == "match"
        assert a4["bgp_path"] == a6["bgp_path"] == [65001, 65011, 65020]
        assert a4["trace_hops"] == ["192.0.2.1", "198.18.1.2", "198.51.100.66"]
        assert a6["trace_hops"] == ["2001:db8:1::1", "2001:db8:a::2", "2001:db8:d::66"]
    b4, b6 = rows[("192.0.2.2", "198.51.100.66")], rows[("2001:db8:1::2", "2001:db8:d::66")]
    for b in (b4, b6):
        # BIRD's dump keeps rB's prepending; the data plane crosses t2 (AS 65012)
        assert b["bgp_path"] == [65002, 65002, 65020]
        assert b["trace_path"] == [65002, 65012, 65020]
        assert b["class"] == "extra_as" and "AS65012" in b["detail"]
    assert b6["next_hop"] == "2001:db8:1::2"   # the global next hop, not the link-local one
    g = rows[("192.0.2.99", "198.51.100.66")]
    assert (g["class"], g["trace_path"], g["reached"]) == ("unreached", [], False)
    assert "did not answer" in g["detail"]
    assert [line for line in p.stderr.splitlines() if "192.0.2.99" in line] == [
        "ixp-peers: next hop 192.0.2.99 (peer 192.0.2.99 AS65099) did not answer (no ARP/ND reply?): "
        "trace of 198.51.100.66 has no hop"]
    assert "extra_as" in p.stdout and "peer 2001:db8:1::2 AS65002" in p.stdout


def test_through_ixp_remoted(bgp_lab, tmp_path):
    """The same campaign through a controller's per-VP socket (ixp-remoted + ixp-vp -R)."""
    L, ribs = bgp_lab
    sockdir = tmp_path / "socks"
    sockdir.mkdir(mode=0o700)
    logs = [open(tmp_path / n, "wb") for n in ("remoted.log", "vp.log")]
    port = 31000 + (int(time.time()) % 2000)
    L.popen("coll", TWISTD + ["-n", "--pidfile=", "ixp-remoted", "-P", f"127.0.0.1:{port}", "-U", str(sockdir)],
            stdout=logs[0], stderr=subprocess.STDOUT)
    time.sleep(0.5)
    vp = L.popen("coll", TWISTD + ["-n", "--pidfile=", "ixp-vp", "-R", f"127.0.0.1:{port}", "-M", "rc1",
                                   "--no-tls", "--pps", "200"], stdout=logs[1], stderr=subprocess.STDOUT)
    end = time.monotonic() + 30
    while not [p for p in sockdir.iterdir() if p.name.startswith("rc1-")]:
        assert time.monotonic() < end and vp.poll() is None, (tmp_path / "vp.log").read_text()
        time.sleep(0.1)
    sock = next(p for p in sockdir.iterdir() if p.name.startswith("rc1-"))
    argv = [sys.executable, "-m", "ixpscamper.peers.cli", *sum((["--rib", r] for r in ribs[:2]), []),
            "--ixp-lan", "192.0.2.0/24", "--ixp-lan", "2001:db8:1::/64",
            "--dst", "198.51.100.66", "--dst", "2001:db8:d::66", "-R", str(sock),
            "--trace-opts", "-P icmp-paris -q 1", "--json", str(tmp_path / "o.json"), "--html", str(tmp_path / "o.html")]
    p = L.run("coll", argv, check=False, timeout=120)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in (tmp_path / "o.json").read_text().splitlines()]
    assert sorted((r["peer_asn"], r["dst"], r["class"]) for r in rows) == [
        (65001, "198.51.100.66", "match"), (65001, "2001:db8:d::66", "match"),
        (65002, "198.51.100.66", "extra_as"), (65002, "2001:db8:d::66", "extra_as")]
    assert '<span class="as diff">65012</span>' in (tmp_path / "o.html").read_text()


def test_bird_daemons_die_with_the_lab_even_when_the_body_fails():
    import os

    from ixpscamper.lab import lab

    seen = {}
    with pytest.raises(RuntimeError):
        with lab(bgp=True) as L:
            for role in ("coll", "rA", "rB"):
                pidfile = L.bgp.path(role, "pid")
                wait_path(__import__("pathlib").Path(pidfile), f"bird in {role} wrote no pid file")
                seen[role] = int(open(pidfile).read())
            directory = L.bgp.dir
            raise RuntimeError("the test failed")
    assert set(seen) == {"coll", "rA", "rB"}
    for role, pid in seen.items():
        assert not os.path.exists(f"/proc/{pid}"), f"bird of {role} (pid {pid}) still runs"
    assert not os.path.exists(directory)


S26 = __import__("pathlib").Path(__file__).resolve().parent.parent.parent / "shared" / "scamper-2026"


@pytest.mark.skipif(not (S26 / "bin" / "sc_remoted").exists(), reason="../shared/scamper-2026 not present")
def test_through_a_mux_socket(bgp_lab, tmp_path):
    """--mux PATH --vp NAME: scamper 2026's sc_remoted mux socket, our VP behind it."""
    L, ribs = bgp_lab
    sockdir = tmp_path / "socks"
    sockdir.mkdir(mode=0o700)
    logs = [open(tmp_path / n, "wb") for n in ("remoted.log", "vp.log")]
    port = 33000 + (int(time.time()) % 2000)
    mux = sockdir / "mux"
    L.popen("coll", [str(S26 / "bin" / "sc_remoted"), "-P", f"127.0.0.1:{port}", "-U", str(sockdir), "-M", str(mux)],
            stdout=logs[0], stderr=subprocess.STDOUT)
    wait_path(mux, "sc_remoted made no mux socket")
    vp = L.popen("coll", TWISTD + ["-n", "--pidfile=", "ixp-vp", "-R", f"127.0.0.1:{port}", "-M", "mx1",
                                   "--no-tls", "--pps", "200"], stdout=logs[1], stderr=subprocess.STDOUT)
    end = time.monotonic() + 30
    while not [p for p in sockdir.iterdir() if p.name.startswith("mx1-")]:
        assert time.monotonic() < end and vp.poll() is None, (tmp_path / "vp.log").read_text()
        time.sleep(0.1)
    argv = [sys.executable, "-m", "ixpscamper.peers.cli", *sum((["--rib", r] for r in ribs[:2]), []),
            "--ixp-lan", "192.0.2.0/24", "--ixp-lan", "2001:db8:1::/64",
            "--dst", "198.51.100.66", "--dst", "2001:db8:d::66", "--mux", str(mux), "--vp", "mx1",
            "--json", str(tmp_path / "o.json")]
    p = L.run("coll", argv, check=False, timeout=120)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in (tmp_path / "o.json").read_text().splitlines()]
    assert sorted((r["peer_asn"], r["dst"], r["class"]) for r in rows) == [
        (65001, "198.51.100.66", "match"), (65001, "2001:db8:d::66", "match"),
        (65002, "198.51.100.66", "extra_as"), (65002, "2001:db8:d::66", "extra_as")]
    # an unknown VP name: one line naming the VPs present
    p = L.run("coll", argv[:-2] + ["--vp", "nope"], check=False, timeout=60)
    assert p.returncode == 1 and p.stderr.splitlines() == [
        f"ixp-peers: --vp nope: no such VP on {mux} (present: mx1)"]


def test_demo_ends_with_the_congruence_table():
    p = subprocess.run([sys.executable, "-m", "ixpscamper.lab", "demo"], capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stderr == ""
    tail = p.stdout[p.stdout.index("$ ixp-peers "):]
    assert "4 peer(s), 4 pair(s): match 2, extra_as 2" in tail
    assert tail.count("(on the data path, not on the BGP path: AS65012)") == 2
    assert tail.rstrip().endswith("lab torn down.")
