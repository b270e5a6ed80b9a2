"""``OpticalMemory``: add turns, get a budgeted optical context back, decay, recall.

Every turn is stored verbatim. Turns older than the policy's verbatim tail are cut into
segments and drawn as page images in the style each reader reads (DeepSeek-OCR: dense
640 px pages; hosted models: larger glyphs). Pages shrink as they age (the decay
ladder); ``context()`` shows the tail verbatim, older segments as pages or as text,
whichever costs the reader less, and a fact sheet of exact strings, within a budget.
``recall()`` returns a segment's turns exactly and sharpens it again.

Example:
    >>> memory = OpticalMemory("sqlite:///chat.db")
    >>> memory.add("thread-1", [{"role": "user", "content": "Hi, I'm Ana."}])
    >>> messages = memory.context("thread-1", reader="openai", budget=8000).to_openai()
"""

from __future__ import annotations

import functools
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from optical_memory import readers
from optical_memory.assembly import SegmentView, label_tokens, plan_context
from optical_memory.context import ContextPage, ContextPart, OpticalContext, page_label
from optical_memory.decoders.base import Decoder
from optical_memory.deepseek_context import (
    PageWant,
    is_deepseek_reader,
    page_tokens,
    read_mode,
    token_reader,
    with_vision_tokens,
)
from optical_memory.errors import (
    CorruptRecord,
    InvalidSettingError,
    NotFound,
    OpticalMemoryError,
)
from optical_memory.facts import extract_facts
from optical_memory.messages import MessageLike, turn_text, turns_from_messages
from optical_memory.metrics import char_accuracy
from optical_memory.policy import FORGOTTEN, LADDER_TIERS, DecayPolicy
from optical_memory.readers import ReaderProfile
from optical_memory.records import Legibility, Page, Segment, Turn
from optical_memory.renderers import TextRenderer
from optical_memory.segments import (
    PageStyle,
    decay_page,
    keep_start,
    page_fill,
    plan_cuts,
    render_segment,
    segment_id,
    segment_transcript,
    shown_tier,
)
from optical_memory.store import Store, open_store
from optical_memory.tokens import count_tokens
from optical_memory.vision_encoder import Encoder

__all__ = [
    "CorruptPageWarning",
    "OpticalMemory",
    "SearchHit",
    "SegmentInfo",
    "ThreadReport",
    "page_style",
]


class CorruptPageWarning(UserWarning):
    """A stored page was corrupt; ``context()`` drew the segment again from its turns."""

_ENCODINGS = ("cl100k_base", "o200k_base")
DEFAULT_READERS = ("deepseek-ocr", "anthropic")
_VIEWS_KEPT = 50_000  # segment views for planning contexts, a few hundred bytes each
_PAGE_CACHE_BYTES = 64 << 20  # PNG bytes of pages kept for the next context


def page_style(reader: ReaderProfile) -> PageStyle:
    """How pages are drawn for ``reader``: its canvas and glyph size; the ``vision``
    preset's tight spacing and full squares for DeepSeek-OCR (it pads every image to its
    mode's square), legible spacing and cropped pages for readers billed by area."""
    deepseek = reader.name.startswith("deepseek")
    return PageStyle(
        side=reader.page_side,
        font_px=reader.font_px,
        preset="vision" if deepseek else "legible",
        crop=not deepseek,
        tiers=tuple(reader.tiers),
    )


def default_store_path() -> Path:
    """Where ``OpticalMemory()`` keeps its embedded SQLite store: the user's data directory."""
    from platformdirs import user_data_path

    return user_data_path("optical-memory", appauthor=False) / "memory.db"


@dataclass(frozen=True)
class SearchHit:
    """A turn that matches a search: the turn, its index, its segment (if compacted)."""

    turn: Turn
    index: int
    segment_id: str | None
    score: float


@dataclass(frozen=True)
class SegmentInfo:
    """One segment as ``inspect()`` reports it."""

    id: str
    style: str
    tier: str
    first_turn: int
    end_turn: int
    age: float
    pages: int
    png_bytes: int
    text_tokens: int
    readback: tuple[float | None, ...]


