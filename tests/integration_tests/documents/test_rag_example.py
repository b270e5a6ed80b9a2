"""``examples/rag_ingest.py`` runs offline as the README shows, and a second run resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "rag_ingest.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_example_writes_pages_text_and_summary(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text(
        (ROOT / "benchmarks" / "corpus" / "english_technical.txt").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    (docs / "page.html").write_text("<h1>Title</h1><p>Body text.</p>", encoding="utf-8")
    out = tmp_path / "out"

    first = run_example(str(docs), str(out))
    again = run_example(str(docs), str(out))

    assert first.returncode == 0, first.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["failures"] == []
    pngs = sorted(path.name for path in (out / "pages").iterdir())
    texts = sorted(path.name for path in (out / "text").iterdir())
    assert len(pngs) == summary["pages"] > 2
    assert [name.replace(".png", ".txt") for name in pngs] == texts
    assert (out / "text" / "page.html-p0001.txt").read_text(encoding="utf-8") == (
        "Title\n\nBody text."
    )
    assert again.returncode == 0
    assert json.loads(again.stdout)["skipped_documents"] == 2
