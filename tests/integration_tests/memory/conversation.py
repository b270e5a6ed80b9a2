"""A conversation for memory tests: prose, tool calls, Unicode, LangChain-shaped turns."""

from __future__ import annotations

from typing import Any

TOPICS = [
    "the deployment of service {n} moved to region eu-west-{m} on 2025-0{m}-1{n}",
    "Dr. Amara Okafor asked for invoice INV-{n}{m}77 to be reissued in euros",
    "the cache hit rate fell to {n}{m}% after the config change to max_retries={m}",
    "我们把 Redis 集群扩容到 {n} 个分片，延迟下降了 {m}0%。",
    "a note with emoji 🚀 and accents: café, naïve, Zürich; item {n}-{m}",
]


def conversation(turns: int) -> list[dict[str, Any]]:
    """``turns`` messages; every 9th assistant turn calls a tool, answered by the next turn."""
    messages: list[dict[str, Any]] = []
    n = 0
    while len(messages) < turns:
        topic = TOPICS[n % len(TOPICS)].format(n=n % 10, m=(n * 7) % 9 + 1)
        if n % 9 == 4:
            call = f"call_{n}"
            messages.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": call,
                            "type": "function",
                            "function": {"name": "lookup", "arguments": f'{{"item": {n}}}'},
                        }
                    ],
                }
            )
            messages.append({"role": "tool", "tool_call_id": call, "content": f"result {n}"})
        elif n % 2:
            messages.append({"role": "assistant", "content": f"Noted: {topic}. " * 2})
        else:
            messages.append({"role": "user", "content": f"Remember that {topic}."})
        n += 1
    return messages[:turns]
