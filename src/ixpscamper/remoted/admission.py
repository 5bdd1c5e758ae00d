"""Who may connect and register with ixp-remoted: the admission policy, sans-IO.

Nothing here touches a socket; time comes from an injected ``IReactorTime``
and the daemon reports what it opens and closes.  The daemon
(`ixpscamper.remoted.service`) asks three questions:

``accept_connection(source)``
    A TCP connection to a VP listener was accepted.  Refused (closed at
    once) when the file descriptors in use reach ``fd_limit - fd_reserve``:
    the reserve is kept for users on the VP sockets and for the listeners,
    so a flood of VPs never locks users out.
``registration(source, replaces, vps)``
    A MASTER_NEW arrived (after the TLS name checks).  In this order:

    1. the source's token bucket (``rate`` registrations per second with a
       burst of ``burst``; off when ``rate`` is 0) -- refused when empty;
    2. a MASTER_NEW that replaces a session we hold (same magic) needs no
       new resources and is admitted;
    3. the fd guard as above (a registration adds the VP's unix socket);
    4. ``max_vps`` sessions (live VPs + zombies) at most: when full, the
       oldest zombie is freed to make room (the `Decision` names it; the
       daemon logs one line for it); with no zombie to free, refused.
``zombie_added(key)``
    A VP went away and is kept for a resume.  Beyond ``max_zombies``, the
    oldest zombies are returned to be freed (one log line each).

Sources are IPv4 addresses, or the /64 of an IPv6 address (one host
usually owns a whole /64, so per-address buckets would be no limit at all).
The bucket table is bounded (``max_sources``): idle (full) buckets are
dropped first, then the least recently used.

Each VP costs two file descriptors (its TCP connection and its unix
socket), so ``capacity(fd_limit, fd_reserve) = (fd_limit - fd_reserve) // 2``
VPs; ``raise_nofile()`` lifts the soft RLIMIT_NOFILE to the hard limit at
start.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from typing import Callable, Hashable, Optional

import attrs
from twisted.internet.interfaces import IReactorTime

__all__ = [
    "TokenBucket", "RegistrationRate", "Decision", "Admission", "capacity", "default_reserve",
    "raise_nofile", "source_key", "parse_rate",
]


def default_reserve(fd_limit: int) -> int:
    """File descriptors kept back for users and listeners: 1/32 of the
    limit, at least 64 (never more than half the limit)."""
    return min(fd_limit // 2, max(64, fd_limit // 32))


def capacity(fd_limit: int, fd_reserve: int) -> int:
    """How many VPs fit: two descriptors each, after the reserve."""
    return max(0, (fd_limit - fd_reserve) // 2)


def raise_nofile(getrlimit: Optional[Callable] = None, setrlimit: Optional[Callable] = None
                 ) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (old, new) soft.

    An unlimited hard limit is capped at 1 << 20 (what Linux allows by
    default for nr_open).  If the raise fails the old limit stays.
    """
    import resource
    get = getrlimit or resource.getrlimit
    put = setrlimit or resource.setrlimit
    soft, hard = get(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft, soft
    try:
        put(resource.RLIMIT_NOFILE, (want, hard))
    except (OSError, ValueError):
        return soft, soft
    return soft, want


def source_key(host: str) -> str:
    """The rate-limited unit for a peer address: the IPv4 address (also
    from a v4-mapped IPv6 one), or the /64 of an IPv6 address."""
    h = host.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return h
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def parse_rate(text: str) -> float:
    """``R`` or ``R/s`` (registrations per second, >= 0) -> R; ValueError
    with a one-line message otherwise."""
    t = text.strip()
    if t.endswith("/s"):
        t = t[:-2]
    try:
        r = float(t)
    except ValueError:
        raise ValueError(f"'{text}' is not a rate (R or R/s)") from None
    if not r >= 0 or r == float("inf"):
        raise ValueError(f"'{text}': the rate must be a number >= 0")
    return r


@attrs.define
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; starts full."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.burst


class RegistrationRate:
    """Per-source token buckets, in a table of at most ``max_sources``."""

    def __init__(self, clock: IReactorTime, rate: float, burst: float,
                 max_sources: int = 65536) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, source: str) -> bool:
        """One registration from ``source`` now: within its rate?"""
        if self.rate == 0:
            return True
        now = self.clock.seconds()
        b = self.buckets.get(source)
        if b is None:
            if len(self.buckets) >= self.max_sources:
                self._prune(now)
            b = self.buckets[source] = TokenBucket(self.rate, self.burst, self.burst, now)
        else:
            self.buckets.move_to_end(source)
        return b.take(now)

    def _prune(self, now: float) -> None:
        # A full bucket is the same as no bucket: drop those first ...
        for k in [k for k, b in self.buckets.items() if b.full(now)]:
            del self.buckets[k]
        # ... then the least recently used, down to 7/8 of the table.
        while len(self.buckets) >= self.max_sources * 7 // 8 and self.buckets:
            self.buckets.popitem(last=False)


