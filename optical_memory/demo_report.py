"""A demo report as text, as JSON data, and as an HTML page with page images and a plot.

:func:`summary` is what ``optical-memory demo`` prints, :func:`report_dict` its
``--json`` output and ``report.json``, and :func:`write_report` writes ``report.json``,
``report.html`` and the sample pages (``pages/<reader>-<tier>.png``) into a folder. The
plot is an inline SVG drawn here, so the report needs no plotting library.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optical_memory.demo import DemoReport, PageSample, ReaderResult

__all__ = ["page_file", "report_dict", "summary", "write_report"]

COLOURS = ("#1f6fb4", "#d1612a", "#2b9a5a", "#8e44ad", "#b8860b", "#c0392b", "#555555")


def page_file(sample: PageSample) -> str:
    """Where :func:`write_report` puts a sample page, relative to the report."""
    return f"pages/{sample.reader}-{sample.tier}.png"


def _sample_dict(sample: PageSample, files: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "reader": sample.reader,
        "tier": sample.tier,
        "segment_id": sample.segment_id,
        "page_id": sample.page_id,
        "age_turns": sample.age,
        "width": sample.width,
        "height": sample.height,
        "image_tokens": sample.image_tokens,
        "readback": sample.readback,
        "readback_s": None if sample.seconds is None else round(sample.seconds, 2),
    }
    if files:
        data["file"] = page_file(sample)
    return data


def _reader_dict(result: ReaderResult, files: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "raw_tokens": result.raw_tokens,
        "optical_tokens": result.optical_tokens,
        "ratio": round(result.ratio, 4),
        "pages": result.pages,
        "text_segments": result.text_segments,
        "verbatim_turns": result.verbatim_turns,
        "facts_tokens": result.facts_tokens,
        "context_ms": round(result.context_ms, 2),
    }
    if result.budget_tokens is not None:
        data.update(
            budget_tokens=result.budget_tokens,
            dropped_segments=result.dropped_segments,
            dropped_turns=result.dropped_turns,
        )
    data["samples"] = [_sample_dict(sample, files) for sample in result.samples]
    data["curve"] = [list(point) for point in result.curve]
    return data


def report_dict(report: DemoReport, *, files: bool = False) -> dict[str, Any]:
    """The report as JSON data.

    ``readers[name]`` holds ``raw_tokens`` (the turns as text) and ``optical_tokens`` (the
    context holding every turn, no budget cut); ``tiers[tier]`` holds ``pages`` (across the
    readers' contexts) and ``readback`` (character accuracy of one sample page, from the
    first reader that shows the tier, or ``None``); ``timings`` holds seconds (``*_s``)
    and milliseconds (``*_ms*``).

    Args:
        report: The demo's result.
        files: Name each sample page's file (as :func:`write_report` writes them).
    """
    return {
        "source": report.source,
        "turns": report.turns,
        "characters": report.characters,
        "store": report.store,
        "thread": report.thread,
        "budget": report.budget,
        "ladder": [list(step) for step in report.ladder],
        "readers": {r.name: _reader_dict(r, files) for r in report.readers},
        "tiers": {
            t.tier: {
                "pages": t.pages,
                "readback": t.readback,
                "sample": None if t.sample is None else _sample_dict(t.sample, files),
            }
            for t in report.tiers
        },
        "timings": report.timings,
        "decoder": report.decoder,
        "note": report.note or None,
    }


def _tier_counts(pages: dict[str, int]) -> str:
    return ", ".join(f"{tier} {count}" for tier, count in pages.items()) or "-"


def summary(report: DemoReport) -> str:
    """The report as the plain text the CLI prints."""
    add = report.timings["add_ms_per_turn"]
    lines = [
        f"{report.turns} turns ({report.characters:,} characters, {report.source}) added one "
        f"at a time to a memory on a {report.store}",
        f"  add: {report.timings['add_s']:.1f} s in all, {add['mean']:.1f} ms a turn on "
        f"average (p50 {add['p50']:.1f} ms, p95 {add['p95']:.1f} ms, compaction included)",
        "",
        f"{'reader':<18}{'raw tokens':>11}{'context':>9}{'ratio':>7}  "
        f"{'pages by tier':<24}{'as text':>8}{'ms':>7}",
    ]
    budgeted = report.budget is not None
    for r in report.readers:
        lines.append(
            f"{r.name:<18}{r.raw_tokens:>11,}{r.optical_tokens:>9,}{r.ratio:>7.3f}  "
            f"{_tier_counts(r.pages):<24}{r.text_segments:>8}{r.context_ms:>7.1f}"
        )
    if budgeted:
        lines += ["", f"fitted to a budget of {report.budget:,} tokens:"]
        lines += [
            f"  {r.name:<16}{r.budget_tokens or 0:>8,} tokens, {r.dropped_segments} segment(s) "
            f"and {r.dropped_turns} recent turn(s) dropped"
            for r in report.readers
        ]
    lines += ["", f"{'tier':<7}{'pages':>6}  {'read-back':>9}  sample page"]
    for t in report.tiers:
        sample = t.sample
        where = "-"
        if sample is not None:
            where = (
                f"{sample.reader}, segment {sample.segment_id}, {sample.width}x{sample.height}, "
                f"age {sample.age:.0f} turns"
            )
            if sample.seconds is not None:
                where += f", read in {sample.seconds:.1f} s"
        readback = "-" if t.readback is None else f"{t.readback:.3f}"
        lines.append(f"{t.tier:<7}{t.pages:>6}  {readback:>9}  {where}")
    if report.decoder:
        lines.append(
            f"read-back: {report.decoder} on the CPU, character accuracy of the sample page "
            "against the text it shows"
        )
    else:
        lines.append(report.note)
    lines.append(
        f"time: add {report.timings['add_s']:.1f} s, contexts "
        f"{sum(report.timings['context_ms'].values()):.0f} ms, read-back "
        f"{report.timings['readback_s']:.1f} s, total {report.timings['total_s']:.1f} s"
    )
    return "\n".join(lines)


def write_report(report: DemoReport, out: Path) -> Path:
    """Write ``report.json``, ``report.html`` and the sample pages into ``out``.

    Returns:
        The path of ``report.html``.

    Raises:
        OSError: ``out`` cannot be written.
    """
    (out / "pages").mkdir(parents=True, exist_ok=True)
    for result in report.readers:
        for sample in result.samples:
            (out / page_file(sample)).write_bytes(sample.png)
    data = report_dict(report, files=True)
    (out / "report.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    page = out / "report.html"
    page.write_text(_html(report), encoding="utf-8")
    return page


_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:.25em .7em;text-align:right}
th{border-bottom:1px solid #999}td:first-child,th:first-child{text-align:left}
.pages{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
figure{margin:0;max-width:100%}figure img{border:1px solid #bbb;max-width:100%;display:block}
figcaption{font-size:13px;max-width:640px}
pre{white-space:pre-wrap;font-size:12px;background:#f6f6f6;padding:.5em;max-height:18em;overflow:auto}
.note{color:#a33}
"""


