"""What the examples talk to: a real chat model when its API key is set, else an offline
stand-in that prints what it received (so every example runs without a network).

``chat_model()`` picks, in order: ``OPENAI_API_KEY`` with ``langchain-openai`` installed
(gpt-4o-mini, reader ``openai``), ``ANTHROPIC_API_KEY`` with ``langchain-anthropic``
(Claude Haiku, reader ``anthropic``), else :class:`OfflineChatModel` (reader
``anthropic``, whose pages it is shown).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable

Reply = Callable[[list[BaseMessage]], AIMessage]


def describe(messages: Sequence[BaseMessage]) -> str:
    """What a model was sent, in a few lines: the memory message (its page images, their
    labels, the fact sheet), then how many recent turns and the last two of them."""
    lines, recent = [], []
    for message in messages:
        if isinstance(message.content, str):
            recent.append(f"    {message.type}: {_short(message.content)}")
            continue
        blocks = [block for block in message.content if isinstance(block, dict)]
        images = sum(1 for block in blocks if block["type"] in ("image", "image_url"))
        texts = [block["text"] for block in blocks if block["type"] == "text"]
        labels = [text for text in texts if text.startswith("segment ")]
        facts = next((text for text in texts if text.startswith("Exact values")), "")
        lines.append(f"  {message.type}: {images} page image(s) {' '.join(labels)}")
        if facts:
            lines.append(f"    fact sheet: {_short(facts.split(chr(10), 1)[-1], 90)}")
    lines.append(f"  then {len(recent)} recent message(s) as text, ending with:")
    return "\n".join(lines + recent[-2:])


def _short(text: str, size: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 3] + "..."


def acknowledge(messages: list[BaseMessage]) -> AIMessage:
    """The offline model's answer: it says how many turns it was shown."""
    return AIMessage(f"(offline model) I was shown {len(messages)} messages.")


class OfflineChatModel(BaseChatModel):
    """Prints every request it gets and answers with ``reply`` (tools are accepted)."""

    reply: Reply = acknowledge
    quiet: bool = False

    @property
    def _llm_type(self) -> str:
        return "offline-example"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> ChatResult:
        if not self.quiet:
            print(f"model received {len(messages)} messages:\n{describe(messages)}")
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self  # type: ignore[return-value]


def chat_model(reply: Reply = acknowledge, *, quiet: bool = False) -> tuple[BaseChatModel, str]:
    """A chat model and the optical-memory reader profile that matches it."""
    if os.environ.get("OPENAI_API_KEY") and importlib.util.find_spec("langchain_openai"):
        from langchain.chat_models import init_chat_model

        return init_chat_model("openai:gpt-4o-mini"), "openai"
    if os.environ.get("ANTHROPIC_API_KEY") and importlib.util.find_spec("langchain_anthropic"):
        from langchain.chat_models import init_chat_model

        return init_chat_model("anthropic:claude-haiku-4-5"), "anthropic"
    offline = OfflineChatModel(reply=reply, quiet=quiet, profile={"image_inputs": True})
    return offline, "anthropic"


def first_segment(messages: Sequence[BaseMessage]) -> str | None:
    """The segment id of the first page label in the messages, if any."""
    for message in messages:
        found = re.search(r"\bsegment (\d+)", str(message.content))
        if found:
            return found.group(1)
    return None


def last_tool_result(messages: Sequence[BaseMessage]) -> ToolMessage | None:
    return next((m for m in reversed(messages) if isinstance(m, ToolMessage)), None)