@dataclass(frozen=True)
class ThreadReport:
    """What ``inspect()`` returns: the thread's turns, segments and unsegmented tail."""

    thread: str
    turns: int
    segmented_turns: int
    segments: tuple[SegmentInfo, ...]


class OpticalMemory:
    """Long-conversation memory over a store, a renderer and optional decoder and encoder.

    Args:
        store: ``None`` for an embedded SQLite file in the user's data directory, a store
            URL (``sqlite:///...``, ``redis://...``) or a :class:`~optical_memory.store.Store`.
        tenant: The tenant the memory works in (stores keep tenants apart).
        policy: The verbatim tail, segment size, decay ladder and gates.
        renderer: A renderer to draw every page with (default: one per reader style).
        decoder: Reads pages back, for ``verify()`` and ``rehydrate()`` (default: RapidOCR,
            created when first needed).
        encoder: Turns pages into DeepSeek-OCR vision tokens, cached in the store.
        readers: Reader profiles whose page styles ``compact()`` draws ahead of time; any
            other reader's pages are drawn the first time a context asks for them.
        auto_compact: ``add()`` compacts when the tail outgrows ``policy.keep``; ``False``
            leaves it to ``compact()`` (e.g. a background worker).

    Raises:
        UnknownReader: A name in ``readers`` is no known reader profile.
        InvalidStoreURL: ``store`` is a URL of no known scheme.
    """

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        tenant: str = "default",
        policy: DecayPolicy | None = None,
        renderer: TextRenderer | None = None,
        decoder: Decoder | None = None,
        encoder: Encoder | None = None,
        readers: Sequence[str] = DEFAULT_READERS,
        auto_compact: bool = True,
    ) -> None:
        if store is None:
            path = default_store_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            store = open_store(f"sqlite:///{path}", tenant=tenant)
        elif isinstance(store, str):
            store = open_store(store, tenant=tenant)
        elif store.tenant != tenant:
            store = store.with_tenant(tenant)
        self.store: Store = store
        self.policy = policy or DecayPolicy()
        self.renderer = renderer
        self.decoder = decoder
        self.encoder = encoder
        self.auto_compact = auto_compact
        self.readers = tuple(_profile(name) for name in readers)
        self._renderers: dict[str, TextRenderer] = {}
        self._pages = _PageCache(_PAGE_CACHE_BYTES)
        # per thread: the first turn no cut has taken, and the page fill of it and later ones
        self._uncut: dict[str, tuple[int, list[float]]] = {}
        self._views: dict[tuple[str, str, str], SegmentView] = {}

    # --- writing -----------------------------------------------------------------------

    def add(self, thread: str, messages: Iterable[MessageLike]) -> list[Turn]:
        """Append messages as turns, verbatim, in one store call; then compact if due.

        Args:
            thread: The conversation's name.
            messages: Role/content dicts, LangChain message data or objects, or
                ``(role, text)`` pairs.

        Returns:
            The stored turns (a retried message with the same id is stored once).

        Raises:
            InvalidMessageError: A message of no supported shape (nothing is stored).
            StoreError: The store failed (nothing half-written: appends are atomic).
        """
        turns = turns_from_messages(messages)
        if turns:
            self.store.append_turns(thread, turns)
            if self.auto_compact and self._may_cut(thread, turns):
                self.compact(thread)
        return turns

    def _may_cut(self, thread: str, added: Sequence[Turn]) -> bool:
        """Whether a full segment may lie before the verbatim tail, judged from the page
        fill of the turns after the last cut this memory made (kept in memory while this
        memory is the thread's only writer), so most adds skip listing segments. A stale
        answer (another process cut more) only costs a needless compaction."""
        known = self._uncut.get(thread)
        if known is None:
            return True
        first, fills = known
        fills.extend(page_fill(turn) for turn in added)
        if self.store.count_turns(thread) != first + len(fills):  # another writer, or a retry
            turns = self.store.get_turns(thread, first)
            fills[:] = [page_fill(turn) for turn in turns]
            if not turns:
                return True  # the thread was replaced meanwhile: look again
        kind, count = self.policy.keep
        if kind == "messages":
            limit = max(0, len(fills) - count)
        else:
            limit = keep_start(self.store.get_turns(thread, first), self.policy)
        return sum(fills[: limit + 1]) > self.policy.segment_pages

    def compact(self, thread: str) -> list[str]:
        """Cut full segments out of the turns older than the verbatim tail, draw them for
        every configured reader style, store each segment with its pages atomically, then
        run :meth:`decay`. Safe to run twice or from two processes at once: segments are
        cut and named from the turns alone, so both write the same ones.

        Returns:
            Ids of the segments written (in every style).
        """
        segments = self.store.list_segments(thread)
        styles = {page_style(reader) for reader in self.readers}
        # Start where the least advanced style stops: a compaction killed between two
        # styles' writes of one cut leaves the other style behind, and this completes it.
        start, tokens_before = min(
            (
                _chain_end([s for s in segments if s.metadata.get("style") == style.key])
                for style in styles
            ),
            default=(0, 0),
        )
        # What is drawn already, by style and turns (not by id: ids from older releases
        # were spelled differently).
        have = {(segment.metadata.get("style"), tuple(segment.turn_ids)) for segment in segments}
        start_next = start
        tail = self.store.get_turns(thread, start)
        limit = keep_start(tail, self.policy)
        written = []
        for first, end in plan_cuts(tail, limit, self.policy.segment_pages):
            turns = tail[first:end]
            for style in styles:
                if (style.key, tuple(turn.id for turn in turns)) in have:
                    continue
                segment, pages = self._draw(thread, turns, start + first, tokens_before, style)
                self.store.put_segment(segment, pages)
                segments.append(segment)
                written.append(segment.id)
            tokens_before += sum(turn.text_tokens for turn in turns)
            start_next = start + end
        self._uncut[thread] = (start_next, [page_fill(t) for t in tail[start_next - start :]])
        self._decay_segments(thread, segments, None)
        return written

    def _draw(
        self,
        thread: str,
        turns: Sequence[Turn],
        first: int,
        tokens_before: int,
        style: PageStyle,
    ) -> tuple[Segment, list[Page]]:
        rendered = render_segment(turns, style, self._renderer(style))
        pages = [page for page, _ in rendered]
        transcript_text = segment_transcript(turns)
        end = first + len(turns)
        segment_tokens = sum(turn.text_tokens for turn in turns)
        segment = Segment(
            thread=thread,
            turn_ids=[turn.id for turn in turns],
            tier=style.top,
            page_ids=[page.id for page in pages],
            id=segment_id(style, [turn.id for turn in turns]),
            metadata={
                "style": style.key,
                "tiers": list(style.tiers),
                "font_px": style.font_px,
                "start": first,
                "end": end,
                "end_tokens": tokens_before + segment_tokens,
                "born": {
                    "turns": end,
                    "tokens": tokens_before + segment_tokens,
                    "seconds": max(turn.created_at for turn in turns),
                },
                "text_tokens": {
                    encoding: count_tokens(transcript_text, encoding) for encoding in _ENCODINGS
                },
                "facts": extract_facts(transcript_text, self.policy.facts_per_segment),
                "page_sizes": [[page.width, page.height] for page in pages],
            },
        )
        return segment, pages

    def _renderer(self, style: PageStyle) -> TextRenderer:
        if self.renderer is not None:
            return self.renderer
        if style.key not in self._renderers:
            self._renderers[style.key] = style.renderer()
        return self._renderers[style.key]

    def decay(self, thread: str, now: float | None = None) -> list[str]:
        """Move segments down the ladder by their age: shrink their pages (dropping the
        vision tokens of replaced pages), or mark them forgotten past the ladder's end
        (absent from contexts; their turns stay in the store).

        Args:
            thread: The conversation.
            now: Wall time for ``age_unit="seconds"`` (default: now).

        Returns:
            Ids of the segments that moved.
        """
        segments = self.store.list_segments(thread)
        return [s.id for s in self._decay_segments(thread, segments, now)]

    def _ages(self, thread: str, segments: Sequence[Segment], now: float | None) -> Any:
        unit = self.policy.age_unit
        if unit == "turns":
            current: float = self.store.count_turns(thread)
        elif unit == "tokens":
            start, tokens = _chain_end(segments)
            current = tokens + sum(t.text_tokens for t in self.store.get_turns(thread, start))
        else:
            current = time.time() if now is None else now
        return lambda segment: current - float(segment.metadata.get("born", {}).get(unit, 0))

    def _decay_segments(
        self, thread: str, segments: Sequence[Segment], now: float | None
    ) -> list[Segment]:
        age_of = self._ages(thread, segments, now)
        forgets = self.policy.steps[-1].tier == FORGOTTEN
        moved = []
        for segment in segments:
            if segment.tier == FORGOTTEN:
                continue
            style = _style_of(segment)
            if style is None or (segment.tier == style.tiers[-1] and not forgets):
                continue  # at its style's smallest tier, and the ladder forgets nothing
            target = shown_tier(style, self.policy.tier_for(age_of(segment)))
            if LADDER_TIERS.index(target) <= LADDER_TIERS.index(segment.tier):
                continue  # decay only shrinks; recall sharpens
            if target == FORGOTTEN:
                new, pages = replace(segment, tier=FORGOTTEN, page_ids=()), []
            else:
                try:
                    old = self.store.get_pages(thread, segment.id)
                except CorruptRecord as exc:
                    old = self._redraw(thread, segment, exc)
                pages = [decay_page(p, target, style.font_px) for p in old]
                new = replace(
                    segment,
                    tier=target,
                    page_ids=[p.id for p in pages],
                    updated_at=time.time(),
                    metadata={
                        **segment.metadata,
                        "page_sizes": [[p.width, p.height] for p in pages],
                    },
                )
            try:
                self.store.replace_segment(new, pages)
            except NotFound:
                continue  # deleted meanwhile (forget() or retention)
            moved.append(new)
        return moved

    # --- reading -----------------------------------------------------------------------

    def context(self, thread: str, *, reader: str, budget: int | None = None) -> OpticalContext:
        """The thread's memory as ``reader`` takes it, within ``budget`` tokens.

        The recent tail verbatim; older segments as page images, or as their text where
        the reader has no image input or the text is cheaper; the fact sheet; oldest
        dropped first when over budget. With an encoder and a DeepSeek-OCR reader, every
        page carries its vision tokens, from the store's cache or encoded on a miss and
        cached (see :mod:`optical_memory.deepseek_context`), for ``to_deepseek()``.

        Args:
            thread: The conversation.
            reader: A reader profile name (:func:`optical_memory.readers.names`).
            budget: Most tokens the context may cost that reader (``None``: no limit).

        Raises:
            UnknownReader: ``reader`` names no profile.
            ContextBudgetError: The newest turn alone costs more than ``budget``.
            InvalidSettingError: ``budget`` is not a positive int.
            DecoderUnavailable, CheckpointError: The encoder cannot run.
        """
        profile = _profile(reader)
        if budget is not None and (not isinstance(budget, int) or budget <= 0):
            raise InvalidSettingError(f"budget must be a positive int or None, got {budget!r}")
        segments = self.store.list_segments(thread)
        moved = {s.id: s for s in self._decay_segments(thread, segments, None)}
        segments = [moved.get(s.id, s) for s in segments]
        shown = self._segments_for(thread, profile, segments)
        start, _ = _chain_end(segments)
        tail = self.store.get_turns(thread, start)
        views = [self._view_of(s, profile.encoding) for s in shown]
        plan = plan_context(profile, views, tail, budget, self.policy.facts_share)
        parts: list[ContextPart] = []
        for view in views:
            segment = view.segment
            form = plan.forms[segment.id]
            if form == "pages":
                pages = self._shown_pages(thread, segment, plan.tiers.get(segment.id))
                for number, page in enumerate(pages, 1):
                    parts.append(self._page_part(profile, segment, page, number, len(pages)))
            elif form == "text":
                turns = self._segment_turns(thread, segment)
                text = "\n\n".join(f"{t.role}: {turn_text(t)}" for t in turns)
                parts.append(
                    ContextPart(
                        kind="text",
                        tokens=plan.costs[segment.id],
                        segment_id=segment.id,
                        turn_ids=tuple(segment.turn_ids),
                        text=f"{page_label(segment.id)}\n{text}",
                    )
                )
        if plan.facts_text:
            parts.append(ContextPart(kind="facts", tokens=plan.facts_tokens, text=plan.facts_text))
        for turn, cost in plan.tail:
            parts.append(ContextPart(kind="turn", tokens=cost, turn_ids=(turn.id,), turn=turn))
        forms = plan.forms
        context = OpticalContext(
            thread=thread,
            reader=profile.name,
            budget=budget,
            parts=tuple(parts),
            dropped=tuple(s.id for s in shown if forms[s.id] == "dropped"),
            dropped_turns=tuple(plan.dropped_turns),
            forgotten=tuple(s.id for s in shown if forms[s.id] == "forgotten"),
            tokens=sum(part.tokens for part in parts) + plan.frame_tokens,
            raw_tokens=plan.raw_tokens,
            frame_tokens=plan.frame_tokens,
        )
        if self.encoder is not None and is_deepseek_reader(profile):
            context = with_vision_tokens(context, self.store, self.encoder, profile)
        return context

    def _view_of(self, segment: Segment, encoding: str) -> SegmentView:
        """The planner's view of a segment, kept while the store returns the same record
        object for it (it does while the stored record is unchanged)."""
        key = (segment.thread, segment.id, encoding)
        cached = self._views.get(key)
        if cached is not None and cached.segment is segment:
            return cached
        if len(self._views) >= _VIEWS_KEPT:
            self._views.clear()
        view = self._views[key] = SegmentView.of(segment, encoding)
        return view

    def _shown_pages(self, thread: str, segment: Segment, tier: str | None) -> list[Page]:
        """The segment's pages as a context shows them: as stored, or shrunk to ``tier``
        where the budget asks for a smaller tier than the ladder's. Both are kept in a
        bounded cache (page ids are hashes of the PNG, so a cached page cannot be stale):
        the next context of a chat loop asks for nearly the same pages."""
        pages = self._pages.get(segment.page_ids)
        if pages is None:
            try:
                pages = self.store.get_pages(thread, segment.id)
            except CorruptRecord as exc:
                pages = self._redraw(thread, segment, exc)
            self._pages.put(pages)
        if tier is None:
            return pages
        font_px = float(segment.metadata.get("font_px", 12.0))
        keys = [f"{page.id}@{tier}" for page in pages]
        shown = self._pages.get(keys)
        if shown is None:
            shown = [decay_page(page, tier, font_px) for page in pages]
            self._pages.put(shown, keys)
        return shown

    def _redraw(self, thread: str, segment: Segment, cause: CorruptRecord) -> list[Page]:
        """Draw a segment's pages again from its turns (which are intact) at its tier,
        after a stored page was found corrupt, and store them in place of the old."""
        style = _style_of(segment)
        if style is None:
            raise cause
        warnings.warn(
            f"segment {segment.id!r} of thread {thread!r} had a corrupt page ({cause}); "
            "its pages were drawn again from its turns",
            CorruptPageWarning,
            stacklevel=4,
        )
        turns = self._segment_turns(thread, segment)
        pages = [page for page, _ in render_segment(turns, style, self._renderer(style))]
        if segment.tier != style.top:
            pages = [decay_page(page, segment.tier, style.font_px) for page in pages]
        fresh = replace(
            segment,
            page_ids=[page.id for page in pages],
            updated_at=time.time(),
            metadata={**segment.metadata, "page_sizes": [[p.width, p.height] for p in pages]},
        )
        self.store.replace_segment(fresh, pages)
        return pages

    def _page_part(
        self, profile: ReaderProfile, segment: Segment, page: Page, number: int, count: int
    ) -> ContextPart:
        label = page_label(segment.id, number, count)
        image_tokens = profile.image_tokens(page.width, page.height)
        return ContextPart(
            kind="page",
            tokens=image_tokens + label_tokens(profile.encoding, label),
            segment_id=segment.id,
            turn_ids=tuple(segment.turn_ids),
            page=ContextPage(
                png=page.png,
                page_id=page.id,
                segment_id=segment.id,
                tier=page.tier,
                turn_ids=tuple(segment.turn_ids),
                image_tokens=image_tokens,
                width=page.width,
                height=page.height,
                label=label,
                detail=profile.image_rule.detail_for(page.width, page.height),
            ),
        )

    def _segments_for(
        self, thread: str, profile: ReaderProfile, segments: Sequence[Segment]
    ) -> list[Segment]:
        """One segment per cut, oldest first, in ``profile``'s style (drawn now if missing;
        a reader without image input takes any style's, for the cut and the facts)."""
        style = page_style(profile) if profile.image_input else None
        by_range: dict[tuple[int, int], dict[str, Segment]] = {}
        for segment in segments:
            meta = segment.metadata
            if "start" in meta and "end" in meta:
                key = (int(meta["start"]), int(meta["end"]))
                by_range.setdefault(key, {})[str(meta.get("style"))] = segment
        chosen = []
        for key in sorted(by_range):
            styles = by_range[key]
            if style is not None and style.key in styles:
                chosen.append(styles[style.key])
                continue
            other = next(iter(styles.values()))
            if style is None:
                chosen.append(other)
                continue
            turns = self._segment_turns(thread, other)
            meta = other.metadata
            tokens_before = int(meta["end_tokens"]) - sum(t.text_tokens for t in turns)
            segment, pages = self._draw(thread, turns, key[0], tokens_before, style)
            segment = replace(segment, metadata={**segment.metadata, "born": meta.get("born")})
            self.store.put_segment(segment, pages)
            moved = self._decay_segments(thread, [segment], None)
            chosen.append(moved[0] if moved else segment)
        return chosen

    def _segment_turns(self, thread: str, segment: Segment) -> list[Turn]:
        meta = segment.metadata
        turns = self.store.get_turns(thread, int(meta["start"]), int(meta["end"]))
        if [t.id for t in turns] != list(segment.turn_ids):  # never expected; be exact anyway
            turns = [self.store.get_turn(thread, turn_id) for turn_id in segment.turn_ids]
        return turns

    # --- recall, search, read-back -----------------------------------------------------

    def recall(self, thread: str, segment_id: str) -> list[Turn]:
        """The segment's turns exactly as added; sharpens the segment (re-drawn at its
        readers' sharpest tier, age reset).

        Raises:
            NotFound: No such segment in the thread.
        """
        segment = self.store.get_segment(thread, segment_id)
        turns = self._segment_turns(thread, segment)
        start, end = int(segment.metadata["start"]), int(segment.metadata["end"])
        born = {
            "turns": self.store.count_turns(thread),
            "tokens": None,
            "seconds": time.time(),
        }
        for other in self.store.list_segments(thread):
            meta = other.metadata
            if (meta.get("start"), meta.get("end")) != (start, end):
                continue
            style = _style_of(other)
            if style is None:
                continue
            tokens_before = int(meta["end_tokens"]) - sum(t.text_tokens for t in turns)
            fresh, pages = self._draw(thread, turns, start, tokens_before, style)
            age_base = dict(meta.get("born", {}))
            age_base.update({k: v for k, v in born.items() if v is not None})
            if self.policy.age_unit == "tokens":
                chain_start, chain_tokens = _chain_end(self.store.list_segments(thread))
                tail = self.store.get_turns(thread, chain_start)
                age_base["tokens"] = chain_tokens + sum(t.text_tokens for t in tail)
            self.store.put_segment(
                replace(fresh, metadata={**fresh.metadata, "born": age_base}), pages
            )
        return turns

    def search(self, thread: str, text: str, limit: int = 10) -> list[SearchHit]:
        """Turns of the thread whose text matches ``text``, best first, each with the
        segment to recall it by (``None`` for a turn of the verbatim tail).

        The store's lexical search (:meth:`~optical_memory.store.Store.search_turns`):
        words and identifiers match whole (case, accents and punctuation aside), Chinese,
        Japanese and Korean on any run of characters. ``score``'s integer part is 2 for
        the query as a phrase, 1 for all its words, 0 for some; its fraction is BM25
        relevance. SQLite searches every turn (FTS5), Redis the newest 20,000.

        Raises:
            InvalidRecordError: ``text`` is not a str.
        """
        if isinstance(limit, int) and limit <= 0:
            return []
        found = self.store.search_turns(thread, text, limit)
        if not found:
            return []
        ranges = []
        for segment in self.store.list_segments(thread):
            meta = segment.metadata
            if "start" in meta:
                ranges.append((int(meta["start"]), int(meta["end"]), segment.id))
        hits = []
        for hit in found:
            owner = next((sid for s, e, sid in ranges if s <= hit.index < e), None)
            hits.append(SearchHit(hit.turn, hit.index, owner, hit.score))
        return hits

    def rehydrate(self, thread: str, segment_id: str, decoder: Decoder | None = None) -> str:
        """The text read back from the segment's pages as they are now (lossy by design).

        With a DeepSeek-OCR encoder, DeepSeek-OCR generates from the pages' cached vision
        tokens (encoded and cached on a miss): ``decoder`` if it is a DeepSeek-OCR decoder
        over the same weights, else the memory's own such decoder, else the encoder's
        model with the official recipe. Otherwise ``decoder`` (or the memory's) reads the
        page images.

        Raises:
            NotFound: No such segment.
            DecoderError: The decoder failed.
        """
        pages = self.store.get_pages(thread, segment_id)
        if not pages:
            return ""
        encoder = self.encoder
        read = None if encoder is None else token_reader(encoder, decoder, self.decoder)
        if encoder is not None and read is not None:
            wants = [
                PageWant(page.id, page.png, read_mode(encoder, None, page.width, page.height))
                for page in pages
            ]
            return "\n".join(read(page_tokens(self.store, encoder, thread, wants)))
        texts = self._decoder(decoder).decode([page.png for page in pages])
        return "\n".join(texts)

    def verify(self, thread: str, decoder: Decoder | None = None) -> dict[str, float]:
        """Read every page back, record its accuracy on the page, and show segments whose
        worst page reads below ``policy.verify_threshold`` as text from then on.

        Returns:
            Page id -> character accuracy.
        """
        reader_decoder = self._decoder(decoder)
        name = reader_decoder.name
        scores: dict[str, float] = {}
        for segment in self.store.list_segments(thread):
            if segment.tier == FORGOTTEN or not segment.page_ids:
                continue
            turns = self._segment_turns(thread, segment)
            transcript = segment_transcript(turns)
            pages = self.store.get_pages(thread, segment.id)
            texts = reader_decoder.decode([page.png for page in pages])
            scored = []
            for page, text in zip(pages, texts, strict=True):
                score = char_accuracy(transcript[page.span[0] : page.span[1]], text)
                scores[page.id] = score
                scored.append(replace(page, legibility=Legibility(score, name)))
            worst = min(scores[p.id] for p in pages)
            meta = {**segment.metadata, "as_text": worst < self.policy.verify_threshold}
            try:
                self.store.replace_segment(replace(segment, metadata=meta), scored)
            except NotFound:
                continue
        return scores

    def _decoder(self, decoder: Decoder | None) -> Decoder:
        if decoder is not None:
            return decoder
        if self.decoder is None:
            from optical_memory.decoders import get_decoder

            self.decoder = get_decoder("rapidocr")
        return self.decoder

    def inspect(self, thread: str) -> ThreadReport:
        """The thread's segments with tiers, ages, pages, sizes and recorded read-back."""
        segments = self.store.list_segments(thread)
        age_of = self._ages(thread, segments, None)
        infos = []
        for segment in sorted(segments, key=lambda s: (s.metadata.get("start", 0), s.id)):
            pages = self.store.get_pages(thread, segment.id) if segment.page_ids else []
            meta = segment.metadata
            infos.append(
                SegmentInfo(
                    id=segment.id,
                    style=str(meta.get("style", "")),
                    tier=segment.tier,
                    first_turn=int(meta.get("start", 0)),
                    end_turn=int(meta.get("end", 0)),
                    age=age_of(segment),
                    pages=len(pages),
                    png_bytes=sum(len(p.png) for p in pages),
                    text_tokens=int(meta.get("text_tokens", {}).get("cl100k_base", 0)),
                    readback=tuple(
                        None if p.legibility is None else p.legibility.score for p in pages
                    ),
                )
            )
        start, _ = _chain_end(segments)
        return ThreadReport(
            thread=thread,
            turns=self.store.count_turns(thread),
            segmented_turns=start,
            segments=tuple(infos),
        )

    def forget(self, thread: str) -> None:
        """Remove the thread everywhere: turns, segments, pages, vision tokens."""
        self._uncut.pop(thread, None)
        self.store.delete_thread(thread)

    def close(self) -> None:
        """Close the store (and the decoder, if this memory created it)."""
        self.store.close()

    def __enter__(self) -> OpticalMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PageCache:
    """Pages by key (their id, or id@tier when shrunk), least recently used out first,
    within a byte bound; safe to share between the threads of an async memory."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._pages: OrderedDict[str, Page] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, keys: Sequence[str]) -> list[Page] | None:
        """All of ``keys``' pages, or ``None`` when any is missing."""
        with self._lock:
            if not keys or any(key not in self._pages for key in keys):
                return None
            for key in keys:
                self._pages.move_to_end(key)
            return [self._pages[key] for key in keys]

    def put(self, pages: Sequence[Page], keys: Sequence[str] | None = None) -> None:
        with self._lock:
            for key, page in zip(keys or [p.id for p in pages], pages, strict=True):
                if key not in self._pages:
                    self._bytes += len(page.png)
                self._pages[key] = page
                self._pages.move_to_end(key)
            while self._bytes > self.max_bytes and self._pages:
                _, old = self._pages.popitem(last=False)
                self._bytes -= len(old.png)


def _profile(name: str) -> ReaderProfile:
    if isinstance(name, ReaderProfile):
        return name
    return readers.get(name)


def _chain_end(segments: Sequence[Segment]) -> tuple[int, int]:
    """Index after the last segmented turn, and the text tokens of all turns before it."""
    end, tokens = 0, 0
    for segment in segments:
        meta = segment.metadata
        if int(meta.get("end", 0)) > end:
            end, tokens = int(meta["end"]), int(meta.get("end_tokens", 0))
    return end, tokens


def _style_of(segment: Segment) -> PageStyle | None:
    """The page style a segment was drawn in, from its stored key."""
    tiers = tuple(segment.metadata.get("tiers") or ("tiny",))
    return _parse_style(str(segment.metadata.get("style", "")), tiers)


@functools.lru_cache(maxsize=64)
def _parse_style(key: str, tiers: tuple[str, ...]) -> PageStyle | None:
    match = re.fullmatch(r"(\w+)-(\d+)-([\d.]+)px(-crop)?", key)
    if match is None:
        return None
    preset, side, font, crop = match.groups()
    try:
        return PageStyle(int(side), float(font), preset, crop is not None, tiers)
    except OpticalMemoryError:
        return None
