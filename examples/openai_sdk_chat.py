"""OpticalMemory with the plain OpenAI SDK: role/content dicts in, ``to_openai()`` out.

Every user turn and answer goes into the memory as an OpenAI chat message; before each
call ``memory.context(...).to_openai()`` gives the messages to send: one user message
holding the older turns as page images (``image_url`` blocks, base64 PNG, each after a
``segment <id>`` label, at the ``detail`` they are priced at) and the fact sheet, then
the recent turns as they were.

Run it::

    python examples/openai_sdk_chat.py                    # offline: prints what it would send
    OPENAI_API_KEY=... python examples/openai_sdk_chat.py  # with the openai package installed

Offline (no key, or no ``openai`` package) it answers each turn itself and prints the
messages of the last request, image data left out.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optical_memory import OpticalMemory

TOPICS = [
    "Our API gateway returns 502 on /v2/orders about 3% of the time since 2025-05-12.",
    "The gateway runs nginx 1.25 with upstream keepalive 64 and a 30 s read timeout.",
    "Order service pods are limited to 512Mi; three were OOM-killed yesterday at 02:14.",
    "Ticket OPS-4471 tracks it; Priya owns it and wants a fix before the 2025-06-01 freeze.",
]

Ask = Callable[[list[dict[str, Any]]], str]


def openai_ask(model: str) -> Ask | None:
    """A function that sends messages to OpenAI, or ``None`` when it cannot."""
    if not os.environ.get("OPENAI_API_KEY") or not importlib.util.find_spec("openai"):
        return None
    from openai import OpenAI

    client = OpenAI()

    def ask(messages: list[dict[str, Any]]) -> str:
        reply = client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        return reply.choices[0].message.content or ""

    return ask


def offline_ask(messages: list[dict[str, Any]]) -> str:
    images = sum(
        1
        for message in messages
        if isinstance(message["content"], list)
        for block in message["content"]
        if block["type"] == "image_url"
    )
    return f"(offline) I would have been sent {len(messages)} messages, {images} of them images."


def shown(messages: list[dict[str, Any]]) -> str:
    """The memory message block by block (image data replaced by its length), then how
    many recent turns follow and the last two of them."""
    lines, recent = [], []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            recent.append(f"  {message['role']}: {content[:80]}")
            continue
        lines.append(f"  {message['role']}: [")
        for block in content:
            if block["type"] == "image_url":
                url, detail = block["image_url"]["url"], block["image_url"]["detail"]
                lines.append(f"    image_url: <{len(url):,} characters of PNG> detail={detail}")
            else:
                lines.append(f"    text: {' '.join(block['text'].split())[:90]}")
        lines.append("  ]")
    lines.append(f"  then {len(recent)} recent turns as they were, ending with:")
    return "\n".join(lines + recent[-2:])


def main() -> None:
    parser = argparse.ArgumentParser(description="OpticalMemory with the OpenAI SDK.")
    parser.add_argument("--store", help="store URL (default: a new SQLite file)")
    parser.add_argument("--turns", type=int, default=40, help="scripted user turns")
    parser.add_argument("--budget", type=int, default=4000, help="context tokens per call")
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="optical-memory-")
    store = args.store or f"sqlite:///{Path(folder) / 'memory.db'}"

    ask = openai_ask(args.model) or offline_ask
    with OpticalMemory(store, readers=("openai",)) as memory:
        for index in range(args.turns):
            text = f"{TOPICS[index % len(TOPICS)]} (update {index})"
            memory.add("ops", [{"role": "user", "content": text}])
            context = memory.context("ops", reader="openai", budget=args.budget)
            messages = context.to_openai()
            answer = ask(messages)
            memory.add("ops", [{"role": "assistant", "content": answer}])
        print(
            f"last request: {context.tokens} tokens, where its turns as text cost "
            f"{context.raw_tokens}"
        )
        print(shown(messages))
        print(f"answer: {answer}")


if __name__ == "__main__":
    main()
