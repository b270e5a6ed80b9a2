"""OpticalMemory end to end: evidence recall against truncation at equal budget, context
tokens against raw, and write/read latency on SQLite and Redis (issue 10, deliverable 6).

Conversations come from ``planted_conversations.py``: seeded chatbot conversations with
facts planted in known turns (names, numbers, dates, ids, hashes, code identifiers,
amounts, addresses, e-mails, a Chinese name), each the answer to a question.

Evidence recall. For each seed (a conversation of about 24k cl100k tokens), reader and
budget, every turn is added to ``OpticalMemory(store, policy=DecayPolicy())`` one at a
time, as a chatbot would, and ``context(thread, reader=R, budget=B)`` is taken. A planted
fact's turn is recovered when

- ``verbatim``: the turn is one of the context's verbatim turns, or inside a segment the
  context shows as text;
- ``facts``: its answer string is in the context's fact sheet;
- ``ocr``: RapidOCR (``get_decoder("rapidocr")``) reads the context's pages that hold the
  turn (``page.turn_ids``), and the answer is in the text read.

Answers match after light normalisation (``planted_conversations.normalise``: NFKC, case
folded, dashes unified, all whitespace removed). Each planted answer occurs in its own
turn only, so a match anywhere is that turn's evidence. OCR runs only on pages of
evidence not already found verbatim or in the fact sheet (``--ocr-all``: on all of them;
``--no-ocr``: never, for a lower bound); its text is cached by the PNG's SHA-256 and the
decoder code's hash (``--ocr-cache``, default in the user cache directory), so reruns on
unchanged pages are fast. A miss records the line read instead.

The baseline is ``langchain_core.messages.trim_messages(strategy="last",
start_on="human", max_tokens=B)`` over the same messages, with the reader's own text
token count per message plus its per-message overhead (what the memory charges a turn
shown as text); its evidence is recovered iff its turn is kept.

Compression. On 200- and 2,000-turn conversations (first seed; added ``--batch`` messages
per ``add``, 20 by default, to keep the run short), per reader, at each budget and
without one: ``ctx.tokens``, ``ctx.raw_tokens`` and the raw history (every turn as text
for that reader), pages per tier, how many turns the context shows, and the break-even
gate (no segment shown as pages costs more than its turns as text).

Latency, on a temporary SQLite file and on a throwaway ``redis-server``: ``add`` of one
turn without compaction and with it (p50/p95 and the amortised mean), ``compact()`` of a
2,000-turn thread (ms per page drawn), and ``context()`` on that thread (p50/p95).

JSON goes to stdout, progress to stderr; the README tables are under ``"markdown"`` (or
printed alone with ``--markdown``), the plot goes to ``results/memory_e2e.png`` on a full
run. Seeds 1-3 are for tuning; reported numbers use 101-105 (the JSON lists the seeds).
``--quick`` (seed 1, budget 4096, deepseek-ocr and anthropic; the 2,000-turn ratios
without a budget) takes about a minute once its pages are in the OCR cache, plus about
10 s per page the OCR has not read yet; the full run takes about an hour on 2 cores.

Usage:
    python benchmarks/memory_e2e.py --quick > /tmp/quick.json          # tuning loop, seed 1
    python benchmarks/memory_e2e.py --quick --no-ocr --markdown         # bounds, no OCR
    python benchmarks/memory_e2e.py > benchmarks/results/memory_e2e.json  # full, 101-105
    python benchmarks/memory_e2e.py --markdown --from-json benchmarks/results/memory_e2e.json
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planted_conversations import Conversation, generate, message_text, normalise

from optical_memory import DecayPolicy, OpticalMemory, readers
from optical_memory.context import OpticalContext
from optical_memory.messages import turn_text, turns_from_messages
from optical_memory.readers import ReaderProfile

HERE = Path(__file__).resolve().parent
REPORTED_SEEDS = (101, 102, 103, 104, 105)
TUNING_SEEDS = (1, 2, 3)
BUDGETS = (2048, 4096, 8192, 16384)
READERS = ("deepseek-ocr", "anthropic", "openai")
SIZES = (200, 2000)
CONVERSATION_TOKENS = 24_000
TARGETS = {
    "deepseek_recall_at_4096_min": 0.90,
    "deepseek_vs_truncation_at_4096_min": 3.0,
    "anthropic_vs_truncation_at_4096_min": 2.0,
    "deepseek_2000_turns_unbounded_max": 0.10,
    "hosted_2000_turns_unbounded_max": 1 / 3,
    "add_p50_ms_max": 2.0,
    "add_amortised_ms_max": 10.0,
    "context_p50_ms_max": 20.0,
}
_START = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_stats(ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(ms, 0.50), 3),
        "p95_ms": round(percentile(ms, 0.95), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "calls": len(ms),
    }


# --- OCR with a cache --------------------------------------------------------------------


def decoder_fingerprint() -> str:
    """A hash of the RapidOCR decoder's code and engine version: a cached reading is reused
    only while neither changed."""
    from importlib.metadata import PackageNotFoundError, version

    import optical_memory.decoders as decoders

    digest = hashlib.sha256()
    for name in ("rapidocr.py", "_layout.py", "base.py"):
        digest.update((Path(decoders.__file__).parent / name).read_bytes())
    with contextlib.suppress(PackageNotFoundError):
        digest.update(version("rapidocr-onnxruntime").encode())
    return digest.hexdigest()[:16]


class OcrCache:
    """RapidOCR read-back of PNG pages, cached by the PNG's SHA-256 (and the decoder's
    fingerprint) in a SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS ocr (sha TEXT PRIMARY KEY, text TEXT)")
        self.fingerprint = decoder_fingerprint()
        self.decoder: Any = None
        self.pages_read = 0
        self.seconds = 0.0

    def read(self, pngs: Iterable[bytes]) -> dict[str, str]:
        """Text of each page by SHA-256; pages not in the cache are read in one batch."""
        by_sha = {hashlib.sha256(png).hexdigest(): png for png in pngs}
        found: dict[str, str] = {}
        for sha in by_sha:
            key = f"{self.fingerprint}:{sha}"
            row = self.db.execute("SELECT text FROM ocr WHERE sha = ?", (key,)).fetchone()
            if row is not None:
                found[sha] = row[0]
        missing = [sha for sha in by_sha if sha not in found]
        if missing:
            if self.decoder is None:
                from optical_memory.decoders import get_decoder

                self.decoder = get_decoder("rapidocr")
            log(f"  OCR of {len(missing)} page(s) ({len(found)} cached)")
            started = time.perf_counter()
            texts = self.decoder.decode([by_sha[sha] for sha in missing])
            self.seconds += time.perf_counter() - started
            self.pages_read += len(missing)
            with self.db:
                keys = [f"{self.fingerprint}:{sha}" for sha in missing]
                self.db.executemany(
                    "INSERT OR REPLACE INTO ocr VALUES (?, ?)", zip(keys, texts, strict=True)
                )
            found.update(zip(missing, texts, strict=True))
        return found


