"""Files written by current scamper (20260420) are read too.

The bytes below were written by scamper 20260420 (built from the upstream
mirror) in this project's sandbox: ``scamper -O warts -I "ping -c 3 127.0.0.1"
-I "ping -c 2 ::1" -I "trace 127.0.0.1" -I "trace -P icmp-paris -q 1 127.0.0.1"
-I "ping -P udp -c 2 127.0.0.1" -I "ping -P tcp-syn -d 1 -c 2 127.0.0.1"
-I "trace -P tcp -d 1 127.0.0.1" -I "ping -P icmp-time -c 1 127.0.0.1"
-I "trace -P udp ::1" -I "ping -R -c 1 127.0.0.1"``.  2026 pings carry reply
fields 18-21 (receiving interface etc.) and no header field 14; the Debian
20211212 tools read such files, and so must we, printing what they print.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import time

from conftest import requires_tool
from ixpscamper.warts import (Ping, Trace, WartsWriter, iter_text, read_records, render_json,
                              render_text)

WARTS_2026 = base64.b64decode(
    "EgUAAQAAABsAAAABAAAAAGRlZmF1bHQAAQAIZGVmYXVsdAASBQACAAAAFgAAAAEAAAABAAAAAGsJLvMCAAN2bQASBQAGAAAA"
    "YfP+/z8AMwAAAAEAAAABawku8wAKWqEBAAIABQAs9vSCmwEABQEAAQUBAAABAAAEAX8AAAEAAAAAAAAB/o8aAB8BQBEAAAAA"
    "vwMDACwASPmwwAAAAAAAAGsJLvMACl9tAAASBQAGAAAAYfP//z8ANAAAAAEAAAABawku8wAKglQBACABAAQALPb09vQBAAUB"
    "AAEFAQAAAQAABAF/AAABAAAAAAAAAf6PGAAeAUARAAAAAB4AAAAsACz5sgAAAAAAAGsJLvMACoJYAAASBQAGAAAAa/P+/z8A"
    "PwAAAAEAAAABawku8wALRBkBAAIAAgA89vSCmwEABQEAAQUBAAABAAAQAgAAAAAAAAAAAAAAAAAAAAEAAAAAAAAB/osaAB0B"
    "QBEAAAAAOgEEADwAbAAAAAAAAABrCS7zAAtEIQAAEgUABwAAAGHzvGcAKAAAAAEAAAABawku8wALHrkBAAABAFQBQAABBXb0"
    "BAF/AAABAAAAAAAAAf6TJgAtJ0AAKA4AAAAAOgAA+bWnYAAAAAAAawku8wALHsEBkigQAZIoEAGSKBABbG8AEgUABwAAAHvz"
    "vGUAMwAAAAEAAAABawku8wAKM7ABAAACAGgBQAACdvQQAgAAAAAAAAAAAAAAAAAAAAEAAAAAAAAC/pAiAB0hQABogQAAAAA6"
    "AAAAAAAAAGsJLvMACj1iAWxvAP6QIgAaIUAAaIEAAAAAJgABAAAAAABrCS70AAo+ugESBQAHAAAAfvO8bwAqAAAAAQAAAAFr"
    "CS7zAAqmQwEAAAIAKAFAAAID9vSCmwQBfwAAAQAAAAAAAAL+lzIAIydAAEQDAwAAABsAAPm0F9wBAAAAAABrCS7zAAqmScAB"
    "bG8A/pcyACAnQABEAwMAAAA6AAH51gOpAQAAAAAAawku9AAKqoHAARIFAAcAAAA387zvgAQALgAAAAEAAAABawku8wAKztEB"
    "AAACACgBQAACBvb0AAEEAX8AAAEAAAAAAPoPXqAAABIFAAcAAACa87xlACcAAAABAAAAAWsJLvMACgqhAQAAAwBUAUAAA3b0"
    "BAF/AAABAAAAAAAAA/6TIgAhJ0AAVAAAAAAAIAAA+a6jowAAAAAAawku8wAKEcYBbG8A/pMiAB4nQABUAAAAAABBAAH50SU/"
    "AAAAAABrCS70AAoT4AH+kyIAHidAAFQAAAAAAGoAAvqVHGkAAAAAAGsJLvUAChcgARIFAAcAAABm87zlAQAoAAAAAQAAAAFr"
    "CS72AAqfowEAAAEAfAFAAAF29AQBfwAAAQAAAAAAAQAB/rMiADEnQAB8AAAAAAAuAAD6o8/vAAAAAAADAAAAAAAAAAAAAAAA"
    "AAAAawku9gAKn7QBbG8AEgUABgAAAD3z/v8/ADMAAAABAAAAAWsJLvUACwycBQACAAMAKPb0AAEBAAUBAAUFAQAACgAABAF/"
    "AAABAAAAAAAAAAAAEgUABAAAAAkAAAABawkvJwA="
)


def test_2026_file_decodes():
    recs = read_records(WARTS_2026)
    kinds = [type(r).__name__ for r in recs]
    assert kinds[0] == "WartsList" and kinds[1] == "CycleStart" and kinds[-1] == "CycleStop"
    assert kinds.count("Trace") == 4 and kinds.count("Ping") == 6
    pings = [r for r in recs if isinstance(r, Ping) and r.replies]
    assert pings and all(rep.ifname == "lo" for p in pings for rep in p.replies)
    traces = [r for r in recs if isinstance(r, Trace)]
    assert {str(t.dst) for t in traces} == {"127.0.0.1", "::1"}


def test_2026_file_round_trips():
    recs = read_records(WARTS_2026)
    w = WartsWriter()
    blob = b"".join(w.encode(r) for r in recs)
    assert read_records(blob) == recs


@requires_tool("sc_warts2text")
@requires_tool("sc_warts2json")
def test_2026_file_printed_like_the_debian_tools(monkeypatch):
    fd, path = tempfile.mkstemp(suffix=".warts")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(WARTS_2026)
        env = {**os.environ, "TZ": "UTC"}
        txt = subprocess.run(["/usr/bin/sc_warts2text", path], capture_output=True, env=env,
                             timeout=30)
        js = subprocess.run(["/usr/bin/sc_warts2json", path], capture_output=True, env=env,
                            timeout=30)
    finally:
        os.unlink(path)
    assert txt.returncode == 0 and js.returncode == 0
    recs = read_records(WARTS_2026)
    assert "".join(render_text(r) for r in recs).encode() == txt.stdout
    import io
    assert "".join(iter_text(io.BytesIO(WARTS_2026))).encode() == txt.stdout
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert "".join(render_json(r) for r in recs).encode() == js.stdout
    finally:
        monkeypatch.undo()
        time.tzset()
