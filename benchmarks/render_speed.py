"""Render speed: ms per page and pages/s per tier, ours and pixelprompt's, in one run.

Every renderer draws the same English prose onto the same canvases, one full page per
call, from four places in the corpus. TextRenderer is timed in three conditions: text it
has drawn before (its word cache warm), unseen text after a warm-up on other text (a
chat service's steady state), and a cold process (caches cleared before every page).
Prints JSON to stdout and writes ``benchmarks/results/render_speed.png``.

Usage: python benchmarks/render_speed.py [--repeats N] [--no-html] > results/render_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from optical_memory.renderers import TextRenderer, Tier
from optical_memory.tokens import count_tokens

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus" / "english_prose.txt"


def passages() -> list[str]:
    """The corpus passages, without their ``=== title ===`` lines."""
    text = CORPUS.read_text(encoding="utf-8")
    parts = [p.strip() for p in text.split("===") if len(p.strip()) > 500]
    return parts


def measure(render: Callable[[], list[Any]], repeats: int) -> tuple[list[float], int]:
    """Milliseconds per page of each run, and the page count of a run."""
    per_page = []
    pages = 0
    for _ in range(repeats):
        start = time.perf_counter()
        out = render()
        elapsed = time.perf_counter() - start
        pages = len(out)
        per_page.append(elapsed * 1000 / pages)
    return per_page, pages


def row(
    renderer: str, tier: Tier, preset: str, times: list[float], pages: int, **extra: Any
) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "renderer": renderer,
        "tier": tier.label,
        "canvas": tier.side,
        "preset": preset,
        "ms_per_page_median": round(median, 2),
        "ms_per_page_min": round(min(times), 2),
        "pages_per_s": round(1000 / median, 1),
        "pages_per_run": pages,
        "runs": len(times),
        **extra,
    }


def full_pages(text: str, tier: Tier, preset: str, count: int = 4) -> list[str]:
    """Texts that each fill exactly one page, from different parts of ``text``."""
    renderer = TextRenderer(preset=preset)
    windows = []
    for i in range(count):
        start = i * len(text) // (count + 1)
        page = next(renderer.iter_pages(text[start:], tier))
        windows.append(page.text(text[start:]))
    return windows


def load(shown: str) -> dict[str, Any]:
    return {"chars_per_page": len(shown), "tokens_per_page": count_tokens(shown)}


def bench_text(text: str, repeats: int) -> list[dict[str, Any]]:
    """Three conditions: the text seen before, unseen text after a warm-up, a cold process."""
    rows = []
    halves = passages()
    train = "\n\n".join(halves[: len(halves) // 2])
    test = "\n\n".join(halves[len(halves) // 2 :])
    for preset in ("dense", "legible"):
        for tier in Tier:
            windows = full_pages(text, tier, preset)
            renderer = TextRenderer(preset=preset)
            for window in windows:
                renderer.render(window, tier=tier)
            times = [
                t
                for window in windows
                for t in measure(partial(renderer.render, window, tier), repeats)[0]
            ]
            rows.append(
                row("TextRenderer, text seen before", tier, preset, times, 1, **load(windows[0]))
            )
            unseen = []
            for _ in range(max(3, repeats // 4)):
                TextRenderer.clear_caches()
                renderer.render(train, tier=tier)
                unseen += measure(partial(renderer.render, test, tier), 1)[0]
            rows.append(
                row("TextRenderer, unseen text", tier, preset, unseen, 1, **load(windows[0]))
            )
            cold = []
            for window in windows:
                TextRenderer.clear_caches()
                cold += measure(partial(renderer.render, window, tier), 1)[0]
            rows.append(
                row("TextRenderer, cold process", tier, preset, cold, 1, **load(windows[0]))
            )
    return rows


def bench_html(text: str, repeats: int) -> list[dict[str, Any]]:
    from optical_memory.renderers import HtmlRenderer

    rows = []
    for preset in ("dense", "legible"):
        with HtmlRenderer(preset=preset) as renderer:
            for tier in Tier:
                renderer.render_markdown(text, tier=tier)
                times, pages = measure(
                    lambda r=renderer, t=tier: r.render_markdown(text, tier=t), max(2, repeats // 4)
                )
                rows.append(row("HtmlRenderer", tier, preset, times, pages))
    return rows


def bench_pixelprompt(text: str, repeats: int) -> list[dict[str, Any]]:
    from pixelprompt import PixelPrompt, RenderConfig

    rows = []
    # font_size 6 is pixelprompt's densest setting; 9 is its prose preset.
    for size in (6, 9):
        for tier in Tier:
            config = RenderConfig(
                font_size=size,
                max_width=tier.side,
                max_height=tier.side,
                dynamic_width=False,
                dynamic_height=False,
                minify=False,
            )
            renderer = PixelPrompt(config)
            windows = []
            for i in range(4):
                start = i * len(text) // 5
                lines = renderer._paginate(renderer._wrap_text(text[start:]))[0]
                windows.append("\n".join(lines))
            times = [
                t
                for window in windows
                for t in measure(partial(renderer.render, window), repeats)[0]
            ]
            rows.append(
                row("pixelprompt 0.4.0", tier, f"{size}px mono", times, 1, **load(windows[0]))
            )
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[float]] = {}
    for r in rows:
        series.setdefault(f"{r['renderer']} {r['preset']}", []).append(r["ms_per_page_median"])
    tiers = [t.label for t in Tier]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(tiers))], values, width, label=name)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(tiers))], tiers)
    ax.set_yscale("log")
    ax.set_ylabel("ms per page (median, log scale)")
    ax.set_title("Render speed on this machine, same English prose")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-html", action="store_true", help="skip HtmlRenderer")
    parser.add_argument("--plot", type=Path, default=HERE / "results" / "render_speed.png")
    args = parser.parse_args()

    text = "\n\n".join(passages())
    rows = bench_text(text, args.repeats)
    rows += bench_pixelprompt(text, args.repeats)
    if not args.no_html:
        rows += bench_html(text, args.repeats)
    result = {
        "benchmark": "render_speed",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "corpus": {"file": str(CORPUS.relative_to(HERE.parent)), "chars": len(text)},
        "results": rows,
    }
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    plot(rows, args.plot)


if __name__ == "__main__":
    main()
