"""``optical-memory demo``: the bundled conversation into a memory, a report out.

One full default run (bundled conversation, four readers, CPU read-back) is shared by
the tests of its report; the option tests use a short slice of the conversation.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from optical_memory.demo import DEMO_THREAD, bundled_conversation
from optical_memory.jsonl import dump_messages
from tests.conftest import missing_component
from tests.integration_tests.run_cli import run

TIERS = {"large", "base", "small", "tiny"}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo as a user runs it first: defaults, with ``--out``."""
    out = tmp_path_factory.mktemp("demo") / "report"
    result = run("demo", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "raw tokens" in result.stdout and "read-back" in result.stdout
    assert f"report written to {out / 'report.html'}" in result.stdout
    return out


@pytest.fixture
def short_input(tmp_path: Path) -> Path:
    """The first episodes of the bundled conversation: a few segments' worth."""
    path = tmp_path / "short.jsonl"
    path.write_text(dump_messages(bundled_conversation()[:100]), encoding="utf-8")
    return path


def check_schema(report: dict[str, Any]) -> None:
    assert isinstance(report["turns"], int) and report["turns"] > 0
    assert report["readers"]
    for name, reader in report["readers"].items():
        assert isinstance(reader["raw_tokens"], int) and isinstance(reader["optical_tokens"], int)
        assert reader["raw_tokens"] > 0 and reader["optical_tokens"] > 0, name
    assert set(report["tiers"]) <= TIERS
    for tier in report["tiers"].values():
        assert isinstance(tier["pages"], int) and tier["pages"] > 0
        assert tier["readback"] is None or 0.0 <= tier["readback"] <= 1.0
    assert isinstance(report["timings"], dict)
    for key in ("add_s", "add_ms_per_turn", "context_ms", "readback_s", "total_s"):
        assert key in report["timings"]


def test_default_demo_reports_every_reader_and_decays_to_the_last_tier(full_run: Path) -> None:
    report = json.loads((full_run / "report.json").read_text(encoding="utf-8"))
    check_schema(report)
    assert report["turns"] == len(bundled_conversation()) >= 300
    names = list(report["readers"])
    assert [n.split("-")[0] for n in names] == ["deepseek", "openai", "anthropic", "gemini"]
    for reader in report["readers"].values():
        # every turn, no budget cut, and pages make it cheaper than the text
        assert reader["optical_tokens"] < reader["raw_tokens"]
        assert "budget_tokens" not in reader
    # the oldest segments have decayed to the end of the deepseek-ocr reader's ladder
    assert report["readers"][names[0]]["pages"].get("tiny", 0) > 0
    assert len(report["tiers"]) >= 2
    assert report["decoder"] == "rapidocr", report["note"]
    for name, tier in report["tiers"].items():
        assert tier["readback"] is not None and tier["readback"] > 0.8, name
        assert (full_run / tier["sample"]["file"]).is_file()


def test_report_html_images_all_load_in_chromium(full_run: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        missing_component("chromium is not installed (apt install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_component("playwright is not installed (pip install 'optical-memory[html]')")
    page_html = full_run / "report.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.goto(page_html.as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])"
            )
            svg_lines = page.eval_on_selector_all("svg polyline", "els => els.length")
        finally:
            browser.close()
    report = json.loads((full_run / "report.json").read_text(encoding="utf-8"))
    samples = sum(len(r["samples"]) for r in report["readers"].values())
    assert len(images) == samples >= 4
    for src, complete, width in images:
        assert complete and width > 0, src
    assert svg_lines == 2 * len(report["readers"])  # raw and context per reader


def test_demo_options_on_your_own_conversation(short_input: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'demo.db'}"
    args = ["demo", "--input", str(short_input), "--json", "--no-readback", "--store", store]
    args += ["--reader", "deepseek-ocr,anthropic", "-r", "openai", "--budget", "3000"]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # nothing but JSON on stdout
    check_schema(report)
    assert report["turns"] == 100 and report["source"] == str(short_input)
    assert list(report["readers"]) == ["deepseek-ocr", "anthropic", "openai"]
    for reader in report["readers"].values():
        assert reader["budget_tokens"] <= 3000 < reader["optical_tokens"]
        assert reader["dropped_segments"] > 0
    assert all(tier["readback"] is None for tier in report["tiers"].values())
    assert "--no-readback" in report["note"]
    # The demo thread stays in the given store, and a second run replaces it.
    assert run(*args).returncode == 0
    inspected = run("inspect", DEMO_THREAD, "--store", store, "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["turns"] == 100


def test_demo_without_an_ocr_engine_reports_null_readback(short_input: Path) -> None:
    # A Python where rapidocr-onnxruntime cannot be imported, as on an install without
    # the ``ocr`` extra.
    code = (
        "import sys; sys.modules['rapidocr_onnxruntime'] = None; "
        "from optical_memory.cli import main; main()"
    )
    args = ["demo", "--input", str(short_input), "--reader", "deepseek-ocr", "--json"]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tiers"] and all(t["readback"] is None for t in report["tiers"].values())
    assert report["decoder"] is None
    assert report["note"].startswith("no read-back: rapidocr-onnxruntime is not installed")


def test_demo_reports_bad_input_in_one_red_line(short_input: Path, tmp_path: Path) -> None:
    unknown = run("demo", "--input", str(short_input), "--reader", "gpt-9", "--no-readback")
    assert unknown.returncode == 2 and "unknown reader 'gpt-9'" in unknown.stderr
    missing = run("demo", "--input", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"role": "user", "content": "hi"}\n{"role": "user", "content": \n')
    malformed = run("demo", "--input", str(broken))
    assert malformed.returncode == 2 and "broken.jsonl line 2: not valid JSON" in malformed.stderr
    budget = run("demo", "--input", str(short_input), "--budget", "0", "--no-readback")
    assert budget.returncode == 2 and "budget" in budget.stderr
    for result in (unknown, missing, malformed, budget):
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
