"""VP metadata files (ixpscamper.mux.meta), sc_remoted 2026's format."""

from __future__ import annotations

import pytest

from ixpscamper.mux.frames import Attr
from ixpscamper.mux.meta import MetadataError, load_metadata, parse_metadata

GOOD = """\
# a comment
hlz2-nz cc nz
hlz2-nz asn4 64504
hlz2-nz TAG ixp
hlz2-nz place Hamilton, New Zealand
hlz2-nz tag collector
hlz2-nz iata hlz
hlz2-nz asn6 64505
hlz2-nz latlong -37.78,175.28

other st CA
"""


def test_values_tags_and_emission_order():
    meta, warnings = parse_metadata(GOOD.splitlines(True))
    assert warnings == []
    m = meta["hlz2-nz"]
    assert m.get("place") == "Hamilton, New Zealand"
    assert m.tags == ("ixp", "collector")
    # sc_remoted's order: asn4, asn6, latlong, cc, st, place, shortname, iata, tags
    assert m.vp_attrs() == [(Attr.ASN4, "64504"), (Attr.ASN6, "64505"), (Attr.LATLONG, "-37.78,175.28"),
                            (Attr.CC, "nz"), (Attr.PLACE, "Hamilton, New Zealand"), (Attr.IATA, "hlz"),
                            (Attr.TAG, "ixp"), (Attr.TAG, "collector")]
    assert meta["other"].as_dict() == {"st": "CA"}


def test_later_line_wins():
    meta, _ = parse_metadata(["a cc nz\n", "a cc au\n"])
    assert meta["a"].get("cc") == "au"


@pytest.mark.parametrize("text, line", [("a cc nz\nb cc\n", 2), ("x\n", 1), ("\n\na   \n", 3)])
def test_short_line_is_named(text, line):
    with pytest.raises(MetadataError, match=f"^meta.txt: line {line}: expected"):
        parse_metadata(text.splitlines(True), "meta.txt")


def test_control_characters_refused():
    with pytest.raises(MetadataError, match="line 1: place value has control characters"):
        parse_metadata(["a place x\x1by\n"], "f")


def test_unknown_attribute_warns_with_line():
    meta, warnings = parse_metadata(["a cc nz\n", "a colour blue\n"], "f")
    assert warnings == ["f: line 2: unknown attribute 'colour' ignored"]
    assert meta["a"].get("cc") == "nz"


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(MetadataError, match="No such file"):
        load_metadata(str(tmp_path / "missing"))
    p = tmp_path / "bin"
    p.write_bytes(b"a cc \xff\xfe\n")
    with pytest.raises(MetadataError, match="not UTF-8"):
        load_metadata(str(p))
