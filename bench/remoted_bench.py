#!/usr/bin/env python3
"""Benchmark: ixp-remoted versus the Debian sc_remoted, in the same run.

A stub VP (speaking the remote protocol over TCP) and a stub user (on the
VP's unix socket) measure, for each controller:

  (a) relay throughput VP -> user, MB/s (8184-byte frames, like scamper's);
  (b) N VPs (default 1000) connected and keeping alive: controller CPU while
      idle, and memory (RSS) per VP;
  (c) the round trip of a short command line user -> VP -> user through the
      controller, against a direct TCP echo as the baseline.

Usage: python3 bench/remoted_bench.py [--mb 300] [--vps 1000] [--idle 40] [--rtts 2000]
Targets: throughput >= 0.8x sc_remoted; 1000 VPs held; memory/VP <= 3x.

The ``scale`` section (``python3 bench/remoted_bench.py scale --vps 9000``):
N VPs from one process (bench/manyvps.py) register at once, all their TCP
connections are cut at once, all resume at once, and users of a sample of
VPs check that each of their lines comes back exactly once, in order --
against sc_remoted and ixp-remoted one after the other in the same run,
printed side by side.  Each controller gets 2 fds per VP (TCP + its unix
socket), so N is bounded by about half of ``ulimit -Hn``; both controllers
are started with their soft fd limit raised to the hard limit.
Targets: every VP registers and resumes; registering all takes no longer
than sc_remoted; every sampled user sees its lines exactly once.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

from ixpscamper.remote.frames import Ack, FrameDecoder, MasterNew, decode_control, encode_frame

HDR = struct.Struct(">IIH")
CHUNK = 8184


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Controller:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"rbench-{kind}-")
        self.sockdir = os.path.join(self.dir, "s")
        os.mkdir(self.sockdir)
        self.port = free_port()
        if kind == "ours":
            cmd = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                   "--pidfile=", "-n", "-l", os.path.join(self.dir, "log"), "ixp-remoted",
                   "-P", f"127.0.0.1:{self.port}", "-U", self.sockdir]
        else:
            cmd = ["sc_remoted", "-P", f"127.0.0.1:{self.port}", "-U", self.sockdir]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"{kind} controller did not start")
        time.sleep(0.3)  # the probe connection above is an aborted VP; let it be reaped

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RawVP:
    """A minimal VP: registers, ACKs reliable frames, optionally echoes."""

    def __init__(self, port: int, name: bytes, magic: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.snd_nxt = 0
        self.rcv_nxt = 0
        self.dec = FrameDecoder()
        self.sock.sendall(encode_frame(0, 0, MasterNew(magic, name).encode()))
        self.master_id = None
        self.channel = None

    def read_frames(self, timeout=None):
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("controller closed")
        return self.dec.feed(data)

    def handle(self, frames, echo=False):
        out = []
        for f in frames:
            if f.channel == 0:
                m = decode_control(f.payload)
                t = type(m).__name__
                if t == "MasterId":
                    self.master_id = m.id
                elif t in ("ChannelNew", "ChannelFin"):
                    self.rcv_nxt = f.seq + 1
                    out.append(encode_frame(self.snd_nxt, 0, Ack(f.seq).encode()))
                    if t == "ChannelNew":
                        self.channel = m.channel
            else:
                self.rcv_nxt = f.seq + 1
                out.append(encode_frame(self.snd_nxt, 0, Ack(f.seq).encode()))
                if echo:
                    out.append(encode_frame(self.snd_nxt, f.channel, f.payload))
                    self.snd_nxt += 1
        if out:
            self.sock.sendall(b"".join(out))

    def wait(self, pred, timeout=20):
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                raise TimeoutError("stub VP waited too long")
            self.handle(self.read_frames(timeout))


def vp_socket(sockdir: str, prefix: str, timeout=20) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        names = [n for n in os.listdir(sockdir) if n.startswith(prefix)]
        if names:
            return os.path.join(sockdir, names[0])
        time.sleep(0.02)
    raise TimeoutError(f"no socket {prefix}* in {sockdir}")


# ---- (a) throughput ----------------------------------------------------------------

def _user_reader(path: str, total: int, q) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    buf = bytearray(1 << 20)
    got = 0
    t0 = None
    while got < total:
        n = s.recv_into(buf)
        if n == 0:
            break
        if t0 is None:
            t0 = time.perf_counter()
        got += n
    q.put((got, time.perf_counter() - t0))
    s.close()


def throughput(ctl: Controller, mb: int) -> float:
    total = -(-mb * 1_000_000 // CHUNK) * CHUNK  # whole frames
    vp = RawVP(ctl.port, b"tput", os.urandom(8))
    vp.wait(lambda: vp.master_id is not None)
    path = vp_socket(ctl.sockdir, "tput-")
    q = mp.Queue()
    reader = mp.Process(target=_user_reader, args=(path, total, q))
    reader.start()
    vp.wait(lambda: vp.channel is not None)
    ch = vp.channel
    stop = threading.Event()

    def drain():  # the controller's ACKs
        vp.sock.settimeout(0.2)
        while not stop.is_set():
            try:
                if not vp.sock.recv(1 << 20):
                    return
            except socket.timeout:
                pass
            except OSError:
                return
    th = threading.Thread(target=drain, daemon=True)
    th.start()
    per = 128
    payload = b"x" * CHUNK
    block = bytearray((10 + CHUNK) * per)
    for i in range(per):
        block[i * (10 + CHUNK) + 10:(i + 1) * (10 + CHUNK)] = payload
    sent = 0
    seq = vp.snd_nxt
    while sent < total:
        n = min(per, -(-(total - sent) // CHUNK))
        for i in range(n):
            HDR.pack_into(block, i * (10 + CHUNK), seq & 0xFFFFFFFF, ch, CHUNK)
            seq += 1
        vp.sock.sendall(memoryview(block)[:n * (10 + CHUNK)])
        sent += n * CHUNK
    got, secs = q.get(timeout=300)
    reader.join()
    if got != total:
        raise SystemExit(f"{ctl.kind}: user received {got} of {total} bytes")
    stop.set()
    th.join()
    vp.sock.close()
    return got / secs / 1e6


# ---- (b) many VPs --------------------------------------------------------------------

def many_vps(ctl: Controller, n: int, idle: float) -> dict:
    time.sleep(0.5)
    rss0 = proc_rss_kb(ctl.proc.pid)
    vps = []
    t0 = time.monotonic()
    for i in range(n):
        vps.append(RawVP(ctl.port, b"m%04d" % i, b"%08d" % i))
    for vp in vps:
        vp.wait(lambda: vp.master_id is not None)
    reg = time.monotonic() - t0
    end = time.monotonic() + 20
    while len(os.listdir(ctl.sockdir)) < n and time.monotonic() < end:
        time.sleep(0.1)
    sockets = len(os.listdir(ctl.sockdir))
    time.sleep(1.0)
    rss1 = proc_rss_kb(ctl.proc.pid)
    cpu0 = proc_cpu(ctl.proc.pid)
    t_idle = time.monotonic()
    sent_ka = False
    while time.monotonic() - t_idle < idle:
        if not sent_ka and time.monotonic() - t_idle > 25:
            ka = b"\x04"
            for vp in vps:
                vp.sock.sendall(encode_frame(vp.snd_nxt, 0, ka))
            sent_ka = True
        time.sleep(0.5)
    cpu1 = proc_cpu(ctl.proc.pid)
    # every VP still connected?  (a closed one reads EOF)
    alive = 0
    for vp in vps:
        vp.sock.setblocking(False)
        try:
            d = vp.sock.recv(65536)
            alive += 1 if d else 0
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    for vp in vps:
        vp.sock.close()
    return dict(registered_s=reg, sockets=sockets, alive=alive,
                idle_cpu_pct=100 * (cpu1 - cpu0) / idle, kb_per_vp=(rss1 - rss0) / n,
                rss_mb=rss1 / 1024)


# ---- (c) round trip ---------------------------------------------------------------------

def _echo_server(port_q) -> None:
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port_q.put(ls.getsockname()[1])
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        d = c.recv(65536)
        if not d:
            return
        c.sendall(d)


def _rtts(sock, count: int) -> list[float]:
    line = b"ping -c 1 127.0.0.1\n"
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        sock.sendall(line)
        got = 0
        while got < len(line):
            got += len(sock.recv(4096))
        out.append(time.perf_counter() - t0)
    return out


def _vp_echo_loop(port: int, ready, stop) -> None:
    vp = RawVP(port, b"echo", os.urandom(8))
    vp.wait(lambda: vp.master_id is not None)
    ready.set()
    vp.sock.settimeout(0.2)
    while not stop.is_set():
        try:
            vp.handle(vp.read_frames(0.2), echo=True)
        except socket.timeout:
            continue
        except (OSError, ConnectionError):
            return


def round_trip(ctl: Controller, count: int) -> tuple[float, float]:
    ready, stop = mp.Event(), mp.Event()
    p = mp.Process(target=_vp_echo_loop, args=(ctl.port, ready, stop))
    p.start()
    ready.wait(20)
    path = vp_socket(ctl.sockdir, "echo-")
    u = socket.socket(socket.AF_UNIX)
    u.connect(path)
    r = _rtts(u, count)
    u.close()
    stop.set()
    p.join(5)
    r.sort()
    return statistics.median(r) * 1e6, r[int(len(r) * 0.99)] * 1e6


def baseline_rtt(count: int) -> tuple[float, float]:
    q = mp.Queue()
    p = mp.Process(target=_echo_server, args=(q,))
    p.start()
    s = socket.create_connection(("127.0.0.1", q.get(timeout=10)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    r = _rtts(s, count)
    s.close()
    p.join(5)
    r.sort()
    return statistics.median(r) * 1e6, r[int(len(r) * 0.99)] * 1e6


# ---- scale: N VPs registered, cut and resumed at once ------------------------------------

def _load() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def scale_main(argv: list[str]) -> None:
    """``remoted_bench.py scale``: see the module docstring."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import manyvps

    ap = argparse.ArgumentParser(prog="remoted_bench.py scale",
                                 description="N VPs register, are cut and resume at once")
    ap.add_argument("--vps", type=int, default=9000, help="VPs (default 9000)")
    ap.add_argument("--window", type=int, default=512,
                    help="connects pending at once (0 = all N at once; default 512)")
    ap.add_argument("--sample", type=int, default=50, help="VPs whose users are checked")
    ap.add_argument("--lines", type=int, default=20, help="lines per user")
    ap.add_argument("--phase-timeout", type=float, default=300.0,
                    help="seconds each of register / resume may take")
    ap.add_argument("--only", choices=["ours", "sc_remoted"], action="append")
    ap.add_argument("--json", help="also write the raw results to this file")
    ap.add_argument("--base", default=None,
                    help="where the controllers' socket directories go (default: a tmpfs "
                         "such as /dev/shm if there is one, else /tmp)")
    args = ap.parse_args(argv)
    base = args.base or manyvps.default_base()
    kinds = [k for k in ("sc_remoted", "ours") if k in (args.only or ("sc_remoted", "ours"))]
    if "sc_remoted" in kinds and shutil.which("sc_remoted") is None:
        raise SystemExit("remoted_bench: sc_remoted not installed (apt-get install scamper)")
    hard = manyvps.raise_nofile()
    need = 2 * args.vps + 2 * args.sample + 64
    if need > hard:
        raise SystemExit(f"remoted_bench: {args.vps} VPs need about {need} fds in the "
                         f"controller; the hard limit (ulimit -Hn) is {hard}")
    print(f"scale: {args.vps} VPs, window {args.window or args.vps}, sample {args.sample} "
          f"users x {args.lines} lines; fd hard limit {hard}; sockets in {base} "
          f"({manyvps.fs_type(base)}); load {_load()}", flush=True)
    res: dict = {}
    for kind in kinds:
        work = tempfile.mkdtemp(prefix="rbs-", dir=base)  # short: unix paths <= 107 bytes
        ctl = manyvps.launch_controller(kind, work)
        try:
            load0 = _load()
            r = manyvps.run_driver(ctl.port, ctl.sockdir, args.vps, pid=ctl.pid,
                                   window=args.window, sample=args.sample, lines=args.lines,
                                   phase_timeout=args.phase_timeout)
            r["load_before"], r["load_after"] = load0, _load()
            time.sleep(0.5)  # the driver's exit closes every VP and user at once
            r["exit_before_sigint"] = ctl.proc.poll()
            r["controller_nofile"] = ctl.nofile
        except Exception as e:  # the run failed as a whole: say so, keep the other one
            r = {"failed": str(e)[-1500:]}
        finally:
            rc = ctl.stop()
            tail = ctl.output()[-600:]
            shutil.rmtree(work, ignore_errors=True)
        r["exit_status"] = rc
        died = r.get("exit_before_sigint")
        if died is not None:
            r["exit_note"] = (f"{kind} died on its own (status {died}; negative = signal) "
                              f"before the SIGINT; alive after each phase: "
                              f"{r.get('controller_alive')}; log tail {tail[-300:]!r}")
        elif rc not in (0, -signal.SIGINT, 128 + signal.SIGINT, 1):
            r["exit_note"] = f"{kind} exited with status {rc} on SIGINT: {tail[-300:]!r}"
        res[kind] = r
        if "failed" in r:
            print(f"[{kind}] run failed: {r['failed']}", flush=True)
        else:
            print(f"[{kind}] registered {r['register']['ok']}/{args.vps} in "
                  f"{r['register']['registered_s']:.2f} s, resumed {r['resume']['ok']}/{args.vps} in "
                  f"{r['resume']['resumed_s']:.2f} s (load {r['load_before']} -> {r['load_after']})",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    print()
    print(_scale_table(res, kinds, args.vps))


def _scale_table(res: dict, kinds: list[str], n: int) -> str:
    def cell(kind: str, fn) -> str:
        r = res.get(kind, {})
        if "failed" in r:
            return "run failed"
        try:
            v = fn(r)
        except (KeyError, TypeError, ZeroDivisionError):
            return "-"
        return v if len(v) <= 40 else v[:37] + "..."  # the details follow the table

    def reasons(d: dict) -> str:
        return "; ".join(f"{v}x {k}" for k, v in d.items()) or "none"

    def sockname(r: dict) -> str:
        s = r["resume"]
        same = s.get("same_source_port", 0)
        kept, new = s["sockets_first_port_name"] - same, s["sockets_current_port_name"] - same
        tail = f", {same} reconnected from the same port" if same else ""
        if kept and not new:
            return f"kept ({kept}{tail})"
        if new and not kept:
            return f"new port ({new}{tail})"
        return f"kept {kept}, new {new}{tail}"

    def users(key: str):
        return lambda r: f"{r[key]['exactly_once']}/{r[key]['users']}"

    mib = 1024.0
    rows = [
        ("time to register all (s)", lambda r: f"{r['register']['registered_s']:.2f}"),
        ("  median VP (s)", lambda r: f"{r['register']['median_vp_s']:.2f}"),
        ("registered / failures", lambda r: f"{r['register']['ok']} / {r['register']['failures']}"),
        ("  register failure reasons", lambda r: reasons(r["register"]["failure_reasons"])),
        ("cut connections", lambda r: f"{r['cut']['connections']}"),
        ("time to resume all (s)", lambda r: f"{r['resume']['resumed_s']:.2f}"),
        ("  median VP (s)", lambda r: f"{r['resume']['median_vp_s']:.2f}"),
        ("resumed / failures", lambda r: f"{r['resume']['ok']} / {r['resume']['failures']}"),
        ("  resume failure reasons", lambda r: reasons(r["resume"]["failure_reasons"])),
        ("socket name after resume", sockname),
        ("other errors", lambda r: f"{sum(r['errors'].values())}"),
        ("users across the cut: exactly once", users("users_across_cut")),
        ("users after the resume: exactly once", users("users_after_resume")),
        ("RSS registered (MiB)", lambda r: f"{r['controller']['rss_kb_registered'] / mib:.0f}"),
        ("RSS resumed (MiB)", lambda r: f"{r['controller']['rss_kb_resumed'] / mib:.0f}"),
        ("  KiB per VP (registered)", lambda r: f"{(r['controller']['rss_kb_registered'] - r['controller']['rss_kb_start']) / n:.1f}"),
        ("CPU s: register", lambda r: f"{r['controller']['register_cpu_s']:.2f}"),
        ("CPU s: resume", lambda r: f"{r['controller']['resume_cpu_s']:.2f}"),
        ("CPU s: whole run", lambda r: f"{r['controller']['total_cpu_s']:.2f}"),
        ("controller fds (registered)", lambda r: f"{r['controller']['fds_registered']}"),
        ("controller fd limit (soft, hard)", lambda r: f"{tuple(r['controller_nofile'])}"),
        ("listen backlog", lambda r: f"{r['listen_backlog']}"),
        ("ListenOverflows / ListenDrops", lambda r: f"{r['listen_overflows'].get('ListenOverflows')} / {r['listen_overflows'].get('ListenDrops')}"),
        ("driver CPU s", lambda r: f"{r['driver_cpu_s']:.2f}"),
        ("load before -> after", lambda r: f"{r['load_before']} -> {r['load_after']}"),
        ("controller alive after reg/cut/resume/users",
         lambda r: "/".join("yes" if r["controller_alive"][k] else "NO"
                            for k in ("registered", "cut", "resumed", "users_done"))),
        ("died by itself (status) / at SIGINT",
         lambda r: f"{r['exit_before_sigint']} / {r['exit_status']}"),
    ]
    w0 = max(len(r[0]) for r in rows)
    cols = [[cell(k, fn) for _, fn in rows] for k in kinds]
    ws = [max(len(k), *(len(c) for c in col)) for k, col in zip(kinds, cols)]
    out = [f"{'':{w0}}  " + "  ".join(f"{k:>{w}}" for k, w in zip(kinds, ws))]
    for i, (label, _) in enumerate(rows):
        out.append(f"{label:{w0}}  " + "  ".join(f"{col[i]:>{w}}" for col, w in zip(cols, ws)))
    if set(kinds) == {"ours", "sc_remoted"}:
        o, s = res["ours"], res["sc_remoted"]
        if "failed" not in o and "failed" not in s:
            ok = o["register"]["registered_s"] <= s["register"]["registered_s"]
            out.append("")
            out.append(f"register all: ours/sc_remoted = "
                       f"{o['register']['registered_s'] / max(s['register']['registered_s'], 1e-9):.2f}x "
                       f"(target <= 1: {'met' if ok else 'NOT met'}); "
                       f"every VP resumed: ours {'yes' if o['resume']['failures'] == 0 else 'NO'}, "
                       f"sc_remoted {'yes' if s['resume']['failures'] == 0 else 'NO'}")
    for k in kinds:  # the details that do not fit in a cell
        r = res.get(k, {})
        for phase in ("register", "resume"):
            if r.get(phase, {}).get("failure_reasons"):
                out.append(f"{k} {phase} failures: {reasons(r[phase]['failure_reasons'])}")
        if r.get("errors"):
            out.append(f"{k} other errors: {reasons(r['errors'])}")
        for key in ("users_across_cut", "users_after_resume"):
            for who, what in list(r.get(key, {}).get("problems", {}).items())[:3]:
                out.append(f"{k} {key}: {who}: {what}")
        if r.get("exit_note"):
            out.append(r["exit_note"])
    return "\n".join(out)


def main() -> None:
    if sys.argv[1:2] == ["scale"]:
        scale_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="python3 bench/remoted_bench.py scale --help: the scale section")
    ap.add_argument("--mb", type=int, default=300, help="MB relayed in (a)")
    ap.add_argument("--vps", type=int, default=1000, help="VPs in (b)")
    ap.add_argument("--idle", type=float, default=40.0, help="idle seconds in (b)")
    ap.add_argument("--rtts", type=int, default=2000, help="round trips in (c)")
    ap.add_argument("--only", choices=["a", "b", "c"], action="append")
    args = ap.parse_args()
    if shutil.which("sc_remoted") is None:
        raise SystemExit("remoted_bench: sc_remoted not installed (apt-get install scamper)")
    only = set(args.only or "abc")
    res: dict = {"sc_remoted": {}, "ours": {}}
    kinds = ("sc_remoted", "ours")
    if "a" in only:
        # The machine may be shared: alternate the two, best of three each.
        for kind in kinds:
            res[kind]["mbps_runs"] = []
        for _ in range(3):
            for kind in kinds:
                ctl = Controller(kind)
                try:
                    res[kind]["mbps_runs"].append(throughput(ctl, args.mb))
                finally:
                    ctl.stop()
        for kind in kinds:
            r = res[kind]
            r["mbps"] = max(r["mbps_runs"])
            print(f"[{kind}] (a) relay throughput: best {r['mbps']:.0f} MB/s "
                  f"(runs {', '.join(f'{x:.0f}' for x in r['mbps_runs'])})", flush=True)
    for kind in kinds:
        r = res[kind]
        if "b" in only:
            ctl = Controller(kind)
            try:
                r["many"] = many_vps(ctl, args.vps, args.idle)
            finally:
                ctl.stop()
            m = r["many"]
            print(f"[{kind}] (b) {args.vps} VPs: registered in {m['registered_s']:.1f} s, "
                  f"{m['sockets']} sockets, {m['alive']} alive after {args.idle:g} s idle, "
                  f"idle CPU {m['idle_cpu_pct']:.2f}%, {m['kb_per_vp']:.1f} KiB/VP "
                  f"(RSS {m['rss_mb']:.0f} MiB)", flush=True)
        if "c" in only:
            ctl = Controller(kind)
            try:
                r["rtt"] = round_trip(ctl, args.rtts)
            finally:
                ctl.stop()
            print(f"[{kind}] (c) command round trip: median {r['rtt'][0]:.0f} us, "
                  f"p99 {r['rtt'][1]:.0f} us", flush=True)
    print()
    o, s = res["ours"], res["sc_remoted"]
    if "a" in only:
        print(f"(a) throughput ours/sc_remoted = {o['mbps'] / s['mbps']:.2f}x (target >= 0.8)")
    if "b" in only:
        print(f"(b) VPs held: ours {o['many']['alive']}/{args.vps}, sc_remoted "
              f"{s['many']['alive']}/{args.vps}; memory/VP ours/sc_remoted = "
              f"{o['many']['kb_per_vp'] / max(s['many']['kb_per_vp'], 0.001):.2f}x (target <= 3)")
    if "c" in only:
        base = baseline_rtt(args.rtts)
        print(f"(c) direct TCP echo baseline median {base[0]:.0f} us; added by controller: "
              f"ours {o['rtt'][0] - base[0]:.0f} us, sc_remoted {s['rtt'][0] - base[0]:.0f} us (median)")


if __name__ == "__main__":
    main()
