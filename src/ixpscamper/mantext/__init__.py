"""Hand-written prose of the man pages (:mod:`ixpscamper.manpages` adds the options).

One module per page.  Each holds ``SUMMARY`` (the NAME line), ``DESCRIPTION``,
``EXIT_STATUS``, ``EXAMPLES``, ``SEE_ALSO`` (``name(section)`` strings) and
optionally ``SYNOPSIS``, ``OPTIONS_INTRO``, ``OPTION_NOTES`` (option key ->
prose added under the program's own help text; key is the first long name,
else the first name, ``"up --bgp"`` for a subcommand's option), ``METAVARS``
(argument names for Twisted options, which have none), ``COMMAND_NOTES``,
``FILES``, ``ENVIRONMENT``, ``SIGNALS`` (required for daemons),
``EXTRA_SECTIONS`` ((title, text) pairs) and ``COMPATIBILITY``.

Markup (see :func:`ixpscamper.manpages.blocks`): blank lines separate
paragraphs; lines indented by four spaces are literal; ``- `` starts a
bullet; ``TERM :: text`` a tagged paragraph; `` `x` `` is bold, ``~x~``
italic.  Nothing here is an option's meaning: that is the program's help
string, so ``--help`` and the page say the same.
"""

#: the date on every page: the day the prose was last revised
DATE = "2026-12-01"
VERSION = "0.1.0"
MANUAL = {1: "ixpscamper User Commands", 8: "ixpscamper System Administration"}

TWISTD_NOTE = """
`{prog}` is a `twistd`(1) plugin: `twistd`'s own options (such as `-n`
to stay in the foreground, `--pidfile`, `--logfile`, `--uid`) come before
the plugin name, the options below after it.
`twistd {prog} --help` lists them.
"""
