"""Compression curve: how many text tokens a page holds at a given read-back accuracy.

For each tier, render style (the ``dense`` and ``legible`` presets, swept over glyph
size), content and CPU decoder, one full page is rendered, read back, and scored
(character accuracy; cl100k tokens of the text the page shows). Contents: English prose
(essays, ``prose``) and English legal and technical text (``prose_technical``), source
code, Chinese prose (``chinese``, ``chinese_2``: two corpora, so a figure of one can be
checked on the other) and Chinese technical writing and chat that mixes Latin words,
numbers and Markdown tables (``chinese_mixed``, issue 9). For ``chinese_mixed`` every
page of the corpus is read at the dense size (``PAGES``), since the worst page matters.
pixelprompt 0.4.0's pages are measured the same way in the same run. The capacity at a
threshold is the most tokens any measured size put on a page while read-back stayed at
or above it (on every page read at that size).

Prints JSON to stdout and draws ``benchmarks/results/compression_curve.png``.

Usage:
    python benchmarks/compression_curve.py > benchmarks/results/compression_curve.json
    python benchmarks/compression_curve.py --tiers small tiny --contents prose --decoders tesseract
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from optical_memory.decoders import get_decoder
from optical_memory.metrics import char_accuracy
from optical_memory.renderers import TextRenderer, Tier
from optical_memory.renderers.presets import get_preset
from optical_memory.tokens import count_tokens

HERE = Path(__file__).resolve().parent
THRESHOLDS = (0.97, 0.90, 0.60)

# Glyph sizes (px) swept per render style and content.
SIZES: dict[tuple[str, str], tuple[float, ...]] = {
    ("dense", "prose"): (5.5, 5.75, 6.0, 6.5, 7.0, 8.0),
    ("dense", "code"): (6.0, 7.0, 8.0, 9.0, 10.0),
    ("dense", "prose_technical"): (5.5, 6.0),
    ("dense", "chinese"): (8.0, 9.0, 10.0, 11.0),
    ("dense", "chinese_2"): (8.0,),
    ("dense", "chinese_mixed"): (8.0, 9.0),
    ("legible", "prose"): (9.0, 13.0),
    ("legible", "code"): (9.0, 12.0),
    ("legible", "chinese"): (11.0, 14.0),
    ("legible", "chinese_mixed"): (14.0,),
    ("pixelprompt", "prose"): (6, 7, 8, 9),
    ("pixelprompt", "code"): (6, 7, 8, 9),
}
# Pages read per size (the corpus start, then the pages after it); one where unlisted.
PAGES: dict[tuple[str, str], int] = {("dense", "chinese_mixed"): 5}
CORPUS_FILES = {
    "prose": "english_prose.txt",
    "prose_technical": "english_technical.txt",
    "chinese": "chinese.txt",
    "chinese_2": "chinese_2.txt",
    "chinese_mixed": "chinese_mixed.txt",
}
CJK_CONTENTS = ("chinese", "chinese_2", "chinese_mixed")


def corpus(content: str) -> str:
    """Benchmark text for a content kind, repeated so any page can be filled."""
    if content == "code":
        import argparse as a
        import json.decoder as jd
        import textwrap as tw

        text = "\n\n".join(inspect.getsource(m) for m in (tw, jd, a))
        return text * 2
    raw = (HERE / "corpus" / CORPUS_FILES[content]).read_text(encoding="utf-8")
    passages = [p.strip() for p in raw.split("===") if len(p.strip()) > 200]
    return "\n\n".join(passages) * 4


@dataclass
class Point:
    """One rendered page and how well each decoder read it."""

    renderer: str
    style: str
    content: str
    tier: str
    size_px: float
    page: int
    chars: int
    tokens: int
    reference: str
    image: Any
    accuracy: dict[str, float]
    accuracy_no_space: dict[str, float]
    seconds: dict[str, float]


def render_ours(
    style: str, content: str, tier: Tier, size: float, text: str, pages: int
) -> list[tuple[Any, str]]:
    preset = get_preset(style)
    if content in CJK_CONTENTS:
        script = "cjk_mixed" if content == "chinese_mixed" else "cjk"
        cjk_size = preset.type_for(script, "prose").size_px
        size_for_latin = size * preset.latin_prose.size_px / cjk_size
    elif content == "code":
        size_for_latin = size * preset.latin_prose.size_px / preset.latin_code.size_px
    else:
        size_for_latin = size
    renderer = TextRenderer(preset=preset, font_size=size_for_latin)
    kind = "code" if content == "code" else "prose"
    rendered = renderer.iter_pages(text, tier, kind=kind)
    return [(page.image, page.text(text)) for page in itertools.islice(rendered, pages)]


def render_pixelprompt(tier: Tier, size: int, text: str) -> tuple[Any, str]:
    from pixelprompt import PixelPrompt, RenderConfig

    renderer = PixelPrompt(
        RenderConfig(
            font_size=size,
            max_width=tier.side,
            max_height=tier.side,
            dynamic_width=False,
            dynamic_height=False,
            minify=False,
        )
    )
    lines = renderer._paginate(renderer._wrap_text(text))[0]
    image = renderer._render_page(lines)._image
    return image, "\n".join(lines)


def plan(tiers: list[Tier], contents: list[str], styles: list[str]) -> list[Point]:
    points = []
    for content in contents:
        text = corpus(content)
        for tier in tiers:
            for style in styles:
                sizes = SIZES.get((style, content))
                if not sizes:
                    continue
                for size in sizes:
                    if style == "pixelprompt":
                        pages = [render_pixelprompt(tier, int(size), text)]
                        renderer = "pixelprompt 0.4.0"
                    else:
                        count = PAGES.get((style, content), 1)
                        pages = render_ours(style, content, tier, size, text, count)
                        renderer = "optical-memory TextRenderer"
                    for index, (image, shown) in enumerate(pages):
                        points.append(
                            Point(
                                renderer,
                                style,
                                content,
                                tier.label,
                                size,
                                index,
                                len(shown),
                                count_tokens(shown),
                                shown,
                                image,
                                {},
                                {},
                                {},
                            )
                        )
    return points


def decoder_for(name: str, content: str) -> Any:
    cjk = content in CJK_CONTENTS
    if name == "rapidocr":
        return get_decoder("rapidocr", script="cjk" if cjk else "latin")
    return get_decoder("tesseract", lang="chi_sim" if cjk else "eng")


def read_back(points: list[Point], decoders: list[str], skip_rapid_large: bool) -> None:
    from tqdm import tqdm

    for name in decoders:
        for content in sorted({p.content for p in points}):
            todo = [p for p in points if p.content == content]
            if name == "rapidocr" and skip_rapid_large:
                todo = [p for p in todo if p.tier in ("small", "tiny")]
            if not todo:
                continue
            with decoder_for(name, content) as decoder:
                batch = 2
                bar = tqdm(total=len(todo), desc=f"{name} {content}", unit="page", file=sys.stderr)
                for i in range(0, len(todo), batch):
                    chunk = todo[i : i + batch]
                    start = time.perf_counter()
                    texts = decoder.decode([p.image for p in chunk])
                    elapsed = (time.perf_counter() - start) / len(chunk)
                    for point, text in zip(chunk, texts, strict=True):
                        point.accuracy[name] = round(char_accuracy(point.reference, text), 4)
                        point.accuracy_no_space[name] = round(
                            char_accuracy(point.reference, text, ignore_whitespace=True), 4
                        )
                        point.seconds[name] = round(elapsed, 1)
                    bar.update(len(chunk))
                bar.close()


def _worst_page(points: list[dict[str, Any]], decoder: str) -> list[dict[str, Any]]:
    """One point per size: where several pages were read, the fewest tokens at the
    lowest accuracy any of them read (a size holds only what its worst page holds)."""
    sizes: dict[float, list[dict[str, Any]]] = {}
    for p in points:
        sizes.setdefault(p["size_px"], []).append(p)
    worst = []
    for size, pages in sorted(sizes.items()):
        if len(pages) == 1:
            worst.append(pages[0])
            continue
        worst.append(
            {
                "size_px": size,
                "tokens": min(p["tokens"] for p in pages),
                "chars": min(p["chars"] for p in pages),
                "accuracy": {decoder: min(p["accuracy"][decoder] for p in pages)},
            }
        )
    return worst


def capacities(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for p in points:
        for decoder in p["accuracy"]:
            groups.setdefault((p["style"], p["content"], p["tier"], decoder), []).append(p)
    rows = []
    for (style, content, tier, decoder), pages in sorted(groups.items()):
        group = _worst_page(pages, decoder)
        row: dict[str, Any] = {"style": style, "content": content, "tier": tier, "decoder": decoder}
        for threshold in THRESHOLDS:
            ok = [p for p in group if p["accuracy"][decoder] >= threshold]
            best = max(ok, key=lambda p: p["tokens"], default=None)
            key = f"{threshold:.2f}"
            row[f"tokens_at_{key}"] = best["tokens"] if best else None
            row[f"chars_at_{key}"] = best["chars"] if best else None
            row[f"size_at_{key}"] = best["size_px"] if best else None
        rows.append(row)
    return rows


def plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    contents = sorted({p["content"] for p in points})
    decoders = sorted({d for p in points for d in p["accuracy"]})
    if not contents or not decoders:
        return
    fig, axes = plt.subplots(
        len(contents),
        len(decoders),
        figsize=(5 * len(decoders), 3.6 * len(contents)),
        squeeze=False,
    )
    for i, content in enumerate(contents):
        for j, decoder in enumerate(decoders):
            ax = axes[i][j]
            series: dict[str, list[dict[str, Any]]] = {}
            for p in points:
                if p["content"] == content and decoder in p["accuracy"]:
                    series.setdefault(f"{p['style']} {p['tier']}", []).append(p)
            for name, pts in sorted(series.items()):
                pts.sort(key=lambda p: p["tokens"])
                ax.plot(
                    [p["tokens"] for p in pts],
                    [p["accuracy"][decoder] for p in pts],
                    marker="x" if "pixelprompt" in name else "o",
                    label=name,
                    lw=1,
                )
            for threshold in THRESHOLDS:
                ax.axhline(threshold, color="grey", lw=0.5, ls=":")
            ax.set_xscale("log")
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{content}, read back by {decoder}", fontsize=9)
            ax.set_xlabel("cl100k tokens on the page")
            ax.set_ylabel("character accuracy")
            ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiers", nargs="+", default=[t.label for t in Tier])
    parser.add_argument("--contents", nargs="+", default=["prose", "code", "chinese"])
    parser.add_argument("--styles", nargs="+", default=["dense", "legible", "pixelprompt"])
    parser.add_argument("--decoders", nargs="*", default=["rapidocr", "tesseract"])
    parser.add_argument("--sizes", nargs="*", type=float, help="only these glyph sizes (px)")
    parser.add_argument(
        "--rapidocr-all-tiers",
        action="store_true",
        help="also read base and large pages with RapidOCR (2-5 CPU-minutes a page)",
    )
    parser.add_argument("--plot", type=Path, default=HERE / "results" / "compression_curve.png")
    parser.add_argument("--save-pages", type=Path, help="write every page image here")
    parser.add_argument(
        "--update",
        type=Path,
        help="an earlier result: keep its points for contents not measured in this run",
    )
    args = parser.parse_args()

    started = time.time()
    tiers = [Tier.coerce(t) for t in args.tiers]
    if args.sizes:
        for key, sizes in SIZES.items():
            SIZES[key] = tuple(size for size in sizes if size in args.sizes)
    points = plan(tiers, args.contents, args.styles)
    if args.save_pages:
        args.save_pages.mkdir(parents=True, exist_ok=True)
        for n, p in enumerate(points):
            p.image.save(
                args.save_pages / f"{n:03d}-{p.style}-{p.content}-{p.tier}-{p.size_px:g}.png"
            )
    read_back(points, args.decoders, skip_rapid_large=not args.rapidocr_all_tiers)
    measured = [
        {f.name: getattr(p, f.name) for f in fields(p) if f.name not in ("reference", "image")}
        for p in points
    ]
    kept = []
    runs = [{"contents": args.contents, "seconds": round(time.time() - started)}]
    if args.update:
        earlier = json.loads(args.update.read_text())

        # Earlier points of a page measured again keep only the decoders not run now.
        def key(p: dict[str, Any]) -> tuple[Any, ...]:
            return (p["renderer"], p["style"], p["content"], p["tier"], p["size_px"], p["page"])

        new = {key(p): p for p in measured}
        for p in earlier["points"]:
            p = {**p, "page": p.get("page", 0)}
            again = new.get(key(p))
            if again is None:
                kept.append(p)
                continue
            for field in ("accuracy", "accuracy_no_space", "seconds"):
                again[field] = {**p[field], **again[field]}
        runs = earlier.get("runs", [{"contents": "all", "seconds": earlier["seconds"]}]) + runs
    all_points = sorted(
        kept + measured, key=lambda p: (p["content"], p["tier"], p["style"], p["size_px"])
    )
    result = {
        "benchmark": "compression_curve",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seconds": sum(run["seconds"] for run in runs),
        "runs": runs,
        "thresholds": THRESHOLDS,
        "capacity": capacities(all_points),
        "points": all_points,
    }
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    plot(all_points, args.plot)


if __name__ == "__main__":
    main()
