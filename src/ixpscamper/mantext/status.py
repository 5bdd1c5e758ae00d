"""Prose of ixp-status(1)."""

SUMMARY = "show the state of a running ixp-vp or ixp-remoted"

DESCRIPTION = """
`ixp-status` connects to a daemon's status socket (the unix socket given to
the daemon's `--status` option), reads the one JSON document the daemon
answers with, and prints it for people: for a VP its link to the controller
(state, since when, sessions, resumes, refusals, the last problem, channels,
bytes), its tasks (queued, running, done, by type) and its probes (sent,
replies, rate achieved against the limit); for a controller a table with
one row per VP it holds, live or zombie: monitor, address, connected since,
state (`up`, or `away` and for how long), resumes, channels, users, bytes
in and out.

With `--json` it prints a JSON list instead, for scripts: the controller's
VPs, or the VP itself as the only element; each object has at least
`monitor` and `state`.
"""

OPTION_NOTES = {
    "path": """
The socket is mode 0700 by default: run `ixp-status` as the daemon's user
or as root.
""",
}

EXIT_STATUS = """
0 :: the document was read and printed.
1 :: no such socket, permission denied, no answer (the daemon is not
  running), or the answer was not a status document; one line says which.
2 :: a usage error.
"""

EXAMPLES = """
    ixp-status /run/ixp-vp/status.sock
    ixp-status --json /run/ixp-vp/status.sock | jq -r '.[] | .monitor + " " + .state'
"""

SEE_ALSO = ["ixp-vp(8)", "ixp-remoted(8)"]
