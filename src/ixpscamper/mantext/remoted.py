"""Prose of ixp-remoted(8)."""

SUMMARY = "scamper-compatible remote controller: VPs connect in, users attach per VP"

DESCRIPTION = """
`ixp-remoted` is the controller of scamper's remote-control architecture,
like `sc_remoted`(1), run as a `twistd`(1) plugin.
Vantage points connect in over TCP or TLS (`ixp-vp --remote HOST:PORT`, or
a real `scamper -R HOST:PORT -M NAME`) and register; for each, the
controller makes a unix socket in the socket directory (`--socket-dir`),
named `[monitor-]address:port` after the VP's monitor name and its source
address and port (an IPv6 address is followed by `.port`).
Users attach to a VP through its socket with `ixp-attach -R` or
`sc_attach -R`: each user connection is a channel on the VP's session, and
many users may use one VP at once.
With `--mux` the controller also (or instead) serves every VP on a single
unix socket in the protocol of scamper 20260420's `sc_remoted -M`, which
scamper's Python module (`ScamperCtrl(mux=PATH)`) speaks.

The link to each VP is scamper's remote protocol: framed, with sequence
numbers and acknowledgements, keepalives, and resumption.
When a VP's connection is lost its state is kept for the zombie time
(`--zombie`); when the VP comes back and resumes, every byte not yet
acknowledged in either direction is sent again, exactly once, so a user
sees only a delay.
Unlike `sc_remoted`, a VP's socket keeps its name for the whole session and
stays in place while the VP is away: users who connect during an outage are
served once the VP resumes.

With `--tls-cert` and `--tls-key`, TLS starts at the first byte of every VP
connection.
With `--client-ca` as well, a VP must present a certificate issued by that
CA whose name (a subjectAltName dNSName, else the common name) equals the
monitor name it registers with; a VP that does not is refused with one log
line naming why.

Memory is bounded per user and per VP.
Bytes from a user wait in the session's retransmission queue until the VP
acknowledges them; when a channel holds 1 MiB unacknowledged, or a VP 4 MiB
over all its channels, the controller stops reading from that user until
acknowledgements bring the amounts down.
Results are written to a user at once; a user that does not read is
buffered up to 64 MiB and then disconnected, alone, with one log line.

Admission: at start the daemon raises its open-file soft limit to the hard
limit and logs how many VPs it can hold, (limit - reserve) / 2 (each VP
takes a TCP connection and a unix socket).
New VPs are refused, one log line each, before they would use descriptors
kept for users and listeners (`--fd-reserve`); `--max-vps`,
`--max-zombies` and `--registration-rate` bound the rest.
"""

METAVARS = {
    "--socket-dir": "DIR", "--mux": "PATH", "--meta": "FILE", "--zombie": "SECONDS",
    "--tls-cert": "PEM", "--tls-key": "PEM", "--client-ca": "PEM", "--pidfile": "FILE",
    "--max-vps": "N", "--max-zombies": "N", "--registration-rate": "RATE",
    "--registration-burst": "N", "--fd-reserve": "N", "--port": "[IP:]PORT",
    "--allow": "group|other", "--sc-option": "allowgroup|allowother",
    "--config": "FILE", "--status": "PATH", "--metrics": "[IP:]PORT",
    "--log-format": "text|json", "--log-level": "LEVEL",
}

