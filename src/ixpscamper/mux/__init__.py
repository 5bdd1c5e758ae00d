"""sc_remoted 2026's mux socket: one unix socket for every VP of a controller.

``frames`` is the wire format (both ends), ``meta`` the VP metadata file,
``server`` the controller's sans-IO state machine for one mux client.
"""
