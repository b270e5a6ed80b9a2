"""Where ingested pages live: byte values in any project store, under ``docs/`` keys.

::

    docs/<source sha256>/<profile>/page/000001    one page: JSON header + PNG image
    docs/<source sha256>/<profile>/tokens/000001  its vision tokens (with an encoder)
    docs/<source sha256>/<profile>/manifest       written last: the source is complete

A source is identified by the SHA-256 of its bytes; the *profile* is a short hash of
the settings that shape its pages (DPI, reader, decoder), so ingesting the same file
with another decoder keeps both results instead of mixing them. Each page is written in
one atomic ``put_blobs`` together with its tokens, and the manifest only once every page
is there: a run killed at any point leaves whole pages and no manifest, and the next run
writes the pages that are missing and then the manifest. The store's tenant scopes it
all, like every other record.

A page value is ``b"OMDP" | CRC-32 | header length | JSON header | PNG``; a value that
fails its checksum raises :class:`~optical_memory.errors.CorruptRecord` naming its key.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from optical_memory.documents.formats import Flow
from optical_memory.errors import CorruptRecord, NotFound
from optical_memory.store import Store

__all__ = ["DocumentPageStore", "PageRecord", "profile_id"]

_MAGIC = b"OMDP"
_PREFIX = struct.Struct(">4sII")  # magic, CRC-32 of the rest, header length
FORMAT = 1
ROOT = "docs/"


def profile_id(settings: Mapping[str, Any]) -> str:
    """A short stable id of the settings that shape a source's pages."""
    encoded = json.dumps(dict(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:10]


@dataclass(frozen=True)
class PageRecord:
    """What is stored for one page, besides its image.

    Attributes:
        source: The source's name when this page was ingested.
        sha256: Hex SHA-256 of the source's bytes.
        profile: The settings' id (:func:`profile_id`).
        page_number: Position in the source, from 1.
        flow: ``"image-born"`` or ``"text-born"``.
        text: The page's text: the reference text (text layer, rendered source span) of a
            text-born page, the decoder's reading of an image-born one.
        decoded: What the decoder read, or ``None`` when no decoder ran.
        accuracy: Character accuracy of ``decoded`` against the reference text, or
            ``None`` when there is no reference or no decoder.
        decoder: The decoder's name, or ``None``.
        width: Image width in pixels.
        height: Image height in pixels.
        vision_tokens: Key of the page's vision tokens, or ``None``.
    """

    source: str
    sha256: str
    profile: str
    page_number: int
    flow: Flow
    text: str
    decoded: str | None
    accuracy: float | None
    decoder: str | None
    width: int
    height: int
    vision_tokens: str | None = None

    @property
    def key(self) -> str:
        """The page's key in the store."""
        return page_key(self.sha256, self.profile, self.page_number)


def source_prefix(sha256: str, profile: str) -> str:
    """The key prefix of one source's pages, tokens and manifest."""
    return f"{ROOT}{sha256}/{profile}/"


def page_key(sha256: str, profile: str, page_number: int) -> str:
    """The key of one page."""
    return f"{source_prefix(sha256, profile)}page/{page_number:06d}"


def tokens_key(sha256: str, profile: str, page_number: int) -> str:
    """The key of one page's vision tokens."""
    return f"{source_prefix(sha256, profile)}tokens/{page_number:06d}"


def encode_page(record: PageRecord, png: bytes) -> bytes:
    """One page's stored value."""
    header = json.dumps({"format": FORMAT, **asdict(record)}, ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )
    rest = header + png
    crc = zlib.crc32(rest)
    return _PREFIX.pack(_MAGIC, crc, len(header)) + rest


def decode_page(key: str, value: bytes) -> tuple[PageRecord, bytes]:
    """A stored value back to its record and PNG bytes.

    Raises:
        CorruptRecord: The value is not a page, fails its checksum, or its header is bad.
    """
    if len(value) < _PREFIX.size:
        raise CorruptRecord(f"document page {key}: value too short ({len(value)} bytes)")
    magic, crc, length = _PREFIX.unpack_from(value)
    rest = value[_PREFIX.size :]
    if magic != _MAGIC or zlib.crc32(rest) != crc or length > len(rest):
        raise CorruptRecord(f"document page {key}: bad magic or checksum")
    try:
        fields = json.loads(rest[:length].decode("utf-8", "surrogatepass"))
        fields.pop("format")
        record = PageRecord(**fields)
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptRecord(f"document page {key}: bad header: {exc}") from exc
    return record, rest[length:]


class DocumentPageStore:
    """Ingested pages in a store (see the module docs for the keys).

    Args:
        store: Any project store (SQLite, Redis, Redis Cluster), bound to its tenant.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def stored_pages(self, sha256: str, profile: str) -> set[int]:
        """Numbers of the pages of one source already stored."""
        prefix = f"{source_prefix(sha256, profile)}page/"
        return {int(key[len(prefix) :]) for key in self.store.iter_blob_keys(prefix)}

    def put_page(self, record: PageRecord, png: bytes, tokens: bytes | None = None) -> None:
        """Store one page (and its vision tokens) atomically."""
        items = {record.key: encode_page(record, png)}
        if tokens is not None and record.vision_tokens is not None:
            items[record.vision_tokens] = tokens
        self.store.put_blobs(items)

    def put_manifest(self, sha256: str, profile: str, manifest: Mapping[str, Any]) -> None:
        """Mark one source complete; call only once all its pages are stored."""
        value = json.dumps(dict(manifest), ensure_ascii=False, sort_keys=True)
        self.store.put_blobs({f"{source_prefix(sha256, profile)}manifest": value.encode()})

    def manifest(self, sha256: str, profile: str) -> dict[str, Any] | None:
        """The manifest of a complete source, or ``None`` when it is not complete."""
        (value,) = self.store.get_blobs([f"{source_prefix(sha256, profile)}manifest"])
        if value is None:
            return None
        try:
            loaded: dict[str, Any] = json.loads(value)
        except ValueError as exc:
            raise CorruptRecord(f"document manifest of {sha256}/{profile}: {exc}") from exc
        return loaded

    def records(self, sha256: str, profile: str, count: int) -> list[PageRecord]:
        """The records of pages 1..``count`` of one source.

        Raises:
            NotFound: A page is missing.
            CorruptRecord: A page fails its checksum.
        """
        keys = [page_key(sha256, profile, number) for number in range(1, count + 1)]
        values = self.store.get_blobs(keys)
        return [self._decode(key, value)[0] for key, value in zip(keys, values, strict=True)]

    def image(self, key: str) -> bytes:
        """The PNG bytes of the page stored under ``key``.

        Raises:
            NotFound: No page under ``key``.
        """
        (value,) = self.store.get_blobs([key])
        return self._decode(key, value)[1]

    def read(self, keys: Sequence[str]) -> list[tuple[PageRecord, bytes]]:
        """Records and PNG bytes of the pages under ``keys``, in order."""
        values = self.store.get_blobs(keys)
        return [self._decode(key, value) for key, value in zip(keys, values, strict=True)]

    @staticmethod
    def _decode(key: str, value: bytes | None) -> tuple[PageRecord, bytes]:
        if value is None:
            raise NotFound(f"no document page under {key!r}")
        return decode_page(key, value)
