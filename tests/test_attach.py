"""ixp-attach: the session driver (sans-IO), the CLI against a scripted
control server (no root needed), and against the real ``scamper -U``."""

from __future__ import annotations

import ipaddress
import os
import pty
import select
import socket
import subprocess
import threading
import time

import pytest

from ixpscamper.attach import AttachDriver, CommandSource, clean_lines
from ixpscamper.control import server as S
from ixpscamper.control import uu
from ixpscamper.warts import encode_cycle, encode_cycle_stop, encode_list, encode_record
from ixpscamper.warts.records import CycleStart, CycleStop, Ping, PingReply, Timeval, WartsList

from tests.conftest import requires_root, requires_tool
from tests.pipeline_helpers import ATTACH, records, shape

LIST = WartsList(name="x:0", description=None)
CYCLE = CycleStart(list=LIST, start_time=1795760000, id=1, hostname="h")


def ping_record(dst: str) -> bytes:
    addr = ipaddress.ip_address(dst)
    p = Ping(dst=addr, src=ipaddress.ip_address("127.0.0.1"), start=Timeval(1795760000, 0),
             probe_count=1, ping_sent=1, reply_count=1,
             replies=[PingReply(addr=addr, rtt=50, reply_ttl=64, reply_size=84, tx=Timeval(1795760000, 0))])
    return encode_record(p, 1, 1)


# -- the driver, no I/O ---------------------------------------------------------------

class Harness:
    def __init__(self, lines, **kw):
        self.sent = []
        self.out = []
        self.err = []
        self.src = CommandSource()
        self.src.extend(lines)
        self.src.finish()
        kw.setdefault("attach_line", None)
        self.d = AttachDriver(self.src, send=self.sent.append, emit=self.out.append,
                              report=self.err.append, **kw)
        self.d.connected()

    def feed(self, text: bytes):
        self.d.receive(text)

    def sent_lines(self):
        return b"".join(self.sent).decode().splitlines()


def data(payload: bytes, tid=None) -> bytes:
    block = uu.encode(payload)
    return f"DATA {len(block)}{f' id-{tid}' if tid else ''}\n".encode() + block


def test_driver_paces_on_more_and_continues_after_err():
    h = Harness(["ping 127.0.0.1", "bad", "ping 127.0.0.2"])
    assert h.sent == []  # remote channel: wait for MORE
    h.feed(b"MORE\n" + data(encode_list(LIST, 1)) + data(encode_cycle(CYCLE, 1, 1)))
    assert h.sent_lines() == ["ping 127.0.0.1"]
    h.feed(b"OK id-1\nMORE\n")
    assert h.sent_lines()[-1] == "bad"
    h.feed(b"ERR command not accepted\n")  # no MORE follows an ERR
    assert h.sent_lines()[-1] == "ping 127.0.0.2"
    h.feed(b"OK id-2\n" + data(ping_record("127.0.0.1"), 1))
    assert h.sent_lines()[-1] == "ping 127.0.0.2"  # done waits for the MORE
    h.feed(b"MORE\n")
    assert h.sent_lines()[-1] == "done"
    h.feed(b"OK\n" + data(ping_record("127.0.0.2")) + data(encode_cycle_stop(CycleStop(CYCLE, 1), 1)))
    h.d.closed()
    assert h.err == ["ERR command not accepted (command: bad)"]
    assert (h.d.sent, h.d.results, h.d.failed) == (3, 2, 1)
    assert h.d.exit_status == 1
    assert shape(records(b"".join(h.out))) == ["list", "cycle-start", "ping", "ping", "cycle-stop"]


def test_driver_impatient_sends_everything_after_first_more():
    h = Harness([f"ping 127.0.0.{i}" for i in range(1, 6)], impatient=True)
    h.feed(b"MORE\n")
    assert h.sent_lines() == [f"ping 127.0.0.{i}" for i in range(1, 6)]
    h.feed(b"".join(b"OK id-%d\n" % i for i in range(1, 6)))
    assert h.sent_lines()[-1] == "done"
    h.feed(b"OK\n" + b"".join(data(ping_record(f"127.0.0.{i}"), i) for i in range(1, 6))
           + data(encode_cycle_stop(CycleStop(CYCLE, 1), 1)))
    h.d.closed()
    assert h.d.exit_status == 0 and h.err == []


def test_driver_attach_refused_and_early_close():
    h = Harness(["ping 127.0.0.1"], attach_line="attach priority 3")
    assert h.sent_lines() == ["attach priority 3"]
    h.feed(b"ERR invalid priority\n")
    assert h.d.want_close and h.d.exit_status == 1
    assert h.err == ["attach refused: ERR invalid priority"]
    h2 = Harness(["ping 127.0.0.1"])
    h2.feed(b"MORE\n")
    h2.d.closed()  # the VP went away with a command unanswered
    assert h2.d.exit_status == 1 and h2.err == ["connection ended with 1 sent but never acknowledged"]


