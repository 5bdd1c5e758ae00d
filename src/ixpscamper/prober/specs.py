"""From parsed commands (:mod:`ixpscamper.commands`) to resolved task specs.

The command parser keeps what the user said; a spec adds what the kernel
decides (source address, interface) and what the prober allocates (ports).
Anything the prober does not implement is refused here with one line.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Optional

from ..commands import destination_problem
from ..warts.records import PingFlag, PingMethod, TraceFlag, TraceMethod
from .net import ProberError
from .ping import TCP_PING_METHODS, PingSpec
from .trace import TCP_METHODS, TraceSpec
from .tracelb import TCP_TYPES as TRACELB_TCP_TYPES, TracelbSpec

__all__ = ["trace_spec", "ping_spec", "tracelb_spec", "unsupported", "check_family"]


def unsupported(options) -> Optional[str]:
    """Why the prober cannot run ``options``, or None."""
    # options built without parse_command (the Python API) get the same
    # destination check as a parsed command, before anything is sent
    problem = destination_problem(options.dst)
    if problem is not None:
        dst = options.dst
        shown = f"::ffff:{dst.ipv4_mapped}" if dst.version == 6 and dst.ipv4_mapped else str(dst)
        return f"cannot {options.kind} {shown}: it is {problem}"
    if options.kind == "dealias":
        from .dealias import unsupported_dealias
        return unsupported_dealias(options)
    if options.kind == "tracelb":
        if options.dst.version == 6 and options.method.startswith("tcp"):
            return f"tracelb -P {options.method} is not available for IPv6 destinations"
        return None
    if options.kind == "trace":
        if options.pmtud:
            return "trace -M (path MTU discovery) is not supported by the ixpscamper prober"
        if options.squeries > 1 and (options.method in ("tcp", "tcp-ack") or options.rtr is not None):
            # scamper 20211212 has no datalink handler for its parallel mode
            return "trace -N is not supported by the ixpscamper prober with TCP methods or -r"
        if len(options.payload) == 1 and options.method in ("udp-paris", "icmp-paris") \
                and not (options.const_payload and options.method == "udp-paris"):
            # scamper steers the paris checksum through the first two payload bytes
            return f"trace -P {options.method} needs a payload (-p) of at least 2 bytes"
        return None
    if options.timestamp is not None:
        return "ping -T (IP timestamp options) is not supported by the ixpscamper prober"
    if options.icmp_sum is not None:
        return "ping -C is not supported by the ixpscamper prober"
    if options.dl:
        return "ping -O dl is not supported by the ixpscamper prober"
    if options.record_route and options.dst.version != 4:
        return "ping -R needs an IPv4 destination"
    return None


def trace_spec(options, src: ipaddress._BaseAddress, sport: int, use_dl: bool) -> TraceSpec:
    method = TraceMethod(options.type_code)
    dport = options.dport
    if dport is None:
        dport = sport if method == TraceMethod.ICMP_ECHO_PARIS else 33435
    return TraceSpec(
        dst=options.dst, src=src, method=method, rtr=options.rtr, attempts=options.attempts,
        hoplimit=options.hoplimit, firsthop=options.firsthop, wait=options.wait,
        wait_probe=options.wait_probe, gaplimit=options.gaplimit, gapaction=options.gapaction,
        loops=options.loops, sport=sport, dport=dport, tos=options.tos,
        probe_size=options.probe_size, all_attempts=options.all_attempts,
        ignore_ttl_dst=options.ignore_ttl_dst, userid=options.userid,
        use_dl=use_dl or method in TCP_METHODS or bool(options.dl),
        flags=options.flags & (TraceFlag.DL | TraceFlag.CONSTPAYLOAD), payload=options.payload,
        const_payload=options.const_payload and method == TraceMethod.UDP_PARIS,
        squeries=options.squeries,
    )


def tracelb_spec(options, src: ipaddress._BaseAddress, sport: int) -> TracelbSpec:
    """A :class:`TracelbSpec` from :class:`~ixpscamper.tracelb_cmd.TracelbOptions`."""
    return TracelbSpec(
        dst=options.dst, src=src, method=options.type_code, rtr=options.rtr,
        confidence=options.confidence, sport=sport, dport=options.dport,
        firsthop=options.firsthop, gaplimit=options.gaplimit, attempts=options.attempts,
        probec_max=options.probec_max, tos=options.tos, userid=options.userid,
        wait_us=options.wait_us, wait_probe_us=options.wait_probe_us,
    )


def tracelb_uses_dl(options) -> bool:
    """Whether replies are read on the datalink: -r, or TCP (the RST from the destination)."""
    return options.rtr is not None or options.type_code in (int(t) for t in TRACELB_TCP_TYPES)


def ping_spec(options, src: ipaddress._BaseAddress, sport: int,
              rng: Optional[random.Random] = None) -> PingSpec:
    rng = rng or random.SystemRandom()
    method = PingMethod(options.method_code)
    tcp_seq = tcp_ack = 0
    if method in TCP_PING_METHODS:
        # scamper: -A (or a random number) is the ack, except for SYN and RST
        # probes where it becomes the sequence number and the ack is 0
        value = options.tcp_ack if options.tcp_ack is not None else rng.randrange(1, 1 << 32)
        if method in (PingMethod.TCP_SYN, PingMethod.TCP_RST):
            tcp_seq = value
        else:
            tcp_ack = value
            tcp_seq = rng.randrange(1, 1 << 32)
    flags = PingFlag.V4RR if options.record_route else 0
    data = options.payload or options.pattern
    return PingSpec(
        dst=options.dst, src=src, method=method, rtr=options.rtr, probe_count=options.count,
        probe_size=options.size, wait=options.wait_us // 1_000_000,
        wait_us=options.wait_us % 1_000_000, timeout=options.timeout,
        timeout_us=options.timeout_us, ttl=options.ttl,
        tos=options.tos, reply_count=options.reply_count, sport=sport, dport=options.dport,
        tcp_seq=tcp_seq, tcp_ack=tcp_ack, pattern=data, payload=bool(options.payload),
        flags=int(flags), userid=options.userid,
        use_dl=method in TCP_PING_METHODS,
    )


def check_family(options) -> None:
    for name in ("rtr", "src"):
        a = getattr(options, name, None)
        if a is not None and a.version != options.dst.version:
            raise ProberError(f"{name} {a} is not the same address family as {options.dst}")
