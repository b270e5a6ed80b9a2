"""Chat messages in, turns out; turns back out as text and as provider messages.

A memory takes messages in the shapes chatbot code already has and keeps each one
verbatim as a :class:`~optical_memory.records.Turn`:

- role/content dicts (OpenAI's chat format, tool calls and ``tool_call_id`` included);
- LangChain's ``message_to_dict`` data (``{"type": "human", "data": {...}}``);
- LangChain message objects (converted with ``message_to_dict`` when langchain-core is
  installed);
- ``(role, text)`` pairs.

Pages show a turn as its text plus a one-line trace of each tool call, so what a model
saw of a tool exchange survives into the page image.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from optical_memory.errors import InvalidMessageError, InvalidRecordError
from optical_memory.records import Turn
from optical_memory.tokens import count_tokens

__all__ = [
    "MessageLike",
    "answered_call_ids",
    "openai_message",
    "tool_call_ids",
    "turn_text",
    "turns_from_messages",
]

MessageLike = Mapping[str, Any] | Sequence[str] | Any
"""A role/content dict, LangChain message data or object, or a ``(role, text)`` pair."""

_LANGCHAIN_ROLES = {"human": "user", "ai": "assistant", "AIMessageChunk": "assistant"}


def turns_from_messages(messages: Iterable[MessageLike]) -> list[Turn]:
    """Turns for ``messages``, each kept verbatim, with its cl100k text-token count.

    Raises:
        InvalidMessageError: A message is of no supported shape, or holds data that JSON
            would not return unchanged; the error says which message and why.
    """
    if isinstance(messages, (str, bytes, Mapping)):
        raise InvalidMessageError("add() takes a list of messages, not a single message")
    turns = []
    for index, message in enumerate(messages):
        data = _message_data(message, index)
        try:
            turn = Turn(data)
        except InvalidRecordError as exc:
            raise InvalidMessageError(f"message {index}: {exc}") from exc
        turns.append(dataclasses.replace(turn, text_tokens=count_tokens(turn_text(turn))))
    return turns


def _message_data(message: Any, index: int) -> dict[str, Any]:
    if isinstance(message, Mapping):
        data = dict(message)
        if "role" not in data and "type" not in data:
            raise InvalidMessageError(
                f"message {index} has neither 'role' nor 'type' (got keys {sorted(data)[:6]})"
            )
        return data
    if (
        isinstance(message, Sequence)
        and not isinstance(message, (str, bytes))
        and len(message) == 2
        and isinstance(message[0], str)
        and isinstance(message[1], str)
    ):
        if not message[0]:
            raise InvalidMessageError(f"message {index} has an empty role")
        return {"role": message[0], "content": message[1]}
    if hasattr(message, "type") and hasattr(message, "content"):
        try:
            from langchain_core.messages import message_to_dict
        except ImportError:  # pragma: no cover - an object shaped like one, without langchain
            pass
        else:
            return dict(message_to_dict(message))
    raise InvalidMessageError(
        f"message {index} must be a role/content dict, LangChain message data or object, or a "
        f"(role, text) pair; got {type(message).__name__}"
    )


def _body(message: Mapping[str, Any]) -> Mapping[str, Any]:
    data = message.get("data")
    return data if isinstance(data, Mapping) else message


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping):
                text = block.get("text")
                parts.append(text if isinstance(text, str) else f"[{block.get('type', 'block')}]")
        return "\n".join(parts)
    return "" if content is None else str(content)


def _calls(message: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(id, name, arguments)`` of each tool call a message makes, in either format."""
    body = _body(message)
    found = []
    for call in body.get("tool_calls") or ():
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        if isinstance(function, Mapping):  # OpenAI: {"id", "function": {"name", "arguments"}}
            name, args = function.get("name", ""), function.get("arguments", "")
        else:  # LangChain: {"id", "name", "args"}
            name, args = call.get("name", ""), call.get("args", {})
        if not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False, sort_keys=True)
        found.append((str(call.get("id") or ""), str(name), args))
    return found


def tool_call_ids(turn: Turn) -> list[str]:
    """Ids of the tool calls ``turn`` makes (empty for a turn that calls no tool)."""
    return [call_id for call_id, _, _ in _calls(turn.message) if call_id]


def answered_call_ids(turn: Turn) -> list[str]:
    """Ids of the tool calls ``turn`` answers (a tool result's ``tool_call_id``)."""
    value = _body(turn.message).get("tool_call_id")
    return [value] if isinstance(value, str) and value else []


def turn_text(turn: Turn) -> str:
    """What a page shows of a turn: its text, then one line per tool call it makes."""
    body = _body(turn.message)
    text = _content_text(body.get("content"))
    lines = [text] if text else []
    for call_id, name, args in _calls(turn.message):
        lines.append(f"[calls {name}({args})" + (f" id={call_id}]" if call_id else "]"))
    return "\n".join(lines)


def openai_message(turn: Turn) -> dict[str, Any]:
    """The turn as an OpenAI chat message (role/content dicts pass through unchanged)."""
    message = turn.message
    if "role" in message:
        return dict(message)
    body = _body(message)
    role = _LANGCHAIN_ROLES.get(str(message.get("type")), turn.role)
    result: dict[str, Any] = {"role": role, "content": body.get("content", "")}
    calls = _calls(message)
    if calls and role == "assistant":
        result["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            for call_id, name, args in calls
        ]
    if role == "tool" and isinstance(body.get("tool_call_id"), str):
        result["tool_call_id"] = body["tool_call_id"]
    return result
