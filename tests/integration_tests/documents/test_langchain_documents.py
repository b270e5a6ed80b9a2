"""The LangChain wrappers over the RAG front end, on real PDFs, OCR and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.document_loaders.blob_loaders import Blob
from langchain_core.documents import Document

from optical_memory.documents import DocumentPageStore
from optical_memory.errors import DocumentError, EncryptedDocument
from optical_memory.integrations.langchain.documents import (
    OpticalDocumentLoader,
    OpticalDocumentTransformer,
    OpticalPageParser,
)
from optical_memory.metrics import char_accuracy
from optical_memory.store import open_store
from tests.integration_tests.documents.sample_pdfs import corpus_excerpts

CORPUS = Path(__file__).resolve().parents[3] / "benchmarks" / "corpus"


def test_parser_reads_a_scan_page_by_page(pdfs: dict[str, Path], tesseract: str) -> None:
    parser = OpticalPageParser(tesseract)

    documents = parser.parse(Blob.from_path(pdfs["scan4"]))

    assert [document.metadata["page"] for document in documents] == [1, 2, 3, 4]
    for document, excerpt in zip(documents, corpus_excerpts(4), strict=True):
        assert document.metadata["flow"] == "image-born"
        assert char_accuracy(excerpt, document.page_content) > 0.95
    with pytest.raises(EncryptedDocument):
        parser.parse(Blob.from_path(pdfs["encrypted"]))


def test_loader_is_lazy_and_resumable(pdfs: dict[str, Path], sqlite_url: str) -> None:
    loader = OpticalDocumentLoader([pdfs["text2"], pdfs["encrypted"]], store=sqlite_url)
    pages = loader.lazy_load()

    first = next(pages)
    assert first.metadata["page"] == 1 and first.id == first.metadata["optical_key"]
    assert next(pages).metadata["page"] == 2
    with pytest.raises(DocumentError, match="EncryptedDocument"):
        next(pages)
    again = OpticalDocumentLoader(pdfs["text2"], store=sqlite_url).load()
    assert [document.page_content for document in again] == [
        first.page_content,
        again[1].page_content,
    ]


def test_transformer_turns_long_documents_into_page_documents(sqlite_url: str) -> None:
    text = (CORPUS / "english_prose.txt").read_text(encoding="utf-8")
    transformer = OpticalDocumentTransformer(sqlite_url)

    pages = transformer.transform_documents(
        [Document(page_content=text, metadata={"source": "salt.txt", "topic": "history"})]
    )

    assert len(pages) > 3
    assert "".join(page.page_content for page in pages) == text.replace("\r\n", "\n")
    assert all(page.metadata["topic"] == "history" for page in pages)
    assert [page.metadata["page"] for page in pages] == list(range(1, len(pages) + 1))
    store = open_store(sqlite_url)
    try:
        png = DocumentPageStore(store).image(pages[0].metadata["optical_key"])
    finally:
        store.close()
    assert png.startswith(b"\x89PNG") and pages[0].metadata["mime_type"] == "image/png"
