"""SQLiteStore specifics on real files: schema and migrations, damaged files and rows, bad
paths, closing, retention and purging, shared pages, locking. The behaviour every backend
shares is in ``test_conformance.py``."""

from __future__ import annotations

import inspect
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from optical_memory.errors import (
    CorruptRecord,
    InvalidRecordError,
    InvalidSettingError,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from optical_memory.records import Page, Segment, Turn, VisionTokens
from optical_memory.store import AsyncStore, Store
from optical_memory.store.sqlite import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AsyncSQLiteStore,
    SQLiteStore,
    migrate,
)

TABLES = ("turns", "segments", "segment_pages", "pages", "vision_tokens")


def png(tag: str, size: int = 256) -> bytes:
    """PNG-signed bytes unique to ``tag`` (the store only checks the signature)."""
    body = (tag.encode() * (size // max(1, len(tag)) + 1))[: size - 8]
    return b"\x89PNG\r\n\x1a\n" + body


def page(tag: str, tier: str = "small") -> Page:
    return Page(png(tag), width=640, height=640, span=(0, 10), tier=tier)


def segment(thread: str, pages: list[Page], tier: str = "small", sid: str = "") -> Segment:
    return Segment(
        thread=thread, turn_ids=["a"], tier=tier, page_ids=[p.id for p in pages], id=sid or "s"
    )


def tokens(model: str = "ocr-v1") -> VisionTokens:
    return VisionTokens(b"\x00\x01" * 8, "float16", (2, 4), model)


def turn(text: str, tid: str = "") -> Turn:
    return Turn({"role": "user", "content": text}, id=tid)


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "x.db")
    yield s
    s.close()


# Twins


def test_twins_satisfy_the_protocols_with_matching_signatures(tmp_path: Path) -> None:
    sync, asyncs = SQLiteStore(tmp_path / "a.db"), AsyncSQLiteStore(tmp_path / "b.db")
    assert isinstance(sync, Store)
    assert isinstance(asyncs, AsyncStore)
    names = {n for n in dir(SQLiteStore) if not n.startswith("_")} - {"close"}
    assert names == {n for n in dir(AsyncSQLiteStore) if not n.startswith("_")} - {"aclose"}
    for name in sorted(names - {"tenant", "path", "with_tenant"}):
        sync_method, async_method = getattr(SQLiteStore, name), getattr(AsyncSQLiteStore, name)
        sync_signature, async_signature = (
            inspect.signature(sync_method),
            inspect.signature(async_method),
        )
        if name.startswith("iter_"):  # an async generator: yields what the sync one does
            assert inspect.isasyncgenfunction(async_method), name
            assert async_signature.return_annotation == f"Async{sync_signature.return_annotation}"
            async_signature = async_signature.replace(
                return_annotation=sync_signature.return_annotation
            )
        else:
            assert inspect.iscoroutinefunction(async_method), name
        assert sync_signature == async_signature, name
    for protocol in (Store, AsyncStore):
        for name in dir(protocol):
            if not name.startswith("_") and name not in ("close", "aclose"):
                assert name in names, name
    assert inspect.signature(SQLiteStore.__init__) == inspect.signature(AsyncSQLiteStore.__init__)
    sync.close()


# Schema and migrations


def test_new_file_has_wal_schema_version_and_tenant_on_every_table(store: SQLiteStore) -> None:
    conn = raw(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    for table in (*TABLES, "blobs"):
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        assert columns[0] == "tenant", table
    conn.close()


def test_file_from_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    SQLiteStore(path).close()
    conn = raw(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(StoreError, match=r"version 7.*newer optical-memory") as info:
        SQLiteStore(path)
    assert str(path) in str(info.value)
    conn = raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    conn.close()


def test_migrations_run_in_order_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    SQLiteStore(path).append_turns("t", [turn("kept", "k")])
    ran: list[int] = []

    def v2(conn: sqlite3.Connection) -> None:
        ran.append(2)
        conn.execute("CREATE TABLE v2_table (x)")

    def v3(conn: sqlite3.Connection) -> None:
        ran.append(3)
        conn.execute("CREATE TABLE v3_table (x)")

    def broken_v4(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE v4_table (x)")
        raise RuntimeError("step 4 fails halfway")

    conn = raw(path)
    newest = SCHEMA_VERSION + 2
    assert migrate(conn, (*MIGRATIONS, v2, v3), name=str(path)) == newest
    assert ran == [2, 3]
    with pytest.raises(RuntimeError):
        migrate(conn, (*MIGRATIONS, v2, v3, broken_v4), name=str(path))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == newest
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"v2_table", "v3_table"} <= tables
    assert "v4_table" not in tables
    conn.close()
    # This version of the code now sees a newer file, and refuses it.
    with pytest.raises(StoreError, match=f"version {newest}"):
        SQLiteStore(path)


def test_empty_file_is_migrated_but_foreign_database_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with SQLiteStore(empty) as store:
        assert store.append_turns("t", [turn("hi")]) == 1
    foreign = tmp_path / "foreign.db"
    conn = raw(foreign)
    conn.execute("CREATE TABLE invoices (n)")
    conn.close()
    with pytest.raises(StoreError, match="another application"):
        SQLiteStore(foreign)
    conn = raw(foreign)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["invoices"]
    conn.close()


def test_a_file_that_is_not_a_database_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the pages you are looking for" * 100)
    with pytest.raises(StoreError, match="not an SQLite database") as info:
        SQLiteStore(path)
    assert isinstance(info.value, CorruptRecord)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


# Damaged rows


def flip_byte(path: Path, table: str, where: str, offset: int = 20) -> None:
    conn = raw(path)
    (value,) = conn.execute(f"SELECT value FROM {table} WHERE {where}").fetchone()
    value = bytearray(value)
    value[offset] ^= 0x40
    conn.execute(f"UPDATE {table} SET value = ? WHERE {where}", (bytes(value),))
    conn.close()


def test_corrupted_rows_raise_corrupt_record_naming_the_key(store: SQLiteStore) -> None:
    store.append_turns("chat", [turn("one", "t1"), turn("two", "t2")])
    pages = [page("p1"), page("p2")]
    store.put_segment(segment("chat", pages, sid="seg"), pages)
    flip_byte(store.path, "turns", "id = CAST('t1' AS BLOB)")
    flip_byte(store.path, "pages", f"page_id = CAST('{pages[1].id}' AS BLOB)", offset=300)

    with pytest.raises(CorruptRecord) as info:
        store.get_turn("chat", "t1")
    message = str(info.value)
    assert "tenant 'default'" in message and "thread 'chat'" in message and "'t1'" in message
    with pytest.raises(CorruptRecord, match="checksum"):
        store.get_turns("chat")
    with pytest.raises(CorruptRecord, match=pages[1].id):
        store.get_pages("chat", "seg")
    with pytest.raises(CorruptRecord, match=pages[1].id):
        store.get_page("chat", pages[1].id)
    # The rows around it are intact.
    assert store.get_turn("chat", "t2").message["content"] == "two"
    assert store.get_page("chat", pages[0].id) == pages[0]


def test_missing_page_row_is_reported_not_skipped(store: SQLiteStore) -> None:
    pages = [page("p1"), page("p2")]
    store.put_segment(segment("chat", pages, sid="seg"), pages)
    conn = raw(store.path)
    conn.execute("DELETE FROM pages WHERE page_id = ?", (pages[0].id.encode(),))
    conn.close()
    with pytest.raises(CorruptRecord, match="listed by segment 'seg' but missing"):
        store.get_pages("chat", "seg")


# Bad paths and settings, closing


def test_bad_paths_and_settings_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match=r"/nonexistent/dir does not exist"):
        SQLiteStore("/nonexistent/dir/x.db")
    with pytest.raises(StoreUnavailable, match="is a directory"):
        SQLiteStore(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreUnavailable, match="file is not a directory"):
        SQLiteStore(tmp_path / "file" / "x.db")
    with pytest.raises(InvalidSettingError, match="memory"):
        SQLiteStore(":memory:")
    with pytest.raises(InvalidSettingError, match="timeout"):
        SQLiteStore(tmp_path / "x.db", timeout=0)
    with pytest.raises(InvalidSettingError, match="path"):
        SQLiteStore(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="retention"):
        SQLiteStore(tmp_path / "x.db", retention={"tiny": -1})
    with pytest.raises(InvalidRecordError, match="tenant"):
        SQLiteStore(tmp_path / "x.db", tenant="")
    assert not (tmp_path / "x.db").exists()


def test_unwritable_directory_is_unavailable(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # Root ignores permission bits; /proc refuses new files to everyone.
        with pytest.raises(StoreUnavailable, match="/proc"):
            SQLiteStore(Path("/proc") / "optical-memory-test.db")
        return
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreUnavailable, match=str(locked)):
            SQLiteStore(locked / "x.db")
    finally:
        locked.chmod(0o700)


def test_closed_store_and_its_views_raise_store_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    other = store.with_tenant("other")
    store.append_turns("t", [turn("hi")])
    store.close()
    store.close()  # idempotent
    for call in (
        lambda: store.append_turns("t", [turn("again")]),
        lambda: store.get_turns("t"),
        lambda: store.list_threads(),
        lambda: store.purge_expired(),
        lambda: other.count_turns("t"),
    ):
        with pytest.raises(StoreError, match=r"x\.db is closed"):
            call()
    with SQLiteStore(tmp_path / "x.db") as again:
        assert again.count_turns("t") == 1


async def test_async_twin_round_trip_and_aclose(tmp_path: Path) -> None:
    store = AsyncSQLiteStore(tmp_path / "x.db", tenant="acme")
    assert await store.append_turns("t", [turn("hi", "a"), turn("there", "b")]) == 2
    assert [t.id for t in await store.get_turns("t", -1)] == ["b"]
    pages = [page("p1")]
    await store.put_segment(segment("t", pages), pages)
    await store.put_vision_tokens("t", pages[0].id, tokens())
    assert await store.get_vision_tokens("t", pages[0].id, "ocr-v1") == tokens()
    assert await store.list_threads() == ["t"]
    assert await store.with_tenant("other").list_threads() == []
    await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.count_turns("t")
    with SQLiteStore(tmp_path / "x.db", tenant="acme") as sync:
        assert sync.get_pages("t", "s") == pages


# Retention and purging


def count_rows(path: Path) -> dict[str, int]:
    conn = raw(path)
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    conn.close()
    return counts


def test_expired_segments_are_hidden_then_purged(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db", retention={"tiny": 0.3})
    old, kept = [page("old", "tiny")], [page("kept", "base")]
    store.put_segment(segment("brief", old, tier="tiny", sid="old"), old)
    store.put_vision_tokens("brief", old[0].id, tokens())
    store.put_segment(segment("long", kept, tier="base", sid="kept"), kept)
    assert store.list_threads() == ["brief", "long"]
    time.sleep(0.4)

    with pytest.raises(NotFound):
        store.get_segment("brief", "old")
    with pytest.raises(NotFound):
        store.get_pages("brief", "old")
    with pytest.raises(NotFound):
        store.get_page("brief", old[0].id)
    with pytest.raises(NotFound):
        store.replace_segment(segment("brief", old, tier="tiny", sid="old"), old)
    assert store.get_vision_tokens("brief", old[0].id, "ocr-v1") is None
    assert store.list_segments("brief") == []
    assert store.list_threads() == ["long"]
    assert count_rows(store.path)["segments"] == 2  # hidden, not yet deleted

    assert store.purge_expired() == 1
    assert store.purge_expired() == 0
    assert count_rows(store.path) == {
        "turns": 0,
        "segments": 1,
        "segment_pages": 1,
        "pages": 1,
        "vision_tokens": 0,
    }
    assert store.get_pages("long", "kept") == kept
    store.close()


def test_expired_rows_are_purged_by_later_writes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db", retention={"tiny": 0.2})
    other = store.with_tenant("someone-else")
    old = [page("old", "tiny")]
    other.put_segment(segment("brief", old, tier="tiny", sid="old"), old)
    time.sleep(0.3)
    fresh = [page("fresh", "base")]
    store.put_segment(segment("t", fresh, tier="base", sid="fresh"), fresh)
    assert count_rows(store.path)["segments"] == 1
    assert count_rows(store.path)["pages"] == 1
    store.close()


def test_re_putting_a_segment_restarts_its_retention(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db", retention={"tiny": 0.5})
    pages = [page("p", "tiny")]
    store.put_segment(segment("t", pages, tier="tiny"), pages)
    time.sleep(0.3)
    store.replace_segment(segment("t", pages, tier="tiny"), pages)
    time.sleep(0.3)
    assert store.get_pages("t", "s") == pages
    store.close()


# Pages shared by id


def test_a_page_listed_by_two_segments_lives_until_both_let_go(store: SQLiteStore) -> None:
    shared, own = page("shared"), page("own")
    store.put_segment(segment("t", [shared, own], sid="a"), [shared, own])
    store.put_segment(segment("t", [shared], sid="b"), [shared])
    store.put_vision_tokens("t", shared.id, tokens())

    store.delete_segment("t", "a")
    assert store.get_pages("t", "b") == [shared]
    assert store.get_vision_tokens("t", shared.id, "ocr-v1") == tokens()
    with pytest.raises(NotFound):
        store.get_page("t", own.id)

    replacement = page("replacement")
    store.replace_segment(segment("t", [replacement], sid="b"), [replacement])
    with pytest.raises(NotFound):
        store.get_page("t", shared.id)
    assert count_rows(store.path) == {
        "turns": 0,
        "segments": 1,
        "segment_pages": 1,
        "pages": 1,
        "vision_tokens": 0,
    }


def test_new_png_under_an_old_page_id_drops_its_cached_tokens(store: SQLiteStore) -> None:
    first = Page(png("one"), 10, 10, (0, 1), "small", id="fixed")
    store.put_segment(segment("t", [first]), [first])
    store.put_vision_tokens("t", "fixed", tokens())
    store.put_segment(segment("t", [first]), [first])  # same bytes: tokens stay
    assert store.get_vision_tokens("t", "fixed", "ocr-v1") is not None
    second = Page(png("two"), 10, 10, (0, 1), "small", id="fixed")
    store.put_segment(segment("t", [second]), [second])
    assert store.get_vision_tokens("t", "fixed", "ocr-v1") is None
    assert store.get_page("t", "fixed") == second


def test_tokens_of_another_model_are_a_miss_and_the_last_put_wins(store: SQLiteStore) -> None:
    p = page("p")
    store.put_segment(segment("t", [p]), [p])
    with pytest.raises(NotFound):
        store.put_vision_tokens("t", "no-such-page", tokens())
    store.put_vision_tokens("t", p.id, tokens("model-a"))
    assert store.get_vision_tokens("t", p.id, "model-b") is None
    store.put_vision_tokens("t", p.id, tokens("model-b"))
    assert store.get_vision_tokens("t", p.id, "model-a") is None
    assert store.get_vision_tokens("t", p.id, "model-b") == tokens("model-b")


# Names, tenants, locks


def test_any_unicode_name_round_trips_including_lone_surrogates(store: SQLiteStore) -> None:
    names = ["plain", "naïve 对话 🚀", "\ud800lone", "quote ' \" ; DROP TABLE turns"]
    for name in names:
        view = store.with_tenant(name)
        view.append_turns(name, [turn(name, tid=name)])
        assert view.list_threads() == [name]
        assert view.get_turn(name, name).message["content"] == name
    assert store.list_threads() == []


def test_tenants_share_the_file_but_not_the_rows(store: SQLiteStore) -> None:
    a, b = store.with_tenant("a"), store.with_tenant("b")
    pa = page("a-page")
    a.append_turns("t", [turn("secret", "x")])
    a.put_segment(segment("t", [pa]), [pa])
    assert b.count_turns("t") == 0
    assert b.list_threads() == []
    with pytest.raises(NotFound):
        b.get_turn("t", "x")
    with pytest.raises(NotFound):
        b.get_page("t", pa.id)
    with pytest.raises(NotFound):
        b.replace_segment(segment("t", [pa]), [pa])
    b.delete_thread("t")
    b.delete_segment("t", "s")
    assert a.get_pages("t", "s") == [pa]
    assert a.tenant == "a" and b.tenant == "b"


def test_a_held_write_lock_times_out_as_unavailable_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SQLiteStore(path, timeout=0.2)
    store.append_turns("t", [turn("before", "1")])
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"x\.db.*locked") as info:
        store.append_turns("t", [turn("during", "2")])
    assert 0.15 < time.monotonic() - started < 5
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    # Readers are not blocked by a writer in WAL mode.
    assert [t.id for t in store.get_turns("t")] == ["1"]
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.append_turns("t", [turn("during", "2")]) == 1
    assert store.count_turns("t") == 2
    store.close()


def test_reads_do_not_wait_for_an_in_process_writer(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SQLiteStore(path, timeout=5)
    store.append_turns("t", [turn("one", "1")])
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")
    writer = threading.Thread(target=store.append_turns, args=("t", [turn("two", "2")]))
    writer.start()  # waits on the file lock, holding the store's write connection
    time.sleep(0.1)
    started = time.monotonic()
    assert store.count_turns("t") == 1
    assert time.monotonic() - started < 0.5
    blocker.execute("COMMIT")
    blocker.close()
    writer.join()
    assert store.count_turns("t") == 2
    store.close()


def test_bad_arguments_write_nothing(store: SQLiteStore) -> None:
    store.append_turns("t", [turn("kept", "k")])
    with pytest.raises(InvalidRecordError):
        store.append_turns("t", [turn("a", "dup"), turn("b", "dup")])
    with pytest.raises(InvalidRecordError):
        store.append_turns("t", ["not a turn"])  # type: ignore[list-item]
    with pytest.raises(InvalidRecordError):
        store.get_turns("t", "0")  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError):
        store.get_turn("t", "")
    p = page("p")
    with pytest.raises(InvalidRecordError):
        store.put_segment(segment("t", [p]), [])
    assert [t.id for t in store.get_turns("t")] == ["k"]
    assert store.list_segments("t") == []
