"""An :class:`~optical_memory.context.OpticalContext` as LangChain messages, and their cost.

The memory becomes one ``HumanMessage`` (marked with ``add_notification_metadata``, source
``"optical_memory"``): the preamble, then per page its label (``segment <id>``) and the
page as a base64 PNG image block, segments shown as text, and the fact sheet. The recent
turns follow as the messages they were. Image blocks are LangChain's standard
``{"type": "image", "base64", "mime_type"}`` blocks, but where a provider needs its own:

- pages priced at an OpenAI ``detail`` go as OpenAI ``image_url`` blocks carrying it
  (langchain-openai drops ``detail`` from standard blocks);
- pages listed in ``cache_pages`` carry ``extras.cache_control`` (ephemeral), which
  langchain-anthropic copies onto the block, so Anthropic's prompt cache holds the prefix.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    MessageLikeRepresentation,
    ToolMessage,
    add_notification_metadata,
    convert_to_messages,
    messages_from_dict,
)

from optical_memory import readers
from optical_memory.context import ContextPart, OpticalContext
from optical_memory.errors import OpticalMemoryError
from optical_memory.messages import openai_message
from optical_memory.readers import ReaderProfile
from optical_memory.records import Turn

__all__ = [
    "MEMORY_SOURCE",
    "context_messages",
    "count_message_tokens",
    "is_memory_message",
    "memory_message",
    "turn_message",
]

MEMORY_SOURCE = "optical_memory"
_DATA_URL = "data:image/png;base64,"


def turn_message(turn: Turn) -> BaseMessage:
    """The LangChain message a turn was added as (role/content dicts are converted)."""
    message = turn.message
    if "type" in message and isinstance(message.get("data"), Mapping):
        return messages_from_dict([dict(message)])[0]
    return convert_to_messages([openai_message(turn)])[0]


def is_memory_message(message: BaseMessage) -> bool:
    """Whether ``message`` is a memory message this module made (never a turn to store)."""
    return message.additional_kwargs.get("lc_source") == MEMORY_SOURCE


def memory_message(
    context: OpticalContext, *, cache_pages: Collection[str] = ()
) -> HumanMessage | None:
    """The memory part of ``context`` (pages, segment texts, fact sheet) as one message.

    Args:
        context: A context from ``OpticalMemory.context``.
        cache_pages: Ids of pages to mark with Anthropic's ``cache_control``.

    Returns:
        The message, or ``None`` when the context holds recent turns only.
    """
    parts = [part for part in context.parts if part.kind != "turn"]
    if not parts:
        return None
    # to_openai() opens the memory message with the same preamble that context.tokens
    # charges for; its blocks after the preamble follow the parts (2 per page, 1 per text).
    opened: list[dict[str, Any]] = context.to_openai()[0]["content"]
    head = len(opened) - sum(2 if part.page is not None else 1 for part in parts)
    blocks: list[str | dict[Any, Any]] = [dict(block) for block in opened[:head]]
    at = head
    for part in parts:
        if part.page is None:
            blocks.append({"type": "text", "text": part.text})
            at += 1
            continue
        if opened[at].get("text") != part.page.label:  # to_openai() changed its layout
            raise OpticalMemoryError(
                f"context.to_openai() no longer puts page {part.page.page_id}'s label where "
                "memory_message expects it"
            )
        blocks.append({"type": "text", "text": part.page.label})
        blocks.append(_page_block(part, opened[at + 1], cache_pages))
        at += 2
    data = {
        "thread": context.thread,
        "reader": context.reader,
        "segments": sorted({part.segment_id for part in parts if part.segment_id}),
        "pages": [part.page.page_id for part in parts if part.page is not None],
    }
    return add_notification_metadata(HumanMessage(content=blocks), source=MEMORY_SOURCE, data=data)


def _page_block(
    part: ContextPart, openai_block: Mapping[str, Any], cache_pages: Collection[str]
) -> dict[str, Any]:
    page = part.page
    assert page is not None  # the caller passes page parts only
    url = str(openai_block["image_url"]["url"])
    if page.detail is not None:
        return {"type": "image_url", "image_url": {"url": url, "detail": page.detail}}
    block: dict[str, Any] = {
        "type": "image",
        "base64": url.removeprefix(_DATA_URL),
        "mime_type": "image/png",
    }
    if page.page_id in cache_pages:
        block["extras"] = {"cache_control": {"type": "ephemeral"}}
    return block


def context_messages(
    context: OpticalContext,
    *,
    originals: Mapping[str, BaseMessage] | None = None,
    cache_pages: Collection[str] = (),
) -> list[BaseMessage]:
    """The context as LangChain messages: the memory message, then the recent turns.

    A recent turn whose id is in ``originals`` is that very message object; others are
    rebuilt from the stored turn. A tool result whose call is not shown (its call fell to
    the budget) is left out, since providers refuse a result without its call.

    Args:
        context: A context from ``OpticalMemory.context``.
        originals: Messages by id, to hand back the caller's own objects.
        cache_pages: Ids of pages to mark with Anthropic's ``cache_control``.
    """
    found = originals or {}
    messages: list[BaseMessage] = []
    opened = memory_message(context, cache_pages=cache_pages)
    if opened is not None:
        messages.append(opened)
    calls: set[str] = set()
    for turn in context.turns:
        message = found.get(turn.id) or turn_message(turn)
        if isinstance(message, AIMessage):
            calls.update(str(call.get("id")) for call in message.tool_calls)
        elif isinstance(message, ToolMessage) and message.tool_call_id not in calls:
            continue
        messages.append(message)
    return messages


def count_message_tokens(
    messages: Iterable[MessageLikeRepresentation],
    *,
    reader: str | ReaderProfile,
) -> int:
    """What ``messages`` cost ``reader``: its tokenizer on the text and tool calls, its
    image rule on each PNG image (sized from the PNG header), its framing per message.

    Usable as a ``token_counter`` (e.g. for ``SummarizationMiddleware``). An image given
    by URL (no bytes to size) is charged as one fresh page of the reader.

    Args:
        messages: LangChain messages or anything ``convert_to_messages`` takes.
        reader: A reader profile or its name.

    Raises:
        UnknownReader: ``reader`` names no profile.
    """
    profile = readers.get(reader)
    total = 0
    for message in convert_to_messages(messages):
        total += profile.message_overhead
        content = message.content
        blocks = [content] if isinstance(content, str) else list(content)
        for block in blocks:
            if isinstance(block, str):
                total += profile.text_tokens(block)
            elif isinstance(block, Mapping):
                total += _block_tokens(profile, block)
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                args = json.dumps(call.get("args", {}), ensure_ascii=False, sort_keys=True)
                total += profile.text_tokens(f"{call.get('name', '')}({args})")
    return total


def _block_tokens(profile: ReaderProfile, block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return profile.text_tokens(str(block.get("text", "")))
    if kind not in ("image", "image_url"):
        return 0
    if not profile.image_input:
        return 0  # a text reader is never sent images
    if kind == "image_url":
        image_url = block.get("image_url")
        url = image_url.get("url", "") if isinstance(image_url, Mapping) else image_url
        data = url.split(",", 1)[1] if isinstance(url, str) and url.startswith("data:") else None
    else:
        data = block.get("base64") or block.get("data")
    size = _png_size(data) if isinstance(data, str) else None
    if size is None:
        return profile.image_tokens(profile.page_side, profile.page_side)
    return profile.image_tokens(*size)


def _png_size(data: str) -> tuple[int, int] | None:
    """Width and height from a base64 PNG's header (no full decode); ``None`` if not a PNG."""
    try:
        head = base64.b64decode(data[:32], validate=False)
    except (binascii.Error, ValueError):
        return None
    if len(head) < 24 or not head.startswith(b"\x89PNG\r\n\x1a\n") or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return (width, height) if width and height else None
