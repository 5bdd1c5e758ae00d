"""ixp-vp's local control socket (--unix), as scamper -U: driven by
ixp-attach -U and the Debian sc_attach -U; tasks of one source run at once."""

from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import requires_root, requires_tool
from tests.pipeline_helpers import (
    ATTACH, TWISTD, Procs, free_port, records, run_attach, shape, wait_for, wait_port,
)

pytestmark = [requires_root, pytest.mark.timeout(60)]


@pytest.fixture
def local_vp(tmp_path):
    procs = Procs(tmp_path)
    sock = tmp_path / "vp.sock"
    port = free_port()
    try:
        procs.start("ixp-vp", TWISTD + ["-n", "--pidfile=", "ixp-vp", "--unix", str(sock), "--pps", "200",
                                        "--attach-dialect", "2021", "--control-port", f"127.0.0.1:{port}"])
        wait_for(sock.exists, 15, "control socket")
        wait_port(port)
        procs.control_port = port
        yield sock, procs
    finally:
        procs.stop_all()
    assert not sock.exists()  # removed on stop


def _talk(path, data: bytes, wait: float = 0.5) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(path))
    s.sendall(data)
    s.settimeout(wait)
    out = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def test_socket_mode_and_interactive_mode(local_vp):
    sock, _ = local_vp
    assert (sock.stat().st_mode & 0o777) == 0o700
    out = _talk(sock, b"get version\nget pps\nping -c 1 127.0.0.1\nattach priority 0\n")
    assert out == (b"OK version 20211212\nOK pps 200\nERR unhandled command 'ping'\n"
                   b"ERR invalid priority\n")
    out = _talk(sock, b"attach\nping -c 1 127.0.0.1\n\x01\n", wait=3)
    assert out.startswith(b"OK\nMORE\nDATA ")
    assert b"ERR invalid character in line\n" in out


def test_concurrent_tasks_same_destination(local_vp):
    sock, procs = local_vp
    cmds = "ping -c 3 127.0.0.1\n" * 4
    t0 = time.monotonic()
    res = run_attach(ATTACH + ["-U", str(sock), "-i", "-", "-o", "-", "-O", "impatient"], cmds)
    took = time.monotonic() - t0
    assert res.returncode == 0, (res.stderr, procs.log("ixp-vp"))
    recs = records(res.stdout)
    assert shape(recs) == ["list", "cycle-start"] + ["ping"] * 4 + ["cycle-stop"]
    pings = [r for r in recs if type(r).__name__ == "Ping"]
    assert all(len(p.replies) == 3 for p in pings)
    # each takes about 3 s (1 probe a second); one after another would be 12 s
    assert took < 8, f"4 pings to one destination took {took:.1f} s: not concurrent"
    assert recs[0].name == f"{sock}:0"


@requires_tool("sc_attach")
def test_debian_sc_attach_on_the_local_socket(local_vp):
    sock, _ = local_vp
    res = run_attach(["sc_attach", "-U", str(sock), "-i", "-", "-o", "-"],
                     "ping -c 1 127.0.0.1\ntrace -q 1 -m 2 127.0.0.1\n")
    assert res.returncode == 0
    assert shape(records(res.stdout)) == ["list", "cycle-start", "ping", "trace", "cycle-stop"]


@pytest.mark.skipif(not __import__("shutil").which("setpriv"), reason="setpriv (util-linux) not installed")
def test_without_cap_net_raw_one_line_and_exit(tmp_path):
    import subprocess
    res = subprocess.run(["setpriv", "--bounding-set", "-net_raw,-net_admin"] + TWISTD
                         + ["-n", "--pidfile=", "ixp-vp", "--unix", str(tmp_path / "s.sock")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    out = (res.stdout + res.stderr).strip()
    assert "CAP_NET_RAW" in out and "Traceback" not in out
    assert out.count("\n") == 0, out


def test_control_port_with_json(local_vp):
    _, procs = local_vp
    res = run_attach(ATTACH + ["-p", str(procs.control_port), "-i", "-", "-o", "-", "--format", "json"],
                     "ping -c 1 127.0.0.1\n")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert [l.split('"type":"')[1].split('"')[0] for l in lines] == ["cycle-start", "ping", "cycle-stop"]
    assert '"list_name":"127.0.0.1:' in lines[0]  # TCP sources are named <ip>:<port>


def test_halt_gives_the_partial_result(local_vp):
    from ixpscamper.control import client as C
    sock, _ = local_vp
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(sock))
    s.sendall(b"attach\nping -c 10 127.0.0.1\n")
    time.sleep(2.2)
    s.sendall(b"halt 1\nhalt 7\ndone\n")
    s.settimeout(10)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    ev = C.ReplyParser().feed(data)
    assert C.Ok("halted 1") in ev and C.Err("no task id-7") in ev
    recs = records(b"".join(e.payload for e in ev if isinstance(e, C.Data)))
    ping = next(r for r in recs if type(r).__name__ == "Ping")
    assert 1 <= ping.ping_sent < 10


def test_reconnect_schedule_fast_first_then_backoff(tmp_path):
    """Controller unreachable: first retry within a second, then growing, jittered delays."""
    import re
    procs = Procs(tmp_path)
    try:
        procs.start("ixp-vp", TWISTD + ["-n", "--pidfile=", "ixp-vp", "-R", f"127.0.0.1:{free_port()}",
                                        "-M", "lonely", "--no-tls"])
        delays = wait_for(lambda: (lambda d: d if len(d) >= 4 else None)(
            [float(x) for x in re.findall(r"Scheduling retry \d+ to connect .* in ([0-9.]+) seconds",
                                          procs.log("ixp-vp"))]), 20, "four retries")
    finally:
        procs.stop_all()
    assert 0.5 <= delays[0] <= 1.0
    assert 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0 and 4.0 <= delays[3] <= 8.0
