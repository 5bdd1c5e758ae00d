"""The prober: many ping/trace tasks at once under a packets-per-second limit.

* Transmit slots are handed out one at a time, ``pps`` per second for the
  whole prober (scamper's ``-p``), on scamper 20211212's schedule (see
  :class:`Prober`).  Every task belongs to a
  *group* (the VP: the attached source that sent the command; ``None``
  for all tasks submitted without one) with a weight (scamper's source
  priority).  Slots are shared between the groups that want one by
  weighted fair queueing (:class:`~ixpscamper.prober.fairshare.FairShare`),
  and within a group go in the order its tasks asked: one user's long
  queue never holds back another user's first probe by more than about
  one slot per waiting group.
* ``window`` (0 = unlimited) caps how many tasks run at once; the rest
  wait, and are started in the same fair order between groups.
* Every task gets its own source port / ICMP id, and replies are
  demultiplexed by (family, protocol, port) — the port the probe came from,
  as read from the reply or from the probe an ICMP error quotes — so two
  traces to the same destination never see each other's replies.  A task
  whose ports (given with ``-s``/``-F``) are in use by a running task waits.
"""

from __future__ import annotations

import collections
import ipaddress
import os
import random
from typing import Callable, Hashable, Optional

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..warts.records import PingMethod
from . import packets
from .fairshare import FairShare
from .net import RTN_UNICAST, Network, ProberError, SOURCE_DL, SOURCE_SOCK, now_ns as wall_ns
from .ping import ICMP_PING_METHODS, TCP_PING_METHODS, PingRun
from .specs import check_family, ping_spec, trace_spec, tracelb_spec, tracelb_uses_dl, unsupported
from .trace import ICMP_METHODS, TCP_METHODS, TraceRun
from .dealias import DealiasRun
from .tracelb import TracelbRun

__all__ = ["Prober", "Task"]

log = Logger()

Key = tuple[int, str, int]


class Task:
    """One submitted measurement.

    ``deferred`` fires with the warts :class:`Trace` / :class:`Ping` (a task
    that failed while running ends with stop reason ERROR), or fails with
    :class:`ProberError` when the task could not be set up at all.
    ``error`` holds a one-line reason when the record's stop reason is ERROR.
    """

    def __init__(self, prober: "Prober", options, group: Hashable = None, weight: int = 1):
        self.prober = prober
        self.options = options
        self.group = group
        self.weight = weight
        self.deferred: defer.Deferred = defer.Deferred()
        self.run: Optional[TraceRun | PingRun | TracelbRun | DealiasRun] = None
        self.keys: list[Key] = []
        self.family = options.dst.version
        self.ifindex = 0
        self.mac: Optional[bytes] = None
        self.use_dl = False
        self.dl_tcp = False  # dealias: TCP replies come off the datalink (ICMP as use_dl says)
        self.error: Optional[str] = None
        self.state = "waiting"  # waiting, resolving, running, done
        self._dl_seen: collections.OrderedDict = collections.OrderedDict()
        self._reserved: list[tuple[int, int, int]] = []
        self._listening_dl = False
        self._queued = False  # in the prober's send queue

    def halt(self) -> None:
        """Stop the task now; its deferred fires with what it has (stop reason HALTED)."""
        self.prober._halt(self)

    # -- the TaskIO interface the state machines use ------------------------

    @property
    def clock(self):
        return self.prober.reactor

    def now_ns(self) -> int:
        return self.prober.now_ns()

    def request_send(self) -> None:
        self.prober._request_send(self)

    def transmit(self, pkt: bytes, dst=None) -> int:
        """Send ``pkt`` to the task's destination (or ``dst``: dealias probes several)."""
        net = self.prober.network
        if self.mac is not None:
            return net.send_dl(self.ifindex, self.mac, self.family, pkt)
        return net.send_ip(self.family, str(self.options.dst if dst is None else dst), pkt)

    def finished(self) -> None:
        self.prober._finished(self)

    def claim_port(self, port: int, kind: Optional[str] = None) -> None:
        """A tracelb varying the source port uses ``port`` now: route its replies here.

        ``kind`` ("udp", "tcp", "icmp"): the protocol of that port, when it
        is not the task's first one (a dealias mixing probedef methods).

        A port another task holds stays with that task (its replies are
        not ours to see); this flow's replies are then lost, as they would
        be if the flow id collided with another scamper task's port.
        """
        if kind is None:
            self.prober._claim(self, port)
        else:
            self.prober._claim_key(self, (self.family, kind, port & 0xFFFF))

    # -- replies ----------------------------------------------------------------

    def deliver(self, rep: packets.Reply, rx_ns: int, source: str, ifindex: int) -> None:
        run = self.run
        if run is None or run.done:
            return
        if isinstance(run, PingRun):
            if source == SOURCE_DL and ifindex != self.ifindex:
                return
            run.on_reply(rep, rx_ns, source == SOURCE_DL)
            return
        if self.dl_tcp and rep.proto == packets.PROTO_TCP:
            if source == SOURCE_DL and ifindex == self.ifindex:
                run.on_reply(rep, rx_ns, True)
            return
        if not self.use_dl:
            if source == SOURCE_SOCK:
                run.on_reply(rep, rx_ns, False)
            return
        if source == SOURCE_DL:
            if ifindex != self.ifindex:
                return
            if rep.is_icmp:
                self._dl_seen[_fingerprint(rep)] = True
                while len(self._dl_seen) > 256:
                    self._dl_seen.popitem(last=False)
            run.on_reply(rep, rx_ns, True)
            return
        if rep.is_icmp:
            # A reply that arrived on another interface than the probes left
            # by is seen only by the ICMP socket: use it, as scamper would,
            # once the datalink copy (queued first by the kernel) had its turn.
            self.prober.reactor.callLater(0, self._late_sock, rep, rx_ns)

    def _late_sock(self, rep: packets.Reply, rx_ns: int) -> None:
        if self.run is None or self.run.done:
            return
        if _fingerprint(rep) in self._dl_seen:
            return
        self.run.on_reply(rep, rx_ns, False)


