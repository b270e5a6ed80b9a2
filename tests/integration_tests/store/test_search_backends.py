"""What each backend does on its own for search: SQLite's FTS5 index and its migration,
Redis's stored texts, their backfill and the scan window."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
import redis

from optical_memory.errors import StoreError
from optical_memory.records import Turn
from optical_memory.store import RedisStore, SQLiteStore
from optical_memory.store import redis_layout as layout
from optical_memory.store.codec import encode
from optical_memory.store.redis_layout import Keys
from optical_memory.store.search import scan_text
from optical_memory.store.search_scan import ScanTexts
from optical_memory.store.sqlite import SCHEMA_VERSION
from optical_memory.store.sqlite_schema import APPLICATION_ID
from tests.integration_tests.store.records_for_tests import turn

# The schema of version 1 as it shipped, before the search index (migrations never change).
SCHEMA_V1 = (
    """CREATE TABLE turns (
        tenant BLOB NOT NULL, thread BLOB NOT NULL, position INTEGER NOT NULL,
        id BLOB NOT NULL, value BLOB NOT NULL,
        PRIMARY KEY (tenant, thread, position), UNIQUE (tenant, thread, id))""",
    """CREATE TABLE segments (
        tenant BLOB NOT NULL, thread BLOB NOT NULL, id BLOB NOT NULL,
        created_at REAL NOT NULL, expires_at REAL, value BLOB NOT NULL,
        PRIMARY KEY (tenant, thread, id))""",
    "CREATE INDEX segments_by_expiry ON segments (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE segment_pages (
        tenant BLOB NOT NULL, thread BLOB NOT NULL, segment_id BLOB NOT NULL,
        position INTEGER NOT NULL, page_id BLOB NOT NULL,
        PRIMARY KEY (tenant, thread, segment_id, position))""",
    "CREATE INDEX segment_pages_by_page ON segment_pages (tenant, thread, page_id)",
    """CREATE TABLE pages (
        tenant BLOB NOT NULL, thread BLOB NOT NULL, page_id BLOB NOT NULL,
        png_hash BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (tenant, thread, page_id))""",
    """CREATE TABLE vision_tokens (
        tenant BLOB NOT NULL, thread BLOB NOT NULL, page_id BLOB NOT NULL,
        model_fingerprint BLOB NOT NULL, value BLOB NOT NULL,
        PRIMARY KEY (tenant, thread, page_id))""",
)


