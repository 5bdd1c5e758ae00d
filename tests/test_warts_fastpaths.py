"""The reader's text fast paths agree with the general path (issue 12).

``iter_text`` renders traces, pings, tracelbs and dealias records
straight from their bytes, without building records; the general path decodes each
record and renders it with ``render_text``.  On every fixture the real
tools wrote, and on seeded damage of them, both must print the same text,
name the same unprinted records and stop with the same error at the same
offset.  (The general path is the one checked against the real tools: see
test_warts_repertoire.py and test_warts_resilience.py.)
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from warts_mutate import mutate  # noqa: E402

from ixpscamper.warts import (CycleStart, CycleStop, WartsError, WartsList,  # noqa: E402
                              iter_records, iter_text, render_text)
from ixpscamper.warts.reader import iter_records_at, record_name  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
BLOBS = {p.stem: p.read_bytes() for sub in ("scamper-repertoire", "scamper-20211212")
         for p in sorted((FIXTURES / sub).glob("*.warts"))}
#: every fixture: each holds a record type with a fast path
FAST = sorted(BLOBS)


def _fast(data: bytes):
    out, names = [], []
    try:
        for s in iter_text(io.BytesIO(data), like="sc_warts2text",
                           unprinted_name=lambda off, name: names.append((off, name))):
            out.append(s)
    except WartsError as e:
        return "".join(out), names, (e.offset, e.reason)
    return "".join(out), names, None


def _general(data: bytes):
    out, names = [], []
    try:
        for off, rec in iter_records_at(io.BytesIO(data), like="sc_warts2text"):
            s = render_text(rec)
            if s:
                out.append(s)
            elif not isinstance(rec, (WartsList, CycleStart, CycleStop)):
                names.append((off, record_name(rec)))
    except WartsError as e:
        return "".join(out), names, (e.offset, e.reason)
    return "".join(out), names, None


@pytest.mark.parametrize("name", FAST)
def test_fast_text_equals_general_on_fixtures(name):
    assert _fast(BLOBS[name]) == _general(BLOBS[name])


def test_fast_text_equals_general_on_damage():
    # every seed damages one fixture; 1,500 cases take a few seconds
    bad = []
    for seed in range(1500):
        name = FAST[seed % len(FAST)]
        data, _ = mutate(BLOBS[name], seed)
        if _fast(data) != _general(data):
            bad.append(f"seed {seed} ({name})")
    assert not bad, ", ".join(bad[:20])


def test_unprinted_name_matches_unprinted_record():
    """``unprinted_name`` names what ``unprinted`` would be handed."""
    data = BLOBS["mixed"]
    by_rec, by_name = [], []
    "".join(iter_text(io.BytesIO(data), like="sc_warts2text",
                      unprinted=lambda off, rec: by_rec.append((off, record_name(rec)))))
    "".join(iter_text(io.BytesIO(data), like="sc_warts2text",
                      unprinted_name=lambda off, name: by_name.append((off, name))))
    assert by_rec == by_name
    assert any("mercator" in n for _, n in by_name)  # the case the fast path spares
    assert len(list(iter_records(io.BytesIO(data)))) > len(by_name)