def default_ocr_cache() -> Path:
    from platformdirs import user_cache_path

    return user_cache_path("optical-memory", appauthor=False) / "benchmarks" / "memory_e2e_ocr.db"


# --- building memories ---------------------------------------------------------------------


@dataclass
class Built:
    memory: OpticalMemory
    thread: str
    turn_ids: list[str]
    add_ms: list[float]


def build(
    conversation: Conversation,
    store: str,
    *,
    auto_compact: bool = True,
    thread: str = "",
    batch: int = 1,
) -> Built:
    """Add the messages ``batch`` at a time (1: each its own ``add``, as a chatbot does),
    timing each call."""
    memory = OpticalMemory(store, policy=DecayPolicy(), auto_compact=auto_compact)
    thread = thread or f"seed-{conversation.seed}-{uuid.uuid4().hex[:6]}"
    turn_ids, add_ms = [], []
    messages = conversation.messages
    for start in range(0, len(messages), batch):
        started = time.perf_counter()
        turns = memory.add(thread, messages[start : start + batch])
        add_ms.append((time.perf_counter() - started) * 1000)
        turn_ids.extend(turn.id for turn in turns)
    return Built(memory, thread, turn_ids, add_ms)


def text_costs(conversation: Conversation, reader: ReaderProfile) -> list[int]:
    """What each message costs ``reader`` as text: its tokens plus the message framing
    (the memory's charge for a turn it shows as text)."""
    turns = turns_from_messages(conversation.messages)
    return [reader.text_tokens(turn_text(t)) + reader.message_overhead for t in turns]


def truncation_kept(conversation: Conversation, costs: Sequence[int], budget: int) -> set[int]:
    """Indices of the messages LangChain's ``trim_messages`` keeps within ``budget``."""
    from langchain_core.messages import convert_to_messages, trim_messages

    messages = convert_to_messages(conversation.messages)
    index = {message.id: i for i, message in enumerate(messages)}
    kept = trim_messages(
        messages,
        max_tokens=budget,
        strategy="last",
        token_counter=lambda ms: sum(costs[index[m.id]] for m in ms),
        start_on="human",
        allow_partial=False,
    )
    return {index[m.id] for m in kept}


# --- evidence recall -----------------------------------------------------------------------


def where_is(ctx: OpticalContext, turn_id: str) -> dict[str, Any]:
    """How a context holds a turn: ``turn`` (verbatim tail), ``text`` (a segment as text),
    ``pages`` (with their tiers), or not at all."""
    for part in ctx.parts:
        if turn_id not in part.turn_ids:
            continue
        if part.kind == "turn":
            return {"form": "turn"}
        if part.kind == "text":
            return {"form": "text", "text": part.text}
    pages = [page for page in ctx.pages if turn_id in page.turn_ids]
    if pages:
        return {"form": "pages", "pages": pages, "tiers": sorted({p.tier for p in pages})}
    if turn_id in ctx.dropped_turns:
        return {"form": "dropped"}
    return {"form": "absent"}  # in a dropped or forgotten segment


