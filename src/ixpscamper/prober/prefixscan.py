"""Pieces of ``dealias -m prefixscan`` that need no state: the scan order and
the reply series (after ``scamper_dealias_do.c`` 20211212).

prefixscan looks for an alias of address A inside the prefix B/len: it
probes A, then the candidates of B's prefix one at a time, alternating with
A, until ``replyc`` replies in a row have IP-IDs in sequence (ALIASES, the
candidate is ``ab``) or the candidates run out (NONE).
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Optional, Sequence

from ..warts.records import DealiasProbe

__all__ = ["scan_order", "reply_series"]

# the order of the other three addresses of B's /30, by B's last two bits
_SLASH30 = ((1, 2, 3), (2, 0, 3), (1, 0, 3), (2, 1, 0))


def scan_order(a: ipaddress.IPv4Address, b: ipaddress.IPv4Address, prefixlen: int,
               excludes: Iterable[ipaddress.IPv4Address] = ()) -> list[ipaddress.IPv4Address]:
    """The candidates in the order scamper probes them.

    /31: B's other half.  Otherwise the rest of B's /30 in a fixed order,
    then, for each shorter prefix down to ``prefixlen``, the half of it that
    does not hold B, lowest address first.  A and the excluded addresses are
    left out (scamper keeps the network and broadcast addresses).
    """
    skip = {a, *excludes}
    bv = int(b)
    out: list[int] = []
    if prefixlen == 31:
        out.append(bv ^ 1)
    else:
        net = bv & ~0x3
        out.extend(net | h for h in _SLASH30[bv & 0x3])
        mask = 0x3
        for pre in range(29, prefixlen - 1, -1):
            bit = 1 << (31 - pre)
            mask |= bit
            net = bv & ~mask & 0xFFFFFFFF
            half = 0 if bv & bit else bit
            out.extend(net | half | h for h in range(bit))
    return [x for x in map(ipaddress.IPv4Address, out) if x not in skip]


def reply_series(probes: Sequence[DealiasProbe], seq: int, current_id: int) -> Optional[list[DealiasProbe]]:
    """The ``seq`` probes whose replies form the series ending with the last probe.

    Walking back from the last probe: one answered probe per block of
    probes to the same definition, the blocks alternating between A (id 0)
    and ``current_id``, the candidate probed now.  None if the history does
    not hold such a series (scamper would fail the measurement there).
    """
    chain: list[Optional[DealiasProbe]] = [None] * seq
    chain[-1] = probes[-1]
    p = len(probes) - 2
    defid = probes[-1].probedef.id
    while p >= 0 and probes[p].probedef.id == defid:
        p -= 1
    for s in range(seq - 1, 0, -1):
        if p < 0:
            return None
        defid = current_id if chain[s].probedef.id == 0 else 0  # type: ignore[union-attr]
        while p >= 0:
            if probes[p].probedef.id != defid:
                return None
            if not probes[p].replies:
                p -= 1
                continue
            chain[s - 1] = probes[p]
            while p >= 0 and probes[p].probedef.id == defid:
                p -= 1
            break
        if chain[s - 1] is None:
            return None
    return chain  # type: ignore[return-value]