@attrs.frozen
class Decision:
    """Answer to a registration: ``refusal`` (None = admitted) and the keys
    of zombies the daemon must free first, oldest first."""

    refusal: Optional[str] = None
    evict: tuple = ()


class Admission:
    """The admission policy; see the module docstring.

    The daemon keeps ``connections`` (TCP connections to VP listeners, also
    before their handshake), ``listeners`` (VP unix sockets) and ``users``
    (connections on them) up to date; ``fd_base`` is what the process had
    open besides those (log, listeners, ...), measured at start.
    """

    def __init__(self, clock: IReactorTime, fd_limit: int, fd_reserve: Optional[int] = None,
                 fd_base: int = 0, max_vps: Optional[int] = None,
                 max_zombies: Optional[int] = None, rate: float = 0.0,
                 burst: Optional[float] = None) -> None:
        self.clock = clock
        self.fd_base = fd_base
        self.connections = 0
        self.listeners = 0
        self.users = 0
        self.max_vps_option = max_vps
        self.max_zombies = max_zombies
        self.fd_reserve_option = fd_reserve
        self.set_fd_limit(fd_limit)
        if burst is None:
            burst = max(3.0, 2.0 * rate)
        self.rate = RegistrationRate(clock, rate, burst)
        self.zombies: OrderedDict[Hashable, None] = OrderedDict()   # oldest first

    def set_fd_limit(self, fd_limit: int) -> None:
        """(Re)compute the reserve and the VP limit for this fd limit."""
        self.fd_limit = fd_limit
        r = self.fd_reserve_option
        self.fd_reserve = default_reserve(fd_limit) if r is None else r
        self.capacity = capacity(fd_limit, self.fd_reserve)
        m = self.max_vps_option
        self.max_vps = self.capacity if m is None else m

    # ---- accounting ------------------------------------------------------

    @property
    def fds_in_use(self) -> int:
        return self.fd_base + self.connections + self.listeners + self.users

    def _fd_problem(self, more: int) -> Optional[str]:
        room = self.fd_limit - self.fd_reserve
        if self.fds_in_use + more > room:
            return (f"near the file descriptor limit ({self.fds_in_use} of {self.fd_limit} in use, "
                    f"{self.fd_reserve} kept for users and listeners)")
        return None

    def zombie_added(self, key: Hashable) -> list:
        """A VP became a zombie; returns the zombies to free now, oldest first."""
        self.zombies[key] = None
        self.zombies.move_to_end(key)
        if self.max_zombies is None:
            return []
        over = len(self.zombies) - self.max_zombies
        return list(self.zombies)[:over] if over > 0 else []

    def zombie_removed(self, key: Hashable) -> None:
        """A zombie resumed or was freed (harmless for a key not held)."""
        self.zombies.pop(key, None)

    # ---- decisions -------------------------------------------------------

    def accept_connection(self, source: str) -> Optional[str]:
        """None to keep a new VP connection, else why it is closed at once.

        Asked before the connection is counted in ``connections``.
        """
        return self._fd_problem(1)

    def registration(self, source: str, replaces: bool, vps: int) -> Decision:
        """May ``source`` register a VP now (``vps`` sessions are held)?"""
        key = source_key(source)
        if not self.rate.allow(key):
            return Decision(f"more than {self.rate.rate:g} registrations/s from {key} "
                            f"(burst {self.rate.burst:g})")
        if replaces:
            return Decision()
        problem = self._fd_problem(1)
        if problem:
            return Decision(problem)
        over = vps + 1 - self.max_vps
        if over <= 0:
            return Decision()
        if over > len(self.zombies):
            return Decision(f"VP limit reached ({self.max_vps} VPs, no zombie to free)")
        return Decision(None, tuple(list(self.zombies)[:over]))
