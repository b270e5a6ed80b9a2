"""The command line, run as users run it: the installed entry point in a subprocess."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import missing_component
from tests.integration_tests.run_cli import run

TEXT = (
    "Optical memory renders old turns into pages.\n\n"
    + "A paragraph of ordinary prose that goes on for a while. " * 400
)


def test_render_writes_pages_and_index(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text(TEXT, encoding="utf-8")
    result = run("render", str(source), "--tier", "small", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "out" / "pages.json").read_text())
    assert len(index) >= 2
    assert [entry["file"] for entry in index] == [f"page-{i:03d}.png" for i in range(len(index))]
    assert index[0]["span"][0] == 0 and index[-1]["span"][1] == len(TEXT)
    for before, after in itertools.pairwise(index):
        assert before["span"][1] == after["span"][0]
    for entry in index:
        assert (entry["tier"], entry["width"], entry["height"]) == ("small", 640, 640)
        with Image.open(tmp_path / "out" / entry["file"]) as image:
            assert image.size == (640, 640)


def test_render_code_file_and_stdin(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text("def f(x):\n    return x + 1\n" * 50, encoding="utf-8")
    result = run(
        "render", str(source), "--tier", "tiny", "--preset", "dense", "--out", str(tmp_path / "a")
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a" / "page-000.png").is_file()
    piped = subprocess.run(
        [sys.executable, "-m", "optical_memory.cli", "render", "-", "--out", str(tmp_path / "b")],
        input="from stdin",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert json.loads((tmp_path / "b" / "pages.json").read_text())[0]["span"] == [0, 10]


def test_pages_json_spans_index_the_file_with_its_own_newlines(tmp_path: Path) -> None:
    raw = "first line\r\nsecond line\rthird\r\n\r\n" + "crlf prose. " * 600
    source = tmp_path / "crlf.txt"
    source.write_bytes(raw.encode("utf-8"))
    result = run(
        "render", str(source), "--tier", "tiny", "--preset", "dense", "--out", str(tmp_path / "c")
    )
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "c" / "pages.json").read_text())
    assert index[-1]["span"][1] == len(raw)


def test_render_markdown_through_chromium(tmp_path: Path) -> None:
    if shutil.which("chromium") is None and not os.environ.get("OPTICAL_MEMORY_CHROMIUM"):
        missing_component("chromium is not installed (apt install chromium)")
    source = tmp_path / "doc.md"
    source.write_text("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n" + TEXT, encoding="utf-8")
    result = run("render", str(source), "--html", "--tier", "base", "--out", str(tmp_path / "h"))
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "h" / "pages.json").read_text())
    assert index[0]["width"] == 1024 and index[-1]["span"][1] == len(source.read_text())


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "optical_memory", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "render" in result.stdout and "demo" in result.stdout


def test_render_reports_bad_input_clearly(tmp_path: Path) -> None:
    missing = run("render", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr and "nope.txt" in missing.stderr
    (tmp_path / "t.txt").write_text("x")
    bad_tier = run(
        "render", str(tmp_path / "t.txt"), "--tier", "huge", "--out", str(tmp_path / "o")
    )
    assert bad_tier.returncode == 2
    assert "unknown tier 'huge'" in bad_tier.stderr
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    binary = run("render", str(tmp_path / "bin.txt"), "--out", str(tmp_path / "o"))
    assert binary.returncode == 2 and "cannot read" in binary.stderr
    assert "Traceback" not in missing.stderr + bad_tier.stderr + binary.stderr
