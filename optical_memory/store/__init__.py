"""Stores: where turns, segments, pages and vision tokens live.

``SQLiteStore`` is the embedded default (one file, no server); ``RedisStore`` is for
production (single Redis, managed Redis or Redis Cluster). Both have asyncio twins and pass
one conformance suite. ``open_store(url)`` picks the backend from a URL.
"""

from __future__ import annotations

from optical_memory.store.base import AsyncStore, Retention, Store

__all__ = ["AsyncStore", "Retention", "Store"]
