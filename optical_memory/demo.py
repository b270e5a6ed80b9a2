"""The main job on the embedded defaults: a long conversation goes into a memory, turn by
turn; out come, per reader, what its context costs against the raw history, pages per
tier, and how well one page of each tier reads back on the CPU.

The bundled conversation (``optical_memory/data/demo_conversation.jsonl``, written for
the project: a developer and an assistant over a few weeks of work, with code, tool
calls and some Chinese) is long enough for its oldest segments to decay to the last
tier of the default ladder. :func:`run_demo` measures; :mod:`optical_memory.demo_report`
prints and draws the result.

Example:
    >>> report = run_demo(readers=("deepseek-ocr", "anthropic"), readback=False)
    >>> report.readers[0].optical_tokens < report.readers[0].raw_tokens
    True
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from tqdm import tqdm

from optical_memory import readers as reader_profiles
from optical_memory.context import ContextPage, OpticalContext
from optical_memory.decoders import get_decoder
from optical_memory.errors import DecoderUnavailable, InvalidSettingError
from optical_memory.jsonl import parse_messages
from optical_memory.memory import OpticalMemory
from optical_memory.messages import turn_text, turns_from_messages
from optical_memory.metrics import char_accuracy
from optical_memory.policy import LADDER_TIERS
from optical_memory.readers import ReaderProfile
from optical_memory.records import Turn
from optical_memory.segments import segment_transcript

__all__ = [
    "DEMO_READERS",
    "DEMO_THREAD",
    "DemoReport",
    "PageSample",
    "ReaderResult",
    "TierResult",
    "bundled_conversation",
    "run_demo",
]

DEMO_READERS = ("deepseek-ocr", "openai", "anthropic", "gemini")
"""Readers the demo reports on unless told otherwise."""

DEMO_THREAD = "optical-memory-demo"
"""The thread the demo writes to a store given with ``store=``; cleared at each run."""

_TIERS = tuple(tier for tier in LADDER_TIERS if tier != "forgotten")


@dataclass(frozen=True)
class PageSample:
    """One page of a reader's context, as the report shows it.

    Attributes:
        reader: The reader whose context holds the page.
        tier: The page's tier.
        segment_id: The segment it shows part of.
        page_id: Its content id.
        age: The segment's age in turns.
        width, height: Pixel size.
        image_tokens: What the page costs the reader.
        png: The PNG bytes.
        readback: Character accuracy of the CPU read-back against the text the page
            shows (``None``: not read).
        seconds: Time the read-back took.
        text: The text the page shows (set when it was read back).
        read: The text read back.
    """

    reader: str
    tier: str
    segment_id: str
    page_id: str
    age: float
    width: int
    height: int
    image_tokens: int
    png: bytes = field(repr=False)
    readback: float | None = None
    seconds: float | None = None
    text: str = ""
    read: str = ""


@dataclass(frozen=True)
class ReaderResult:
    """What one reader's context costs.

    Attributes:
        name: The reader profile.
        raw_tokens: The turns the context holds, as text in the reader's tokens.
        optical_tokens: The context holding every turn (no budget): pages, segment
            texts, fact sheet and the verbatim tail.
        pages: Pages per tier in that context.
        text_segments: Segments shown as text (the break-even gate chose text).
        verbatim_turns: Recent turns shown as they are.
        facts_tokens: Tokens of the fact sheet.
        context_ms: Time ``context()`` took.
        budget_tokens: Tokens of the context fitted to the demo's budget (``None``: no budget).
        dropped_segments: Segments that context leaves out.
        dropped_turns: Recent turns that context leaves out.
        curve: ``(turns back, raw tokens, context tokens)``: what the newest turns up to
            that age cost, as text and in the context, newest first.
        samples: One page per tier in the context: the first page of the middle
            segment at that tier.
    """

    name: str
    raw_tokens: int
    optical_tokens: int
    pages: dict[str, int]
    text_segments: int
    verbatim_turns: int
    facts_tokens: int
    context_ms: float
    budget_tokens: int | None = None
    dropped_segments: int = 0
    dropped_turns: int = 0
    curve: tuple[tuple[int, int, int], ...] = ()
    samples: tuple[PageSample, ...] = ()

    @property
    def ratio(self) -> float:
        """``optical_tokens / raw_tokens``."""
        return self.optical_tokens / self.raw_tokens if self.raw_tokens else 1.0


@dataclass(frozen=True)
class TierResult:
    """One tier across the readers' contexts: how many pages, and the read-back of one."""

    tier: str
    pages: int
    sample: PageSample | None = None

    @property
    def readback(self) -> float | None:
        """The sample page's character accuracy (``None``: not read back)."""
        return None if self.sample is None else self.sample.readback


