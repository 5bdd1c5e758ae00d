"""Judging two dealias records of one command: ours against scamper's.

Both programs probe the same lab, but the routers' IP-IDs are drawn afresh
for each run (Linux: a counter per address pair, started at random and
bumped by a random amount).  Two counters fall within the fudge of each
other about once in 160 draws, and then the program that saw it rightly
goes on probing a pair the other gave up on.  These functions tell that
apart from a real difference: every divergence must be one that the
diverging run's own replies justify.

The records are sc_warts2json's dicts; ``shape`` turns a probe into what is
compared: (definition, round, probe IP-ID, replies) with the replies'
source, protocol, ICMP type and code, quoted TTL and TCP flags (not their
IP-IDs, which are the routers' own).
"""

from __future__ import annotations

FUDGE = 200  # scamper's default dealias -f


def probe_shape(p: dict) -> tuple:
    return (p["probedef_id"], p["seq"], p.get("ipid"),
            [(x["src"], x["proto"], x.get("icmp_type"), x.get("icmp_code"), x.get("icmp_q_ttl"),
              x.get("tcp_flags")) for x in p.get("replies", [])])


def replies_in_sequence(probes: list[dict], fudge: int = FUDGE) -> bool:
    """True when the first reply IP-IDs of ``probes`` run in sequence within
    ``fudge`` (as sent or byte-swapped): what makes ally, radargun and
    prefixscan go on probing."""
    ids = [p["replies"][0].get("ipid") for p in probes if p.get("replies")]
    if len(ids) < 2 or None in ids:
        return False

    def inseq(vals):
        return all(0 < (b - a) % 65536 <= fudge for a, b in zip(vals, vals[1:]))
    return inseq(ids) or inseq([int.from_bytes(v.to_bytes(2, "big"), "little") for v in ids])


def judge_prefix(ours: list[dict], theirs: list[dict]) -> None:
    """ally, radargun, bump: a run that saw IP-IDs in sequence by chance
    probes on where the other stopped.  The shorter run must be the start of
    the longer; at the point the shorter stopped, the longer must have seen
    its replies in sequence and the shorter not."""
    o, t = [probe_shape(p) for p in ours], [probe_shape(p) for p in theirs]
    if len(o) == len(t):
        assert o == t
        return
    n = min(len(o), len(t))
    longer, shorter = (ours, theirs) if len(o) > n else (theirs, ours)
    assert o[:n] == t[:n]
    assert replies_in_sequence(longer[:n]), (o, t)
    assert not replies_in_sequence(shorter[:n]), (o, t)


def _episodes(probes: list[dict]) -> list[list[dict]]:
    """A prefixscan's probes split where each candidate is first probed."""
    eps: list[list[dict]] = [[]]
    seen: set[int] = set()
    for p in probes:
        d = p["probedef_id"]
        if d != 0 and d not in seen:
            seen.add(d)
            eps.append([])
        eps[-1].append(p)
    return eps


def _rounds_count_up(probes: list[dict]) -> None:
    """Each definition's rounds go 0, 1, 2, ... in the order sent (A's over
    the whole run, a candidate's from when it is first probed)."""
    nxt: dict[int, int] = {}
    for p in probes:
        d = p["probedef_id"]
        assert p["seq"] == nxt.get(d, 0), (d, p["seq"], nxt.get(d, 0))
        nxt[d] = p["seq"] + 1


def judge_prefixscan(ours: list[dict], theirs: list[dict]) -> None:
    """prefixscan: a run that saw A and a candidate in sequence by chance
    probes that pair on, then moves to the same next candidate as the other.

    So the runs must probe the same candidates in the same order; for each,
    the shorter episode must be the start of the longer, and where they part
    the longer must have seen its series (A's reply before the episode, if A
    was probed last, and the episode's replies so far) in sequence and the
    shorter not.  A probe's own IP-ID counts the probes sent, so the two runs
    must agree on it probe for probe as far as the shorter goes; a round is
    a count per definition, checked within each run, since a run that probed
    A once more numbers A's later rounds one higher.
    """
    if [probe_shape(p) for p in ours] == [probe_shape(p) for p in theirs]:
        return
    n = min(len(ours), len(theirs))
    assert [p.get("ipid") for p in ours[:n]] == [p.get("ipid") for p in theirs[:n]]
    _rounds_count_up(ours)
    _rounds_count_up(theirs)
    eo, et = _episodes(ours), _episodes(theirs)
    assert [e[0]["probedef_id"] for e in eo[1:]] == [e[0]["probedef_id"] for e in et[1:]]

    def key(p: dict) -> tuple:
        d, _seq, _ipid, replies = probe_shape(p)
        return d, replies

    def lead(eps: list[list[dict]], i: int) -> list[dict]:
        # A's reply just before a candidate's first probe opens its series
        return [p for p in eps[i - 1][-1:] if p["probedef_id"] == 0] if i else []

    for i, (a, b) in enumerate(zip(eo, et)):
        ka, kb = [key(p) for p in a], [key(p) for p in b]
        if ka == kb:
            continue
        m = min(len(ka), len(kb))
        assert ka[:m] == kb[:m], (i, ka, kb)
        (longer, leps), (shorter, seps) = ((a, eo), (b, et)) if len(a) > m else ((b, et), (a, eo))
        assert replies_in_sequence(lead(leps, i) + longer[:m]), (i, ka, kb)
        assert not replies_in_sequence(lead(seps, i) + shorter[:m]), (i, ka, kb)
