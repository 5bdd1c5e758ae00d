"""VP metadata files, in sc_remoted 2026's format (``sc_remoted -m FILE``).

One fact per line: ``<monitor> <attribute> <value>``, where the value is the
rest of the line (a ``place`` may hold spaces).  Attributes are ``asn4``,
``asn6``, ``cc``, ``st``, ``place``, ``latlong``, ``shortname``, ``iata``
(one value each; a later line wins) and ``tag`` (repeatable, in order).
Blank lines and lines starting with ``#`` are skipped.  Attribute names
are matched without regard to case, as sc_remoted does.

Where sc_remoted rejects the whole file on a short line and ignores an
unknown attribute in silence, `load_metadata` names the file and line of
either: a short line is an error (`MetadataError`), an unknown attribute a
warning returned with the result, so an operator's typo is never silent.
"""

from __future__ import annotations

from typing import Iterable

import attrs

from .frames import Attr

__all__ = ["VPMeta", "MetadataError", "parse_metadata", "load_metadata", "META_ATTRS"]

#: metadata attribute name -> VP_UPDATE code, in the order sc_remoted emits them
META_ATTRS = {
    "asn4": Attr.ASN4, "asn6": Attr.ASN6, "latlong": Attr.LATLONG, "cc": Attr.CC,
    "st": Attr.ST, "place": Attr.PLACE, "shortname": Attr.SHORTNAME, "iata": Attr.IATA,
}

MAX_VALUE = 255


class MetadataError(ValueError):
    """A metadata file that cannot be used; the message names file and line."""


@attrs.frozen
class VPMeta:
    """What the metadata file says about one monitor."""

    values: tuple[tuple[str, str], ...] = ()   # (attribute, value), META_ATTRS order
    tags: tuple[str, ...] = ()

    def get(self, attr: str) -> str | None:
        for a, v in self.values:
            if a == attr:
                return v
        return None

    def vp_attrs(self) -> list[tuple[int, str]]:
        """The VP_UPDATE attributes, in the order sc_remoted sends them."""
        out = [(META_ATTRS[a], v) for a, v in self.values]
        out += [(Attr.TAG, t) for t in self.tags]
        return out

    def as_dict(self) -> dict:
        d: dict = dict(self.values)
        if self.tags:
            d["tags"] = list(self.tags)
        return d


def parse_metadata(lines: Iterable[str], source: str = "metadata"
                   ) -> tuple[dict[str, VPMeta], list[str]]:
    """``{monitor: VPMeta}`` and a list of warnings, from the lines of a file.

    Raises `MetadataError` naming ``source`` and the line number of a line
    that does not have three fields or whose value is unusable.
    """
    values: dict[str, dict[str, str]] = {}
    tags: dict[str, list[str]] = {}
    warnings: list[str] = []
    for no, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise MetadataError(f"{source}: line {no}: expected '<monitor> <attribute> <value>'")
        name, attr, value = parts[0], parts[1].lower(), parts[2].strip()
        if any(not c.isprintable() for c in value) or "\0" in value:
            raise MetadataError(f"{source}: line {no}: {attr} value has control characters")
        if len(value) > MAX_VALUE:
            raise MetadataError(f"{source}: line {no}: {attr} value longer than {MAX_VALUE} characters")
        if attr == "tag":
            tags.setdefault(name, []).append(value)
            values.setdefault(name, {})
        elif attr in META_ATTRS:
            values.setdefault(name, {})[attr] = value
        else:
            warnings.append(f"{source}: line {no}: unknown attribute '{attr[:40]}' ignored")
    out = {}
    for name, vals in values.items():
        ordered = tuple((a, vals[a]) for a in META_ATTRS if a in vals)
        out[name] = VPMeta(ordered, tuple(tags.get(name, ())))
    return out, warnings


def load_metadata(path: str) -> tuple[dict[str, VPMeta], list[str]]:
    """Read and parse a metadata file (see `parse_metadata`)."""
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            return parse_metadata(f, path)
    except UnicodeDecodeError as e:
        raise MetadataError(f"{path}: not UTF-8 text (byte offset {e.start})") from None
    except OSError as e:
        raise MetadataError(f"{path}: {e.strerror}") from None