OPTION_NOTES = {
    "--port": """
Required.  A VP connects with `-R HOST:PORT`; with TLS, HOST must be a name
the certificate holds.
""",
    "--socket-dir": """
Sockets are mode 0700 unless `--allow` says otherwise, so only the daemon's
user (and root) can attach by default.
At least one of `--socket-dir` and `--mux` is needed.
""",
    "--zombie": """
sc_remoted's default is 15 minutes too; its maximum, three hours, is this
one's.
""",
    "--tls-key": """
The key must not have a passphrase.  SIGHUP re-reads the certificate and the
key; established sessions are not touched.
""",
    "--allow": """
`group` makes the VP sockets mode 0770, `other` 0707; given twice, 0777.
The socket directory's own mode still decides who may reach them.
""",
    "--pidfile": """
Written once the listeners are up and removed on stop.  Unrelated to
twistd's global `--pidfile` (given before the plugin name, default
`twistd.pid` in the working directory): run
`twistd --pidfile= -n ixp-remoted -e /run/ixp-remoted.pid ...` so that only
one is written.
""",
    "--config": """
Keys are the long option names (`port = ["31337"]`, `socket-dir =
"/run/ixp-remoted"`); `etc/ixp-remoted.toml` is a commented example.
A repeatable option given on the command line replaces the file's values.
SIGHUP re-reads it and applies the registration limits and `log-level` at
once.
""",
    "--status": """
Each VP held, live or zombie, is one entry: monitor, address, state (`up`
or `away`), since when, socket, resumes, channels, users, bytes.
""",
    "--metrics": """
Needs the Python package prometheus-client.  The metric names start with
`ixp_remoted_`; see the operators' guide.
""",
    "--meta": """
One `monitor attribute value` a line, the format of sc_remoted 20260420's
`-m`; users of the mux socket receive each VP's metadata.
""",
}

ENVIRONMENT = """
IXP_REMOTED_HANDSHAKE_TIME :: seconds a new VP connection has to register
  (default 30).  For tests.
IXP_REMOTED_USER_BACKLOG :: bytes buffered for a user that does not read
  before it is disconnected (default 64 MiB).  For tests.
"""

SIGNALS = """
SIGHUP :: re-read the TLS certificate and key (for the next handshake;
  sessions stay up), the `--meta` file, and `--config` with the command line:
  the registration limits and the log level apply at once.  One log line
  says what was reloaded.  `systemctl reload ixp-remoted` sends it.
SIGTERM, SIGINT :: stop: listeners closed, VP connections and user sockets
  closed, socket files and the pidfile removed.
  VPs keep trying to reconnect; a new process does not hold their sessions,
  so they are refused a resume and register anew.
"""

FILES = """
/etc/ixpscamper/ixp-remoted.toml :: the settings the systemd unit reads
  (`--config`); every key a long option.
/run/ixp-remoted/ :: the socket directory of the packaged unit (owner
  ixpscamper, mode 0750).
/usr/lib/systemd/system/ixp-remoted.service :: the unit: user ixpscamper,
  no capabilities.
/etc/ixpscamper/tls/ :: certificate, key and client CA of the packaged
  configuration.
"""

EXAMPLES = """
A controller for VPs on port 31337, sockets in /run/ixp-remoted:

    twistd -n --pidfile= ixp-remoted -P 31337 -U /run/ixp-remoted

With TLS, and client certificates naming each VP's monitor:

    twistd -n --pidfile= ixp-remoted -P 31337 -U /run/ixp-remoted \\
        --tls-cert controller.pem --tls-key controller.key --client-ca vp-ca.pem

A VP registers, and a user traces through it:

    twistd -n ixp-vp -R controller.example.net:31337 -M rc1 --tls-ca ca.pem \\
        --tls-cert rc1.pem --tls-key rc1.key
    ls /run/ixp-remoted
        rc1-203.0.113.5:41234
    echo 'trace 198.51.100.66' | ixp-attach -R /run/ixp-remoted/rc1-203.0.113.5:41234 \\
        -i - -o - | ixp-warts2text

Also the mux socket, with metadata:

    twistd -n ixp-remoted -P 31337 -U /run/ixp-remoted -M /run/ixp-remoted/mux -m meta.txt
"""

COMPATIBILITY = """
sc_remoted's letters are aliases of the long options (`-P`, `-U`, `-M`,
`-m`, `-Z`, `-c`, `-p`, `-C`, `-e`, `-O allowgroup|allowother`).
sc_remoted's `-4`, `-6`, `-D` (use twistd's own daemon mode), `-R`
(chroot), `-v` and the `-O` choices `debug`, `select`, `notimes` and
`skipnameverification` are not implemented.
Unlike sc_remoted, a registration whose magic the controller still holds
replaces the old session (scamper 20211212 reuses its magic after a refused
resume), and a protocol error on an established connection makes the VP a
zombie instead of freeing it.
"""

SEE_ALSO = ["sc_remoted(1)", "scamper(1)", "ixp-vp(8)", "ixp-attach(1)", "sc_attach(1)",
            "ixp-status(1)", "twistd(1)", "openssl(1)"]
