"""The controller daemon: VPs connect over TCP (or TLS), users over one unix
socket per VP.  Thin Twisted adapters around `ixpscamper.remote.session`.

Differences from sc_remoted, on purpose:

* a VP's socket keeps the name it got at registration for the whole
  session and stays in place while the VP is away; users who connect during
  an outage are served once the VP resumes;
* a MASTER_NEW whose magic we still hold replaces the old state (a 20211212
  VP reuses its magic after MASTER_REJ) instead of being refused;
* a protocol error on an established connection makes the VP a zombie
  (resumable) rather than freeing its state at once;
* with ``--client-ca``, a MASTER_NEW carrying a magic we hold replaces that
  session only if its certificate also names the held session's monitor
  (else it is refused with one line and the old session stays).

Memory is bounded, per user and per VP (back-pressure):

* user -> VP: bytes read from a user stay in the session's retransmit queue
  until the VP ACKs them.  When a channel holds ``channel_high`` (1 MiB)
  unacknowledged bytes, or its VP ``vp_high`` (4 MiB) over all its channels,
  the controller stops reading from that user (``pauseProducing`` on the
  user's transport; the kernel then blocks the user's writes) and resumes
  when ACKs -- or the MASTER_RES of a resume -- bring the channel to 1/4 and
  the VP to 1/2 of those bounds (`ControllerSession.channel_write`,
  ``channel_drained``).  So a VP that is away (zombie), stopped or slow
  costs at most ~4 MiB plus one read per user, and what is held is
  replayed exactly once on resume.  One user alone cannot reach the VP
  bound, so it never stalls the VP's other users; other VPs are never
  affected.  (A paused user that hangs up is noticed when reading resumes,
  or when the VP's state is freed.)
* VP -> user: results are written to the user at once and never block;
  a user that does not read is buffered up to ``USER_BACKLOG`` (64 MiB) and
  then cut with one log line, alone.  A user's connection is closed only
  after everything pending was written (the producer registration is undone
  first, so a user that paused reading still gets its EOF).

Admission (`ixpscamper.remoted.admission`): the daemon raises its
RLIMIT_NOFILE soft limit to the hard limit at start and logs its capacity,
``(fd limit - reserve) / 2`` VPs (two descriptors each: TCP connection and
unix socket).  New VP connections and registrations are refused, one log
line each, before they would eat into the reserve kept for users and
listeners (``--fd-reserve``); ``--max-vps`` caps the sessions held (live +
zombies; when full, the oldest zombie is freed for a new VP, one line);
``--max-zombies`` caps the zombies (beyond it the oldest is freed, one
line); ``--registration-rate R/s`` with ``--registration-burst`` is a token
bucket per source address (IPv6: per /64), off by default.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Optional

import attrs
from twisted.application import service
from twisted.internet import defer
from twisted.internet.address import IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHandshakeListener, IListeningPort, IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from twisted.internet import unix

from ..mux.hub import MuxFactory, MuxHub
from ..mux.meta import MetadataError, load_metadata
from ..mux.server import MuxServerConnection
from ..remote.session import CHANNEL_HIGH, VP_HIGH, ZOMBIE_TIME, ControllerCore, ControllerSession
from ..ops.tlsdiag import FirstBytesFactory
from .admission import Admission, RegistrationRate, raise_nofile
from .tls import ServerTLS, certificate_names, handshake_failure

log = Logger(namespace="ixp-remoted")
vplog = Logger(namespace="ixp-remoted.vp")      # VP connections and sessions
userlog = Logger(namespace="ixp-remoted.user")  # users attaching to VP sockets

MAX_UNIX_PATH = 107


def peer_label(addr) -> str:
    """``a.b.c.d:port`` for IPv4 (also v4-mapped IPv6), ``addr.port`` for IPv6,
    as sc_remoted writes them in MASTER_ID and socket names."""
    host = addr.host
    if isinstance(addr, IPv6Address):
        host = host.split("%", 1)[0]
        if host.lower().startswith("::ffff:") and "." in host:
            return f"{host[7:]}:{addr.port}"
        return f"{host}.{addr.port}"
    return f"{host}:{addr.port}"


def parse_listen(spec: str) -> list[tuple[str, int]]:
    """``[ip:]port`` -> [(interface, port)]; IPv6 as ``[::1]:port`` or ``::1:port``.

    Without an address: the dual-stack wildcard ``::`` (IPv4 peers show up
    v4-mapped and are named in IPv4 form); '' means "fall back to 0.0.0.0".
    """
    spec = spec.strip()
    if spec.startswith("["):
        host, _, port = spec[1:].partition("]:")
    elif spec.count(":") == 0:
        host, port = "", spec
    else:
        host, _, port = spec.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad port in '{spec}'")
    if host:
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        except OSError:
            raise ValueError(f"bad address '{host}' in '{spec}'") from None
    return [(host, int(port))]


def _nofile() -> int:
    import resource
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _open_fds() -> int:
    """Descriptors this process has open now (0 if /proc does not say)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus listdir's own
    except OSError:
        return 0