def version_1_file(path: Path, rows: list[tuple[str, str, int, Turn | bytes]]) -> None:
    """A database as version 1 wrote it, holding ``(tenant, thread, position, turn)`` rows
    (bytes for a damaged value)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    for statement in SCHEMA_V1:
        conn.execute(statement)
    for tenant, thread, position, record in rows:
        value = record if isinstance(record, bytes) else encode(record)
        ident = f"damaged-{position}" if isinstance(record, bytes) else record.id
        conn.execute(
            "INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
            (tenant.encode(), thread.encode(), position, ident.encode(), value),
        )
    conn.execute("COMMIT")
    conn.execute("PRAGMA user_version = 1")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.close()


def search_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM turn_search").fetchone()[0])
    finally:
        conn.close()


# -- SQLite -------------------------------------------------------------------------------


def test_opening_a_version_1_file_indexes_the_turns_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    words = [f"filler {i}" for i in range(2500)]
    words[1700] = "the launch code word is pomegranate"
    rows: list[tuple[str, str, int, Turn | bytes]] = [
        ("default", "chat", i, turn(text)) for i, text in enumerate(words)
    ]
    rows.append(("default", "other", 0, turn("pomegranate elsewhere")))
    rows.append(("acme", "chat", 0, turn("acme's pomegranate")))
    rows.append(("default", "chat", 2500, b"OM\x01\x01 not a record"))  # damaged row
    version_1_file(path, rows)

    with SQLiteStore(path) as store:
        hits = store.search_turns("chat", "pomegranate")
        assert [(h.index, h.turn.message["content"]) for h in hits] == [(1700, words[1700])]
        assert [h.index for h in store.with_tenant("acme").search_turns("chat", "pomegranate")]
        # New turns are indexed as they come, after the migrated ones.
        store.append_turns("chat", [turn("a second pomegranate")])
        assert [h.index for h in store.search_turns("chat", "pomegranate")] == [2501, 1700]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    conn.close()
    # Every readable turn got one row; the damaged one none (reading it still says so).
    assert search_rows(path) == len(rows) - 1 + 1


def test_index_rows_go_with_their_thread(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with SQLiteStore(path) as store:
        store.append_turns("a", [turn(f"a {i}") for i in range(30)])
        store.append_turns("b", [turn(f"b {i}") for i in range(20)])
        store.with_tenant("other").append_turns("a", [turn("other tenant")])
        assert search_rows(path) == 51
        store.delete_thread("a")
        assert search_rows(path) == 21
        assert [h.index for h in store.with_tenant("other").search_turns("a", "tenant")] == [0]
        # A thread written again under a deleted name gets a new number (and new terms).
        store.append_turns("a", [turn("a again")])
    conn = sqlite3.connect(path)
    numbers = dict(conn.execute("SELECT tenant || '/' || thread, id FROM search_threads"))
    conn.close()
    assert numbers == {"default/b": 2, "other/a": 3, "default/a": 4}


def test_a_failed_append_leaves_no_index_row(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with SQLiteStore(path) as store:
        store.append_turns("t", [turn("kept")])
        conn = sqlite3.connect(path, isolation_level=None)
        # The batch's second turn fails, after the first one's turn and index rows went in.
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON turns WHEN NEW.id = CAST('boom' AS BLOB) "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
        conn.close()
        lost = Turn({"role": "user", "content": "lost words"})
        boom = Turn({"role": "user", "content": "boom"}, id="boom")
        with pytest.raises(StoreError, match="disk says no"):
            store.append_turns("t", [lost, boom])
        assert [t.message["content"] for t in store.get_turns("t")] == ["kept"]
        assert store.search_turns("t", "lost words") == []
    assert search_rows(path) == 1


# -- Redis --------------------------------------------------------------------------------


@pytest.fixture(params=["redis", "redis-cluster"])
def redis_store(request: pytest.FixtureRequest) -> RedisStore:
    fixture = "redis_url" if request.param == "redis" else "redis_cluster_url"
    store = RedisStore(str(request.getfixturevalue(fixture)), tenant=f"t-{uuid.uuid4().hex[:12]}")
    request.addfinalizer(store.close)
    return store


def raw_client(store: RedisStore) -> redis.Redis | redis.cluster.RedisCluster:
    client: redis.Redis | redis.cluster.RedisCluster = store._client
    return client


def test_texts_live_in_blocks_of_256_turns_that_name_their_positions(
    redis_store: RedisStore,
) -> None:
    redis_store.append_turns("t", [turn("Crème brûlée"), turn("光学记忆")])
    client = raw_client(redis_store)
    keys = Keys(redis_store.tenant)
    assert client.get(keys.text("t", 0)) == (
        f"0\t{scan_text(['creme', 'brulee'])}\n1\t{scan_text(list('光学记忆'))}\n".encode()
    )
    redis_store.append_turns("t", [turn(f"note {i}") for i in range(300)])
    assert client.get(keys.text("t", 1)).startswith(b"256\t note 254 \n")
    found = list(client.scan_iter(match=keys.thread_pattern("t")))
    assert sorted(found) == sorted(
        k.encode()
        for k in (keys.turns("t"), keys.turn_index("t"), keys.text("t", 0), keys.text("t", 1))
    )
    redis_store.delete_thread("t")
    assert list(client.scan_iter(match=keys.thread_pattern("t"))) == []


def test_a_thread_written_before_texts_is_searched_and_filled_in(
    redis_store: RedisStore,
) -> None:
    redis_store.append_turns("t", [turn(f"note {i}") for i in range(300)])
    redis_store.append_turns("t", [turn("the old thread mentions tangerine")])
    client = raw_client(redis_store)
    keys = Keys(redis_store.tenant)
    client.delete(keys.text("t", 0))  # as an older version wrote it: no texts for 0-255
    assert [h.index for h in redis_store.search_turns("t", "tangerine")] == [300]
    assert redis_store.search_turns("t", "note 7")[0].index == 7
    blocks = client.mget([keys.text("t", 0), keys.text("t", 1)])
    texts, rebuild = redis_store._scan_blocks(range(301), [0, 1], blocks)
    assert rebuild == [] and len(texts) == 301  # the block was written afresh


def test_a_positions_last_entry_is_its_text(redis_store: RedisStore) -> None:
    redis_store.append_turns("t", [turn("quince jelly")])
    client = raw_client(redis_store)
    key = Keys(redis_store.tenant).text("t", 0)
    client.set(key, b"0\t stale words \n" + client.get(key) + b"5\t past the end \n")
    assert [h.index for h in redis_store.search_turns("t", "quince")] == [0]
    assert redis_store.search_turns("t", "stale") == []
    assert redis_store.search_turns("t", "past the end") == []


def test_redis_scans_only_the_newest_window(
    redis_store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layout, "SEARCH_WINDOW", 100)
    redis_store.append_turns("t", [turn("ancient persimmon")])
    redis_store.append_turns("t", [turn(f"filler {i}") for i in range(99)])
    assert [h.index for h in redis_store.search_turns("t", "persimmon")] == [0]
    redis_store.append_turns("t", [turn("recent persimmon")])
    assert [h.index for h in redis_store.search_turns("t", "persimmon")] == [100]


def test_a_turn_rewritten_after_ranking_is_left_out(redis_store: RedisStore) -> None:
    redis_store.append_turns("t", [turn("first papaya"), turn("second papaya")])
    values = raw_client(redis_store).lrange(Keys(redis_store.tenant).turns("t"), 0, -1)
    ranked = [(1, 2.5), (0, 2.4)]
    stale = ScanTexts.from_texts(
        [(0, scan_text(["first", "papaya"])), (1, scan_text(["not", "what", "was", "ranked"]))]
    )
    hits = redis_store._search_hits("t", ranked, stale, [values[1], values[0]])
    assert [(h.index, h.score) for h in hits] == [(0, 2.4)]


def test_a_damaged_block_is_written_afresh(redis_store: RedisStore) -> None:
    redis_store.append_turns("t", [turn(f"note {i}") for i in range(10)] + [turn("lychee")])
    client = raw_client(redis_store)
    key = Keys(redis_store.tenant).text("t", 0)
    client.set(key, b"garbage without a newline")
    assert [h.index for h in redis_store.search_turns("t", "lychee")] == [10]
    assert client.get(key).endswith(b"\t lychee \n")
    client.append(key, b"3\tbroken\tline\n")
    assert [h.index for h in redis_store.search_turns("t", "lychee")] == [10]
    assert b"broken" not in client.get(key)
