"""ixpscamper.prober: ping and traceroute in the Twisted reactor.

``Prober(reactor, pps=20, window=0)``; ``task = prober.submit(options)``
with options from :func:`ixpscamper.commands.parse_command`;
``task.deferred`` fires with the warts ``Trace`` / ``Ping`` record (or
fails with :class:`ProberError` if the task could not be set up);
``task.halt()``.  Raw-socket permission problems raise
:class:`PermissionProblem`, whose message names CAP_NET_RAW.

Modules: ``packets`` (build/dissect, sans-IO), ``trace`` / ``ping`` (the
state machines, sans-IO), ``scheduler`` (Prober, Task: pps, window, reply
demultiplexing), ``net`` (sockets, routes, ARP/ND), ``specs`` (commands to
specs; ``unsupported()``), ``simnet`` (a simulated network + Clock for tests
of the prober and of code that uses it).
"""

from .net import Network, PermissionProblem, ProberError
from .scheduler import Prober, Task

__all__ = ["Prober", "Task", "ProberError", "PermissionProblem", "Network"]
