"""Prose of ixp-warts2json(1)."""

from ._warts import DESCRIPTION as _D, EXIT_STATUS, FILES  # noqa: F401

SUMMARY = "print the records of warts files as JSON, one object a line"
DESCRIPTION = _D.format(prog="ixp-warts2json", examples="record types neither scamper version prints", theirs="sc_warts2json",
                        what="as one JSON object a line (cycle start and stop records included, list records not)")

EXAMPLES = """
    ixp-warts2json out.warts | jq -c 'select(.type == "trace") | .hops'
"""

SEE_ALSO = ["sc_warts2json(1)", "ixp-warts2text(1)", "sc_wartsdump(1)", "ixp-attach(1)",
            "scamper(1)"]
