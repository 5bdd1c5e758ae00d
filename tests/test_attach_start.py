"""``ixp-attach``'s entry point (`ixpscamper.attach_start`) connects to a
``-R``/``-U`` socket before importing the rest, and the run then uses that
connection: one connection, the same results as the usual path, the usual
errors.  No root."""

from __future__ import annotations

import subprocess
import sys
import time

from hypothesis import given, settings, strategies as st

from ixpscamper import attach as A
from ixpscamper.attach_start import plain_unix_path

from tests.pipeline_helpers import ATTACH, records, shape
from tests.test_attach import scripted  # noqa: F401  (fixture)

# the installed ixp-attach command runs this entry point
ENTRY = [sys.executable, "-c", "from ixpscamper.attach_start import main; main()"]


def run(cmd, argv, stdin=b""):
    return subprocess.run(cmd + argv, input=stdin, capture_output=True, timeout=30)


def test_plain_command_lines():
    assert plain_unix_path(["-R", "/r.sock", "-i", "-", "-o", "out"]) == "/r.sock"
    assert plain_unix_path(["-d", "-U", "/u", "-c", "ping -c 1", "-O", "impatient", "-P", "3"]) == "/u"
    assert plain_unix_path(["-i", "x", "--format", "json", "-R", "-"]) == "-"
    for argv in (["-p", "5000"], ["-R/joined"], ["-R"], ["-R", "/a", "-U", "/b"], ["-v", "-R", "/a"],
                 ["-R", "/a", "-?"], ["-R", "/a", "stray"], ["-R", "/a", "--formats", "json"], [],
                 ["-R", ""]):
        assert plain_unix_path(argv) is None, argv


_TOKENS = st.sampled_from(["-R", "-U", "-p", "-i", "-o", "-c", "-O", "-P", "--format", "-d",
                           "-D", "-v", "-?", "/a.sock", "/b.sock", "-", "json", "7", "x"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_TOKENS, max_size=8))
def test_a_socket_connected_early_is_the_one_the_parser_names(argv):
    """Whenever the scanner names a path, the real parser either refuses the
    command line or names that same socket: the early connection is never
    to another socket than the run's."""
    path = plain_unix_path(argv)
    if path is None:
        return
    try:
        args = A.build_parser().parse_args(argv)
    except SystemExit:
        return   # a usage error: the early socket is closed unused
    assert path in (args.remote, args.unix)


def test_entry_point_run_uses_its_early_connection(scripted):
    srv = scripted(attached=True)
    got = run(ENTRY, ["-R", srv.path, "-i", "-", "-o", "-"], b"ping 127.0.0.1\nping 127.0.0.2\n")
    assert got.returncode == 0, got.stderr
    assert srv.connections == 1
    assert shape(records(got.stdout)) == ["list", "cycle-start", "ping", "ping", "cycle-stop"]
    usual = run(ATTACH, ["-R", srv.path, "-i", "-", "-o", "-"], b"ping 127.0.0.1\nping 127.0.0.2\n")
    assert shape(records(usual.stdout)) == shape(records(got.stdout))


def test_entry_point_attaches_on_a_control_socket(scripted):
    srv = scripted()
    got = run(ENTRY, ["-U", srv.path, "-P", "4", "-i", "-", "-o", "-"], b"ping 127.0.0.1\n")
    assert got.returncode == 0, got.stderr
    assert srv.connections == 1
    assert srv.received.decode().splitlines() == ["attach priority 4", "ping 127.0.0.1", "done"]


def test_usage_error_after_an_early_connect_sends_nothing(scripted):
    srv = scripted(attached=True)
    got = run(ENTRY, ["-R", srv.path, "-P", "7", "-i", "-", "-o", "-"], b"ping 127.0.0.1\n")
    assert got.returncode == 2
    assert got.stderr.decode() == "ixp-attach: -P cannot be used with -R (the channel is already attached)\n"
    time.sleep(0.2)
    assert srv.connections == 1 and srv.received == b""


def test_entry_point_errors_read_as_the_usual_ones(tmp_path):
    path = str(tmp_path / "nosuch.sock")
    for cmd in (ENTRY, ATTACH):
        got = run(cmd, ["-R", path, "-i", "-", "-o", "-"], b"ping 127.0.0.1\n")
        assert got.returncode == 1
        assert got.stderr.decode() == f"ixp-attach: cannot connect to {path}: No such file or directory\n"


def test_entry_point_connects_before_the_heavy_imports():
    code = ("import sys, ixpscamper.attach_start; "
            "print(sorted(m for m in ('argparse', 'socket', 'ixpscamper.attach', 'twisted') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30, check=True)
    assert res.stdout.decode().strip() == "[]"