def _listening_unix_paths() -> Optional[set[str]]:
    try:
        with open("/proc/net/unix") as f:
            next(f)
            out = set()
            for line in f:
                parts = line.split()
                if len(parts) >= 8 and int(parts[3], 16) & 0x10000:
                    out.add(" ".join(parts[7:]))
            return out
    except (OSError, ValueError, StopIteration):
        return None


def _refuses(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
    except OSError as e:
        return e.errno in (errno.ECONNREFUSED, errno.ENOENT)
    finally:
        s.close()
    return False


def protocol_error_kind(reason: str) -> str:
    """The ``kind`` label of a protocol error on an established session."""
    r = reason.lower()
    if "frame of" in r or "zero-length frame" in r:
        return "frame"
    if "seq" in r or "ack" in r:
        return "sequence"
    return "message"


def departure_reason(reason: str) -> str:
    """The ``reason`` label of a freed VP (``vp_gone``'s reason text)."""
    if reason.startswith("no resume within the zombie time"):
        return "zombie_expired"
    if reason.startswith("replaced by"):
        return "replaced"
    if "freed for a new VP" in reason or "(--max-zombies)" in reason:
        return "evicted"
    if reason.startswith("controller stopping"):
        return "stopping"
    if reason.endswith("zombie time is 0"):
        return "disconnected"
    return "other"


#: a fatal TLS alert record, protocol_version (70): what a plaintext VP on the TLS port reads
#: back, so that it can say "the controller expects TLS" (ixpscamper.ops.tlsdiag)
TLS_ALERT_PROTOCOL_VERSION = bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])


class VPFirstBytesFactory(FirstBytesFactory):
    """The VP listeners' FirstBytesFactory: on the TLS port a plaintext MASTER_NEW
    gets a TLS alert back (the TLS layer then closes); on a plaintext port a
    ClientHello is cut at once.  Either is one line (``report``)."""

    def __init__(self, wrapped, expect_tls: bool, report) -> None:
        super().__init__(wrapped, expect_tls=expect_tls, report=report, close=not expect_tls,
                         alert=TLS_ALERT_PROTOCOL_VERSION)

    def logPrefix(self) -> str:  # noqa: N802
        # one word: the port's "<prefix> starting on <port>" is then Twisted chatter the
        # ops log filter drops below debug (WrappingFactory's "A (B)" would slip through)
        return "VPListener"


class NoMetrics:
    """What the service counts into without ``--metrics``: nothing."""

    def registered(self) -> None: pass
    def registration_refused(self, reason: str) -> None: pass
    def resumed(self) -> None: pass
    def resume_rejected(self) -> None: pass
    def rejected(self, reason: str) -> None: pass
    def protocol_error(self, kind: str) -> None: pass
    def departed(self, reason: str) -> None: pass
    def relayed(self, direction: str, n: int) -> None: pass


@attrs.define
class VPEntry:
    """Per-VP daemon state hung on ``ControllerSession.context``."""

    session: ControllerSession
    path: Optional[str]                      # its unix socket (None without -U)
    port: Optional[IListeningPort] = None
    users: dict = attrs.Factory(dict)       # channel -> UserProtocol | MuxUser
    admission: Optional[Admission] = None   # counts the users' descriptors
    mux_id: Optional[int] = None            # its id on the mux socket
    # for --status (plain ints and floats: bumped on the data paths)
    connected_since: Optional[float] = None  # epoch of the current (or last) connection
    away_since: Optional[float] = None       # epoch it became a zombie; None while up
    resumes: int = 0
    bytes_in: int = 0                        # VP -> users
    bytes_out: int = 0                       # users -> VP


class QuietUnixPort(unix.Port):
    """A VP's unix socket: Twisted's ``unix.Port`` without its two log lines
    per socket ("... starting on", "(UNIX Port ... Closed)") -- at thousands
    of VPs registering at once they cost about half the registration time;
    our own one line per VP says the same."""

    def startListening(self) -> None:
        from twisted.internet import tcp
        from twisted.internet.error import CannotListenError
        tcp._reservedFD.reserve()  # what accept() falls back on at EMFILE, as unix.Port does
        self.factory.doStart()
        skt = self.createInternetSocket()
        try:
            skt.bind(self._bindPath)
            os.chmod(self._bindPath, self.mode)
            skt.listen(self.backlog)
        except OSError as e:
            skt.close()
            raise CannotListenError(None, self._bindPath, e) from None
        self.connected = True
        self.socket = skt
        self.fileno = skt.fileno
        self.numberAccepts = 100
        self.startReading()

    def _logConnectionLostMsg(self) -> None:
        pass


