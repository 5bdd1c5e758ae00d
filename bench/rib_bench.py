"""Benchmark the MRT reader / RIB against bgpdump, mrtparse and ftlbgp.

    python3 bench/rib_bench.py [--prefixes 500000] [--peers 20] [--subset 200000]

Generates (once, cached in --dir) a synthetic TABLE_DUMP_V2 RIB with our
writer: PREFIXES prefixes (90 % IPv4) each announced by every one of PEERS
peers (16 with IPv4 and 4 with IPv6 session addresses, some 4-byte ASNs),
AS paths of realistic length (peer AS, 1-4 transit ASes, the origin; 10 %
prepended), IPv6 routes with global + link-local MP_REACH next hops.  Then:

* ``bgpdump -m FILE | wc -l`` (routes/s, the reference; with
  ``MALLOC_TOP_PAD_`` set, see below, and with ``--bgpdump-unpadded`` also
  without);
* our ``MrtReader`` scan alone and a full ``RIB.load`` (routes/s, peak RSS:
  each in its own process);
* mrtparse and ftlbgp (if installed) on the first SUBSET routes only --
  they are too slow for the full file within a minute;
* the prefix index: our per-length dicts vs pytricia vs py-radix (build
  time, 100,000 lookups).

Heavy (about a minute on an idle core and ~1 GiB of RSS): run it by hand.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

from ixpscamper.bgp.mrt import Peer
from ixpscamper.bgp.mrtwrite import encode_attributes, encode_peer_table

REPO = Path(__file__).resolve().parents[1]


def make_peers(n: int) -> list[Peer]:
    peers = []
    for i in range(n):
        asn = 64512 + i if i % 3 else 4200000000 + i  # every third a 4-byte ASN
        if i >= n - max(1, n // 5):
            ip = ipaddress.IPv6Address(f"2001:db8:ffff::{i + 1:x}")
        else:
            ip = ipaddress.IPv4Address(f"198.51.100.{i + 1}")
        peers.append(Peer(index=i, bgp_id=ipaddress.IPv4Address(f"198.51.100.{i + 1}"), ip=ip, asn=asn))
    return peers


def generate(path: Path, nprefixes: int, npeers: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    peers = make_peers(npeers)
    n4 = nprefixes * 9 // 10
    origins = list(range(1000, 61000))
    transits = list(range(100, 400))
    # Entry bytes (entry header + attributes) per (peer, origin, family): a
    # peer's path to an origin is fixed, as in a real RIB, so the number of
    # distinct attribute blobs is bounded (~peers x origins).
    cache: dict[tuple[int, int, int], bytes] = {}

    def entry(p: Peer, origin: int, version: int) -> bytes:
        key = (p.index, origin, version)
        e = cache.get(key)
        if e is None:
            r = random.Random(origin * 1009 + p.index)
            path = [p.asn] + r.sample(transits, r.randint(1, 4)) + [origin]
            if r.random() < 0.1:
                path += [origin] * r.randint(1, 3)
            if version == 4:
                nh = ipaddress.IPv4Address(f"198.51.100.{p.index + 1}")
                blob = encode_attributes([tuple(path)], nh, 4)
            else:
                nh = ipaddress.IPv6Address(f"2001:db8:ffff::{p.index + 1:x}")
                ll = ipaddress.IPv6Address(f"fe80::{p.index + 1:x}")
                blob = encode_attributes([tuple(path)], nh, 6, link_local=ll)
            e = cache[key] = struct.pack(">HIH", p.index, 1400000000, len(blob)) + blob
        return e

    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(encode_peer_table(peers, view="synthetic"))
        seq = 0
        # IPv4: /24s mostly, some /16-/23, in ascending order like a dump.
        nets4 = sorted(rnd.sample(range(1 << 24), n4))
        for net in nets4:
            plen = 24 if rnd.random() < 0.6 else rnd.randint(16, 23)
            _write(f, seq, 4, net << 8, plen, peers, entry, rnd.choice(origins))
            seq += 1
        for i in range(nprefixes - n4):
            net = (0x2001_0db8 << 96) | (i << 80)
            _write(f, seq, 6, net, 48, peers, entry, rnd.choice(origins))
            seq += 1
    os.replace(tmp, path)


def _write(f, seq, version, addr, plen, peers, entry, origin):
    width = 32 if version == 4 else 128
    nb = (plen + 7) // 8
    addr &= ((1 << width) - 1) ^ ((1 << (width - plen)) - 1)
    pbytes = addr.to_bytes(width // 8, "big")[:nb]
    body = b"".join([struct.pack(">IB", seq, plen), pbytes, struct.pack(">H", len(peers))]
                    + [entry(p, origin, version) for p in peers])
    f.write(struct.pack(">IHHI", 1400000000, 13, 2 if version == 4 else 4, len(body)) + body)


_HWM = ("\nprint(next(l.split()[1] for l in open('/proc/self/status') "
        "if l.startswith('VmHWM:')))")


def child(code: str) -> tuple[float, int, str]:
    """Run ``code`` in a fresh python; (seconds, peak RSS KiB, stdout).

    The peak is the child's own VmHWM: ``ru_maxrss`` of a child would count
    the parent's pages the fork copied before the exec."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code + _HWM], capture_output=True, text=True)
    sec = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"child failed ({p.stderr.strip().splitlines()[-1:]}): {code}")
    *out, hwm = p.stdout.strip().splitlines()
    return sec, int(hwm), "\n".join(out)


