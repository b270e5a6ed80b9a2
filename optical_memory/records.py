"""The data model: turns, segments, pages and vision tokens, as stores keep them.

- :class:`Turn`: one message of a thread, kept verbatim as a plain dict (role, content with
  multimodal blocks, tool calls, ids, metadata: LangChain's ``message_to_dict`` form or a
  role/content dict), so a message round-trips exactly without the core importing LangChain.
- :class:`Segment`: a run of consecutive old turns compressed together, at one tier, with its
  pages.
- :class:`Page`: one rendered PNG of part of a segment, identified by a hash of its bytes.
- :class:`VisionTokens`: a DeepEncoder output ``[n, 1280]`` as raw bytes with dtype, shape and
  the fingerprint of the model that made it, so a stale cache is never read by another model.

Records serialize to versioned JSON headers plus raw bytes (never pickle):
:meth:`to_header` and :meth:`from_header` give the JSON part, and the binary part travels
beside it (see ``optical_memory.store.codec``).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import math
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from optical_memory.errors import InvalidRecordError

__all__ = [
    "Legibility",
    "Page",
    "Segment",
    "Turn",
    "VisionTokens",
    "new_id",
]

# Bumped when a header's fields change incompatibly; readers accept every version they know.
RECORD_VERSION = 1

_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2}


def new_id() -> str:
    """A fresh random id (32 hex digits)."""
    return uuid.uuid4().hex


# Set while rebuilding a record from parsed JSON: what json.loads returns always survives
# a round trip, so the check (a dump and a parse per record) is skipped on every read.
_FROM_JSON: contextvars.ContextVar[bool] = contextvars.ContextVar("_FROM_JSON", default=False)


@contextlib.contextmanager
def _from_stored_json() -> Iterator[None]:
    """Within: records are rebuilt from JSON the store parsed (see ``_FROM_JSON``)."""
    token = _FROM_JSON.set(True)
    try:
        yield
    finally:
        _FROM_JSON.reset(token)


def _check_json(value: Any, what: str) -> None:
    """Refuse values JSON cannot carry exactly (sets, bytes, NaN, non-string keys)."""
    if _FROM_JSON.get():
        return
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        again = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"{what} is not plain JSON data: {exc}") from exc
    if again != value:
        # e.g. tuples become lists, int keys become strings: the caller would get back
        # something else than they stored.
        raise InvalidRecordError(f"{what} does not survive a JSON round trip unchanged")


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRecordError(f"{what} must be a non-empty str, got {value!r}")
    return value


def _check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRecordError(f"{what} must be an int >= 0, got {value!r}")
    return value


def _check_version(header: Mapping[str, Any], kind: str) -> None:
    version = header.get("v")
    if not isinstance(version, int) or not 1 <= version <= RECORD_VERSION:
        raise InvalidRecordError(f"unknown {kind} record version {version!r}")


@dataclass(frozen=True)
class Turn:
    """One message of a thread.

    Attributes:
        message: The message verbatim, as plain JSON data (a dict).
        id: Unique within its thread; taken from ``message`` (``id`` or ``data.id``) when
            present, else a fresh random id. Appending a turn whose id is already stored is a
            no-op, which makes retried appends safe.
        role: ``"user"``, ``"assistant"``, ``"tool"``, ``"system"``, ... (derived from the
            message when not given).
        created_at: Unix time in seconds.
        text_tokens: The message's text-token count, when known.
    """

    message: Mapping[str, Any]
    id: str = ""
    role: str = ""
    created_at: float = field(default_factory=time.time)
    text_tokens: int = 0

    KIND: ClassVar[str] = "turn"

    def __post_init__(self) -> None:
        if not isinstance(self.message, Mapping):
            raise InvalidRecordError(
                f"Turn.message must be a dict, got {type(self.message).__name__}"
            )
        _check_json(dict(self.message), "Turn.message")
        if not self.id:
            object.__setattr__(self, "id", _message_id(self.message) or new_id())
        if not self.role:
            object.__setattr__(self, "role", _message_role(self.message))
        _check_name(self.id, "Turn.id")
        _check_name(self.role, "Turn.role")
        if not isinstance(self.created_at, (int, float)) or not math.isfinite(self.created_at):
            raise InvalidRecordError(
                f"Turn.created_at must be a finite number: {self.created_at!r}"
            )
        _check_count(self.text_tokens, "Turn.text_tokens")

    def to_header(self) -> dict[str, Any]:
        """The turn as versioned JSON data."""
        return {
            "v": RECORD_VERSION,
            "id": self.id,
            "role": self.role,
            "created_at": self.created_at,
            "text_tokens": self.text_tokens,
            "message": dict(self.message),
        }

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> Turn:
        """Rebuild a turn from :meth:`to_header` data."""
        _check_version(header, cls.KIND)
        with _from_stored_json():
            return cls(
                message=header["message"],
                id=header["id"],
                role=header["role"],
                created_at=header["created_at"],
                text_tokens=header["text_tokens"],
            )


def _message_id(message: Mapping[str, Any]) -> str:
    data = message.get("data")
    for source in (message, data if isinstance(data, Mapping) else {}):
        value = source.get("id")
        if isinstance(value, str) and value:
            return value
    return ""


def _message_role(message: Mapping[str, Any]) -> str:
    """The role of a role/content dict or of LangChain's ``message_to_dict`` form."""
    role = message.get("role")
    if isinstance(role, str) and role:
        return role
    kind = message.get("type")
    if isinstance(kind, str) and kind:
        return {"human": "user", "ai": "assistant"}.get(kind, kind)
    raise InvalidRecordError("Turn.message has neither 'role' nor 'type'; pass role= explicitly")


