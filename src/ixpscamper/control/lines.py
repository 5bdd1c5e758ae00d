"""The control protocol's rule for a line, shared by both ends.

A module of its own so that ixp-attach can check its input without
importing the server side (start-up time)."""

from __future__ import annotations

__all__ = ["is_printable_line"]

_PRINTABLE = bytes(range(0x20, 0x7F))


def is_printable_line(line: bytes) -> bool:
    """True when every byte is printable ASCII (C ``isprint``)."""
    return not line.translate(None, _PRINTABLE)
