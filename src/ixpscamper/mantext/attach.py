"""Prose of ixp-attach(1)."""

SUMMARY = "feed commands to a scamper-compatible vantage point and write its results"

DESCRIPTION = """
`ixp-attach` connects to a vantage point (VP) that speaks scamper's control
protocol, sends it measurement commands read one a line (`ping`, `trace`,
...; the language is described in `ixp-scamper`(1)), and writes the
results as they arrive, as warts (the default) or as JSON objects one a
line.
It has the interface of scamper's `sc_attach`(1) and works with the real
scamper as well as with `ixp-vp`(8).

The VP is reached in one of three ways: through a controller's per-VP unix
socket (`-R`: `ixp-remoted`(8) or `sc_remoted`(1); the socket is already
attached to the VP, so no `attach` command is sent), through a VP's own
control socket (`-U`: `scamper -U` or `ixp-vp --unix`), or through a VP's
control port (`-p`: `scamper -P` or `ixp-vp --control-port`).

Input is split on newline characters only; one carriage return before a
newline is dropped, the same for a file and a pipe.
A line holding a byte that is not printable ASCII is not sent (scamper
would abandon the whole run on it): it is reported on standard error,
escaped, and counted as failed.
Nothing that came from the VP or the input reaches standard error
unescaped.

Commands are sent as the VP asks for them (`MORE`), unless `-O impatient`
is given.
A command the VP refuses is printed on standard error with the VP's `ERR`
line, counted, and the run goes on.
Every command is accounted for: when the connection ends with accepted
commands unanswered, commands sent but never acknowledged, commands never
sent, or without the final cycle-stop record, one line says so, for example

    ixp-attach: connection ended with 234 of 300 accepted commands unanswered

The session ends as the control protocol asks: `done` is sent once every
command has been answered, then `ixp-attach` reads until the VP closes the
connection.

Results are written as they arrive.
An output file (`-o FILE`) is opened before anything is sent but emptied
only when the first record arrives, so a run that fails earlier leaves an
existing file as it was.
Binary warts is not written to a terminal.
When the reader of standard output goes away (`| head`) the run ends
quietly with status 141, like the warts tools.
On a terminal, a progress line on standard error shows the counts and, when
nothing has come from the VP for a while with commands outstanding, for how
long.

Both result dialects are read: `DATA <n> id-N` (scamper since 2023,
`ixp-vp` by default) and the bare `DATA <n>` of scamper 20211212.
"""

OPTION_NOTES = {
    "-R": """
The socket of one VP in the controller's socket directory, named
`[monitor-]address:port` (IPv6: `address.port`).
With `ixp-remoted` the name stays the same through an outage of the VP, and
a user connected during the outage sees only a delay.
""",
    "-p": """
Without an address, 127.0.0.1.  An IPv6 address is written in brackets:
`[::1]:31338`.
""",
    "-c": """
For example `-c 'trace -P icmp-paris'` with an input of bare addresses
sends `trace -P icmp-paris ADDR` for each.
""",
    "-O": """
May be given twice to set both.
`random` reads the whole input before the first command is sent.
""",
    "-D": """
The process detaches (as `daemon(1, 0)` does) once the connection to the
VP is established; it then has no standard input, output or error, hence
the need for files.
""",
}

EXIT_STATUS = """
0 :: every command was accepted and answered.
1 :: a command failed (refused with `ERR`, not printable, or unanswered), the
  connection ended early, or the VP could not be reached.
2 :: a usage error (bad option or argument), or binary output to a terminal.
130 :: interrupted (SIGINT).
141 :: the reader of standard output went away.
"""

SIGNALS = """
SIGINT ends the run with status 130; what has arrived so far has been
written.  SIGPIPE on standard output ends it quietly with status 141.
"""

EXAMPLES = """
Trace through member router 192.0.2.2 from a VP registered with a
controller, and print the result as text:

    echo 'trace -r 192.0.2.2 198.51.100.66' |
        ixp-attach -R /run/ixp-remoted/rc1-10.0.0.5:41234 -i - -o - | ixp-warts2text

A file of destinations, each traced with Paris ICMP, in random order, into a
warts file:

    ixp-attach -R /run/ixp-remoted/rc1-10.0.0.5:41234 -c 'trace -P icmp-paris' \\
        -O random -i dsts.txt -o out.warts

A local VP's control socket, JSON out:

    ixp-attach -U /run/ixp-vp/control.sock -i cmds.txt -o - --format json
"""

COMPATIBILITY = """
The options are `sc_attach`'s; `--format`, `-h` and `--help` are
additions.
The Debian `sc_attach` of scamper 20211212 cannot read the `DATA <n> id-N`
header of newer VPs; `ixp-attach` reads both, so it can be used with either
(and `ixp-vp --attach-dialect 2021` serves the old `sc_attach`).
"""

SEE_ALSO = ["sc_attach(1)", "scamper(1)", "sc_remoted(1)", "ixp-remoted(8)", "ixp-vp(8)",
            "ixp-warts2text(1)", "ixp-warts2json(1)", "ixp-scamper(1)"]
