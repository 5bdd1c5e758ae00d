"""Differential fuzzing of ixp-warts2text / ixp-warts2json against scamper's tools.

Each case takes a golden fixture, applies seeded mutations
(tests/warts_mutate.py) and runs the real ``sc_warts2text`` /
``sc_warts2json`` and ours on the result:

* the real tool exits 0 with nothing on stderr (it read the file without
  complaint): our stdout must be byte-identical, with exit 0 and no stderr
  (or exit 3 and only lines naming records the tool prints nothing for);
* the real tool complained (a line on stderr: scamper stops at the first
  record its reader rejects): ours must print the same intact records, then
  exactly one error line, exit 1, no traceback;
* the real tool crashed (killed by a signal): ours must still end with at
  most one error line and no traceback.

The CI run uses a fixed seed range bounded to well under a minute.  A larger
run, with the mismatch classes counted::

    python3 tests/test_warts_resilience.py --cases 5000 [--first 0] [--show 5]
"""

from __future__ import annotations

import difflib
import gc
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import FIXTURES, requires_tool  # noqa: E402
from warts_mutate import mutate  # noqa: E402

from ixpscamper.warts import cli  # noqa: E402

CASES = sorted(p.stem for p in FIXTURES.glob("*.warts"))
BLOBS = {c: (FIXTURES / f"{c}.warts").read_bytes() for c in CASES}
REAL = {"text": "/usr/bin/sc_warts2text", "json": "/usr/bin/sc_warts2json"}
OURS = {"text": cli.main_text, "json": cli.main_json}
ENV = {**os.environ, "TZ": "UTC"}

#: seeds the CI run checks (about 15 s on an idle machine; 4 tool runs each)
CI_SEEDS = range(0, 3000)
#: wall-clock budget of the CI run; past it the test stops early (and says so)
CI_BUDGET_S = 50.0


def case_bytes(seed: int) -> tuple[str, bytes]:
    """The fixture name and damaged bytes of case ``seed``."""
    name = CASES[seed % len(CASES)]
    data, _ = mutate(BLOBS[name], seed)
    return name, data


def run_real(kind: str, path: str) -> tuple[int, bytes, bytes]:
    r = subprocess.run([REAL[kind], path], capture_output=True, env=ENV, timeout=30)
    return r.returncode, r.stdout, r.stderr


class _Out:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, s: str) -> int:
        return self.buffer.write(s.encode())

    def flush(self) -> None:
        pass


def run_ours(kind: str, path: str) -> tuple[int, bytes, bytes]:
    """Our CLI in this process, with stdout / stderr captured."""
    out, err = _Out(), io.StringIO()
    old = sys.stdout, sys.stderr
    tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    sys.stdout, sys.stderr = out, err
    gc_threshold = gc.get_threshold()  # the CLI tunes it for a short-lived process
    try:
        rc = OURS[kind]([path])
    finally:
        gc.set_threshold(*gc_threshold)
        sys.stdout, sys.stderr = old
        if tz is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = tz
        time.tzset()
    return rc, out.buffer.getvalue(), err.getvalue().encode()


#: Some output depends on memory scamper never wrote, and cannot be
#: reproduced; cases whose only difference is that are counted apart, not
#: compared:
#:
#: * an uninitialised buffer printed: sc_warts2text 20211212 writes no ICMP
#:   note for a UDP reply (hop flag 0x40), so the note buffer holds whatever
#:   an earlier hop (or earlier code) left there -- garbage, or a previous
#:   hop's note.  Garbage shows as bytes no scamper format prints (outside
#:   printable ASCII); a stale note only on a line of a UDP reply;
#: * an address whose value lies past the end of its record: scamper copies
#:   it from beyond its buffer.
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\n"


def _garbage_inserted(r: bytes, o: bytes) -> bool:
    """True if line ``r`` is line ``o`` with runs inserted that each hold a non-printable byte."""
    ops = difflib.SequenceMatcher(None, r, o, autojunk=False).get_opcodes()
    return all(tag == "equal" or (tag == "delete" and r[i1:i2].translate(None, _PRINTABLE))
               for tag, i1, i2, _, _ in ops) and any(tag == "delete" for tag, *_ in ops)