def bench_trie(path: Path, nlookups: int = 100_000) -> list[tuple[str, float, float]]:
    """Build a v4 prefix index from the file's prefixes three ways; time
    build and lookups."""
    from ixpscamper.bgp.mrt import MrtReader
    prefixes = [(r.network, r.length) for r in MrtReader(path) if r.version == 4]
    rnd = random.Random(2)
    addrs = [rnd.getrandbits(32) for _ in range(nlookups)]
    rows = []
    # Ours: dict per prefix length.
    t = time.perf_counter()
    tables: dict[int, dict[int, int]] = {}
    for i, (net, plen) in enumerate(prefixes):
        tables.setdefault(plen, {})[net] = i
    lengths = sorted(tables, reverse=True)
    tb = time.perf_counter() - t
    t = time.perf_counter()
    hits = 0
    for a in addrs:
        for plen in lengths:
            if tables[plen].get(a >> (32 - plen)) is not None:
                hits += 1
                break
    rows.append(("dict per length (ours)", tb, time.perf_counter() - t))
    try:
        import pytricia
        t = time.perf_counter()
        pyt = pytricia.PyTricia(32)
        for i, (net, plen) in enumerate(prefixes):
            pyt.insert(ipaddress.IPv4Network((net << (32 - plen), plen)), i)
        tb = time.perf_counter() - t
        t = time.perf_counter()
        h2 = 0
        for a in addrs:
            if pyt.get(ipaddress.IPv4Address(a)) is not None:
                h2 += 1
        rows.append(("pytricia (IPv4Network keys)", tb, time.perf_counter() - t))
        assert h2 == hits, (h2, hits)
    except ImportError:
        pass
    try:
        import radix
        t = time.perf_counter()
        rt = radix.Radix()
        for i, (net, plen) in enumerate(prefixes):
            rt.add(network=str(ipaddress.IPv4Address(net << (32 - plen))), masklen=plen).data["i"] = i
        tb = time.perf_counter() - t
        t = time.perf_counter()
        h3 = 0
        for a in addrs:
            if rt.search_best(packed=a.to_bytes(4, "big")) is not None:
                h3 += 1
        rows.append(("py-radix", tb, time.perf_counter() - t))
        assert h3 == hits, (h3, hits)
    except ImportError:
        pass
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefixes", type=int, default=500_000)
    ap.add_argument("--peers", type=int, default=20)
    ap.add_argument("--subset", type=int, default=200_000, help="routes for mrtparse/ftlbgp")
    ap.add_argument("--dir", default="/tmp/ixp_rib_bench")
    ap.add_argument("--bgpdump-unpadded", action="store_true",
                    help="also time bgpdump with glibc's default heap trimming (minutes)")
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"synth-{args.prefixes}x{args.peers}.mrt"
    if not path.exists():
        t = time.perf_counter()
        generate(path, args.prefixes, args.peers)
        print(f"generated {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    routes = args.prefixes * args.peers
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs; {routes:,} routes")
    rows = []  # (tool, routes, seconds, peak RSS KiB or None, note)

    if shutil.which("bgpdump"):
        # bgpdump 1.6 churns brk() twice per record on some files (this
        # synthetic one: 90 % of its time in the kernel); a glibc top pad
        # removes that, so the faster of the two runs is the reference.
        runs = [({"MALLOC_TOP_PAD_": str(64 << 20)}, "full, MALLOC_TOP_PAD_=64M")]
        if args.bgpdump_unpadded:
            runs.insert(0, ({}, "full"))
        for env, note in runs:
            t = time.perf_counter()
            out = subprocess.run(f"bgpdump -m {path} 2>/dev/null | wc -l", shell=True,
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, **env}).stdout
            rows.append(("bgpdump -m | wc -l", int(out), time.perf_counter() - t, None, note))

    sys_path = f"import sys; sys.path.insert(0, {str(REPO / 'src')!r});"
    sec, rss, out = child(sys_path + "from ixpscamper.bgp.mrt import MrtReader\n"
                          f"r = MrtReader({str(path)!r})\n"
                          "print(sum(len(x.entries) for x in r))")
    rows.append(("ixpscamper MrtReader scan", int(out), sec, rss, "full, attrs undecoded"))
    sec, rss, out = child(sys_path + "from ixpscamper.bgp.rib import RIB\n"
                          f"rib = RIB.load({str(path)!r})\n"
                          "print(rib.route_count, len(rib._blobs), next(l.split()[1] for l in "
                          "open('/proc/self/status') if l.startswith('VmRSS:')))")
    nroutes, nblobs, steady = map(int, out.split())
    rows.append(("ixpscamper RIB.load", nroutes, sec, rss,
                 f"full, {nblobs:,} distinct attr blobs, RSS after load {steady / 1024:.0f} MiB"))
    sec, rss, out = child(sys_path + "import itertools\nfrom ixpscamper.bgp.mrt import iter_routes\n"
                          f"print(sum(1 for _ in itertools.islice(iter_routes({str(path)!r}), {args.subset})))")
    rows.append(("ixpscamper iter_routes (all decoded)", int(out), sec, rss, "subset"))

    try:
        import mrtparse  # noqa: F401
        sec, rss, out = child(
            "import mrtparse\nn = 0\n"
            f"for e in mrtparse.Reader({str(path)!r}):\n"
            "    n += len(e.data.get('rib_entries', ()))\n"
            f"    if n >= {args.subset}: break\n"
            "print(n)")
        rows.append(("mrtparse 2.2.0", int(out), sec, rss, "subset"))
    except ImportError:
        rows.append(("mrtparse", 0, 0.0, None, "not installed"))
    try:
        import ftlbgp  # noqa: F401
        sec, rss, out = child(
            "import ftlbgp\nn = 0\n"
            "with ftlbgp.MrtParser() as parse:\n"
            f"    for r in parse({str(path)!r}):\n"
            "        n += 1\n"
            f"        if n >= {args.subset}: break\n"
            "print(n)")
        rows.append(("ftlbgp 1.0.5", int(out), sec, rss, "subset"))
    except ImportError:
        rows.append(("ftlbgp", 0, 0.0, None, "not installed"))

    ref = max((r[1] / r[2] for r in rows if r[0].startswith("bgpdump")), default=None)
    print(f"\n{'tool':38} {'routes':>11} {'s':>7} {'routes/s':>10} {'x bgpdump':>9} {'peak RSS':>9}  note")
    for tool, n, sec, rss, note in rows:
        rate = n / sec if sec else 0
        rel = f"{rate / ref:.2f}" if ref and sec else "-"
        mem = f"{rss / 1024:.0f} MiB" if rss else "-"
        print(f"{tool:38} {n:>11,} {sec:>7.1f} {rate:>10,.0f} {rel:>9} {mem:>9}  {note}")

    print(f"\nprefix index over the file's IPv4 prefixes (build / 100,000 lookups):")
    for name, tb, tl in bench_trie(path):
        print(f"  {name:30} build {tb:6.2f} s   lookups {tl:6.2f} s")


if __name__ == "__main__":
    main()
