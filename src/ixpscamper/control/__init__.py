"""scamper's text control protocol ("attach" mode), as sans-IO cores.

- :mod:`ixpscamper.control.uu` -- the uuencoding of warts records in DATA blocks
- :mod:`ixpscamper.control.client` -- :class:`ReplyParser` (OK/ERR/MORE/DATA, both dialects)
- :mod:`ixpscamper.control.server` -- :class:`ControlServer` (the VP / scamper side)
"""

from ixpscamper.control.client import ControlProtocolError, ReplyParser
from ixpscamper.control.server import ControlServer

__all__ = ["ControlProtocolError", "ReplyParser", "ControlServer"]
