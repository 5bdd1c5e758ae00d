"""ixp-remoted's mux socket (-M, -m) end to end, and interop with the real
scamper 2026 tools: ScamperCtrl(mux=...) against our mux, our client
against the real sc_remoted -M.  Pings go to 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from ixpscamper.client.blocking import Mux
from ixpscamper.client.channel import CommandRefused
from ixpscamper.mux.frames import (
    Attr, ChannelClose, ChannelData, ChannelOpen, Go, MuxDecoder, VpDepart, VpUpdate,
    encode_control, encode_data,
)
from ixpscamper.warts.records import Ping, Trace

from conftest import requires_root, requires_tool
from pipeline_helpers import TWISTD, Procs, free_port, wait_for, wait_port
from remotestub import StubVP

S26 = Path(__file__).resolve().parents[2] / "shared" / "scamper-2026"
have_2026 = (S26 / "bin" / "sc_remoted").exists() and (S26 / "python" / "scamper.so").exists()
requires_2026 = pytest.mark.skipif(not have_2026, reason="../shared/scamper-2026 is absent")

META = """\
# metadata for the test VPs
ovp asn4 64500
ovp asn6 64501
ovp cc nz
ovp place Hamilton, New Zealand
ovp latlong -37.78,175.28
ovp tag ixp
ovp tag collector
stub iata hlz
"""


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def our_mux_remoted(procs: Procs, tmp: Path, port: int, *extra: str):
    (tmp / "meta.txt").write_text(META)
    mux = tmp / "mux"
    procs.start("ixp-remoted", TWISTD + ["-n", "--pidfile=", "ixp-remoted", "-P", f"127.0.0.1:{port}",
                                         "-M", str(mux), "-m", str(tmp / "meta.txt"), *extra])
    wait_port(port)
    wait_for(mux.exists, 10, "the mux socket")
    return mux


class RawMux:
    """A mux client at the byte level."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(str(path))
        self.s.settimeout(10)
        self.dec = MuxDecoder("client")
        self.events = []

    def send(self, data: bytes):
        self.s.sendall(data)

    def until(self, pred, timeout=10.0):
        end = time.monotonic() + timeout
        while not pred(self.events):
            self.s.settimeout(max(0.05, end - time.monotonic()))
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                raise AssertionError(f"timed out; events so far: {self.events}") from None
            if not data:
                raise AssertionError(f"EOF; events so far: {self.events}")
            self.events += list(self.dec.feed(data))
            if time.monotonic() > end:
                raise AssertionError(f"timed out; events so far: {self.events}")
        return self.events

    def data(self, ch):
        return b"".join(e.data for e in self.events if isinstance(e, ChannelData) and e.channel == ch)


def test_mux_updates_go_channels_and_depart(procs, tmp_path):
    port = free_port()
    mux = our_mux_remoted(procs, tmp_path, port)
    vp = StubVP(port, name=b"stub").start()
    try:
        wait_for(lambda: "VP stub-" in procs.log("ixp-remoted"), 10, "registration")
        c = RawMux(mux)
        evs = c.until(lambda e: any(isinstance(x, Go) for x in e))
        (upd,) = [e for e in evs if isinstance(e, VpUpdate)]
        assert isinstance(evs[-1], Go)
        codes = [code for code, _ in upd.attrs]
        assert codes == [Attr.NAME, Attr.ARRIVAL, Attr.IPV4, Attr.IATA]
        assert upd.get(Attr.NAME) == "stub" and upd.get(Attr.IPV4) == "127.0.0.1"
        assert upd.get(Attr.IATA) == "hlz"
        assert abs(float(upd.get(Attr.ARRIVAL)) - time.time()) < 60
        # a channel behaves like a per-VP socket user: MORE, then the echo
        c.send(encode_control(ChannelOpen(upd.vp_id, 7)) + encode_data(7, b"hello mux\n"))
        c.until(lambda e: c.data(7) == b"MORE\nhello mux\n")
        # a second client sees the VP too; a later VP is announced to both
        c2 = RawMux(mux)
        c2.until(lambda e: any(isinstance(x, Go) for x in e))
        vp2 = StubVP(port, name=b"late").start()
        try:
            for cl in (c, c2):
                cl.until(lambda e: any(isinstance(x, VpUpdate) and x.get(Attr.NAME) == "late"
                                       for x in e))
            late = [e for e in c.events if isinstance(e, VpUpdate) and e.get(Attr.NAME) == "late"][0]
            assert late.vp_id != upd.vp_id
        finally:
            vp2.stop()
        # the VP's state is freed (zombie time 0 is not set: stop the process
        # side by refusing the resume) -> VP_DEPART to every client
        c.send(encode_control(ChannelOpen(999, 8)))   # unknown VP: fatal for c only
        c.until(lambda e: False, timeout=0.1) if False else None
        with pytest.raises(AssertionError, match="EOF"):
            c.until(lambda e: False, timeout=5)
        assert "CHANNEL_OPEN for unknown VP id 999" in procs.log("ixp-remoted")
        c2.send(encode_control(ChannelOpen(upd.vp_id, 1)))
        c2.until(lambda e: c2.data(1).startswith(b"MORE\n"))
    finally:
        vp.stop()


