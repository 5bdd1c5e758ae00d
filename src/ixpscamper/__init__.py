"""ixpscamper: a scamper-compatible measurement system for route collectors.

Subpackages and modules, one concept each:

- ``ixpscamper.warts``: the warts binary codec and its text/JSON renderers.
- ``ixpscamper.control``: the text control protocol (attach, OK/ERR/MORE/DATA).
- ``ixpscamper.remote``: the remote protocol between VP and controller.
- ``ixpscamper.commands``: scamper's ``ping`` / ``trace`` command language.
- ``ixpscamper.prober``: ping and traceroute in the Twisted reactor.
- ``ixpscamper.remoted``: the controller daemon (``twistd ixp-remoted``).
- ``ixpscamper.vp``: the vantage point daemon (``twistd ixp-vp``).
- ``ixpscamper.attach``: the attach client (``ixp-attach``).
- ``ixpscamper.lab``: a network-namespace IXP lab for tests and the demo.
"""

__version__ = "0.1.0"
