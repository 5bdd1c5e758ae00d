"""Operations support shared by the daemons (``twistd ixp-vp``, ``twistd ixp-remoted``).

``config`` (TOML config files driven by the ``usage.Options`` definitions,
SIGHUP reloads), ``logs`` (text/JSON log observers with a live log level),
``metrics`` (a Prometheus endpoint served from the reactor), ``status``
(a JSON status socket and the ``ixp-status`` CLI), ``tlsdiag`` (naming a
TLS / plaintext mismatch from the first bytes of a connection).
"""
