"""Writer processes for ``test_sqlite_faults.py``, run as
``python -m tests.integration_tests.store.sqlite_workers <command> ...`` from the repository.

- ``segments PATH ACK FIRST``: puts segments of ``PAGES`` 64 KiB pages forever, and after
  each commit appends the segment id to ``ACK`` with one ``write(2)``, so the id is on record
  as soon as the store acknowledged it. Also replaces the segment ``hot`` every round.
- ``turns PATH WRITER COUNT GO``: says ``ready``, waits for the file ``GO``, then appends
  ``COUNT`` turns of its own in small batches, resending some batches as a retry would.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time

from optical_memory.records import Page, Segment, Turn
from optical_memory.store.sqlite import SQLiteStore

PAGES = 6
PAGE_BYTES = 64 * 1024
THREAD = "w"


def payload(tag: str, k: int) -> bytes:
    """The 64 KiB PNG-signed bytes of page ``k`` of ``tag``, reproducible by the checker."""
    seed = hashlib.sha256(f"{tag}:{k}".encode()).digest()
    return (b"\x89PNG\r\n\x1a\n" + seed * (PAGE_BYTES // len(seed)))[:PAGE_BYTES]


def pages_of(tag: str) -> list[Page]:
    return [Page(payload(tag, k), 512, 512, (k, k + 1), "small") for k in range(PAGES)]


def segments(path: str, ack_path: str, first: int) -> None:
    store = SQLiteStore(path)
    # A tiny page cache spills a transaction's pages into the WAL before its commit, so a
    # kill often lands among uncommitted WAL frames, not only in memory.
    store._engine._writer.execute("PRAGMA cache_size = 8")
    ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    n = first
    while True:
        sid = f"seg-{n}"
        pages = pages_of(sid)
        store.put_segment(Segment(THREAD, [sid], "small", [p.id for p in pages], id=sid), pages)
        hot = pages_of(f"hot-{n}")
        store.put_segment(
            Segment(THREAD, ["hot"], "small", [p.id for p in hot], id="hot", metadata={"n": n}),
            hot,
        )
        os.write(ack, f"{sid}\n".encode())
        n += 1


def batches(writer: str, count: int) -> list[list[Turn]]:
    """``count`` turns of ``writer`` cut into batches of 1 to 3."""
    rng = random.Random(writer)
    turns = [
        Turn(
            {"role": "user", "content": f"{writer} {i}", "writer": writer, "seq": i},
            id=f"{writer}-{i:05d}",
        )
        for i in range(count)
    ]
    out, i = [], 0
    while i < count:
        size = rng.randint(1, 3)
        out.append(turns[i : i + size])
        i += size
    return out


def append_all(store: SQLiteStore, writer: str, count: int) -> int:
    """Append the writer's batches, resending every fourth one; returns turns added."""
    added = 0
    for number, batch in enumerate(batches(writer, count)):
        added += store.append_turns(THREAD, batch)
        if number % 4 == 3 and store.append_turns(THREAD, batch) != 0:
            raise AssertionError(f"{writer}: a resent batch was appended again")
    return added


def turns(path: str, writer: str, count: int, go: str) -> None:
    store = SQLiteStore(path)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    print(append_all(store, writer, count), flush=True)
    store.close()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "segments":
        segments(args[0], args[1], int(args[2]))
    elif command == "turns":
        turns(args[0], args[1], int(args[2]), args[3])
    else:
        raise SystemExit(f"unknown command {command!r}")
