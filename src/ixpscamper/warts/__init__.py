"""ixpscamper.warts: scamper's binary warts format, and its text/JSON renderings.

- records: the attrs record classes (:class:`Trace`, :class:`Ping`, ...)
- reader:  :func:`iter_records` (streaming, from a binary file object),
  :class:`WartsDecoder` (incremental: ``feed(bytes) -> [records]``),
  :func:`iter_text` (sc_warts2text output straight from a file, fast path),
  :class:`WartsError` (the one exception for bad input; carries ``offset``)
- writer:  :func:`encode_record` and :class:`WartsWriter`, byte-identical to
  scamper 20211212
- text / jsonfmt: :func:`render_text` / :func:`render_json`, byte-identical
  to ``sc_warts2text`` / ``sc_warts2json`` 20211212
"""

from ixpscamper.warts.records import *  # noqa: F401,F403
from ixpscamper.warts.records import __all__ as _records_all
from ixpscamper.warts.reader import (MAX_RECORD_LENGTH, WartsDecoder, WartsError, iter_records,
                                     iter_text, read_records)
from ixpscamper.warts.writer import (WartsEncodeError, WartsWriter, encode_cycle,
                                     encode_cycle_stop, encode_list, encode_record)
from ixpscamper.warts.text import render_text
from ixpscamper.warts.jsonfmt import render_json

__all__ = list(_records_all) + [
    "MAX_RECORD_LENGTH", "WartsDecoder", "WartsError", "iter_records", "iter_text",
    "read_records",
    "WartsEncodeError", "WartsWriter", "encode_cycle", "encode_cycle_stop", "encode_list",
    "encode_record", "render_text", "render_json",
]
