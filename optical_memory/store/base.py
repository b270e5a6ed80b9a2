"""The store protocol, its asyncio twin, and the checks every backend shares.

A store keeps, per tenant and thread: the turns in append order, the segments, their pages
and cached vision tokens. A store object is bound to one tenant (``tenant=`` at
construction, ``"default"`` otherwise); :meth:`Store.with_tenant` gives a view of another
tenant over the same connection. Nothing in the API takes a raw key, so one tenant can never
reach another's records.

Semantics both backends implement (the conformance suite in ``tests/`` checks them):

- ``append_turns`` is atomic for its batch and idempotent per turn id: a turn whose id is
  already in the thread is skipped, so a retried append never duplicates. Concurrent
  appenders never lose, duplicate or reorder turns.
- ``get_turns(thread, start, stop)`` slices the thread's turns like a list (negative
  indexes count from the end).
- ``put_segment(segment, pages)`` creates or replaces a segment together with exactly the
  pages it lists, atomically: readers see the old pages or all the new ones, never a mix.
  Pages the segment no longer lists are deleted, with their vision tokens.
  ``replace_segment`` does the same but raises ``NotFound`` if the segment is gone.
- A page id (a hash of the PNG bytes) names one page per thread. Two segments may list the
  same page; it lives while any live segment lists it, so deleting, replacing or expiring
  one segment never removes a page another still shows.
- Vision tokens are cached one set per page: a put replaces the previous set, and a read
  with another model's fingerprint is a miss.
- ``retention`` maps a tier to seconds: a segment at that tier, with its pages and vision
  tokens, expires that long after it was last put.
- Reading a missing turn, segment or page raises ``NotFound``; a cache miss on vision
  tokens (absent, or made by another model) returns ``None``.
- ``search_turns(thread, query, limit)`` finds turns by the text a page shows of them,
  best first (:mod:`~optical_memory.store.search` defines the tokens and the ranking);
  a turn is searchable as soon as its append returns, and not after its thread is
  deleted. SQLite searches every turn of the thread, Redis the newest
  :data:`~optical_memory.store.search.SEARCH_WINDOW`.
- Byte values by key, per tenant and outside every thread (:mod:`~optical_memory.store.blobs`):
  ``put_blobs`` writes all its items atomically and overwrites; ``get_blobs`` returns
  ``None`` for absent keys; ``delete_blobs`` ignores them; ``iter_blob_keys(prefix)`` yields
  keys in code-point order. ``delete_thread`` leaves them alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from optical_memory.errors import InvalidRecordError
from optical_memory.records import Page, Segment, Turn, VisionTokens
from optical_memory.store.blobs import BlobItems
from optical_memory.store.search import TurnHit

__all__ = [
    "DEFAULT_TENANT",
    "MAX_NAME_CHARS",
    "AsyncStore",
    "Retention",
    "Store",
    "TurnHit",
    "check_name",
    "check_retention",
    "check_segment_pages",
    "check_turns",
]

DEFAULT_TENANT = "default"
# Tenant and thread names are free text (any Unicode) up to this many characters.
MAX_NAME_CHARS = 256

Retention = Mapping[str, float]


def check_name(value: object, what: str) -> str:
    """Validate a tenant or thread name."""
    if not isinstance(value, str):
        raise InvalidRecordError(f"{what} must be a str, got {type(value).__name__}")
    if not value or len(value) > MAX_NAME_CHARS:
        raise InvalidRecordError(f"{what} must have 1 to {MAX_NAME_CHARS} characters")
    return value


def check_turns(turns: Sequence[Turn]) -> list[Turn]:
    """Validate a batch of turns for ``append_turns``."""
    if isinstance(turns, Turn) or not isinstance(turns, Sequence):
        raise InvalidRecordError("append_turns takes a sequence of Turn objects")
    batch = list(turns)
    for turn in batch:
        if not isinstance(turn, Turn):
            raise InvalidRecordError(f"append_turns takes Turn objects, got {type(turn).__name__}")
    ids = [turn.id for turn in batch]
    if len(set(ids)) != len(ids):
        raise InvalidRecordError("append_turns got the same turn id twice in one batch")
    return batch


def check_segment_pages(segment: Segment, pages: Sequence[Page]) -> list[Page]:
    """Validate that ``pages`` are exactly the pages ``segment`` lists, in its order."""
    if not isinstance(segment, Segment):
        raise InvalidRecordError(f"expected a Segment, got {type(segment).__name__}")
    batch = list(pages)
    for page in batch:
        if not isinstance(page, Page):
            raise InvalidRecordError(f"expected Page objects, got {type(page).__name__}")
    if [page.id for page in batch] != list(segment.page_ids):
        raise InvalidRecordError(
            f"segment {segment.id!r} lists pages {list(segment.page_ids)} but "
            f"{[page.id for page in batch]} were given"
        )
    return batch


def check_retention(retention: Retention | None) -> dict[str, float]:
    """Validate a tier -> seconds mapping."""
    result: dict[str, float] = {}
    for tier, seconds in (retention or {}).items():
        check_name(tier, "retention tier")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise InvalidRecordError(f"retention for tier {tier!r} must be seconds > 0")
        result[tier] = float(seconds)
    return result


@runtime_checkable
class Store(Protocol):
    """What every synchronous store does. See the module docstring for the semantics."""

    @property
    def tenant(self) -> str:
        """The tenant this store object reads and writes."""
        ...

    def with_tenant(self, tenant: str) -> Store:
        """A view of the same store for another tenant, sharing the connection."""
        ...

    def append_turns(self, thread: str, turns: Sequence[Turn]) -> int:
        """Append turns atomically; returns how many were new (known ids are skipped)."""
        ...

    def get_turns(self, thread: str, start: int = 0, stop: int | None = None) -> list[Turn]:
        """The thread's turns ``[start:stop]`` in append order (empty for an unknown thread)."""
        ...

    def get_turn(self, thread: str, turn_id: str) -> Turn:
        """One turn by id. Raises ``NotFound``."""
        ...

    def count_turns(self, thread: str) -> int:
        """How many turns the thread has."""
        ...

    def search_turns(self, thread: str, query: str, limit: int = 10) -> list[TurnHit]:
        """Turns matching ``query`` as ``(index, turn, score)``, best first (``[]`` for a
        query with no letters or digits). Raises ``InvalidRecordError`` for a non-str
        query or a limit that is not an int >= 0."""
        ...

    def put_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """Create or atomically replace a segment and its pages."""
        ...

    def replace_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """Atomically replace an existing segment and its pages. Raises ``NotFound``."""
        ...

    def get_segment(self, thread: str, segment_id: str) -> Segment:
        """One segment by id. Raises ``NotFound``."""
        ...

    def list_segments(self, thread: str) -> list[Segment]:
        """The thread's segments, oldest first (by ``created_at``, then id)."""
        ...

    def delete_segment(self, thread: str, segment_id: str) -> None:
        """Delete a segment with its pages and vision tokens (no error if absent)."""
        ...

    def get_page(self, thread: str, page_id: str) -> Page:
        """One page by id. Raises ``NotFound``."""
        ...

    def get_pages(self, thread: str, segment_id: str) -> list[Page]:
        """A segment's pages in order. Raises ``NotFound`` for an unknown segment."""
        ...

    def put_vision_tokens(self, thread: str, page_id: str, tokens: VisionTokens) -> None:
        """Cache vision tokens for a stored page. Raises ``NotFound`` for an unknown page."""
        ...

    def get_vision_tokens(
        self, thread: str, page_id: str, model_fingerprint: str
    ) -> VisionTokens | None:
        """Cached vision tokens made by that model, or ``None``."""
        ...

    def list_threads(self) -> list[str]:
        """The tenant's threads that hold any record, sorted."""
        ...

    def delete_thread(self, thread: str) -> None:
        """Delete everything of one thread (no error if absent)."""
        ...

    def put_blobs(self, items: BlobItems) -> None:
        """Store byte values under keys, all at once; existing keys are overwritten."""
        ...

    def get_blobs(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order, ``None`` where a key is absent."""
        ...

    def delete_blobs(self, keys: Sequence[str]) -> None:
        """Delete values by key (absent keys are ignored)."""
        ...

    def iter_blob_keys(self, prefix: str | None = None) -> Iterator[str]:
        """Keys starting with ``prefix`` (every key when ``None``), in code-point order."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class AsyncStore(Protocol):
    """The asyncio twin of :class:`Store`: the same methods, awaited; ``aclose`` to close."""

    @property
    def tenant(self) -> str: ...

    def with_tenant(self, tenant: str) -> AsyncStore: ...

    async def append_turns(self, thread: str, turns: Sequence[Turn]) -> int: ...

    async def get_turns(
        self, thread: str, start: int = 0, stop: int | None = None
    ) -> list[Turn]: ...

    async def get_turn(self, thread: str, turn_id: str) -> Turn: ...

    async def count_turns(self, thread: str) -> int: ...

    async def search_turns(self, thread: str, query: str, limit: int = 10) -> list[TurnHit]: ...

    async def put_segment(self, segment: Segment, pages: Sequence[Page]) -> None: ...

    async def replace_segment(self, segment: Segment, pages: Sequence[Page]) -> None: ...

    async def get_segment(self, thread: str, segment_id: str) -> Segment: ...

    async def list_segments(self, thread: str) -> list[Segment]: ...

    async def delete_segment(self, thread: str, segment_id: str) -> None: ...

    async def get_page(self, thread: str, page_id: str) -> Page: ...

    async def get_pages(self, thread: str, segment_id: str) -> list[Page]: ...

    async def put_vision_tokens(self, thread: str, page_id: str, tokens: VisionTokens) -> None: ...

    async def get_vision_tokens(
        self, thread: str, page_id: str, model_fingerprint: str
    ) -> VisionTokens | None: ...

    async def list_threads(self) -> list[str]: ...

    async def delete_thread(self, thread: str) -> None: ...

    async def put_blobs(self, items: BlobItems) -> None: ...

    async def get_blobs(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def delete_blobs(self, keys: Sequence[str]) -> None: ...

    def iter_blob_keys(self, prefix: str | None = None) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...
