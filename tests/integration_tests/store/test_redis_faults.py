"""Crash recovery: Redis (append-only, fsync on every write) is SIGKILLed and restarted on the
same port and directory in the middle of a write loop.

Every write the store acknowledged must be there afterwards, exactly once and in order, and
the same store object must carry on by itself: ``StoreUnavailable`` during the outage, then
success, without being recreated.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from optical_memory.errors import StoreUnavailable
from optical_memory.records import Page, Segment, Turn
from optical_memory.store.redis import AsyncRedisStore, RedisStore
from tests.integration_tests.store.records_for_tests import segment, turn
from tests.integration_tests.store.redis_servers import RedisServer

THREAD = "crash {test}: 🦜"
KILLS = 2
OUTAGE = 0.3  # seconds the server stays down
WRITES_BETWEEN_KILLS = 40
# A small budget, so the outage outlasts it and the writer sees StoreUnavailable.
OPTIONS = {
    "retries": 2,
    "backoff_base": 0.01,
    "backoff_cap": 0.05,
    "socket_timeout": 1.0,
    "socket_connect_timeout": 0.5,
}


@dataclasses.dataclass
class Log:
    """What the writer attempted and what the store acknowledged."""

    attempted: list[str] = dataclasses.field(default_factory=list)
    acked_turns: list[str] = dataclasses.field(default_factory=list)
    acked_segments: dict[str, tuple[Segment, list[Page]]] = dataclasses.field(default_factory=dict)
    unavailable: int = 0
    other_errors: list[BaseException] = dataclasses.field(default_factory=list)

    def acked(self) -> int:
        return len(self.acked_turns) + len(self.acked_segments)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, appendonly=True).start()
    yield server
    server.stop()


def next_write(n: int) -> tuple[Turn, tuple[Segment, list[Page]] | None]:
    """The n-th write: a turn, plus a segment every 4th time (a write is retried as is)."""
    item = turn(f"turn {n}")
    return item, segment(THREAD, n_pages=2) if n % 4 == 0 else None


def crash_and_restart(server: RedisServer, log: Log) -> None:
    """Kill and restart the server ``KILLS`` times while the writer runs."""
    for _ in range(KILLS):
        wait_for_acks(log, WRITES_BETWEEN_KILLS)
        before = log.acked()
        server.kill()
        time.sleep(OUTAGE)
        server.start()
        # The writer must recover by itself and go on acknowledging.
        wait_for_acks(log, before + WRITES_BETWEEN_KILLS)


def wait_for_acks(log: Log, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while log.acked() < count and not log.other_errors:
        if time.monotonic() > deadline:
            raise AssertionError("the writer made no progress")
        time.sleep(0.005)


def check_everything_acknowledged_is_there(store: RedisStore, log: Log) -> None:
    assert log.other_errors == []
    assert log.unavailable >= KILLS  # the outages were seen, as StoreUnavailable
    stored = [t.id for t in store.get_turns(THREAD)]
    assert len(stored) == len(set(stored)), "a retried append was duplicated"
    # Acknowledged turns all there, in order; at most the last, unacknowledged one extra.
    assert stored == log.attempted[: len(stored)]
    assert stored[: len(log.acked_turns)] == log.acked_turns
    assert len(stored) - len(log.acked_turns) <= 1
    for record, pages in log.acked_segments.values():
        assert store.get_segment(THREAD, record.id) == record
        assert store.get_pages(THREAD, record.id) == pages


def test_acknowledged_writes_survive_sigkill(server: RedisServer, unique_tenant: str) -> None:
    store = RedisStore(server.url, tenant=unique_tenant, **OPTIONS)  # type: ignore[arg-type]
    log = Log()
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            item, seg = next_write(n)
            log.attempted.append(item.id)
            while not stop.is_set():  # the same write again until acknowledged
                try:
                    if not log.acked_turns or log.acked_turns[-1] != item.id:
                        store.append_turns(THREAD, [item])
                        log.acked_turns.append(item.id)
                    if seg is not None:
                        store.put_segment(*seg)
                        log.acked_segments[seg[0].id] = seg
                    break
                except StoreUnavailable:
                    log.unavailable += 1
                    time.sleep(0.01)
                except BaseException as exc:
                    log.other_errors.append(exc)
                    return
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        crash_and_restart(server, log)
    finally:
        stop.set()
        thread.join(timeout=10)
    # Read back through a fresh store, as another process would.
    with RedisStore(server.url, tenant=unique_tenant) as fresh:
        check_everything_acknowledged_is_there(fresh, log)
    store.close()


async def test_acknowledged_writes_survive_sigkill_async(
    server: RedisServer, unique_tenant: str
) -> None:
    store = AsyncRedisStore(server.url, tenant=unique_tenant, **OPTIONS)  # type: ignore[arg-type]
    log = Log()
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            item, seg = next_write(n)
            log.attempted.append(item.id)
            while not stop.is_set():
                try:
                    if not log.acked_turns or log.acked_turns[-1] != item.id:
                        await store.append_turns(THREAD, [item])
                        log.acked_turns.append(item.id)
                    if seg is not None:
                        await store.put_segment(*seg)
                        log.acked_segments[seg[0].id] = seg
                    break
                except StoreUnavailable:
                    log.unavailable += 1
                    await asyncio.sleep(0.01)
                except BaseException as exc:
                    log.other_errors.append(exc)
                    return
            n += 1

    task = asyncio.create_task(writer())
    try:
        # The killer runs in a thread so the event loop keeps serving the writer.
        await asyncio.to_thread(crash_and_restart, server, log)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    await store.aclose()
    with RedisStore(server.url, tenant=unique_tenant) as fresh:
        check_everything_acknowledged_is_there(fresh, log)
