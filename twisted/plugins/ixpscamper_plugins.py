"""twistd plugins for ixpscamper: ``twistd ixp-remoted`` and ``twistd ixp-vp``."""

from twisted.application.service import ServiceMaker

ixpRemoted = ServiceMaker(
    "ixpscamper controller", "ixpscamper.remoted.tap",
    "scamper-compatible remote controller (like sc_remoted)", "ixp-remoted")
ixpVP = ServiceMaker(
    "ixpscamper vantage point", "ixpscamper.vp.tap",
    "scamper-compatible vantage point connecting out to a controller", "ixp-vp")
