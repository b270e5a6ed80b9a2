"""The memory commands (ingest, context, inspect, recall, verify) on a real SQLite file,
run as users run them: the CLI in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from optical_memory import OpticalMemory
from optical_memory.demo import bundled_conversation
from optical_memory.jsonl import dump_messages
from tests.integration_tests.run_cli import run

# Three episodes of the bundled conversation: prose, code, tool calls with their results
# (OpenAI format, content null), emoji, and a conversation in Chinese.
_BUNDLED = bundled_conversation()
MESSAGES = _BUNDLED[:63] + _BUNDLED[95:113]


def one_red_line(result: Any) -> str:
    """The single error line of a failed command."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return str(lines[0])


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A store holding MESSAGES as thread 'chat', ingested from a JSON Lines file."""
    folder = tmp_path_factory.mktemp("cli-memory")
    source = folder / "chat.jsonl"
    source.write_text(dump_messages(MESSAGES), encoding="utf-8")
    store = f"sqlite:///{folder / 'memory.db'}"
    result = run("ingest", str(source), "--store", store)
    assert result.returncode == 0, result.stderr
    assert f"{len(MESSAGES)} turn(s) from {source} added to thread 'chat'" in result.stdout
    return store, source


def inspect_json(store: str, thread: str = "chat") -> dict[str, Any]:
    result = run("inspect", thread, "--store", store, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_recall_prints_every_segment_byte_for_byte(ingested: tuple[str, Path]) -> None:
    store, source = ingested
    report = inspect_json(store)
    assert report["turns"] == len(MESSAGES)
    cuts = {(s["first_turn"], s["end_turn"]): s["id"] for s in report["segments"]}
    assert len(cuts) >= 3 and report["segmented_turns"] == max(end for _, end in cuts)
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    ordered = sorted(cuts.items())
    # the first (system prompt), one with tool calls, and the last (Chinese); each recall
    # also redraws its segment, so not every one
    calls = next(
        i for i, ((a, b), _) in enumerate(ordered) if '"tool_calls"' in "".join(lines[a:b])
    )
    for (first, end), segment in [ordered[0], ordered[calls], ordered[-1]]:
        result = run("recall", "chat", segment, "--store", store)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "".join(lines[first:end])
        assert [json.loads(line) for line in result.stdout.splitlines()] == MESSAGES[first:end]


def test_inspect_lists_segments_with_tiers_ages_and_sizes(ingested: tuple[str, Path]) -> None:
    store, _ = ingested
    report = inspect_json(store)
    for segment in report["segments"]:
        assert segment["tier"] in {"large", "base", "small", "tiny", "forgotten"}
        assert segment["pages"] >= 1 and segment["png_bytes"] > 0
        assert segment["age"] >= 0 and segment["text_tokens"] > 0
    styles = {segment["style"] for segment in report["segments"]}
    assert len(styles) == 2  # the memory's default readers: deepseek-ocr and anthropic
    table = run("inspect", "chat", "--store", store)
    assert table.returncode == 0, table.stderr
    assert f"thread 'chat': {len(MESSAGES)} turn(s)" in table.stdout
    for segment in report["segments"]:
        assert segment["id"] in table.stdout


def test_context_writes_pages_and_parts_in_order(
    ingested: tuple[str, Path], tmp_path: Path
) -> None:
    store, _ = ingested
    out = tmp_path / "deepseek"
    result = run("context", "chat", "--reader", "deepseek-ocr", "--out", str(out), "--store", store)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "context.json").read_text(encoding="utf-8"))
    assert data["reader"] == "deepseek-ocr" and data["budget"] is None
    assert 0 < data["tokens"] < data["raw_tokens"]
    # the parts and the memory message's own framing and preamble, which is charged too
    assert 0 < data["frame_tokens"] < 100
    assert data["tokens"] == sum(part["tokens"] for part in data["parts"]) + data["frame_tokens"]
    # Every turn shows exactly once: in its segment's pages or text, or verbatim at the end.
    shown: list[str] = []
    segments: set[str] = set()
    for part in data["parts"]:
        if part["kind"] == "turn":
            shown += part["turn_ids"]
        elif part["kind"] in ("page", "text") and part["segment_id"] not in segments:
            segments.add(part["segment_id"])
            shown += part["turn_ids"]
    assert len(shown) == len(set(shown)) == len(MESSAGES)
    tail = [part["turn"]["message"] for part in data["parts"] if part["kind"] == "turn"]
    assert tail and tail == MESSAGES[-len(tail) :]
    pages = [part["page"] for part in data["parts"] if part["kind"] == "page"]
    assert pages and sorted(out.glob("page-*.png")) == [out / p["file"] for p in pages]
    for page in pages:
        with Image.open(out / page["file"]) as image:
            assert image.size == (page["width"], page["height"])


def test_context_within_a_budget_with_provider_messages(
    ingested: tuple[str, Path], tmp_path: Path
) -> None:
    store, _ = ingested
    out = tmp_path / "anthropic"
    args = ["context", "chat", "-r", "anthropic", "--budget", "4000", "--out", str(out)]
    result = run(*args, "--messages", "anthropic", "--store", store)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "context.json").read_text(encoding="utf-8"))
    assert data["tokens"] <= 4000 and data["dropped"]
    messages = json.loads((out / "messages.json").read_text(encoding="utf-8"))
    blocks = [block for block in messages[0]["content"] if block["type"] == "image"]
    assert len(blocks) == sum(1 for part in data["parts"] if part["kind"] == "page")


@pytest.mark.slow
def test_verify_records_readback_per_page(tmp_path: Path) -> None:
    # A short thread drawn for one reader only: the verbatim tail and one segment's page
    # or two to read.
    messages = MESSAGES[:26]
    source = tmp_path / "short.jsonl"
    source.write_text(dump_messages(messages), encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'verify.db'}"
    ingest = run("ingest", str(source), "--store", store, "--reader", "deepseek-ocr")
    assert ingest.returncode == 0, ingest.stderr
    before = inspect_json(store, "short")
    pages = sum(segment["pages"] for segment in before["segments"])
    assert 1 <= pages <= 4
    result = run("verify", "short", "--store", store, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["pages"]
    assert len(rows) == pages
    assert all(row["readback"] is not None and row["readback"] > 0.8 for row in rows)
    after = inspect_json(store, "short")
    assert [s["readback"] for s in after["segments"]] == [
        [row["readback"] for row in rows if row["segment_id"] == s["id"]] for s in after["segments"]
    ]
    with OpticalMemory(store) as memory:  # the reading is recorded as RapidOCR's
        for segment in after["segments"]:
            for page in memory.store.get_pages("short", segment["id"]):
                assert page.legibility is not None
                assert page.legibility.decoder in ("rapidocr", "RapidOCRDecoder")


def test_bad_input_ends_in_one_red_line_and_stores_nothing(
    ingested: tuple[str, Path], tmp_path: Path
) -> None:
    store, _ = ingested
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert "cannot read" in one_red_line(
        run("ingest", str(tmp_path / "no.jsonl"), "--store", empty)
    )
    broken = tmp_path / "broken.jsonl"
    broken.write_text(dump_messages(MESSAGES[:5]) + '{"role": "user", "content": "cut off\n')
    line = one_red_line(run("ingest", str(broken), "--store", empty))
    assert "broken.jsonl line 6: not valid JSON" in line
    roleless = tmp_path / "roleless.jsonl"
    roleless.write_text(dump_messages(MESSAGES[:2]) + '{"text": "no role"}\n')
    line = one_red_line(run("ingest", str(roleless), "--store", empty))
    assert "roleless.jsonl line 3: a message needs a 'role'" in line
    listed = tmp_path / "listed.jsonl"
    listed.write_text('[{"role": "user", "content": "a list, not a message"}]\n')
    assert "line 1: expected a JSON object" in one_red_line(
        run("ingest", str(listed), "--store", empty)
    )
    for thread in ("broken", "roleless", "listed"):  # nothing stored, not even a prefix
        assert "has no turns" in one_red_line(run("inspect", thread, "--store", empty))
    out = str(tmp_path / "o")
    unknown = one_red_line(run("context", "chat", "-r", "gpt-9", "--out", out, "--store", store))
    assert "unknown reader 'gpt-9'" in unknown and "deepseek-ocr" in unknown
    tight = one_red_line(run("context", "chat", "--budget", "5", "--out", out, "--store", store))
    assert "the newest turn costs" in tight
    assert "no segment" in one_red_line(run("recall", "chat", "0123456789ab", "--store", store))
    assert "has no turns" in one_red_line(run("verify", "nothing", "--store", store))
    assert "unknown store scheme" in one_red_line(run("inspect", "chat", "--store", "mongo://x"))
