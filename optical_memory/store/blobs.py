"""Byte values by key: the checks and the envelope both backends share.

Besides threads, a store keeps opaque byte values under free-text keys, per tenant
(``put_blobs``, ``get_blobs``, ``delete_blobs``, ``iter_blob_keys``). They back
LangChain's ``ByteStore`` and the document front end's page records. Each value is stored
in a checksummed envelope, so a damaged value raises
:class:`~optical_memory.errors.CorruptRecord` instead of coming back altered.

Keys sort by code point in both backends: SQLite compares the UTF-8 bytes, Redis sorted
sets compare the same bytes lexicographically.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence

from optical_memory.errors import CorruptRecord, InvalidRecordError, RecordTooLarge
from optical_memory.store.codec import MAX_BLOB_BYTES

__all__ = [
    "KEYS_PER_PAGE",
    "MAX_KEY_CHARS",
    "BlobItems",
    "check_blob_items",
    "check_blob_keys",
    "check_blob_prefix",
    "key_bytes",
    "key_text",
    "unwrap_blob",
    "wrap_blob",
]

BlobItems = Mapping[str, bytes] | Iterable[tuple[str, bytes]]

MAX_KEY_CHARS = 1024
# Keys fetched per round trip while iterating.
KEYS_PER_PAGE = 500

# b"OM", format 1, kind 5 (bytes), CRC-32 of the value: the record envelope without a header.
_HEAD = struct.Struct(">2sBBI")
_MAGIC, _FORMAT, _KIND = b"OM", 1, 5


def key_bytes(key: str) -> bytes:
    """A key as stored: UTF-8 that keeps lone surrogates."""
    return key.encode("utf-8", "surrogatepass")


def key_text(raw: bytes) -> str:
    """Invert :func:`key_bytes`."""
    return bytes(raw).decode("utf-8", "surrogatepass")


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise InvalidRecordError(f"a blob key must be a str, got {type(key).__name__}")
    if not key or len(key) > MAX_KEY_CHARS:
        raise InvalidRecordError(f"a blob key must have 1 to {MAX_KEY_CHARS} characters")
    return key


def check_blob_keys(keys: Sequence[str]) -> list[str]:
    """Validate the keys of a ``get_blobs`` or ``delete_blobs`` call."""
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence):
        raise InvalidRecordError("blob keys must be given as a sequence of str")
    return [_check_key(key) for key in keys]


def check_blob_prefix(prefix: str | None) -> str:
    """Validate the prefix of ``iter_blob_keys`` (``None`` lists every key)."""
    if prefix is None:
        return ""
    if not isinstance(prefix, str) or len(prefix) > MAX_KEY_CHARS:
        raise InvalidRecordError(f"a key prefix must be a str of at most {MAX_KEY_CHARS} chars")
    return prefix


def check_blob_items(items: BlobItems) -> dict[str, bytes]:
    """Validate ``put_blobs`` items: a mapping or pairs; a key given twice keeps its last."""
    pairs = items.items() if isinstance(items, Mapping) else items
    if isinstance(pairs, (str, bytes)):
        raise InvalidRecordError("put_blobs takes a mapping or (key, bytes) pairs")
    result: dict[str, bytes] = {}
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidRecordError(f"put_blobs takes (key, bytes) pairs, got {pair!r:.80}")
        key, value = pair
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidRecordError(
                f"the value of blob {key!r:.80} must be bytes, got {type(value).__name__}"
            )
        value = bytes(value)
        if len(value) > MAX_BLOB_BYTES:
            raise RecordTooLarge(
                f"blob {key!r:.80} has {len(value):,} bytes; the limit is {MAX_BLOB_BYTES:,}"
            )
        result[_check_key(key)] = value
    return result


def wrap_blob(value: bytes) -> bytes:
    """A value in its checksummed envelope."""
    return _HEAD.pack(_MAGIC, _FORMAT, _KIND, zlib.crc32(value)) + value


def unwrap_blob(where: str, stored: object) -> bytes:
    """The value out of its envelope.

    Raises:
        CorruptRecord: The stored bytes are truncated, not a blob envelope, or fail the
            checksum; ``where`` names the key.
    """
    if not isinstance(stored, (bytes, bytearray, memoryview)):
        raise CorruptRecord(f"{where}: stored value is {type(stored).__name__}, not bytes")
    stored = bytes(stored)
    if len(stored) < _HEAD.size:
        raise CorruptRecord(f"{where}: value truncated ({len(stored)} bytes)")
    magic, fmt, kind, crc = _HEAD.unpack_from(stored)
    if (magic, fmt, kind) != (_MAGIC, _FORMAT, _KIND):
        raise CorruptRecord(f"{where}: not an optical-memory blob")
    value = stored[_HEAD.size :]
    if zlib.crc32(value) != crc:
        raise CorruptRecord(f"{where}: checksum mismatch, the stored value is corrupt")
    return value
