"""ixp-attach tells the truth: lost commands are counted and reported, a
silent VP shows on the progress line, input is split on ``\\n`` only and
never echoed raw, and the CLI edges (-o FILE, terminals, broken pipes,
``-?``, bad flags) behave like the other ixpscamper tools.  No root."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import time

import pytest
from twisted.internet import task

from ixpscamper import attach as A
from ixpscamper.warts import encode_cycle, encode_cycle_stop, encode_list
from ixpscamper.warts.records import CycleStop

from tests.pipeline_helpers import ATTACH, records, shape
from tests.test_attach import CYCLE, LIST, data, ping_record, run, scripted  # noqa: F401  (fixture)


class H:
    """A driver on a task.Clock with a fixed list of commands."""

    def __init__(self, lines, **kw):
        self.clock = task.Clock()
        self.sent, self.out, self.err = [], [], []
        self.src = A.CommandSource()
        self.src.extend(lines)
        self.src.finish()
        kw.setdefault("attach_line", None)
        self.d = A.AttachDriver(self.src, send=self.sent.append, emit=self.out.append,
                              report=self.err.append, clock=self.clock, **kw)
        self.d.connected()

    def feed(self, b: bytes):
        self.d.receive(b)

    def sent_lines(self):
        return b"".join(self.sent).decode().splitlines()


HEAD = b"MORE\n" + data(encode_list(LIST, 1)) + data(encode_cycle(CYCLE, 1, 1))
STOP = data(encode_cycle_stop(CycleStop(CYCLE, 1795760001), 1))


def _accept_all(h, n, ids=True):
    """Answer each command with OK id-N and MORE, as a VP with a free queue does."""
    h.feed(HEAD)
    for i in range(1, n + 1):
        h.feed(b"OK id-%d\nMORE\n" % i)
    assert h.sent_lines()[-1] == "done"
    h.feed(b"OK\n")


# -- (a) lost commands ----------------------------------------------------------

def test_eof_with_accepted_commands_unanswered_is_reported():
    """The VP killed mid-run: every command was accepted, some answered, then EOF."""
    h = H([f"ping 127.0.0.{i}" for i in range(1, 6)])
    _accept_all(h, 5)
    h.feed(data(ping_record("127.0.0.1"), 1) + data(ping_record("127.0.0.2"), 2))
    h.d.closed()
    assert h.err == ["connection ended with 3 of 5 accepted commands unanswered"]
    assert h.d.exit_status != 0
    assert (h.d.accepted, h.d.results, h.d.unanswered) == (5, 2, 3)


def test_eof_unanswered_2021_dialect_results_without_ids():
    """DATA <n> without id-N (scamper 20211212): counted against the accepted ones."""
    h = H(["ping 127.0.0.1", "ping 127.0.0.2", "ping 127.0.0.3"])
    _accept_all(h, 3)
    h.feed(data(ping_record("127.0.0.2")))
    h.d.closed()
    assert h.err == ["connection ended with 2 of 3 accepted commands unanswered"]
    assert h.d.exit_status != 0


def test_eof_without_cycle_stop_is_reported_even_when_all_answered():
    h = H(["ping 127.0.0.1"])
    _accept_all(h, 1)
    h.feed(data(ping_record("127.0.0.1"), 1))
    h.d.closed()
    assert h.err == ["connection ended before the cycle-stop record (all 1 accepted command answered)"]
    assert h.d.exit_status != 0


def test_eof_names_sent_unacknowledged_and_unsent_commands():
    h = H([f"ping 127.0.0.{i}" for i in range(1, 7)])
    h.feed(HEAD)
    for i in (1, 2):
        h.feed(b"OK id-%d\nMORE\n" % i)
    h.feed(data(ping_record("127.0.0.1"), 1))
    assert len(h.sent_lines()) == 3  # the third is on its way, three still queued
    h.d.closed()
    assert h.err == ["connection ended with 1 of 2 accepted commands unanswered, "
                     "1 sent but never acknowledged, 3 never sent"]
    assert h.d.exit_status != 0


def test_impatient_eof_counts_every_unacknowledged_command():
    h = H([f"ping 127.0.0.{i}" for i in range(1, 11)], impatient=True)
    h.feed(HEAD)
    assert len(h.sent_lines()) == 10
    h.feed(b"OK id-1\nOK id-2\n" + data(ping_record("127.0.0.1"), 1))
    h.d.closed()
    assert h.err == ["connection ended with 1 of 2 accepted commands unanswered, "
                     "8 sent but never acknowledged"]


def test_result_before_its_ok_is_not_counted_as_lost():
    h = H(["ping 127.0.0.1"], impatient=True)
    h.feed(HEAD)
    h.feed(data(ping_record("127.0.0.1"), 1) + b"OK id-1\n")
    assert h.sent_lines()[-1] == "done"
    h.feed(b"OK\n" + STOP)
    h.d.closed()
    assert h.err == [] and h.d.exit_status == 0


def test_clean_end_reports_nothing_and_exits_zero():
    h = H(["ping 127.0.0.1", "ping 127.0.0.2"])
    _accept_all(h, 2)
    h.feed(data(ping_record("127.0.0.1"), 2) + data(ping_record("127.0.0.2"), 1) + STOP)
    h.d.closed()
    assert h.err == [] and h.d.exit_status == 0 and h.d.unanswered == 0


def test_interrupt_still_counts_what_was_lost():
    h = H(["ping 127.0.0.1", "ping 127.0.0.2"])
    _accept_all(h, 2)
    h.d.interrupted()
    h.d.closed()
    assert h.err == ["interrupted with 2 of 2 accepted commands unanswered"]


# -- (a) the progress line while the VP is silent ---------------------------------

def test_progress_says_when_nothing_came_from_the_vp_for_a_while():
    h = H(["ping 127.0.0.1", "ping 127.0.0.2"])
    _accept_all(h, 2)
    h.clock.advance(2)
    assert "waiting" not in h.d.progress_text()  # a short pause is normal
    h.clock.advance(10)
    assert h.d.progress_text() == "sent 2, done 0, failed 0, waiting: nothing from the VP for 12 s"
    h.feed(data(ping_record("127.0.0.1"), 1))  # something arrived: not waiting any more
    assert h.d.progress_text() == "sent 2, done 1, failed 0"
    h.clock.advance(7)
    assert h.d.progress_text().endswith("waiting: nothing from the VP for 7 s")
    h.feed(data(ping_record("127.0.0.2"), 2) + STOP)
    h.clock.advance(60)  # nothing outstanding: silence is expected
    assert "waiting" not in h.d.progress_text()


def test_progress_line_is_redrawn_by_the_clock_during_silence():
    h = H(["ping 127.0.0.1"])
    _accept_all(h, 1)
    stream = io.StringIO()
    p = A._Progress(h.d, stream, h.clock)
    p.start()
    h.clock.advance(1)
    assert stream.getvalue().endswith("sent 1, done 0, failed 0\x1b[K")
    for _ in range(9):
        h.clock.advance(1)
    assert stream.getvalue().endswith("waiting: nothing from the VP for 10 s\x1b[K")
    p.stop()
    before = stream.getvalue()
    h.clock.advance(5)
    assert stream.getvalue() == before


# -- (b) input lines and escaping -----------------------------------------------------

def test_split_lines_only_on_newline():
    raw = b"ping 127.0.0.1\x0bping 127.0.0.2\x0c\x1c\x1d\x1e\xc2\x85x\r\nping 127.0.0.3\n\nlast"
    assert A.split_lines(raw) == [b"ping 127.0.0.1\x0bping 127.0.0.2\x0c\x1c\x1d\x1e\xc2\x85x",
                                b"ping 127.0.0.3", b"", b"last"]


def test_clean_lines_refuses_unprintable_lines_with_an_escaped_report():
    bad = []
    got = A.clean_lines([b"ping 127.0.0.1", b"ping\x07 127.0.0.2", b"  \t", b"ping \xc2\x85127.0.0.3"],
                      None, on_bad=lambda n, why: bad.append((n, why)))
    assert got == ["ping 127.0.0.1"]
    assert bad == [(2, "ping\\x07 127.0.0.2"), (4, "ping \\xc2\\x85127.0.0.3")]


def test_escape_is_idempotent_and_covers_c0_c1_and_del():
    s = "a\x07b\x1b[31mc\x7fd\x85e\u2028f\\x07"
    assert A.escape(s) == "a\\x07b\\x1b[31mc\\x7fd\\x85e\\u2028f\\x07"
    assert A.escape(A.escape(s)) == A.escape(s)
    assert A.escape(b"x\x00\xff") == "x\\x00\\xff"


def test_err_text_from_the_vp_is_escaped():
    h = H(["ping 127.0.0.1"])
    h.feed(HEAD)
    h.feed(b"ERR bad \x1b[2J\x07 thing\n")
    assert h.err == ["ERR bad \\x1b[2J\\x07 thing (command: ping 127.0.0.1)"]


BAD_INPUT = b"ping 127.0.0.1\x1cping 127.0.0.2\nping 127.0.0.3\r\nping \x07127.0.0.4\n"


@pytest.mark.parametrize("how", ["file", "pipe", "stdin-file"])
def test_cli_input_split_on_newline_only_same_for_file_and_pipe(scripted, tmp_path, how):
    srv = scripted()
    inp = tmp_path / "in.txt"
    inp.write_bytes(BAD_INPUT)
    argv = ["-U", srv.path, "-o", os.devnull]
    if how == "file":
        res = run(argv + ["-i", str(inp)])
    elif how == "pipe":
        res = run(argv + ["-i", "-"], BAD_INPUT)
    else:
        with open(inp, "rb") as f:
            res = subprocess.run(ATTACH + argv + ["-i", "-"], stdin=f, capture_output=True, timeout=30)
    assert srv.received.decode().splitlines() == ["attach", "ping 127.0.0.3", "done"]
    err = res.stderr.decode()
    assert err.splitlines() == [
        "ixp-attach: input line 1 not sent (not printable ASCII): ping 127.0.0.1\\x1cping 127.0.0.2",
        "ixp-attach: input line 3 not sent (not printable ASCII): ping \\x07127.0.0.4",
        "ixp-attach: 2 of 3 command(s) failed"]
    assert res.returncode == 1
    assert not any(b < 0x20 and b != 0x0a for b in res.stderr)


# -- (c) CLI conventions ---------------------------------------------------------------

def test_cli_existing_output_untouched_when_it_fails_before_writing(tmp_path):
    out = tmp_path / "precious.warts"
    out.write_bytes(b"results of yesterday")
    res = run(["-U", str(tmp_path / "nosuch.sock"), "-i", "-", "-o", str(out)], b"ping 127.0.0.1\n")
    assert res.returncode == 1 and b"cannot connect" in res.stderr
    assert out.read_bytes() == b"results of yesterday"


def test_cli_new_output_not_left_behind_when_it_fails_before_writing(tmp_path):
    out = tmp_path / "new.warts"
    res = run(["-U", str(tmp_path / "nosuch.sock"), "-i", "-", "-o", str(out)], b"ping 127.0.0.1\n")
    assert res.returncode == 1
    assert not out.exists()


def test_cli_existing_output_replaced_once_results_arrive(scripted, tmp_path):
    srv = scripted()
    out = tmp_path / "out.warts"
    out.write_bytes(b"x" * 10000)  # longer than what comes: must be cut, not overwritten in place
    res = run(["-U", srv.path, "-i", "-", "-o", str(out)], b"ping 127.0.0.1\n")
    assert res.returncode == 0, res.stderr
    assert shape(records(out.read_bytes())) == ["list", "cycle-start", "ping", "cycle-stop"]


def test_cli_refuses_binary_warts_to_a_terminal(scripted):
    srv = scripted(attached=True)
    master, slave = pty.openpty()
    try:
        res = subprocess.run(ATTACH + ["-R", srv.path, "-i", "-", "-o", "-"], input=b"ping 127.0.0.1\n",
                             stdout=slave, stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    assert res.returncode == 2
    assert res.stderr.decode() == ("ixp-attach: not writing binary warts to a terminal "
                                   "(use -o FILE, a pipe, or --format json)\n")
    time.sleep(0.2)
    assert srv.connections == 0


def test_cli_json_to_a_terminal_is_fine(scripted):
    srv = scripted(attached=True)
    master, slave = pty.openpty()
    try:
        res = subprocess.run(ATTACH + ["-R", srv.path, "-i", "-", "-o", "-", "--format", "json"],
                             input=b"ping 127.0.0.1\n", stdout=slave, stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    assert res.returncode == 0, res.stderr


def test_cli_broken_pipe_on_stdout_ends_silently(scripted):
    srv = scripted(attached=True)
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first record
    try:
        res = subprocess.run(ATTACH + ["-R", srv.path, "-i", "-", "-o", "-"], input=b"ping 127.0.0.1\n",
                             stdout=w, stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(w)
    assert res.stderr == b""
    assert res.returncode == 141


@pytest.mark.parametrize("flag", ["-?", "-h", "--help"])
def test_cli_help_flags(flag):
    res = run([flag])
    assert res.returncode == 0
    out = res.stdout.decode()
    assert out.startswith("usage: ixp-attach") and "-?" in out and res.stderr == b""


@pytest.mark.parametrize("argv, line", [
    (["-x"], "ixp-attach: unknown option -x"),
    (["-U", "/x", "--bogus", "-i", "-"], "ixp-attach: unknown option --bogus"),
    (["-U", "/x", "stray"], "ixp-attach: unexpected argument 'stray'"),
    (["-P", "abc"], "ixp-attach: argument -P: invalid int value: 'abc'"),
])
def test_cli_bad_flag_one_line_naming_it(argv, line):
    res = run(argv)
    assert res.returncode == 2
    assert res.stderr.decode() == line + "\n"


# -- -D (sc_attach's daemon mode) ---------------------------------------------------------

def test_cli_daemon_detaches_and_finishes_the_run(scripted, tmp_path):
    srv = scripted()
    inp = tmp_path / "in.txt"
    inp.write_text("ping 127.0.0.1\nping 127.0.0.2\n")
    out = tmp_path / "out.warts"
    res = run(["-D", "-U", srv.path, "-i", str(inp), "-o", str(out)])
    assert res.returncode == 0 and res.stderr == b"" and res.stdout == b""

    def complete():
        try:
            return shape(records(out.read_bytes())) == ["list", "cycle-start", "ping", "ping", "cycle-stop"]
        except Exception:  # still being written
            return False
    deadline = time.monotonic() + 20
    while not complete() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert complete()
    assert srv.received.decode().splitlines() == ["attach", "ping 127.0.0.1", "ping 127.0.0.2", "done"]


def test_cli_daemon_reports_a_connect_failure_before_detaching(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("ping 127.0.0.1\n")
    res = run(["-D", "-U", str(tmp_path / "nosuch.sock"), "-i", str(inp), "-o", str(tmp_path / "o")])
    assert res.returncode == 1
    assert res.stderr.decode().startswith("ixp-attach: cannot connect to ")


@pytest.mark.parametrize("argv", [
    ["-i", "-", "-o", "out"], ["-i", "in", "-o", "-"], ["-i", "in", "-o", "out", "-d"], ["-o", "out"]])
def test_cli_daemon_needs_files_and_no_debug(argv):
    res = run(["-D", "-U", "/x"] + argv)
    assert res.returncode == 2
    assert res.stderr.decode() == ("ixp-attach: -D needs -i FILE and -o FILE (not '-') "
                                   "and cannot be used with -d\n")
