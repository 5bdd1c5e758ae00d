"""``ixp-lab demo``: the whole pipeline in a namespace exchange, then gone.

Builds the lab (:mod:`ixpscamper.lab`), starts ``twistd ixp-remoted`` and
``twistd ixp-vp`` inside the collector's namespace, sends ``trace -r``
through each member router and a ping with ``ixp-attach``, prints the two
paths side by side and the ping as ``ixp-warts2text`` renders it; then,
when BIRD 2 is installed (``--no-bgp`` skips it), runs ``ixp-peers`` on the
collector's MRT dump through the same VP and prints the congruence table
(rB's BGP path is a lie its data plane gives away).  Tears everything down
(also on failure or Ctrl-C).  Needs root.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROG = "ixp-lab demo"

_TWISTD = [sys.executable, "-c",
           "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"]


class DemoError(Exception):
    """An expected failure; printed as one line."""


def _wait_socket(sockdir: Path, monitor: str, procs, timeout: float = 45.0) -> Path:
    # 45 s, not 20: a loaded 2-core machine was seen to need more than 20.
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for p in sockdir.iterdir():
            if p.name.startswith(monitor + "-"):
                return p
        for name, proc in procs:
            if proc.poll() is not None:
                raise DemoError(f"{name} exited with status {proc.returncode} (see its log above)")
        time.sleep(0.1)
    raise DemoError(f"the VP did not register with the controller within {timeout:g} s")


def _hops(trace) -> list[str]:
    """One string per TTL: the first replying address, or ``*``."""
    by_ttl: dict[int, str] = {}
    for h in trace.hops:
        by_ttl.setdefault(h.probe_ttl, f"{h.addr}  {h.rtt / 1000:.3f} ms")
    return [by_ttl.get(ttl, "*") for ttl in range(1, trace.hop_count + 1)]


def side_by_side(traces: dict[str, object]) -> str:
    """The paths of several traces as columns, one row per TTL."""
    cols = {k: _hops(t) for k, t in traces.items()}
    width = max([len(s) for c in cols.values() for s in c] + [len(k) for k in cols]) + 2
    rows = max(len(c) for c in cols.values())
    out = ["ttl  " + "".join(k.ljust(width) for k in cols)]
    for i in range(rows):
        out.append(f"{i + 1:>3}  " + "".join((c[i] if i < len(c) else "").ljust(width) for c in cols.values()))
    return "\n".join(line.rstrip() for line in out)


def _peers_step(lab, sock: Path, out) -> None:
    """``ixp-peers`` on the lab's BGP: the control plane against the data plane."""
    from ixpscamper.lab import LabError

    try:
        ribs = lab.bgp.bgp_rib_files()
    except LabError as e:
        raise DemoError(f"BGP: {e}") from None
    names = " ".join(f"--rib {Path(r).name}" for r in ribs)
    print(f"\n$ ixp-peers {names} --ixp-lan 192.0.2.0/24 --ixp-lan 2001:db8:1::/64 "
          f"--dst 198.51.100.66 --dst 2001:db8:d::66 -R {sock.name}", file=out, flush=True)
    argv = [sys.executable, "-m", "ixpscamper.peers.cli", *[a for r in ribs for a in ("--rib", r)],
            "--ixp-lan", "192.0.2.0/24", "--ixp-lan", "2001:db8:1::/64",
            "--dst", "198.51.100.66", "--dst", "2001:db8:d::66", "-R", str(sock)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise DemoError("ixp-peers failed: " + res.stderr.strip())
    print("\nBGP path (what each member told the collector) against data path (trace -r):\n", file=out)
    print(res.stdout, file=out, end="", flush=True)


def run_demo(keep_logs: bool = False, out=sys.stdout, bgp: bool = True) -> int:
    from ixpscamper.lab import ADDRS, Lab, LabError
    from ixpscamper.warts import iter_records
    from ixpscamper.warts.records import Trace

    if os.geteuid() != 0:
        raise DemoError("needs root (network namespaces and raw sockets)")
    tmp = Path(tempfile.mkdtemp(prefix="ixp-demo-"))
    sockdir = tmp / "sockets"
    sockdir.mkdir(mode=0o700)
    logs: dict[str, Path] = {}
    procs: list[tuple[str, subprocess.Popen]] = []
    port = 31337
    monitor = "demo-vp"
    lab = None
    try:
        bgp = bgp and shutil.which("bird") is not None
        print("building the exchange lab (7 namespaces%s) ..." % (", BGP with BIRD" if bgp else ""),
              file=out, flush=True)
        try:
            lab = Lab.create(bgp=bgp)
        except LabError as e:
            raise DemoError(f"cannot build the lab: {e}") from None

        def start(name: str, argv: list[str]) -> None:
            logs[name] = tmp / f"{name}.log"
            f = open(logs[name], "wb")
            procs.append((name, lab.popen("coll", argv, stdout=f, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)))

        start("ixp-remoted", _TWISTD + ["-n", "--pidfile=", "ixp-remoted", "-P", f"127.0.0.1:{port}",
                                        "-U", str(sockdir)])
        time.sleep(0.5)
        start("ixp-vp", _TWISTD + ["-n", "--pidfile=", "ixp-vp", "-R", f"127.0.0.1:{port}",
                                   "-M", monitor, "--no-tls", "--pps", "100"])
        sock = _wait_socket(sockdir, monitor, procs)
        print(f"VP {monitor} registered with the controller: socket {sock.name}", file=out, flush=True)

        members = {"via rA (192.0.2.1)": ADDRS["rA"], "via rB (192.0.2.2)": ADDRS["rB"]}
        cmds = "".join(f"trace -r {rtr} {ADDRS['dst']}\n" for rtr in members.values())
        print(f"\n$ ixp-attach -R {sock} -i - -o -   # {len(members)} x trace -r MEMBER {ADDRS['dst']}",
              file=out, flush=True)
        res = subprocess.run([sys.executable, "-m", "ixpscamper.attach", "-R", str(sock), "-i", "-", "-o", "-"],
                             input=cmds.encode(), capture_output=True, timeout=120)
        if res.returncode != 0:
            raise DemoError("ixp-attach failed: " + res.stderr.decode(errors="replace").strip())
        traces = [r for r in iter_records(io.BytesIO(res.stdout)) if isinstance(r, Trace)]
        by_rtr = {str(t.rtr): t for t in traces}
        table = {label: by_rtr[rtr] for label, rtr in members.items() if rtr in by_rtr}
        if len(table) != len(members):
            raise DemoError(f"expected {len(members)} traces, got {len(traces)}")
        print(f"\npaths from the collector to {ADDRS['dst']}, through each member:\n", file=out)
        print(side_by_side(table), file=out, flush=True)

        print(f"\n$ echo 'ping -c 3 {ADDRS['dst']}' | ixp-attach -R {sock.name} -i - -o - | ixp-warts2text",
              file=out, flush=True)
        attach = subprocess.Popen([sys.executable, "-m", "ixpscamper.attach", "-R", str(sock), "-i", "-", "-o", "-"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        render = subprocess.Popen([sys.executable, "-c", "from ixpscamper.warts.cli import main_text; main_text()"],
                                  stdin=attach.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        attach.stdout.close()
        attach.stdin.write(f"ping -c 3 {ADDRS['dst']}\n".encode())
        attach.stdin.close()
        text, rerr = render.communicate(timeout=60)
        aerr = attach.stderr.read()
        attach.wait(10)
        if attach.returncode != 0 or render.returncode != 0:
            raise DemoError("ping pipeline failed: " + (aerr + rerr).decode(errors="replace").strip())
        print(text.decode(errors="replace"), file=out, end="", flush=True)
        if lab.bgp is not None:
            _peers_step(lab, sock, out)
        return 0
    finally:
        for name, p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        if lab is not None:
            lab.teardown()
            print("\nlab torn down.", file=out, flush=True)
        if keep_logs:
            print(f"logs kept in {tmp}", file=out)
        else:
            for f in tmp.rglob("*"):
                try:
                    f.unlink()
                except OSError:
                    pass
            for d in (sockdir, tmp):
                try:
                    d.rmdir()
                except OSError:
                    pass


def main(argv: list[str] | None = None) -> int:
    """``ixp-lab demo [--keep-logs]``; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--keep-logs", action="store_true", help="keep the daemons' logs (path printed)")
    p.add_argument("--no-bgp", action="store_true", help="skip the BGP step (ixp-peers on BIRD's RIB dump)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run_demo(keep_logs=args.keep_logs, bgp=not args.no_bgp)
    except DemoError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except subprocess.TimeoutExpired as e:
        print(f"{PROG}: timed out: {' '.join(map(str, e.cmd))[:80]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