def _html(report: DemoReport) -> str:
    e = html.escape
    t = report.timings
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>optical-memory demo report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>optical-memory demo</h1>",
        f"<p>{report.turns} turns ({report.characters:,} characters, {e(report.source)}) "
        f"added one at a time to a memory on a {e(report.store)}. Decay ladder (age in turns "
        f"→ tier): {e(', '.join(f'{age:g} → {tier}' for age, tier in report.ladder))}.</p>",
        "<h2>What each reader's context costs</h2>",
        "<p>Raw: the turns as text, in the reader's tokens. Context: every turn, older ones as "
        "page images (or as text where text is cheaper) and the recent turns verbatim; no "
        "budget cut (a fact sheet comes only with a budget: <code>--budget</code>).</p>",
        _readers_table(report),
        "<h2>Tokens and read-back by age</h2>",
        _plot(report),
        "<h2>Pages per tier</h2>",
        _tiers_table(report),
    ]
    if report.note:
        parts.append(f"<p class='note'>{e(report.note)}</p>")
    parts.append(_gallery(report))
    parts.append(
        f"<h2>Timings</h2><p>add: {t['add_s']:.1f} s ({t['add_ms_per_turn']['mean']:.1f} ms a "
        f"turn on average, p50 {t['add_ms_per_turn']['p50']:.1f} ms, p95 "
        f"{t['add_ms_per_turn']['p95']:.1f} ms); context(): "
        + ", ".join(f"{e(name)} {ms:.1f} ms" for name, ms in t["context_ms"].items())
        + f"; read-back: {t['readback_s']:.1f} s; total {t['total_s']:.1f} s.</p>"
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _readers_table(report: DemoReport) -> str:
    budget = report.budget is not None
    head = "<tr><th>reader</th><th>raw tokens</th><th>context tokens</th><th>ratio</th>"
    head += "<th>pages by tier</th><th>segments as text</th><th>facts tokens</th>"
    head += f"<th>tokens at budget {report.budget:,}</th>" if budget else ""
    rows = [head + "</tr>"]
    for r in report.readers:
        row = (
            f"<tr><td>{html.escape(r.name)}</td><td>{r.raw_tokens:,}</td>"
            f"<td>{r.optical_tokens:,}</td><td>{r.ratio:.3f}</td>"
            f"<td>{html.escape(_tier_counts(r.pages))}</td><td>{r.text_segments}</td>"
            f"<td>{r.facts_tokens:,}</td>"
        )
        if budget:
            row += f"<td>{r.budget_tokens or 0:,}</td>"
        rows.append(row + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _tiers_table(report: DemoReport) -> str:
    rows = ["<tr><th>tier</th><th>pages</th><th>read-back</th><th>sample</th><th>seconds</th></tr>"]
    for t in report.tiers:
        s = t.sample
        sample = "-" if s is None else f"{s.reader}, {s.width}×{s.height}, age {s.age:.0f}"
        seconds = "-" if s is None or s.seconds is None else f"{s.seconds:.1f}"
        readback = "-" if t.readback is None else f"{t.readback:.3f}"
        rows.append(
            f"<tr><td>{t.tier}</td><td>{t.pages}</td><td>{readback}</td>"
            f"<td>{html.escape(sample)}</td><td>{seconds}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _gallery(report: DemoReport) -> str:
    parts = [
        "<h2>Page images</h2><p>For each tier in each reader's context, the first page of "
        "the middle segment at that tier, at its own size (the size the reader is sent).</p>"
    ]
    for tier in [t.tier for t in report.tiers]:
        parts.append(f"<h3>{tier}</h3><div class='pages'>")
        for result in report.readers:
            for s in result.samples:
                if s.tier != tier:
                    continue
                caption = (
                    f"{s.reader}: {s.width}×{s.height} px, {s.image_tokens:,} image tokens, "
                    f"segment {s.segment_id}, age {s.age:.0f} turns"
                )
                if s.readback is not None:
                    caption += f", read back at {s.readback:.3f}"
                parts.append(
                    f"<figure><img src='{page_file(s)}' alt='{html.escape(caption)}'>"
                    f"<figcaption>{html.escape(caption)}</figcaption>"
                )
                if s.readback is not None:
                    parts.append(
                        "<details><summary>text shown / text read back</summary>"
                        f"<pre>{html.escape(s.text)}</pre><pre>{html.escape(s.read)}</pre>"
                        "</details>"
                    )
                parts.append("</figure>")
        parts.append("</div>")
    return "\n".join(parts)


def _tick_step(highest: float) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving about four to eight ticks."""
    power = int(10 ** max(0, math.floor(math.log10(highest / 4))))
    return next(power * f for f in (1, 2, 5, 10) if highest / (power * f) <= 8)


def _polyline(points: Sequence[tuple[float, float]], colour: str, dashed: bool) -> str:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dash = " stroke-dasharray='5 4'" if dashed else ""
    return f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='2'{dash}/>"


def _plot(report: DemoReport) -> str:
    """Two panels sharing the age axis: cumulative tokens (raw dashed, context solid) and
    the read-back of the sample pages."""
    width, left, right = 900, 70, 170
    top_h, low_h, gap = 280, 150, 50
    span = max(1, report.turns)
    highest = max([max(p[1], p[2]) for r in report.readers for p in r.curve] + [1])
    step = _tick_step(highest)
    most = step * math.ceil(highest / step)

    def x(back: float) -> float:
        return left + (width - left - right) * back / span

    def y_tokens(tokens: float) -> float:
        return 20 + top_h * (1 - tokens / most)

    low_top = 20 + top_h + gap

    def y_read(score: float) -> float:  # 0.5 (bottom) to 1.0; lower scores sit on the floor
        return low_top + low_h * (1 - max(0.5, score)) * 2

    svg = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{low_top + low_h + 45}' font-size='12' font-family='sans-serif'>"
    ]
    for tick in range(0, most + 1, step):
        ty = y_tokens(tick)
        svg.append(
            f"<line x1='{left}' x2='{width - right}' y1='{ty:.1f}' y2='{ty:.1f}' stroke='#ddd'/>"
        )
        svg.append(f"<text x='{left - 6}' y='{ty + 4:.1f}' text-anchor='end'>{tick:,}</text>")
    for score in (0.5, 0.6, 0.7, 0.8, 0.9, 1):
        ry = y_read(score)
        svg.append(
            f"<line x1='{left}' x2='{width - right}' y1='{ry:.1f}' y2='{ry:.1f}' stroke='#ddd'/>"
        )
        svg.append(f"<text x='{left - 6}' y='{ry + 4:.1f}' text-anchor='end'>{score:g}</text>")
    for step, (age, tier) in enumerate(report.ladder):
        if age <= span:
            lx = x(age)
            svg.append(
                f"<line x1='{lx:.1f}' x2='{lx:.1f}' y1='20' y2='{low_top + low_h}' "
                "stroke='#999' stroke-dasharray='2 3'/>"
            )
            svg.append(
                f"<text x='{lx + 3:.1f}' y='{34 + 14 * step}' fill='#666'>{tier} from "
                f"age {age:g}</text>"
            )
    for number, result in enumerate(report.readers):
        colour = COLOURS[number % len(COLOURS)]
        raw = [(x(b), y_tokens(r)) for b, r, _ in result.curve]
        shown = [(x(b), y_tokens(c)) for b, _, c in result.curve]
        svg += [_polyline(raw, colour, True), _polyline(shown, colour, False)]
        ly = 40 + 20 * number
        svg.append(
            f"<line x1='{width - right + 12}' x2='{width - right + 34}' y1='{ly}' "
            f"y2='{ly}' stroke='{colour}' stroke-width='2'/>"
        )
        svg.append(f"<text x='{width - right + 40}' y='{ly + 4}'>{html.escape(result.name)}</text>")
    legend_y = 40 + 20 * len(report.readers) + 10
    svg.append(f"<text x='{width - right + 12}' y='{legend_y}' fill='#555'>solid: context</text>")
    svg.append(
        f"<text x='{width - right + 12}' y='{legend_y + 16}' fill='#555'>dashed: raw text</text>"
    )
    for number, t in enumerate(report.tiers):
        s = t.sample
        if s is None or s.readback is None:
            continue
        px, py = x(s.age), y_read(s.readback)
        label_y = py - 8 if number % 2 == 0 else py + 18  # neighbours' labels alternate
        svg.append(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='5' fill='#333'/>")
        svg.append(
            f"<text x='{px + 8:.1f}' y='{label_y:.1f}'>{t.tier} ({s.reader}) "
            f"{s.readback:.3f}</text>"
        )
    svg.append(
        f"<text x='{left}' y='14'>tokens to hold the newest turns, by how far back they go</text>"
    )
    svg.append(
        f"<text x='{left}' y='{low_top - 8}'>read-back (character accuracy, 0.5 to 1) of one "
        "sample page per tier, at its age</text>"
    )
    svg.append(
        f"<text x='{(left + width - right) / 2:.0f}' y='{low_top + low_h + 35}' "
        "text-anchor='middle'>turns back (age)</text>"
    )
    for frac in (0, 0.25, 0.5, 0.75, 1):
        svg.append(
            f"<text x='{x(span * frac):.1f}' y='{low_top + low_h + 16}' "
            f"text-anchor='middle'>{span * frac:.0f}</text>"
        )
    svg.append("</svg>")
    return "\n".join(svg)
