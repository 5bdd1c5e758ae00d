"""Text rendering of sting records, as sc_warts2text prints them
(scamper_sting_text.c: two header lines, then a line per data probe that
found a hole).  sc_warts2json 20211212 prints nothing for sting."""

from __future__ import annotations

from ixpscamper.warts.records import Sting

__all__ = ["sting_text"]

_DATA = 0x04
_HOLE = 0x08


def sting_text(s: Sting) -> str:
    """What sc_warts2text prints for ``s``."""
    from ixpscamper.warts.text import addr_str
    # snprintf into a 192-byte buffer
    out = [(f"sting from {addr_str(s.src)}:{s.sport} to {addr_str(s.dst)}:{s.dport}, "
            f"{s.count} probes, {s.mean}ms mean\n"
            f" data-ack count {s.dataackc}, holec {s.holec}\n")[:191]]
    if s.holec > 0:
        txc = 0
        for p in s.pkts:
            if not p.flags & _DATA:
                continue
            txc += 1
            if p.flags & _HOLE:
                out.append(f"  probe {txc} hole\n")
    return "".join(out)
