"""Everything of the Redis stores that does no IO: keys and command plans.

URLs and retries live in :mod:`optical_memory.store.redis_connection`.

:class:`RedisStoreBase` is shared by :class:`~optical_memory.store.redis.RedisStore` and
:class:`~optical_memory.store.redis.AsyncRedisStore`; the twins only send what it plans.

Key layout (``T`` = tenant, ``H`` = thread, both escaped with ``quote(name, safe="")`` so
they hold only ``[A-Za-z0-9_.~%-]``: a name can neither close the hash tag nor act as a
SCAN glob, and no tenant's pattern matches another tenant's keys)::

    om:T:{H}:turns          list    encoded turns in append order
    om:T:{H}:turnidx        hash    "n" -> turn count, "i:<turn id>" -> position in the list
    om:T:{H}:text:<n>       string  search texts of turns 256n to 256n + 255, one entry a
                                    line: "<position>\t<search tokens as scan_text>\n"
    om:T:{H}:segs           zset    segment id, scored by created_at (the listing order)
    om:T:{H}:segpages       hash    segment id -> JSON list of its page ids
    om:T:{H}:segver         string  a random token, set anew by every segment write
    om:T:{H}:seg:<id>       string  encoded segment          (expires with its tier)
    om:T:{H}:page:<id>      string  encoded page             (expires with its segment)
    om:T:{H}:vt:<page id>   hash    model fingerprint -> encoded vision tokens (same TTL)
    om:T:!blobs{T}:values   hash    blob key -> enveloped bytes (outside every thread)
    om:T:!blobs{T}:keys     zset    blob keys, all scored 0: ZRANGEBYLEX lists a prefix

The thread is the Redis Cluster hash tag, so all keys of a thread live in one slot and
every multi-key write is one ``MULTI``/``EXEC``. Segment and page ids are escaped too. A
tenant's blobs share the tenant as their tag; ``!`` never occurs in an escaped name, so
those keys match no thread's pattern.

``segpages`` repeats what each segment lists, so a write that drops pages learns which of
them another segment still lists from a few bytes per segment instead of every segment
record. A segment written before it existed has no field there; its record is read instead.

``segver`` changes with every write of the thread's segments, in the write's ``MULTI``. A
store keeps the last listing of each thread under the token it read first
(:class:`SegmentLists`): while the token is unchanged, listing the segments costs one
``GET``, and a write learns what the other segments list without reading them (it
``WATCH``es the token, so a concurrent write sends it back to read again). Only without
retention: a segment that expires changes the listing but not the token.

Search reads the text blocks of the newest
:data:`~optical_memory.store.search.SEARCH_WINDOW` positions with one ``MGET`` (a few
long strings, where 20,000 hash fields would take longer to parse than to rank) and
ranks them with numpy (:mod:`~optical_memory.store.search_scan`): no module, and no turn
decoded but the hits. An append ``APPEND``s its turns' lines in its ``MULTI``. Lines name
their position, so a position's last line is its text. A block that lacks a position
(a thread written before appends wrote texts) or holds a malformed line is written
afresh from the turns by the first search that reads it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import redis
import redis.asyncio.retry
import redis.exceptions

from optical_memory.errors import (
    CorruptRecord,
    InvalidRecordError,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from optical_memory.records import Page, Segment, Turn, VisionTokens
from optical_memory.store.base import (
    Retention,
    check_name,
    check_retention,
    check_segment_pages,
    check_turns,
)
from optical_memory.store.blobs import (
    BlobItems,
    check_blob_items,
    check_blob_keys,
    key_bytes,
    unwrap_blob,
    wrap_blob,
)
from optical_memory.store.codec import DecodedRecords, decode, encode
from optical_memory.store.redis_connection import (
    TRANSIENT_ERRORS,
    RedisTarget,
    RetryPolicy,
    parse_redis_url,
)
from optical_memory.store.search import (
    SEARCH_WINDOW,
    SearchQuery,
    TurnHit,
    check_search,
    scan_text,
    turn_tokens,
)
from optical_memory.store.search_scan import ScanTexts, text_lines

__all__ = [
    "Command",
    "Keys",
    "RedisStoreBase",
    "escape",
    "unescape",
]

PREFIX = "om"
Command = tuple[Any, ...]

# Turn index fields: the count, and a prefix for ids (so no id can collide with the count).
_COUNT_FIELD = "n"
_ID_FIELD = "i:"
_RECORD_SUFFIXES = ("turns", "seg:", "page:", "vt:")
# Turns per search text block.
_TEXT_BLOCK = 256


@functools.lru_cache(maxsize=65536)
def escape(name: str) -> str:
    """A name as a key component: only unreserved ASCII and ``%XX`` escapes remain."""
    # surrogatepass: names are any Python str, lone surrogates included (as in the codec).
    return quote(name, safe="", errors="surrogatepass")


def unescape(component: str) -> str:
    """Invert :func:`escape`."""
    return unquote(component, errors="surrogatepass")


def _raw(value: str) -> bytes:
    """A free-text id as Redis bytes (sorted-set members and hash fields)."""
    return value.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Keys:
    """The key names of one tenant. Example: ``Keys("acme").turns("t1")`` is
    ``"om:acme:{t1}:turns"``."""

    tenant: str

    def _thread(self, thread: str) -> str:
        return f"{PREFIX}:{escape(self.tenant)}:{{{escape(thread)}}}:"

    def turns(self, thread: str) -> str:
        return self._thread(thread) + "turns"

    def turn_index(self, thread: str) -> str:
        return self._thread(thread) + "turnidx"

    def text(self, thread: str, block: int) -> str:
        """The search text block of positions ``256 * block`` to ``256 * block + 255``."""
        return self.text_prefix(thread) + str(block)

    def text_prefix(self, thread: str) -> str:
        return self._thread(thread) + "text:"

    def segments(self, thread: str) -> str:
        return self._thread(thread) + "segs"

    def segment_version(self, thread: str) -> str:
        return self._thread(thread) + "segver"

    def segment_pages(self, thread: str) -> str:
        return self._thread(thread) + "segpages"

    def segment(self, thread: str, segment_id: str) -> str:
        return self._thread(thread) + "seg:" + escape(segment_id)

    def page(self, thread: str, page_id: str) -> str:
        return self._thread(thread) + "page:" + escape(page_id)

    def vision(self, thread: str, page_id: str) -> str:
        return self._thread(thread) + "vt:" + escape(page_id)

    def blob_values(self) -> str:
        return f"{PREFIX}:{escape(self.tenant)}:!blobs{{{escape(self.tenant)}}}:values"

    def blob_keys(self) -> str:
        return f"{PREFIX}:{escape(self.tenant)}:!blobs{{{escape(self.tenant)}}}:keys"

    def tenant_pattern(self) -> str:
        """SCAN pattern of every key of the tenant (escaping leaves no glob characters)."""
        return f"{PREFIX}:{escape(self.tenant)}:{{*"

    def thread_pattern(self, thread: str) -> str:
        """SCAN pattern of every key of one thread."""
        return self._thread(thread) + "*"

    def record_thread(self, key: str | bytes) -> str | None:
        """The thread of a key that holds records (not an index), else ``None``."""
        text = key.decode("ascii", "replace") if isinstance(key, bytes) else key
        head = f"{PREFIX}:{escape(self.tenant)}:{{"
        if not text.startswith(head):
            return None
        thread, sep, rest = text[len(head) :].partition("}:")
        if not sep or not rest.startswith(_RECORD_SUFFIXES):
            return None
        return unescape(thread)


@dataclass
class Lifecycle:
    """Shared by a store and its tenant views: closing the store closes them all."""

    closed: bool = False


def lrange_bounds(start: int, stop: int | None) -> tuple[int, int] | None:
    """``LRANGE`` bounds for the Python slice ``[start:stop]``, or ``None`` when empty."""
    for value in (start, stop):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidRecordError(f"turn indexes must be ints, got {value!r}")
    if stop is None:
        return start, -1
    if stop == 0:
        return None
    # LRANGE's end is inclusive; negative indexes clamp like Python's.
    return start, stop - 1


def new_version() -> bytes:
    """A token for ``segver`` that no earlier write of any thread used."""
    return uuid.uuid4().hex.encode()


class SegmentLists:
    """The last listing of each thread's segments, with the ``segver`` token it is valid for.

    Shared by a store and its tenant views (entries are keyed by the full key name). A write
    that saw the cached token carries the listing over to the token it set.
    """

    def __init__(self, max_threads: int = 256) -> None:
        self._max = max_threads
        self._entries: OrderedDict[str, tuple[bytes, list[Segment]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, token: bytes | None) -> list[Segment] | None:
        """The listing read under ``token``, or ``None``."""
        if token is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != token:
                return None
            self._entries.move_to_end(key)
            return list(entry[1])

    def put(self, key: str, token: bytes, segments: Sequence[Segment]) -> None:
        with self._lock:
            self._entries[key] = (token, list(segments))
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def written(
        self,
        key: str,
        before: bytes | None,
        after: bytes,
        put: Segment | None = None,
        removed: str | None = None,
    ) -> None:
        """A write that found ``before`` and set ``after`` stored ``put`` or deleted
        ``removed``: carry the listing over, or drop it if it was not ``before``'s."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None or before is None or entry[0] != before:
                return
            gone = put.id if put is not None else removed
            segments = [s for s in entry[1] if s.id != gone]
            if put is not None:
                segments.append(put)
                segments.sort(key=lambda s: (s.created_at, s.id))
            self._entries[key] = (after, segments)


