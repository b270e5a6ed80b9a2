"""A chat model for agent tests: records what it was sent, answers from a script.

Tool calling works (``bind_tools`` keeps the tools); its profile says whether it takes
images, which is what the middleware reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import Field

Reply = Callable[[list[BaseMessage]], AIMessage]


def echo(messages: list[BaseMessage]) -> AIMessage:
    """Answers every call with a short text naming the last message's length."""
    last = messages[-1]
    return AIMessage(f"Noted ({len(str(last.content))} characters).")


class RecordingChatModel(BaseChatModel):
    """Keeps every list of messages it was called with in ``calls``."""

    reply: Reply = echo
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording-test-model"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self  # type: ignore[return-value]


def image_model(**kwargs: Any) -> RecordingChatModel:
    return RecordingChatModel(profile={"image_inputs": True}, **kwargs)


def text_model(**kwargs: Any) -> RecordingChatModel:
    return RecordingChatModel(profile={"image_inputs": False}, **kwargs)
