"""SQLiteStore: the embedded default store (stdlib ``sqlite3``, WAL, one file).

One database file holds every tenant. Each table carries a ``tenant`` column and every
statement filters on the store object's tenant, so one tenant never reads another's rows.
Names and ids are stored as UTF-8 BLOBs (``surrogatepass``), so any Python string works as a
tenant, thread or id. Every value is a :mod:`~optical_memory.store.codec` envelope, so a
corrupted row raises :class:`~optical_memory.errors.CorruptRecord` naming its key.

The schema and its migrations live in :mod:`~optical_memory.store.sqlite_schema`, the
connections (locks, WAL, checkpoints, error translation) in
:mod:`~optical_memory.store.sqlite_engine`. Turns take ``position = max + 1`` inside the write
transaction and ``(tenant, thread, id)`` is unique, so a retried append skips the ids it
already wrote and concurrent appenders never interleave a batch. A page lives while at
least one live segment lists it.

Search: :meth:`SQLiteStore.search_turns` queries an FTS5 index of every turn of the thread
(see :mod:`~optical_memory.store.search` for tokens and ranking), in which each thread has
terms of its own (see :mod:`~optical_memory.store.sqlite_schema`): a search reads that
thread's postings only. BM25 takes how rare a token is from the thread, the number of
turns and their average length from the whole file.

Retention: reads ignore expired segments, and their pages and vision tokens with them.
Expired rows are deleted by :meth:`SQLiteStore.purge_expired` and, up to 100 segments at
a time, inside every segment or vision-token write (turn appends stay lean: turns do not
expire).

``":memory:"`` is refused: the two connections would each see their own empty database.
Use a file in a temporary directory instead.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from optical_memory.errors import CorruptRecord, InvalidRecordError, NotFound
from optical_memory.records import Page, Segment, Turn, VisionTokens, page_id
from optical_memory.store.base import (
    DEFAULT_TENANT,
    Retention,
    check_name,
    check_retention,
    check_segment_pages,
    check_turns,
)
from optical_memory.store.blobs import (
    KEYS_PER_PAGE,
    BlobItems,
    check_blob_items,
    check_blob_keys,
    check_blob_prefix,
    key_bytes,
    key_text,
    unwrap_blob,
    wrap_blob,
)
from optical_memory.store.codec import DecodedRecords, decode, encode
from optical_memory.store.search import (
    SearchQuery,
    TurnHit,
    check_search,
    relevance,
    turn_tokens,
)
from optical_memory.store.sqlite_engine import Engine, check_path, check_timeout
from optical_memory.store.sqlite_schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    migrate,
    search_body,
    search_prefix,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "AsyncSQLiteStore", "SQLiteStore", "migrate"]

T = TypeVar("T")
# Expired segments deleted inside one write; purge_expired() loops until none are left.
_PURGE_BATCH = 100


def _b(text: str) -> bytes:
    """A name or id as stored: UTF-8 that keeps lone surrogates."""
    return text.encode("utf-8", "surrogatepass")


def _s(blob: bytes) -> str:
    return bytes(blob).decode("utf-8", "surrogatepass")


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRecordError(f"{what} must be a non-empty str, got {value!r}")
    return value


def _check_index(value: object, what: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise InvalidRecordError(f"{what} must be {kind}, got {value!r}")


# A segment is live when it has no expiry or has not reached it.
_LIVE = "(s.expires_at IS NULL OR s.expires_at > :now)"
_PAGE_IS_LIVE = f"""EXISTS (
    SELECT 1 FROM segment_pages AS l JOIN segments AS s
        ON s.tenant = l.tenant AND s.thread = l.thread AND s.id = l.segment_id
    WHERE l.tenant = :tenant AND l.thread = :thread AND l.page_id = :page AND {_LIVE}
)"""


# Ranks a thread's matches in the index alone (bm25, ``scope`` weighted 0), then looks up
# only the best rows' positions and turns (CROSS JOIN keeps that order: the planner would
# otherwise walk the thread's turns). A thread's rowids grow with its positions, so ties
# go to the newest turn.
_SEARCH_SQL = """SELECT f.position, t.id, t.value, best.score FROM (
    SELECT rowid AS r, bm25(turn_search, 0.0, 1.0) AS score FROM turn_search
    WHERE turn_search MATCH :query ORDER BY score, rowid DESC LIMIT :limit
) AS best
CROSS JOIN turn_search AS f ON f.rowid = best.r
CROSS JOIN turns AS t ON t.tenant = :tenant AND t.thread = :thread AND t.position = f.position"""


class _SQLiteBase:
    """Everything both twins share: validation, SQL, and row <-> record conversion.

    Each operation is a plain method doing blocking IO; :class:`SQLiteStore` calls it
    directly and :class:`AsyncSQLiteStore` in a worker thread.
    """

    _tenant: str
    _retention: dict[str, float]
    _engine: Engine
    _segments: DecodedRecords[Segment]

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        tenant: str = DEFAULT_TENANT,
        retention: Retention | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._tenant = check_name(tenant, "tenant")
        self._retention = check_retention(retention)
        self._engine = Engine(check_path(path), check_timeout(timeout))
        self._segments = DecodedRecords(Segment)

    def _view_for(self, tenant: str) -> Any:
        view = object.__new__(type(self))
        view._tenant = check_name(tenant, "tenant")
        view._retention = self._retention
        view._engine = self._engine
        view._segments = self._segments
        return view

    @property
    def tenant(self) -> str:
        """The tenant this store object reads and writes."""
        return self._tenant

    @property
    def path(self) -> Path:
        """The database file."""
        return self._engine.path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, tenant={self._tenant!r})"

    def _key(self, thread: str, kind: str, ident: str) -> str:
        return f"{self.path} [tenant {self._tenant!r}, thread {thread!r}, {kind} {ident!r}]"

    def _params(self, thread: str, **extra: Any) -> dict[str, Any]:
        return {"tenant": _b(self._tenant), "thread": _b(thread), **extra}

    # Turns

    def _append_turns(self, thread: str, turns: Sequence[Turn]) -> int:
        check_name(thread, "thread")
        rows = [(_b(turn.id), encode(turn), turn_tokens(turn)) for turn in check_turns(turns)]
        if not rows:
            return 0
        params = self._params(thread)
        with self._engine.write(f"appending turns to thread {thread!r}") as conn:
            prefix = search_prefix(conn, params["tenant"], params["thread"], create=True) or ""
            (position,) = conn.execute(
                "SELECT coalesce(max(position) + 1, 0) FROM turns "
                "WHERE tenant = :tenant AND thread = :thread",
                params,
            ).fetchone()
            added = 0
            for turn_id, value, tokens in rows:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO turns (tenant, thread, position, id, value) "
                    "VALUES (:tenant, :thread, :position, :id, :value)",
                    {**params, "position": position + added, "id": turn_id, "value": value},
                )
                if cursor.rowcount:
                    conn.execute(
                        "INSERT INTO turn_search (scope, body, position) VALUES (?, ?, ?)",
                        (prefix, search_body(prefix, tokens), position + added),
                    )
                added += cursor.rowcount
        return added

    def _get_turns(self, thread: str, start: int = 0, stop: int | None = None) -> list[Turn]:
        check_name(thread, "thread")
        _check_index(start, "start")
        _check_index(stop, "stop", optional=True)
        params = self._params(thread)
        negative = start < 0 or (stop is not None and stop < 0)
        with self._engine.read(f"reading turns of thread {thread!r}", snapshot=negative) as conn:
            if negative:
                (count,) = conn.execute(
                    "SELECT count(*) FROM turns WHERE tenant = :tenant AND thread = :thread",
                    params,
                ).fetchone()
                start, stop, _ = slice(start, stop).indices(count)
            if stop is not None and stop <= start:
                return []
            rows = conn.execute(
                "SELECT id, value FROM turns WHERE tenant = :tenant AND thread = :thread "
                "ORDER BY position LIMIT :limit OFFSET :offset",
                {**params, "limit": -1 if stop is None else stop - start, "offset": start},
            ).fetchall()
        return [decode(Turn, self._key(thread, "turn", _s(i)), value) for i, value in rows]

    def _get_turn(self, thread: str, turn_id: str) -> Turn:
        check_name(thread, "thread")
        _check_id(turn_id, "turn id")
        with self._engine.read(f"reading turn {turn_id!r} of thread {thread!r}") as conn:
            row = conn.execute(
                "SELECT value FROM turns WHERE tenant = :tenant AND thread = :thread AND id = :id",
                self._params(thread, id=_b(turn_id)),
            ).fetchone()
        if row is None:
            raise NotFound(f"no turn {turn_id!r} in thread {thread!r}")
        return decode(Turn, self._key(thread, "turn", turn_id), row[0])

    def _count_turns(self, thread: str) -> int:
        check_name(thread, "thread")
        with self._engine.read(f"counting turns of thread {thread!r}") as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM turns WHERE tenant = :tenant AND thread = :thread",
                self._params(thread),
            ).fetchone()
        return int(count)

    def _search_turns(self, thread: str, query: str, limit: int) -> list[TurnHit]:
        check_name(thread, "thread")
        check_search(query, limit)
        parsed = SearchQuery.parse(query)
        if not parsed or not limit:
            return []
        params = self._params(thread)
        found: dict[int, tuple[float, bytes, bytes]] = {}
        with self._engine.read(f"searching thread {thread!r}", snapshot=True) as conn:
            prefix = search_prefix(conn, params["tenant"], params["thread"], create=False)
            # Best tier first; each tier's query also returns the tiers above it, skipped.
            for tier, expression in parsed.fts_tiers(prefix) if prefix else []:
                if len(found) >= limit:
                    break
                rows = conn.execute(
                    _SEARCH_SQL,
                    {
                        **params,
                        "query": "{body} : " + expression,
                        "limit": limit + len(found),
                    },
                ).fetchall()
                rows.sort(key=lambda row: (row[3], -row[0]))
                for position, turn_id, value, rank in rows:
                    if position not in found and len(found) < limit:
                        found[position] = (tier + relevance(rank), turn_id, value)
        hits = [
            TurnHit(position, decode(Turn, self._key(thread, "turn", _s(turn_id)), value), score)
            for position, (score, turn_id, value) in found.items()
        ]
        hits.sort(key=lambda hit: (-hit.score, -hit.index))
        return hits

    # Segments and pages

    def _put_segment(self, segment: Segment, pages: Sequence[Page], replace: bool) -> None:
        batch = check_segment_pages(segment, pages)
        thread = check_name(segment.thread, "Segment.thread")
        value = encode(segment)
        page_rows = [(_b(page.id), _b(page_id(page.png)), encode(page)) for page in batch]
        now = time.time()
        ttl = self._retention.get(segment.tier)
        params = self._params(thread, id=_b(segment.id), now=now)
        verb = "replacing" if replace else "putting"
        with self._engine.write(f"{verb} segment {segment.id!r} of thread {thread!r}") as conn:
            _purge(conn, now, _PURGE_BATCH)
            if replace and not _segment_is_live(conn, params):
                raise NotFound(f"no segment {segment.id!r} in thread {thread!r} to replace")
            old = _unlink_segment(conn, params)
            conn.execute(
                "INSERT OR REPLACE INTO segments "
                "(tenant, thread, id, created_at, expires_at, value) "
                "VALUES (:tenant, :thread, :id, :created_at, :expires_at, :value)",
                {
                    **params,
                    "created_at": segment.created_at,
                    "expires_at": None if ttl is None else now + ttl,
                    "value": value,
                },
            )
            for position, (page, png_hash, page_value) in enumerate(page_rows):
                row = {**params, "page": page, "png_hash": png_hash}
                # Tokens cached for other PNG bytes under this id would be stale.
                conn.execute(
                    "DELETE FROM vision_tokens WHERE tenant = :tenant AND thread = :thread "
                    "AND page_id = :page AND EXISTS (SELECT 1 FROM pages WHERE "
                    "tenant = :tenant AND thread = :thread AND page_id = :page "
                    "AND png_hash != :png_hash)",
                    row,
                )
                conn.execute(
                    "INSERT OR REPLACE INTO pages (tenant, thread, page_id, png_hash, value) "
                    "VALUES (:tenant, :thread, :page, :png_hash, :value)",
                    {**row, "value": page_value},
                )
                conn.execute(
                    "INSERT INTO segment_pages (tenant, thread, segment_id, position, page_id) "
                    "VALUES (:tenant, :thread, :id, :position, :page)",
                    {**row, "position": position},
                )
            _drop_orphans(conn, params, set(old) - {row[0] for row in page_rows})

    def _get_segment(self, thread: str, segment_id: str) -> Segment:
        check_name(thread, "thread")
        _check_id(segment_id, "segment id")
        params = self._params(thread, id=_b(segment_id), now=time.time())
        with self._engine.read(f"reading segment {segment_id!r} of thread {thread!r}") as conn:
            row = conn.execute(
                "SELECT value FROM segments AS s WHERE tenant = :tenant AND thread = :thread "
                f"AND id = :id AND {_LIVE}",
                params,
            ).fetchone()
        if row is None:
            raise NotFound(f"no segment {segment_id!r} in thread {thread!r}")
        return decode(Segment, self._key(thread, "segment", segment_id), row[0])

    def _list_segments(self, thread: str) -> list[Segment]:
        check_name(thread, "thread")
        with self._engine.read(f"listing segments of thread {thread!r}") as conn:
            rows = conn.execute(
                "SELECT id, value FROM segments AS s WHERE tenant = :tenant "
                f"AND thread = :thread AND {_LIVE} ORDER BY created_at, id",
                self._params(thread, now=time.time()),
            ).fetchall()
        decode_segment = self._segments.decode
        return [decode_segment(self._key(thread, "segment", _s(i)), value) for i, value in rows]

    def _delete_segment(self, thread: str, segment_id: str) -> None:
        check_name(thread, "thread")
        _check_id(segment_id, "segment id")
        now = time.time()
        params = self._params(thread, id=_b(segment_id), now=now)
        with self._engine.write(f"deleting segment {segment_id!r} of thread {thread!r}") as conn:
            _purge(conn, now, _PURGE_BATCH)
            old = _unlink_segment(conn, params)
            conn.execute(
                "DELETE FROM segments WHERE tenant = :tenant AND thread = :thread AND id = :id",
                params,
            )
            _drop_orphans(conn, params, set(old))

    def _get_page(self, thread: str, page: str) -> Page:
        check_name(thread, "thread")
        _check_id(page, "page id")
        params = self._params(thread, page=_b(page), now=time.time())
        with self._engine.read(f"reading page {page!r} of thread {thread!r}") as conn:
            row = conn.execute(
                "SELECT value FROM pages WHERE tenant = :tenant AND thread = :thread "
                f"AND page_id = :page AND {_PAGE_IS_LIVE}",
                params,
            ).fetchone()
        if row is None:
            raise NotFound(f"no page {page!r} in thread {thread!r}")
        return decode(Page, self._key(thread, "page", page), row[0])

    def _get_pages(self, thread: str, segment_id: str) -> list[Page]:
        check_name(thread, "thread")
        _check_id(segment_id, "segment id")
        params = self._params(thread, id=_b(segment_id), now=time.time())
        what = f"reading pages of segment {segment_id!r} of thread {thread!r}"
        with self._engine.read(what, snapshot=True) as conn:
            if not _segment_is_live(conn, params):
                raise NotFound(f"no segment {segment_id!r} in thread {thread!r}")
            rows = conn.execute(
                "SELECT l.page_id, p.value FROM segment_pages AS l LEFT JOIN pages AS p "
                "ON p.tenant = l.tenant AND p.thread = l.thread AND p.page_id = l.page_id "
                "WHERE l.tenant = :tenant AND l.thread = :thread AND l.segment_id = :id "
                "ORDER BY l.position",
                params,
            ).fetchall()
        pages = []
        for page, value in rows:
            key = self._key(thread, "page", _s(page))
            if value is None:
                raise CorruptRecord(f"{key}: listed by segment {segment_id!r} but missing")
            pages.append(decode(Page, key, value))
        return pages

    # Vision tokens

    def _put_vision_tokens(self, thread: str, page: str, tokens: VisionTokens) -> None:
        check_name(thread, "thread")
        _check_id(page, "page id")
        if not isinstance(tokens, VisionTokens):
            raise InvalidRecordError(f"expected VisionTokens, got {type(tokens).__name__}")
        value = encode(tokens)
        now = time.time()
        params = self._params(thread, page=_b(page), now=now)
        what = f"caching vision tokens of page {page!r} of thread {thread!r}"
        with self._engine.write(what) as conn:
            _purge(conn, now, _PURGE_BATCH)
            if not conn.execute(f"SELECT {_PAGE_IS_LIVE}", params).fetchone()[0]:
                raise NotFound(f"no page {page!r} in thread {thread!r} to cache tokens for")
            conn.execute(
                "INSERT OR REPLACE INTO vision_tokens "
                "(tenant, thread, page_id, model_fingerprint, value) "
                "VALUES (:tenant, :thread, :page, :model, :value)",
                {**params, "model": _b(tokens.model_fingerprint), "value": value},
            )

    def _get_vision_tokens(
        self, thread: str, page: str, model_fingerprint: str
    ) -> VisionTokens | None:
        check_name(thread, "thread")
        _check_id(page, "page id")
        _check_id(model_fingerprint, "model_fingerprint")
        params = self._params(thread, page=_b(page), model=_b(model_fingerprint), now=time.time())
        with self._engine.read(f"reading vision tokens of page {page!r}") as conn:
            row = conn.execute(
                "SELECT value FROM vision_tokens WHERE tenant = :tenant AND thread = :thread "
                f"AND page_id = :page AND model_fingerprint = :model AND {_PAGE_IS_LIVE}",
                params,
            ).fetchone()
        if row is None:
            return None
        return decode(VisionTokens, self._key(thread, "vision tokens of page", page), row[0])

    # Threads and maintenance

    def _list_threads(self) -> list[str]:
        params = {"tenant": _b(self._tenant), "now": time.time()}
        with self._engine.read("listing threads") as conn:
            rows = conn.execute(
                "SELECT thread FROM turns WHERE tenant = :tenant UNION "
                f"SELECT thread FROM segments AS s WHERE tenant = :tenant AND {_LIVE}",
                params,
            ).fetchall()
        return sorted(_s(thread) for (thread,) in rows)

    def _delete_thread(self, thread: str) -> None:
        check_name(thread, "thread")
        params = self._params(thread)
        with self._engine.write(f"deleting thread {thread!r}") as conn:
            for table in ("turns", "segments", "segment_pages", "pages", "vision_tokens"):
                conn.execute(
                    f"DELETE FROM {table} WHERE tenant = :tenant AND thread = :thread", params
                )
            prefix = search_prefix(conn, params["tenant"], params["thread"], create=False)
            if prefix:
                conn.execute(
                    "DELETE FROM turn_search WHERE turn_search MATCH ?",
                    (f'{{scope}} : "{prefix}"',),
                )
                conn.execute(
                    "DELETE FROM search_threads WHERE tenant = :tenant AND thread = :thread",
                    params,
                )

    # Byte values by key

    def _put_blobs(self, items: BlobItems) -> None:
        batch = check_blob_items(items)
        tenant = _b(self._tenant)
        rows = [(tenant, key_bytes(key), wrap_blob(value)) for key, value in batch.items()]
        with self._engine.write(f"writing {len(rows)} blobs") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO blobs (tenant, key, value) VALUES (?, ?, ?)", rows
            )

    def _get_blobs(self, keys: Sequence[str]) -> list[bytes | None]:
        wanted = check_blob_keys(keys)
        tenant = _b(self._tenant)
        found: dict[str, bytes] = {}
        with self._engine.read(f"reading {len(wanted)} blobs") as conn:
            for key in dict.fromkeys(wanted):
                row = conn.execute(
                    "SELECT value FROM blobs WHERE tenant = ? AND key = ?",
                    (tenant, key_bytes(key)),
                ).fetchone()
                if row is not None:
                    where = f"{self.path} [tenant {self._tenant!r}, blob {key!r}]"
                    found[key] = unwrap_blob(where, row[0])
        return [found.get(key) for key in wanted]

    def _delete_blobs(self, keys: Sequence[str]) -> None:
        doomed = check_blob_keys(keys)
        tenant = _b(self._tenant)
        with self._engine.write(f"deleting {len(doomed)} blobs") as conn:
            conn.executemany(
                "DELETE FROM blobs WHERE tenant = ? AND key = ?",
                [(tenant, key_bytes(key)) for key in doomed],
            )

    def _blob_key_page(self, prefix: str, after: str | None) -> list[str]:
        """Up to :data:`KEYS_PER_PAGE` keys with ``prefix``, after ``after``, in order."""
        low = key_bytes(after) if after is not None else key_bytes(prefix)
        # No UTF-8 byte is 0xFF: every key that starts with the prefix sorts below this.
        high = key_bytes(prefix) + b"\xff"
        low_op = ">=" if after is None else ">"
        with self._engine.read("listing blob keys") as conn:
            rows = conn.execute(
                f"SELECT key FROM blobs WHERE tenant = ? AND key {low_op} ? "
                "AND key < ? ORDER BY key LIMIT ?",
                (_b(self._tenant), low, high, KEYS_PER_PAGE),
            ).fetchall()
        return [key_text(key) for (key,) in rows]

    def _purge_expired(self) -> int:
        total = 0
        while True:
            with self._engine.write("purging expired segments") as conn:
                purged = _purge(conn, time.time(), _PURGE_BATCH)
            total += purged
            if purged < _PURGE_BATCH:
                return total


def _segment_is_live(conn: sqlite3.Connection, params: dict[str, Any]) -> bool:
    row = conn.execute(
        "SELECT 1 FROM segments AS s WHERE tenant = :tenant AND thread = :thread "
        f"AND id = :id AND {_LIVE}",
        params,
    ).fetchone()
    return row is not None


def _unlink_segment(conn: sqlite3.Connection, params: dict[str, Any]) -> list[bytes]:
    """Remove a segment's page links; returns the page ids it listed."""
    where = "WHERE tenant = :tenant AND thread = :thread AND segment_id = :id"
    old = [bytes(r[0]) for r in conn.execute(f"SELECT page_id FROM segment_pages {where}", params)]
    conn.execute(f"DELETE FROM segment_pages {where}", params)
    return old


