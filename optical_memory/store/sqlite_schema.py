"""The SQLite store's schema, and the migrations that bring a file to it.

Schema (version 3, kept in ``PRAGMA user_version``; :data:`MIGRATIONS` step it forward,
and :func:`migrate` runs the missing steps in one transaction):

- ``turns(tenant, thread, position, id, value)``: ``position`` is ``max + 1`` taken inside
  the write transaction, and ``(tenant, thread, id)`` is unique, so a retried append skips
  the ids it already wrote and concurrent appenders never interleave a batch.
- ``segments(tenant, thread, id, created_at, expires_at, value)``: ``expires_at`` is
  ``now + retention[tier]`` at the last put, ``NULL`` when the tier has no retention.
- ``segment_pages(tenant, thread, segment_id, position, page_id)``: which pages a segment
  lists, in order.
- ``pages(tenant, thread, page_id, png_hash, value)``: one row per page id and thread. A
  page id names one page of a thread, so two segments that list the same id share that row
  (the last put writes its header) and its vision tokens. A page lives while at least one
  live segment lists it: deleting, expiring or re-putting one segment never takes a page
  that another segment still lists.
- ``vision_tokens(tenant, thread, page_id, model_fingerprint, value)``: one cached tensor
  per page, replaced by the next put and dropped with its page, or when the page's PNG
  changes under the same id.
- ``search_threads(tenant, thread, id)`` and ``turn_search(scope, body, position)``
  (version 2): the search index. ``turn_search`` is an FTS5 table with one row per turn,
  written in the transaction that appends the turn and deleted with its thread (turns do
  not expire, so retention never touches it). Each thread gets a number, never reused,
  and its 7 base-36 digits (:func:`thread_prefix`) are prepended to every token of its
  rows: ``body`` holds the turn's search tokens (:mod:`~optical_memory.store.search`)
  written that way, ``scope`` the prefix alone. So each thread has a vocabulary of its
  own: a query reads only that thread's postings (its cost does not grow with the other
  threads in the file), BM25's document frequencies are the thread's, and no term of
  one tenant's thread can match another's. Searches rank by ``bm25`` with ``scope``
  weighted 0. Version 2's migration indexes the turns already in the file.
- ``blobs(tenant, key, value)`` (version 3): byte values by key, outside every thread
  (:mod:`~optical_memory.store.blobs`). Keys are UTF-8 BLOBs, so ``ORDER BY key`` is
  code-point order and a prefix is a range.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from optical_memory.errors import CorruptRecord, StoreError
from optical_memory.records import Turn
from optical_memory.store.codec import decode
from optical_memory.store.search import turn_tokens

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "migrate",
    "search_body",
    "search_prefix",
    "thread_prefix",
]

Migration = Callable[[sqlite3.Connection], None]

# "OMEM": marks a file as ours, so a foreign SQLite database is refused rather than altered.
APPLICATION_ID = 0x4F4D454D

_SCHEMA_V1 = (
    """CREATE TABLE turns (
        tenant BLOB NOT NULL,
        thread BLOB NOT NULL,
        position INTEGER NOT NULL,
        id BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (tenant, thread, position),
        UNIQUE (tenant, thread, id)
    )""",
    """CREATE TABLE segments (
        tenant BLOB NOT NULL,
        thread BLOB NOT NULL,
        id BLOB NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL,
        value BLOB NOT NULL,
        PRIMARY KEY (tenant, thread, id)
    )""",
    "CREATE INDEX segments_by_expiry ON segments (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE segment_pages (
        tenant BLOB NOT NULL,
        thread BLOB NOT NULL,
        segment_id BLOB NOT NULL,
        position INTEGER NOT NULL,
        page_id BLOB NOT NULL,
        PRIMARY KEY (tenant, thread, segment_id, position)
    )""",
    "CREATE INDEX segment_pages_by_page ON segment_pages (tenant, thread, page_id)",
    """CREATE TABLE pages (
        tenant BLOB NOT NULL,
        thread BLOB NOT NULL,
        page_id BLOB NOT NULL,
        png_hash BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (tenant, thread, page_id)
    )""",
    """CREATE TABLE vision_tokens (
        tenant BLOB NOT NULL,
        thread BLOB NOT NULL,
        page_id BLOB NOT NULL,
        model_fingerprint BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (tenant, thread, page_id)
    )""",
)


