"""Ingestion end to end: real PDFs printed by Chromium, real OCR, a real SQLite store."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from optical_memory.documents import DocumentPageStore, ingest
from optical_memory.metrics import char_accuracy
from optical_memory.store import open_store
from tests.integration_tests.documents.sample_pdfs import corpus_excerpts

pytest.importorskip("pypdfium2")


def kill_after(store: str, pages: int, decoder: str | None, *sources: Path) -> int:
    """Run an ingestion that SIGKILLs itself once ``pages`` pages are stored."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration_tests.documents.ingest_until_killed",
            store,
            str(pages),
            decoder or "-",
            *map(str, sources),
        ],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode


def stored_page_keys(store_url: str) -> list[str]:
    store = open_store(store_url)
    try:
        return [key for key in store.iter_blob_keys("docs/") if "/page/" in key]
    finally:
        store.close()


def test_text_layer_pdf_killed_at_page_50_resumes_to_exactly_100_pages(
    pdfs: dict[str, Path], sqlite_url: str
) -> None:
    assert kill_after(sqlite_url, 50, None, pdfs["text100"]) == -9
    assert len(stored_page_keys(sqlite_url)) == 50

    summary = ingest([pdfs["text100"]], store=sqlite_url)

    assert summary.failures == []
    assert summary.written == 50
    keys = stored_page_keys(sqlite_url)
    assert len(keys) == len(set(keys)) == 100
    assert [page.page_number for page in summary.pages] == list(range(1, 101))
    excerpts = corpus_excerpts(100)
    for page, excerpt in zip(summary.pages, excerpts, strict=True):
        assert page.flow == "text-born"
        assert page.source == str(pdfs["text100"])
        assert char_accuracy(excerpt, page.text) > 0.99  # the PDF's own text layer
    # the stored image is the rasterised page
    store = open_store(sqlite_url)
    try:
        png = DocumentPageStore(store).image(summary.pages[0].key)
    finally:
        store.close()
    width, height = Image.open(io.BytesIO(png)).size
    assert abs(width - 1190) <= 3 and abs(height - 1684) <= 3  # A4 at 144 dpi


def test_scan_killed_mid_run_resumes_with_ocr_text_and_same_pages(
    pdfs: dict[str, Path], sqlite_url: str, tesseract: str
) -> None:
    assert kill_after(sqlite_url, 2, tesseract, pdfs["scan4"]) == -9
    assert len(stored_page_keys(sqlite_url)) == 2

    summary = ingest([pdfs["scan4"]], store=sqlite_url, decoder=tesseract)

    assert summary.written == 2
    assert len(stored_page_keys(sqlite_url)) == 4
    assert [page.page_number for page in summary.pages] == [1, 2, 3, 4]
    for page, excerpt in zip(summary.pages, corpus_excerpts(4), strict=True):
        assert page.flow == "image-born"
        assert page.decoder == "tesseract"
        assert page.accuracy is None  # no text layer to compare with
        assert char_accuracy(excerpt, page.text) > 0.95


def test_read_back_accuracy_against_the_text_layer(
    pdfs: dict[str, Path], sqlite_url: str, tesseract: str
) -> None:
    summary = ingest([pdfs["text2"]], store=sqlite_url, decoder=tesseract)

    assert [page.flow for page in summary.pages] == ["text-born", "text-born"]
    for page in summary.pages:
        assert page.accuracy is not None and page.accuracy > 0.97


def test_every_bad_input_fails_alone_with_its_error(
    pdfs: dict[str, Path], sqlite_url: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    garbage = tmp_path / "photo.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really an image" * 10)
    spreadsheet = tmp_path / "sheet.xlsx"
    spreadsheet.write_bytes(b"PK\x03\x04")
    good = tmp_path / "notes.md"
    good.write_text("# Notes\n\nThe good document is still ingested.\n", encoding="utf-8")

    summary = ingest(
        [
            pdfs["encrypted"],
            pdfs["truncated"],
            garbage,
            empty,
            pdfs["pages20000"],
            pdfs["scan4"],  # image-only pages, no decoder
            spreadsheet,
            tmp_path / "missing.pdf",
            good,
        ],
        store=sqlite_url,
    )

    errors = {Path(failure.source).name: failure for failure in summary.failures}
    assert {name: failure.error for name, failure in errors.items()} == {
        "encrypted.pdf": "EncryptedDocument",
        "truncated.pdf": "UnreadableDocument",
        "photo.png": "UnreadableDocument",
        "empty.pdf": "EmptyDocument",
        "pages20000.pdf": "TooManyPages",
        "scan4.pdf": "DecoderRequired",
        "sheet.xlsx": "UnsupportedDocument",
        "missing.pdf": "UnreadableDocument",
    }
    assert "password" in errors["encrypted.pdf"].reason
    assert "20,000 pages" in errors["pages20000.pdf"].reason
    assert "0 bytes" in errors["empty.pdf"].reason
    assert [page.source for page in summary.pages] == [str(good)]
    assert "still ingested" in summary.pages[0].text
    # nothing of a failed document is complete in the store; the good one is
    keys = list(open_store(sqlite_url).iter_blob_keys("docs/"))
    assert sum(key.endswith("/manifest") for key in keys) == 1


def test_unchanged_source_is_skipped_and_changed_one_ingested_again(
    sqlite_url: str, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("First version of the note.", encoding="utf-8")
    first = ingest([note], store=sqlite_url)
    again = ingest([note], store=sqlite_url)
    note.write_text("Second version of the note, changed.", encoding="utf-8")
    changed = ingest([note], store=sqlite_url)

    assert (first.written, first.skipped) == (1, 0)
    assert (again.written, again.skipped) == (0, 1)
    assert again.pages == first.pages
    assert (changed.written, changed.skipped) == (1, 0)
    assert "Second version" in changed.pages[0].text


def test_images_html_markdown_and_bytes(sqlite_url: str, tmp_path: Path, tesseract: str) -> None:
    frames = [Image.new("RGB", (320, 200), (255, 255, 255 - 40 * n)) for n in range(3)]
    tiff = tmp_path / "fax.tiff"
    frames[0].save(tiff, save_all=True, append_images=frames[1:])
    jpeg = io.BytesIO()
    frames[0].save(jpeg, format="JPEG")
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>T</title><script>var hidden = 1;</script></head>"
        "<body><h1>Heading</h1><p>Visible &amp; kept.</p></body></html>",
        encoding="utf-8",
    )

    summary = ingest(
        [tmp_path / "*.html", tiff, ("photo.jpg", jpeg.getvalue()), b"plain bytes of text"],
        store=sqlite_url,
        decoder=tesseract,
    )

    assert summary.failures == []
    by_source: dict[str, list[str]] = {}
    for item in summary.pages:
        by_source.setdefault(Path(item.source).name, []).append(item.flow)
    assert by_source == {
        "page.html": ["text-born"],
        "fax.tiff": ["image-born"] * 3,
        "photo.jpg": ["image-born"],
        "bytes[3]": ["text-born"],
    }
    html_text = summary.pages[0].text
    assert "Heading\n\nVisible & kept." in html_text
    assert "hidden" not in html_text
    assert all(item.text == "" for item in summary.pages if item.flow == "image-born")