def test_driver_protocol_error_is_fatal():
    h = Harness([])
    h.feed(b"DATA 5\n!!!!!")
    assert h.d.want_close and "protocol error" in h.err[0]
    h = Harness([])
    h.feed(b"HELLO\n")
    assert h.d.want_close and "unexpected reply" in h.err[0]


def test_clean_lines():
    assert clean_lines(["  127.0.0.1 ", "", "# x", "::1"], "ping -c 1") == [
        "ping -c 1 127.0.0.1", "ping -c 1 ::1"]


# -- the CLI against a scripted server (no root) ---------------------------------------

class ScriptedScamper:
    """A unix-socket control server built on our ControlServer core; each
    ``ping ADDR`` gets a canned result, ``ping 127.0.0.99`` never finishes."""

    def __init__(self, path: str, attached: bool = False, dialect: str = "current") -> None:
        self.path = path
        self.attached = attached
        self.dialect = dialect
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(5)
        self.connections = 0
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            while True:
                conn, _ = self.sock.accept()
                self.connections += 1
                self._session(conn)
        except OSError:
            return

    def _session(self, conn):
        core = S.ControlServer(attached=self.attached, dialect=self.dialect)
        pending = []
        done = False
        if self.attached:
            core.more()
            core.result(encode_list(LIST, 1))
            core.result(encode_cycle(CYCLE, 1, 1))
        conn.sendall(core.data_to_send())
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            self.received += chunk
            core.feed(chunk)
            while (ev := core.next_event()) is not None:
                if isinstance(ev, S.Attached):
                    core.result(encode_list(LIST, 1))
                    core.result(encode_cycle(CYCLE, 1, 1))
                elif isinstance(ev, S.Command):
                    words = ev.text.split()
                    if words[0] != "ping":
                        core.reject("only ping here")
                        continue
                    tid = core.accept()
                    core.more()
                    pending.append((tid, words[-1]))
                elif isinstance(ev, S.Done):
                    done = True
            for tid, dst in pending:
                core.result(ping_record(dst), task_id=tid)
            pending.clear()
            if done:
                core.result(encode_cycle_stop(CycleStop(CYCLE, 1795760001), 1))
            conn.sendall(core.data_to_send())
            if done:
                break
        conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def scripted(tmp_path):
    servers = []

    def make(**kw):
        s = ScriptedScamper(str(tmp_path / f"s{len(servers)}.sock"), **kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


def run(argv, stdin=b"", **kw):
    return subprocess.run(ATTACH + argv, input=stdin, capture_output=True, timeout=30, **kw)


def test_cli_unix_attach_and_prefix(scripted, tmp_path):
    srv = scripted()
    inp = tmp_path / "in.txt"
    inp.write_text("127.0.0.1\n\n# skip\n127.0.0.2\n")
    out = tmp_path / "out.warts"
    res = run(["-U", srv.path, "-c", "ping -c 1", "-i", str(inp), "-o", str(out), "-P", "7"])
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""  # not a terminal: no progress line
    assert srv.received.decode().splitlines() == [
        "attach priority 7", "ping -c 1 127.0.0.1", "ping -c 1 127.0.0.2", "done"]
    assert shape(records(out.read_bytes())) == ["list", "cycle-start", "ping", "ping", "cycle-stop"]


def test_cli_remote_socket_sends_no_attach_and_reads_2021(scripted):
    srv = scripted(attached=True, dialect="2021")
    res = run(["-R", srv.path, "-i", "-", "-o", "-"], b"ping 127.0.0.1\nfoo\nping 127.0.0.3\n")
    assert res.returncode == 1
    assert res.stderr.decode().splitlines() == [
        "ixp-attach: ERR command not accepted: only ping here (command: foo)",
        "ixp-attach: 1 of 3 command(s) failed"]
    assert not srv.received.startswith(b"attach")
    assert shape(records(res.stdout)) == ["list", "cycle-start", "ping", "ping", "cycle-stop"]


def test_cli_json_from_a_warts_channel(scripted):
    srv = scripted(attached=True)
    res = run(["-R", srv.path, "-i", "-", "-o", "-", "--format", "json"], b"ping 127.0.0.1\n")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert [l.split('"type":"')[1].split('"')[0] for l in lines] == ["cycle-start", "ping", "cycle-stop"]


def test_cli_unwritable_output_fails_before_sending(scripted, tmp_path):
    srv = scripted()
    res = run(["-U", srv.path, "-i", "-", "-o", str(tmp_path / "no" / "such" / "dir")], b"ping 127.0.0.1\n")
    assert res.returncode == 1
    assert res.stderr.decode().startswith("ixp-attach: cannot open output file")
    assert b"Traceback" not in res.stderr
    time.sleep(0.2)
    assert srv.connections == 0


@pytest.mark.parametrize("argv, msg", [
    (["-i", "-"], "one of -R SOCKET, -U SOCKET or -p"),
    (["-U", "/nonexistent/sock"], "cannot connect to /nonexistent/sock: No such file or directory"),
    (["-p", "127.0.0.1:notaport"], "-p: invalid port"),
    (["-U", "/x", "-O", "sloppy"], "-O: unknown option 'sloppy'"),
    (["-U", "/x", "-P", "0"], "-P: priority must be 1-100000"),
    (["-U", "/x", "-i", "/nonexistent/in"], "cannot read input file /nonexistent/in"),
])
def test_cli_bad_usage_one_line(argv, msg):
    res = run(argv)
    assert res.returncode != 0
    err = res.stderr.decode()
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_progress_line_only_on_a_terminal(scripted):
    srv = scripted(attached=True)
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(ATTACH + ["-R", srv.path, "-i", "-", "-o", os.devnull],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        p.communicate(b"ping 127.0.0.1\nping 127.0.0.2\n", timeout=30)
        got = b""
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    finally:
        os.close(master)
    assert p.returncode == 0
    assert b"sent 2, done 2, failed 0" in got


# -- the real scamper -U ------------------------------------------------------------------

@requires_root
@requires_tool("scamper")
@requires_tool("sc_attach")
@pytest.mark.interop
@pytest.mark.timeout(60)
def test_real_scamper_unix_socket_same_records_as_sc_attach(tmp_path):
    sock = tmp_path / "scamper.sock"
    sc = subprocess.Popen(["scamper", "-U", str(sock), "-p", "200"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        cmds = b"ping -c 2 127.0.0.1\ntrace -q 1 -m 2 127.0.0.1\nping -c 1 127.0.0.2\n"
        ref = subprocess.run(["sc_attach", "-U", str(sock), "-i", "-", "-o", "-"], input=cmds,
                             capture_output=True, timeout=30)
        ours = run(["-U", str(sock), "-i", "-", "-o", "-"], cmds)
        assert ours.returncode == 0, ours.stderr
        assert shape(records(ours.stdout)) == shape(records(ref.stdout)) == [
            "list", "cycle-start", "ping", "ping", "trace", "cycle-stop"]
        # impatient + -c + json (scamper's own JSON), and -P
        js = run(["-U", str(sock), "-i", "-", "-o", "-", "-c", "ping -c 1", "-O", "impatient",
                  "--format", "json"], b"127.0.0.1\n127.0.0.3\n")
        assert js.returncode == 0, js.stderr
        kinds = [l.split('"type":"')[1].split('"')[0] for l in js.stdout.decode().splitlines()]
        assert kinds == ["cycle-start", "ping", "ping", "cycle-stop"]
        pr = run(["-U", str(sock), "-i", "-", "-o", "-", "-P", "5"], b"ping -c 1 127.0.0.1\n")
        assert pr.returncode == 0 and shape(records(pr.stdout)).count("ping") == 1
        # scamper 20211212 refuses a command: reported, counted, the run goes on
        bad = run(["-U", str(sock), "-i", "-", "-o", "-"], b"ping -c 1 127.0.0.1\nfoo\n")
        assert bad.returncode == 1 and b"(command: foo)" in bad.stderr
    finally:
        sc.terminate()
        sc.wait(10)


def test_cli_random_order_and_debug(scripted, tmp_path):
    srv = scripted()
    inp = tmp_path / "in.txt"
    addrs = [f"127.0.0.{i}" for i in range(1, 41)]
    inp.write_text("\n".join(addrs) + "\n")
    res = run(["-U", srv.path, "-c", "ping", "-i", str(inp), "-o", os.devnull, "-O", "random", "-d"])
    assert res.returncode == 0, res.stderr
    sent = srv.received.decode().splitlines()
    assert sent[0] == "attach" and sent[-1] == "done"
    cmds = sent[1:-1]
    assert sorted(cmds) == sorted(f"ping {a}" for a in addrs)
    assert cmds != [f"ping {a}" for a in addrs]  # shuffled (fails with probability 1/40!)
    # -d: every command sent is echoed on stderr
    assert res.stderr.decode().count("ixp-attach: sending: ping ") == 40


def test_cli_json_with_priority_is_rendered_locally(scripted):
    """scamper 20211212 refuses 'attach format json priority N' (one parameter
    only), so with -P ixp-attach attaches for warts and renders JSON itself."""
    srv = scripted()
    res = run(["-U", srv.path, "-i", "-", "-o", "-", "--format", "json", "-P", "9"], b"ping 127.0.0.1\n")
    assert res.returncode == 0, res.stderr
    assert srv.received.decode().splitlines()[0] == "attach priority 9"
    kinds = [l.split('"type":"')[1].split('"')[0] for l in res.stdout.decode().splitlines()]
    assert kinds == ["cycle-start", "ping", "cycle-stop"]
