"""OpticalMemory on a real SQLite file and a real redis-server: nothing lost, in order."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from optical_memory import DecayPolicy, OpticalMemory
from optical_memory.context import OpticalContext
from optical_memory.errors import ContextBudgetError, InvalidMessageError, UnknownReader
from optical_memory.records import Turn

from .conftest import SMALL
from .conversation import conversation


def shown_turn_ids(context: OpticalContext) -> list[str]:
    """Turn ids of a context's parts, oldest first, one entry per turn."""
    seen: list[str] = []
    for part in context.parts:
        for turn_id in part.turn_ids:
            if not seen or seen[-1] != turn_id:  # a segment's pages repeat its turn ids
                if part.kind == "page" and turn_id in seen:
                    continue
                seen.append(turn_id)
    return seen


def all_ids(turns: Sequence[Turn]) -> list[str]:
    return [turn.id for turn in turns]


def test_every_turn_appears_once_in_order_and_recall_is_exact(memory: OpticalMemory) -> None:
    messages = conversation(60)
    for message in messages:
        memory.add("chat", [message])
    stored = memory.store.get_turns("chat")
    assert [turn.message for turn in stored] == messages
    report = memory.inspect("chat")
    assert report.segmented_turns > 30  # most turns were compacted
    for reader in ("deepseek-ocr", "anthropic", "openai", "text"):
        context = memory.context("chat", reader=reader)
        assert shown_turn_ids(context) == all_ids(stored), reader
        assert context.dropped == () and context.dropped_turns == ()
        assert [t.message for t in context.turns] == messages[-len(context.turns) :]
    for segment in {info.id: info for info in report.segments}.values():
        recalled = memory.recall("chat", segment.id)
        assert [t.message for t in recalled] == messages[segment.first_turn : segment.end_turn]