@dataclass(frozen=True)
class Legibility:
    """How well a decoder read a page back: ``score`` in [0, 1] and the decoder's name."""

    score: float
    decoder: str

    def __post_init__(self) -> None:
        if not isinstance(self.score, (int, float)) or not 0.0 <= self.score <= 1.0:
            raise InvalidRecordError(f"Legibility.score must be in [0, 1], got {self.score!r}")
        _check_name(self.decoder, "Legibility.decoder")


@dataclass(frozen=True)
class Page:
    """One rendered image of part of a segment at one tier.

    Attributes:
        png: The PNG bytes.
        width, height: Pixel size.
        span: ``(start, end)`` character offsets of the segment text the page shows.
        tier: The tier the page was rendered or decayed to.
        text_tokens: Text tokens of the span.
        image_tokens: Image tokens per reader name (e.g. ``{"deepseek-ocr": 100}``).
        legibility: Read-back score, when measured.
        id: A hash of the PNG bytes (computed when not given).
    """

    png: bytes
    width: int
    height: int
    span: tuple[int, int]
    tier: str
    text_tokens: int = 0
    image_tokens: Mapping[str, int] = field(default_factory=dict)
    legibility: Legibility | None = None
    id: str = ""

    KIND: ClassVar[str] = "page"

    def __post_init__(self) -> None:
        if not isinstance(self.png, (bytes, bytearray, memoryview)):
            raise InvalidRecordError(f"Page.png must be bytes, got {type(self.png).__name__}")
        object.__setattr__(self, "png", bytes(self.png))
        if not self.png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise InvalidRecordError("Page.png is not PNG data (bad signature)")
        if not self.id:
            object.__setattr__(self, "id", page_id(self.png))
        _check_name(self.id, "Page.id")
        _check_name(self.tier, "Page.tier")
        for name in ("width", "height", "text_tokens"):
            _check_count(getattr(self, name), f"Page.{name}")
        span = tuple(self.span)
        if (
            len(span) != 2
            or not all(isinstance(x, int) for x in span)
            or not 0 <= span[0] <= span[1]
        ):
            raise InvalidRecordError(
                f"Page.span must be (start, end) with 0 <= start <= end: {span}"
            )
        object.__setattr__(self, "span", span)
        tokens = dict(self.image_tokens)
        for reader, count in tokens.items():
            _check_name(reader, "Page.image_tokens reader")
            _check_count(count, f"Page.image_tokens[{reader!r}]")
        object.__setattr__(self, "image_tokens", tokens)

    def to_header(self) -> dict[str, Any]:
        """The page's fields except its PNG bytes, as versioned JSON data."""
        return {
            "v": RECORD_VERSION,
            "id": self.id,
            "width": self.width,
            "height": self.height,
            "span": list(self.span),
            "tier": self.tier,
            "text_tokens": self.text_tokens,
            "image_tokens": dict(self.image_tokens),
            "legibility": (
                None
                if self.legibility is None
                else {"score": self.legibility.score, "decoder": self.legibility.decoder}
            ),
        }

    @classmethod
    def from_header(cls, header: Mapping[str, Any], png: bytes) -> Page:
        """Rebuild a page from :meth:`to_header` data and its PNG bytes."""
        _check_version(header, cls.KIND)
        legibility = header.get("legibility")
        return cls(
            png=png,
            width=header["width"],
            height=header["height"],
            span=(header["span"][0], header["span"][1]),
            tier=header["tier"],
            text_tokens=header["text_tokens"],
            image_tokens=header["image_tokens"],
            legibility=None if legibility is None else Legibility(**legibility),
            id=header["id"],
        )


