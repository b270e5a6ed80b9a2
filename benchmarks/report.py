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


def store_throughput_table(data: dict[str, Any]) -> str:
    res = data["results"]
    raw = res["raw_redis"]

    def cells(
        single: dict[str, Any], batch: float, put: dict[str, Any], get: dict[str, Any]
    ) -> str:
        return " | ".join(
            [
                f"{single['per_s']:,.0f}",
                f"{single['p50_ms']:.2f} / {single['p99_ms']:.2f}",
                f"{batch:,.0f}",
                f"{put['per_s']:,.0f}",
                f"{put['p50_ms']:.2f} / {put['p99_ms']:.2f}",
                f"{get['per_s']:,.0f}",
                f"{get['p50_ms']:.2f} / {get['p99_ms']:.2f}",
            ]
        )

    batch = res["sqlite"]["batch_append"]["batch"]
    lines = [
        f"| store | turn appends/s | p50 / p99 ms | turns/s in batches of {batch} "
        "| 64 KiB page puts/s | p50 / p99 ms | 64 KiB page gets/s | p50 / p99 ms |",
        "|---|" + "---:|" * 7,
    ]
    for name, key in (("SQLiteStore", "sqlite"), ("RedisStore", "redis")):
        r = res[key]
        lines.append(
            f"| {name} | "
            + cells(
                r["single_append"],
                r["batch_append"]["turns_per_s"],
                r["page_put_64k"],
                r["page_get_64k"],
            )
            + " |"
        )
    lines.append(
        "| raw redis-py (RPUSH, SET, GET) | "
        + cells(
            raw["single_rpush"],
            raw["pipelined_rpush"]["per_s"],
            raw["single_set_64k"],
            raw["single_get_64k"],
        )
        + " |"
    )
    fraction = res["redis"]["batch_append_fraction_of_raw_rpush"]
    notes = [
        "",
        f"Raw redis-py pipelines of {raw['pipeline_batch']}: RPUSH of "
        f"{raw['turn_payload_bytes']}-byte turn payloads {raw['pipelined_rpush']['per_s']:,.0f}/s, "
        f"SET {raw['pipelined_set_64k']['per_s']:,.0f}/s and GET "
        f"{raw['pipelined_get_64k']['per_s']:,.0f}/s of 64 KiB. RedisStore batch appends reach "
        f"{fraction:.0%} of pipelined RPUSH.",
    ]
    floor = res.get("cpu_noise_floor")
    machine = data["machine"]
    if floor:
        notes.append(
            f"Machine: {machine['cpus']} CPUs, load average {machine['load_average_1m_before']}"
            f" before the run; a CPU-only task ({floor['task']}) took p50 {floor['p50_ms']:.2f}"
            f" / p99 {floor['p99_ms']:.2f} ms, so p99 latencies include scheduler noise."
        )
    checks = data.get("acceptance", {})
    if checks:
        notes.append(
            "Acceptance: "
            + "; ".join(
                f"{name} {c['value']} (target {c['target']}: {'met' if c['met'] else 'not met'})"
                for name, c in checks.items()
            )
            + "."
        )
    return "\n".join(lines + notes)


