"""Two processes compacting one thread, and a process killed mid-compaction."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from optical_memory import OpticalMemory

from .conftest import SMALL
from .conversation import conversation

ROOT = Path(__file__).resolve().parents[3]


def worker(url: str, tenant: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration_tests.memory.compact_worker", url, tenant, "t"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_chain(memory: OpticalMemory) -> None:
    """Per style, segments tile the compacted turns with no gap, overlap or duplicate."""
    by_style: dict[str, list[tuple[int, int]]] = {}
    for segment in memory.store.list_segments("t"):
        meta = segment.metadata
        by_style.setdefault(meta["style"], []).append((meta["start"], meta["end"]))
    assert by_style
    chains = {style: sorted(ranges) for style, ranges in by_style.items()}
    for ranges in chains.values():
        assert ranges[0][0] == 0
        for (_, end), (start, _) in itertools.pairwise(ranges):
            assert end == start
    assert len({tuple(r) for r in chains.values()}) == 1  # every style cut alike


def test_two_processes_compacting_at_once_write_the_same_segments(
    store_url: str, unique_tenant: str
) -> None:
    with OpticalMemory(store_url, tenant=unique_tenant, policy=SMALL, auto_compact=False) as m:
        m.add("t", conversation(150))
        workers = [worker(store_url, unique_tenant) for _ in range(2)]
        for process in workers:
            _out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err[-2000:]
        check_chain(m)
        before = {s.id for s in m.store.list_segments("t")}
        m.compact("t")  # idempotent: nothing new, nothing changed
        assert {s.id for s in m.store.list_segments("t")} == before
        stored = m.store.get_turns("t")
        assert [t.message for t in stored] == conversation(150)


def test_a_process_killed_mid_compaction_loses_nothing(store_url: str, unique_tenant: str) -> None:
    with OpticalMemory(store_url, tenant=unique_tenant, policy=SMALL, auto_compact=False) as m:
        m.add("t", conversation(300))
        process = worker(store_url, unique_tenant)
        deadline = time.monotonic() + 60
        while not m.store.list_segments("t") and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        partial = len(m.store.list_segments("t"))
        m.compact("t")  # completes what the killed process started
        check_chain(m)
        assert len(m.store.list_segments("t")) >= partial
        assert [t.message for t in m.store.get_turns("t")] == conversation(300)
        context = m.context("t", reader="deepseek-ocr")
        shown = [tid for part in context.parts for tid in part.turn_ids]
        assert list(dict.fromkeys(shown)) == [t.id for t in m.store.get_turns("t")]
