"""The soak (bench/soak.py), short: both configurations for a minute each, in
parallel, with the soak's own assertions; and the soak's accounting against a
fake VP that loses, duplicates and mislabels results (so it can fail)."""

from __future__ import annotations

import importlib.util
import ipaddress
import random
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import requires_root, requires_tool
from ixpscamper.control import uu
from ixpscamper.warts.records import CycleStart, CycleStop, Ping, WartsList
from ixpscamper.warts.writer import encode_cycle, encode_cycle_stop, encode_list, encode_record

ROOT = Path(__file__).resolve().parent.parent
ADDR = ipaddress.ip_address("127.0.0.1")


def _load_soak():
    spec = importlib.util.spec_from_file_location("ixp_bench_soak", ROOT / "bench" / "soak.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


soak = _load_soak()


# ---- the accounting can fail: a fake VP with known faults ------------------------------


def _data(record: bytes, task_id: int | None = None) -> bytes:
    block = uu.encode(record)
    head = b"DATA %d" % len(block) + (b" id-%d" % task_id if task_id is not None else b"")
    return head + b"\n" + block


class FakeVP(threading.Thread):
    """A per-VP socket answering ``ping -c 1 -U uid ADDR`` at once, with faults:
    the result of the ``drop``-th command is never sent, the ``dup``-th is sent
    twice, the ``swap``-th carries the next command's id."""

    def __init__(self, path: Path, drop: int, dup: int, swap: int) -> None:
        super().__init__(daemon=True)
        self.ls = socket.socket(socket.AF_UNIX)
        self.ls.bind(str(path))
        self.ls.listen(4)
        self.ls.settimeout(0.2)
        self.faults = {"drop": drop, "dup": dup, "swap": swap}
        self.stopping = False

    def run(self) -> None:
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                self._serve(c)

    def _serve(self, c: socket.socket) -> None:
        lst = WartsList(name="fake", id=0)
        cyc = CycleStart(list=lst, start_time=1, id=1)
        c.sendall(b"MORE\n" + _data(encode_list(lst, 1)) + _data(encode_cycle(cyc, 1, 1)))
        buf, n = b"", 0
        c.settimeout(0.2)
        while not self.stopping:
            try:
                d = c.recv(4096)
            except socket.timeout:
                continue
            if not d:
                return
            buf += d
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line == b"done":
                    c.sendall(b"OK\n" + _data(encode_cycle_stop(CycleStop(cycle=cyc, stop_time=2), 1)))
                    return
                n += 1
                uid = int(line.split()[4])
                rec = encode_record(Ping(dst=ADDR, src=ADDR, userid=uid), 1, 1)
                out = b"OK id-%d\nMORE\n" % n
                if n != self.faults["drop"]:
                    out += _data(rec, n + 1 if n == self.faults["swap"] else n)
                if n == self.faults["dup"]:
                    out += _data(rec, n)
                c.sendall(out)

    def stop(self) -> None:
        self.stopping = True
        self.join(2)
        self.ls.close()


def test_accounting_catches_lost_duplicated_and_mislabelled_results(tmp_path):
    monitor = "soak-fake"
    vp = FakeVP(tmp_path / f"{monitor}-127.0.0.1:1", drop=3, dup=5, swap=7)
    vp.start()
    tally = soak.Tally()
    opts = soak.SoakOptions(window=4, session_min=12, session_max=12, drain=5)
    stop = threading.Event()
    user = soak.User("u", tmp_path, monitor, tally, opts, stop, random.Random(1))
    try:
        user.start()
        # every command is answered at once but one result never comes:
        # the session waits for it until the drain gives up
        end = time.monotonic() + 10
        while time.monotonic() < end and sum(tally.results.values()) < 12:
            time.sleep(0.05)
        stop.set()
        user.abort.set()
        user.join(5)
    finally:
        vp.stop()
    assert user.failure is None
    assert tally.sent == 12 and len(tally.accepted) == 12
    assert tally.lost() == [3]
    assert tally.duplicated() == 1
    assert tally.counts["id mismatch"] == 1
    assert tally.counts["early end"] == 1  # the session that never finished


def test_accounting_clean_session_counts_done(tmp_path):
    monitor = "soak-fake"
    vp = FakeVP(tmp_path / f"{monitor}-127.0.0.1:1", drop=0, dup=0, swap=0)
    vp.start()
    tally = soak.Tally()
    opts = soak.SoakOptions(window=3, session_min=7, session_max=7)
    stop = threading.Event()
    user = soak.User("u", tmp_path, monitor, tally, opts, stop, random.Random(1))
    try:
        user.start()
        end = time.monotonic() + 10
        while time.monotonic() < end and tally.sessions_done < 2:
            time.sleep(0.02)
        stop.set()
        user.join(5)
    finally:
        vp.stop()
    assert tally.sessions_done >= 2
    assert not tally.lost() and tally.duplicated() == 0 and not tally.counts
    assert sum(tally.results.values()) == len(tally.accepted) == tally.sent - tally.unanswered


def test_bad_options_are_one_clear_line(capsys, tmp_path):
    assert soak.main(["--session", "5"]) == 2
    assert capsys.readouterr().err.strip() == "soak.py: --session must be MIN:MAX, not '5'"
    if soak.os.geteuid() == 0 and soak.shutil.which("sc_remoted"):
        deep = tmp_path / ("d" * 100)
        assert soak.main(["--workdir", str(deep)]) == 2
        assert "use a shorter --workdir" in capsys.readouterr().err
    assert soak.main(["--configs", "nosuch", "--minutes", "1"]) == 2
    assert "unknown configuration 'nosuch'" in capsys.readouterr().err


# ---- the soak itself, short ------------------------------------------------------------


@requires_root
@requires_tool("sc_remoted")
@pytest.mark.slow
def test_soak_one_minute_per_configuration(tmp_path):
    """ours (ixp-vp + ixp-remoted) and the real sc_remoted (ixp-vp + scamper
    2026's, else Debian's), in parallel, 1 minute each, cuts every 0.25-2 s,
    2 CPU burners."""
    # workdir: a short temp dir of the soak's own (kept and named if it fails);
    # pytest's tmp_path is too long for the VP sockets' unix paths
    # The real controller: scamper 2026's sc_remoted.  The Debian 20211212
    # one segfaults within minutes under these cuts with users attached (3.5
    # minutes into a 20-minute soak here; bench/remoted_bench.py sees it too),
    # which would make this test fail for a bug that is not ours.
    real = "sc_remoted26" if soak.SC_REMOTED_2026.exists() else "sc_remoted"
    opts = soak.SoakOptions(minutes=1.0, parallel=True, drain=60, log=print,
                            configs=("ours", real))
    results = soak.run_soak(opts)
    table = soak.summary_table(results)
    print(table)
    assert [r.name for r in results] == ["ours", real]
    for r in results:
        assert r.ok, table
        # a run that tested nothing does not count
        assert r.results >= 100 and r.cuts >= 10 and r.resumes >= 10, table
        assert r.lost == 0 and r.duplicated == 0 and r.unanswered == 0, table