def _udp_reply_lines(data: bytes) -> set:
    """``(trace number, TTL)`` of the text lines showing a UDP reply (see above)."""
    from ixpscamper.warts import Trace, WartsError, iter_records
    out = set()
    n = 0
    try:
        for rec in iter_records(io.BytesIO(data), like="sc_warts2text"):
            if type(rec) is Trace:
                n += 1
                out |= {(n, h.probe_ttl) for h in rec.hops
                        if h.flags & 0x60 == 0x40}
    except WartsError:
        pass
    return out


def _stale_note(r: bytes, o: bytes, where, udp: set) -> bool:
    return where in udp and r.startswith(o) and o.endswith(b" ms") and r[len(o):len(o) + 2] in (
        b" !", b" [")


def undefined_output(real: bytes, ours: bytes, data: bytes = b"") -> bool:
    """True if ``real`` differs from ``ours`` only by memory scamper never wrote (see above).

    ``data``, the file, tells which text lines are UDP replies.
    """
    rl, ol = real.split(b"\n"), ours.split(b"\n")
    if len(rl) != len(ol):
        return False
    udp = None
    trace = 0
    for r, o in zip(rl, ol):
        if o.startswith(b"traceroute "):
            trace += 1
        if r == o or _garbage_inserted(r, o):
            continue
        if udp is None:
            udp = _udp_reply_lines(data)
        try:
            ttl = int(o[:3])
        except ValueError:
            return False
        if not _stale_note(r, o, (trace, ttl), udp):
            return False
    return real != ours


UNDEFINED = "scamper printed uninitialised memory"


def judge(real, ours, data: bytes = b"") -> str | None:
    """None when ours behaves as required given the real tool's outcome, else why not.

    :data:`UNDEFINED` when the real tool's output cannot be reproduced;
    ``data`` is the file both read.
    """
    rrc, rout, rerr = real
    orc, oout, oerr = ours
    # lines naming a record the tool prints nothing for (our CLI never drops
    # one silently) are not errors; they make the exit status 3
    lines = oerr.splitlines(keepends=True)
    notes = [ln for ln in lines if ln.endswith(b" record not printed\n")]
    oerr = b"".join(ln for ln in lines if ln not in notes)
    if notes and orc == 3:
        orc = 0
    if b"Traceback" in oerr or oerr.count(b"\n") > 1:
        return "traceback or more than one error line"
    if rrc < 0:  # the real tool crashed: nothing to compare with
        return None
    if oout != rout and undefined_output(rout, oout, data):
        return UNDEFINED
    if b"address runs past the record" in oerr and rout.startswith(oout):
        # an address value that ends past the record: scamper copies it from
        # beyond its buffer (whatever the heap holds there); ours stops there
        return UNDEFINED
    if rrc == 0 and not rerr:
        if orc != 0 or oerr:
            return "real accepts, ours complains"
        if oout != rout:
            return "real accepts, stdout differs"
        return None
    if orc == 0 or not oerr:
        return "real complains, ours accepts"
    if oout != rout:
        return "real complains, stdout differs"
    return None


#: JSON "type"s our sc_warts2json prints as scamper 2026's does, where
#: 20211212's steps over the record (damage can turn a record into one)
TYPES_2026 = (b'{"type":"owamp"', b'{"type":"host"', b'{"type":"neighbourdisc"',
              b'{"type":"udpprobe"')
REAL_2026 = Path(__file__).resolve().parents[2] / "shared" / "scamper-2026" / "bin" / "sc_warts2json"


