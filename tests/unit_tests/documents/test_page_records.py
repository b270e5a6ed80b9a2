"""Page values round-trip and refuse corruption; sources get their kind from their bytes."""

from __future__ import annotations

import hashlib

import pytest

from optical_memory.documents.formats import html_text
from optical_memory.documents.page_store import PageRecord, decode_page, encode_page, page_key
from optical_memory.documents.sources import expand_sources
from optical_memory.errors import CorruptRecord

RECORD = PageRecord(
    source="scan.pdf",
    sha256="ab" * 32,
    profile="0123456789",
    page_number=7,
    flow="image-born",
    text="Seite 7 — 第七页 \ud800",
    decoded="Seite 7 — 第七页 \ud800",
    accuracy=None,
    decoder="tesseract",
    width=12,
    height=34,
)


def test_a_page_value_round_trips_with_any_text() -> None:
    value = encode_page(RECORD, b"\x89PNG fake image bytes")

    assert decode_page(RECORD.key, value) == (RECORD, b"\x89PNG fake image bytes")
    assert (
        RECORD.key
        == page_key("ab" * 32, "0123456789", 7)
        == (f"docs/{'ab' * 32}/0123456789/page/000007")
    )


@pytest.mark.parametrize("damage", [lambda v: v[:-1], lambda v: v[:9], lambda v: b"XX" + v[2:]])
def test_a_damaged_page_value_is_corrupt_not_garbage(damage: object) -> None:
    value = encode_page(RECORD, b"png")

    with pytest.raises(CorruptRecord, match="page/000007"):
        decode_page(RECORD.key, damage(value))  # type: ignore[operator]


def test_kinds_come_from_magic_bytes_then_suffix() -> None:
    found, failed = expand_sources(
        [
            ("renamed.txt", b"%PDF-1.7 ..."),
            ("photo", b"\xff\xd8\xff\xe0 jpeg"),
            ("page.HTM", b"<p>x</p>"),
            b"plain",
            ("empty.md", b""),
            ("sheet.xlsx", b"PK"),
        ]
    )

    assert [(source.name, source.kind) for source in found] == [
        ("renamed.txt", "pdf"),
        ("photo", "image"),
        ("page.HTM", "html"),
        ("bytes[3]", "text"),
    ]
    assert [(f.name, type(f.error).__name__) for f in failed] == [
        ("empty.md", "EmptyDocument"),
        ("sheet.xlsx", "UnsupportedDocument"),
    ]
    assert found[3].sha256 == hashlib.sha256(b"plain").hexdigest()


def test_html_text_keeps_blocks_and_drops_scripts() -> None:
    html = (
        "<html><head><style>p{}</style><title>Title</title></head><body>"
        "<h1>A  heading</h1><script>alert(1)</script><p>One &amp; two<br>three</p>"
        "<ul><li>item</li></ul></body></html>"
    )

    assert html_text(html) == "A heading\n\nOne & two\nthree\n\nitem"