@dataclass(frozen=True)
class DemoReport:
    """Result of :func:`run_demo`.

    Attributes:
        source: Where the conversation came from (``"bundled conversation"`` or a path).
        turns: Turns added.
        characters: Characters of their text.
        store: The store used, as shown to people (no password).
        thread: The thread written.
        budget: The budget also fitted to (``None``: none).
        ladder: The decay policy's ``(age, tier)`` steps.
        readers: One result per reader, in the order asked.
        tiers: Tiers shown by any reader, sharpest first, each with the page read back.
        timings: Seconds and milliseconds of each phase (see :meth:`to_dict`).
        decoder: The decoder that read pages back (``None``: none did).
        note: Why nothing was read back, when nothing was.
    """

    source: str
    turns: int
    characters: int
    store: str
    thread: str
    budget: int | None
    ladder: tuple[tuple[float, str], ...]
    readers: tuple[ReaderResult, ...]
    tiers: tuple[TierResult, ...]
    timings: dict[str, Any]
    decoder: str | None = None
    note: str = ""


def bundled_conversation() -> list[dict[str, Any]]:
    """The demo conversation shipped with the package: role/content messages, oldest first."""
    text = (
        resources.files("optical_memory")
        .joinpath("data/demo_conversation.jsonl")
        .read_text(encoding="utf-8")
    )
    return parse_messages(text, "demo_conversation.jsonl")


def run_demo(
    messages: Sequence[dict[str, Any]] | None = None,
    *,
    readers: Sequence[str] = DEMO_READERS,
    store: str | None = None,
    budget: int | None = None,
    readback: bool = True,
    source: str = "bundled conversation",
    progress: bool = False,
) -> DemoReport:
    """Add a conversation to a memory turn by turn and measure what each reader is shown.

    Args:
        messages: The conversation (default: :func:`bundled_conversation`).
        readers: Reader profile names to report on.
        store: A store URL; the demo then writes thread :data:`DEMO_THREAD` there
            (cleared first, kept afterwards). Default: a temporary SQLite file, deleted
            when the demo ends.
        budget: Also fit each reader's context to this many tokens.
        readback: Read one page of each tier back with RapidOCR on the CPU.
        source: What to call the conversation in the report.
        progress: Show progress bars (on stderr).

    Raises:
        UnknownReader: A name in ``readers`` is no reader profile.
        InvalidSettingError: No readers, or a budget that is not a positive int.
        InvalidMessageError: A message of no supported shape (nothing is added).
        ContextBudgetError: ``budget`` is smaller than the newest turn.
        StoreError: The store failed.
    """
    started = time.perf_counter()
    profiles = _profiles(readers)
    if budget is not None and (isinstance(budget, bool) or budget <= 0):
        raise InvalidSettingError(f"budget must be a positive number of tokens, got {budget!r}")
    messages = list(bundled_conversation() if messages is None else messages)
    turns = turns_from_messages(messages)  # refuse a bad message before storing any
    with _memory(store, profiles) as (memory, shown_store):
        memory.forget(DEMO_THREAD)
        add_ms = _add(memory, messages, progress)
        stored = memory.store.get_turns(DEMO_THREAD)
        ages = {info.id: info.age for info in memory.inspect(DEMO_THREAD).segments}
        results = [_measure(memory, profile, stored, ages, budget) for profile in profiles]
        tiers = _tiers(results)
        decoder_name, note, read_s = None, "", 0.0
        if readback:
            decoder_name, note, tiers, read_s = _read_back(memory, tiers, stored, progress)
        else:
            note = "no read-back: it was turned off (--no-readback)"
    results = [_with_readback(result, tiers) for result in results]
    timings = {
        "add_s": round(sum(add_ms) / 1000, 3),
        "add_ms_per_turn": _spread(add_ms),
        "context_ms": {result.name: round(result.context_ms, 2) for result in results},
        "readback_s": round(read_s, 2),
        "readback_s_per_page": {
            t.tier: round(t.sample.seconds, 2)
            for t in tiers
            if t.sample is not None and t.sample.seconds is not None
        },
        "total_s": round(time.perf_counter() - started, 2),
    }
    return DemoReport(
        source=source,
        turns=len(turns),
        characters=sum(len(turn_text(turn)) for turn in turns),
        store=shown_store,
        thread=DEMO_THREAD,
        budget=budget,
        ladder=tuple((step.age, step.tier) for step in memory.policy.steps),
        readers=tuple(results),
        tiers=tuple(tiers),
        timings=timings,
        decoder=decoder_name,
        note=note,
    )


