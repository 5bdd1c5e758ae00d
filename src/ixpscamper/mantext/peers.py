"""Prose of ixp-peers(1)."""

SUMMARY = "compare each exchange member's BGP path with the path its router forwards on"

DESCRIPTION = """
A route collector on an Internet exchange LAN holds BGP sessions with the
members' routers and so knows, for a destination, the AS path each member
announces.
`ixp-peers` measures the path each member's router actually forwards on:
for every route in the collector's RIB whose next hop is on the exchange LAN
(`--ixp-lan`), it sends `trace -r NEXT_HOP DST` through a vantage point on
the collector, maps the hops to ASes with the same RIB, and compares the
trace's AS path with the BGP one.

The RIB is read from MRT dumps (`--rib`): TABLE_DUMP_V2 as BIRD, RouteViews
and RIPE RIS write them, and the older TABLE_DUMP; IPv4 and IPv6 files
combine.
A damaged dump is one warning line and the rest of it is used.
Destinations come from `--dst` and `--dst-file`; `--exclude` removes
prefixes and ASes from the plan (a pair is not traced when its destination
or next hop is in an excluded prefix, its peer AS is excluded, or the BGP
path crosses or is originated by an excluded AS), each with one line on
standard error.

A hop is mapped to ASes this way: an address on the exchange LAN belongs to
the member whose BGP session uses it; any other address to the origin AS(es)
of its longest match in the RIB (several when the peers disagree, all kept);
otherwise it is unmapped.
The trace's AS path is the sequence of mapped ASes with repeats merged and
silent or unmapped hops skipped; it is compared with the BGP path with
prepending removed.
Each (peer, destination) pair gets the first class that applies:

loop :: the trace stopped on a loop, or its AS path revisits an AS.
match :: the trace's AS path equals the BGP path.
unreached :: the trace did not reach the destination and what it saw is a
  prefix of the BGP path.
unmapped_hops :: the trace's path is a subsequence of the BGP path and some
  replying hops had no AS: the gap may be them.
missing_as :: an AS of the BGP path is not on the data path.
extra_as :: the data path crosses an AS the BGP path does not have.
different_as :: both: the paths disagree on which AS is where.

The campaign is resumable: each finished pair is recorded in a journal
(`--state`), and running the same command again after an interruption, or
after the VP went away, traces only the pairs not yet done.
The table of results is printed on standard output (unless `-q`); the other
outputs are written at the end, also when the campaign stopped early.
On a terminal a progress line on standard error shows how far it has got.
"""

OPTION_NOTES = {
    "--trace-opts": """
The value may start with `-`.  `-r` is not allowed: the next hop is chosen
per route.  The options are checked before anything is sent.
""",
    "--csv": """
One line per (peer, destination) after a header line: peer address and AS,
next hop, destination, prefix, class, BGP path, trace AS path, trace hops
(silent ones as `*`), reached, detail; paths separated by spaces.
""",
    "--state": """
Without `--state` and without any output file there is no journal and the
campaign cannot be resumed.
""",
    "-U": """
One of `-U`, `-R` and `--mux` (with `--vp`) is needed, except with
`--dry-run`.
""",
}

EXIT_STATUS = """
0 :: every planned pair was traced (or, with `--dry-run`, the plan was shown).
1 :: bad input (one line on standard error), or the campaign stopped early
  (the VP went away): run the same command again to continue.
2 :: a usage error.
130 :: interrupted by SIGINT (resumable).
143 :: stopped by SIGTERM (resumable).
"""

SIGNALS = """
SIGINT and SIGTERM stop the campaign: traces in flight are abandoned, what
is done is kept in the journal and written to the outputs, and the exit
status is 130 or 143.
"""

FILES = """
~FILE~.state :: the journal, next to the first of `--json`, `--csv`, `--warts`,
  `--html` given (in that order), unless `--state` names another.
"""

EXAMPLES = """
In the lab (`ixp-lab up --bgp`), through a controller's per-VP socket:

    ixp-peers --rib /run/ixplab-bgp/master4.1764583200.mrt --ixp-lan 192.0.2.0/24 \\
        --dst 198.51.100.66 -R /tmp/ixp/socks/coll-127.0.0.1:58086 --json out.json

Through a controller's mux socket, Paris ICMP, at most 50 probes per second:

    ixp-peers --rib rib.20261201.0000.mrt --ixp-lan 192.0.2.0/24 --ixp-lan 2001:db8:1::/64 \\
        --dst-file dsts.txt --mux /run/ixp-remoted/mux --vp rc1 \\
        --trace-opts '-P icmp-paris -q 1' --pps 50 --json out.json --html out.html

Only the plan:

    ixp-peers --rib rib.mrt --ixp-lan 192.0.2.0/24 --dst 198.51.100.66 --dry-run
"""

SEE_ALSO = ["ixp-vp(8)", "ixp-remoted(8)", "ixp-attach(1)", "ixp-lab(8)", "scamper(1)",
            "bgpdump(1)", "bird(8)"]
