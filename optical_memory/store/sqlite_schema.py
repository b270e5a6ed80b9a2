"""The SQLite store's schema, and the migrations that bring a file to it.

Schema (version 1, kept in ``PRAGMA user_version``; :data:`MIGRATIONS` step it forward,
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
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from optical_memory.errors import StoreError

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "Migration", "migrate"]

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


# MIGRATIONS[n] takes a file from schema version n to n + 1.
MIGRATIONS: tuple[Migration, ...] = (_schema_v1,)
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
        1
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