def _profiles(names: Sequence[str]) -> list[ReaderProfile]:
    profiles: list[ReaderProfile] = []
    for name in names:
        profile = reader_profiles.get(name)
        if profile not in profiles:
            profiles.append(profile)
    if not profiles:
        raise InvalidSettingError("the demo needs at least one reader")
    return profiles


@contextlib.contextmanager
def _memory(
    store: str | None, profiles: Sequence[ReaderProfile]
) -> Iterator[tuple[OpticalMemory, str]]:
    """A memory drawing pages for every image reader, on ``store`` or a temporary file."""
    drawn = [profile.name for profile in profiles if profile.image_input]
    with contextlib.ExitStack() as stack:
        if store is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="optical-memory-"))
            url, shown = f"sqlite:///{Path(folder) / 'demo.db'}", "temporary SQLite file"
        else:
            url, shown = store, _shown_url(store)
        memory = stack.enter_context(OpticalMemory(url, readers=drawn))
        yield memory, shown


def _shown_url(url: str) -> str:
    """``url`` without its password."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    return url.replace(f":{password}@", ":***@", 1)


def _add(memory: OpticalMemory, messages: Sequence[dict[str, Any]], progress: bool) -> list[float]:
    """Add the messages one at a time, as a chatbot would; milliseconds per call."""
    times = []
    for message in tqdm(messages, desc="adding turns", unit="turn", disable=not progress):
        start = time.perf_counter()
        memory.add(DEMO_THREAD, [message])
        times.append((time.perf_counter() - start) * 1000)
    return times


def _spread(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 3),
        "p50": round(ordered[len(ordered) // 2], 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


def _measure(
    memory: OpticalMemory,
    profile: ReaderProfile,
    turns: Sequence[Turn],
    ages: dict[str, float],
    budget: int | None,
) -> ReaderResult:
    start = time.perf_counter()
    context = memory.context(DEMO_THREAD, reader=profile.name)
    context_ms = (time.perf_counter() - start) * 1000
    by_tier: dict[str, list[ContextPage]] = {}
    for page in context.pages:
        by_tier.setdefault(page.tier, []).append(page)
    samples = tuple(
        _sample(profile.name, _middle_segment_page(pages), ages)
        for tier in _TIERS
        if (pages := by_tier.get(tier))
    )
    result = ReaderResult(
        name=profile.name,
        raw_tokens=context.raw_tokens,
        optical_tokens=context.tokens,
        pages={tier: len(by_tier[tier]) for tier in _TIERS if tier in by_tier},
        text_segments=sum(1 for part in context.parts if part.kind == "text"),
        verbatim_turns=len(context.turns),
        facts_tokens=sum(part.tokens for part in context.parts if part.kind == "facts"),
        context_ms=context_ms,
        curve=_curve(profile, context, turns),
        samples=samples,
    )
    if budget is None:
        return result
    fitted = memory.context(DEMO_THREAD, reader=profile.name, budget=budget)
    return replace(
        result,
        budget_tokens=fitted.tokens,
        dropped_segments=len(fitted.dropped),
        dropped_turns=len(fitted.dropped_turns),
    )


def _middle_segment_page(pages: Sequence[ContextPage]) -> ContextPage:
    """The first page of the middle segment among ``pages`` (a first page is full, where
    a segment's last page may hold a line or two)."""
    segments = list(dict.fromkeys(page.segment_id for page in pages))
    middle = segments[len(segments) // 2]
    return next(page for page in pages if page.segment_id == middle)


def _sample(reader: str, page: ContextPage, ages: dict[str, float]) -> PageSample:
    return PageSample(
        reader=reader,
        tier=page.tier,
        segment_id=page.segment_id,
        page_id=page.page_id,
        age=ages.get(page.segment_id, 0.0),
        width=page.width,
        height=page.height,
        image_tokens=page.image_tokens,
        png=page.png,
    )


def _curve(
    profile: ReaderProfile, context: OpticalContext, turns: Sequence[Turn]
) -> tuple[tuple[int, int, int], ...]:
    """Cumulative cost of the newest turns, as text and in the context, by how far back."""
    index = {turn.id: number for number, turn in enumerate(turns)}
    raw_of = [profile.text_tokens(turn_text(turn)) + profile.message_overhead for turn in turns]
    points = [(0, 0, 0)]
    raw = shown = 0
    seen: set[str] = set()
    for part in reversed(context.parts):
        shown += part.tokens
        new = [index[t] for t in part.turn_ids if t in index and t not in seen]
        seen.update(part.turn_ids)
        raw += sum(raw_of[number] for number in new)
        if part.turn_ids:
            back = len(turns) - min(index[t] for t in part.turn_ids if t in index)
            points.append((back, raw, shown))
        else:
            points[-1] = (points[-1][0], raw, shown)  # the fact sheet: no turns of its own
    return tuple(points)


def _tiers(results: Sequence[ReaderResult]) -> list[TierResult]:
    """Tiers any reader shows, each with one sample page to read back: the first
    reader's (in the order asked) that shows the tier."""
    tiers = []
    for tier in _TIERS:
        count = sum(result.pages.get(tier, 0) for result in results)
        if not count:
            continue
        sample = next((s for r in results for s in r.samples if s.tier == tier), None)
        tiers.append(TierResult(tier, count, sample))
    return tiers


def _read_back(
    memory: OpticalMemory, tiers: list[TierResult], turns: Sequence[Turn], progress: bool
) -> tuple[str | None, str, list[TierResult], float]:
    """Read each tier's sample page with RapidOCR; a missing engine gives a note instead."""
    samples = [t.sample for t in tiers if t.sample is not None]
    if not samples:
        return (
            None,
            "no read-back: no pages (the conversation is too short to be compacted)",
            tiers,
            0.0,
        )
    try:
        decoder = get_decoder("rapidocr")
        decoder.decode([])  # engines load lazily: surface a missing one now
    except DecoderUnavailable as exc:
        return None, f"no read-back: {exc}", tiers, 0.0
    by_id = {turn.id: turn for turn in turns}
    read: dict[tuple[str, str], PageSample] = {}
    start = time.perf_counter()
    with (
        decoder,
        tqdm(
            samples,
            desc="reading a page per tier back (RapidOCR, CPU)",
            unit="page",
            disable=not progress,
        ) as bar,
    ):
        for sample in bar:
            page = next(
                p
                for p in memory.store.get_pages(DEMO_THREAD, sample.segment_id)
                if p.id == sample.page_id
            )
            segment = memory.store.get_segment(DEMO_THREAD, sample.segment_id)
            shown = segment_transcript([by_id[t] for t in segment.turn_ids])
            expected = shown[page.span[0] : page.span[1]]
            page_start = time.perf_counter()
            text = decoder.decode([sample.png])[0]
            read[sample.reader, sample.page_id] = replace(
                sample,
                readback=round(char_accuracy(expected, text), 4),
                seconds=time.perf_counter() - page_start,
                text=expected,
                read=text,
            )
    seconds = time.perf_counter() - start
    updated = [
        TierResult(t.tier, t.pages, read.get((t.sample.reader, t.sample.page_id), t.sample))
        if t.sample is not None
        else t
        for t in tiers
    ]
    return decoder.name, "", updated, seconds


def _with_readback(result: ReaderResult, tiers: Sequence[TierResult]) -> ReaderResult:
    """The reader's samples with the read-back of those that were read."""
    read = {
        (t.sample.reader, t.sample.page_id): t.sample
        for t in tiers
        if t.sample is not None and t.sample.readback is not None
    }
    samples = tuple(read.get((s.reader, s.page_id), s) for s in result.samples)
    return replace(result, samples=samples)