def _drop_orphans(conn: sqlite3.Connection, params: dict[str, Any], pages: set[bytes]) -> None:
    """Delete those pages, and their vision tokens, that no segment lists any more."""
    for page in pages:
        row = {"tenant": params["tenant"], "thread": params["thread"], "page": page}
        cursor = conn.execute(
            "DELETE FROM pages WHERE tenant = :tenant AND thread = :thread AND page_id = :page "
            "AND NOT EXISTS (SELECT 1 FROM segment_pages WHERE tenant = :tenant "
            "AND thread = :thread AND page_id = :page)",
            row,
        )
        if cursor.rowcount:
            conn.execute(
                "DELETE FROM vision_tokens WHERE tenant = :tenant AND thread = :thread "
                "AND page_id = :page",
                row,
            )


def _purge(conn: sqlite3.Connection, now: float, limit: int) -> int:
    """Delete up to ``limit`` expired segments of any tenant, with their orphaned pages."""
    expired = conn.execute(
        "SELECT tenant, thread, id FROM segments WHERE expires_at IS NOT NULL "
        "AND expires_at <= :now LIMIT :limit",
        {"now": now, "limit": limit},
    ).fetchall()
    for tenant, thread, segment in expired:
        params = {"tenant": tenant, "thread": thread, "id": segment}
        old = _unlink_segment(conn, params)
        conn.execute(
            "DELETE FROM segments WHERE tenant = :tenant AND thread = :thread AND id = :id",
            params,
        )
        _drop_orphans(conn, params, set(old))
    return len(expired)