def _letters(text: str) -> str:
    return "".join(ch for ch in normalise(text) if ch.isalnum())


def ocr_miss_detail(answer: str, source: str, read: str) -> dict[str, Any]:
    """The source line holding ``answer``, the read-back line most like it, and whether
    the answer's letters and digits were read with only punctuation wrong."""
    source_line = next((line for line in source.splitlines() if answer in line), answer)
    lines = read.splitlines() or [""]
    best = max(lines, key=lambda line: difflib.SequenceMatcher(None, source_line, line).ratio())
    return {
        "ocr_punctuation_only": _letters(answer) in _letters(read),
        "source_line": source_line[:240],
        "ocr_line": best[:240],
    }


def evidence_run(
    conversation: Conversation,
    built: Built,
    reader_name: str,
    budgets: Sequence[int],
    ocr: OcrCache | None,
    ocr_all: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per (budget, planted fact): how, if at all, the context and truncation
    recover it; and one row per context: what its tokens are spent on."""
    reader = readers.get(reader_name)
    costs = text_costs(conversation, reader)
    contexts = {}
    spent = []
    for budget in budgets:
        ctx = built.memory.context(built.thread, reader=reader_name, budget=budget)
        contexts[budget] = ctx
        by_kind: Counter[str] = Counter()
        for part in ctx.parts:
            by_kind[part.kind] += part.tokens
        spent.append(
            {
                "seed": conversation.seed,
                "reader": reader_name,
                "budget": budget,
                "tokens": ctx.tokens,
                "within_budget": ctx.tokens <= budget,
                "by_kind": dict(by_kind),
                "pages_by_tier": dict(Counter(p.tier for p in ctx.pages)),
                "dropped_segments": len(ctx.dropped),
            }
        )
    segment_of: dict[int, set[str]] = defaultdict(set)
    for info in built.memory.inspect(built.thread).segments:
        for index in range(info.first_turn, info.end_turn):
            segment_of[index].add(info.id)
    rows: list[dict[str, Any]] = []
    to_read: list[tuple[dict[str, Any], list[Any]]] = []
    for budget, ctx in contexts.items():
        kept = truncation_kept(conversation, costs, budget)
        facts_text = normalise(ctx.facts)
        for fact in conversation.facts:
            turn_id = built.turn_ids[fact.turn]
            answer = normalise(fact.answer)
            place = where_is(ctx, turn_id)
            verbatim = place["form"] == "turn" or (
                place["form"] == "text" and answer in normalise(place["text"])
            )
            row = {
                "seed": conversation.seed,
                "reader": reader_name,
                "budget": budget,
                "kind": fact.kind,
                "turn": fact.turn,
                "answer": fact.answer,
                "form": place["form"],
                "tiers": place.get("tiers", []),
                "verbatim": verbatim,
                "facts": bool(answer) and answer in facts_text,
                "ocr": None,
                "truncation": fact.turn in kept,
            }
            if place["form"] == "absent":  # which of its segments' fates, if any
                owners = segment_of.get(fact.turn, set())
                if owners & set(ctx.dropped):
                    row["form"] = "dropped"
                elif owners & set(ctx.forgotten):
                    row["form"] = "forgotten"
            if place["form"] == "pages" and (ocr_all or not (row["verbatim"] or row["facts"])):
                to_read.append((row, place["pages"]))
            rows.append(row)
    texts = {} if ocr is None else ocr.read(page.png for _, pages in to_read for page in pages)
    for row, pages in to_read if ocr is not None else ():
        read = "\n".join(texts[hashlib.sha256(page.png).hexdigest()] for page in pages)
        row["ocr"] = normalise(row["answer"]) in normalise(read)
        if not row["ocr"]:  # what was read instead, for diagnosis (not counted)
            source = message_text(conversation.messages[row["turn"]])
            row.update(ocr_miss_detail(row["answer"], source, read))
    for row in rows:
        row["recovered"] = bool(row["verbatim"] or row["facts"] or row["ocr"])
        row["path"] = next((path for path in ("verbatim", "facts", "ocr") if row[path]), None)
    return rows, spent


def fact_strings(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Every fact's outcome as one letter, per (seed, reader, budget): compact and complete."""
    found = {"verbatim": "V", "facts": "F", "ocr": "O"}
    missed = {"dropped": "d", "pages": "o", "forgotten": "f"}
    strings: dict[str, dict[str, str]] = defaultdict(lambda: {"optical": "", "truncation": ""})
    for r in rows:
        key = f"{r['seed']} {r['reader']} {r['budget']}"
        strings[key]["optical"] += found[r["path"]] if r["path"] else missed.get(r["form"], "a")
        strings[key]["truncation"] += "K" if r["truncation"] else "-"
    return dict(strings)


def library_state() -> dict[str, Any]:
    """The commit the library was measured at, and library files changed since it."""
    import subprocess

    def git(*args: str) -> str:
        try:
            run = subprocess.run(
                ["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return ""
        return run.stdout.rstrip()

    changed = git("status", "--porcelain", "--", "optical_memory", "renderers")
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "uncommitted_library_files": [line[3:] for line in changed.splitlines()],
    }


def summarise_evidence(
    rows: Sequence[dict[str, Any]], spent: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Recall per (reader, budget): optical, truncation, their ratio, recovery paths, why
    the rest was missed, and what the contexts spent their tokens on (mean over seeds)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["reader"], row["budget"])].append(row)
    spending: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for context in spent:
        spending[(context["reader"], context["budget"])].append(context)
    summary = []
    for (reader, budget), group in sorted(groups.items()):
        n = len(group)
        recall = sum(r["recovered"] for r in group) / n
        trunc = sum(r["truncation"] for r in group) / n
        misses: Counter[str] = Counter()
        for r in group:
            if r["recovered"]:
                continue
            if r["form"] == "pages" and r["ocr"] is None:
                misses["pages_not_read"] += 1
            elif r["form"] == "pages":
                misses["ocr_miss_" + "+".join(r["tiers"])] += 1
            else:
                misses[r["form"]] += 1
        by_kind: dict[str, list[bool]] = defaultdict(list)
        for r in group:
            by_kind[r["kind"]].append(r["recovered"])
        ocr_tried = [r for r in group if r["ocr"] is not None]
        without_ocr = sum(bool(r["verbatim"] or r["facts"]) for r in group) / n
        upper = sum(bool(r["recovered"] or r["form"] == "pages") for r in group) / n
        contexts = spending[(reader, budget)]
        kinds = sorted({k for c in contexts for k in c["by_kind"]})
        summary.append(
            {
                "reader": reader,
                "budget": budget,
                "questions": n,
                "recall": round(recall, 4),
                "truncation_recall": round(trunc, 4),
                "recall_without_ocr": round(without_ocr, 4),
                "recall_if_every_page_read": round(upper, 4),
                "ratio": round(recall / trunc, 2) if trunc else None,
                "paths": dict(Counter(r["path"] or "missed" for r in group)),
                "forms": dict(Counter(r["form"] for r in group)),
                "ocr_read_back": {
                    "tried": len(ocr_tried),
                    "found": sum(bool(r["ocr"]) for r in ocr_tried),
                    "missed_by_punctuation_only": sum(
                        bool(r.get("ocr_punctuation_only")) for r in ocr_tried
                    ),
                },
                "misses": dict(misses),
                "recall_by_kind": {
                    k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())
                },
                "context_tokens_by_kind": {
                    k: round(statistics.fmean(c["by_kind"].get(k, 0) for c in contexts))
                    for k in kinds
                },
                "context_pages_by_tier": dict(
                    sum((Counter(c["pages_by_tier"]) for c in contexts), Counter())
                ),
            }
        )
    return summary


