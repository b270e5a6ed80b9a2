"""RAG preprocessing with optical-memory: a folder of documents in; pages, text, summary out.

Offline, on CPU::

    pip install "optical-memory[documents]"          # PDFs; add [ocr] for RapidOCR
    python examples/rag_ingest.py benchmarks/corpus out/
    python examples/rag_ingest.py scans/ out/ --decoder tesseract

writes, for every page of every document:

    out/pages/<document>-p0001.png    the page image (what a vision model is shown)
    out/text/<document>-p0001.txt     its text (what the retriever indexes)
    out/summary.json                  pages, seconds, pages/s, accuracy, failures

The pages are kept in ``out/pages.db`` (a SQLite store): run it again and only new or
changed documents are ingested; stop it at any point and the next run resumes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from optical_memory.documents import DocumentPageStore, ingest
from optical_memory.store import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("documents", type=Path, help="folder (or file) of documents")
    parser.add_argument("out", type=Path, help="folder for pages, text and summary.json")
    parser.add_argument("--decoder", help="OCR for scans and photos: tesseract or rapidocr")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{args.out.resolve() / 'pages.db'}")
    try:
        summary = ingest([args.documents], store=store, decoder=args.decoder)
        pages = DocumentPageStore(store)
        for folder in ("pages", "text"):
            (args.out / folder).mkdir(exist_ok=True)
        for page in summary.pages:
            stem = f"{_slug(page.source)}-p{page.page_number:04d}"
            (args.out / "pages" / f"{stem}.png").write_bytes(pages.image(page.key))
            (args.out / "text" / f"{stem}.txt").write_text(page.text, encoding="utf-8")
    finally:
        store.close()
    report = summary.to_dict()
    (args.out / "summary.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 1 if summary.failures else 0


def _slug(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).name).strip("_") or "document"


if __name__ == "__main__":
    sys.exit(main())
