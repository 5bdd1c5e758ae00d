"""Prose shared by ixp-warts2text(1) and ixp-warts2json(1)."""

DESCRIPTION = """
`{prog}` reads warts files, the binary format scamper writes its
measurements in, and prints every record {what}.
The output is byte for byte that of the Debian `{theirs}`(1) (scamper
20211212) for the same file; warts files written by scamper 20260420 are
read too.
Each FILE is read in turn; with no FILE, or `-`, standard input is read.

On a damaged or truncated file, every intact record before the fault is
printed, then one line goes to standard error, naming the file, the byte
offset of the fault and what was wrong, and the exit status is 1:

    {prog}: FILE: offset N: reason

An empty file is refused (scamper's tools cannot tell its type either).

A measurement record that `{theirs}` prints nothing for ({examples}) is
not dropped in silence: one line names it,

    {prog}: FILE: offset N: TYPE record not printed

the rest of the file is printed, and the exit status is 3.
Trace, ping, tracelb and dealias records are decoded.
"""

EXIT_STATUS = """
0 :: every file was read to its end and every measurement printed.
1 :: a file could not be opened or read, was empty, or was damaged.
3 :: every file was read, but some records could not be printed (each named
  on standard error).
2 :: an unknown option, or an internal error.
130 :: interrupted (SIGINT).
141 :: the reader of standard output went away.
"""

FILES = """
The warts format is described in `docs/warts-format.md` of the ixpscamper
sources (installed in `/usr/share/doc/ixpscamper/`).
"""
