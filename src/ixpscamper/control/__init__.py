"""scamper's text control protocol ("attach" mode), as sans-IO cores.

- :mod:`ixpscamper.control.uu` -- the uuencoding of warts records in DATA blocks
- :mod:`ixpscamper.control.client` -- :class:`ReplyParser` (OK/ERR/MORE/DATA, both dialects)
- :mod:`ixpscamper.control.server` -- :class:`ControlServer` (the VP / scamper side)
"""

__all__ = ["ControlProtocolError", "ReplyParser", "ControlServer"]


def __getattr__(name: str):
    # imported on first use: ixp-attach needs only the client side, and the
    # server side's imports would delay its first command
    if name in ("ControlProtocolError", "ReplyParser"):
        from ixpscamper.control import client
        return getattr(client, name)
    if name == "ControlServer":
        from ixpscamper.control.server import ControlServer
        return ControlServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
