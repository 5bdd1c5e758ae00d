"""Sans-IO tests of the controller's admission policy
(ixpscamper.remoted.admission), time from task.Clock."""

from __future__ import annotations

import os
import resource
import time

import pytest
from twisted.internet.task import Clock

from ixpscamper.remoted.admission import (
    Admission, Decision, RegistrationRate, TokenBucket, capacity, default_reserve, parse_rate,
    raise_nofile, source_key,
)


def test_token_bucket_burst_then_rate():
    b = TokenBucket(rate=2.0, burst=3.0, tokens=3.0, stamp=0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not b.take(0.4)          # 0.8 of a token
    assert b.take(0.5)              # 1.0
    assert not b.take(0.5)
    assert b.full(100.0) and b.tokens == 3.0  # never more than the burst


def test_registration_rate_is_per_source():
    clock = Clock()
    r = RegistrationRate(clock, rate=1.0, burst=2.0)
    assert [r.allow("192.0.2.1") for _ in range(3)] == [True, True, False]
    assert r.allow("192.0.2.2")      # another source has its own bucket
    clock.advance(1.0)
    assert r.allow("192.0.2.1") and not r.allow("192.0.2.1")


def test_rate_zero_is_off():
    r = RegistrationRate(Clock(), rate=0.0, burst=1.0)
    assert all(r.allow("192.0.2.1") for _ in range(10_000)) and not r.buckets


def test_bucket_table_is_bounded_and_drops_idle_sources_first():
    clock = Clock()
    r = RegistrationRate(clock, rate=1.0, burst=1.0, max_sources=8)
    for i in range(8):
        assert r.allow(f"10.0.0.{i}")
    clock.advance(0.5)
    assert not r.allow("10.0.0.7")       # still empty, keeps its entry
    clock.advance(0.6)                   # 0..6 are full again (idle), 7 is not
    assert r.allow("10.0.1.1")
    assert len(r.buckets) <= 8 and "10.0.1.1" in r.buckets
    for i in range(1000):                # a flood of sources: the table stays small
        r.allow(f"10.1.{i // 256}.{i % 256}")
    assert len(r.buckets) <= 8


@pytest.mark.parametrize("host,key", [
    ("192.0.2.7", "192.0.2.7"), ("::ffff:192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"), ("fe80::1%eth0", "fe80::/64"),
])
def test_source_keys(host, key):
    assert source_key(host) == key


def test_ipv6_hosts_of_one_64_share_a_bucket():
    a = Admission(Clock(), fd_limit=10_000, rate=1.0, burst=1.0)
    assert a.registration("2001:db8::1", False, 0).refusal is None
    assert "2001:db8::/64" in a.registration("2001:db8::2", False, 0).refusal


@pytest.mark.parametrize("text,rate", [("5", 5.0), ("2.5/s", 2.5), (" 0 ", 0.0)])
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "-1", "nan", "inf", "3/min"])
def test_parse_rate_rejects(text):
    with pytest.raises(ValueError):
        parse_rate(text)


def test_capacity_and_reserve():
    assert default_reserve(20_000) == 625 and capacity(20_000, 625) == 9687
    assert default_reserve(1024) == 64 and capacity(1024, 64) == 480
    assert default_reserve(100) == 50 and capacity(100, 50) == 25
    assert capacity(10, 20) == 0


def test_registration_rate_limits_new_vps_but_not_replacements_of_the_count():
    clock = Clock()
    a = Admission(clock, fd_limit=10_000, rate=1.0, burst=2.0)
    assert a.registration("192.0.2.1", False, 0) == Decision()
    assert a.registration("192.0.2.1", False, 1) == Decision()
    d = a.registration("192.0.2.1", False, 2)
    assert d.refusal == "more than 1 registrations/s from 192.0.2.1 (burst 2)" and not d.evict
    clock.advance(1.0)
    assert a.registration("192.0.2.1", False, 2).refusal is None


def test_max_vps_frees_the_oldest_zombie_first_else_refuses():
    a = Admission(Clock(), fd_limit=10_000, max_vps=3)
    assert a.registration("192.0.2.1", False, 2).refusal is None
    d = a.registration("192.0.2.1", False, 3)
    assert d.refusal == "VP limit reached (3 VPs, no zombie to free)"
    assert a.zombie_added("old") == [] and a.zombie_added("young") == []
    assert a.registration("192.0.2.1", False, 3) == Decision(None, ("old",))
    assert a.registration("192.0.2.1", True, 3) == Decision()  # replaces a held magic: no growth
    a.zombie_removed("old")
    a.zombie_removed("old")  # idempotent
    assert a.registration("192.0.2.1", False, 3) == Decision(None, ("young",))


