"""Fixtures of the RAG front end's tests: sample PDFs made once per session, a Redis
server (the store tests' own fixtures) and a tesseract decoder when it is installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import missing_component
from tests.integration_tests.documents import sample_pdfs
from tests.integration_tests.store.conftest import redis_server, redis_url, unique_tenant

__all__ = ["redis_server", "redis_url", "unique_tenant"]


@pytest.fixture(scope="session")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``text100`` (Chromium's print of the corpus), ``text2``, ``scan4`` and ``scan2`` (its
    first pages rasterised, no text layer), ``encrypted``, ``truncated`` and ``pages20000``."""
    pytest.importorskip("pypdfium2")
    pytest.importorskip("playwright")
    from optical_memory.renderers.html import find_chromium

    if find_chromium() is None:
        missing_component("Chromium is not installed (apt install chromium)")
    folder = tmp_path_factory.mktemp("pdfs")
    text100 = sample_pdfs.text_pdf(folder / "text100.pdf", 100)
    return {
        "text100": text100,
        "text2": sample_pdfs.text_pdf(folder / "text2.pdf", 2),
        "scan4": sample_pdfs.scanned_pdf(text100, folder / "scan4.pdf", pages=4),
        "scan2": sample_pdfs.scanned_pdf(text100, folder / "scan2.pdf", pages=2),
        "encrypted": sample_pdfs.encrypted_pdf(folder / "encrypted.pdf"),
        "truncated": sample_pdfs.truncated_pdf(text100, folder / "truncated.pdf"),
        "pages20000": sample_pdfs.many_pages_pdf(folder / "pages20000.pdf", 20_000),
    }


@pytest.fixture(scope="session")
def tesseract() -> str:
    """The decoder name ``"tesseract"``, once the binary is known to be installed."""
    if shutil.which("tesseract") is None:
        missing_component("tesseract is not installed (apt install tesseract-ocr)")
    return "tesseract"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite store's URL."""
    return f"sqlite:///{tmp_path / 'docs.db'}"
