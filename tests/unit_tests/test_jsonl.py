"""Conversations as JSON Lines: every line checked, file order kept, text kept exactly."""

from __future__ import annotations

import pytest

from optical_memory.errors import InvalidMessageError
from optical_memory.jsonl import dump_messages, parse_messages

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "line one\u2028still line one\u0085 and tabs\t, 中文, 🚀"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    {"type": "human", "data": {"content": "LangChain's form", "id": "m7"}},
]


def test_round_trip_keeps_every_character_and_skips_blank_lines() -> None:
    text = dump_messages(MESSAGES)
    assert text.count("\n") == len(MESSAGES)  # U+2028 and U+0085 stay inside their line
    assert parse_messages("\n" + text.replace("\n", "\r\n") + "\n  \n", "chat.jsonl") == MESSAGES


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"role": "user", "content": "cut', "line 2: not valid JSON"),
        ('["role", "user"]', "line 2: expected a JSON object, got list"),
        ('{"content": "who?"}', "line 2: a message needs a 'role'"),
        ('{"role": "", "content": "x"}', "line 2: the role must be a non-empty string"),
        ('{"role": "user", "content": 7}', "line 2: content must be a string or a list"),
    ],
)
def test_bad_line_is_named_by_file_and_number(line: str, problem: str) -> None:
    with pytest.raises(InvalidMessageError, match=problem) as caught:
        parse_messages('{"role": "user", "content": "fine"}\n' + line + "\n", "chat.jsonl")
    assert str(caught.value).startswith("chat.jsonl line 2: ")
