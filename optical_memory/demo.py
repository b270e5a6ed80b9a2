"""The main job on the embedded defaults: a real conversation in, a compression report out.

The bundled conversation (``optical_memory/data/demo_conversation.json``) is rendered
into pages at every tier, and the pages of one tier are read back on the CPU, so the
report shows both what compression costs in tokens and what it costs in accuracy.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from optical_memory.decoders import Decoder, get_decoder
from optical_memory.errors import DecoderUnavailable, UnknownDecoderError
from optical_memory.metrics import char_accuracy
from optical_memory.renderers import TextRenderer, Tier
from optical_memory.tokens import count_tokens

__all__ = ["DemoReport", "TierRow", "load_demo_conversation", "run_demo"]


@dataclass(frozen=True)
class TierRow:
    """What the conversation costs when shown at one tier."""

    tier: str
    pages: int
    vision_tokens: int
    compression: float


@dataclass
class DemoReport:
    """Result of :func:`run_demo`.

    Attributes:
        title: The conversation's title.
        messages: Number of turns.
        characters: Characters of the rendered transcript.
        text_tokens: cl100k tokens of the transcript.
        preset: Render preset used.
        tiers: Cost of the conversation at each tier.
        read_tier: Tier whose pages were read back.
        decoder: Decoder that read them, or ``None`` if none was available or asked.
        accuracy: Character accuracy of each page read back.
        render_ms: Milliseconds to render the pages of ``read_tier``.
        decode_s: Seconds spent reading back.
        note: Why nothing was read back, when nothing was.
    """

    title: str
    messages: int
    characters: int
    text_tokens: int
    preset: str
    tiers: list[TierRow]
    read_tier: str
    decoder: str | None = None
    accuracy: list[float] = field(default_factory=list)
    render_ms: float = 0.0
    decode_s: float = 0.0
    note: str = ""

    @property
    def mean_accuracy(self) -> float | None:
        """Mean character accuracy over the pages read back."""
        return sum(self.accuracy) / len(self.accuracy) if self.accuracy else None

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {**asdict(self), "mean_accuracy": self.mean_accuracy}

    def summary(self) -> str:
        """A short human-readable report."""
        lines = [
            f"{self.title}: {self.messages} messages, {self.characters:,} characters, "
            f"{self.text_tokens:,} text tokens (cl100k)",
            f"preset {self.preset!r}: vision tokens per tier (DeepSeek-OCR modes)",
            f"  {'tier':<6} {'pages':>5} {'vision tokens':>13} {'compression':>11}",
        ]
        lines += [
            f"  {r.tier:<6} {r.pages:>5} {r.vision_tokens:>13,} {r.compression:>10.1f}x"
            for r in self.tiers
        ]
        if self.decoder is None:
            lines.append(f"read-back skipped: {self.note}")
        else:
            scores = ", ".join(f"{a:.3f}" for a in self.accuracy)
            lines.append(
                f"read-back of the {self.read_tier} pages by {self.decoder}: mean character "
                f"accuracy {self.mean_accuracy:.3f} (pages: {scores}); rendered in "
                f"{self.render_ms:.0f} ms, read in {self.decode_s:.0f} s"
            )
        return "\n".join(lines)


def load_demo_conversation() -> tuple[str, list[dict[str, str]]]:
    """The bundled conversation: its title and its messages (role, content)."""
    data = json.loads(
        resources.files("optical_memory").joinpath("data/demo_conversation.json").read_text("utf-8")
    )
    return str(data["title"]), list(data["messages"])


def _pick_decoder(name: str | None) -> tuple[Decoder | None, str]:
    """The decoder asked for, or the best available one; and a note if there is none."""
    if name == "none":
        return None, "--decoder none"
    candidates = [name] if name else ["rapidocr", "tesseract"]
    notes = []
    for candidate in candidates:
        try:
            decoder = get_decoder(candidate)
            decoder.decode([])  # engines load lazily: surface a missing one now
            return decoder, ""
        except DecoderUnavailable as exc:
            if name:
                raise
            notes.append(str(exc))
    return None, "no CPU decoder is installed (" + "; ".join(notes) + ")"


def run_demo(
    *,
    decoder: str | None = None,
    tier: str = "small",
    preset: str = "dense",
    out: Path | None = None,
    progress: bool = False,
) -> DemoReport:
    """Compress the bundled conversation and read it back.

    Args:
        decoder: ``"rapidocr"``, ``"tesseract"``, ``"none"``, or ``None`` for the best
            installed one.
        tier: Tier whose pages are read back.
        preset: Render preset (``"dense"`` or ``"legible"``).
        out: If given, pages and ``report.json`` are written there.
        progress: Show a progress bar while reading back.

    Raises:
        DecoderUnavailable: The decoder asked for is not installed.
        UnknownDecoderError: ``decoder`` names no decoder.
    """
    if decoder not in (None, "none", "rapidocr", "tesseract"):
        raise UnknownDecoderError(f"unknown decoder {decoder!r}; use rapidocr, tesseract or none")
    read_tier = Tier.coerce(tier)
    title, messages = load_demo_conversation()
    renderer = TextRenderer(preset=preset)
    transcript, _ = renderer.render_chat(messages, tier="tiny")
    text_tokens = count_tokens(transcript.text)
    rows = []
    for each in Tier:
        _, pages = renderer.render_chat(messages, tier=each)
        vision = len(pages) * each.vision_tokens
        rows.append(TierRow(each.label, len(pages), vision, text_tokens / vision))
    start = time.perf_counter()
    _, pages = renderer.render_chat(messages, tier=read_tier)
    render_ms = (time.perf_counter() - start) * 1000
    report = DemoReport(
        title=title,
        messages=len(messages),
        characters=len(transcript.text),
        text_tokens=text_tokens,
        preset=renderer.preset.name,
        tiers=rows,
        read_tier=read_tier.label,
        render_ms=render_ms,
    )
    engine, note = _pick_decoder(decoder)
    if engine is None:
        report.note = note
    else:
        report.decoder = engine.name
        start = time.perf_counter()
        try:
            texts = _decode_with_progress(engine, [p.image for p in pages], progress)
        finally:
            close = getattr(engine, "close", None)
            if close is not None:
                close()  # stop the decoder's worker threads even on Ctrl-C
        report.decode_s = time.perf_counter() - start
        report.accuracy = [
            round(char_accuracy(page.text(transcript.text), text), 4)
            for page, text in zip(pages, texts, strict=True)
        ]
    if out is not None:
        _save(out, pages, report)
    return report


def _decode_with_progress(engine: Decoder, images: list[Any], progress: bool) -> list[str]:
    from tqdm import tqdm

    batch = max(1, getattr(engine, "workers", 1))
    texts: list[str] = []
    with tqdm(
        total=len(images),
        desc=f"reading pages back with {engine.name} (CPU, 30-40 s a dense page on two cores)",
        unit="page",
        disable=not progress,
    ) as bar:
        for i in range(0, len(images), batch):
            texts += engine.decode(images[i : i + batch])
            bar.update(len(images[i : i + batch]))
    return texts


def _save(out: Path, pages: list[Any], report: DemoReport) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for page in pages:
        page.image.save(out / f"page-{page.index:03d}.png")
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=1) + "\n", "utf-8")