def _fingerprint(rep: packets.Reply) -> tuple:
    return (rep.src, rep.icmp_type, rep.icmp_code, rep.ipid, rep.icmp_id, rep.icmp_seq,
            rep.inner_ipid, rep.inner_flow, rep.inner_sport, rep.inner_dport,
            rep.inner_udp_sum, rep.inner_icmp_seq, rep.size)


def _reply_key(rep: packets.Reply) -> Optional[Key]:
    fam = rep.family
    if rep.is_icmp:
        if rep.is_echo_reply or (fam == 4 and rep.icmp_type == 14):
            return (fam, "icmp", rep.icmp_id)
        if rep.has_inner:
            if rep.inner_proto == packets.PROTO_UDP:
                return (fam, "udp", rep.inner_sport)
            if rep.inner_proto == packets.PROTO_TCP:
                return (fam, "tcp", rep.inner_sport)
            if rep.inner_proto in (packets.PROTO_ICMP, packets.PROTO_ICMP6):
                return (fam, "icmp", rep.inner_icmp_id)
        return None
    if rep.proto == packets.PROTO_TCP:
        return (fam, "tcp", rep.dport)
    if rep.proto == packets.PROTO_UDP:
        return (fam, "udp", rep.dport)
    return None


class Prober:
    """Runs ping and trace tasks in the reactor.

    ``Prober(reactor, pps=20, window=0)``; ``task = prober.submit(options)``
    with a :class:`~ixpscamper.commands.TraceOptions` or
    :class:`~ixpscamper.commands.PingOptions`; ``task.deferred``;
    ``task.halt()``; ``prober.close()`` when done.  ``network`` and
    ``now_ns`` are for tests (a fake network and a Clock-driven time).

    Pacing is scamper 20211212's (``scamper.c``): an absolute schedule of
    slots ``wait_between = 1000000 // pps`` microseconds apart; each probe
    takes the next slot, and a slot may be used once its time has come.  A
    reactor that wakes late sends every probe whose slot came meanwhile.
    Whenever a task asks for a slot, a slot is taken or a source attaches
    (:meth:`source_ready`), a schedule more than ``probe_window`` off
    (250 ms, plus ``wait_between`` when that is longer) restarts from now,
    with one slot due at once.  The
    promise: over the long run ``pps``; over any interval of length W at
    most ``(W + probe_window) * pps + 1`` probes.  ``pps`` may be changed
    at any time (SIGHUP).
    """

    def __init__(self, reactor, pps: int = 20, window: int = 0,
                 network: Optional[Network] = None, now_ns: Optional[Callable[[], int]] = None,
                 rng: Optional[random.Random] = None, pid: Optional[int] = None):
        if pps <= 0:
            raise ValueError("pps must be positive")
        self.reactor = reactor
        self.pps = pps
        # scamper's lastprobe, in whole microseconds of reactor time (as its
        # gettimeofday): the schedule's most recent slot.  None: no schedule
        # yet, so the first task to ask starts it (scamper starts it at
        # start-up, which credits tasks arriving within 250 ms of it)
        self._last_us: Optional[int] = None
        self.window = window
        self.network = network if network is not None else Network(reactor, self._on_packet)
        if network is None:
            # Opening the receive sockets early turns on kernel receive
            # timestamping before the first probe; without privileges the
            # error is reported per task (and by check()).
            for fam in (4, 6):
                try:
                    self.network.listen_sock(fam)
                except ProberError:
                    break
        if now_ns is not None:
            self.now_ns = now_ns
        elif network is not None:
            self.now_ns = lambda: int(round(reactor.seconds() * 1e9))
        else:
            self.now_ns = wall_ns
        self.rng = rng or random.SystemRandom()
        self.pid = os.getpid() if pid is None else pid
        # tasks not yet started, shared fairly between groups when a window
        # limits how many run; _held: waiting for a source port in use
        self._waiting: FairShare[Task] = FairShare()
        self._held: list[Task] = []
        # insertion-ordered dict as an ordered set: O(1) removal of a finished task
        self._active: dict[Task, None] = {}
        self._by_key: dict[Key, Task] = {}
        self._sendq: FairShare[Task] = FairShare()
        self._slot_call = None
        self._next_port: dict[str, int] = {}
        self.packets_sent = 0

    # -- public -------------------------------------------------------------

    @property
    def pps(self) -> int:
        """Packets per second; setting it re-derives the schedule's step and window."""
        return self._pps

    @pps.setter
    def pps(self, pps: int) -> None:
        if pps <= 0:
            raise ValueError("pps must be positive")
        self._pps = pps
        # scamper's ppswindow_set: C integer division, and a window that
        # always holds at least one slot
        self._wait_us = 1_000_000 // pps
        self._window_us = 250_000 + (self._wait_us if self._wait_us > 250_000 else 0)

    def submit(self, options, group: Hashable = None, weight: int = 1) -> Task:
        """Queue a measurement; returns its :class:`Task` at once.

        ``group`` (any hashable; the VP passes the attached source) is who
        the task is for: transmit slots and task starts are shared fairly
        between groups, ``weight`` (>= 1, scamper's ``attach priority``)
        times as many for this group as for a group of weight 1.
        """
        if weight < 1:
            raise ValueError("weight must be at least 1")
        task = Task(self, options, group, weight)
        self._waiting.push(group, task, weight)
        self._pump()
        return task

    def source_ready(self) -> None:
        """A source (a VP's user) attached: a stale probe schedule restarts now.

        scamper restarts its schedule whenever a source is ready, and a
        source is ready as soon as it attaches, before its first command
        arrives; the slots from then on are there for its commands when they
        come (within the probe window), as in scamper.
        """
        self._restart_if_stale(self._now_us())

    def check(self) -> None:
        """Raise :class:`ProberError` now if raw sockets cannot be opened (no CAP_NET_RAW)."""
        self.network.check_privileges()

    @property
    def tasks(self) -> list[Task]:
        return list(self._held) + list(self._waiting) + list(self._active)

    def close(self) -> None:
        """Halt every task and close the sockets."""
        for task in self.tasks:
            task.halt()
        if self._slot_call is not None and self._slot_call.active():
            self._slot_call.cancel()
        self.network.close()

    # -- starting tasks -------------------------------------------------------

    def _window_full(self) -> bool:
        return bool(self.window) and len(self._active) >= self.window

    def _pump(self) -> None:
        # Tasks held for a busy port go first, in order: they have waited
        # longest, and one only starts once a running task freed its port.
        for task in list(self._held):
            if self._window_full():
                return
            if self._try_start(task):
                self._held.remove(task)
        while self._waiting and not self._window_full():
            task = self._waiting.pop()
            if not self._try_start(task):
                self._held.append(task)

    def _try_start(self, task: Task) -> bool:
        """Start ``task`` unless its ports are busy; True if it left the queue."""
        try:
            keys, sport = self._choose_keys(task)
        except ProberError as exc:
            task.state = "done"
            task.deferred.errback(Failure(exc))
            return True
        if keys is None:
            return False
        try:
            self._setup(task, keys, sport)
        except ProberError as exc:
            self._release(task)
            task.state = "done"
            task.deferred.errback(Failure(exc))
        except Exception as exc:  # a bug: still one line for the user, traceback in the log
            log.failure("setting up {cmd}", cmd=_describe(task.options))
            self._release(task)
            task.state = "done"
            task.deferred.errback(Failure(ProberError(f"internal error: {exc}")))
        return True

    def _kind(self, options) -> str:
        if options.kind == "dealias":
            return _probedef_kind(options.probedefs[0])
        if options.kind == "tracelb":
            if options.method.startswith("tcp"):
                return "tcp"
            return "icmp" if options.method == "icmp-echo" else "udp"
        if options.kind == "trace":
            code = options.type_code
            if code in (int(m) for m in TCP_METHODS):
                return "tcp"
            if code in (int(m) for m in ICMP_METHODS):
                return "icmp"
            return "udp"
        code = options.method_code
        if code in (int(m) for m in TCP_PING_METHODS):
            return "tcp"
        if code in (int(m) for m in ICMP_PING_METHODS):
            return "icmp"
        return "udp"

    def _span(self, options) -> int:
        if options.kind == "ping" and options.method_code == PingMethod.TCP_ACK_SPORT:
            return max(1, options.count)
        return 1

    def _choose_keys(self, task: Task) -> tuple[Optional[list[Key]], int]:
        o = task.options
        why = unsupported(o)
        if why:
            raise ProberError(why)
        check_family(o)
        fam = o.dst.version
        kind = self._kind(o)
        span = self._span(o)
        if o.sport is not None:
            keys = [(fam, kind, (o.sport + i) & 0xFFFF) for i in range(span)]
            if any(k in self._by_key for k in keys):
                return None, 0
            return keys, o.sport
        base = o.effective_sport(self.pid)
        start = self._next_port.get(f"{o.kind}{kind}", base)
        port = start
        for _ in range(0x10000):
            keys = [(fam, kind, (port + i) & 0xFFFF) for i in range(span)]
            if not any(k in self._by_key for k in keys) and port + span <= 0x10000:
                if kind == "icmp" or self._reserve(fam, kind, port, span, task):
                    self._next_port[f"{o.kind}{kind}"] = (port + span) & 0xFFFF or base
                    return keys, port
            port = (port + 1) & 0xFFFF
            if port < 1024:
                port = 1024
        raise ProberError("no free source port")

    def _reserve(self, fam: int, kind: str, port: int, span: int, task: Task) -> bool:
        proto = packets.PROTO_UDP if kind == "udp" else packets.PROTO_TCP
        got = []
        for i in range(span):
            if not self.network.reserve_port(fam, proto, port + i):
                for p in got:
                    self.network.release_port(fam, proto, p)
                return False
            got.append(port + i)
        task._reserved = [(fam, proto, p) for p in got]
        return True

    def _setup(self, task: Task, keys: list[Key], sport: int) -> None:
        o = task.options
        net = self.network
        task.keys = keys
        for k in keys:
            self._by_key[k] = task
        self._active[task] = None
        start_ns = self.now_ns()
        if o.rtr is not None:
            rroute = net.route(str(o.rtr))
            if rroute.type != RTN_UNICAST or rroute.gateway is not None:
                raise ProberError(f"router {o.rtr} is not on a directly connected network")
            route = rroute
        else:
            route = net.route(str(o.dst))
            if route.type != RTN_UNICAST and route.type != 2:  # unicast or local
                raise ProberError(f"no route to {o.dst}")
        src = o.src if o.src is not None else (
            ipaddress.ip_address(route.src) if route.src else ipaddress.ip_address(net.source_for(str(o.dst))))
        task.ifindex = route.ifindex
        if o.kind == "dealias":
            task.run = DealiasRun(o, src, task, self.rng)
            # over IPv6 the identifications are in the replies' fragment
            # headers, which only the datalink copy keeps (the socket's is
            # reassembled): scamper's DEALIAS_STATE_FLAG_DL
            task.use_dl = task.run.uses_dl and task.family == 6
            task.dl_tcp = task.run.tcp_dl
            for pd in o.probedefs[1:]:
                self._claim_key(task, (task.family, _probedef_kind(pd), pd.sport))
        elif o.kind == "tracelb":
            task.use_dl = tracelb_uses_dl(o)
            task.run = TracelbRun(tracelb_spec(o, src, sport), task)
        elif o.kind == "trace":
            spec = trace_spec(o, src, sport, use_dl=o.rtr is not None)
            task.use_dl = spec.use_dl
            task.run = TraceRun(spec, task)
        else:
            spec = ping_spec(o, src, sport, self.rng)
            task.use_dl = spec.use_dl
            task.run = PingRun(spec, task, self.rng)
        net.listen_sock(task.family)
        if task.use_dl or task.dl_tcp:
            net.listen_dl(task.ifindex)
            task._listening_dl = True
        if o.rtr is None:
            task.state = "running"
            task.run.start(start_ns)
            return
        # like scamper, the start time is taken before the router is resolved
        task.run.start(start_ns, send=False)
        task.state = "resolving"
        d = net.resolve(task.ifindex, str(o.rtr), str(src))

        def resolved(mac: bytes) -> None:
            if task.state != "resolving":
                return
            task.mac = mac
            task.state = "running"
            task.request_send()

        def unresolved(f: Failure) -> None:
            if task.state != "resolving":
                return
            task.error = f.getErrorMessage()
            log.info("{cmd}: {err}", cmd=_describe(o), err=task.error)
            task.run.fail(0)

        d.addCallbacks(resolved, unresolved)

    def _claim(self, task: Task, port: int) -> None:
        if not task.keys:
            return
        fam, kind, _ = task.keys[0]
        self._claim_key(task, (fam, kind, port & 0xFFFF))

    def _claim_key(self, task: Task, key: Key) -> None:
        if key not in self._by_key:
            self._by_key[key] = task
            task.keys.append(key)

    # -- sending --------------------------------------------------------------

    def _request_send(self, task: Task) -> None:
        if task.state != "running":
            return
        if not task._queued:  # a flag, not a scan of a queue that may hold thousands
            task._queued = True
            self._sendq.push(task.group, task, task.weight)
        self._arm()

    def _now_us(self) -> int:
        return int(round(self.reactor.seconds() * 1e6))

    def _restart_if_stale(self, now: int) -> None:
        # Far off the schedule (idle, or the reactor was busy for longer
        # than the window): restart it now, with one slot due at once.
        # scamper checks this whenever something is ready to probe; so do
        # we, when a task asks for a slot, a slot is taken, a source attaches.
        if self._last_us is None or abs(now - self._last_us) > self._window_us:
            self._last_us = now - self._wait_us

    def _arm(self) -> None:
        if not self._sendq:
            return
        now = self._now_us()
        self._restart_if_stale(now)
        if self._slot_call is not None and self._slot_call.active():
            return
        delay_us = self._last_us + self._wait_us - now
        self._slot_call = self.reactor.callLater(max(0, delay_us) / 1e6, self._slot)

    def _slot(self) -> None:
        self._slot_call = None
        now = self._now_us()
        wait = self._wait_us
        self._restart_if_stale(now)
        # Within the window, the slots that came due while the reactor was
        # busy or asleep are used together (epoll wakes in whole
        # milliseconds, and late under load), so the long-run rate stays pps.
        while self._sendq and self._last_us + wait <= now:
            task = self._sendq.pop()
            task._queued = False
            if task.run is None or task.run.done or task.state != "running":
                continue
            self._last_us += wait
            self.packets_sent += 1
            task.run.send_now()
        self._arm()

    # -- replies ----------------------------------------------------------------

    def _on_packet(self, source: str, ifindex: int, rx_ns: int, pkt: bytes) -> None:
        if not self._by_key:
            return
        qk = packets.quick_key(pkt)
        if qk is None or qk not in self._by_key:
            return
        rep = packets.dissect(pkt)
        if rep is None:
            return
        key = _reply_key(rep)
        if key is None:
            return
        task = self._by_key.get(key)
        if task is not None:
            task.deliver(rep, rx_ns, source, ifindex)

    # -- ending -----------------------------------------------------------------

    def _halt(self, task: Task) -> None:
        if task.state == "done":
            return
        if task.state == "waiting":
            if task in self._held:
                self._held.remove(task)
            else:
                self._waiting.remove(task.group, task)
            task.state = "done"
            task.deferred.errback(Failure(ProberError("halted before it started")))
            return
        if task.run is not None:
            task.run.halt()

    def _release(self, task: Task) -> None:
        for k in task.keys:
            if self._by_key.get(k) is task:
                del self._by_key[k]
        task.keys = []
        for fam, proto, port in task._reserved:
            self.network.release_port(fam, proto, port)
        task._reserved = []
        if task._listening_dl:
            self.network.unlisten_dl(task.ifindex)
            task._listening_dl = False
        self._active.pop(task, None)
        if task._queued:
            task._queued = False
            self._sendq.remove(task.group, task)

    def _finished(self, task: Task) -> None:
        if task.state == "done":
            return
        task.state = "done"
        self._release(task)
        record = task.run.record
        self.reactor.callLater(0, self._pump)
        task.deferred.callback(record)


def _probedef_kind(pd) -> str:
    if pd.method.startswith("tcp"):
        return "tcp"
    return "icmp" if pd.method == "icmp-echo" else "udp"


def _describe(options) -> str:
    try:
        return options.to_command()
    except Exception:
        return options.kind

