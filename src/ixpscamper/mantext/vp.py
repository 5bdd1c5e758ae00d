"""Prose of ixp-vp(8)."""

SUMMARY = "scamper-compatible vantage point: connects out to a controller, runs ping and trace"

DESCRIPTION = """
`ixp-vp` is a vantage point (VP) in scamper's remote-control architecture,
like `scamper -R HOST:PORT -M NAME`, run as a `twistd`(1) plugin.
It connects out to a controller (`ixp-remoted`(8) or `sc_remoted`(1)),
registers under its monitor name, and runs the `ping` and `trace` commands
the controller's users send, many at once, sharing one probe budget
(`--pps`) and at most `--window` tasks.
Results go back as warts records in the control protocol's `DATA` blocks.
`trace -r ROUTER DST` sends the probes to the link-layer address of a router
on the same LAN: on a route collector, the path through a chosen member.
It can also serve the control protocol locally (`--unix`, `--control-port`),
like `scamper -U` and `-P`, for `ixp-attach -U` and `-p`.

TLS is on by default: the controller's certificate must chain to `--tls-ca`
(or the system's trust store) and name the host of `--remote`;
`--tls-cert`/`--tls-key` present a client certificate, which a controller
with a client CA requires to name the monitor.
When the link is lost, the VP reconnects and resumes its session: the first
retry comes within about a second, then with jittered exponential backoff
up to a minute.
While the controller still holds the session (its zombie time), nothing
is lost; if it refuses the resume, the VP registers anew.
When a connection fails because one side speaks TLS and the other does not,
the log line says so.

The command language (`trace` and `ping` and their options) is described
in `ixp-scamper`(1).
Every command is parsed, and checked against what the prober can run,
before the VP answers `OK`; a task that fails after that yields an error
record, so no task is left unanswered.
It needs CAP_NET_RAW (raw and packet sockets) and, for `trace -r`,
CAP_NET_ADMIN (ARP/neighbour discovery, binding to the interface); the
packaged unit runs it as an unprivileged dynamic user with just these two.
"""

METAVARS = {
    "--config": "FILE", "--remote": "HOST:PORT", "--monitor": "NAME", "--tls-ca": "PEM",
    "--tls-cert": "PEM", "--tls-key": "PEM", "--attach-dialect": "current|2021",
    "--pps": "PPS", "--window": "N", "--unix": "PATH", "--control-port": "[IP:]PORT",
    "--hostname": "NAME", "--status": "PATH", "--metrics": "[IP:]PORT",
    "--log-format": "text|json", "--log-level": "LEVEL",
}

OPTION_NOTES = {
    "--remote": """
One of `--remote`, `--unix` and `--control-port` is needed.
""",
    "--monitor": """
Letters, digits, `.` and `-` only, at most 254 characters, no `..`.
The controller names the VP's socket after it.
""",
    "--attach-dialect": """
The Debian `sc_attach` of scamper 20211212 cannot read `DATA <n> id-N`;
`ixp-attach` and current scamper tools read both.
""",
    "--config": """
Keys are the long option names (`pps = 100`, `remote = "host:31337"`);
`etc/ixp-vp.toml` is a commented example.
A repeatable option given on the command line replaces the file's values.
SIGHUP applies `pps`, `window`, the TLS files and `log-level` at once; it
logs one line naming what changed and what needs a restart.
""",
    "--metrics": """
The metric names start with `ixp_vp_`; see the operators' guide.
""",
}

SIGNALS = """
SIGHUP :: re-read `--config` and the TLS files: the probe rate, the window,
  the log level apply at once, new TLS material at the next connection;
  one log line says what was reloaded and which changed settings need a
  restart.  A bad new setting keeps every old one.
SIGTERM, SIGINT :: stop: the controller link is cut at once (in any state,
  also mid-handshake), the local control sockets are closed (the `--unix`
  socket file removed) and the prober is closed.
"""

FILES = """
/etc/ixpscamper/ixp-vp.toml :: the settings the systemd unit reads
  (`--config`); the unit's `--tls-*` credentials override its tls keys.
/etc/ixpscamper/tls/controller-ca.pem, vp.pem, vp.key :: the TLS files of
  the packaged unit (root, 0600), handed to the service with
  `LoadCredential=`.
/run/ixp-vp/ :: the unit's runtime directory (mode 0700), e.g. for
  `--unix /run/ixp-vp/control.sock`.
/usr/lib/systemd/system/ixp-vp.service :: the unit.
"""

EXAMPLES = """
A VP named rc1 with TLS and a client certificate:

    twistd -n --pidfile= ixp-vp -R controller.example.net:31337 -M rc1 \\
        --tls-ca ca.pem --tls-cert rc1.pem --tls-key rc1.key --pps 100

Registering with the Debian sc_remoted (no TLS there), for its sc_attach:

    twistd -n ixp-vp -R 192.0.2.1:31337 -M rc1 --no-tls --attach-dialect 2021

Only a local control socket, status and metrics:

    twistd -n ixp-vp --unix /run/ixp-vp/control.sock --status /run/ixp-vp/status.sock \\
        --metrics 127.0.0.1:9310
    ixp-attach -U /run/ixp-vp/control.sock -i cmds.txt -o out.warts
    ixp-status /run/ixp-vp/status.sock
"""

COMPATIBILITY = """
scamper's `-R`, `-M`, `-p`, `-w`, `-U` and `-P` are here as aliases
(`-P` takes `[IP:]PORT`), and `--no-tls` is scamper's `-O notls-remote`.
scamper's other options, and measurement types other than `ping` and
`trace`, are not implemented.
"""

SEE_ALSO = ["scamper(1)", "ixp-remoted(8)", "sc_remoted(1)", "ixp-attach(1)", "ixp-status(1)",
            "ixp-scamper(1)", "twistd(1)"]