def _judge_2026_lines(real, ours, data: bytes, path: str, why: str, outcomes) -> str:
    """Re-judge a JSON mismatch without our lines for records of the types
    20211212 skips and we print like 2026: each such line must be one
    scamper 2026's sc_warts2json prints for the same file (when it is here)."""
    orc, oout, oerr = ours
    lines = oout.splitlines(keepends=True)
    extra = [ln for ln in lines if ln.startswith(TYPES_2026)]
    if not extra:
        return why
    rest = judge(real, (orc, b"".join(ln for ln in lines if ln not in extra), oerr), data)
    if rest is not None:
        return why
    if REAL_2026.exists():
        env = {**ENV, "LD_LIBRARY_PATH": str(REAL_2026.parents[1] / "lib")}
        r26 = subprocess.run([str(REAL_2026), path], capture_output=True, env=env, timeout=30)
        if not set(extra) <= set(r26.stdout.splitlines(keepends=True)):
            return why + " (and our 2026-type lines are not scamper 2026's)"
    if outcomes is not None:
        outcomes["json 2026-type lines"] += 1
    return None


def check_seed(seed: int, tmpdir: str, outcomes=None) -> list[tuple[str, str]]:
    """Run case ``seed`` through both tool pairs; returns ``[(kind, problem), ...]``.

    ``outcomes`` (a Counter), if given, counts how the real sc_warts2text ended
    and how many outputs were :data:`UNDEFINED`.
    """
    name, data = case_bytes(seed)
    path = os.path.join(tmpdir, f"case-{seed}.warts")
    with open(path, "wb") as f:
        f.write(data)
    problems = []
    try:
        for kind in ("text", "json"):
            real = run_real(kind, path)
            if outcomes is not None and kind == "text":
                outcomes["crash" if real[0] < 0 else ("complains" if real[2] else "accepts")] += 1
            ours = run_ours(kind, path)
            why = judge(real, ours, data)
            if why is not None and kind == "json":
                why = _judge_2026_lines(real, ours, data, path, why, outcomes)
            if why is not None and why != UNDEFINED and run_real(kind, path) != real:
                # the real tool itself printed something else the second time:
                # its output holds memory it never wrote (seen: garbage after a
                # link-layer hop's RTT that happens to be printable)
                why = UNDEFINED
            if why == UNDEFINED:
                if outcomes is not None:
                    outcomes[f"{kind} undefined"] += 1
                continue
            if why is not None:
                problems.append((kind, why))
    finally:
        os.unlink(path)
    return problems


@requires_tool("sc_warts2text")
@requires_tool("sc_warts2json")
def test_differential_fixed_seeds(tmp_path):
    t0 = time.monotonic()
    bad = []
    done = 0
    for seed in CI_SEEDS:
        for kind, why in check_seed(seed, str(tmp_path)):
            bad.append(f"seed {seed} ({case_bytes(seed)[0]}) {kind}: {why}")
        done += 1
        if time.monotonic() - t0 > CI_BUDGET_S:
            break
    # a loaded machine may cut the run short; it must still have covered a good share
    assert done >= 500, f"only {done} cases in {CI_BUDGET_S} s"
    assert not bad, "\n".join(bad[:20]) + f"\n({len(bad)} problems in {done} cases)"


def _main(argv: list[str]) -> int:
    import argparse
    import collections

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--show", type=int, default=3, help="seeds to list per problem class")
    a = ap.parse_args(argv)
    classes: dict = collections.defaultdict(list)
    nbad = 0
    outcomes = collections.Counter()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        for seed in range(a.first, a.first + a.cases):
            probs = check_seed(seed, d, outcomes)
            if probs:
                nbad += 1
            for kind, why in probs:
                classes[(kind, why)].append(seed)
    dt = time.monotonic() - t0
    print(f"{a.cases} cases (seeds {a.first}..{a.first + a.cases - 1}) in {dt:.1f} s; "
          f"sc_warts2text: {dict(outcomes)}")
    print(f"cases with a mismatch: {nbad} ({100.0 * nbad / a.cases:.2f}%)")
    for (kind, why), seeds in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(seeds):5d}  {kind}: {why}   e.g. {seeds[:a.show]}")
    return 1 if nbad else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