def test_max_zombies_returns_the_oldest_to_free():
    a = Admission(Clock(), fd_limit=10_000, max_zombies=2)
    assert a.zombie_added(1) == [] and a.zombie_added(2) == []
    assert a.zombie_added(3) == [1]
    a.zombie_removed(1)
    a.zombie_removed(2)            # 2 resumed
    assert a.zombie_added(4) == []
    assert a.zombie_added(5) == [3]


def test_fd_guard_refuses_connections_and_registrations_before_users_are_affected():
    a = Admission(Clock(), fd_limit=100, fd_reserve=20, fd_base=10)   # room: 80 fds
    assert a.max_vps == 40 and a.capacity == 40
    a.connections, a.listeners = 35, 34
    assert a.fds_in_use == 79
    assert a.accept_connection("192.0.2.1") is None          # the 80th
    a.connections += 1
    assert a.registration("192.0.2.1", False, 34).refusal.startswith(
        "near the file descriptor limit (80 of 100 in use, 20 kept for users and listeners)")
    assert a.accept_connection("192.0.2.1") is not None
    a.users += 15                                            # users may use the reserve
    assert a.fds_in_use == 95
    a.connections -= 2
    assert a.registration("192.0.2.1", True, 34).refusal is None  # a replacement needs no fd


def test_fd_limit_change_recomputes_the_limits():
    a = Admission(Clock(), fd_limit=1024)
    assert a.max_vps == 480
    a.set_fd_limit(20_000)
    assert a.max_vps == 9687 and a.fd_reserve == 625
    b = Admission(Clock(), fd_limit=1024, max_vps=7, fd_reserve=100)
    b.set_fd_limit(20_000)
    assert b.max_vps == 7 and b.fd_reserve == 100


def test_raise_nofile_to_the_hard_limit():
    calls = []
    old, new = raise_nofile(lambda r: (1024, 20_000), lambda r, v: calls.append(v))
    assert (old, new) == (1024, 20_000) and calls == [(20_000, 20_000)]
    assert raise_nofile(lambda r: (20_000, 20_000), lambda r, v: calls.append(v)) == (20_000, 20_000)
    assert len(calls) == 1

    def refuse(r, v):
        raise ValueError("not allowed")
    assert raise_nofile(lambda r: (1024, 4096), refuse) == (1024, 1024)
    inf = resource.RLIM_INFINITY
    assert raise_nofile(lambda r: (1024, inf), lambda r, v: calls.append(v)) == (1024, 1 << 20)
    assert calls[-1] == (1 << 20, inf)


# ---- wired into the daemon (in-process: MemoryReactorClock + StringTransport) ----


from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.error import ConnectionDone  # noqa: E402
from twisted.internet.testing import MemoryReactorClock, StringTransport  # noqa: E402
from twisted.logger import formatEvent, globalLogPublisher  # noqa: E402
from twisted.python import usage  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402

from ixpscamper.remote.frames import MasterNew, encode_frame  # noqa: E402
from ixpscamper.remoted import tap  # noqa: E402
from ixpscamper.remoted.service import RemotedService, UserFactory, VPFactory  # noqa: E402


class Log:
    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, event):
        if (event.get("log_namespace") or "").startswith("ixp-remoted"):
            self.lines.append(formatEvent(event))

    def having(self, text):
        return [ln for ln in self.lines if text in ln]


@pytest.fixture
def logged():
    obs = Log()
    globalLogPublisher.addObserver(obs)
    yield obs
    globalLogPublisher.removeObserver(obs)


class Net:
    def __init__(self, tmp_path, **kw):
        self.reactor = MemoryReactorClock()
        self.svc = RemotedService(self.reactor, [], str(tmp_path), **kw)

    def connect(self, host="192.0.2.1", port=40000):
        proto = VPFactory(self.svc).buildProtocol(None)
        tr = StringTransport(peerAddress=IPv4Address("TCP", host, port))
        proto.makeConnection(tr)
        return proto, tr

    def register(self, magic, name=b"vp", host="192.0.2.1", port=40000):
        proto, tr = self.connect(host, port)
        if not tr.disconnecting:
            proto.dataReceived(encode_frame(0, 0, MasterNew(magic, name).encode()))
        return proto, tr

    def drop(self, proto):
        proto.connectionLost(Failure(ConnectionDone()))


