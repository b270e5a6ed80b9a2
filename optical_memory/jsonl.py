"""Conversations as JSON Lines: one chat message (a JSON object) per line.

The command line reads conversations in this form (``optical-memory ingest``, ``demo
--input``), and the bundled demo conversation is kept in it. Every line is checked
before anything is stored, so a bad line stops the whole file, never half of it.

Example:
    >>> parse_messages('{"role": "user", "content": "Hi"}\\n\\n', "chat.jsonl")
    [{'role': 'user', 'content': 'Hi'}]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optical_memory.errors import InvalidMessageError, OpticalMemoryError
from optical_memory.messages import turns_from_messages

__all__ = ["dump_messages", "parse_messages", "read_messages"]


def parse_messages(text: str, source: str) -> list[dict[str, Any]]:
    """The messages of a JSON Lines text, checked as a memory would take them.

    Blank lines are skipped. Each other line must be a JSON object with a ``role`` (or a
    LangChain ``type``) that :meth:`~optical_memory.OpticalMemory.add` accepts.

    Args:
        text: The file's text.
        source: What to call it in error messages (usually its path).

    Returns:
        The messages, in file order.

    Raises:
        InvalidMessageError: A line is not JSON, not an object, or not a message; the
            error names the source and the line.
    """
    messages: list[dict[str, Any]] = []
    # Lines end at "\n" only: JSON written with ensure_ascii=False may hold U+2028 or
    # U+0085 inside a string, where str.splitlines() would cut it.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidMessageError(f"{source} line {number}: not valid JSON ({exc})") from exc
        _check_line(value, source, number)
        messages.append(value)
    try:
        turns_from_messages(messages)
    except InvalidMessageError as exc:
        raise InvalidMessageError(f"{source}: {exc}") from exc
    return messages


def _check_line(value: Any, source: str, number: int) -> None:
    where = f"{source} line {number}"
    if not isinstance(value, dict):
        raise InvalidMessageError(f"{where}: expected a JSON object, got {type(value).__name__}")
    if "role" not in value and "type" not in value:
        raise InvalidMessageError(f"{where}: a message needs a 'role' (got keys {sorted(value)})")
    role = value.get("role", value.get("type"))
    if not isinstance(role, str) or not role:
        raise InvalidMessageError(f"{where}: the role must be a non-empty string, got {role!r}")
    content = value.get("content", "")
    if not isinstance(content, (str, list)) and content is not None:
        raise InvalidMessageError(
            f"{where}: content must be a string or a list of blocks, got {type(content).__name__}"
        )


def read_messages(path: Path) -> list[dict[str, Any]]:
    """The messages of a JSON Lines file (see :func:`parse_messages`).

    Raises:
        OpticalMemoryError: The file cannot be read as UTF-8 text.
        InvalidMessageError: A line is not a message.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OpticalMemoryError(f"cannot read {path}: {exc}") from exc
    return parse_messages(text, str(path))


def dump_messages(messages: Sequence[dict[str, Any]]) -> str:
    """Messages as JSON Lines text (non-ASCII kept as is), the inverse of
    :func:`parse_messages`."""
    return "".join(json.dumps(message, ensure_ascii=False) + "\n" for message in messages)
