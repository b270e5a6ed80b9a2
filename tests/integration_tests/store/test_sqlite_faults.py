"""SQLiteStore under faults: a writer process killed with SIGKILL mid-write, and threads and
processes appending to one thread at once. Real processes, a real file, no mocks."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from optical_memory.store.sqlite import SQLiteStore
from tests.integration_tests.store import sqlite_workers
from tests.integration_tests.store.sqlite_workers import PAGES, THREAD, append_all, payload

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", sqlite_workers.__name__, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def acknowledged(ack: Path) -> list[str]:
    if not ack.exists():
        return []
    return [line for line in ack.read_text().split("\n") if line]


def wait_for_acks(ack: Path, count: int, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while len(acknowledged(ack)) < count:
        assert child.poll() is None, "the writer died on its own"
        assert time.monotonic() < deadline, "the writer acknowledged nothing in 20 s"
        time.sleep(0.005)


def check_file(path: Path, acked: list[str]) -> int:
    """Integrity, no half-written segment, every acknowledged one there; returns segments."""
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    with SQLiteStore(path) as store:
        listed = {s.id: s for s in store.list_segments(THREAD)}
        for sid, segment in listed.items():
            tag = sid if sid != "hot" else f"hot-{segment.metadata['n']}"
            pages = store.get_pages(THREAD, sid)
            assert len(pages) == PAGES == len(segment.page_ids), sid
            assert [p.png for p in pages] == [payload(tag, k) for k in range(PAGES)], sid
        missing = set(acked) - set(listed)
        assert not missing, f"acknowledged but lost: {sorted(missing)}"
        # Besides the acknowledged ones, at most one committed-but-unacknowledged per kill.
        return len(listed) - 1


def torn_wal(path: Path) -> bool:
    """Whether the WAL ends in frames of a transaction that never committed."""
    wal = path.with_name(path.name + "-wal").read_bytes()
    if len(wal) < 32:
        return False
    page_size, salt = struct.unpack(">I", wal[8:12])[0], wal[16:24]
    offset, tail = 32, 0
    # Frames of the current WAL generation carry its salt; a commit frame records a db size.
    while offset + 24 + page_size <= len(wal) and wal[offset + 8 : offset + 16] == salt:
        tail = 0 if struct.unpack(">I", wal[offset + 4 : offset + 8])[0] else tail + 1
        offset += 24 + page_size
    return tail > 0


def test_sigkill_mid_write_leaves_no_half_segment_and_loses_no_ack(tmp_path: Path) -> None:
    path, ack = tmp_path / "x.db", tmp_path / "acks"
    SQLiteStore(path).close()
    rng = random.Random(7)
    kills = torn = 0
    # At least 5 kills; go on (up to 15) until one has hit the WAL mid-transaction, the
    # hardest case (the others land in memory before a commit, or between transactions).
    while kills < 5 or (not torn and kills < 15):
        child = worker("segments", str(path), str(ack), str(kills * 100_000))
        wait_for_acks(ack, len(acknowledged(ack)) + 1, child)
        # A round of two segment puts takes a few ms, so a random moment often hits one.
        time.sleep(rng.uniform(0.0, 0.08))
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
        kills += 1
        torn += torn_wal(path)
        visible = check_file(path, acknowledged(ack))
        assert visible <= len(acknowledged(ack)) + kills


def test_threads_and_processes_append_to_one_thread_without_loss_or_reorder(
    tmp_path: Path,
) -> None:
    path, go = tmp_path / "x.db", tmp_path / "go"
    count = 60
    shared = SQLiteStore(path, timeout=30)
    children = [worker("turns", str(path), f"proc{i}", str(count), str(go)) for i in range(2)]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"

    added: dict[str, int] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(9)

    def run(writer: str, own_store: bool) -> None:
        store = SQLiteStore(path) if own_store else shared
        try:
            start.wait()
            added[writer] = append_all(store, writer, count)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            if own_store:
                store.close()

    threads = [threading.Thread(target=run, args=(f"thread{i}", i % 2 == 0)) for i in range(8)]
    for thread in threads:
        thread.start()
    start.wait()
    go.touch()
    for thread in threads:
        thread.join(timeout=60)
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        added[f"proc{children.index(child)}"] = int(out.strip())
    assert not errors, errors

    writers = [f"thread{i}" for i in range(8)] + ["proc0", "proc1"]
    assert added == {w: count for w in writers}
    turns = shared.get_turns(THREAD)
    assert len(turns) == shared.count_turns(THREAD) == count * len(writers)
    assert len({t.id for t in turns}) == len(turns)
    for writer in writers:
        seqs = [t.message["seq"] for t in turns if t.message["writer"] == writer]
        assert seqs == list(range(count)), writer
    # Each batch landed in one piece: its turns sit next to each other.
    position = {t.id: i for i, t in enumerate(turns)}
    for writer in writers:
        for batch in sqlite_workers.batches(writer, count):
            spots = [position[t.id] for t in batch]
            assert spots == list(range(spots[0], spots[0] + len(batch))), writer
    shared.close()
    os.remove(go)
