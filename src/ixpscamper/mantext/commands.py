"""Prose of the command language section (ixp-scamper(1)): one entry per option letter.

Each letter of ``ixpscamper.commands``' option tables must have an entry
here and nothing else may (``ixpscamper.manpages`` checks): ``letter ->
(argument name or None for a flag, field of TraceOptions/PingOptions or
None, text)``.  Value ranges, methods and defaults come from the code.
"""

TRACE_INTRO = """
`trace` [~options~] ~address~ measures the path to the address hop by hop.
Options come before the address; flag letters may be combined (`-MQT`); a
value is the next word, or a quoted string.
"""

TRACE = {
    "c": ("CONFIDENCE", None, "confidence probing (95 or 99): refused, not supported by ixpscamper"),
    "d": ("PORT", "dport", "destination port of the probes (UDP and TCP methods; default 33435)"),
    "f": ("TTL", "firsthop", "the TTL to start at"),
    "g": ("N", "gaplimit", "give up after this many unresponsive hops in a row"),
    "G": ("ACTION", "gapaction", "at the gap limit: 1 stop, 2 send last-ditch probes"),
    "l": ("N", "loops", "loops tolerated before the trace stops (0: no loop detection)"),
    "m": ("TTL", "hoplimit", "the largest TTL probed (0: no limit but 255)"),
    "M": (None, "pmtud", "path MTU discovery (UDP methods, from the first hop)"),
    "N": ("N", "squeries", "hops probed at once (not more than -g)"),
    "o": ("OFFSET", None, "fragment traceroute: refused, not supported by ixpscamper"),
    "O": ("OPTION", None, "`dl` (datalink timestamps) or `const-payload`; `ptr` and "
                          "`dtree-noback` are refused"),
    "p": ("HEX", "payload", "payload bytes in hexadecimal (not with TCP methods)"),
    "P": ("METHOD", "method", "the probe method"),
    "q": ("N", "attempts", "attempts per hop"),
    "Q": (None, "all_attempts", "send every attempt to each hop, even after a reply"),
    "r": ("ADDRESS", "rtr", "send the probes to this router on the local LAN (its link-layer "
                            "address) whatever the routing table says: the path through one "
                            "member of an exchange"),
    "s": ("PORT", "sport", "source port (ICMP methods: the ICMP id); default derived from the "
                           "process id"),
    "S": ("ADDRESS", "src", "source address"),
    "t": ("TOS", "tos", "IP type of service / traffic class"),
    "T": (None, "ignore_ttl_dst", "ignore a time-exceeded message from the destination"),
    "U": ("ID", "userid", "a user id, recorded in the result"),
    "w": ("TIME", "wait", "time to wait for a reply: whole seconds 1-10 (a bare number is "
                          "seconds; 2026's `2s`, `2000ms` also)"),
    "W": ("TIME", "wait_probe", "least time between probes: steps of 10 ms up to 2 s (a bare "
                                "number counts 10 ms)"),
    "z": ("ADDRESS", None, "Doubletree: refused, not supported by ixpscamper"),
    "Z": ("FILE", None, "Doubletree: refused, not supported by ixpscamper"),
}

PING_INTRO = """
`ping` [~options~] ~address~ sends probes to the address and records the
replies.
"""

PING = {
    "A": ("N", "tcp_ack", "TCP acknowledgement number (TCP methods; default random)"),
    "B": ("HEX", "payload", "payload bytes in hexadecimal"),
    "c": ("N", "count", "probes to send"),
    "C": ("SUM", "icmp_sum", "the ICMP checksum the probes should have"),
    "d": ("PORT", "dport", "destination port (UDP and TCP methods; default 33435); for ICMP "
                           "methods the first sequence number (default 0)"),
    "F": ("PORT", "sport", "source port (ICMP methods: the ICMP id)"),
    "i": ("TIME", None, "time between probes, 1 ms to 20 s (default 1 s; a bare number is "
                        "seconds, `0.5`, `500ms` and `0.5s` are the same)"),
    "m": ("TTL", "ttl", "the probes' TTL"),
    "M": ("MTU", None, "Pseudo-MTU: refused, not supported by ixpscamper"),
    "o": ("N", "reply_count", "stop after this many replies (0: send every probe)"),
    "O": ("OPTION", None, "`dl` (datalink timestamps), `dltx` (2026: send on the datalink); "
                          "`spoof`, `nosrc`, `tbt` are refused"),
    "p": ("HEX", "pattern", "pattern to fill the probes with, in hexadecimal"),
    "P": ("METHOD", "method", "the probe method"),
    "r": ("ADDRESS", "rtr", "send the probes to this router on the local LAN (its link-layer "
                            "address)"),
    "R": (None, "record_route", "IPv4 record-route option"),
    "s": ("SIZE", None, "probe size including the IP header (default 84 for IPv4 ICMP, 104 "
                        "for IPv6 ICMP, 40 for UDP and TCP)"),
    "S": ("ADDRESS", "src", "source address"),
    "T": ("TS", None, "IPv4 timestamp option: `tsonly`, `tsandaddr` or "
                      "`tsprespec=ADDRESS,...`"),
    "U": ("ID", "userid", "a user id, recorded in the result"),
    "W": ("TIME", None, "time to wait after the last probe, 1 ms to 255 s (default the "
                        "larger of 1 s and -i)"),
    "z": ("TOS", "tos", "IP type of service / traffic class"),
}