def page_id(png: bytes) -> str:
    """The content id of a page: the first 32 hex digits of the SHA-256 of its PNG bytes."""
    return hashlib.sha256(png).hexdigest()[:32]


@dataclass(frozen=True)
class Segment:
    """A run of consecutive turns of one thread, compressed together into pages.

    Attributes:
        thread: The thread the segment belongs to.
        turn_ids: The ids of the turns it covers, in order.
        tier: Its current tier (``text``, ``large``, ``base``, ``small``, ``tiny``,
            ``forgotten``, or ``gundam`` for tiled documents).
        page_ids: Its pages in reading order (ids of :class:`Page` records).
        id: Unique within the thread (a fresh random id when not given).
        created_at, updated_at: Unix times in seconds.
        metadata: Plain JSON data for the caller (e.g. the preset used).
    """

    thread: str
    turn_ids: Sequence[str]
    tier: str
    page_ids: Sequence[str] = ()
    id: str = field(default_factory=new_id)
    created_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    metadata: Mapping[str, Any] = field(default_factory=dict)

    KIND: ClassVar[str] = "segment"

    def __post_init__(self) -> None:
        _check_name(self.thread, "Segment.thread")
        _check_name(self.id, "Segment.id")
        _check_name(self.tier, "Segment.tier")
        for name in ("turn_ids", "page_ids"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise InvalidRecordError(f"Segment.{name} must be a sequence of ids")
            ids = tuple(value)
            if not _FROM_JSON.get():  # checked when written
                for item in ids:
                    _check_name(item, f"Segment.{name} item")
                if len(set(ids)) != len(ids):
                    raise InvalidRecordError(f"Segment.{name} repeats an id")
            object.__setattr__(self, name, ids)
        if not self.updated_at:
            object.__setattr__(self, "updated_at", self.created_at)
        _check_json(dict(self.metadata), "Segment.metadata")
        object.__setattr__(self, "metadata", dict(self.metadata))

    def to_header(self) -> dict[str, Any]:
        """The segment as versioned JSON data."""
        return {
            "v": RECORD_VERSION,
            "id": self.id,
            "thread": self.thread,
            "turn_ids": list(self.turn_ids),
            "tier": self.tier,
            "page_ids": list(self.page_ids),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> Segment:
        """Rebuild a segment from :meth:`to_header` data."""
        _check_version(header, cls.KIND)
        with _from_stored_json():
            return cls(
                thread=header["thread"],
                turn_ids=header["turn_ids"],
                tier=header["tier"],
                page_ids=header["page_ids"],
                id=header["id"],
                created_at=header["created_at"],
                updated_at=header["updated_at"],
                metadata=header["metadata"],
            )


@dataclass(frozen=True)
class VisionTokens:
    """Cached DeepEncoder output for one page.

    Attributes:
        data: The tensor's raw bytes, C order, little-endian.
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"``.
        shape: ``(n, width)``, e.g. ``(111, 1280)`` for a Small page.
        model_fingerprint: Identifies the weights that produced the tokens.
        mode: The DeepSeek-OCR mode used (``tiny``, ``small``, ``base``, ``large``, ``gundam``).
    """

    data: bytes
    dtype: str
    shape: tuple[int, ...]
    model_fingerprint: str
    mode: str = ""

    KIND: ClassVar[str] = "vision_tokens"

    def __post_init__(self) -> None:
        if not isinstance(self.data, (bytes, bytearray, memoryview)):
            raise InvalidRecordError(
                f"VisionTokens.data must be bytes, got {type(self.data).__name__}"
            )
        object.__setattr__(self, "data", bytes(self.data))
        if self.dtype not in _ITEMSIZE:
            raise InvalidRecordError(
                f"VisionTokens.dtype must be one of {sorted(_ITEMSIZE)}, got {self.dtype!r}"
            )
        shape = tuple(self.shape)
        if len(shape) != 2 or not all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in shape
        ):
            raise InvalidRecordError(f"VisionTokens.shape must be (n, width) > 0, got {shape}")
        object.__setattr__(self, "shape", shape)
        expected = shape[0] * shape[1] * _ITEMSIZE[self.dtype]
        if len(self.data) != expected:
            raise InvalidRecordError(
                f"VisionTokens.data has {len(self.data)} bytes; {self.dtype} {shape} needs "
                f"{expected}"
            )
        _check_name(self.model_fingerprint, "VisionTokens.model_fingerprint")
        if not isinstance(self.mode, str):
            raise InvalidRecordError("VisionTokens.mode must be a str")

    @classmethod
    def from_numpy(
        cls, array: np.ndarray[Any, Any], model_fingerprint: str, mode: str = ""
    ) -> VisionTokens:
        """Wrap a float32 or float16 numpy array (bfloat16 comes from torch, as raw bytes)."""
        dtype = str(array.dtype)
        if dtype not in ("float32", "float16"):
            raise InvalidRecordError(f"numpy arrays must be float32 or float16, got {dtype}")
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        return cls(data, dtype, tuple(int(x) for x in array.shape), model_fingerprint, mode)

    def to_numpy(self) -> np.ndarray[Any, Any]:
        """The tokens as a numpy array; bfloat16 is widened exactly to float32."""
        if self.dtype == "bfloat16":
            # bfloat16 is the top half of a float32, so a 16-bit shift widens it exactly.
            raw = np.frombuffer(self.data, dtype="<u2").astype(np.uint32) << 16
            return raw.view(np.float32).reshape(self.shape)
        return np.frombuffer(self.data, dtype=np.dtype(self.dtype).newbyteorder("<")).reshape(
            self.shape
        )

    def to_header(self) -> dict[str, Any]:
        """Every field except the raw bytes, as versioned JSON data."""
        return {
            "v": RECORD_VERSION,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "model_fingerprint": self.model_fingerprint,
            "mode": self.mode,
        }

    @classmethod
    def from_header(cls, header: Mapping[str, Any], data: bytes) -> VisionTokens:
        """Rebuild vision tokens from :meth:`to_header` data and their bytes."""
        _check_version(header, cls.KIND)
        return cls(
            data=data,
            dtype=header["dtype"],
            shape=tuple(header["shape"]),
            model_fingerprint=header["model_fingerprint"],
            mode=header["mode"],
        )
