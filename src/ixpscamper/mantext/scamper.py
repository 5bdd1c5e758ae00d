"""Prose of ixp-scamper(1)."""

SUMMARY = "run ping, trace, tracelb and dealias measurements once, like scamper -I, -i and -f"

SYNOPSIS = """
`ixp-scamper` [`-p` ~pps~] [`-w` ~window~] [`-O` `text`|`warts`|`json`] [`-o` ~outfile~] `-I` ~cmd~ ...
`ixp-scamper` [`-p` ~pps~] [`-w` ~window~] [`-O` ~format~] [`-o` ~outfile~] [`-c` ~cmd~] `-i` ~addr~ ...
`ixp-scamper` [`-p` ~pps~] [`-w` ~window~] [`-O` ~format~] [`-o` ~outfile~] [`-c` ~cmd~] `-f` ~file~
"""

DESCRIPTION = """
`ixp-scamper` runs a set of `ping`, `trace`, `tracelb` and `dealias`
measurements with ixpscamper's own prober and exits when all have finished, like
`scamper`(1) run with `-I`, `-i` or `-f`.
It needs root, or the capabilities CAP_NET_RAW (raw and packet sockets) and
CAP_NET_ADMIN (for `trace -r`: ARP/neighbour discovery and binding to the
interface).

The commands are scamper's command language.
`trace -r ROUTER DST` sends the probes to the link-layer address of
`ROUTER`, a router on the same LAN, so the trace leaves through that router
whatever the routing table says: this is how a route collector measures
the path through each member of an exchange.
`tracelb -r ROUTER` does the same for the MDA traceroute; `dealias` has
no such option (scamper's `dealias -r` is the radargun round wait), so its
probes follow the routing table.

Every command is parsed, and checked against what the prober can do,
before anything is sent; a bad one ends the run with one line

    ixp-scamper: bad command 'X': reason

and exit status 1.
Results are written as each measurement finishes: warts as
`scamper -O warts` writes it (list, cycle start, the records, cycle stop),
text as `sc_warts2text`(1) prints it and JSON as `sc_warts2json`(1) prints it.
A measurement that could not run is reported on standard error
(`ixp-scamper: 'CMD': reason`) and the others still run.
"""

OPTION_NOTES = {
    "-p": """
The budget is shared by all measurements running at once.
""",
    "-f": """
Blank lines are skipped.
""",
}

EXIT_STATUS = """
0 :: every measurement ran.
1 :: a bad command, or a measurement that could not run.
2 :: a usage error (a bad or missing option), or an internal error; one line on standard error.
130 :: interrupted (Ctrl-C).
141 :: standard output was closed (`| head`).
130 :: interrupted (SIGINT).
141 :: the reader of standard output went away.
"""

