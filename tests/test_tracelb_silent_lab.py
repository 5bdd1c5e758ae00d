"""tracelb past routers that do not answer, ours side by side with the Debian scamper.

A router in the lab is made silent by its own namespace's ICMP rate limits
(``icmp_msgs_per_sec=0``, ``icmp_msgs_burst=0``: no time exceeded, no
unreachable); the others get ``icmp_ratelimit=0`` so that neither program
loses a reply to the other's run.  scamper then records a link that ends in
``*`` for the silent hop and carries on with the same flows one TTL
further ("clump" mode): ``192.0.2.1 -> * -> 198.51.100.66`` in
sc_warts2text, ``(198.18.12.2, *)`` for a hop where one branch of a
load balancer is silent, ``-> * -> *`` when ``-g`` silent hops in a row end
it.

The repertoire's tracelb-silent (``-g 2 198.18.9.9``) is not compared
here: t1 answers it with net unreachables, which Linux limits with
``net.ipv4.route.error_cost`` / ``error_burst`` (host-wide, not per
namespace), so the second of two runs loses some of them and records a
clump - whichever program runs second.

Both programs run the same command (ours with scamper's source port, so
the same flows take the same branches); the text, the probe count and
every probe (TTL, flow, attempt, replies) must agree.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import requires_root, requires_tool

pytestmark = [requires_root, requires_tool("scamper"), requires_tool("sc_warts2json"),
              requires_tool("sc_warts2text"), pytest.mark.root, pytest.mark.interop, pytest.mark.slow]

ROUTERS = ("rA", "t1", "m1", "m2", "dst")
_SYSCTLS = ("net.ipv4.icmp_msgs_per_sec", "net.ipv4.icmp_msgs_burst", "net.ipv4.icmp_ratelimit")


@pytest.fixture(scope="module")
def lab():
    from ixpscamper.lab import Lab
    built = Lab.create(ecmp=True)
    try:
        yield built
    finally:
        built.teardown()


def _sysctl(lab, role: str, **values: int) -> dict[str, str]:
    old = {}
    for name, value in values.items():
        key = f"net.ipv4.{name}"
        old[name] = lab.run(role, ["sysctl", "-n", key]).stdout.strip()
        lab.run(role, ["sysctl", "-q", "-w", f"{key}={value}"])
    return old


@contextlib.contextmanager
def silent(lab, role: str):
    """``role`` sends no ICMP errors; the other routers are not rate limited."""
    saved = {}
    try:
        for r in ROUTERS:
            if r == role:
                saved[r] = _sysctl(lab, r, icmp_msgs_per_sec=0, icmp_msgs_burst=0)
            else:
                saved[r] = _sysctl(lab, r, icmp_ratelimit=0)
        yield
    finally:
        for r, old in saved.items():
            _sysctl(lab, r, **{k: int(v) for k, v in old.items()})


def _strip(x):
    """A record without what differs between runs (times, IP-IDs, the source port)."""
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items()
                if k not in ("tx", "rx", "rtt", "ipid", "start", "sport")}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def _run(lab, tmp_path: Path, who: str, cmd: str) -> tuple[str, dict]:
    path = tmp_path / f"{who}-{time.monotonic_ns()}.warts"
    if who == "ours":
        argv = [sys.executable, "-m", "ixpscamper.prober", "-o", str(path), cmd]
    else:
        argv = ["scamper", "-O", "warts", "-o", str(path), "-I", cmd]
    proc = lab.run("coll", argv, check=False, timeout=240)
    assert proc.returncode == 0, proc.stderr
    text = subprocess.run(["sc_warts2text", str(path)], capture_output=True, text=True,
                          check=True).stdout
    js = subprocess.run(["sc_warts2json", str(path)], capture_output=True, text=True,
                        check=True).stdout
    (rec,) = [r for r in map(json.loads, js.splitlines()) if r["type"] == "tracelb"]
    return text, rec


def both(lab, tmp_path: Path, cmd: str) -> tuple[tuple[str, dict], tuple[str, dict]]:
    """scamper first; then ours with scamper's source port, so that both send the same flows.

    (scamper 20211212 parses tracelb -s but never uses it: its source port
    is always its default, from its pid.)
    """
    stext, srec = _run(lab, tmp_path, "scamper", cmd)
    otext, orec = _run(lab, tmp_path, "ours", cmd.replace("tracelb ", f"tracelb -s {srec['sport']} ", 1))
    assert orec["sport"] == srec["sport"]
    return (otext, _strip(orec)), (stext, _strip(srec))


@pytest.mark.parametrize("role,cmd,want", [
    ("t1", "tracelb -w 1 -q 1 198.51.100.66", ["192.0.2.1 -> * -> 198.51.100.66"]),
    ("t1", "tracelb -w 1 -q 2 198.51.100.66", ["192.0.2.1 -> * -> 198.51.100.66"]),
    # nobody answers beyond rA: two silent hops (-g 2) end it
    ("t1", "tracelb -w 1 -q 1 -g 2 198.51.100.99", ["192.0.2.1 -> * -> *"]),
    # one branch of t1's load balancer is silent
    ("m1", "tracelb -w 1 -q 1 203.0.113.66", None),
])
def test_tracelb_silent_hops_as_scamper(lab, tmp_path, role, cmd, want):
    # With m1 silent, the flows scamper's source port (from its pid) gives
    # all take m2 in about 1 run in 32; the MDA then rightly never meets the
    # silent branch.  Each run is compared in full; runs go on (a new pid,
    # new flows) until one meets the branch, at most 4.
    for _ in range(4 if role == "m1" else 1):
        with silent(lab, role):
            (otext, orec), (stext, srec) = both(lab, tmp_path, cmd)
        assert otext == stext
        assert orec == srec
        lines = stext.splitlines()[1:]
        if want is not None:
            assert lines == want
        if role != "m1" or any("*" in line for line in lines):
            break
        # no silent hop: then the branch was never met, and m1 never answered
        assert "198.18.12.2" in stext and "198.18.11.2" not in stext, stext
    else:
        pytest.fail(f"4 runs, none met m1's silent branch:\n{stext}")
