"""Stores: where turns, segments, pages and vision tokens live.

``SQLiteStore`` is the embedded default (one file, no server); ``RedisStore`` is for
production (single Redis, managed Redis or Redis Cluster). Both have asyncio twins and pass
one conformance suite. ``open_store(url)`` picks the backend from a URL::

    store = open_store("sqlite:///memory.db")           # relative path
    store = open_store("sqlite:////var/lib/app/m.db")   # absolute path (four slashes)
    store = open_store("redis://user:pass@localhost:6379/0", tenant="acme")
    store = open_store("rediss+cluster://node1:6379")   # Redis Cluster over TLS
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from optical_memory.errors import InvalidStoreURL
from optical_memory.store.base import AsyncStore, Retention, Store
from optical_memory.store.redis import AsyncRedisStore, RedisStore
from optical_memory.store.sqlite import AsyncSQLiteStore, SQLiteStore

__all__ = [
    "AsyncRedisStore",
    "AsyncSQLiteStore",
    "AsyncStore",
    "RedisStore",
    "Retention",
    "SQLiteStore",
    "Store",
    "open_async_store",
    "open_store",
]

REDIS_SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster", "unix")


def open_store(url: str, **options: Any) -> Store:
    """Open a store from a URL.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``redis://...``,
            ``rediss://...`` (TLS), ``redis+cluster://...`` or ``rediss+cluster://...``.
        **options: Passed to the store's constructor (``tenant``, ``retention``, ...).

    Raises:
        InvalidStoreURL: The URL is not a string or names an unknown scheme.
    """
    scheme, location = _parse(url)
    if scheme == "sqlite":
        return SQLiteStore(location, **options)
    return RedisStore(location, **options)


def open_async_store(url: str, **options: Any) -> AsyncStore:
    """The asyncio twin of :func:`open_store`: same URLs, returns an :class:`AsyncStore`."""
    scheme, location = _parse(url)
    if scheme == "sqlite":
        return AsyncSQLiteStore(location, **options)
    return AsyncRedisStore(location, **options)


def _parse(url: str) -> tuple[str, str]:
    if not isinstance(url, str) or "://" not in url:
        raise InvalidStoreURL(
            f"a store URL looks like sqlite:///file.db or redis://host, got {_shown(url)}"
        )
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative/path.db and sqlite:////absolute/path.db, as SQLAlchemy spells them.
        path = unquote(url.split("://", 1)[1])
        if not path.startswith("/") or len(path) < 2:
            raise InvalidStoreURL(
                f"a SQLite URL needs a path: sqlite:///file.db, got {_shown(url)}"
            )
        return scheme, path[1:]
    if scheme in REDIS_SCHEMES:
        return scheme, url
    raise InvalidStoreURL(
        f"unknown store scheme {scheme!r}; use sqlite, redis, rediss, redis+cluster or "
        "rediss+cluster"
    )


def _shown(url: object) -> str:
    """A URL for an error message, without its credentials."""
    if not isinstance(url, str):
        return type(url).__name__
    parts = urlsplit(url) if "://" in url else None
    if parts is not None and parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return repr(url)