@dataclass(frozen=True)
class AppendPlan:
    """What an append writes after its check: the new turns and their list positions."""

    added: int
    commands: list[Command]


class RedisStoreBase:
    """The IO-free half of the Redis stores (see :class:`~optical_memory.store.RedisStore`)."""

    _target: RedisTarget
    _keys: Keys
    _retention: dict[str, float]
    _policy: RetryPolicy
    _owns_client: bool
    _state: Lifecycle
    _segments: DecodedRecords[Segment]
    _lists: SegmentLists

    def _setup(
        self,
        url: str,
        tenant: str,
        retention: Retention | None,
        retries: int,
        backoff_base: float,
        backoff_cap: float,
    ) -> None:
        self._target = parse_redis_url(url)
        self._keys = Keys(check_name(tenant, "tenant"))
        self._retention = check_retention(retention)
        self._policy = RetryPolicy(retries, backoff_base, backoff_cap)
        self._owns_client = True
        self._state = Lifecycle()
        self._segments = DecodedRecords(Segment)
        self._lists = SegmentLists()

    def _view(self, tenant: str) -> Any:
        """A shallow copy bound to another tenant; it shares (and does not own) the client."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._keys = Keys(check_name(tenant, "tenant"))
        view._owns_client = False
        return view

    @property
    def tenant(self) -> str:
        """The tenant this store object reads and writes."""
        return self._keys.tenant

    @property
    def url(self) -> str:
        """The server URL with the password replaced by ``***``."""
        return self._target.redacted

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, tenant={self.tenant!r})"

    def _client_options(self, retry: Any, options: Mapping[str, Any]) -> dict[str, Any]:
        # The operation-level retry in the twins replays whole idempotent operations, so
        # the client itself does not retry (two layers would multiply the wait).
        settings: dict[str, Any] = {"retry": retry, **options}
        if self._target.cluster:
            settings.setdefault("require_full_coverage", True)
        return settings

    # ---- errors ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate redis-py errors; messages carry the redacted URL, never credentials."""
        try:
            yield
        except StoreError:
            raise
        except (
            redis.exceptions.AuthenticationError,
            redis.exceptions.AuthorizationError,
        ) as exc:
            raise StoreUnavailable(
                f"{action}: Redis at {self.url} refused the credentials ({exc})"
            ) from exc
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(
                f"{action}: Redis at {self.url} is unreachable after "
                f"{self._policy.retries + 1} attempts ({type(exc).__name__}: {exc})"
            ) from exc
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise StoreError(f"{action}: Redis at {self.url} failed: {exc}") from exc

    def _check_open(self, action: str) -> None:
        if self._state.closed:
            raise StoreError(f"{action}: the store is closed")

    # ---- validation and planning ----------------------------------------------------

    @staticmethod
    def _thread(thread: str) -> str:
        return check_name(thread, "thread")

    def _ttl_ms(self, tier: str) -> int | None:
        seconds = self._retention.get(tier)
        return None if seconds is None else max(1, round(seconds * 1000))

    @staticmethod
    def _turn_field(turn_id: str) -> bytes:
        """The turn index field holding a turn's list position."""
        return _raw(_ID_FIELD + turn_id)

    def _append_check(self, thread: str, turns: Sequence[Turn]) -> list[Any]:
        """``HMGET`` arguments reading the count and which of the ids already exist."""
        return [
            self._keys.turn_index(thread),
            _COUNT_FIELD,
            *(self._turn_field(t.id) for t in turns),
        ]

    def _append_plan(
        self, thread: str, turns: Sequence[Turn], encoded: Sequence[bytes], found: Sequence[Any]
    ) -> AppendPlan:
        count = int(found[0] or 0)
        new = [
            (t, blob)
            for t, blob, seen in zip(turns, encoded, found[1:], strict=True)
            if seen is None
        ]
        if not new:
            return AppendPlan(0, [])
        index: list[Any] = [_COUNT_FIELD, count + len(new)]
        texts = {}
        for offset, (turn, _) in enumerate(new):
            index += [self._turn_field(turn.id), count + offset]
            texts[count + offset] = scan_text(turn_tokens(turn))
        return AppendPlan(
            len(new),
            [
                ("RPUSH", self._keys.turns(thread), *(blob for _, blob in new)),
                ("HSET", self._keys.turn_index(thread), *index),
                *self._text_commands(thread, texts),
            ],
        )

    def _decode_turns(self, thread: str, values: Sequence[bytes], first: int) -> list[Turn]:
        key = self._keys.turns(thread)
        return [decode(Turn, f"{key}[{first + i}]", v) for i, v in enumerate(values)]

    def _decode_turn(self, thread: str, turn_id: str, position: Any, value: Any) -> Turn:
        if position is None:
            raise NotFound(f"no turn {turn_id!r} in thread {thread!r}")
        key = f"{self._keys.turns(thread)}[{int(position)}]"
        if value is None:
            raise CorruptRecord(f"{key}: the turn index points past the end of the list")
        turn = decode(Turn, key, value)
        if turn.id != turn_id:
            raise CorruptRecord(f"{key}: holds turn {turn.id!r}, the index says {turn_id!r}")
        return turn

    def _old_segment(self, segment_key: str, value: Any) -> Segment | None:
        return None if value is None else decode(Segment, segment_key, value)

    def _segment_plan(
        self,
        segment: Segment,
        pages: Sequence[tuple[str, bytes]],
        own: Sequence[str],
        version: bytes,
    ) -> list[Command]:
        """Write the segment and its encoded pages; delete the pages it no longer lists.

        ``own`` are the pages the segment's previous version listed and no other segment
        lists: those it drops are deleted, those it keeps take its expiry as is.
        """
        listed = {page_id for page_id, _ in pages}
        dropped = [p for p in own if p not in listed]
        thread, keys = segment.thread, self._keys
        ttl = self._ttl_ms(segment.tier)
        expiry: tuple[Any, ...] = () if ttl is None else ("PX", ttl)
        listing = json.dumps(list(segment.page_ids), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
        commands: list[Command] = [
            ("SET", keys.segment(thread, segment.id), encode(segment), *expiry),
            ("ZADD", keys.segments(thread), segment.created_at, _raw(segment.id)),
            ("HSET", keys.segment_pages(thread), _raw(segment.id), listing),
            ("SET", keys.segment_version(thread), version),
        ]
        for page_id, blob in pages:
            commands += self._page_commands(thread, page_id, blob, ttl, page_id in own)
        return commands + self._drop_pages(thread, dropped)

    def _page_commands(
        self, thread: str, page_id: str, blob: bytes, ttl: int | None, own: bool
    ) -> list[Command]:
        """Write a page so it lives as long as the longest-lived segment listing it.

        A page only this segment lists (``own``) takes its expiry. Any other page may be
        listed by another segment too (ids are content hashes), so if it exists its expiry
        is only ever extended (``PEXPIRE ... GT`` leaves a key without expiry alone; Redis
        >= 7.0), and if it does not it gets the segment's.
        """
        page, vision = self._keys.page(thread, page_id), self._keys.vision(thread, page_id)
        if ttl is None:
            return [("SET", page, blob), ("PERSIST", vision)]
        if own:
            return [("SET", page, blob, "PX", ttl), ("PEXPIRE", vision, ttl)]
        return [
            ("PEXPIRE", page, ttl, "GT"),
            ("SET", page, blob, "XX", "KEEPTTL"),
            ("SET", page, blob, "NX", "PX", ttl),
            ("PEXPIRE", vision, ttl, "GT"),
        ]

    def _delete_plan(
        self, thread: str, segment_id: str, dropped: Sequence[str], version: bytes
    ) -> list[Command]:
        keys = self._keys
        commands: list[Command] = [
            ("DEL", keys.segment(thread, segment_id)),
            ("ZREM", keys.segments(thread), _raw(segment_id)),
            ("HDEL", keys.segment_pages(thread), _raw(segment_id)),
            ("SET", keys.segment_version(thread), version),
        ]
        return commands + self._drop_pages(thread, dropped)

    def _prune_plan(self, thread: str, gone: Sequence[bytes]) -> list[Command]:
        """Forget expired segments in the index and the page listings."""
        keys = self._keys
        return [
            ("ZREM", keys.segments(thread), *gone),
            ("HDEL", keys.segment_pages(thread), *gone),
            ("SET", keys.segment_version(thread), new_version()),
        ]

    def _drop_pages(self, thread: str, page_ids: Sequence[str]) -> list[Command]:
        keys = self._keys
        return [("DEL", keys.page(thread, p), keys.vision(thread, p)) for p in page_ids]

    @staticmethod
    def _old_pages(old: Segment | None) -> list[str]:
        """The pages a segment's stored version lists (candidates for deletion)."""
        return [] if old is None else list(old.page_ids)

    @staticmethod
    def _others(segment_id: str, members: Sequence[bytes]) -> list[bytes]:
        """The thread's other segments (index members)."""
        own = _raw(segment_id)
        return [m for m in members if m != own]

    def _claimants(
        self,
        thread: str,
        others: Sequence[bytes],
        listings: Sequence[Any],
        candidates: Sequence[str],
    ) -> list[str]:
        """Keys of the other segments whose records must be read: those whose listing
        names a candidate page (unless expired, they still show it) and those without one."""
        wanted = set(candidates)
        need = []
        for member, listing in zip(others, listings, strict=True):
            try:
                listed = None if listing is None else json.loads(listing)
            except ValueError:
                listed = None  # read the record instead, which says what it lists
            if not isinstance(listed, list) or wanted.intersection(listed):
                need.append(member)
        return self._segment_keys(thread, need)

    def _cached_listing(self, thread: str, token: Any) -> list[Segment] | None:
        """The thread's segments as listed under ``token`` (``segver``), when known and the
        store has no retention (an expiry changes the segments but not the token)."""
        if self._retention:
            return None
        return self._lists.get(self._keys.segments(thread), token)

    @staticmethod
    def _unshared_by_listing(
        listing: Sequence[Segment], segment_id: str, candidates: Sequence[str]
    ) -> list[str]:
        in_use = {p for s in listing if s.id != segment_id for p in s.page_ids}
        return [p for p in candidates if p not in in_use]

    def _unshared(
        self, keys: Sequence[str], values: Sequence[Any], candidates: Sequence[str]
    ) -> list[str]:
        """Of ``candidates``, the pages none of the other segments lists (a page id is a
        content hash, so two segments of a thread may share a page)."""
        in_use: set[str] = set()
        for key, value in zip(keys, values, strict=True):
            if value is not None:
                in_use.update(self._segments.decode(key, value).page_ids)
        return [p for p in candidates if p not in in_use]

    def _page_keys_of(self, thread: str, page_ids: Sequence[str]) -> list[str]:
        return [self._keys.page(thread, p) for p in page_ids]

    def _check_segment(
        self, segment: Segment, pages: Sequence[Page]
    ) -> tuple[list[tuple[str, bytes]], str]:
        """Validate, and encode the pages once (size limits fail here, before any write)."""
        checked = check_segment_pages(segment, pages)
        self._thread(segment.thread)
        encoded = [(page.id, encode(page)) for page in checked]
        return encoded, self._keys.segment(segment.thread, segment.id)

    def _decode_segments(
        self, thread: str, ids: Sequence[bytes], values: Sequence[Any]
    ) -> tuple[list[Segment], list[bytes]]:
        """Live segments oldest first, and the index entries whose record expired."""
        live, gone = [], []
        for member, value in zip(ids, values, strict=True):
            segment_id = member.decode("utf-8", "surrogatepass")
            if value is None:
                gone.append(member)
                continue
            live.append(self._segments.decode(self._keys.segment(thread, segment_id), value))
        live.sort(key=lambda s: (s.created_at, s.id))
        return live, gone

    def _segment_keys(self, thread: str, members: Sequence[bytes]) -> list[str]:
        return [self._keys.segment(thread, m.decode("utf-8", "surrogatepass")) for m in members]

    def _decode_segment(self, thread: str, segment_id: str, value: Any) -> Segment:
        if value is None:
            raise NotFound(f"no segment {segment_id!r} in thread {thread!r}")
        return decode(Segment, self._keys.segment(thread, segment_id), value)

    def _decode_page(self, thread: str, page_id: str, value: Any) -> Page:
        if value is None:
            raise NotFound(f"no page {page_id!r} in thread {thread!r}")
        return decode(Page, self._keys.page(thread, page_id), value)

    def _page_keys(self, segment: Segment) -> list[str]:
        return self._page_keys_of(segment.thread, segment.page_ids)

    def _decode_pages(self, thread: str, segment: Segment, values: Sequence[Any]) -> list[Page]:
        pages = []
        for page_id, value in zip(segment.page_ids, values, strict=True):
            if value is None:
                # Pages expire with their segment; a missing one means the segment is going.
                raise NotFound(f"page {page_id!r} of segment {segment.id!r} is gone")
            pages.append(self._decode_page(thread, page_id, value))
        return pages

    def _vision_plan(
        self, thread: str, page_id: str, tokens: VisionTokens, value: bytes, page_ttl: int
    ) -> list[Command]:
        if page_ttl == -2:
            raise NotFound(f"no page {page_id!r} in thread {thread!r}")
        key = self._keys.vision(thread, page_id)
        # One set per page: the previous model's tokens go, the new ones live as the page.
        commands: list[Command] = [
            ("DEL", key),
            ("HSET", key, _raw(tokens.model_fingerprint), value),
        ]
        if page_ttl >= 0:
            commands.append(("PEXPIRE", key, max(1, page_ttl)))
        return commands

    def _check_vision(self, thread: str, page_id: str, tokens: VisionTokens) -> bytes:
        """Validate, and encode the tokens once (the size limit fails here, before any IO)."""
        self._thread(thread)
        check_name(page_id, "page id")
        if not isinstance(tokens, VisionTokens):
            raise InvalidRecordError(f"expected VisionTokens, got {type(tokens).__name__}")
        return encode(tokens)

    def _decode_vision(
        self, thread: str, page_id: str, fingerprint: str, value: Any
    ) -> VisionTokens | None:
        if value is None:
            return None
        key = f"{self._keys.vision(thread, page_id)}[{fingerprint}]"
        tokens = decode(VisionTokens, key, value)
        if tokens.model_fingerprint != fingerprint:
            raise CorruptRecord(f"{key}: holds tokens of model {tokens.model_fingerprint!r}")
        return tokens

    def _thread_keys(self, thread: str, scanned: Sequence[Any]) -> list[Any]:
        """Keys to delete for a thread, its indexes first: they go in the first ``MULTI``,
        so a concurrent append never finds a turn list without its index or the reverse."""
        keys = self._keys
        first = [keys.turns(thread), keys.turn_index(thread), keys.segments(thread)]
        named = {k.encode() for k in first}
        rest = [k.encode() if isinstance(k, str) else k for k in scanned]
        rest = [k for k in rest if k not in named]
        # Text blocks next: they belong with the turns (and are few).
        text = keys.text_prefix(thread).encode()
        return first + sorted(rest, key=lambda k: not k.startswith(text))

    def _threads(self, keys: Sequence[Any]) -> list[str]:
        found = {self._keys.record_thread(k) for k in keys}
        found.discard(None)
        return sorted(t for t in found if t is not None)

    # ---- byte values by key ---------------------------------------------------------

    def _blob_put_plan(self, items: BlobItems) -> list[Command]:
        batch = check_blob_items(items)
        if not batch:
            return []
        values: list[Any] = []
        members: list[Any] = []
        for key, value in batch.items():
            raw = key_bytes(key)
            values += [raw, wrap_blob(value)]
            members += [0, raw]
        return [
            ("HSET", self._keys.blob_values(), *values),
            ("ZADD", self._keys.blob_keys(), *members),
        ]

    def _blob_delete_plan(self, keys: Sequence[str]) -> list[Command]:
        raw = [key_bytes(key) for key in check_blob_keys(keys)]
        if not raw:
            return []
        return [("HDEL", self._keys.blob_values(), *raw), ("ZREM", self._keys.blob_keys(), *raw)]

    def _decode_blobs(self, keys: Sequence[str], values: Sequence[Any]) -> list[bytes | None]:
        where = self._keys.blob_values()
        return [
            None if value is None else unwrap_blob(f"{where}[{key!r}]", value)
            for key, value in zip(keys, values, strict=True)
        ]

    @staticmethod
    def _blob_range(prefix: str, after: str | None) -> tuple[bytes, bytes]:
        """``ZRANGEBYLEX`` bounds: keys with ``prefix``, after ``after`` when given."""
        low = b"[" + key_bytes(prefix) if after is None else b"(" + key_bytes(after)
        # No UTF-8 byte is 0xFF: every key that starts with the prefix sorts below this.
        return low, b"(" + key_bytes(prefix) + b"\xff"

    # ---- search ---------------------------------------------------------------------

    def _search_query(self, thread: str, query: str, limit: int) -> SearchQuery | None:
        """The parsed query, or ``None`` when there is nothing to search for."""
        self._thread(thread)
        check_search(query, limit)
        parsed = SearchQuery.parse(query)
        return parsed if parsed and limit else None

    @staticmethod
    def _search_window(count: int) -> range:
        """The positions a search scans: the newest ``SEARCH_WINDOW``."""
        return range(max(0, count - SEARCH_WINDOW), count)

    @staticmethod
    def _text_blocks(window: range) -> range:
        """The text blocks holding the window's positions."""
        if not window:
            return range(0)
        return range(window.start // _TEXT_BLOCK, (window.stop - 1) // _TEXT_BLOCK + 1)

    def _text_keys(self, thread: str, blocks: Sequence[int]) -> list[str]:
        return [self._keys.text(thread, block) for block in blocks]

    def _text_commands(self, thread: str, texts: Mapping[int, str]) -> list[Command]:
        """``APPEND``s of search texts by position, one per block."""
        blocks: dict[int, dict[int, str]] = {}
        for position, text in texts.items():
            blocks.setdefault(position // _TEXT_BLOCK, {})[position] = text
        return [
            ("APPEND", self._keys.text(thread, block), text_lines(lines))
            for block, lines in sorted(blocks.items())
        ]

    @staticmethod
    def _scan_blocks(
        window: range, blocks: Sequence[int], values: Sequence[Any]
    ) -> tuple[ScanTexts, list[int]]:
        """The window's texts from its blocks, and the blocks to rebuild: those that lack a
        position (written before appends wrote texts) or hold a malformed line."""
        damaged = set()
        kept = []
        for block, value in zip(blocks, values, strict=True):
            if value and not bytes(value).endswith(b"\n"):
                damaged.add(block)
            elif value:
                kept.append((block, bytes(value)))
        buffer = b"".join(value for _, value in kept)
        texts, bad_lines = ScanTexts.from_lines(buffer, window)
        if len(bad_lines):
            ends = np.cumsum([len(value) for _, value in kept])
            damaged.update(kept[i][0] for i in np.searchsorted(ends, bad_lines, side="right"))
        everything = np.arange(window.start, window.stop, dtype=np.int64)
        missing = np.setdiff1d(everything, texts.indexes, assume_unique=True)
        damaged.update((missing // _TEXT_BLOCK).tolist())
        return texts, sorted(damaged)

    @staticmethod
    def _rebuild_span(blocks: Sequence[int]) -> tuple[int, int]:
        """``LRANGE`` bounds of the turns that text blocks ``blocks`` describe (all the list
        holds of them when read: a block is written whole, with any turn appended since)."""
        return blocks[0] * _TEXT_BLOCK, (blocks[-1] + 1) * _TEXT_BLOCK - 1

    def _rebuild_plan(
        self, thread: str, blocks: Sequence[int], first: int, values: Sequence[Any]
    ) -> tuple[list[Command], dict[int, bytes]]:
        """``SET``s that write ``blocks`` afresh from the turns (``values``, encoded, from
        position ``first``), and the blocks' new contents."""
        turns = self._decode_turns(thread, values, first)
        contents = {}
        for block in blocks:
            span = range(
                max(first, block * _TEXT_BLOCK), min(first + len(turns), (block + 1) * _TEXT_BLOCK)
            )
            texts = {p: scan_text(turn_tokens(turns[p - first])) for p in span}
            if texts:
                contents[block] = text_lines(texts)
        commands: list[Command] = [
            ("SET", self._keys.text(thread, block), content) for block, content in contents.items()
        ]
        return commands, contents

    def _search_hits(
        self,
        thread: str,
        ranked: Sequence[tuple[int, float]],
        texts: ScanTexts,
        values: Sequence[Any],
    ) -> list[TurnHit]:
        """The ranked positions' turns; a turn that no longer has the text it was ranked
        by (its thread was deleted and written again meanwhile) is left out."""
        hits = []
        key = self._keys.turns(thread)
        for (position, score), value in zip(ranked, values, strict=True):
            if value is None:
                continue
            turn = decode(Turn, f"{key}[{position}]", value)
            if scan_text(turn_tokens(turn)) == texts.text(position):
                hits.append(TurnHit(position, turn, score))
        return hits

    @staticmethod
    def _encode_turns(turns: Sequence[Turn]) -> tuple[list[Turn], list[bytes]]:
        batch = check_turns(turns)
        return batch, [encode(t) for t in batch]