def test_mux_resumed_vp_keeps_its_id_and_channel(procs, tmp_path):
    port = free_port()
    mux = our_mux_remoted(procs, tmp_path, port)
    vp = StubVP(port, name=b"stub").start()
    try:
        c = RawMux(mux)
        evs = c.until(lambda e: any(isinstance(x, Go) for x in e) and
                      any(isinstance(x, VpUpdate) for x in e))
        (upd,) = [e for e in evs if isinstance(e, VpUpdate)]
        c.send(encode_control(ChannelOpen(upd.vp_id, 3)))
        c.until(lambda e: c.data(3) == b"MORE\n")
        vp.cut()
        c.send(encode_data(3, b"sent during the outage\n"))
        wait_for(lambda: "resumed" in procs.log("ixp-remoted"), 15, "the resume")
        c.until(lambda e: c.data(3) == b"MORE\nsent during the outage\n")
        assert not [e for e in c.events if isinstance(e, (VpDepart, ChannelClose))]
        assert len([e for e in c.events if isinstance(e, VpUpdate)]) == 1
    finally:
        vp.stop()


@requires_root
@requires_tool("scamper")
def test_our_client_drives_our_vps_through_our_mux(procs, tmp_path):
    port = free_port()
    mux = our_mux_remoted(procs, tmp_path, port)
    procs.our_vp(port, "ovp", "--pps", "200")
    procs.our_vp(port, "ovp2", "--pps", "200", name="ixp-vp2")
    with Mux(str(mux)) as m:
        wait_for(lambda: len(m.vps()) == 2, 15, "two VPs on the mux")
        vps = {v.name: v for v in m.vps()}
        o = vps["ovp"]
        assert (o.asn4, o.asn6, o.cc, o.place, o.loc, o.tags) == (
            64500, 64501, "nz", "Hamilton, New Zealand", (-37.78, 175.28),
            frozenset({"ixp", "collector"}))
        tasks = [m.submit(v, f"ping -c 1 127.0.0.{i % 200 + 1}") for v in vps.values()
                 for i in range(100)]
        got = list(m.results(tasks, timeout=120))
        assert len(got) == 200 and all(isinstance(rec, Ping) for _, rec in got)
        assert all(len(rec.replies) >= 1 for _, rec in got)
        with pytest.raises(CommandRefused) as e:
            m.run("ovp", "ping -c 0 127.0.0.1")
        assert e.value.command == "ping -c 0 127.0.0.1"
        trace = m.trace("ovp2", "127.0.0.1", attempts=1)
        assert isinstance(trace, Trace) and str(trace.hops[0].addr) == "127.0.0.1"


