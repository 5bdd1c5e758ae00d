"""A client API for many VPs at once (see `ixpscamper.client.api`).

``api`` is the Twisted-native API (Deferreds, ``await``), ``blocking`` a
small facade for plain scripts and notebooks; ``channel`` and ``vps`` are
the sans-IO cores both are built on.
"""

from .channel import ChannelGone, ClientTask, CommandRefused, TaskChannel, TaskHalted
from .vps import VP, MuxClientCore, VPGone

__all__ = ["ChannelGone", "ClientTask", "CommandRefused", "TaskChannel", "TaskHalted", "VP",
           "MuxClientCore", "VPGone"]
