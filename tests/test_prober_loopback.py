"""The prober with real sockets on the loopback (127.0.0.1 and ::1), no lab needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import have_tool, requires_root, requires_tool

pytestmark = [requires_root, requires_tool("sc_warts2json"), pytest.mark.root]


def records(path) -> list[dict]:
    out = subprocess.run(["sc_warts2json", str(path)], capture_output=True, text=True, check=True).stdout
    return [r for r in map(json.loads, out.splitlines()) if r["type"] in ("trace", "ping")]


def test_loopback_every_family_and_kind(tmp_path):
    out = tmp_path / "lo.warts"
    cmds = ["trace 127.0.0.1", "trace -P tcp 127.0.0.1", "trace -P icmp ::1",
            "ping -c 2 -i 0.2 127.0.0.1", "ping -c 2 -i 0.2 ::1", "ping -P tcp-syn -c 2 -i 0.2 127.0.0.1"]
    proc = subprocess.run([sys.executable, "-m", "ixpscamper.prober", "-p", "100", "-o", str(out), *cmds],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    recs = {(r["type"], r["method"], r["dst"]): r for r in records(out)}
    assert len(recs) == 6
    for key in [("trace", "udp-paris", "127.0.0.1"), ("trace", "tcp", "127.0.0.1"), ("trace", "icmp-echo", "::1")]:
        r = recs[key]
        assert r["stop_reason"] == "COMPLETED" and [h["addr"] for h in r["hops"]] == [key[2]], r
    assert recs[("trace", "tcp", "127.0.0.1")]["hops"][0]["tcp_flags"] & 0x04  # RST
    for key in [("ping", "icmp-echo", "127.0.0.1"), ("ping", "icmp-echo", "::1"), ("ping", "tcp-syn", "127.0.0.1")]:
        assert [x["seq"] for x in recs[key]["responses"]] == [0, 1], recs[key]
    if have_tool("scamper"):
        theirs_out = tmp_path / "sc.warts"
        argv = ["scamper", "-p", "100", "-O", "warts", "-o", str(theirs_out)]
        # (scamper 20211212's TCP traceroute gets nothing back on lo: left out)
        for c in (cmds[0], cmds[2]):
            argv += ["-I", c]
        subprocess.run(argv, capture_output=True, timeout=60, check=True)
        theirs = {(r["type"], r["method"], r["dst"]): r for r in records(theirs_out)}
        for key, r in theirs.items():
            assert [(h["addr"], h.get("icmp_type"), h.get("tcp_flags")) for h in r.get("hops", [])] == \
                [(h["addr"], h.get("icmp_type"), h.get("tcp_flags")) for h in recs[key].get("hops", [])]
            assert r["stop_reason"] == recs[key]["stop_reason"]