def _scamperctrl_script(mux: Path, out: Path) -> str:
    return f"""
import sys, json
sys.path.insert(0, {str(S26 / 'python')!r})
import scamper
ctrl = scamper.ScamperCtrl(mux={str(mux)!r})
res = {{"vps": [], "results": [], "errors": []}}
for vp in ctrl.vps():
    res["vps"].append(dict(name=vp.name, ipv4=vp.ipv4, asn4=vp.asn4, asn6=vp.asn6, cc=vp.cc,
                           place=vp.place, tags=sorted(vp.tags), loc=vp.loc, iata=vp.iata))
ctrl.add_vps(ctrl.vps())
for inst in ctrl.instances():
    ctrl.do_ping("127.0.0.1", inst=inst, attempts=2, wait_probe=0.2, wait_timeout=1)
    ctrl.do_trace("127.0.0.1", inst=inst, attempts=1, wait_timeout=1, wait_probe=0.05)
want = 2 * len(ctrl.instances())
for o in ctrl.responses(timeout=60):
    res["results"].append(dict(kind=type(o).__name__, vp=o.inst.name, dst=str(o.dst)))
    if len(res["results"]) == want:
        break
res["errors"] = [str(e) for e in ctrl.exceptions()]
open({str(out)!r}, "w").write(json.dumps(res))
"""


@requires_root
@requires_2026
def test_scamperctrl_drives_our_mux(procs, tmp_path):
    """The real ScamperCtrl(mux=...) against ixp-remoted -M, with our VP and
    a real 2026 scamper VP at once."""
    import json
    import subprocess
    port = free_port()
    mux = our_mux_remoted(procs, tmp_path, port)
    procs.our_vp(port, "ovp", "--pps", "200")
    procs.start("scamper26", [str(S26 / "bin" / "scamper"), "-O", "notls-remote", "-M", "s26",
                              "-R", f"127.0.0.1:{port}", "-p", "200"])
    wait_for(lambda: procs.log("ixp-remoted").count("registered") >= 2, 15, "both VPs")
    out = tmp_path / "ctrl.json"
    r = subprocess.run([sys.executable, "-c", _scamperctrl_script(mux, out)], capture_output=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(S26 / "python")})
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    res = json.loads(out.read_text())
    vps = {v["name"]: v for v in res["vps"]}
    assert set(vps) == {"ovp", "s26"}
    o = vps["ovp"]
    assert (o["ipv4"], o["asn4"], o["asn6"], o["place"], o["tags"]) == (
        "127.0.0.1", 64500, 64501, "Hamilton, New Zealand", ["collector", "ixp"])
    assert o["cc"].lower() == "nz" and o["loc"] == [-37.78, 175.28]
    kinds = sorted((x["vp"], x["kind"]) for x in res["results"])
    assert kinds == [("ovp", "ScamperPing"), ("ovp", "ScamperTrace"),
                     ("s26", "ScamperPing"), ("s26", "ScamperTrace")], res
    assert res["errors"] == []


@requires_root
@requires_2026
def test_our_client_through_the_real_2026_mux(procs, tmp_path):
    port = free_port()
    (tmp_path / "meta.txt").write_text(META)
    mux = tmp_path / "mux"
    procs.start("sc_remoted26", [str(S26 / "bin" / "sc_remoted"), "-P", f"127.0.0.1:{port}",
                                 "-M", str(mux), "-m", str(tmp_path / "meta.txt")])
    wait_port(port)
    procs.our_vp(port, "ovp", "--pps", "200")
    procs.start("scamper26", [str(S26 / "bin" / "scamper"), "-O", "notls-remote", "-M", "s26",
                              "-R", f"127.0.0.1:{port}", "-p", "200"])
    wait_for(mux.exists, 10, "the mux socket")
    with Mux(str(mux)) as m:
        wait_for(lambda: len(m.vps()) == 2, 20, "two VPs on the real mux")
        vps = {v.name: v for v in m.vps()}
        assert vps["ovp"].asn4 == 64500 and vps["ovp"].tags == frozenset({"ixp", "collector"})
        tasks = [m.submit(v, f"ping -c 1 127.0.0.{i + 1}") for v in vps.values() for i in range(20)]
        got = list(m.results(tasks, timeout=120))
        assert len(got) == 40 and all(isinstance(rec, Ping) for _, rec in got), got[:3]
