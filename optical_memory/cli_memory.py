"""The memory commands of the ``optical-memory`` command line.

``ingest`` adds a JSON Lines conversation to a thread, ``context`` writes what a reader
would be shown, ``inspect`` lists a thread's segments, ``recall`` prints a segment's turns
verbatim, and ``verify`` reads every page back and records its accuracy. Each works on a
store URL (``--store``; default: the embedded SQLite store in the user's data directory)
and a tenant (``--tenant``). Library errors end the command with a one-line message in
red and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from tqdm import tqdm

from optical_memory.errors import NotFound, OpticalMemoryError

__all__ = ["COMMANDS", "context", "fail", "ingest", "inspect", "recall", "verify"]

StoreOption = Annotated[
    Optional[str],  # noqa: UP045 (typer reads the annotation at run time on 3.10)
    typer.Option(
        "--store",
        help="Store URL (sqlite:///file.db, sqlite:////abs/path.db, redis://host:6379/0). "
        "Default: the embedded SQLite store in your data directory.",
    ),
]
TenantOption = Annotated[str, typer.Option(help="Tenant the thread belongs to.")]
ThreadArgument = Annotated[str, typer.Argument(help="The thread (conversation) name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(exc: Exception) -> typer.Exit:
    """Print ``exc`` as a one-line red error and return the exit (code 2) to raise."""
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def reader_names(values: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """Reader names from repeated and comma-separated ``--reader`` values."""
    names = [name.strip() for value in values or () for name in value.split(",")]
    return [name for name in names if name] or list(default)


@contextmanager
def _memory(store: str | None, tenant: str, **options: Any) -> Iterator[Any]:
    """An open memory; library errors, while opening it or in the ``with`` body, end the
    command with :func:`fail`."""
    from optical_memory.memory import OpticalMemory

    try:
        with OpticalMemory(store, tenant=tenant, **options) as memory:
            yield memory
    except OpticalMemoryError as exc:
        raise fail(exc) from exc


def _require_turns(memory: Any, thread: str) -> None:
    if memory.store.count_turns(thread) == 0:
        raise NotFound(
            f"thread {thread!r} has no turns in this store (tenant {memory.store.tenant!r})"
        )


def ingest(
    file: Annotated[Path, typer.Argument(help="Conversation as JSON Lines: one message a line.")],
    thread: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Thread to add to (default: the file's name without extension)."),
    ] = None,
    reader: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--reader", "-r", help="Readers to draw pages for now (repeat or comma-separate)."
        ),
    ] = None,
    store: StoreOption = None,
    tenant: TenantOption = "default",
) -> None:
    """Add the messages of FILE to a thread, then compact it into pages.

    Every line is checked first: a malformed line stops the command before anything is
    stored. The turns are appended in one atomic write.
    """
    from optical_memory.jsonl import read_messages

    name = thread or file.stem
    try:
        messages = read_messages(file)
    except OpticalMemoryError as exc:
        raise fail(exc) from exc
    options: dict[str, Any] = {"auto_compact": False}
    if reader:
        options["readers"] = reader_names(reader, ())
    with _memory(store, tenant, **options) as memory:
        with tqdm(total=2, desc="storing turns", unit="step", leave=False) as bar:
            turns = memory.add(name, messages)
            bar.set_description("compacting into pages")
            bar.update()
            memory.compact(name)
            bar.update()
        report = memory.inspect(name)
    cuts = {(s.first_turn, s.end_turn) for s in report.segments}
    typer.echo(
        f"{len(turns)} turn(s) from {file} added to thread {name!r}: {report.turns} turn(s) in "
        f"all, {report.segmented_turns} in {len(cuts)} segment(s), "
        f"{report.turns - report.segmented_turns} verbatim"
    )


def context(
    thread: ThreadArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the pages and JSON.")],
    reader: Annotated[str, typer.Option("--reader", "-r", help="Reader profile.")] = (
        "deepseek-ocr"
    ),
    budget: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Most tokens the context may cost the reader (default: no limit)."),
    ] = None,
    messages: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Also write messages.json for a provider: 'openai' or 'anthropic'."),
    ] = None,
    store: StoreOption = None,
    tenant: TenantOption = "default",
) -> None:
    """Write the context a reader would be shown: page-000.png, ... and context.json.

    context.json lists the parts in conversation order (pages, segments shown as text,
    the fact sheet, recent turns) with their token costs, and what was dropped.
    """
    if messages not in (None, "openai", "anthropic"):
        raise fail(OpticalMemoryError(f"--messages must be openai or anthropic, not {messages!r}"))
    with _memory(store, tenant) as memory:
        try:
            _require_turns(memory, thread)
            shown = memory.context(thread, reader=reader, budget=budget)
            out.mkdir(parents=True, exist_ok=True)
            data = _context_dict(shown, out)
            (out / "context.json").write_text(
                json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            if messages is not None:
                listed = shown.to_openai() if messages == "openai" else shown.to_anthropic()
                (out / "messages.json").write_text(json.dumps(listed) + "\n", encoding="utf-8")
        except (OpticalMemoryError, OSError) as exc:
            raise fail(exc) from exc
    typer.echo(
        f"context of {thread!r} for {shown.reader}: {shown.tokens:,} tokens (the same turns "
        f"as text: {shown.raw_tokens:,}), {len(shown.pages)} page(s), {len(shown.turns)} "
        f"verbatim turn(s), {len(shown.dropped)} segment(s) dropped; written to {out}"
    )


def _context_dict(shown: Any, out: Path) -> dict[str, Any]:
    """The context's parts as JSON data; writes each page's PNG into ``out``."""
    parts = []
    number = 0
    for part in tqdm(shown.parts, desc="writing pages", unit="part", disable=len(shown.parts) < 50):
        item: dict[str, Any] = {
            "kind": part.kind,
            "tokens": part.tokens,
            "segment_id": part.segment_id or None,
            "turn_ids": list(part.turn_ids),
        }
        if part.page is not None:
            name = f"page-{number:03d}.png"
            number += 1
            (out / name).write_bytes(part.page.png)
            item["page"] = {
                "file": name,
                "page_id": part.page.page_id,
                "tier": part.page.tier,
                "width": part.page.width,
                "height": part.page.height,
                "image_tokens": part.page.image_tokens,
                "label": part.page.label,
            }
        elif part.turn is not None:
            item["turn"] = {
                "id": part.turn.id,
                "role": part.turn.role,
                "message": part.turn.message,
            }
        else:
            item["text"] = part.text
        parts.append(item)
    return {
        "thread": shown.thread,
        "reader": shown.reader,
        "budget": shown.budget,
        "tokens": shown.tokens,
        "frame_tokens": shown.frame_tokens,
        "raw_tokens": shown.raw_tokens,
        "ratio": round(shown.ratio, 4),
        "dropped": list(shown.dropped),
        "dropped_turns": list(shown.dropped_turns),
        "forgotten": list(shown.forgotten),
        "parts": parts,
    }


def _readback(scores: Sequence[float | None]) -> str:
    known = [s for s in scores if s is not None]
    if not known:
        return "-"
    low, high = min(known), max(known)
    return f"{low:.3f}" if low == high else f"{low:.3f}-{high:.3f}"


def inspect(
    thread: ThreadArgument,
    json_: JsonOption = False,
    store: StoreOption = None,
    tenant: TenantOption = "default",
) -> None:
    """List a thread's segments: style, tier, turns, age, pages, size and recorded read-back."""
    with _memory(store, tenant) as memory:
        _require_turns(memory, thread)
        report = memory.inspect(thread)
    if json_:
        typer.echo(json.dumps(dataclasses.asdict(report), indent=1))
        return
    typer.echo(
        f"thread {thread!r}: {report.turns} turn(s), {report.segmented_turns} in segments, "
        f"{report.turns - report.segmented_turns} verbatim; {len(report.segments)} segment "
        "record(s), one per cut and page style"
    )
    typer.echo(
        f"{'segment':<13}{'style':<24}{'tier':<10}{'turns':>10}{'age':>6}{'pages':>6}"
        f"{'KB':>7}{'tokens':>7}  read-back"
    )
    for s in report.segments:
        typer.echo(
            f"{s.id:<13}{s.style:<24}{s.tier:<10}{f'{s.first_turn}-{s.end_turn - 1}':>10}"
            f"{s.age:>6.0f}{s.pages:>6}{s.png_bytes / 1024:>7.0f}{s.text_tokens:>7}  "
            f"{_readback(s.readback)}"
        )


