#!/usr/bin/env python3
"""Benchmark of the warts codec (issue 2), against scamper's own tools in the same run.

Generates a warts file of N traces (default 100,000, ~15 hops each) with our
writer, then times:

* our decode alone (iter_records over the file), on one core;
* our decode + text render (the ``ixp-warts2text`` CLI, as a subprocess);
* ``/usr/bin/sc_warts2text`` on the same file;
* scamper-pywarts (PyPI ``scamper-pywarts``), if it is installed and works.

Prints figures and the ratios against the targets: ixp-warts2text within 4x
of sc_warts2text's wall time; decode >= 20,000 traces/s; ixp-warts2json within
3x of sc_warts2json (issue 12).

The CLIs print a file of 2 MB or more with two processes on a multi-core
machine (see ixpscamper.warts.cli.PARALLEL_MIN): the CPU-time ratios printed
beside the wall-time ones show the work of one; ``IXP_WARTS_JOBS=1`` in the
environment times one process.

Usage: python3 bench/warts_bench.py [--traces N] [--repeat N] [--keep FILE]

``--mode mixed`` instead builds a file of N records (default 100,000) that
interleaves every record of the real-tool fixtures scamper 20211212 can read
(traces, pings, tracelbs, dealias of five methods: tests/fixtures/), and
times our decode, ixp-warts2text against sc_warts2text and ixp-warts2json
against sc_warts2json on it (targets: both within 3x), checking that the
outputs are identical.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from ixpscamper.warts import (CycleStart, CycleStop, Timeval, Trace, TraceHop, WartsList,
                              WartsWriter, iter_records)


def generate(path: str, ntraces: int, seed: int = 1) -> int:
    """Write ``ntraces`` plausible traces; returns the number of hop records."""
    rnd = random.Random(seed)
    routers = [ipaddress.IPv4Address(rnd.getrandbits(32)) for _ in range(20000)]
    src = ipaddress.IPv4Address("192.0.2.10")
    lst = WartsList()
    cyc = CycleStart(lst, 1795760000, hostname="bench")
    nhops = 0
    t0 = 1795760000
    with open(path, "wb") as f:
        w = WartsWriter(f)
        w.write(lst)
        w.write(cyc)
        for i in range(ntraces):
            dst = ipaddress.IPv4Address(rnd.getrandbits(32))
            n = rnd.randint(12, 18)
            hops = []
            for ttl in range(1, n + 1):
                last = ttl == n
                hops.append(TraceHop(
                    addr=dst if last else routers[rnd.randrange(len(routers))],
                    probe_ttl=ttl, probe_id=1, probe_size=44, rtt=rnd.randint(50, 300000),
                    flags=0x11, reply_ttl=64 - ttl, reply_tos=0xc0 if not last else 0,
                    reply_ipid=rnd.randint(0, 65535), reply_size=56 if not last else 72,
                    icmp_type=3 if last else 11, icmp_code=3 if last else 0,
                    icmp_q_ttl=1, icmp_q_ipl=44, icmp_q_tos=0,
                    tx=Timeval(t0 + i // 10, rnd.randint(0, 999999))))
            nhops += n
            w.write(Trace(dst=dst, src=src, list=lst, cycle=cyc,
                          start=Timeval(t0 + i // 10, rnd.randint(0, 999999)),
                          stop_reason=1, sport=rnd.randint(1024, 65535), hop_count=n,
                          probec=n, hops=hops))
        w.write(CycleStop(cyc, t0 + ntraces // 10))
    return nhops


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


def run_cmd(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def best_of(n: int, fn) -> float:
    return min(fn() for _ in range(n))


def decode_ours(path: str) -> int:
    n = 0
    with open(path, "rb", buffering=1 << 20) as f:
        for rec in iter_records(f):
            if type(rec) is Trace:
                n += 1
    return n


def decode_pywarts(path: str):
    try:
        import warts  # scamper-pywarts
        from warts.traceroute import Traceroute
    except Exception as e:  # not installed / broken
        return None, f"not available ({type(e).__name__}: {e})"
    try:
        t = time.perf_counter()
        n = 0
        with open(path, "rb") as f:
            while True:
                rec = warts.parse_record(f)
                if rec is None:
                    break
                if isinstance(rec, Traceroute):
                    n += 1
        return time.perf_counter() - t, n
    except Exception as e:
        return None, f"failed ({type(e).__name__}: {e})"


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def generate_mixed(path: str, nrecs: int) -> dict:
    """Write ``nrecs`` measurement records cycling through the fixtures' own
    records (those 20211212 reads: not the 2026-only MIDAR methods); returns
    the count per record type."""
    from ixpscamper.warts import (Dealias, Ping, Tracelb, WartsError, encode_cycle, encode_list,
                                  read_records)
    from ixpscamper.warts.writer import encode_cycle_stop, encode_record
    templates = []
    for sub in ("scamper-repertoire", "scamper-20211212"):
        d = os.path.join(FIXTURES, sub)
        for name in sorted(os.listdir(d)):
            if not name.endswith(".warts"):
                continue
            cmd = os.path.join(d, name[:-6] + ".cmd")
            if sub == "scamper-repertoire" and open(cmd).read().startswith("[2026]"):
                continue
            try:
                recs = read_records(open(os.path.join(d, name), "rb").read())
            except WartsError:  # (20211212's unreadable neighbourdisc files)
                continue
            for r in recs:
                if isinstance(r, (Trace, Ping, Tracelb, Dealias)):
                    templates.append((type(r).__name__, encode_record(r, 1, 1)))
    lst = WartsList()
    cyc = CycleStart(lst, 1795760000, hostname="bench")
    counts: dict = {}
    with open(path, "wb") as f:
        f.write(encode_list(lst, 1) + encode_cycle(cyc, 1, 1))
        for i in range(nrecs):
            name, data = templates[i % len(templates)]
            counts[name] = counts.get(name, 0) + 1
            f.write(data)
        f.write(encode_cycle_stop(CycleStop(cyc, 1795760000 + 3600), 1))
    return counts


def run_any(argv: list[str]) -> float:
    """Wall time of ``argv``, whatever its exit status (ixp-warts2text exits 3
    when it names records it does not print)."""
    return run_timed(argv)[0]


def run_timed(argv: list[str]) -> tuple[float, float]:
    """``(wall, CPU)`` seconds of ``argv`` (CPU: user + system of the child,
    which other work on the machine inflates far less than wall time)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0  # reaped here
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime


