"""ixp-warts2text / ixp-warts2json as a user runs them (subprocesses)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES
from ixpscamper.warts import Timeval, Trace, TraceHop, WartsWriter

CASES = sorted(p.stem for p in FIXTURES.glob("*.warts"))


def cmd(name: str) -> list[str]:
    exe = shutil.which(name)
    if exe:
        return [exe]
    fn = "main_text" if name.endswith("text") else "main_json"
    return [sys.executable, "-c",
            f"import sys; from ixpscamper.warts.cli import {fn}; sys.exit({fn}())"]


def run(name: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd(name) + list(args), input=stdin, capture_output=True, timeout=60,
                          env={**os.environ, "TZ": "UTC"})


def test_text_and_json_of_every_fixture_in_one_run():
    files = [str(FIXTURES / f"{c}.warts") for c in CASES]
    r = run("ixp-warts2text", *files)
    assert r.returncode == 0 and r.stderr == b""
    assert r.stdout == b"".join((FIXTURES / f"{c}.txt").read_bytes() for c in CASES)
    r = run("ixp-warts2json", *files)
    assert r.returncode == 0 and r.stderr == b""
    assert r.stdout == b"".join((FIXTURES / f"{c}.json").read_bytes() for c in CASES)


@pytest.mark.parametrize("args", [(), ("-",)])
def test_stdin(args):
    data = (FIXTURES / "multi-trace-ping.warts").read_bytes()
    r = run("ixp-warts2text", *args, stdin=data)
    assert r.returncode == 0 and r.stdout == (FIXTURES / "multi-trace-ping.txt").read_bytes()
    r = run("ixp-warts2json", *args, stdin=data)
    assert r.returncode == 0 and r.stdout == (FIXTURES / "multi-trace-ping.json").read_bytes()


def test_empty_input():
    r = run("ixp-warts2text", stdin=b"")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


@pytest.mark.parametrize("prog", ["ixp-warts2text", "ixp-warts2json"])
def test_truncated_file_prints_intact_records_then_one_line(tmp_path, prog):
    data = (FIXTURES / "multi-trace-ping.warts").read_bytes()
    bad = tmp_path / "cut.warts"
    bad.write_bytes(data[:500])  # the ping record (offset 465) is cut
    r = run(prog, str(bad))
    assert r.returncode == 1
    assert r.stderr.decode() == f"{prog}: {bad}: offset 465: truncated record: 27 of 125 body bytes\n"
    ext = ".txt" if prog.endswith("text") else ".json"
    whole = (FIXTURES / f"multi-trace-ping{ext}").read_text().splitlines(keepends=True)
    if ext == ".txt":
        assert r.stdout.decode() == "".join(whole[:8])  # the two traces
    else:
        assert r.stdout.decode() == "".join(whole[:3])  # cycle start + two traces


def test_garbage_wrong_magic_and_missing_file(tmp_path):
    junk = tmp_path / "junk.warts"
    junk.write_bytes(b"this is not warts at all\n" * 10)
    r = run("ixp-warts2text", str(junk))
    assert r.returncode == 1 and r.stdout == b""
    assert r.stderr.decode() == f"ixp-warts2text: {junk}: offset 0: bad magic 0x7468 (not a warts record)\n"
    r = run("ixp-warts2json", str(tmp_path / "nope.warts"))
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1
    assert b"nope.warts: No such file or directory" in r.stderr
    r = run("ixp-warts2text", str(tmp_path))
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr


def test_second_file_bad_first_file_printed(tmp_path):
    bad = tmp_path / "bad.warts"
    bad.write_bytes(b"\x12\x05\x00\x06\x00\x00\x00\x05\x00\x00")
    good = FIXTURES / "trace-udp.warts"
    r = run("ixp-warts2text", str(good), str(bad), str(good))
    assert r.returncode == 1
    assert r.stdout == (FIXTURES / "trace-udp.txt").read_bytes()
    assert r.stderr.decode() == (f"ixp-warts2text: {bad}: offset 0: truncated record: "
                                 "2 of 5 body bytes\n")


def test_malformed_record_one_line(tmp_path):
    data = bytearray((FIXTURES / "trace-udp.warts").read_bytes())
    data[65 + 8] = 0xFF  # trace header flag byte: fields the body does not hold
    f = tmp_path / "m.warts"
    f.write_bytes(bytes(data))
    r = run("ixp-warts2text", str(f))
    assert r.returncode == 1 and r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ixp-warts2text: {f}: offset 65: bad trace record")


def test_unknown_option():
    r = run("ixp-warts2text", "--frobnicate")
    assert r.returncode == 2 and b"unknown option --frobnicate" in r.stderr


def test_broken_pipe_is_quiet(tmp_path):
    path = tmp_path / "big.warts"
    with open(path, "wb") as f:
        w = WartsWriter(f)
        for i in range(10000):
            w.write(Trace(dst=ipaddress.IPv4Address(0x0A000000 + i), start=Timeval(1, 0),
                          hop_count=1, hops=[TraceHop(ipaddress.IPv4Address(0x0A000000 + i),
                                                      icmp_type=11)]))
    p = subprocess.Popen(cmd("ixp-warts2text") + [str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()  # like `| head -1`
    err = p.stderr.read()
    rc = p.wait(timeout=30)
    assert first.startswith(b"traceroute to 10.0.0.0")
    assert err == b"" and rc == 141
