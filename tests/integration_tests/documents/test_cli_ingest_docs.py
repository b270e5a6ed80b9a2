"""``optical-memory ingest-docs`` as users run it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration_tests.run_cli import run


def test_ingest_docs_reports_pages_and_failures_as_json(
    pdfs: dict[str, Path], sqlite_url: str
) -> None:
    done = run("ingest-docs", str(pdfs["text2"]), str(pdfs["encrypted"]), "--store", sqlite_url,
               "--json")  # fmt: skip
    again = run("ingest-docs", str(pdfs["text2"]), "--store", sqlite_url)

    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["pages"], report["written"]) == (2, 2)
    assert [failure["error"] for failure in report["failures"]] == ["EncryptedDocument"]
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("2 page(s) from 1 path(s): 0 written, 1 document(s) unchanged")
