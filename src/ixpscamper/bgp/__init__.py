"""BGP input for ``ixp-peers``: MRT TABLE_DUMP_V2 RIB dumps and lookups.

``ixpscamper.bgp.mrt`` reads the files (:class:`MrtReader`,
:func:`iter_routes`, :func:`decode_attributes`), ``ixpscamper.bgp.rib``
holds the routes (:class:`RIB`, :class:`Route`, :class:`Peer`) and
``ixpscamper.bgp.mrtwrite`` writes test / benchmark dumps.
"""

from ixpscamper.bgp.mrt import MrtError, MrtReader, PathAttributes, iter_routes, decode_attributes
from ixpscamper.bgp.rib import RIB, Peer, Route

__all__ = ["MrtError", "MrtReader", "PathAttributes", "iter_routes", "decode_attributes",
           "RIB", "Peer", "Route"]
