"""Prose of ixp-warts2text(1)."""

from ._warts import DESCRIPTION as _D, EXIT_STATUS, FILES  # noqa: F401

SUMMARY = "print the records of warts files as text"
DESCRIPTION = _D.format(prog="ixp-warts2text", examples="dealias records of any method but ally; record types neither scamper version prints", theirs="sc_warts2text",
                        what="as the text scamper prints with `-O text`")

EXAMPLES = """
    ixp-warts2text a.warts b.warts
    gzip -dc a.warts.gz | ixp-warts2text
    echo 'trace 198.51.100.66' | ixp-attach -R SOCKET -i - -o - | ixp-warts2text
"""

COMPATIBILITY = """
`sc_warts2text`'s `-d` option (a file of address descriptions) is not
implemented.
"""

SEE_ALSO = ["sc_warts2text(1)", "ixp-warts2json(1)", "sc_wartsdump(1)", "ixp-attach(1)",
            "scamper(1)"]
