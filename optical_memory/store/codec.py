"""How records become bytes in a store, and back, with a checksum.

Every stored value, in every backend, is one envelope::

    b"OM" | format (1 byte) | kind (1 byte) | CRC-32 of the rest (4) | header length (4)
          | header: the record's versioned JSON | blob: PNG or tensor bytes, if any

A value whose magic, kind, checksum or header does not check out raises
:class:`~optical_memory.errors.CorruptRecord` naming its key: a store never returns garbage.
JSON keeps lone surrogates (``surrogatepass``), so any Python string round-trips.
"""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections import OrderedDict
from typing import Any, Generic, TypeVar, overload

from optical_memory.errors import CorruptRecord, InvalidRecordError, RecordTooLarge
from optical_memory.records import Page, Segment, Turn, VisionTokens

__all__ = ["MAX_BLOB_BYTES", "MAX_HEADER_BYTES", "DecodedRecords", "decode", "encode"]

MAGIC = b"OM"
FORMAT = 1
_PREFIX = struct.Struct(">2sBBII")  # magic, format, kind, crc32, header length
_CHECKED_FROM = 8  # the checksum covers the header length, the header and the blob

# Documented limits: a page PNG or a vision-token tensor up to 64 MiB, a turn or segment
# header up to 16 MiB of JSON. Both backends take far more; the limits keep one runaway
# message from stalling every reader of a thread.
MAX_BLOB_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024

Record = Turn | Segment | Page | VisionTokens
R = TypeVar("R", Turn, Segment, Page, VisionTokens)

_KIND_CODES: dict[type[Any], int] = {Turn: 1, Segment: 2, Page: 3, VisionTokens: 4}


def encode(record: Record) -> bytes:
    """Serialize a record into one checksummed envelope.

    Raises:
        RecordTooLarge: The header or blob exceeds the documented limit.
    """
    header = json.dumps(
        record.to_header(), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8", "surrogatepass")
    blob = b""
    if isinstance(record, Page):
        blob = record.png
    elif isinstance(record, VisionTokens):
        blob = record.data
    if len(header) > MAX_HEADER_BYTES:
        raise RecordTooLarge(
            f"{type(record).__name__} {_record_id(record)!r} has {len(header):,} bytes of "
            f"JSON; the limit is {MAX_HEADER_BYTES:,}"
        )
    if len(blob) > MAX_BLOB_BYTES:
        raise RecordTooLarge(
            f"{type(record).__name__} {_record_id(record)!r} has {len(blob):,} bytes; "
            f"the limit is {MAX_BLOB_BYTES:,}"
        )
    # The checksum covers the header length too, so a flipped length cannot go unnoticed.
    crc = zlib.crc32(header + blob, zlib.crc32(struct.pack(">I", len(header))))
    return _PREFIX.pack(MAGIC, FORMAT, _KIND_CODES[type(record)], crc, len(header)) + header + blob


@overload
def decode(kind: type[R], key: str, value: bytes) -> R: ...
@overload
def decode(kind: type[Any], key: str, value: bytes) -> Any: ...
def decode(kind: type[Any], key: str, value: bytes) -> Any:
    """Parse one envelope back into a record of ``kind``.

    Args:
        kind: The record class expected under ``key``.
        key: Where the value was read from; named in errors.
        value: The stored bytes.

    Raises:
        CorruptRecord: The value is truncated, of another kind, fails its checksum or does
            not parse.
    """
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise CorruptRecord(f"{key}: stored value is {type(value).__name__}, not bytes")
    value = bytes(value)
    if len(value) < _PREFIX.size:
        raise CorruptRecord(f"{key}: value truncated ({len(value)} bytes)")
    magic, fmt, code, crc, header_len = _PREFIX.unpack_from(value)
    if magic != MAGIC or fmt != FORMAT:
        raise CorruptRecord(f"{key}: not an optical-memory record (magic {magic!r}, format {fmt})")
    if code != _KIND_CODES[kind]:
        raise CorruptRecord(f"{key}: holds record kind {code}, expected {kind.__name__}")
    if zlib.crc32(value[_CHECKED_FROM:]) != crc:
        raise CorruptRecord(f"{key}: checksum mismatch, the stored value is corrupt")
    end = _PREFIX.size + header_len
    if end > len(value):
        raise CorruptRecord(f"{key}: header length {header_len} runs past the value")
    try:
        header = json.loads(value[_PREFIX.size : end].decode("utf-8", "surrogatepass"))
        blob = value[end:]
        if kind is Page or kind is VisionTokens:
            return kind.from_header(header, blob)
        return kind.from_header(header)
    except (ValueError, KeyError, TypeError, InvalidRecordError) as exc:
        raise CorruptRecord(f"{key}: record does not parse: {exc}") from exc


def _record_id(record: Record) -> str:
    return record.model_fingerprint if isinstance(record, VisionTokens) else record.id


class DecodedRecords(Generic[R]):
    """Records of one kind decoded from stored values, reused while a value is unchanged.

    A memory lists a thread's segments before every context: hundreds of records that
    rarely change. Reading their values stays cheap; parsing them is most of the cost, so a
    store keeps the last record decoded under each key with the exact bytes it came from,
    and decodes again only when those bytes differ (another process wrote, or the record
    changed). Records are frozen dataclasses, shared by every caller: never mutate their
    ``metadata``. Least recently used keys go first beyond ``max_entries``.
    """

    def __init__(self, kind: type[R], max_entries: int = 20_000) -> None:
        self._kind: type[R] = kind
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[bytes, R]] = OrderedDict()
        self._lock = threading.Lock()

    def decode(self, key: str, value: bytes) -> R:
        """The record stored as ``value`` under ``key`` (see :func:`decode`)."""
        value = bytes(value) if not isinstance(value, bytes) else value
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == value:
                self._entries.move_to_end(key)
                return hit[1]
        record: R = decode(self._kind, key, value)
        with self._lock:
            self._entries[key] = (value, record)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return record
