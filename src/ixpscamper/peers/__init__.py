"""``ixp-peers``: the control plane against the data plane, through every
member router of an exchange.

A route collector on an IXP LAN knows, for a destination, each member's AS
path (BGP).  ``trace -r NEXT_HOP DST`` measures the path that member's
router forwards on.  :mod:`.plan` picks one (peer, destination) pair per
route whose next hop is on the exchange LAN, :mod:`.campaign` traces them
through a VP (resumable), :mod:`.compare` maps the hops to ASes with the
same RIB and classifies each pair, :mod:`.output` writes the table, JSON
lines, CSV, warts and an HTML page; :mod:`.cli` is the command.
"""