EXTRA_SECTIONS = [
    ("tracelb", """
`tracelb` [~options~] ~address~ is scamper's MDA traceroute (the Multipath
Detection Algorithm): it finds every next hop of every hop of
load-balanced paths, to 95 or 99 % confidence, and writes one warts
`tracelb` record of nodes and links.
The options are scamper's:

`-P` ~method~ :: `udp-dport` (default), `icmp-echo`, `udp-sport`, `tcp-sport` or
  `tcp-ack-sport`: which header field makes the flows.  IPv6 takes the UDP and
  ICMP methods only.
`-c` ~confidence~ :: 95 (default) or 99.
`-d` ~port~ :: the destination port (default 33435; the first flow of `udp-dport`).
`-s` ~port~ :: the source port (the first flow of the sport methods).  scamper
  20211212 reads this option but does not use it; 2026 does.
`-f` ~ttl~ :: the first TTL probed (1 to 254, default 1).
`-g` ~n~ :: the gap limit (1 to 5, default 3): silent hops in a row that end a branch.
`-q` ~n~ :: attempts per probe (1 to 5, default 2).
`-Q` ~n~ :: the most probes to send (50 to 65535, default 3000).
`-w` ~seconds~ :: how long to wait for a reply (1 to 10, default 5).
`-W` ~wait~ :: the time between probes, in hundredths of a second
  (15 to 200, default 25), or 2026's `0.5s` / `150ms`.
`-t` ~tos~ :: the IP type of service.
`-r` ~router~ :: send the probes to this router's link-layer address, as `trace -r`.
`-U` ~id~ :: a user id, recorded in the result.

A hop where a flow got no reply at all, or where one flow was answered
by several addresses, is recorded as scamper records it: the link from the
node before it ends in `*` and probing goes on one TTL further with the
same flows, so that `sc_warts2text`(1) prints

    192.0.2.1 -> * -> 198.51.100.66
    198.18.1.2 -> (198.18.12.2, *) -> 203.0.113.66

until one address answers every flow, a reply is not a time exceeded
message, or `-g` silent hops in a row end it (`192.0.2.1 -> * -> *`).
`-O ptr` is refused (the prober resolves no names).
"""),
    ("dealias", """
`dealias` [~options~] ~addresses~ is scamper's alias resolution: are two
addresses (or which of several) interfaces of one router?  One warts
`dealias` record; its result is `aliases`, `not-aliases`, `none` (cannot
tell), `ipid-echo` (the target echoes our IP-IDs) or `halted`.
`-m` picks the method:

`mercator` ~a~ :: (the default) a UDP probe to a closed port of ~a~; a port unreachable
  from another address names an alias.  IPv4 and IPv6.
`ally` ~a b~ :: probes ~a~ and ~b~ in turn; IP-IDs from one counter mean aliases.
  IPv4 and IPv6 (IPv6 needs a probedef `-s` and `-M`: without them the
  replies carry no identification and the result is `none`).
`radargun` ~a b ...~ :: rounds over every address, collecting IP-IDs for
  analysis later (result `none`).  IPv4 and IPv6.
`prefixscan` ~a b/len~ :: looks for an alias of ~a~ in the prefix of ~b~
  (`len` 24 to 31; ~b~'s own address is not probed, the rest of its /30
  first, then each larger half).  IPv4; exactly one `-p`.
`bump` :: two `-p` with `-i` addresses, probed in turn: once three replies are in
  sequence it sends the second address twice the last IP-ID gap in probes
  (at most `-f`), then checks the series again, `-q` times.  IPv4.

Options (as scamper 20211212; not every method takes every one):

`-p` '~probedef~' :: a probe definition, repeatable: `-P` `udp`|`udp-dport`|`icmp-echo`|
  `tcp-ack`|`tcp-ack-sport`|`tcp-syn-sport`, `-i` ~address~, `-d` ~dport~, `-F` ~sport~,
  `-c` ~icmp-checksum~, `-s` ~size~, `-t` ~ttl~ (255), `-M` ~mtu~.
  `tcp-ack` sends ACKs from one source port; `tcp-ack-sport` (ACKs) and
  `tcp-syn-sport` (SYNs) add one to the source port with each probe to an
  address.  A TCP probe counts the target's TCP reply to its ports (a RST
  from a closed port), with its IP-ID and flags; as scamper 20211212, over
  IPv4 only (over IPv6 the probes go out and only ICMP errors match).
  Every method but mercator (UDP only) takes them; a TCP probedef takes
  no `-s`.
`-q` ~n~ :: attempts (mercator 3, ally 5, radargun rounds 30, prefixscan 2, bump 3).
`-w` ~seconds~ :: wait for replies after the last probe (1 to 255, default 5).
`-W` ~ms~ :: between probes (ally and radargun 150, prefixscan and bump 1000).
`-r` ~ms~ :: radargun: a round starts no sooner than this after the last one did.
`-f` ~n~ :: the IP-ID fudge (ally and prefixscan 200); bump's limit on the probes
  it sends (30).
`-o` ~n~ :: prefixscan: replies in sequence that make aliases (3 to 255, default 5).
`-O` `nobs`|`inseq`|`shuffle` :: no byte-swapped IP-IDs; in sequence with no fudge;
  radargun's order shuffled each round.
`-x` ~address~ :: prefixscan: an address not to probe (repeatable).
`-U` ~id~ :: a user id, recorded in the result.
`-d`, `-s`, `-t` :: 20211212's mercator-only destination port, source port and TTL.

With a probedef `-M` over IPv6, a reply too big for it makes the run send
the target a packet-too-big, so that it fragments its replies; their
fragment identifications are read off the datalink, as scamper does.
Refused with one line: prefixscan and bump over IPv6 (scamper 20211212
refuses bump there and builds prefixscan's addresses from the first four
bytes of ~b~), and a TCP probedef with `-s` (scamper 20211212 makes no
measurement of it).
"""),
]

EXAMPLES = """
Trace through member router 192.0.2.2 of the lab (`ixp-lab`(8)):

    ip netns exec ixplab-coll ixp-scamper -I 'trace -r 192.0.2.2 198.51.100.66'

Every next hop of a load-balanced path, through member router 192.0.2.2:

    ixp-scamper -I 'tracelb -P icmp-echo -r 192.0.2.2 203.0.113.66'

Are 198.18.1.2 and 198.18.11.1 one router?  Is an alias of 198.18.1.2 in 198.18.11.0/29?

    ixp-scamper -I 'dealias -m ally -p "-P icmp-echo" 198.18.1.2 198.18.11.1'
    ixp-scamper -O json -I 'dealias -m prefixscan -p "-P udp" 198.18.1.2 198.18.11.1/29'

Ping two addresses at 100 packets per second, warts to a file:

    ixp-scamper -p 100 -O warts -o out.warts -c 'ping -c 3' -i 198.51.100.66 198.18.1.2
"""

SEE_ALSO = ["scamper(1)", "ixp-attach(1)", "ixp-vp(8)", "ixp-warts2text(1)", "ixp-warts2json(1)",
            "ixp-lab(8)"]
