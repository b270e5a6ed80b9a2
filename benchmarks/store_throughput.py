"""Store throughput: turn appends and 64 KiB page put/get, SQLiteStore and RedisStore, with
raw redis-py pipelines of the same bytes as this machine's limit, in one run.

Measured per store: single-turn appends (ops/s, p50/p99 latency), appends in batches of
``--batch`` turns (turns/s), and page put (``put_segment`` of a one-page segment) and
``get_page`` of 64 KiB pages (ops/s, p50/p99). Raw redis-py, on the same server: pipelined
``SET``/``GET`` of the same 64 KiB bytes and pipelined ``RPUSH`` of turn-sized payloads (the
size of one encoded turn), plus unpipelined ``RPUSH``/``SET``/``GET`` latency. The script
starts its own ``redis-server`` on a free loopback port (no persistence) and stops it at
the end; the SQLite file lives in a temporary directory. Prints JSON to stdout.

Usage: python benchmarks/store_throughput.py [--ops N] [--batch N] > results/store_throughput.json
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from optical_memory.records import Page, Segment, Turn
from optical_memory.store import RedisStore, SQLiteStore, Store
from optical_memory.store.codec import encode

PAGE_BYTES = 64 * 1024
TURN_CHARS = 500  # a typical chat message
TARGETS = {
    "redis_batch_append_fraction_of_raw_min": 0.5,
    "redis_single_append_p99_ms_max": 2.0,
    "sqlite_single_append_p99_ms_max": 5.0,
}


def percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, round(q * (len(sorted_ms) - 1)))]


def timed(call: Callable[[Any], object], inputs: list[Any], units: int = 1) -> dict[str, Any]:
    """Call ``call(x)`` for each input; throughput in units/s and latency percentiles."""
    latencies = []
    gc.collect()
    start = time.perf_counter()
    for x in inputs:
        t0 = time.perf_counter()
        call(x)
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "per_s": round(len(latencies) * units / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "calls": len(latencies),
    }


def turn(i: int) -> Turn:
    text = (f"message {i}: " + "lorem ipsum dolor sit amet " * 40)[:TURN_CHARS]
    return Turn({"role": "user", "content": text}, id=f"turn-{i:08d}-{uuid.uuid4().hex[:8]}")


def page(tag: str) -> Page:
    seed = hashlib.sha256(tag.encode()).digest()
    data = (b"\x89PNG\r\n\x1a\n" + seed * (PAGE_BYTES // len(seed)))[:PAGE_BYTES]
    return Page(data, 640, 640, (0, 1000), "small")


def bench_store(store: Store, ops: int, batch: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    for i in range(20):  # warm up connections, statements and caches
        store.append_turns(f"warm-{run}", [turn(i)])
    single = timed(
        lambda t: store.append_turns(f"single-{run}", [t]), [turn(i) for i in range(ops)]
    )
    batches = [[turn(j) for j in range(k * batch, (k + 1) * batch)] for k in range(ops // 10)]
    batched = timed(lambda b: store.append_turns(f"batch-{run}", b), batches, units=batch)
    pages = [page(f"{run}-{i}") for i in range(ops // 4)]
    put = timed(
        lambda p: store.put_segment(Segment(f"pages-{run}", ["x"], "small", [p.id], id=p.id), [p]),
        pages,
    )
    get = timed(lambda p: store.get_page(f"pages-{run}", p.id), pages + pages)
    return {
        "single_append": single,
        "batch_append": {**batched, "batch": batch, "turns_per_s": batched["per_s"]},
        "page_put_64k": put,
        "page_get_64k": get,
    }


def bench_raw_redis(client: redis.Redis, ops: int, batch: int, turn_bytes: int) -> dict[str, Any]:
    blob = page("raw").png
    payload = os.urandom(turn_bytes)
    key = f"raw:{uuid.uuid4().hex[:8]}"

    def pipelined(command: Callable[[Any, int], object]) -> Callable[[int], object]:
        def call(start: int) -> object:
            pipe = client.pipeline(transaction=False)
            for i in range(start, start + batch):
                command(pipe, i)
            return pipe.execute()

        return call

    rounds = [k * batch for k in range(ops // 10)]
    rpush = timed(pipelined(lambda p, i: p.rpush(f"{key}:list", payload)), rounds, units=batch)
    sets = timed(pipelined(lambda p, i: p.set(f"{key}:{i}", blob)), rounds[:20], units=batch)
    gets = timed(pipelined(lambda p, i: p.get(f"{key}:{i}")), rounds[:20], units=batch)
    single_rpush = timed(lambda i: client.rpush(f"{key}:single", payload), list(range(ops)))
    singles = list(range(ops // 4))
    single_set = timed(lambda i: client.set(f"{key}:s{i}", blob), singles)
    single_get = timed(lambda i: client.get(f"{key}:s{i}"), singles + singles)
    return {
        "pipeline_batch": batch,
        "turn_payload_bytes": turn_bytes,
        "pipelined_rpush": {**rpush, "items_per_s": rpush["per_s"]},
        "pipelined_set_64k": sets,
        "pipelined_get_64k": gets,
        "single_rpush": single_rpush,
        "single_set_64k": single_set,
        "single_get_64k": single_get,
    }


def noise_floor(ops: int) -> dict[str, Any]:
    """Latency of a fixed CPU-only task (no IO): what this machine's scheduler adds to p99."""
    blob = page("noise").png
    stats = timed(lambda _: [hashlib.sha256(blob).digest() for _ in range(4)], list(range(ops)))
    return {**stats, "task": "4 x sha256 of 64 KiB, no IO"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(directory: Path) -> Iterator[tuple[str, str]]:
    """A throwaway ``redis-server`` without persistence; yields its URL and version."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt install redis-server)")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    process = subprocess.Popen(
        [*args, "no", "--dir", str(directory), "--protected-mode", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        version = str(client.info("server")["redis_version"])
        client.close()
        yield url, version
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=2000, help="single appends per store")
    parser.add_argument("--batch", type=int, default=100, help="turns per batch append")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite file goes")
    args = parser.parse_args()

    turn_bytes = len(encode(turn(0)))
    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {"cpu_noise_floor": noise_floor(args.ops)}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        sqlite_store = SQLiteStore(Path(tmp) / "bench.db")
        results["sqlite"] = bench_store(sqlite_store, args.ops, args.batch)
        sqlite_store.close()
        with redis_server(Path(tmp)) as (url, redis_version):
            redis_store = RedisStore(url, tenant=f"bench-{uuid.uuid4().hex[:8]}")
            results["redis"] = bench_store(redis_store, args.ops, args.batch)
            redis_store.close()
            client = redis.Redis.from_url(url)
            results["raw_redis"] = bench_raw_redis(client, args.ops, args.batch, turn_bytes)
            client.close()

    raw = results["raw_redis"]
    fraction = results["redis"]["batch_append"]["turns_per_s"] / raw["pipelined_rpush"]["per_s"]
    results["redis"]["batch_append_fraction_of_raw_rpush"] = round(fraction, 3)
    acceptance = {
        "redis_batch_append_fraction_of_raw": {
            "value": round(fraction, 3),
            "target": f">= {TARGETS['redis_batch_append_fraction_of_raw_min']}",
            "met": fraction >= TARGETS["redis_batch_append_fraction_of_raw_min"],
        },
        "redis_single_append_p99_ms": {
            "value": results["redis"]["single_append"]["p99_ms"],
            "target": f"< {TARGETS['redis_single_append_p99_ms_max']}",
            "met": results["redis"]["single_append"]["p99_ms"]
            < TARGETS["redis_single_append_p99_ms_max"],
        },
        "sqlite_single_append_p99_ms": {
            "value": results["sqlite"]["single_append"]["p99_ms"],
            "target": f"< {TARGETS['sqlite_single_append_p99_ms_max']}",
            "met": results["sqlite"]["single_append"]["p99_ms"]
            < TARGETS["sqlite_single_append_p99_ms_max"],
        },
    }
    output = {
        "benchmark": "store_throughput",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version,
            "redis_server": redis_version,
            "redis_py": redis.__version__,
            # Other work on the machine shows up in p99 first; see cpu_noise_floor.
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "settings": {
            "single_appends": args.ops,
            "batch": args.batch,
            "turn_chars": TURN_CHARS,
            "encoded_turn_bytes": turn_bytes,
            "page_bytes": PAGE_BYTES,
            "sqlite": "WAL, synchronous=NORMAL, file on local disk (temporary directory)",
            "redis": "loopback, --save '' --appendonly no",
        },
        "results": results,
        "acceptance": acceptance,
    }
    json.dump(output, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
