"""Redis stores: :class:`RedisStore` (redis-py) and its asyncio twin :class:`AsyncRedisStore`.

Both send plain commands only (strings, hashes, lists, sorted sets, ``WATCH``/``MULTI``/
``EXEC``, ``PEXPIRE``, ``SCAN``), so Debian's ``redis-server``, managed Redis and Redis
Cluster all work. Keys, URL parsing, retries and command plans live once in
:mod:`optical_memory.store.redis_layout`; each method here is the IO around them.

Every operation is idempotent (appends skip known turn ids, puts overwrite), so each one is
replayed whole on a connection error or timeout with exponential backoff, then raises
``StoreUnavailable``. A refused password is not retried.

``search_turns`` scans the thread's newest
:data:`~optical_memory.store.search.SEARCH_WINDOW` turns (older ones are not found) by
their stored search tokens; BM25 statistics count those turns only. A search is an
``LLEN``, one ``MGET`` of the text blocks, the ranking in Python, and an ``LINDEX`` per hit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.backoff import NoBackoff
from redis.exceptions import WatchError
from redis.retry import Retry

from optical_memory.records import Page, Segment, Turn, VisionTokens
from optical_memory.store.base import DEFAULT_TENANT, Retention, check_name
from optical_memory.store.blobs import (
    KEYS_PER_PAGE,
    BlobItems,
    check_blob_keys,
    check_blob_prefix,
    key_bytes,
    key_text,
)
from optical_memory.store.redis_connection import (
    DEFAULT_URL,
    MAX_WATCH_CONFLICTS,
    cluster_unreachable_is_a_connection_error,
    is_retryable,
    reraise_lost_connection,
)
from optical_memory.store.redis_layout import RedisStoreBase, lrange_bounds, new_version
from optical_memory.store.search import TurnHit
from optical_memory.store.search_scan import rank

__all__ = ["AsyncRedisStore", "RedisStore"]

T = TypeVar("T")
_SCAN_COUNT = 1000
_DELETE_BATCH = 500


def _ignore(error: Exception) -> None:
    """Retry failure hook: redis-py already dropped the broken connection."""


def _watch_and_hmget(pipe: Any, key: str, fields: Sequence[Any]) -> list[Any]:
    """``WATCH key`` and ``HMGET key fields`` in one round trip on the pipeline's connection.

    redis-py sends ``WATCH`` on its own and waits for the reply; writing both commands at
    once saves a round trip per append (standalone Redis only: a cluster pipeline picks
    its node per command). Any failure drops the connection, so no reply is left unread.
    """
    conn = pipe.connection
    if conn is None:
        conn = pipe.connection = pipe.connection_pool.get_connection()
    try:
        conn.send_packed_command(conn.pack_commands([("WATCH", key), ("HMGET", key, *fields)]))
        conn.read_response()
        pipe.watching = True
        found: list[Any] = conn.read_response()
    except BaseException:
        pipe.watching = False
        conn.disconnect()
        raise
    return found


async def _async_watch_and_hmget(pipe: Any, key: str, fields: Sequence[Any]) -> list[Any]:
    """The asyncio form of :func:`_watch_and_hmget`."""
    conn = pipe.connection
    if conn is None:
        conn = pipe.connection = await pipe.connection_pool.get_connection()
    try:
        await conn.send_packed_command(
            conn.pack_commands([("WATCH", key), ("HMGET", key, *fields)])
        )
        await conn.read_response()
        pipe.watching = True
        found: list[Any] = await conn.read_response()
    except BaseException:
        pipe.watching = False
        await conn.disconnect()
        raise
    return found


# How often get_turn re-reads when the turn index changed under it.
_BRACKETED_READS = 3


class RedisStore(RedisStoreBase):
    """A store on Redis or Redis Cluster.

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://`` for TLS (options such
            as ``?ssl_ca_certs=/etc/ca.pem`` in the query), ``unix:///path.sock``, or
            ``redis+cluster://host:port`` / ``rediss+cluster://`` (or ``?cluster=true``)
            for Redis Cluster. Credentials never appear in reprs, logs or errors.
        tenant: The tenant this object reads and writes.
        retention: Tier -> seconds; a segment at that tier, with its pages and vision
            tokens, expires that long after it was last put.
        retries: Attempts after the first on connection errors and timeouts.
        backoff_base, backoff_cap: Exponential backoff between attempts, in seconds.
        socket_timeout, socket_connect_timeout: Seconds (a URL option wins).
        max_connections: Connection pool size (per node for a cluster).

    Raises:
        InvalidStoreURL: The URL is malformed or has an unknown scheme or option.
        StoreUnavailable: A cluster seed node cannot be reached (standalone servers are
            connected lazily, on the first operation).

    Example:
        >>> store = RedisStore("redis://localhost:6379/0", tenant="acme")  # doctest: +SKIP
        >>> store.append_turns("thread-1", [Turn({"role": "user", "content": "hi"})])
        1
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        tenant: str = DEFAULT_TENANT,
        retention: Retention | None = None,
        retries: int = 3,
        backoff_base: float = 0.05,
        backoff_cap: float = 1.0,
        socket_timeout: float = 5.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> None:
        self._setup(url, tenant, retention, retries, backoff_base, backoff_cap)
        self._retry = self._policy.sync()
        options = self._client_options(
            Retry(NoBackoff(), 0),
            {
                "socket_timeout": socket_timeout,
                "socket_connect_timeout": socket_connect_timeout,
                "max_connections": max_connections,
            },
        )
        self._client: Any
        with self._errors("connect"):
            if self._target.cluster:
                # redis-py's sync cluster client connects (and maps the slots) right away.
                def connect() -> redis.cluster.RedisCluster:
                    with cluster_unreachable_is_a_connection_error():
                        return redis.cluster.RedisCluster.from_url(
                            self._target.client_url, **options
                        )

                self._client = self._retry.call_with_retry(connect, _ignore, is_retryable)
            else:
                self._client = redis.Redis.from_url(self._target.client_url, **options)

    def with_tenant(self, tenant: str) -> RedisStore:
        """A view of another tenant sharing this store's connections (closing it is a no-op).

        Example:
            >>> other = store.with_tenant("globex")  # doctest: +SKIP
        """
        view: RedisStore = self._view(tenant)
        return view

    def _run(self, action: str, operation: Callable[[], T]) -> T:
        def attempt() -> T:
            with cluster_unreachable_is_a_connection_error():
                return operation()

        with self._errors(action):
            self._check_open(action)
            return self._retry.call_with_retry(attempt, _ignore, is_retryable)

    def _transaction(
        self, watch: Sequence[str], plan: Callable[[Any], Sequence[tuple[Any, ...]] | None]
    ) -> bool:
        """WATCH ``watch``, let ``plan`` read and return commands, run them in MULTI/EXEC.

        With ``watch`` empty, ``plan`` issues its own ``WATCH`` before reading.

        Returns ``False`` when ``plan`` returned ``None`` (nothing to write). Conflicts
        re-run ``plan``; a connection lost while watching goes to the retry policy.
        """
        with self._client.pipeline(transaction=True) as pipe:
            for _ in range(MAX_WATCH_CONFLICTS):
                try:
                    if watch:
                        pipe.watch(*watch)
                    commands = plan(pipe)
                    if commands is None:
                        pipe.reset()
                        return False
                    pipe.multi()
                    for command in commands:
                        pipe.execute_command(*command)
                    pipe.execute()
                    return True
                except WatchError as exc:
                    reraise_lost_connection(exc)
                    pipe.reset()
            raise WatchError(f"{MAX_WATCH_CONFLICTS} conflicting writers in a row")

    # ---- turns ----------------------------------------------------------------------

    def append_turns(self, thread: str, turns: Sequence[Turn]) -> int:
        """Append turns atomically; turns whose id is already stored are skipped.

        ``WATCH`` with an ``HMGET`` of the ids and count, then one ``MULTI``/``EXEC`` with
        ``RPUSH`` and ``HSET``: two round trips for the whole batch (three on a cluster).

        Returns:
            How many turns were new.

        Example:
            >>> store.append_turns("t1", [Turn({"role": "user", "content": "hi"})])
            1
        """
        thread = self._thread(thread)
        batch, encoded = self._encode_turns(turns)
        if not batch:
            return 0
        check = self._append_check(thread, batch)
        added = 0

        key, fields = check[0], check[1:]
        cluster = self._target.cluster

        def plan(pipe: Any) -> Sequence[tuple[Any, ...]] | None:
            nonlocal added
            found = pipe.hmget(key, fields) if cluster else _watch_and_hmget(pipe, key, fields)
            result = self._append_plan(thread, batch, encoded, found)
            added = result.added
            return result.commands or None

        def attempt() -> int:
            return added if self._transaction([key] if cluster else [], plan) else 0

        return self._run(f"append to thread {thread!r}", attempt)

    def get_turns(self, thread: str, start: int = 0, stop: int | None = None) -> list[Turn]:
        """The thread's turns ``[start:stop]`` in append order (empty for an unknown thread)."""
        thread = self._thread(thread)
        bounds = lrange_bounds(start, stop)
        if bounds is None:
            return []
        key = self._keys.turns(thread)

        def attempt() -> tuple[int, list[bytes]]:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.llen(key)
                pipe.lrange(key, *bounds)
                length, values = pipe.execute()
            return int(length), values

        length, values = self._run(f"read thread {thread!r}", attempt)
        first = bounds[0] if bounds[0] >= 0 else max(0, length + bounds[0])
        return self._decode_turns(thread, values, first)

    def get_turn(self, thread: str, turn_id: str) -> Turn:
        """One turn by id. Raises ``NotFound``."""
        thread = self._thread(thread)
        index = self._keys.turn_index(thread)
        field = self._turn_field(check_name(turn_id, "turn id"))

        def attempt() -> tuple[Any, Any]:
            # Index and list are two reads: a delete_thread and re-append between them
            # could pair a position with another list. Reading the position again after
            # the value brackets the read; positions never move otherwise.
            for _ in range(_BRACKETED_READS):
                position = self._client.hget(index, field)
                if position is None:
                    return None, None
                value = self._client.lindex(self._keys.turns(thread), int(position))
                if self._client.hget(index, field) == position:
                    break
            return position, value

        position, value = self._run(f"read turn {turn_id!r} of thread {thread!r}", attempt)
        return self._decode_turn(thread, turn_id, position, value)

    def count_turns(self, thread: str) -> int:
        """How many turns the thread has."""
        thread = self._thread(thread)
        key = self._keys.turns(thread)
        return int(self._run(f"count thread {thread!r}", lambda: self._client.llen(key)))

    def search_turns(self, thread: str, query: str, limit: int = 10) -> list[TurnHit]:
        """The thread's turns that match ``query``, best first, at most ``limit``.

        Scans the newest :data:`~optical_memory.store.search.SEARCH_WINDOW` turns' stored
        search tokens (see :mod:`~optical_memory.store.search` for tokens and ranking).

        Returns:
            ``TurnHit(index, turn, score)`` tuples, highest score first, then newest.

        Raises:
            InvalidRecordError: ``query`` is not a str or ``limit`` not an int >= 0.

        Example:
            >>> [hit.index for hit in store.search_turns("t1", "INV-42")]  # doctest: +SKIP
            [0]
        """
        parsed = self._search_query(thread, query, limit)
        if parsed is None:
            return []
        turns = self._keys.turns(thread)

        def attempt() -> list[TurnHit]:
            window = self._search_window(int(self._client.llen(turns)))
            blocks = self._text_blocks(window)
            values = self._client.mget(self._text_keys(thread, blocks)) if blocks else []
            texts, rebuild = self._scan_blocks(window, blocks, values)
            if rebuild:
                contents = self._rebuild_texts(thread, rebuild)
                values = [contents.get(b, v) for b, v in zip(blocks, values, strict=True)]
                texts, _ = self._scan_blocks(window, blocks, values)
            ranked = rank(parsed, texts, limit)
            if not ranked:
                return []
            with self._client.pipeline(transaction=False) as pipe:
                for position, _ in ranked:
                    pipe.lindex(turns, position)
                found = pipe.execute()
            return self._search_hits(thread, ranked, texts, found)

        return self._run(f"search thread {thread!r}", attempt)

    def _rebuild_texts(self, thread: str, blocks: list[int]) -> dict[int, bytes]:
        """Write text blocks afresh from the turns, unless the thread changes meanwhile
        (then the next search tries again); returns their new contents either way."""
        turns = self._keys.turns(thread)
        first, last = self._rebuild_span(blocks)
        with self._client.pipeline(transaction=True) as pipe:
            pipe.watch(turns)  # the texts must be those of the turns the list still holds
            values = pipe.lrange(turns, first, last)
            commands, contents = self._rebuild_plan(thread, blocks, first, values)
            if commands:
                pipe.multi()
                for command in commands:
                    pipe.execute_command(*command)
                with contextlib.suppress(WatchError):
                    pipe.execute()
        return contents

    # ---- segments and pages ---------------------------------------------------------

    def put_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """Create or atomically replace a segment with exactly the pages it lists.

        Example:
            >>> store.put_segment(segment, pages)  # doctest: +SKIP
        """
        self._write_segment(segment, pages, must_exist=False)

    def replace_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """Atomically replace an existing segment and its pages. Raises ``NotFound``."""
        self._write_segment(segment, pages, must_exist=True)

    def _write_segment(self, segment: Segment, pages: Sequence[Page], must_exist: bool) -> None:
        checked, key = self._check_segment(segment, pages)
        thread, version = segment.thread, new_version()
        seen: list[Any] = [None]  # the segver token the last attempt read

        def plan(pipe: Any) -> Sequence[tuple[Any, ...]]:
            seen[0] = self._watch_version(pipe, thread)
            raw = pipe.get(key)
            if must_exist:
                self._decode_segment(thread, segment.id, raw)
            candidates = self._old_pages(self._old_segment(key, raw))
            own = self._unshared_pages(pipe, thread, segment.id, candidates, seen[0])
            return self._segment_plan(segment, checked, own, version)

        action = f"put segment {segment.id!r} of thread {thread!r}"
        self._run(action, lambda: self._transaction([key], plan))
        self._lists.written(self._keys.segments(thread), seen[0], version, put=segment)

    def _watch_version(self, pipe: Any, thread: str) -> Any:
        """``WATCH`` the thread's ``segver`` and read it: a segment write meanwhile aborts."""
        version_key = self._keys.segment_version(thread)
        pipe.watch(version_key)
        return pipe.get(version_key)

    def _unshared_pages(
        self, pipe: Any, thread: str, segment_id: str, candidates: list[str], token: Any
    ) -> list[str]:
        """Of the pages a segment stops listing, those no other segment of the thread lists."""
        if not candidates:
            return []
        listing = self._cached_listing(thread, token)
        if listing is not None:  # exact while segver is unchanged, which EXEC checks
            return self._unshared_by_listing(listing, segment_id, candidates)
        # Watched: a put that lists one of them meanwhile rewrites it, and we start over.
        pipe.watch(*self._page_keys_of(thread, candidates))
        others = self._others(segment_id, pipe.zrange(self._keys.segments(thread), 0, -1))
        listings = pipe.hmget(self._keys.segment_pages(thread), others) if others else []
        need = self._claimants(thread, others, listings, candidates)
        values = pipe.execute_command("MGET", *need) if need else []
        return self._unshared(need, values, candidates)

    def get_segment(self, thread: str, segment_id: str) -> Segment:
        """One segment by id. Raises ``NotFound``."""
        thread = self._thread(thread)
        key = self._keys.segment(thread, check_name(segment_id, "segment id"))
        value = self._run(f"read segment {segment_id!r}", lambda: self._client.get(key))
        return self._decode_segment(thread, segment_id, value)

    def list_segments(self, thread: str) -> list[Segment]:
        """The thread's live segments, oldest first; expired ones are dropped from the index.

        Without retention, a listing whose ``segver`` token is unchanged since the last
        one costs a single ``GET``.
        """
        thread = self._thread(thread)
        index = self._keys.segments(thread)
        token: Any = None
        if not self._retention:
            version_key = self._keys.segment_version(thread)
            # Read before the segments: a write in between makes the listing stale, not wrong.
            token = self._run("read segment version", lambda: self._client.get(version_key))
            cached = self._cached_listing(thread, token)
            if cached is not None:
                return cached

        def attempt() -> tuple[list[bytes], list[Any]]:
            members = self._client.zrange(index, 0, -1)
            if not members:
                return [], []
            return members, self._client.mget(self._segment_keys(thread, members))

        members, values = self._run(f"list segments of thread {thread!r}", attempt)
        live, gone = self._decode_segments(thread, members, values)
        if token is not None and not gone:
            self._lists.put(index, token, live)
        if gone:
            keys = self._segment_keys(thread, gone)

            def plan(pipe: Any) -> Sequence[tuple[Any, ...]] | None:
                # A put that revived one of them meanwhile wins: leave the index alone.
                live = pipe.execute_command("EXISTS", *keys)
                return None if live else self._prune_plan(thread, gone)

            self._run(f"prune segments of {thread!r}", lambda: self._transaction(keys, plan))
        return live

    def delete_segment(self, thread: str, segment_id: str) -> None:
        """Delete a segment with its pages and vision tokens (no error if absent)."""
        thread = self._thread(thread)
        key = self._keys.segment(thread, check_name(segment_id, "segment id"))

        version = new_version()
        seen: list[Any] = [None]

        def plan(pipe: Any) -> Sequence[tuple[Any, ...]]:
            seen[0] = self._watch_version(pipe, thread)
            candidates = self._old_pages(self._old_segment(key, pipe.get(key)))
            dropped = self._unshared_pages(pipe, thread, segment_id, candidates, seen[0])
            return self._delete_plan(thread, segment_id, dropped, version)

        self._run(f"delete segment {segment_id!r}", lambda: self._transaction([key], plan))
        self._lists.written(self._keys.segments(thread), seen[0], version, removed=segment_id)

    def get_page(self, thread: str, page_id: str) -> Page:
        """One page by id. Raises ``NotFound``."""
        thread = self._thread(thread)
        key = self._keys.page(thread, check_name(page_id, "page id"))
        value = self._run(f"read page {page_id!r}", lambda: self._client.get(key))
        return self._decode_page(thread, page_id, value)

    def get_pages(self, thread: str, segment_id: str) -> list[Page]:
        """A segment's pages in order. Raises ``NotFound`` for an unknown segment."""
        thread = self._thread(thread)
        key = self._keys.segment(thread, check_name(segment_id, "segment id"))

        def attempt() -> tuple[Segment, list[Any]]:
            for _ in range(MAX_WATCH_CONFLICTS):
                raw = self._client.get(key)
                segment = self._decode_segment(thread, segment_id, raw)
                if not segment.page_ids:
                    return segment, []
                values = self._client.mget(self._page_keys(segment))
                # A page gone means a replace ran between the two reads (or the segment
                # is expiring): read again, so the pages always match one segment version.
                if None not in values or self._client.get(key) == raw:
                    return segment, values
            raise WatchError(f"segment {segment_id!r} kept changing while read")

        segment, values = self._run(f"read pages of {segment_id!r}", attempt)
        return self._decode_pages(thread, segment, values)

    def put_vision_tokens(self, thread: str, page_id: str, tokens: VisionTokens) -> None:
        """Cache vision tokens for a stored page (they expire with it). Raises ``NotFound``."""
        value = self._check_vision(thread, page_id, tokens)
        page = self._keys.page(thread, page_id)

        def plan(pipe: Any) -> Sequence[tuple[Any, ...]]:
            return self._vision_plan(thread, page_id, tokens, value, int(pipe.pttl(page)))

        self._run(f"cache tokens of page {page_id!r}", lambda: self._transaction([page], plan))

    def get_vision_tokens(
        self, thread: str, page_id: str, model_fingerprint: str
    ) -> VisionTokens | None:
        """Cached vision tokens made by that model, or ``None``."""
        thread = self._thread(thread)
        key = self._keys.vision(thread, check_name(page_id, "page id"))
        field = check_name(model_fingerprint, "model fingerprint").encode("utf-8", "surrogatepass")
        value = self._run(f"read tokens of {page_id!r}", lambda: self._client.hget(key, field))
        return self._decode_vision(thread, page_id, model_fingerprint, value)

    # ---- threads --------------------------------------------------------------------

    def list_threads(self) -> list[str]:
        """The tenant's threads that hold any record, sorted (SCANs every primary)."""
        pattern = self._keys.tenant_pattern()

        def attempt() -> list[Any]:
            return list(self._client.scan_iter(match=pattern, count=_SCAN_COUNT))

        return self._threads(self._run(f"list threads of tenant {self.tenant!r}", attempt))

    def delete_thread(self, thread: str) -> None:
        """Delete everything of one thread (no error if absent)."""
        thread = self._thread(thread)
        pattern = self._keys.thread_pattern(thread)
        options: dict[str, Any] = {}
        if self._target.cluster:
            # Every key of the thread shares its hash tag: scan only the node owning it.
            options["target_nodes"] = self._client.get_node_from_key(self._keys.turns(thread))

        def attempt() -> None:
            scan = self._client.scan_iter(match=pattern, count=_SCAN_COUNT, **options)
            keys = self._thread_keys(thread, list(scan))
            for first in range(0, len(keys), _DELETE_BATCH):
                with self._client.pipeline(transaction=True) as pipe:
                    pipe.execute_command("DEL", *keys[first : first + _DELETE_BATCH])
                    pipe.execute()

        self._run(f"delete thread {thread!r}", attempt)

    # ---- byte values by key ---------------------------------------------------------

    def put_blobs(self, items: BlobItems) -> None:
        """Store byte values under keys in one ``MULTI``; existing keys are overwritten.

        Args:
            items: A mapping of key to bytes, or ``(key, bytes)`` pairs.

        Raises:
            InvalidRecordError: A key is not a str of 1 to 1,024 characters, or a value is
                not bytes.
            RecordTooLarge: A value exceeds 64 MiB.
        """
        commands = self._blob_put_plan(items)
        if commands:
            self._run("write blobs", lambda: self._multi(commands))

    def get_blobs(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order (one ``HMGET``), ``None`` where absent.

        Raises:
            CorruptRecord: A stored value fails its checksum.
        """
        wanted = check_blob_keys(keys)
        if not wanted:
            return []
        raw = [key_bytes(key) for key in wanted]
        where = self._keys.blob_values()
        values = self._run("read blobs", lambda: self._client.hmget(where, raw))
        return self._decode_blobs(wanted, values)

    def delete_blobs(self, keys: Sequence[str]) -> None:
        """Delete values by key in one ``MULTI`` (absent keys are ignored)."""
        commands = self._blob_delete_plan(keys)
        if commands:
            self._run("delete blobs", lambda: self._multi(commands))

    def iter_blob_keys(self, prefix: str | None = None) -> Iterator[str]:
        """Keys starting with ``prefix`` (all when ``None``), in code-point order.

        Reads :data:`~optical_memory.store.blobs.KEYS_PER_PAGE` keys per ``ZRANGEBYLEX``, so
        keys written while iterating may or may not be seen.
        """
        start = check_blob_prefix(prefix)
        after: str | None = None
        index = self._keys.blob_keys()
        while True:
            low, high = self._blob_range(start, after)
            raw = self._run(
                "list blob keys",
                lambda: self._client.zrangebylex(index, low, high, 0, KEYS_PER_PAGE),  # noqa: B023
            )
            keys = [key_text(key) for key in raw]
            yield from keys
            if len(keys) < KEYS_PER_PAGE:
                return
            after = keys[-1]

    def _multi(self, commands: Sequence[tuple[Any, ...]]) -> None:
        with self._client.pipeline(transaction=True) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            pipe.execute()

    def close(self) -> None:
        """Release the connection pool (a view from :meth:`with_tenant` leaves it open)."""
        if self._owns_client and not self._state.closed:
            self._state.closed = True
            self._client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncRedisStore(RedisStoreBase):
    """The asyncio twin of :class:`RedisStore`: the same parameters and methods, awaited.

    Example:
        >>> store = AsyncRedisStore("redis://localhost:6379/0", tenant="acme")  # doctest: +SKIP
        >>> await store.append_turns("t1", [Turn({"role": "user", "content": "hi"})])
        1
        >>> await store.aclose()
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        tenant: str = DEFAULT_TENANT,
        retention: Retention | None = None,
        retries: int = 3,
        backoff_base: float = 0.05,
        backoff_cap: float = 1.0,
        socket_timeout: float = 5.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> None:
        self._setup(url, tenant, retention, retries, backoff_base, backoff_cap)
        self._retry = self._policy.asyncio()
        options = self._client_options(
            redis.asyncio.retry.Retry(NoBackoff(), 0),
            {
                "socket_timeout": socket_timeout,
                "socket_connect_timeout": socket_connect_timeout,
                "max_connections": max_connections,
            },
        )
        self._client: Any
        with self._errors("connect"):
            # Both asyncio clients connect lazily, on the first command.
            if self._target.cluster:
                self._client = redis.asyncio.cluster.RedisCluster.from_url(
                    self._target.client_url, **options
                )
            else:
                self._client = redis.asyncio.Redis.from_url(self._target.client_url, **options)

    def with_tenant(self, tenant: str) -> AsyncRedisStore:
        """A view of another tenant sharing this store's connections (closing it is a no-op)."""
        view: AsyncRedisStore = self._view(tenant)
        return view

    async def _run(self, action: str, operation: Callable[[], Awaitable[T]]) -> T:
        async def attempt() -> T:
            with cluster_unreachable_is_a_connection_error():
                return await operation()

        with self._errors(action):
            self._check_open(action)
            return await self._retry.call_with_retry(attempt, _async_ignore, is_retryable)

    async def _transaction(
        self,
        watch: Sequence[str],
        plan: Callable[[Any], Awaitable[Sequence[tuple[Any, ...]] | None]],
    ) -> bool:
        """The asyncio form of :meth:`RedisStore._transaction`."""
        async with self._client.pipeline(transaction=True) as pipe:
            for _ in range(MAX_WATCH_CONFLICTS):
                try:
                    if watch:
                        await pipe.watch(*watch)
                    commands = await plan(pipe)
                    if commands is None:
                        await pipe.reset()
                        return False
                    pipe.multi()
                    for command in commands:
                        pipe.execute_command(*command)
                    await pipe.execute()
                    return True
                except WatchError as exc:
                    reraise_lost_connection(exc)
                    await pipe.reset()
            raise WatchError(f"{MAX_WATCH_CONFLICTS} conflicting writers in a row")

    async def append_turns(self, thread: str, turns: Sequence[Turn]) -> int:
        """Append turns atomically; returns how many were new (known ids are skipped)."""
        thread = self._thread(thread)
        batch, encoded = self._encode_turns(turns)
        if not batch:
            return 0
        check = self._append_check(thread, batch)
        added = 0

        key, fields = check[0], check[1:]
        cluster = self._target.cluster

        async def plan(pipe: Any) -> Sequence[tuple[Any, ...]] | None:
            nonlocal added
            if cluster:
                found = await pipe.hmget(key, fields)
            else:
                found = await _async_watch_and_hmget(pipe, key, fields)
            result = self._append_plan(thread, batch, encoded, found)
            added = result.added
            return result.commands or None

        async def attempt() -> int:
            return added if await self._transaction([key] if cluster else [], plan) else 0

        return await self._run(f"append to thread {thread!r}", attempt)

    async def get_turns(self, thread: str, start: int = 0, stop: int | None = None) -> list[Turn]:
        """The thread's turns ``[start:stop]`` in append order (empty for an unknown thread)."""
        thread = self._thread(thread)
        bounds = lrange_bounds(start, stop)
        if bounds is None:
            return []
        key = self._keys.turns(thread)

        async def attempt() -> tuple[int, list[bytes]]:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.llen(key)
                pipe.lrange(key, *bounds)
                length, values = await pipe.execute()
            return int(length), values

        length, values = await self._run(f"read thread {thread!r}", attempt)
        first = bounds[0] if bounds[0] >= 0 else max(0, length + bounds[0])
        return self._decode_turns(thread, values, first)

    async def get_turn(self, thread: str, turn_id: str) -> Turn:
        """One turn by id. Raises ``NotFound``."""
        thread = self._thread(thread)
        index = self._keys.turn_index(thread)
        field = self._turn_field(check_name(turn_id, "turn id"))

        async def attempt() -> tuple[Any, Any]:
            for _ in range(_BRACKETED_READS):  # see RedisStore.get_turn
                position = await self._client.hget(index, field)
                if position is None:
                    return None, None
                value = await self._client.lindex(self._keys.turns(thread), int(position))
                if await self._client.hget(index, field) == position:
                    break
            return position, value

        position, value = await self._run(f"read turn {turn_id!r} of thread {thread!r}", attempt)
        return self._decode_turn(thread, turn_id, position, value)

    async def count_turns(self, thread: str) -> int:
        """How many turns the thread has."""
        thread = self._thread(thread)
        key = self._keys.turns(thread)
        return int(await self._run(f"count thread {thread!r}", lambda: self._client.llen(key)))

    async def search_turns(self, thread: str, query: str, limit: int = 10) -> list[TurnHit]:
        """See :meth:`RedisStore.search_turns`."""
        parsed = self._search_query(thread, query, limit)
        if parsed is None:
            return []
        turns = self._keys.turns(thread)

        async def attempt() -> list[TurnHit]:
            window = self._search_window(int(await self._client.llen(turns)))
            blocks = self._text_blocks(window)
            values = await self._client.mget(self._text_keys(thread, blocks)) if blocks else []
            texts, rebuild = self._scan_blocks(window, blocks, values)
            if rebuild:
                contents = await self._rebuild_texts(thread, rebuild)
                values = [contents.get(b, v) for b, v in zip(blocks, values, strict=True)]
                texts, _ = self._scan_blocks(window, blocks, values)
            ranked = rank(parsed, texts, limit)
            if not ranked:
                return []
            async with self._client.pipeline(transaction=False) as pipe:
                for position, _ in ranked:
                    pipe.lindex(turns, position)
                found = await pipe.execute()
            return self._search_hits(thread, ranked, texts, found)

        return await self._run(f"search thread {thread!r}", attempt)

    async def _rebuild_texts(self, thread: str, blocks: list[int]) -> dict[int, bytes]:
        """See :meth:`RedisStore._rebuild_texts`."""
        turns = self._keys.turns(thread)
        first, last = self._rebuild_span(blocks)
        async with self._client.pipeline(transaction=True) as pipe:
            await pipe.watch(turns)
            values = await pipe.lrange(turns, first, last)
            commands, contents = self._rebuild_plan(thread, blocks, first, values)
            if commands:
                pipe.multi()
                for command in commands:
                    pipe.execute_command(*command)
                with contextlib.suppress(WatchError):
                    await pipe.execute()
        return contents

    async def put_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """Create or atomically replace a segment with exactly the pages it lists."""
        await self._write_segment(segment, pages, must_exist=False)

    async def replace_segment(self, segment: Segment, pages: Sequence[Page]) -> None:
        """Atomically replace an existing segment and its pages. Raises ``NotFound``."""
        await self._write_segment(segment, pages, must_exist=True)

    async def _write_segment(
        self, segment: Segment, pages: Sequence[Page], must_exist: bool
    ) -> None:
        checked, key = self._check_segment(segment, pages)
        thread, version = segment.thread, new_version()
        seen: list[Any] = [None]

        async def plan(pipe: Any) -> Sequence[tuple[Any, ...]]:
            seen[0] = await self._watch_version(pipe, thread)
            raw = await pipe.get(key)
            if must_exist:
                self._decode_segment(thread, segment.id, raw)
            candidates = self._old_pages(self._old_segment(key, raw))
            own = await self._unshared_pages(pipe, thread, segment.id, candidates, seen[0])
            return self._segment_plan(segment, checked, own, version)

        action = f"put segment {segment.id!r} of thread {thread!r}"
        await self._run(action, lambda: self._transaction([key], plan))
        self._lists.written(self._keys.segments(thread), seen[0], version, put=segment)

    async def _watch_version(self, pipe: Any, thread: str) -> Any:
        version_key = self._keys.segment_version(thread)
        await pipe.watch(version_key)
        return await pipe.get(version_key)

    async def _unshared_pages(
        self, pipe: Any, thread: str, segment_id: str, candidates: list[str], token: Any
    ) -> list[str]:
        """Of the pages a segment stops listing, those no other segment of the thread lists."""
        if not candidates:
            return []
        listing = self._cached_listing(thread, token)
        if listing is not None:
            return self._unshared_by_listing(listing, segment_id, candidates)
        await pipe.watch(*self._page_keys_of(thread, candidates))
        others = self._others(segment_id, await pipe.zrange(self._keys.segments(thread), 0, -1))
        listings = await pipe.hmget(self._keys.segment_pages(thread), others) if others else []
        need = self._claimants(thread, others, listings, candidates)
        values = await pipe.execute_command("MGET", *need) if need else []
        return self._unshared(need, values, candidates)

    async def get_segment(self, thread: str, segment_id: str) -> Segment:
        """One segment by id. Raises ``NotFound``."""
        thread = self._thread(thread)
        key = self._keys.segment(thread, check_name(segment_id, "segment id"))
        value = await self._run(f"read segment {segment_id!r}", lambda: self._client.get(key))
        return self._decode_segment(thread, segment_id, value)

    async def list_segments(self, thread: str) -> list[Segment]:
        """See :meth:`RedisStore.list_segments`."""
        thread = self._thread(thread)
        index = self._keys.segments(thread)
        token: Any = None
        if not self._retention:
            version_key = self._keys.segment_version(thread)
            token = await self._run(
                "read segment version", lambda: self._client.get(version_key)
            )
            cached = self._cached_listing(thread, token)
            if cached is not None:
                return cached

        async def attempt() -> tuple[list[bytes], list[Any]]:
            members = await self._client.zrange(index, 0, -1)
            if not members:
                return [], []
            return members, await self._client.mget(self._segment_keys(thread, members))

        members, values = await self._run(f"list segments of thread {thread!r}", attempt)
        live, gone = self._decode_segments(thread, members, values)
        if token is not None and not gone:
            self._lists.put(index, token, live)
        if gone:
            keys = self._segment_keys(thread, gone)

            async def plan(pipe: Any) -> Sequence[tuple[Any, ...]] | None:
                live = await pipe.execute_command("EXISTS", *keys)
                return None if live else self._prune_plan(thread, gone)

            await self._run(f"prune segments of {thread!r}", lambda: self._transaction(keys, plan))
        return live

    async def delete_segment(self, thread: str, segment_id: str) -> None:
        """Delete a segment with its pages and vision tokens (no error if absent)."""
        thread = self._thread(thread)
        key = self._keys.segment(thread, check_name(segment_id, "segment id"))

        version = new_version()
        seen: list[Any] = [None]

        async def plan(pipe: Any) -> Sequence[tuple[Any, ...]]:
            seen[0] = await self._watch_version(pipe, thread)
            candidates = self._old_pages(self._old_segment(key, await pipe.get(key)))
            dropped = await self._unshared_pages(pipe, thread, segment_id, candidates, seen[0])
            return self._delete_plan(thread, segment_id, dropped, version)

        await self._run(f"delete segment {segment_id!r}", lambda: self._transaction([key], plan))
        self._lists.written(self._keys.segments(thread), seen[0], version, removed=segment_id)

    async def get_page(self, thread: str, page_id: str) -> Page:
        """One page by id. Raises ``NotFound``."""
        thread = self._thread(thread)
        key = self._keys.page(thread, check_name(page_id, "page id"))
        value = await self._run(f"read page {page_id!r}", lambda: self._client.get(key))
        return self._decode_page(thread, page_id, value)

    async def get_pages(self, thread: str, segment_id: str) -> list[Page]:
        """A segment's pages in order. Raises ``NotFound`` for an unknown segment."""
        thread = self._thread(thread)
        key = self._keys.segment(thread, check_name(segment_id, "segment id"))

        async def attempt() -> tuple[Segment, list[Any]]:
            for _ in range(MAX_WATCH_CONFLICTS):
                raw = await self._client.get(key)
                segment = self._decode_segment(thread, segment_id, raw)
                if not segment.page_ids:
                    return segment, []
                values = await self._client.mget(self._page_keys(segment))
                if None not in values or await self._client.get(key) == raw:
                    return segment, values
            raise WatchError(f"segment {segment_id!r} kept changing while read")

        segment, values = await self._run(f"read pages of {segment_id!r}", attempt)
        return self._decode_pages(thread, segment, values)

    async def put_vision_tokens(self, thread: str, page_id: str, tokens: VisionTokens) -> None:
        """Cache vision tokens for a stored page (they expire with it). Raises ``NotFound``."""
        value = self._check_vision(thread, page_id, tokens)
        page = self._keys.page(thread, page_id)

        async def plan(pipe: Any) -> Sequence[tuple[Any, ...]]:
            return self._vision_plan(thread, page_id, tokens, value, int(await pipe.pttl(page)))

        await self._run(f"cache tokens of {page_id!r}", lambda: self._transaction([page], plan))

    async def get_vision_tokens(
        self, thread: str, page_id: str, model_fingerprint: str
    ) -> VisionTokens | None:
        """Cached vision tokens made by that model, or ``None``."""
        thread = self._thread(thread)
        key = self._keys.vision(thread, check_name(page_id, "page id"))
        field = check_name(model_fingerprint, "model fingerprint").encode("utf-8", "surrogatepass")
        value = await self._run(
            f"read tokens of {page_id!r}", lambda: self._client.hget(key, field)
        )
        return self._decode_vision(thread, page_id, model_fingerprint, value)

    async def list_threads(self) -> list[str]:
        """The tenant's threads that hold any record, sorted (SCANs every primary)."""
        pattern = self._keys.tenant_pattern()

        async def attempt() -> list[Any]:
            return [k async for k in self._client.scan_iter(match=pattern, count=_SCAN_COUNT)]

        return self._threads(await self._run(f"list threads of {self.tenant!r}", attempt))

    async def delete_thread(self, thread: str) -> None:
        """Delete everything of one thread (no error if absent)."""
        thread = self._thread(thread)
        pattern = self._keys.thread_pattern(thread)

        async def attempt() -> None:
            options: dict[str, Any] = {}
            if self._target.cluster:
                await self._client.initialize()
                options["target_nodes"] = self._client.get_node_from_key(self._keys.turns(thread))
            scan = self._client.scan_iter(match=pattern, count=_SCAN_COUNT, **options)
            keys = self._thread_keys(thread, [k async for k in scan])
            for first in range(0, len(keys), _DELETE_BATCH):
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.execute_command("DEL", *keys[first : first + _DELETE_BATCH])
                    await pipe.execute()

        await self._run(f"delete thread {thread!r}", attempt)

    # ---- byte values by key ---------------------------------------------------------

    async def put_blobs(self, items: BlobItems) -> None:
        """See :meth:`RedisStore.put_blobs`."""
        commands = self._blob_put_plan(items)
        if commands:
            await self._run("write blobs", lambda: self._multi(commands))

    async def get_blobs(self, keys: Sequence[str]) -> list[bytes | None]:
        """See :meth:`RedisStore.get_blobs`."""
        wanted = check_blob_keys(keys)
        if not wanted:
            return []
        raw = [key_bytes(key) for key in wanted]
        where = self._keys.blob_values()
        values = await self._run("read blobs", lambda: self._client.hmget(where, raw))
        return self._decode_blobs(wanted, values)

    async def delete_blobs(self, keys: Sequence[str]) -> None:
        """See :meth:`RedisStore.delete_blobs`."""
        commands = self._blob_delete_plan(keys)
        if commands:
            await self._run("delete blobs", lambda: self._multi(commands))

    async def iter_blob_keys(self, prefix: str | None = None) -> AsyncIterator[str]:
        """See :meth:`RedisStore.iter_blob_keys`."""
        start = check_blob_prefix(prefix)
        after: str | None = None
        index = self._keys.blob_keys()
        while True:
            low, high = self._blob_range(start, after)
            raw = await self._run(
                "list blob keys",
                lambda: self._client.zrangebylex(index, low, high, 0, KEYS_PER_PAGE),  # noqa: B023
            )
            keys = [key_text(key) for key in raw]
            for key in keys:
                yield key
            if len(keys) < KEYS_PER_PAGE:
                return
            after = keys[-1]

    async def _multi(self, commands: Sequence[tuple[Any, ...]]) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            await pipe.execute()

    async def aclose(self) -> None:
        """Release the connection pool (a view from :meth:`with_tenant` leaves it open)."""
        if self._owns_client and not self._state.closed:
            self._state.closed = True
            await self._client.aclose()

    async def __aenter__(self) -> AsyncRedisStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def _async_ignore(error: Exception) -> None:
    """Retry failure hook: redis-py already dropped the broken connection."""
