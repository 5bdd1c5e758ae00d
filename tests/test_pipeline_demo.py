"""``ixp-lab demo``: the README's main job, end to end in a namespace lab."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

from ixpscamper.demo import side_by_side
from ixpscamper.lab import list_lab_namespaces
from ixpscamper.warts.records import Trace, TraceHop

from tests.conftest import requires_root


def _trace(addrs):
    hops = [TraceHop(addr=ipaddress.ip_address(a), probe_ttl=i + 1, rtt=1500) for i, a in enumerate(addrs) if a]
    return Trace(dst=ipaddress.ip_address("198.51.100.66"), hops=hops, hop_count=len(addrs))


def test_side_by_side_columns():
    out = side_by_side({"via A": _trace(["192.0.2.1", None, "198.51.100.66"]),
                        "via B": _trace(["192.0.2.2", "198.18.2.2"])})
    lines = out.splitlines()
    assert lines[0].split() == ["ttl", "via", "A", "via", "B"]
    assert lines[1].split() == ["1", "192.0.2.1", "1.500", "ms", "192.0.2.2", "1.500", "ms"]
    assert lines[2].split() == ["2", "*", "198.18.2.2", "1.500", "ms"]
    assert lines[3].split() == ["3", "198.51.100.66", "1.500", "ms"]


@requires_root
@pytest.mark.timeout(120)
def test_demo_runs_and_tears_down():
    p = subprocess.Popen([sys.executable, "-m", "ixpscamper.lab", "demo"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=110)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out + err
    # every namespace of the demo's lab is gone
    assert [n for n in list_lab_namespaces() if n.startswith(f"ixp{p.pid}-")] == []
    # the two members' paths, side by side
    row1 = next(l for l in out.splitlines() if l.strip().startswith("1  192.0.2.1"))
    assert "192.0.2.2" in row1
    row2 = next(l for l in out.splitlines() if l.strip().startswith("2  198.18.1.2"))
    assert "198.18.2.2" in row2
    assert "3 packets transmitted, 3 packets received, 0% packet loss" in out
    assert "lab torn down." in out
    assert err == ""