def test_a_budget_drops_the_oldest_first(memory: OpticalMemory) -> None:
    memory.add("chat", conversation(80))
    stored = all_ids(memory.store.get_turns("chat"))
    full = memory.context("chat", reader="deepseek-ocr")
    context = memory.context("chat", reader="deepseek-ocr", budget=full.tokens // 2)
    assert context.tokens <= full.tokens // 2
    assert context.dropped, "half the budget must drop something"
    segments = {s.id: s for s in memory.store.list_segments("chat")}
    dropped = [tid for sid in context.dropped for tid in segments[sid].turn_ids]
    shown = shown_turn_ids(context)
    # the dropped segments are the oldest turns; together with what is shown, every turn once
    assert dropped + shown == stored


def test_tool_calls_stay_with_their_results(memory: OpticalMemory) -> None:
    memory.add("chat", conversation(90))
    for segment in memory.store.list_segments("chat"):
        turns = [memory.store.get_turn("chat", tid) for tid in segment.turn_ids]
        calls = {c["id"] for t in turns for c in t.message.get("tool_calls", [])}
        answered = {t.message["tool_call_id"] for t in turns if t.role == "tool"}
        assert calls == answered, segment.id


def test_pages_reach_providers_as_labelled_png_blocks(store_url: str, unique_tenant: str) -> None:
    # segments of ~600 tokens: a 1024 px page for Claude is then cheaper than the text
    policy = DecayPolicy(keep=("messages", 4), segment_pages=0.7)
    memory = OpticalMemory(store_url, tenant=unique_tenant, policy=policy)
    memory.add("chat", conversation(150))
    context = memory.context("chat", reader="anthropic")
    assert context.pages
    openai = context.to_openai()
    blocks = openai[0]["content"]
    images = [b for b in blocks if b["type"] == "image_url"]
    assert len(images) == len(context.pages)
    header, data = images[0]["image_url"]["url"].split(",", 1)
    assert header == "data:image/png;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == context.pages[0].image.size
    labels = [b["text"] for b in blocks if b["type"] == "text"]
    assert any(context.pages[0].segment_id in label for label in labels)
    anthropic = context.to_anthropic(cache_control=[context.pages[0].page_id])
    first = next(b for b in anthropic[0]["content"] if b["type"] == "image")
    assert first["cache_control"] == {"type": "ephemeral"}
    assert base64.b64decode(first["source"]["data"]) == context.pages[0].png
    assert anthropic[-1]["content"] == context.turns[-1].message["content"]
    memory.close()


def test_the_gate_never_charges_more_than_text(memory: OpticalMemory) -> None:
    memory.add("chat", conversation(80))
    for reader in ("deepseek-ocr", "anthropic", "openai", "gemini", "qwen2.5-vl"):
        context = memory.context("chat", reader=reader)
        assert context.tokens <= context.raw_tokens, reader


def test_decay_shrinks_pages_and_forgetting_is_opt_in(store_url: str, unique_tenant: str) -> None:
    policy = DecayPolicy(
        keep=("messages", 4),
        segment_pages=0.15,
        ladder=((0, "base"), (10, "tiny"), (40, "forgotten")),
    )
    with OpticalMemory(store_url, tenant=unique_tenant, policy=policy) as memory:
        memory.add("chat", conversation(90))
        tiers = {s.tier for s in memory.store.list_segments("chat")}
        assert {"tiny", "forgotten"} <= tiers
        for segment in memory.store.list_segments("chat"):
            pages = memory.store.get_pages("chat", segment.id)
            if segment.tier == "tiny":
                assert all(max(p.width, p.height) == 512 for p in pages)
            if segment.tier == "forgotten":
                assert pages == []
        context = memory.context("chat", reader="anthropic")
        assert context.forgotten
        forgotten = {
            tid
            for s in memory.store.list_segments("chat")
            if s.id in context.forgotten
            for tid in s.turn_ids
        }
        assert not forgotten & set(shown_turn_ids(context))
        # turns stay in the store, and recall brings a forgotten segment back, sharp
        assert memory.store.count_turns("chat") == 90
        sid = context.forgotten[0]
        memory.recall("chat", sid)
        assert memory.store.get_segment("chat", sid).tier == "base"


def test_bad_input_is_refused_and_nothing_is_stored(memory: OpticalMemory) -> None:
    memory.add("chat", [{"role": "user", "content": "first"}])
    with pytest.raises(InvalidMessageError, match="message 1"):
        memory.add("chat", [{"role": "user", "content": "ok"}, {"content": "no role"}])
    with pytest.raises(InvalidMessageError):
        memory.add("chat", [("user", b"bytes")])  # type: ignore[list-item]
    with pytest.raises(InvalidMessageError, match="list of messages"):
        memory.add("chat", {"role": "user", "content": "not in a list"})  # type: ignore[arg-type]
    assert [t.message["content"] for t in memory.store.get_turns("chat")] == ["first"]
    with pytest.raises(UnknownReader, match="deepseek-ocr"):
        memory.context("chat", reader="gpt-99")
    memory.add("chat", [{"role": "user", "content": "a long question " * 300}])
    with pytest.raises(ContextBudgetError, match="budget of 50"):
        memory.context("chat", reader="openai", budget=50)
    empty = memory.context("empty-thread", reader="openai")
    assert empty.parts == () and empty.tokens == 0


def test_search_finds_a_compacted_turn_and_its_segment(memory: OpticalMemory) -> None:
    memory.add("chat", conversation(60))
    hits = memory.search("chat", "INV-1877")
    assert hits and "INV-1877" in hits[0].turn.message["content"]
    assert hits[0].segment_id is not None
    assert any(t.id == hits[0].turn.id for t in memory.recall("chat", hits[0].segment_id))


def test_lazy_styles_for_a_reader_not_drawn_ahead(store_url: str, unique_tenant: str) -> None:
    with OpticalMemory(
        store_url, tenant=unique_tenant, policy=SMALL, readers=("deepseek-ocr",)
    ) as memory:
        memory.add("chat", conversation(50))
        styles = {s.metadata["style"] for s in memory.store.list_segments("chat")}
        assert len(styles) == 1
        context = memory.context("chat", reader="anthropic")
        styles = {s.metadata["style"] for s in memory.store.list_segments("chat")}
        assert len(styles) == 2
        assert shown_turn_ids(context) == all_ids(memory.store.get_turns("chat"))


def _corrupt_every_page(store_url: str) -> int:
    """Cut every stored page value short, behind the store's back; returns how many."""
    if store_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
            return db.execute("UPDATE pages SET value = substr(value, 1, 40)").rowcount
    import redis

    client = redis.Redis.from_url(store_url)
    keys = [key for key in client.scan_iter(match="*page:*") if b":page:" in key]
    for key in keys:
        client.set(key, (client.get(key) or b"")[:40])
    client.close()
    return len(keys)


def test_corrupt_pages_are_drawn_again_from_their_turns(
    store_url: str, unique_tenant: str
) -> None:
    from optical_memory.errors import CorruptRecord
    from optical_memory.memory import CorruptPageWarning

    messages = conversation(60)
    with OpticalMemory(store_url, tenant=unique_tenant, policy=SMALL) as memory:
        memory.add("chat", messages)
        before = memory.context("chat", reader="deepseek-ocr")
        assert _corrupt_every_page(store_url) >= len(before.pages) > 0
        with pytest.raises(CorruptRecord, match="page"):  # the store names what broke
            memory.store.get_pages("chat", before.pages[0].segment_id)
    # a memory that has the pages cached never reads them again; another one finds them
    # corrupt in the store
    with OpticalMemory(store_url, tenant=unique_tenant, policy=SMALL) as memory:
        with pytest.warns(CorruptPageWarning, match="drawn again"):
            after = memory.context("chat", reader="deepseek-ocr")
        # the same turns, the same page sizes and costs: nothing lost, nothing dearer
        assert shown_turn_ids(after) == shown_turn_ids(before)
        assert [(p.width, p.height) for p in after.pages] == [
            (p.width, p.height) for p in before.pages
        ]
        assert after.tokens == before.tokens
        for page in after.pages:
            Image.open(io.BytesIO(page.png)).verify()
        recalled = memory.recall("chat", after.pages[0].segment_id)
        assert [t.message for t in recalled] == messages[: len(recalled)]


def test_a_corrupt_page_due_to_decay_is_drawn_again_first(tmp_path: Path) -> None:
    from optical_memory.memory import CorruptPageWarning

    url = f"sqlite:///{tmp_path / 'memory.db'}"
    policy = DecayPolicy(keep=("messages", 4), segment_pages=0.15, ladder=((0, "base"),))
    with OpticalMemory(url, policy=policy) as memory:
        memory.add("chat", conversation(40))
    _corrupt_every_page(url)
    later = DecayPolicy(keep=("messages", 4), segment_pages=0.15, ladder=((0, "tiny"),))
    with OpticalMemory(url, policy=later) as memory, pytest.warns(CorruptPageWarning):
        context = memory.context("chat", reader="anthropic")
        assert context.pages and {p.tier for p in context.pages} == {"tiny"}


def test_a_chat_loop_reads_each_page_once(store_url: str, unique_tenant: str) -> None:
    with OpticalMemory(store_url, tenant=unique_tenant, policy=SMALL) as memory:
        memory.add("chat", conversation(60))
        first = memory.context("chat", reader="anthropic", budget=2500)
        reads: list[str] = []
        real = memory.store.get_pages

        def counted(thread: str, segment_id: str) -> list:  # type: ignore[type-arg]
            reads.append(segment_id)
            return real(thread, segment_id)

        memory.store.get_pages = counted  # type: ignore[method-assign]
        again = memory.context("chat", reader="anthropic", budget=2500)
        assert reads == [] and [p.png for p in again.pages] == [p.png for p in first.pages]
    with OpticalMemory(store_url, tenant=unique_tenant, policy=SMALL) as fresh:
        assert [p.png for p in fresh.context("chat", reader="anthropic", budget=2500).pages] == [
            p.png for p in first.pages
        ]


def test_the_preamble_is_charged_when_it_is_sent(memory: OpticalMemory) -> None:
    from optical_memory import readers
    from optical_memory.context import MEMORY_PREAMBLE

    memory.add("chat", conversation(60))
    reader = readers.get("anthropic")
    context = memory.context("chat", reader="anthropic", budget=3000)
    assert context.pages and context.tokens <= 3000
    frame = reader.text_tokens(MEMORY_PREAMBLE) + reader.message_overhead
    assert context.frame_tokens == frame
    assert context.tokens == sum(part.tokens for part in context.parts) + frame
    assert context.to_anthropic()[0]["content"][0]["text"] == MEMORY_PREAMBLE
    memory.add("short", [("user", "hi")])
    tail_only = memory.context("short", reader="anthropic")
    assert tail_only.frame_tokens == 0
    assert tail_only.to_openai() == [{"role": "user", "content": "hi"}]