class SQLiteStore(_SQLiteBase):
    """The embedded store: one SQLite file, safe for several threads and processes.

    Args:
        path: The database file; created with its schema when absent. Its directory must
            exist.
        tenant: The tenant this object reads and writes (:meth:`with_tenant` for others).
        retention: Seconds a segment of a tier lives after its last put, e.g.
            ``{"tiny": 7 * 86400}``; tiers not listed never expire.
        timeout: Seconds to wait for another writer (thread or process) before raising
            :class:`~optical_memory.errors.StoreUnavailable`.

    Raises:
        StoreUnavailable: The file cannot be opened (missing directory, permissions, locked).
        CorruptRecord: The file is damaged or not an SQLite database.
        StoreError: The file has a newer schema version or belongs to another application.
        InvalidSettingError: ``path`` is ``":memory:"`` or ``timeout`` is not positive.

    Example:
        >>> store = SQLiteStore(tmp_path / "memory.db", retention={"tiny": 86400})
        >>> store.append_turns("t1", [Turn({"role": "user", "content": "hi"})])
        1
        >>> [turn.message["content"] for turn in store.get_turns("t1")]
        ['hi']
        >>> store.close()
    """

    def with_tenant(self, tenant: str) -> SQLiteStore:
        """A view for another tenant over the same connections (closing either closes both)."""
        view: SQLiteStore = self._view_for(tenant)
        return view

    def append_turns(self, thread: str, turns: Sequence[Turn]) -> int:
        """Append turns atomically; returns how many were new (known ids are skipped)."""
        return self._append_turns(thread, turns)

    def get_turns(self, thread: str, start: int = 0, stop: int | None = None) -> list[Turn]:
        """The thread's turns ``[start:stop]`` in append order (empty for an unknown thread)."""
        return self._get_turns(thread, start, stop)

    def get_turn(self, thread: str, turn_id: str) -> Turn:
        """One turn by id. Raises ``NotFound``."""
        return self._get_turn(thread, turn_id)

    def count_turns(self, thread: str) -> int:
        """How many turns the thread has."""
        return self._count_turns(thread)

    def search_turns(self, thread: str, query: str, limit: int = 10) -> list[TurnHit]:
        """The thread's turns that match ``query``, best first, at most ``limit``.

        An FTS5 query over every turn of the thread; tokens and ranking are those of
        :mod:`~optical_memory.store.search`. A query without letters or digits finds
        nothing; no text is ever read as FTS5 syntax.

        Returns:
            ``TurnHit(index, turn, score)`` tuples, highest score first, then newest.

        Raises:
            InvalidRecordError: ``query`` is not a str or ``limit`` not an int >= 0.

        Example:
            >>> store.append_turns("t1", [Turn({"role": "user", "content": "Ship INV-42 today"})])
            1
            >>> [(hit.index, int(hit.score)) for hit in store.search_turns("t1", "inv-42")]
            [(0, 2)]
        """
        return self._search_turns(thread, query, limit)

    def put_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """Create or atomically replace a segment and its pages."""
        self._put_segment(segment, pages, False)

    def replace_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """Atomically replace an existing segment and its pages. Raises ``NotFound``."""
        self._put_segment(segment, pages, True)

    def get_segment(self, thread: str, segment_id: str) -> Segment:
        """One segment by id. Raises ``NotFound``."""
        return self._get_segment(thread, segment_id)

    def list_segments(self, thread: str) -> list[Segment]:
        """The thread's segments, oldest first (by ``created_at``, then id)."""
        return self._list_segments(thread)

    def delete_segment(self, thread: str, segment_id: str) -> None:
        """Delete a segment with the pages no other segment lists (no error if absent)."""
        self._delete_segment(thread, segment_id)

    def get_page(self, thread: str, page_id: str) -> Page:
        """One page by id. Raises ``NotFound``."""
        return self._get_page(thread, page_id)

    def get_pages(self, thread: str, segment_id: str) -> list[Page]:
        """A segment's pages in order. Raises ``NotFound`` for an unknown segment."""
        return self._get_pages(thread, segment_id)

    def put_vision_tokens(self, thread: str, page_id: str, tokens: VisionTokens) -> None:
        """Cache vision tokens for a stored page. Raises ``NotFound`` for an unknown page."""
        self._put_vision_tokens(thread, page_id, tokens)

    def get_vision_tokens(
        self, thread: str, page_id: str, model_fingerprint: str
    ) -> VisionTokens | None:
        """Cached vision tokens made by that model, or ``None``."""
        return self._get_vision_tokens(thread, page_id, model_fingerprint)

    def list_threads(self) -> list[str]:
        """The tenant's threads that hold a turn or a live segment, sorted."""
        return self._list_threads()

    def delete_thread(self, thread: str) -> None:
        """Delete everything of one thread (no error if absent)."""
        self._delete_thread(thread)

    def put_blobs(self, items: BlobItems) -> None:
        """Store byte values under keys in one transaction; existing keys are overwritten.

        Args:
            items: A mapping of key to bytes, or ``(key, bytes)`` pairs.

        Raises:
            InvalidRecordError: A key is not a str of 1 to 1,024 characters, or a value is
                not bytes.
            RecordTooLarge: A value exceeds 64 MiB.
        """
        self._put_blobs(items)

    def get_blobs(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order, ``None`` where a key is absent.

        Raises:
            CorruptRecord: A stored value fails its checksum.
        """
        return self._get_blobs(keys)

    def delete_blobs(self, keys: Sequence[str]) -> None:
        """Delete values by key in one transaction (absent keys are ignored)."""
        self._delete_blobs(keys)

    def iter_blob_keys(self, prefix: str | None = None) -> Iterator[str]:
        """Keys starting with ``prefix`` (all when ``None``), in code-point order.

        Reads :data:`~optical_memory.store.blobs.KEYS_PER_PAGE` keys at a time, so keys
        written while iterating may or may not be seen.
        """
        start = check_blob_prefix(prefix)
        after: str | None = None
        while True:
            keys = self._blob_key_page(start, after)
            yield from keys
            if len(keys) < KEYS_PER_PAGE:
                return
            after = keys[-1]

    def purge_expired(self) -> int:
        """Delete expired segments of every tenant, with their pages; returns how many."""
        return self._purge_expired()

    def close(self) -> None:
        """Close the file's connections, for this object and its tenant views (idempotent)."""
        self._engine.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSQLiteStore(_SQLiteBase):
    """The asyncio twin of :class:`SQLiteStore`: same parameters, methods awaited.

    Each call runs the blocking SQLite work in a worker thread (``asyncio.to_thread``), so
    the event loop never waits on the file. Only the constructor opens the file (and
    migrates its schema) in the calling thread, so that a bad path fails right there.

    Example:
        >>> store = AsyncSQLiteStore(tmp_path / "memory.db")
        >>> await store.append_turns("t1", [Turn({"role": "user", "content": "hi"})])
        1
        >>> await store.aclose()
    """

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(func, *args)

    def with_tenant(self, tenant: str) -> AsyncSQLiteStore:
        """A view for another tenant over the same connections (closing either closes both)."""
        view: AsyncSQLiteStore = self._view_for(tenant)
        return view

    async def append_turns(self, thread: str, turns: Sequence[Turn]) -> int:
        """See :meth:`SQLiteStore.append_turns`."""
        return await self._run(self._append_turns, thread, turns)

    async def get_turns(self, thread: str, start: int = 0, stop: int | None = None) -> list[Turn]:
        """See :meth:`SQLiteStore.get_turns`."""
        return await self._run(self._get_turns, thread, start, stop)

    async def get_turn(self, thread: str, turn_id: str) -> Turn:
        """See :meth:`SQLiteStore.get_turn`."""
        return await self._run(self._get_turn, thread, turn_id)

    async def count_turns(self, thread: str) -> int:
        """See :meth:`SQLiteStore.count_turns`."""
        return await self._run(self._count_turns, thread)

    async def search_turns(self, thread: str, query: str, limit: int = 10) -> list[TurnHit]:
        """See :meth:`SQLiteStore.search_turns`."""
        return await self._run(self._search_turns, thread, query, limit)

    async def put_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """See :meth:`SQLiteStore.put_segment`."""
        await self._run(self._put_segment, segment, pages, False)

    async def replace_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """See :meth:`SQLiteStore.replace_segment`."""
        await self._run(self._put_segment, segment, pages, True)

    async def get_segment(self, thread: str, segment_id: str) -> Segment:
        """See :meth:`SQLiteStore.get_segment`."""
        return await self._run(self._get_segment, thread, segment_id)

    async def list_segments(self, thread: str) -> list[Segment]:
        """See :meth:`SQLiteStore.list_segments`."""
        return await self._run(self._list_segments, thread)

    async def delete_segment(self, thread: str, segment_id: str) -> None:
        """See :meth:`SQLiteStore.delete_segment`."""
        await self._run(self._delete_segment, thread, segment_id)

    async def get_page(self, thread: str, page_id: str) -> Page:
        """See :meth:`SQLiteStore.get_page`."""
        return await self._run(self._get_page, thread, page_id)

    async def get_pages(self, thread: str, segment_id: str) -> list[Page]:
        """See :meth:`SQLiteStore.get_pages`."""
        return await self._run(self._get_pages, thread, segment_id)

    async def put_vision_tokens(self, thread: str, page_id: str, tokens: VisionTokens) -> None:
        """See :meth:`SQLiteStore.put_vision_tokens`."""
        await self._run(self._put_vision_tokens, thread, page_id, tokens)

    async def get_vision_tokens(
        self, thread: str, page_id: str, model_fingerprint: str
    ) -> VisionTokens | None:
        """See :meth:`SQLiteStore.get_vision_tokens`."""
        return await self._run(self._get_vision_tokens, thread, page_id, model_fingerprint)

    async def list_threads(self) -> list[str]:
        """See :meth:`SQLiteStore.list_threads`."""
        return await self._run(self._list_threads)

    async def delete_thread(self, thread: str) -> None:
        """See :meth:`SQLiteStore.delete_thread`."""
        await self._run(self._delete_thread, thread)

    async def put_blobs(self, items: BlobItems) -> None:
        """See :meth:`SQLiteStore.put_blobs`."""
        await self._run(self._put_blobs, items)

    async def get_blobs(self, keys: Sequence[str]) -> list[bytes | None]:
        """See :meth:`SQLiteStore.get_blobs`."""
        return await self._run(self._get_blobs, keys)

    async def delete_blobs(self, keys: Sequence[str]) -> None:
        """See :meth:`SQLiteStore.delete_blobs`."""
        await self._run(self._delete_blobs, keys)

    async def iter_blob_keys(self, prefix: str | None = None) -> AsyncIterator[str]:
        """See :meth:`SQLiteStore.iter_blob_keys`."""
        start = check_blob_prefix(prefix)
        after: str | None = None
        while True:
            keys = await self._run(self._blob_key_page, start, after)
            for key in keys:
                yield key
            if len(keys) < KEYS_PER_PAGE:
                return
            after = keys[-1]

    async def purge_expired(self) -> int:
        """See :meth:`SQLiteStore.purge_expired`."""
        return await self._run(self._purge_expired)

    async def aclose(self) -> None:
        """Close the file's connections, for this object and its tenant views (idempotent)."""
        await self._run(self._engine.close)

    async def __aenter__(self) -> AsyncSQLiteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