def test_max_vps_frees_the_oldest_zombie_for_a_new_vp_then_refuses(tmp_path, logged):
    n = Net(tmp_path, max_vps=2)
    p1, _ = n.register(b"1" * 8, b"a", port=1)
    p2, _ = n.register(b"2" * 8, b"b", port=2)
    n.drop(p1)                                  # a is a zombie
    p3, t3 = n.register(b"3" * 8, b"c", port=3)
    assert not t3.disconnecting and set(n.svc.core.sessions) == {b"2" * 8, b"3" * 8}
    gone = logged.having("VP a-192.0.2.1:1 gone")
    assert len(gone) == 1 and "the oldest zombie, freed for a new VP (--max-vps 2)" in gone[0]
    p4, t4 = n.register(b"4" * 8, b"d", port=4)  # full, no zombie left
    assert t4.disconnecting and b"4" * 8 not in n.svc.core.sessions
    refused = logged.having("192.0.2.1:4")
    assert len(refused) == 1 and "registration refused: VP limit reached (2 VPs" in refused[0]
    assert len(n.svc.entries) == 2 and n.svc.admission.listeners == 2


def test_max_zombies_frees_the_oldest_zombie(tmp_path, logged):
    n = Net(tmp_path, max_zombies=1)
    p1, _ = n.register(b"1" * 8, b"a", port=1)
    p2, _ = n.register(b"2" * 8, b"b", port=2)
    n.drop(p1)
    assert logged.having("gone") == []
    n.drop(p2)
    gone = logged.having("gone")
    assert len(gone) == 1 and "VP a-192.0.2.1:1 gone: more than 1 zombies (--max-zombies)" in gone[0]
    assert set(n.svc.core.sessions) == {b"2" * 8} and list(n.svc.admission.zombies) == [b"2" * 8]


def test_registration_rate_per_source(tmp_path, logged):
    n = Net(tmp_path, registration_rate=1.0, registration_burst=2)
    assert not n.register(b"1" * 8, port=1)[1].disconnecting
    assert not n.register(b"2" * 8, port=2)[1].disconnecting
    _, t3 = n.register(b"3" * 8, port=3)
    assert t3.disconnecting
    refused = logged.having("192.0.2.1:3")
    assert len(refused) == 1 and "registration refused: more than 1 registrations/s from 192.0.2.1" in refused[0]
    assert not n.register(b"4" * 8, host="192.0.2.9", port=4)[1].disconnecting  # another source
    n.reactor.advance(1.0)
    assert not n.register(b"5" * 8, port=5)[1].disconnecting


def test_near_the_fd_limit_vps_are_refused_and_users_still_served(tmp_path, logged):
    n = Net(tmp_path, fd_reserve=4)
    n.svc.admission.set_fd_limit(10)               # room for 6 descriptors: 3 VPs
    assert n.svc.admission.max_vps == 3
    for i in range(3):
        assert not n.register(b"%d" % i * 8, b"v%d" % i, port=i + 1)[1].disconnecting
    assert n.svc.admission.fds_in_use == 6
    p4, t4 = n.connect(port=4)                     # the 4th connection is refused at once
    assert t4.disconnecting and p4.conn is None
    refused = logged.having("192.0.2.1:4")
    assert len(refused) == 1 and "refused: near the file descriptor limit (6 of 10" in refused[0]
    n.drop(p4)
    assert n.svc.admission.connections == 3
    entry = next(iter(n.svc.entries.values()))     # users use the reserve
    users = []
    for _ in range(4):
        u = UserFactory(entry).buildProtocol(None)
        u.makeConnection(StringTransport())
        users.append(u)
    assert n.svc.admission.users == 4 and all(u.channel for u in users)
    users[0].connectionLost(None)
    assert n.svc.admission.users == 3


def test_options(tmp_path):
    o = tap.Options()
    o.parseOptions(["-P", "4000", "-U", str(tmp_path), "--max-vps", "9000", "--max-zombies", "100",
                    "--registration-rate", "5/s", "--registration-burst", "10", "--fd-reserve", "500"])
    assert (o["max-vps"], o["max-zombies"], o["registration-rate"], o["registration-burst"],
            o["fd-reserve"]) == (9000, 100, 5.0, 10.0, 500)
    svc = tap.makeService(o).services[0]
    adm = svc.admission
    assert adm.max_vps == 9000 and adm.max_zombies == 100 and adm.rate.rate == 5.0
    assert adm.rate.burst == 10.0 and adm.fd_reserve == 500
    o = tap.Options()
    o.parseOptions(["-P", "4000", "-U", str(tmp_path)])  # defaults: rate off, limits from fds
    adm = tap.makeService(o).services[0].admission
    assert adm.rate.rate == 0 and adm.max_zombies is None and adm.max_vps == adm.capacity


