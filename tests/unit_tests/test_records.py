"""The data model and its checksummed envelope: exact round trips, clear refusals."""

from __future__ import annotations

import re
import struct
from typing import Any

import numpy as np
import pytest

from optical_memory.errors import CorruptRecord, InvalidRecordError, RecordTooLarge
from optical_memory.records import Legibility, Page, Segment, Turn, VisionTokens
from optical_memory.store import codec

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "plain"},
    # LangChain's message_to_dict form, with multimodal blocks and tool calls.
    {
        "type": "ai",
        "data": {
            "content": [
                {"type": "text", "text": "see image"},
                {
                    "type": "image",
                    "source_type": "base64",
                    "data": "aGk=",
                    "mime_type": "image/png",
                },
            ],
            "tool_calls": [{"name": "recall", "args": {"segment": "s1"}, "id": "call_1"}],
            "id": "run-7",
            "additional_kwargs": {},
            "response_metadata": {"model": "x", "nested": {"a": [1, 2.5, None, True]}},
        },
    },
    {"role": "tool", "content": "", "tool_call_id": "call_1"},
    # Unicode of every kind: CJK, RTL, emoji with ZWJ, combining marks, a lone surrogate.
    {"role": "user", "content": "中文 עברית 👩‍👩‍👧 é\u0301 \ud800 \x00 \u202e"},
    {"role": "user", "content": "x" * 200_000},
]


@pytest.mark.parametrize("message", MESSAGES)
def test_turn_round_trips_verbatim(message: dict[str, Any]) -> None:
    turn = Turn(message, text_tokens=3)
    back = codec.decode(Turn, "k", codec.encode(turn))
    assert back == turn
    assert back.message == message


def test_turn_takes_id_and_role_from_the_message() -> None:
    assert Turn(MESSAGES[1]).id == "run-7"
    assert Turn(MESSAGES[1]).role == "assistant"
    assert Turn({"type": "human", "data": {"content": "hi"}}).role == "user"
    assert len(Turn(MESSAGES[0]).id) == 32


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": {1, 2}},
        {"role": "user", "content": b"bytes"},
        {"role": "user", "content": float("nan")},
        {"role": "user", "content": (1, 2)},  # would come back as a list
        {1: "int key"},
        {"content": "no role"},
    ],
)
def test_turn_refuses_what_json_cannot_carry_exactly(message: Any) -> None:
    with pytest.raises(InvalidRecordError):
        Turn(message)


def test_turn_refuses_a_non_dict() -> None:
    with pytest.raises(InvalidRecordError, match="must be a dict"):
        Turn("hello")  # type: ignore[arg-type]


def test_page_and_segment_round_trip() -> None:
    page = Page(
        PNG,
        width=640,
        height=640,
        span=(0, 1200),
        tier="small",
        text_tokens=300,
        image_tokens={"deepseek-ocr": 100, "gpt-4o": 255},
        legibility=Legibility(0.98, "rapidocr"),
    )
    assert page.id == codec.decode(Page, "k", codec.encode(page)).id
    assert codec.decode(Page, "k", codec.encode(page)) == page
    segment = Segment("t", turn_ids=["a", "b"], tier="small", page_ids=[page.id], metadata={"p": 1})
    assert codec.decode(Segment, "k", codec.encode(segment)) == segment
    assert segment.turn_ids == ("a", "b")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"png": b"GIF89a"}, "not PNG"),
        ({"png": "text"}, "must be bytes"),
        ({"span": (5, 2)}, "span"),
        ({"width": -1}, "width"),
        ({"image_tokens": {"r": -3}}, "image_tokens"),
    ],
)
def test_page_refuses_bad_fields(kwargs: dict[str, Any], match: str) -> None:
    fields: dict[str, Any] = {"png": PNG, "width": 1, "height": 1, "span": (0, 1), "tier": "tiny"}
    with pytest.raises(InvalidRecordError, match=match):
        Page(**{**fields, **kwargs})


def test_segment_refuses_repeated_or_string_ids() -> None:
    with pytest.raises(InvalidRecordError, match="repeats"):
        Segment("t", turn_ids=["a", "a"], tier="small")
    with pytest.raises(InvalidRecordError, match="sequence"):
        Segment("t", turn_ids="abc", tier="small")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_vision_tokens_round_trip_numpy(dtype: str) -> None:
    array = np.random.default_rng(0).standard_normal((111, 1280)).astype(dtype)
    tokens = VisionTokens.from_numpy(array, "model-a", mode="small")
    back = codec.decode(VisionTokens, "k", codec.encode(tokens))
    assert back == tokens
    np.testing.assert_array_equal(back.to_numpy(), array)


def test_bfloat16_widens_exactly() -> None:
    values = np.array([[1.0, -2.5, 3.140625, 0.0]], dtype=np.float32)
    top_halves = (values.view(np.uint32) >> 16).astype("<u2")
    tokens = VisionTokens(top_halves.tobytes(), "bfloat16", (1, 4), "m")
    np.testing.assert_array_equal(tokens.to_numpy(), values)


@pytest.mark.parametrize(
    ("data", "dtype", "shape", "match"),
    [
        (b"\0" * 8, "float32", (1, 3), "needs 12"),
        (b"\0" * 8, "int8", (1, 8), "dtype"),
        (b"\0" * 8, "float32", (2,), "shape"),
        (b"\0" * 8, "float32", (0, 2), "shape"),
    ],
)
def test_vision_tokens_refuse_wrong_dtype_or_shape(
    data: bytes, dtype: str, shape: tuple[int, ...], match: str
) -> None:
    with pytest.raises(InvalidRecordError, match=match):
        VisionTokens(data, dtype, shape, "m")


def test_every_flipped_byte_is_caught() -> None:
    value = codec.encode(Page(PNG, width=1, height=1, span=(0, 1), tier="tiny"))
    for index in range(len(value)):
        damaged = bytearray(value)
        damaged[index] ^= 0x10
        with pytest.raises(CorruptRecord, match=re.escape("om:t:{th}:page:1")):
            codec.decode(Page, "om:t:{th}:page:1", bytes(damaged))


def test_truncated_foreign_and_wrong_kind_values_are_corrupt() -> None:
    value = codec.encode(Turn(MESSAGES[0]))
    for bad in (
        value[:5],
        value[:-1],
        b"",
        b"PNG data",
        struct.pack(">2sBBII", b"OM", 1, 1, 0, 99),
    ):
        with pytest.raises(CorruptRecord):
            codec.decode(Turn, "key", bad)
    with pytest.raises(CorruptRecord, match="expected Segment"):
        codec.decode(Segment, "key", value)


def test_oversized_values_are_refused_before_writing() -> None:
    with pytest.raises(RecordTooLarge, match="limit"):
        codec.encode(Turn({"role": "user", "content": "x" * (codec.MAX_HEADER_BYTES + 1)}))
    big = VisionTokens(
        b"\0" * (codec.MAX_BLOB_BYTES + 4), "float32", (codec.MAX_BLOB_BYTES // 4 + 1, 1), "m"
    )
    with pytest.raises(RecordTooLarge):
        codec.encode(big)
