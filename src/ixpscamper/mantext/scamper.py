"""Prose of ixp-scamper(1)."""

SUMMARY = "run ping and trace measurements once, like scamper -I, -i and -f"

SYNOPSIS = """
`ixp-scamper` [`-p` ~pps~] [`-w` ~window~] [`-O` `text`|`warts`|`json`] [`-o` ~outfile~] `-I` ~cmd~ ...
`ixp-scamper` [`-p` ~pps~] [`-w` ~window~] [`-O` ~format~] [`-o` ~outfile~] [`-c` ~cmd~] `-i` ~addr~ ...
`ixp-scamper` [`-p` ~pps~] [`-w` ~window~] [`-O` ~format~] [`-o` ~outfile~] [`-c` ~cmd~] `-f` ~file~
"""

DESCRIPTION = """
`ixp-scamper` runs a set of `ping` and `trace` measurements with
ixpscamper's own prober and exits when all have finished, like
`scamper`(1) run with `-I`, `-i` or `-f`.
It needs root, or the capabilities CAP_NET_RAW (raw and packet sockets) and
CAP_NET_ADMIN (for `trace -r`: ARP/neighbour discovery and binding to the
interface).

The commands are scamper's command language.
`trace -r ROUTER DST` sends the probes to the link-layer address of
`ROUTER`, a router on the same LAN, so the trace leaves through that router
whatever the routing table says: this is how a route collector measures
the path through each member of an exchange.

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

EXAMPLES = """
Trace through member router 192.0.2.2 of the lab (`ixp-lab`(8)):

    ip netns exec ixplab-coll ixp-scamper -I 'trace -r 192.0.2.2 198.51.100.66'

Ping two addresses at 100 packets per second, warts to a file:

    ixp-scamper -p 100 -O warts -o out.warts -c 'ping -c 3' -i 198.51.100.66 198.18.1.2
"""

SEE_ALSO = ["scamper(1)", "ixp-attach(1)", "ixp-vp(8)", "ixp-warts2text(1)", "ixp-warts2json(1)",
            "ixp-lab(8)"]
