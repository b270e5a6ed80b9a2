"""Turn the benchmark JSON in ``benchmarks/results/`` into the Markdown tables of the README.

Usage: python benchmarks/report.py  (prints Markdown to stdout)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
TIERS = ("large", "base", "small", "tiny")


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def render_speed_table(data: dict[str, Any]) -> str:
    rows = data["results"]
    names = []
    for r in rows:
        name = f"{r['renderer']}, {r['preset']}"
        if name not in names:
            names.append(name)
    lines = [
        "| renderer, preset | "
        + " | ".join(f"{t} ms/page" for t in TIERS)
        + " | tokens on a small page |",
        "|---|" + "---:|" * (len(TIERS) + 1),
    ]
    for name in names:
        by_tier = {r["tier"]: r for r in rows if f"{r['renderer']}, {r['preset']}" == name}
        cells = [f"{by_tier[t]['ms_per_page_median']:.1f}" if t in by_tier else "" for t in TIERS]
        small = by_tier.get("small", {}).get("tokens_per_page")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {small if small else ''} |")
    return "\n".join(lines)


def capacity_table(data: dict[str, Any]) -> str:
    lines = [
        "| content | tier | style | decoder | tokens at >= 0.97 | at >= 0.90 | at >= 0.60 |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    order = {t: i for i, t in enumerate(TIERS)}
    rows = sorted(
        data["capacity"],
        key=lambda r: (r["content"], order[r["tier"]], r["style"], r["decoder"]),
    )
    for r in rows:
        cells = []
        for key in ("0.97", "0.90", "0.60"):
            tokens, size = r[f"tokens_at_{key}"], r[f"size_at_{key}"]
            cells.append(f"{tokens:,} ({size:g} px)" if tokens else "–")
        lines.append(
            f"| {r['content']} | {r['tier']} | {r['style']} | {r['decoder']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    speed = _load("render_speed")
    if speed:
        print("### Render speed\n")
        print(render_speed_table(speed))
        print()
    curve = _load("compression_curve")
    if curve:
        print("### Capacity: cl100k tokens a page holds at a read-back accuracy\n")
        print(capacity_table(curve))
        print()


if __name__ == "__main__":
    main()