def _schema_v1(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V1:
        conn.execute(statement)


# unicode61 (SQLite >= 3.27 for remove_diacritics 2) splits and folds again what
# search_tokens already split and folded, so both sides of a MATCH agree.
_SEARCH_SCHEMA = (
    """CREATE TABLE search_threads (
        tenant BLOB NOT NULL,
        thread BLOB NOT NULL,
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        UNIQUE (tenant, thread)
    )""",
    """CREATE VIRTUAL TABLE turn_search USING fts5(
        scope, body, position UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
    )""",
)
_BACKFILL_BATCH = 1000
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_PREFIX_DIGITS = 7


def thread_prefix(number: int) -> str:
    """The fixed-width prefix of a thread's terms: ``number`` in 7 base-36 digits.

    Fixed width keeps prefix and token apart (``"0000001" + "2x"`` can only be thread 1).

    Raises:
        StoreError: ``number`` needs more than 7 digits (36**7, 78 billion threads).
    """
    digits = []
    for _ in range(_PREFIX_DIGITS):
        number, digit = divmod(number, 36)
        digits.append(_DIGITS[digit])
    if number:
        raise StoreError("the search index has numbered 36**7 threads; no number is left")
    return "".join(reversed(digits))


def search_body(prefix: str, tokens: Sequence[str]) -> str:
    """``turn_search.body`` for a turn of the thread with that prefix."""
    return " ".join(prefix + token for token in tokens)


def search_prefix(
    conn: sqlite3.Connection, tenant: bytes, thread: bytes, create: bool
) -> str | None:
    """The thread's term prefix; numbers the thread first when ``create``, else ``None``
    for a thread that has none yet."""
    if create:
        conn.execute(
            "INSERT OR IGNORE INTO search_threads (tenant, thread) VALUES (?, ?)", (tenant, thread)
        )
    row = conn.execute(
        "SELECT id FROM search_threads WHERE tenant = ? AND thread = ?", (tenant, thread)
    ).fetchone()
    return None if row is None else thread_prefix(int(row[0]))


def _schema_v2(conn: sqlite3.Connection) -> None:
    try:
        for statement in _SEARCH_SCHEMA:
            conn.execute(statement)
    except sqlite3.OperationalError as exc:
        if "fts5" not in str(exc).lower():
            raise
        raise StoreError(
            f"this Python's SQLite {sqlite3.sqlite_version} has no FTS5, which the store's "
            "search index needs; use a Python built with FTS5 (python.org, Debian, Ubuntu, "
            "Homebrew and conda builds have it)"
        ) from exc
    # Each thread's turns in order, so rowids grow with positions as appends make them.
    rows = conn.execute(
        "SELECT tenant, thread, position, value FROM turns ORDER BY tenant, thread, position"
    )
    prefixes: dict[tuple[bytes, bytes], str] = {}
    while batch := rows.fetchmany(_BACKFILL_BATCH):
        indexed = []
        for tenant, thread, position, value in batch:
            try:
                turn = decode(Turn, "turn being indexed", value)
            except CorruptRecord:
                continue  # reading it raises CorruptRecord with its key; indexing cannot help
            key = (bytes(tenant), bytes(thread))
            if key not in prefixes:
                prefixes[key] = search_prefix(conn, *key, create=True) or ""
            prefix = prefixes[key]
            indexed.append((prefix, search_body(prefix, turn_tokens(turn)), position))
        conn.executemany(
            "INSERT INTO turn_search (scope, body, position) VALUES (?, ?, ?)", indexed
        )


def _schema_v3(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE blobs (
            tenant BLOB NOT NULL,
            key BLOB NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (tenant, key)
        ) WITHOUT ROWID"""
    )


# MIGRATIONS[n] takes a file from schema version n to n + 1.
MIGRATIONS: tuple[Migration, ...] = (_schema_v1, _schema_v2, _schema_v3)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS, *, name: str = ""
) -> int:
    """Bring a database to the newest schema, running the missing steps in order.

    All steps run in one ``BEGIN IMMEDIATE`` transaction with the version bump, so a failing
    step leaves the file as it was. ``conn`` must be in autocommit mode
    (``isolation_level=None``).

    Args:
        conn: An open connection to the database file.
        migrations: ``migrations[n]`` takes the schema from version ``n`` to ``n + 1``.
        name: How to name the file in errors (its path).

    Returns:
        The schema version of the file afterwards (``len(migrations)``).

    Raises:
        StoreError: The file was written by a newer optical-memory, or holds another
            application's tables.

    Example:
        >>> conn = sqlite3.connect(":memory:", isolation_level=None)
        >>> migrate(conn)
        3
    """
    target = len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        application = conn.execute("PRAGMA application_id").fetchone()[0]
        if application not in (0, APPLICATION_ID):
            raise StoreError(f"{name} is an SQLite database of another application")
        if version > target:
            raise StoreError(
                f"{name} has store schema version {version}, written by a newer "
                f"optical-memory; this version reads up to {target}. Upgrade optical-memory."
            )
        if version == 0 and conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            raise StoreError(f"{name} holds tables of another application")
        for step in range(version, target):
            migrations[step](conn)
        if version != target:
            conn.execute(f"PRAGMA user_version = {int(target)}")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return target