def recall(
    thread: ThreadArgument,
    segment_id: Annotated[str, typer.Argument(help="Segment id (see `inspect`).")],
    store: StoreOption = None,
    tenant: TenantOption = "default",
) -> None:
    """Print a segment's turns exactly as they were added, one JSON message a line.

    Recalling a segment also sharpens it: its pages are drawn again at the top tier and
    its age starts over.
    """
    with _memory(store, tenant) as memory:
        turns = memory.recall(thread, segment_id)
    from optical_memory.jsonl import dump_messages

    typer.echo(dump_messages([dict(turn.message) for turn in turns]), nl=False)


class _CountingDecoder:
    """A decoder that moves a progress bar by the pages it reads."""

    def __init__(self, decoder: Any, bar: tqdm[Any]) -> None:
        self.decoder = decoder
        self.name: str = decoder.name
        self.bar = bar

    def decode(self, images: Sequence[Any]) -> list[str]:
        texts: list[str] = self.decoder.decode(images)
        self.bar.update(len(images))
        return texts


def verify(
    thread: ThreadArgument,
    json_: JsonOption = False,
    store: StoreOption = None,
    tenant: TenantOption = "default",
) -> None:
    """Read every page of a thread back (RapidOCR, CPU) and record its accuracy.

    Segments whose worst page reads below the policy's threshold are shown as text
    from then on. A dense page takes seconds to read on a laptop CPU.
    """
    from optical_memory.decoders import get_decoder

    with _memory(store, tenant) as memory:
        _require_turns(memory, thread)
        before = memory.inspect(thread)
        total = sum(s.pages for s in before.segments if s.tier != "forgotten")
        with (
            get_decoder("rapidocr") as engine,
            tqdm(total=total, desc="reading pages back (RapidOCR, CPU)", unit="page") as bar,
        ):
            # verify() records the decoder of each reading by its class name: keep the engine's.
            counting = type(type(engine).__name__, (_CountingDecoder,), {})(engine, bar)
            scores = memory.verify(thread, decoder=counting)
        report = memory.inspect(thread)
        threshold = memory.policy.verify_threshold
    rows = []
    for s in report.segments:
        for number, score in enumerate(s.readback, 1):
            rows.append(
                {
                    "segment_id": s.id,
                    "style": s.style,
                    "tier": s.tier,
                    "page": number,
                    "readback": score,
                }
            )
    if json_:
        typer.echo(json.dumps({"threshold": threshold, "pages": rows}, indent=1))
        return
    typer.echo(f"{'segment':<13}{'style':<24}{'tier':<8}{'page':>5}  read-back")
    for row in rows:
        score = row["readback"]
        flag = "  below threshold: shown as text" if score is not None and score < threshold else ""
        shown = "-" if score is None else f"{score:.3f}"
        typer.echo(
            f"{row['segment_id']:<13}{row['style']:<24}{row['tier']:<8}{row['page']:>5}  "
            f"{shown}{flag}"
        )
    if scores:
        values = list(scores.values())
        typer.echo(
            f"{len(values)} page(s) read: mean {sum(values) / len(values):.3f}, lowest "
            f"{min(values):.3f}; threshold {threshold:.2f}"
        )
    else:
        typer.echo("no pages to read (the thread has no compacted segments yet)")


COMMANDS = (ingest, context, inspect, recall, verify)
"""The memory commands, in the order ``--help`` lists them."""