def run_evidence(
    seeds: Sequence[int],
    budgets: Sequence[int],
    reader_names: Sequence[str],
    tmp: Path,
    ocr: OcrCache | None,
    ocr_all: bool,
    tokens: int,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    spent: list[dict[str, Any]] = []
    conversations = []
    for seed in seeds:
        conversation = generate(seed, tokens=tokens)
        raw = sum(text_costs(conversation, readers.get("deepseek-ocr")))
        conversations.append(
            {"seed": seed, "turns": len(conversation.messages), "cl100k_tokens": raw}
        )
        log(f"evidence: seed {seed}, {len(conversation.messages)} turns, {raw} tokens")
        built = build(conversation, f"sqlite:///{tmp / f'evidence-{seed}.db'}")
        for reader_name in reader_names:
            found, contexts = evidence_run(conversation, built, reader_name, budgets, ocr, ocr_all)
            rows.extend(found)
            spent.extend(contexts)
            for budget in budgets:
                at = [r for r in found if r["budget"] == budget]
                log(
                    f"  {reader_name} @ {budget}: recall "
                    f"{sum(r['recovered'] for r in at)}/{len(at)}, truncation "
                    f"{sum(r['truncation'] for r in at)}/{len(at)}"
                )
        built.memory.close()
    return {
        "conversations": conversations,
        "summary": summarise_evidence(rows, spent),
        "contexts": spent,
        "legend": "per fact in planted order: V verbatim, F fact sheet, O OCR read-back;"
        " missed: d dropped for the budget, o OCR misread, f forgotten, a absent;"
        " truncation: K kept, - cut",
        "by_fact": fact_strings(rows),
        "misses": [r for r in rows if not r["recovered"]],
    }


# --- compression ---------------------------------------------------------------------------


def context_row(
    ctx: OpticalContext, reader: ReaderProfile, costs: Sequence[int], index_of: dict[str, int]
) -> dict[str, Any]:
    """Tokens, coverage and the break-even check of one context."""
    raw_history = sum(costs)
    shown: set[int] = set()
    gate_violations = []
    by_segment: dict[str, list[Any]] = defaultdict(list)
    for part in ctx.parts:
        shown.update(index_of[t] for t in part.turn_ids)
        if part.kind == "page":
            by_segment[part.segment_id].append(part)
    for segment_id, parts in by_segment.items():
        page_cost = sum(p.tokens for p in parts)
        text_cost = sum(costs[index_of[t]] for t in parts[0].turn_ids)
        if page_cost > text_cost:
            gate_violations.append({"segment": segment_id, "pages": page_cost, "text": text_cost})
    facts_tokens = sum(p.tokens for p in ctx.parts if p.kind == "facts")
    return {
        "budget": ctx.budget,
        "tokens": ctx.tokens,
        "within_budget": ctx.budget is None or ctx.tokens <= ctx.budget,
        "raw_tokens": ctx.raw_tokens,
        "raw_history_tokens": raw_history,
        "ratio_to_raw": round(ctx.tokens / ctx.raw_tokens, 4) if ctx.raw_tokens else None,
        "ratio_to_history": round(ctx.tokens / raw_history, 4),
        "facts_tokens": facts_tokens,
        "pages": len(ctx.pages),
        "pages_by_tier": dict(Counter(p.tier for p in ctx.pages)),
        "text_segments": sum(p.kind == "text" for p in ctx.parts),
        "verbatim_turns": len(ctx.turns),
        "turns_shown": len(shown),
        "turns_total": len(costs),
        "dropped_segments": len(ctx.dropped),
        "forgotten_segments": len(ctx.forgotten),
        "gate_violations": gate_violations,
        "gate_ok": not gate_violations,
        "within_text_cost": ctx.tokens <= ctx.raw_tokens,
        "within_text_cost_without_facts": ctx.tokens - facts_tokens <= ctx.raw_tokens,
    }


def run_compression(
    sizes: Sequence[int],
    budgets: Sequence[int | None],
    reader_names: Sequence[str],
    seed: int,
    tmp: Path,
    batch: int,
) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        conversation = generate(seed, tokens=None, turns=size)
        log(f"compression: {size} turns (seed {seed}), added {batch} at a time")
        started = time.perf_counter()
        built = build(conversation, f"sqlite:///{tmp / f'compression-{size}.db'}", batch=batch)
        log(f"  added in {time.perf_counter() - started:.1f}s")
        index_of = {turn_id: i for i, turn_id in enumerate(built.turn_ids)}
        for reader_name in reader_names:
            reader = readers.get(reader_name)
            costs = text_costs(conversation, reader)
            for budget in budgets:
                ctx = built.memory.context(built.thread, reader=reader_name, budget=budget)
                row = context_row(ctx, reader, costs, index_of)
                results.append({"turns": size, "seed": seed, "reader": reader_name, **row})
                log(
                    f"  {reader_name} @ {budget}: {ctx.tokens} tokens, "
                    f"{row['ratio_to_history']:.3f} of the history, gate ok {row['gate_ok']}"
                )
        built.memory.close()
    return results


# --- latency -------------------------------------------------------------------------------


def run_latency(
    store_url: str, label: str, conversation: Conversation, reader_names: Sequence[str], calls: int
) -> dict[str, Any]:
    log(f"latency on {label}: {len(conversation.messages)} adds without compaction")
    plain = build(conversation, store_url, auto_compact=False, thread=f"plain-{uuid.uuid4().hex}")
    started = time.perf_counter()
    written = plain.memory.compact(plain.thread)
    compact_s = time.perf_counter() - started
    report = plain.memory.inspect(plain.thread)
    pages = sum(info.pages for info in report.segments)
    plain.memory.forget(plain.thread)
    plain.memory.close()
    log(f"  compact(): {compact_s:.1f}s for {len(written)} segments, {pages} pages")
    log(f"latency on {label}: {len(conversation.messages)} adds with compaction")
    started = time.perf_counter()
    compacting = build(conversation, store_url, thread=f"compacting-{uuid.uuid4().hex}")
    total_s = time.perf_counter() - started
    context_ms: dict[str, dict[str, Any]] = {}
    for reader_name in reader_names:
        for budget in (4096, None):
            compacting.memory.context(compacting.thread, reader=reader_name, budget=budget)
            ms = []
            for _ in range(calls):
                t0 = time.perf_counter()
                compacting.memory.context(compacting.thread, reader=reader_name, budget=budget)
                ms.append((time.perf_counter() - t0) * 1000)
            context_ms[f"{reader_name}@{budget}"] = latency_stats(ms)
    compacting.memory.forget(compacting.thread)
    compacting.memory.close()
    return {
        "turns": len(conversation.messages),
        "add_without_compaction": latency_stats(plain.add_ms),
        "add_with_compaction": {
            **latency_stats(compacting.add_ms),
            "amortised_ms": round(total_s * 1000 / len(conversation.messages), 3),
        },
        "compact": {
            "seconds": round(compact_s, 2),
            "segments": len(written),
            "pages": pages,
            "ms_per_page": round(compact_s * 1000 / pages, 1) if pages else None,
            "ms_per_segment": round(compact_s * 1000 / len(written), 1) if written else None,
        },
        "context": context_ms,
    }


# --- acceptance, markdown, plot ------------------------------------------------------------


def acceptance(output: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    summary = {(s["reader"], s["budget"]): s for s in output.get("evidence", {}).get("summary", [])}
    ds, an = summary.get(("deepseek-ocr", 4096)), summary.get(("anthropic", 4096))
    if ds:
        checks["deepseek_recall_at_4096"] = {
            "value": ds["recall"],
            "target": f">= {TARGETS['deepseek_recall_at_4096_min']}",
            "met": ds["recall"] >= TARGETS["deepseek_recall_at_4096_min"],
        }
        checks["deepseek_vs_truncation_at_4096"] = {
            "value": ds["ratio"],
            "target": f">= {TARGETS['deepseek_vs_truncation_at_4096_min']}",
            "met": (ds["ratio"] or 0) >= TARGETS["deepseek_vs_truncation_at_4096_min"],
        }
    if an:
        checks["anthropic_vs_truncation_at_4096"] = {
            "value": an["ratio"],
            "target": f">= {TARGETS['anthropic_vs_truncation_at_4096_min']}",
            "met": (an["ratio"] or 0) >= TARGETS["anthropic_vs_truncation_at_4096_min"],
        }
    for row in output.get("compression", []):
        if row["turns"] != 2000 or row["budget"] is not None:
            continue
        limit = (
            TARGETS["deepseek_2000_turns_unbounded_max"]
            if row["reader"].startswith("deepseek")
            else TARGETS["hosted_2000_turns_unbounded_max"]
        )
        checks[f"{row['reader']}_2000_turns_unbounded"] = {
            "value": row["ratio_to_history"],
            "target": f"<= {limit:.3g} of the raw history; every turn shown",
            "met": row["ratio_to_history"] <= limit and row["turns_shown"] == row["turns_total"],
        }
    contexts = output.get("evidence", {}).get("contexts", []) + output.get("compression", [])
    if contexts:
        over = [c for c in contexts if not c["within_budget"]]
        checks["contexts_within_budget"] = {
            "value": len(contexts) - len(over),
            "target": f"all {len(contexts)} contexts cost at most their budget",
            "met": not over,
        }
    compression = output.get("compression", [])
    if compression:
        checks["break_even_gate"] = {
            "value": all(r["gate_ok"] for r in compression),
            "target": "no segment shown as pages costs more than its turns as text",
            "met": all(r["gate_ok"] for r in compression),
        }
    for store, lat in output.get("latency", {}).items():
        p50 = lat["add_without_compaction"]["p50_ms"]
        amortised = lat["add_with_compaction"]["amortised_ms"]
        worst_context = max(v["p50_ms"] for v in lat["context"].values())
        checks[f"{store}_add_p50_ms"] = {
            "value": p50,
            "target": f"<= {TARGETS['add_p50_ms_max']}",
            "met": p50 <= TARGETS["add_p50_ms_max"],
        }
        checks[f"{store}_add_amortised_ms"] = {
            "value": amortised,
            "target": f"<= {TARGETS['add_amortised_ms_max']}",
            "met": amortised <= TARGETS["add_amortised_ms_max"],
        }
        checks[f"{store}_context_p50_ms_worst"] = {
            "value": worst_context,
            "target": f"<= {TARGETS['context_p50_ms_max']}",
            "met": worst_context <= TARGETS["context_p50_ms_max"],
        }
    return checks


def markdown(output: dict[str, Any]) -> str:
    lines: list[str] = []
    evidence = output.get("evidence")
    if evidence:
        seeds = ", ".join(str(c["seed"]) for c in evidence["conversations"])
        turns = [c["turns"] for c in evidence["conversations"]]
        tokens = [c["cl100k_tokens"] for c in evidence["conversations"]]
        n = evidence["summary"][0]["questions"]
        lines += [
            f"Evidence recall: {n} planted facts over {len(turns)} conversations (seeds {seeds};"
            f" {min(turns)}-{max(turns)} turns, {min(tokens):,}-{max(tokens):,} cl100k tokens"
            ' each), against `trim_messages(strategy="last")` at the same budget.',
            "",
            "| reader | budget | optical memory | truncation | ratio |"
            " found: verbatim / facts / OCR | missed: dropped / OCR misread |"
            " on a page or verbatim |",
            "|---|---:|---:|---:|---:|---|---|---:|",
        ]
        for s in evidence["summary"]:
            paths, misses = s["paths"], s["misses"]
            ocr_miss = sum(v for k, v in misses.items() if k.startswith("ocr_miss"))
            dropped = misses.get("dropped", 0) + misses.get("forgotten", 0)
            unread = misses.get("pages_not_read", 0)
            ratio = f"{s['ratio']:.1f}x" if s["ratio"] else "–"
            lines.append(
                f"| {s['reader']} | {s['budget']:,} | {s['recall']:.2f} |"
                f" {s['truncation_recall']:.2f} | {ratio} |"
                f" {paths.get('verbatim', 0)} / {paths.get('facts', 0)} / {paths.get('ocr', 0)} |"
                f" {dropped} / {ocr_miss}" + (f" ({unread} not read)" if unread else "") + " |"
                f" {s['recall_if_every_page_read']:.2f} |"
            )
        lines.append("")
        kinds = sorted({k for s in evidence["summary"] for k in s["recall_by_kind"]})
        lines += [
            "Recall by kind of fact (optical memory):",
            "",
            "| reader | budget | " + " | ".join(kinds) + " |",
            "|---|---:|" + "---:|" * len(kinds),
        ]
        for s in evidence["summary"]:
            cells = [f"{s['recall_by_kind'].get(k, 0):.2f}" for k in kinds]
            lines.append(f"| {s['reader']} | {s['budget']:,} | " + " | ".join(cells) + " |")
        lines.append("")
    compression = output.get("compression")
    if compression:
        lines += [
            "Context tokens against the raw history (every turn as text for that reader);"
            " default policy.",
            "",
            "| turns | reader | budget | context tokens | raw history | ratio | turns shown |"
            " pages (tiers) | gate ok |",
            "|---:|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for r in compression:
            tiers = ", ".join(f"{t} {n}" for t, n in sorted(r["pages_by_tier"].items()))
            budget = f"{r['budget']:,}" if r["budget"] else "none"
            lines.append(
                f"| {r['turns']:,} | {r['reader']} | {budget} | {r['tokens']:,} |"
                f" {r['raw_history_tokens']:,} | {r['ratio_to_history']:.3f} |"
                f" {r['turns_shown']:,}/{r['turns_total']:,} | {r['pages']} ({tiers}) |"
                f" {'yes' if r['gate_ok'] else 'no'} |"
            )
        lines.append("")
    latency = output.get("latency")
    if latency:
        lines += [
            "| store | add p50 / p95, no compaction | add p50 / p95 with compaction |"
            " amortised | compaction per page | context() p50 / p95 (worst reader) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for store, lat in latency.items():
            plain, comp = lat["add_without_compaction"], lat["add_with_compaction"]
            worst = max(lat["context"].values(), key=lambda v: v["p50_ms"])
            lines.append(
                f"| {store} | {plain['p50_ms']:.2f} / {plain['p95_ms']:.2f} ms |"
                f" {comp['p50_ms']:.2f} / {comp['p95_ms']:.2f} ms | {comp['amortised_ms']:.2f} ms |"
                f" {lat['compact']['ms_per_page']} ms | {worst['p50_ms']:.1f} /"
                f" {worst['p95_ms']:.1f} ms |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(output: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return "matplotlib is not installed; no plot"
    summary = output.get("evidence", {}).get("summary", [])
    longest = max((r["turns"] for r in output.get("compression", [])), default=0)
    compression = [
        r for r in output.get("compression", []) if r["turns"] == longest and r["budget"]
    ]
    if not summary and not compression:
        return "nothing to plot"
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for reader in sorted({s["reader"] for s in summary}):
        rows = [s for s in summary if s["reader"] == reader]
        line = left.plot(
            [s["budget"] for s in rows], [s["recall"] for s in rows], marker="o", label=reader
        )
        left.plot(
            [s["budget"] for s in rows],
            [s["truncation_recall"] for s in rows],
            linestyle="--",
            color=line[0].get_color(),
            alpha=0.6,
        )
    left.set_xscale("log", base=2)
    left.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
    left.set_xlabel("budget (tokens of the reader)")
    left.set_ylabel("evidence recall")
    left.set_ylim(0, 1.02)
    left.set_title("Evidence recall (dashed: trim_messages)")
    if summary:
        left.legend(fontsize=8)
    for reader in sorted({r["reader"] for r in compression}):
        rows = [r for r in compression if r["reader"] == reader]
        right.plot(
            [r["budget"] for r in rows],
            [r["turns_shown"] / r["turns_total"] for r in rows],
            marker="o",
            label=reader,
        )
    right.set_xscale("log", base=2)
    right.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
    right.set_xlabel("budget (tokens of the reader)")
    right.set_ylabel("share of turns shown")
    right.set_ylim(0, 1.02)
    right.set_title(f"{longest:,}-turn conversation: share of turns in the context")
    if compression:
        right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tuning loop: one seed, budget 4096")
    parser.add_argument("--seeds", type=int, nargs="+", help="conversation seeds")
    parser.add_argument("--budgets", type=int, nargs="+", help="evidence/compression budgets")
    parser.add_argument("--readers", nargs="+", help="reader profiles")
    parser.add_argument("--sizes", type=int, nargs="+", help="compression conversation turns")
    parser.add_argument("--tokens", type=int, default=CONVERSATION_TOKENS)
    parser.add_argument("--sections", nargs="+", choices=("evidence", "compression", "latency"))
    parser.add_argument("--ocr-all", action="store_true", help="OCR every evidence page")
    parser.add_argument("--no-ocr", action="store_true", help="skip OCR (recall: lower bound)")
    parser.add_argument(
        "--batch", type=int, default=20, help="messages per add() for the compression threads"
    )
    parser.add_argument("--ocr-cache", type=Path, default=None, help="OCR cache (SQLite file)")
    parser.add_argument("--context-calls", type=int, default=30)
    parser.add_argument("--plot", type=Path, default=None, help="PNG path for the plot")
    parser.add_argument("--markdown", action="store_true", help="print the README tables only")
    parser.add_argument("--from-json", type=Path, help="re-render tables/plot from a result")
    parser.add_argument("--dir", type=Path, default=None, help="where temporary stores go")
    args = parser.parse_args()

    if args.from_json:
        output = json.loads(args.from_json.read_text())
        if args.plot:
            plot(output, args.plot)
        print(markdown(output))
        return

    quick = args.quick
    seeds = args.seeds or (TUNING_SEEDS[:1] if quick else REPORTED_SEEDS)
    budgets = args.budgets or ((4096,) if quick else BUDGETS)
    reader_names = args.readers or (("deepseek-ocr", "anthropic") if quick else READERS)
    sizes = args.sizes or ((2000,) if quick else SIZES)
    sections = args.sections or (
        ("evidence", "compression") if quick else ("evidence", "compression", "latency")
    )
    compression_budgets: tuple[int | None, ...] = (
        (None,) if quick and not args.budgets else (*budgets, None)
    )
    if not quick and set(seeds) & set(TUNING_SEEDS):
        log(f"warning: seeds {sorted(set(seeds) & set(TUNING_SEEDS))} are tuning seeds")
    ocr = None if args.no_ocr else OcrCache(args.ocr_cache or default_ocr_cache())
    compression_readers = args.readers or READERS
    output: dict[str, Any] = {
        "benchmark": "memory_e2e",
        "mode": "quick" if quick else "full",
        "seeds": list(seeds),
        "tuning_seeds": list(TUNING_SEEDS),
        "seeds_overlap_tuning": sorted(set(seeds) & set(TUNING_SEEDS)),
        "library": library_state(),  # at the start: the code this run imported
        "settings": {
            "budgets": list(budgets),
            "readers": list(reader_names),
            "sizes": list(sizes),
            "conversation_tokens": args.tokens,
            "policy": "DecayPolicy() (default)",
            "adds": "evidence: one add() per message; compression: --batch messages per add();"
            " auto_compact=True",
            "match": "answer in text after NFKC, casefold, dashes unified, whitespace removed",
            "ocr": "none (--no-ocr)"
            if args.no_ocr
            else "RapidOCR (get_decoder('rapidocr')), pages of the evidence turn"
            + (" (all)" if args.ocr_all else " (only evidence not found verbatim or in facts)"),
            "truncation": "trim_messages(strategy='last', start_on='human', allow_partial="
            "False), token_counter = reader text tokens + message_overhead per message",
        },
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        if "evidence" in sections:
            output["evidence"] = run_evidence(
                seeds, budgets, reader_names, tmp, ocr, args.ocr_all, args.tokens
            )
        if "compression" in sections:
            output["compression"] = run_compression(
                sizes, compression_budgets, compression_readers, seeds[0], tmp, args.batch
            )
        if "latency" in sections:
            output["latency"] = latency_section(
                seeds[0], max(sizes), reader_names, tmp, args.context_calls
            )
    if ocr is not None:
        output["ocr"] = {"pages_read": ocr.pages_read, "seconds": round(ocr.seconds, 1)}
    output["seconds"] = round(time.perf_counter() - started, 1)
    output["acceptance"] = acceptance(output)
    output["markdown"] = markdown(output)
    output["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    full = not quick and not args.sections
    plot_path = args.plot or (HERE / "results" / "memory_e2e.png" if full else None)
    if plot_path is not None:
        note = plot(output, plot_path)
        output["plot"] = note or str(plot_path)
    for name, check in output["acceptance"].items():
        log(
            f"{'met' if check['met'] else 'NOT MET'}: {name} = {check['value']} ({check['target']})"
        )
    if args.markdown:
        print(output["markdown"])
    else:
        json.dump(output, sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")


def latency_section(
    seed: int, turns: int, reader_names: Sequence[str], tmp: Path, calls: int
) -> dict[str, Any]:
    from store_throughput import redis_server

    conversation = generate(seed, tokens=None, turns=turns)
    results = {
        "sqlite": run_latency(
            f"sqlite:///{tmp / 'latency.db'}", "SQLite", conversation, reader_names, calls
        )
    }
    with redis_server(tmp) as (url, version):
        results["redis"] = run_latency(url, f"Redis {version}", conversation, reader_names, calls)
    return results


if __name__ == "__main__":
    main()
