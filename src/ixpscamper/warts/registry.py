"""Record types whose codec lives in its own module (tbit, host, owamp, ...).

The reader, writer and renderers know trace, ping, tracelb and dealias
themselves; a further record type plugs in here with :func:`register`, so
its decoder, encoder and renderers sit together in one module named for
it.  The modules in :data:`PLUGINS` are imported the first time a record
type or class is looked up that the core does not handle, which keeps
them off the start-up path of tools that never meet such a record.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable, Optional

import attrs

__all__ = ["RecordCodec", "register", "codec_for_type", "codec_for_class", "PLUGINS"]

#: modules that call :func:`register` when imported
PLUGINS: tuple[str, ...] = (
    "ixpscamper.warts.tbit",
    "ixpscamper.warts.host",
    "ixpscamper.warts.owamp",
    "ixpscamper.warts.misc_writers",
)


@attrs.frozen
class RecordCodec:
    """How one warts record type is read, written and printed.

    ``decode(resolver, body)`` gets the reader's per-file state (lists and
    cycles by id, see :class:`ixpscamper.warts.reader._Resolver`) and the
    record body; it raises the reader's ``_Bad`` (or ``struct.error`` /
    ``IndexError`` / ``ValueError``) for malformed input, which the reader
    turns into a :class:`~ixpscamper.warts.reader.WartsError` with the
    record's offset.  ``encode(rec, list_id, cycle_id)`` returns the record
    *body*.  ``text`` / ``json`` return what ``sc_warts2text`` /
    ``sc_warts2json`` print for a record ("" for nothing); ``printed_by``
    names the tools (``"sc_warts2text"``, ``"sc_warts2json"``) whose reading
    of the type the renderers follow.
    """

    rtype: int
    cls: type
    decode: Optional[Callable[[Any, Any], Any]] = None
    encode: Optional[Callable[[Any, int, int], bytes]] = None
    text: Optional[Callable[[Any], str]] = None
    json: Optional[Callable[[Any], str]] = None
    printed_by: frozenset = frozenset()


_BY_TYPE: dict[int, RecordCodec] = {}
_BY_CLASS: dict[type, RecordCodec] = {}
_loaded = False


def register(codec: RecordCodec) -> None:
    """Make ``codec`` known to the reader, the writer and the renderers.

    Registering a second codec for the same type or class replaces the
    first for that key (a module's encoders can be registered apart from
    its decoder).
    """
    if codec.decode is not None:
        _BY_TYPE[codec.rtype] = codec
    _BY_CLASS[codec.cls] = codec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in PLUGINS:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def codec_for_type(rtype: int) -> Optional[RecordCodec]:
    """The registered decoder of record type ``rtype``, or None."""
    _load()
    return _BY_TYPE.get(rtype)


def codec_for_class(cls: type) -> Optional[RecordCodec]:
    """The registered codec of record class ``cls``, or None."""
    _load()
    return _BY_CLASS.get(cls)
