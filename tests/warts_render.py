"""What our renderers print for a warts byte string, as the CLIs print it,
and the list/cycle ids each record of a file refers to (shared by the
repertoire, tbit and host tests)."""

from __future__ import annotations

import io
import os
import time

from warts_misc_strategies import raw_records

from ixpscamper.warts.jsonfmt import render_json
from ixpscamper.warts.reader import iter_records, iter_text, read_records


def _utc(fn):
    """``fn()`` with TZ=UTC (the fixtures' JSON was made so)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        return fn()
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def ours_text(data: bytes) -> str:
    return "".join(iter_text(io.BytesIO(data), like="sc_warts2text"))


def ours_json(data: bytes) -> str:
    return _utc(lambda: "".join(render_json(r) for r in
                                iter_records(io.BytesIO(data), like="sc_warts2json")))


def _with_ids(data: bytes):
    """``(type, raw record, record, list id, cycle id)`` for each record."""
    lists, cycles = {}, {}
    for (t, raw), rec in zip(raw_records(data), read_records(data)):
        if t == 1:
            lists[id(rec)] = int.from_bytes(raw[8:12], "big")
        elif t in (2, 3):
            cycles[id(rec)] = int.from_bytes(raw[8:12], "big")
        yield t, raw, rec, lists.get(id(getattr(rec, "list", None)), 0), \
            cycles.get(id(getattr(rec, "cycle", None)), 0)