def best_timed(n: int, argv: list[str]) -> tuple[float, float]:
    """Best wall and best CPU time of ``n`` runs of ``argv``."""
    runs = [run_timed(argv) for _ in range(n)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def decode_all(path: str) -> int:
    n = 0
    with open(path, "rb", buffering=1 << 20) as f:
        for _ in iter_records(f):
            n += 1
    return n


def _note_bytecode() -> None:
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set: every run of our CLIs compiles their "
              "modules first (~50 ms here); an installed package has its bytecode "
              "(PYTHONPYCACHEPREFIX=DIR, PYTHONDONTWRITEBYTECODE unset, times that)")


def main_mixed(args) -> int:
    nrecs = args.traces
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine inflates all figures)")
    _note_bytecode()
    tmpdir = tempfile.mkdtemp(prefix="warts-bench-")
    path = args.keep or os.path.join(tmpdir, "mixed.warts")
    try:
        gen_s, counts = timed(lambda: generate_mixed(path, nrecs))
        print(f"generated {nrecs} records {counts}, {os.path.getsize(path) / 1e6:.1f} MB "
              f"in {gen_s:.1f} s")
        code = ("import sys, time; sys.path.insert(0, %r); from warts_bench import decode_all; "
                "t = time.perf_counter(); n = decode_all(%r); print(time.perf_counter() - t, n)"
                % (os.path.dirname(os.path.abspath(__file__)), path))
        runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout.split() for _ in range(args.repeat)]
        dec_s = min(float(r[0]) for r in runs)
        print(f"ours    decode only         : {dec_s:7.3f} s  {nrecs / dec_s:10,.0f} records/s")
        bindir = os.path.dirname(sys.executable)
        ok = True
        for ours, ref in (("ixp-warts2text", "sc_warts2text"), ("ixp-warts2json", "sc_warts2json")):
            exe = os.path.join(bindir, ours)
            if not os.path.exists(exe):
                exe = shutil.which(ours)
            refp = shutil.which(ref)
            if exe is None or refp is None:
                print(f"{ours} or {ref} missing: skipped")
                continue
            # interleaved, so that a burst of load hits both alike
            ro, rr = [], []
            for _ in range(args.repeat):
                ro.append(run_timed([exe, path]))
                rr.append(run_timed([refp, path]))
            o, oc = min(w for w, _ in ro), min(c for _, c in ro)
            r, rc = min(w for w, _ in rr), min(c for _, c in rr)
            same = (subprocess.run([exe, path], capture_output=True).stdout
                    == subprocess.run([refp, path], capture_output=True).stdout)
            ratio = o / r
            met = ratio <= 3
            ok = ok and met and same
            print(f"{ours:15s} {o:7.3f} s vs {ref} {r:7.3f} s: {ratio:.2f}x "
                  f"(target <= 3x: {'MET' if met else 'NOT MET'}); outputs identical: {same}")
            print(f"{'':15s} CPU {oc:7.3f} s vs {rc:7.3f} s: {oc / max(rc, 1e-9):.2f}x")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["traces", "mixed"], default="traces",
                    help="traces: the issue-2 trace file; mixed: every record type (see above)")
    ap.add_argument("--traces", type=int, default=100_000,
                    help="number of traces (mode traces) or records (mode mixed)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="best of N for each timing (the machine is shared: noise only adds time)")
    ap.add_argument("--keep", help="write the generated file here and keep it")
    args = ap.parse_args()
    if args.mode == "mixed":
        return main_mixed(args)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine inflates all figures)")
    _note_bytecode()
    tmpdir = tempfile.mkdtemp(prefix="warts-bench-")
    path = args.keep or os.path.join(tmpdir, "bench.warts")
    try:
        gen_s, nhops = timed(lambda: generate(path, args.traces))
        size = os.path.getsize(path)
        print(f"generated {args.traces} traces, {nhops} hops ({nhops / args.traces:.1f}/trace), "
              f"{size / 1e6:.1f} MB in {gen_s:.1f} s ({args.traces / gen_s:,.0f} traces/s encode)")

        # decode in a fresh interpreter each time: cold caches, like a user's run
        code = ("import sys, time; sys.path.insert(0, %r); from warts_bench import decode_ours; "
                "t = time.perf_counter(); c = time.process_time(); n = decode_ours(%r); "
                "print(time.perf_counter() - t, time.process_time() - c, n)"
                % (os.path.dirname(os.path.abspath(__file__)), path))
        runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout.split() for _ in range(args.repeat)]
        assert all(int(r[2]) == args.traces for r in runs)
        dec_s = min(float(r[0]) for r in runs)
        dec_cpu = min(float(r[1]) for r in runs)
        rate = args.traces / dec_s
        print(f"ours    decode only         : {dec_s:7.3f} s  {rate:10,.0f} traces/s wall, "
              f"{args.traces / dec_cpu:,.0f}/s per CPU-second  "
              f"(target >= 20,000: {'MET' if rate >= 20000 else 'NOT MET'})")

        # the console script itself (not a pyenv-style shim in front of it)
        exe = os.path.join(os.path.dirname(sys.executable), "ixp-warts2text")
        if not os.path.exists(exe):
            exe = shutil.which("ixp-warts2text")
        ours_cli = [exe, path] if exe else [
            sys.executable, "-c",
            "import sys; from ixpscamper.warts.cli import main_text; sys.exit(main_text())", path]
        ours_s = best_of(args.repeat, lambda: run_cmd(ours_cli))
        print(f"ours    ixp-warts2text      : {ours_s:7.3f} s  {args.traces / ours_s:10,.0f} traces/s")

        ref = shutil.which("sc_warts2text") or "/usr/bin/sc_warts2text"
        if os.path.exists(ref):
            ref_s = best_of(args.repeat, lambda: run_cmd([ref, path]))
            ratio = ours_s / ref_s
            print(f"scamper sc_warts2text       : {ref_s:7.3f} s  {args.traces / ref_s:10,.0f} traces/s")
            print(f"ratio ixp-warts2text / sc_warts2text wall time: {ratio:.2f}x "
                  f"(target <= 4x: {'MET' if ratio <= 4 else 'NOT MET'})")
            same = subprocess.run([ref, path], capture_output=True).stdout == \
                subprocess.run(ours_cli, capture_output=True).stdout
            print(f"outputs identical: {same}")
        else:
            print("sc_warts2text not installed: no reference timing")

        # the JSON converter (issue 12: within 3x)
        jexe = os.path.join(os.path.dirname(sys.executable), "ixp-warts2json")
        jref = shutil.which("sc_warts2json") or "/usr/bin/sc_warts2json"
        if os.path.exists(jexe) and os.path.exists(jref):
            oj, ojc = best_timed(args.repeat, [jexe, path])
            rj, rjc = best_timed(args.repeat, [jref, path])
            jsame = (subprocess.run([jexe, path], capture_output=True).stdout
                     == subprocess.run([jref, path], capture_output=True).stdout)
            print(f"json    ixp-warts2json {oj:7.3f} s vs sc_warts2json {rj:7.3f} s: {oj / rj:.2f}x "
                  f"(target <= 3x: {'MET' if oj / rj <= 3 else 'NOT MET'}; CPU {ojc / rjc:.2f}x); "
                  f"outputs identical: {jsame}")

        pw = decode_pywarts(path)
        if pw[0] is None:
            print(f"scamper-pywarts decode      : {pw[1]}")
        else:
            print(f"scamper-pywarts decode      : {pw[0]:7.3f} s  {pw[1] / pw[0]:10,.0f} traces/s "
                  f"(ours is {pw[0] / dec_s:.1f}x faster)")
    finally:
        if not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