def model_cpu_tables(data: dict[str, Any]) -> str:
    """DeepEncoder per mode and dtype, then loading and decoding the full model in bf16."""
    m = data["machine"]
    lines = [
        f"{m['cpus']} cores ({m['cpu']}), torch {m['torch']}; random full-size weights;"
        f" load average {data['loadavg_at_start'][0]:.1f} at the start (shared machine).",
        "",
        "| DeepEncoder mode | image | vision tokens | fp32 s/image | fp32 peak RSS |"
        " bf16 s/image | bf16 peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows: dict[str, dict[str, Any]] = {}
    for r in data["encoder"]:
        if "error" not in r:
            rows.setdefault(r["mode"], {})[r["dtype"]] = r
    for mode, by_dtype in rows.items():
        first = next(iter(by_dtype.values()))
        cells = []
        for dtype in ("fp32", "bf16"):
            r = by_dtype.get(dtype)
            cells += (
                [f"{r['s_per_image_median']:.1f}", f"{r['peak_rss_gib']:.2f} GiB"]
                if r
                else ["–"] * 2
            )
        lines.append(
            f"| {mode} | {first['image_size']} | {first['vision_tokens']} | "
            + " | ".join(cells)
            + " |"
        )
    load, dec = data.get("load"), data.get("decoder")
    if load and dec and "error" not in load:
        rounds = dec["bandwidth_rounds"]
        copies = [r["copy_GBps"] for r in rounds]
        mark = {True: "met", False: "**not met**"}
        lines += [
            "",
            "| full model, bf16 | measured | target |",
            "|---|---:|---|",
            f"| from_pretrained peak RSS | {load['peak_rss_gib']:.2f} GiB (anonymous"
            f" {load['peak_rss_anon_gib']:.2f} + file-backed {load['peak_rss_file_gib']:.2f}) |"
            f" <= 8 GiB: {mark[load['meets_target']]} |",
            f"| RSS once every weight is read (mapped weights fault in lazily) |"
            f" {load['rss_after_touching_all_weights_gib']:.2f} GiB | |",
            f"| from_pretrained time (warm page cache) | {load['load_s']:.0f} s | |",
            f"| prefill, {dec['prefill_tokens']} tokens |"
            f" {dec['prefill_tokens_per_s']:.0f} tokens/s | |",
            f"| greedy decode, {m['torch_threads']} threads |"
            f" {dec['decode_tokens_per_s']:.2f} tokens/s"
            f" ({dec['decode_ms_per_token_median']:.0f} ms/token) | |",
            f"| greedy decode after `torch.set_num_threads(1)` in the same process |"
            f" {dec['decode_tokens_per_s_1_thread']:.2f} tokens/s | |",
            f"| bandwidth bound: {dec['active_bytes_per_token'] / 1e9:.2f} GB/token at"
            f" {dec['bandwidth_copy_GBps_median_of_rounds']:.1f} GB/s copy (median;"
            f" {min(copies):.0f}-{max(copies):.0f} over {len(rounds)} rounds) |"
            f" {dec['bound_tokens_per_s']:.2f} tokens/s | |",
            f"| decode / bound (median over rounds, each against its own bound) |"
            f" {100 * dec['fraction_of_bound']:.0f} % | >= 50 %: {mark[dec['meets_target']]} |",
        ]
        first = data.get("decoder_runs", {}).get("first_decode_step_s", {})
        if first:
            lines.append(
                "| first decode step of a process (compiles the decode kernels) |"
                + ",".join(f" {state} cache {s:.1f} s" for state, s in first.items())
                + " | |"
            )
        loaded = data.get("decoder_after_checkpoint_load")
        if loaded:
            fractions = [r["fraction"] for r in loaded["bandwidth_rounds"]]
            lines.append(
                f"| decode on the loaded checkpoint (full run) |"
                f" {loaded['decode_ms_per_token_median']:.0f} ms/token,"
                f" {100 * loaded['fraction_of_bound']:.0f} % of the bound"
                f" (rounds {100 * min(fractions):.0f}-{100 * max(fractions):.0f} %) | |"
            )
        runs = data.get("decoder_runs", {}).get("fraction_of_bound", [])
        if len(runs) > 1:  # --update: the rows above are the median-speed run's
            lines.append(
                f"| decode / bound in {len(runs)} fresh processes |"
                f" {100 * min(runs):.0f}-{100 * max(runs):.0f} % (above: the median-speed run) | |"
            )
    elif load or dec:
        lines += ["", f"Load/decoder run failed: {(load or dec or {}).get('error', 'unknown')}"]
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
    model = _load("model_cpu")
    if model:
        print("### DeepSeek-OCR on CPU\n")
        print(model_cpu_tables(model))
        print()
    store = _load("store_throughput")
    if store:
        print("### Store throughput\n")
        print(store_throughput_table(store))
        print()


if __name__ == "__main__":
    main()