@pytest.mark.parametrize("args,msg", [
    (["--max-vps", "0"], "--max-vps must be at least 1"),
    (["--max-vps", "lots"], "not a whole number"),
    (["--max-zombies", "-1"], "at least 0"),
    (["--registration-rate", "fast"], "--registration-rate: 'fast' is not a rate"),
    (["--registration-burst", "0"], "at least 1"),
    (["--fd-reserve", "x"], "not a whole number"),
])
def test_option_errors(tmp_path, args, msg):
    with pytest.raises(usage.UsageError, match=msg):
        tap.Options().parseOptions(["-P", "4000", "-U", str(tmp_path), *args])


def test_daemon_raises_its_fd_limit_and_logs_its_capacity(tmp_path):
    from remotestub import Daemon
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 2048:
        pytest.skip(f"hard RLIMIT_NOFILE {hard}: nothing to raise to")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1000, hard))  # the child inherits it
    try:
        d = Daemon(tmp_path, "--max-zombies", "5")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        with open(f"/proc/{d.proc.pid}/limits") as f:
            line = next(ln for ln in f if ln.startswith("Max open files"))
        assert line.split()[3] == str(hard)  # the soft limit
        reserve = max(64, hard // 32)
        text = d.logtext()
        assert (f"capacity: {(hard - reserve) // 2} VPs (fd limit {hard} (raised from 1000), "
                f"{reserve} kept for users and listeners") in text
        assert "at most 5 zombies" in text
    finally:
        d.stop()


def test_daemon_refuses_registrations_above_the_rate(tmp_path):
    import socket

    from remotestub import Daemon, wait_for
    d = Daemon(tmp_path, "--registration-rate", "0.1/s", "--registration-burst", "2")
    socks = []
    try:
        for i in range(3):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(encode_frame(0, 0, MasterNew(b"rate%04d" % i, b"r%d" % i).encode()))
            socks.append(s)
        wait_for(lambda: "registration refused" in d.logtext(), 10, "the refusal")
        wait_for(lambda: len(d.sockets()) == 2, 10, "two VP sockets")
        lines = [ln for ln in d.logtext().splitlines() if "registration refused" in ln]
        assert len(lines) == 1
        assert "more than 0.1 registrations/s from 127.0.0.1 (burst 2)" in lines[0]
        assert f"127.0.0.1:{socks[2].getsockname()[1]}" in lines[0]
    finally:
        for s in socks:
            s.close()
        d.stop()


def test_daemon_near_its_fd_limit_refuses_vps_one_line_each_and_users_still_connect(tmp_path):
    import socket

    from remotestub import Daemon, wait_for
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard > 1 << 20:
        pytest.skip("unlimited RLIMIT_NOFILE")
    # leave room for only 50 descriptors besides the reserve: about 20 VPs
    d = Daemon(tmp_path, "--fd-reserve", str(hard - 50))
    socks, users = [], []
    try:
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(encode_frame(0, 0, MasterNew(b"fdvp%04d" % i, b"f%d" % i).encode()))
            socks.append(s)
            time.sleep(0.01)

        def settled():
            t = d.logtext()
            return t.count(" registered (socket") + t.count("refused: near the file descriptor limit") == 30
        wait_for(settled, 20, "30 VPs registered or refused")
        text = d.logtext()
        refused = [ln for ln in text.splitlines() if "near the file descriptor limit" in ln]
        assert 5 <= len(refused) <= 20 and text.count(" registered (socket") == 30 - len(refused)
        peers = {ln.split("VP connection ", 1)[1].split(" ", 1)[0] for ln in refused}
        assert len(peers) == len(refused)  # one line per refused VP
        # the users' reserve is untouched: many users connect to a VP's socket
        path = os.path.join(d.sockdir, sorted(d.sockets())[0])
        for _ in range(40):
            u = socket.socket(socket.AF_UNIX)
            u.connect(path)
            users.append(u)
        users[-1].settimeout(5)
        time.sleep(0.3)
        assert d.proc.poll() is None and "Traceback" not in d.logtext()
        assert "Out of file descriptors" not in d.logtext() and "Too many open files" not in d.logtext()
    finally:
        for s in socks + users:
            s.close()
        d.stop()
