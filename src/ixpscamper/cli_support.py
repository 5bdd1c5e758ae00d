"""What every ixpscamper command-line tool does at its outer edge.

A pipeline reader going away (``| head``), Ctrl-C and our own bugs all end
the process with a status and at most one line on stderr, never a
traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Callable


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Run ``body`` and turn the ways a CLI ends abnormally into exit statuses.

    141 when stdout's reader went away (as a shell reports SIGPIPE), 130 on
    Ctrl-C, 2 with one ``PROG: internal error: ...`` line for anything else.
    """
    try:
        return body()
    except BrokenPipeError:
        # point stdout at /dev/null so the interpreter's final flush of the
        # buffered remainder does not raise again at exit
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 141
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        sys.stderr.write(f"{prog}: internal error: {type(exc).__name__}: {exc}\n")
        return 2