class MuxUser:
    """One mux-socket channel on a VP: what `UserProtocol` is for a per-VP
    socket connection, with the mux client connection as its transport."""

    def __init__(self, entry: VPEntry, conn: MuxServerConnection, client_channel: int) -> None:
        self.entry = entry
        self.conn = conn
        self.client_channel = client_channel
        self.channel = entry.session.open_channel()
        self.reading_paused = False
        entry.users[self.channel] = self

    # the mux side (MuxChannelHandle)
    def write(self, data: bytes) -> None:
        if self.channel:
            self.entry.bytes_out += len(data)
        if self.channel and not self.entry.session.channel_write(self.channel, data) \
                and not self.reading_paused:
            adapter = getattr(self.conn, "adapter", None)
            if adapter is not None:
                self.reading_paused = True
                adapter.pause()

    def close(self) -> None:
        """The client went away (or ended the whole mux connection)."""
        ch, self.channel = self.channel, 0
        self._unpause()
        if ch and self.entry.users.get(ch) is self:
            del self.entry.users[ch]
            self.entry.session.channel_close(ch)

    # the controller side (like UserProtocol)
    def deliver(self, data: bytes) -> None:
        self.conn.channel_data(self.client_channel, data)

    def finished(self) -> None:
        """The VP finished the channel (or its state was freed)."""
        self.channel = 0
        self._unpause()
        self.conn.channel_finished(self.client_channel)

    def resume_reading(self) -> None:
        self._unpause()

    def _unpause(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            adapter = getattr(self.conn, "adapter", None)
            if adapter is not None:
                adapter.resume()


def _pending(transport) -> int:
    """Bytes a Twisted FileDescriptor transport still holds for its peer
    (its write buffers; 0 if the transport does not say)."""
    buf = getattr(transport, "dataBuffer", b"")
    return (len(buf) - getattr(transport, "offset", 0)
            + getattr(transport, "_tempDataLen", 0))


@implementer(IPushProducer)
class UserProtocol(Protocol):
    """One connection on a VP's unix socket = one channel.

    VP -> user: it registers itself as the producer of its own transport
    only to learn when the user falls behind: once more than
    ``USER_BACKLOG`` bytes wait for a user, that user's connection is closed
    (one log line; the VP gets CHANNEL_FIN) rather than the daemon's memory
    filling up.  Writes never block, so other users of the VP (and other
    VPs) are not slowed down.  The registration is undone before the
    connection is closed (`close`): a transport with a paused streaming
    producer resumes that producer when its buffer drains instead of
    finishing the close, and the user would never see EOF.

    User -> VP: when ``channel_write`` reports pressure (the VP is away or
    not ACKing), the user's transport -- an IPushProducer -- is paused, and
    resumed on the session's ``channel_drained``.
    """

    USER_BACKLOG = 64 * 1024 * 1024

    def __init__(self, entry: VPEntry) -> None:
        self.entry = entry
        self.channel = 0
        self.paused = False
        self.backlog = 0
        self.reading_paused = False   # we paused the user's transport (back-pressure)
        self._registered = False
        self.counted: Optional[Admission] = None   # counted in its users

    def connectionMade(self) -> None:
        self.counted = self.entry.admission
        if self.counted is not None:
            self.counted.users += 1
        sess = self.entry.session
        if sess.gone:
            userlog.info("user on VP {label} turned away: the VP is gone", label=sess.label)
            self.transport.loseConnection()
            return
        self.channel = sess.open_channel()
        self.entry.users[self.channel] = self
        self.transport.registerProducer(self, True)
        self._registered = True
        userlog.info("user attached to VP {label} (channel {ch}{away})", label=sess.label,
                     ch=self.channel, away="" if sess.conn is not None else
                     "; the VP is away, served once it resumes")

    def finished(self) -> None:
        """The VP finished this channel (or its state was freed)."""
        self.close()

    def close(self) -> None:
        """Close after the pending results are written (the VP is done)."""
        self.channel = 0
        if self._registered:
            self._registered = False
            self.transport.unregisterProducer()
        self.transport.loseConnection()

    def resume_reading(self) -> None:
        """The VP acknowledged enough of this user's bytes: read on."""
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resumeProducing()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.backlog = 0

    def stopProducing(self) -> None:
        pass

    def deliver(self, data: bytes) -> None:
        if self.paused:
            self.backlog = _pending(self.transport) + len(data)
            if self.backlog > self.USER_BACKLOG:
                log.warn("user on channel {ch} of VP {label} is not reading ({n} bytes pending); "
                         "closing it", ch=self.channel, label=self.entry.session.label, n=self.backlog)
                ch, self.channel = self.channel, 0
                if self.entry.users.get(ch) is self:
                    del self.entry.users[ch]
                    self.entry.session.channel_close(ch)
                self.transport.abortConnection()
                return
        self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        if self.channel:
            self.entry.bytes_out += len(data)
            if not self.entry.session.channel_write(self.channel, data) and not self.reading_paused:
                # Too much of this user's input is unacknowledged: stop
                # reading (the kernel then pushes back on the user) until
                # channel_drained.
                self.reading_paused = True
                self.transport.pauseProducing()

    def connectionLost(self, reason=None) -> None:
        counted, self.counted = self.counted, None
        if counted is not None:
            counted.users -= 1
        ch, self.channel = self.channel, 0
        if ch and self.entry.users.get(ch) is self:
            del self.entry.users[ch]
            self.entry.session.channel_close(ch)
            userlog.info("user left VP {label} (channel {ch})", label=self.entry.session.label,
                         ch=ch)
        elif counted is not None and not self.entry.session.gone:
            # the VP ended the channel first (its results were written): still one line
            userlog.info("user of VP {label} disconnected", label=self.entry.session.label)


class UserFactory(Factory):
    noisy = False

    def __init__(self, entry: VPEntry) -> None:
        self.entry = entry

    def buildProtocol(self, addr):
        return UserProtocol(self.entry)


@implementer(IHandshakeListener)
class VPProtocol(Protocol):
    """A VP's TCP (or TLS) connection."""

    def __init__(self, svc: RemotedService) -> None:
        self.svc = svc
        self.conn = None
        self.peer = "?"
        self.handshake_done = False   # TLS: the handshake completed
        self.said_why = False         # a close reason was logged already
        self.sniff_key = ""           # how FirstBytesFactory names this peer
        self.host = ""
        self.counted = False          # in svc.admission.connections
        self.cert_refused = False     # _authorize said no (a client-certificate refusal)

    def handshakeCompleted(self) -> None:
        self.handshake_done = True

    def connectionMade(self) -> None:
        addr = self.transport.getPeer()
        self.peer = peer_label(addr)
        self.host = getattr(addr, "host", "")
        self.sniff_key = f"{self.host}:{getattr(addr, 'port', '?')}"
        adm = self.svc.admission
        refusal = adm.accept_connection(self.host)
        adm.connections += 1
        self.counted = True
        if refusal:
            self.said_why = True
            vplog.warn("VP connection {peer} refused: {reason}", peer=self.peer, reason=refusal)
            self.svc.metrics.rejected("capacity")
            self.transport.abortConnection()
            return
        # Small control frames (ACKs) must not wait for Nagle + delayed ACK:
        # that costs ~40 ms per command round trip (sc_remoted pays it).
        tcp = getattr(self.transport, "transport", self.transport)  # under TLS
        if hasattr(tcp, "setTcpNoDelay"):
            tcp.setTcpNoDelay(True)
        authorize = self._authorize if self.svc.tls is not None and self.svc.tls.client_ca else None
        self.conn = self.svc.core.connection(self.peer, self.transport.write, self._close, authorize,
                                             self._admit)

    def _admit(self, name: Optional[bytes], replaces: bool) -> Optional[str]:
        svc = self.svc
        d = svc.admission.registration(self.host, replaces, len(svc.core.sessions))
        if d.refusal is not None:
            svc.metrics.registration_refused("rate" if d.refusal.startswith("more than")
                                             and "registrations/s" in d.refusal else "capacity")
        else:
            for magic in d.evict:
                old = svc.core.sessions.get(magic)
                if old is not None:
                    svc.free_zombie(old, f"the oldest zombie, freed for a new VP (--max-vps "
                                         f"{svc.admission.max_vps})")
        return d.refusal

    def _authorize(self, name: Optional[bytes]) -> Optional[str]:
        why = self._authorize_why(name)
        if why is not None:
            self.cert_refused = True
        return why

    def _authorize_why(self, name: Optional[bytes]) -> Optional[str]:
        try:
            cert = self.transport.getPeerCertificate()
        except Exception:  # not a TLS transport / no handshake
            cert = None
        if cert is None:
            return "no client certificate"
        if not name:
            return "a client certificate requires a monitor name (-M)"
        names = certificate_names(cert)
        if name.decode("ascii").lower() not in names:
            return (f"monitor name '{name.decode('ascii')}' does not match the client "
                    f"certificate ({', '.join(sorted(names)) or 'no names'})")
        return None

    def _close(self, reason: Optional[str]) -> None:
        self.said_why = True
        if reason is not None:  # else a vp_detached / vp_gone line says why
            vplog.info("VP connection {peer} closed: {reason}", peer=self.peer, reason=reason)
            self._count_close(reason)
        self.transport.loseConnection()

    def _count_close(self, reason: str) -> None:
        """The metric of a connection the core closed before (or instead of) a session."""
        m = self.svc.metrics
        if reason.startswith("MASTER_RES refused"):
            # MASTER_REJ was sent; a client-certificate refusal is counted as such too
            m.resume_rejected()
            if self.cert_refused:
                m.rejected("client_cert")
        elif reason.startswith("no MASTER_NEW/MASTER_RES within"):
            m.rejected("handshake_timeout")
        elif reason.startswith("MASTER_NEW refused"):
            m.rejected("client_cert")
        elif reason.startswith("protocol error"):
            if self.cert_refused:
                m.rejected("client_cert")
            else:
                m.protocol_error("handshake")
        elif reason == "VP refused by the controller":
            m.rejected("name")

    def dataReceived(self, data: bytes) -> None:
        if self.conn is not None:  # None: refused at accept
            hub = self.svc.hub
            if hub is None:
                self.conn.data_received(data)
                return
            # the results in this read reach each mux client in one write
            hub.hold()
            try:
                self.conn.data_received(data)
            finally:
                hub.release()

    def connectionLost(self, reason=None) -> None:
        if self.counted:
            self.counted = False
            self.svc.admission.connections -= 1
        if self.svc.tls is not None and not self.handshake_done and not self.said_why:
            if self.svc.sniffed.pop(self.sniff_key, None) is not None:
                pass  # the first bytes were plaintext: FirstBytesFactory said so already
            else:
                # A refused TLS handshake ends here and nowhere else: one line.
                vplog.info("VP connection {peer} refused: TLS handshake failed: {reason}",
                           peer=self.peer,
                           reason=handshake_failure(reason, self.svc.tls.notes(self.transport)))
                self.svc.metrics.rejected("tls_handshake")
        if self.conn is not None:
            if reason is None or reason.check(ConnectionDone):
                why = "connection closed"
            else:
                why = f"connection lost: {reason.getErrorMessage()}"
            self.conn.connection_lost(why)


class VPFactory(Factory):
    noisy = False

    def __init__(self, svc: RemotedService) -> None:
        self.svc = svc

    def buildProtocol(self, addr):
        return VPProtocol(self.svc)


class RemotedService(service.Service):
    """The whole controller: listeners, sessions, per-VP sockets, pidfile."""

    def __init__(self, reactor, listen: list[str], socket_dir: str,
                 zombie_time: float = ZOMBIE_TIME, allow_group: bool = False,
                 allow_other: bool = False, tls: Optional[ServerTLS] = None,
                 pidfile: Optional[str] = None, handshake_time: Optional[float] = None,
                 max_vps: Optional[int] = None, max_zombies: Optional[int] = None,
                 registration_rate: float = 0.0, registration_burst: Optional[float] = None,
                 fd_reserve: Optional[int] = None, channel_high: int = CHANNEL_HIGH,
                 vp_high: int = VP_HIGH, mux_path: Optional[str] = None,
                 meta_path: Optional[str] = None) -> None:
        self.reactor = reactor
        self.listen_specs = listen
        self.socket_dir = os.path.abspath(socket_dir) if socket_dir else None
        self.mux_path = os.path.abspath(mux_path) if mux_path else None
        self.meta_path = meta_path
        self.hub: Optional[MuxHub] = None
        self.mux_port: Optional[IListeningPort] = None
        if self.mux_path is not None:
            self.hub = MuxHub(self._load_meta() if meta_path else {})
        self.mode = 0o700 | (0o070 if allow_group else 0) | (0o007 if allow_other else 0)
        self.tls = tls
        self.pidfile = pidfile
        kw = {} if handshake_time is None else {"handshake_time": handshake_time}
        self.core = ControllerCore(reactor, self, zombie_time=zombie_time,
                                   channel_high=channel_high, vp_high=vp_high, **kw)
        self.admission = Admission(reactor, fd_limit=_nofile(), fd_reserve=fd_reserve,
                                   max_vps=max_vps, max_zombies=max_zombies,
                                   rate=registration_rate, burst=registration_burst)
        self.fd_limit_was: Optional[int] = None
        self.ports: list[IListeningPort] = []
        self.entries: dict[str, VPEntry] = {}   # socket path -> entry
        self.metrics = NoMetrics()              # RemotedMetrics with --metrics (set_metrics)
        # "host:port" of connections FirstBytesFactory refused (their TLS layer
        # would log a second, vaguer line)
        self.sniffed: dict[str, bool] = {}
        # bytes of VPs already freed (the live ones are in their entries)
        self._gone_bytes_in = 0
        self._gone_bytes_out = 0

    # ---- lifecycle -------------------------------------------------------

    def privilegedStartService(self) -> None:
        """Open the VP listeners (before twistd drops privileges).  A port we
        cannot listen on ends the program with one line, no traceback."""
        from twisted.internet.error import CannotListenError
        if self.socket_dir is None and self.mux_path is None:
            raise SystemExit("ixp-remoted: give a socket directory (-U), a mux socket (-M) or both")
        if self.socket_dir is not None and not os.path.isdir(self.socket_dir):
            raise SystemExit(f"ixp-remoted: socket directory {self.socket_dir} does not exist")
        # Each VP costs two descriptors: take all the kernel lets us have.
        old, new = raise_nofile()
        self.fd_limit_was = old
        self.admission.set_fd_limit(new)
        factory: Factory = VPFactory(self)
        if self.tls is not None:
            factory = TLSMemoryBIOFactory(self.tls, False, factory)
            factory.noisy = False
        # name a TLS / plaintext mismatch from the first bytes, at once
        factory = VPFirstBytesFactory(factory, expect_tls=self.tls is not None,
                                      report=self._mismatch)
        try:
            for spec in self.listen_specs:
                for host, port in parse_listen(spec):
                    self.ports.extend(self._listen_tcp(host, port, factory))
        except CannotListenError as e:
            for p in self.ports:
                p.stopListening()
            self.ports = []
            why = e.socketError.strerror if getattr(e.socketError, "strerror", None) else e.socketError
            raise SystemExit(
                f"ixp-remoted: cannot listen on {e.interface or '*'} port {e.port}: {why}") from None
        super().privilegedStartService()

    def startService(self) -> None:
        if not self.ports and self.listen_specs:  # started without privilegedStartService
            self.privilegedStartService()
        if self.socket_dir is not None:
            self._clean_stale()
        if self.mux_path is not None:
            self._listen_mux()
        if self.pidfile:
            with open(self.pidfile, "w") as f:
                f.write(f"{os.getpid()}\n")
        for p in self.ports:
            a = p.getHost()
            log.info("listening for VPs on {host} port {port}{tls}", host=a.host, port=a.port,
                     tls=" (TLS)" if self.tls else "")
        self._log_capacity()
        # SIGHUP belongs to the DaemonRoot above us (ixpscamper.ops.daemon): it
        # calls reload_live
        super().startService()

    def _mismatch(self, peer: str, hint: str) -> None:
        """FirstBytesFactory: a connection's first bytes are TLS on a plaintext port or
        a plaintext frame on the TLS port; it is dropped."""
        if self.tls is not None:
            # the same form as the other refused TLS handshakes (VPProtocol.connectionLost)
            vplog.warn("VP connection {peer} refused: TLS handshake failed: plaintext on the TLS "
                       "port: {hint}", peer=peer, hint=hint)
        else:
            vplog.warn("VP connection {peer} refused: {hint}", peer=peer, hint=hint)
        if self.tls is not None:
            self.sniffed[peer] = True
            if len(self.sniffed) > 1024:  # bounded, whatever happens to connectionLost
                self.sniffed.clear()
            self.metrics.rejected("plaintext_on_tls")
        else:
            self.metrics.rejected("tls_on_plaintext")

    def _log_capacity(self) -> None:
        adm = self.admission
        adm.fd_base = _open_fds() or adm.fd_base
        was = self.fd_limit_was
        raised = f" (raised from {was})" if was is not None and was != adm.fd_limit else ""
        log.info("capacity: {vps} VPs (fd limit {limit}{raised}, {reserve} kept for users and "
                 "listeners, {base} in use){extra}",
                 vps=adm.max_vps, limit=adm.fd_limit, raised=raised, reserve=adm.fd_reserve,
                 base=adm.fd_base,
                 extra="".join([
                     f"; --max-vps {adm.max_vps_option}" if adm.max_vps_option is not None else "",
                     f"; at most {adm.max_zombies} zombies" if adm.max_zombies is not None else "",
                     f"; at most {adm.rate.rate:g} registrations/s per source (burst "
                     f"{adm.rate.burst:g})" if adm.rate.rate else ""]))
        if adm.max_vps_option is not None and adm.max_vps_option > adm.capacity:
            log.warn("--max-vps {n} is more than the {cap} VPs the fd limit allows; registrations "
                     "will be refused near the limit", n=adm.max_vps_option, cap=adm.capacity)

    def _listen_tcp(self, host: str, port: int, factory) -> list[IListeningPort]:
        if host:
            return [self.reactor.listenTCP(port, factory, backlog=1024, interface=host)]
        from twisted.internet.error import CannotListenError
        try:
            v6 = self.reactor.listenTCP(port, factory, backlog=1024, interface="::")
        except CannotListenError:  # no IPv6 on this host
            return [self.reactor.listenTCP(port, factory, backlog=1024, interface="0.0.0.0")]
        # "::" takes IPv4 too (v4-mapped) unless the host sets bindv6only.
        try:
            with open("/proc/sys/net/ipv6/bindv6only") as f:
                v6only = f.read().strip() == "1"
        except OSError:
            v6only = False
        if not v6only:
            return [v6]
        try:
            return [v6, self.reactor.listenTCP(v6.getHost().port, factory, backlog=1024,
                                               interface="0.0.0.0")]
        except CannotListenError:
            v6.stopListening()
            raise

    def stopService(self):
        super().stopService()
        ds = [defer.maybeDeferred(p.stopListening) for p in self.ports]
        self.ports = []
        self.core.shutdown("controller stopping")
        for e in list(self.entries.values()):
            self._remove_socket(e)
        if self.mux_port is not None:
            ds.append(defer.maybeDeferred(self.mux_port.stopListening))
            self.mux_port = None
        if self.pidfile:
            try:
                os.unlink(self.pidfile)
            except OSError:
                pass
        return defer.DeferredList(ds)

    def reload(self) -> str | None:
        """Re-read the TLS material and the VP metadata file; says what was reloaded."""
        done = [w for w in (self.reload_tls(), self.reload_meta()) if w]
        return ", ".join(done) or None

    def reload_live(self, new) -> str | None:
        """SIGHUP (DaemonRoot): TLS files, metadata, and from ``new`` (the Options
        parsed again, or None) the registration limits.  Returns what it reloaded."""
        # quiet: the one SIGHUP line (HupReloader) says what was reloaded; failures
        # are still logged, each with its reason
        done = [w for w in (self.reload_tls(quiet=True), self.reload_meta(quiet=True)) if w]
        if new is not None:
            rate = new.get("registration-rate") or 0.0
            burst = new.get("registration-burst")
            if burst is None:
                burst = max(3.0, 2 * rate)
            old = self.admission.rate
            if (rate, burst) != (old.rate, old.burst):
                self.admission.rate = RegistrationRate(self.reactor, rate, burst)
                done.append(f"registration rate {old.rate:g}/s (burst {old.burst:g}) -> "
                            f"{rate:g}/s (burst {burst:g})" if rate else
                            "registration rate: no limit")
        return ", ".join(done) or None

    # ---- --status and --metrics --------------------------------------------

    def status_vps(self) -> list[dict]:
        """One dict per VP held (live and zombies), for the status document."""
        out = []
        for sess in list(self.core.sessions.values()):
            e = sess.context
            if not isinstance(e, VPEntry):
                continue
            out.append({
                "monitor": sess.name.decode("ascii", "replace") if sess.name else None,
                "label": sess.label,
                "address": sess.current_peer,
                "connected_since": e.connected_since,
                "state": "up" if sess.conn is not None else "away",
                "away_since": e.away_since,
                "socket": e.path,
                "mux_id": e.mux_id,
                "resumes": e.resumes,
                "channels": len(sess.channels),
                "users": len(e.users),
                "bytes_in": e.bytes_in,
                "bytes_out": e.bytes_out,
            })
        return out

    def gauges(self) -> dict:
        """Now: VPs connected / zombie, users, channels, mux clients, bytes relayed."""
        connected = zombie = users = channels = 0
        b_in, b_out = self._gone_bytes_in, self._gone_bytes_out
        for sess in self.core.sessions.values():
            if sess.conn is not None:
                connected += 1
            else:
                zombie += 1
            channels += len(sess.channels)
            e = sess.context
            if isinstance(e, VPEntry):
                users += len(e.users)
                b_in += e.bytes_in
                b_out += e.bytes_out
        return {"connected": connected, "zombie": zombie, "users": users, "channels": channels,
                "mux_clients": len(self.hub.clients) if self.hub is not None else 0,
                "bytes_from_vps": b_in, "bytes_to_vps": b_out}

    def set_metrics(self, metrics) -> None:
        """Count events in ``metrics`` (a RemotedMetrics) from now on."""
        self.metrics = metrics

    def _load_meta(self) -> dict:
        """The metadata file, warnings logged; `SystemExit` at start if unusable."""
        try:
            meta, warnings = load_metadata(self.meta_path)
        except MetadataError as e:
            raise SystemExit(f"ixp-remoted: {e}") from None
        for w in warnings:
            log.warn("{warning}", warning=w)
        return meta

    def reload_meta(self, quiet: bool = False) -> str | None:
        """Re-read ``--meta``; a bad file keeps the old metadata (one line)."""
        if not self.meta_path or self.hub is None:
            return
        try:
            meta, warnings = load_metadata(self.meta_path)
        except MetadataError as e:
            log.error("metadata reload failed, keeping the old metadata: {err}", err=str(e))
            return None
        for w in warnings:
            log.warn("{warning}", warning=w)
        self.hub.meta = meta
        if not quiet:
            log.info("reloaded: metadata for {n} monitors from {path}", n=len(meta),
                     path=self.meta_path)
        return f"metadata for {len(meta)} monitors"

    def _listen_mux(self) -> None:
        path = self.mux_path
        if os.path.lexists(path):
            listening = _listening_unix_paths()
            live = path in listening if listening is not None else not _refuses(path)
            if live:
                raise SystemExit(f"ixp-remoted: mux socket {path} is in use by another process")
            try:
                os.unlink(path)
            except OSError as e:
                raise SystemExit(f"ixp-remoted: cannot remove stale {path}: {e.strerror}") from None
        old = os.umask(0o077)
        try:
            self.mux_port = self.reactor.listenUNIX(path, MuxFactory(self.hub), mode=self.mode)
        except Exception as e:
            raise SystemExit(f"ixp-remoted: cannot create mux socket {path}: {e}") from None
        finally:
            os.umask(old)
        log.info("mux socket {path}", path=path)

    def reload_tls(self, quiet: bool = False) -> str | None:
        """Re-read the certificate and key (SIGHUP); sessions are untouched."""
        if self.tls is None:
            return None
        try:
            self.tls.reload()
        except Exception as e:
            log.error("TLS reload failed, keeping the old certificate: {err}", err=str(e))
            return None
        if not quiet:
            log.info("TLS certificate and key reloaded")
        return "TLS certificate and key"

    def _clean_stale(self) -> None:
        """Remove sockets in the directory that nobody listens on any more.

        Liveness comes from /proc/net/unix (a listening socket has the
        ACCEPTCON flag), not from a test connect: connecting to another
        controller's live VP socket would open a channel on that VP.
        """
        listening = _listening_unix_paths()
        for name in os.listdir(self.socket_dir):
            path = os.path.join(self.socket_dir, name)
            try:
                if not stat.S_ISSOCK(os.lstat(path).st_mode):
                    continue
            except OSError:
                continue
            if listening is not None:
                stale = path not in listening
            else:  # no /proc: fall back to a connect attempt
                stale = _refuses(path)
            if stale:
                try:
                    os.unlink(path)
                    log.info("removed stale socket {path}", path=path)
                except OSError:
                    pass

    # ---- ControllerEvents ------------------------------------------------

    def vp_new(self, sess: ControllerSession) -> None:
        if self.socket_dir is None:
            entry = VPEntry(sess, None, admission=self.admission,
                            connected_since=self.reactor.seconds())
            sess.context = entry
            self._announce(entry)
            self.metrics.registered()
            vplog.info("VP {label} registered", label=sess.label)
            return
        path = os.path.join(self.socket_dir, sess.label)
        if len(path.encode()) > MAX_UNIX_PATH:
            log.warn("VP {label}: socket path too long, refusing the VP", label=sess.label)
            sess.terminate("socket path too long")
            return
        if path in self.entries or os.path.lexists(path):
            log.warn("VP {label}: socket {path} already exists, refusing the VP",
                     label=sess.label, path=path)
            sess.terminate("socket name in use")
            return
        entry = VPEntry(sess, path, admission=self.admission,
                        connected_since=self.reactor.seconds())
        old = os.umask(0o077)
        try:
            entry.port = self._listen_unix(path, UserFactory(entry))
        except Exception as e:
            log.error("VP {label}: cannot create socket {path}: {err}", label=sess.label,
                      path=path, err=str(e))
            sess.terminate("cannot create its socket")
            return
        finally:
            os.umask(old)
        sess.context = entry
        self.entries[path] = entry
        self.admission.listeners += 1
        self._announce(entry)
        self.metrics.registered()
        vplog.info("VP {label} registered (socket {path})", label=sess.label, path=path)

    def _listen_unix(self, path: str, factory: Factory) -> IListeningPort:
        """A VP's socket: a `QuietUnixPort` on a real reactor; elsewhere (the
        tests' memory reactor) the reactor's own listenUNIX."""
        from twisted.internet.posixbase import PosixReactorBase
        if isinstance(self.reactor, PosixReactorBase):
            port = QuietUnixPort(path, factory, mode=self.mode, reactor=self.reactor)
            port.startListening()
            return port
        return self.reactor.listenUNIX(path, factory, mode=self.mode)

    def _announce(self, entry: VPEntry) -> None:
        """Tell the mux clients (if any) about a new VP."""
        if self.hub is None:
            return
        sess = entry.session
        peer = sess.peer_id
        ipv6 = ":" not in peer or peer.count(":") > 1
        address = peer.rsplit(".", 1)[0] if ipv6 else peer.rsplit(":", 1)[0]

        def opener(conn: MuxServerConnection, client_channel: int, entry=entry):
            if entry.session.gone:
                return None
            return MuxUser(entry, conn, client_channel)

        entry.mux_id = self.hub.add_vp(sess, sess.name.decode("ascii") if sess.name else None,
                                       address, ipv6, self.reactor.seconds(), opener)

    def vp_resumed(self, sess: ControllerSession) -> None:
        self.admission.zombie_removed(sess.magic)
        e = sess.context
        if isinstance(e, VPEntry):
            e.connected_since = self.reactor.seconds()
            e.away_since = None
            e.resumes += 1
        self.metrics.resumed()
        vplog.info("VP {label} resumed from {peer}", label=sess.label, peer=sess.current_peer)

    def vp_detached(self, sess: ControllerSession, reason: str) -> None:
        e = sess.context
        if isinstance(e, VPEntry):
            e.away_since = self.reactor.seconds()
        if reason.startswith("protocol error"):
            self.metrics.protocol_error(protocol_error_kind(reason))
        vplog.info("VP {label} away from {peer}: {reason}; keeping its state for {z:g} s",
                 label=sess.label, peer=sess.current_peer, reason=reason, z=self.core.zombie_time)
        for magic in self.admission.zombie_added(sess.magic):
            old = self.core.sessions.get(magic)
            if old is not None:
                self.free_zombie(old, f"more than {self.admission.max_zombies} zombies "
                                      f"(--max-zombies), this was the oldest")
            else:
                self.admission.zombie_removed(magic)

    def free_zombie(self, sess: ControllerSession, why: str) -> None:
        """Free a zombie's state now (its users get EOF); one log line (vp_gone)."""
        sess.terminate(why)

    def vp_gone(self, sess: ControllerSession, reason: str) -> None:
        self.admission.zombie_removed(sess.magic)
        entry = sess.context
        if not isinstance(entry, VPEntry):
            return
        self._gone_bytes_in += entry.bytes_in
        self._gone_bytes_out += entry.bytes_out
        self.metrics.departed(departure_reason(reason))
        vplog.info("VP {label} gone: {reason}", label=sess.label, reason=reason)
        if self.hub is not None:
            # VP_DEPART; sc_remoted sends no CHANNEL_CLOSE for its channels
            self.hub.remove_vp(sess, lambda conn: [u.client_channel for u in entry.users.values()
                                                   if isinstance(u, MuxUser) and u.conn is conn])
        users = list(entry.users.values())
        entry.users.clear()
        for u in users:
            u.finished()
        self._remove_socket(entry)

    def _remove_socket(self, entry: VPEntry) -> None:
        if entry.path is None:
            return
        if self.entries.get(entry.path) is entry:
            del self.entries[entry.path]
        port, entry.port = entry.port, None
        if port is not None:
            self.admission.listeners -= 1
            port.stopListening()  # Twisted unlinks the socket file

    def channel_data(self, sess: ControllerSession, channel: int, data: bytes) -> None:
        entry = sess.context
        entry.bytes_in += len(data)
        u = entry.users.get(channel)
        if u is not None:
            u.deliver(data)

    def channel_fin(self, sess: ControllerSession, channel: int) -> None:
        u = sess.context.users.pop(channel, None)
        if u is not None:
            u.finished()

    def channel_drained(self, sess: ControllerSession, channel: int) -> None:
        entry = sess.context
        u = entry.users.get(channel) if isinstance(entry, VPEntry) else None
        if u is not None:
            u.resume_reading()
