"""One object over either memory twin, so every adapter has sync and async calls.

The adapters take an :class:`~optical_memory.memory.OpticalMemory` or an
:class:`~optical_memory.memory_async.AsyncOpticalMemory`. Sync calls go to the sync memory
(the async twin's ``sync``); async calls await the async twin, or run the sync memory in a
worker thread (drawing pages is CPU-bound and must not stall the event loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from optical_memory.context import OpticalContext
from optical_memory.errors import InvalidSettingError
from optical_memory.memory import OpticalMemory, SearchHit
from optical_memory.memory_async import AsyncOpticalMemory
from optical_memory.records import Turn

__all__ = ["AnyMemory", "MemoryCalls", "check_budget"]

AnyMemory = OpticalMemory | AsyncOpticalMemory


def check_budget(budget: int | None) -> int | None:
    """A context budget as given, checked when the adapter is made rather than at its
    first call.

    Raises:
        InvalidSettingError: ``budget`` is neither ``None`` nor a positive int.
    """
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0
    ):
        raise InvalidSettingError(f"budget must be a positive int or None, got {budget!r}")
    return budget


class MemoryCalls:
    """The memory methods the LangChain adapters use, as sync and async twins.

    Raises:
        InvalidSettingError: ``memory`` is neither memory twin.
    """

    def __init__(self, memory: AnyMemory) -> None:
        if isinstance(memory, AsyncOpticalMemory):
            self.sync: OpticalMemory = memory.sync
            self._async: AsyncOpticalMemory | None = memory
        elif isinstance(memory, OpticalMemory):
            self.sync, self._async = memory, None
        else:
            raise InvalidSettingError(
                "memory must be an OpticalMemory or AsyncOpticalMemory, got "
                f"{type(memory).__name__}"
            )
        self.memory = memory

    async def add(self, thread: str, messages: Sequence[Any]) -> list[Turn]:
        if self._async is not None:
            return await self._async.add(thread, messages)
        return await asyncio.to_thread(self.sync.add, thread, messages)

    async def context(self, thread: str, *, reader: str, budget: int | None) -> OpticalContext:
        if self._async is not None:
            return await self._async.context(thread, reader=reader, budget=budget)
        return await asyncio.to_thread(self.sync.context, thread, reader=reader, budget=budget)

    async def recall(self, thread: str, segment_id: str) -> list[Turn]:
        if self._async is not None:
            return await self._async.recall(thread, segment_id)
        return await asyncio.to_thread(self.sync.recall, thread, segment_id)

    async def search(self, thread: str, text: str, limit: int) -> list[SearchHit]:
        if self._async is not None:
            return await self._async.search(thread, text, limit)
        return await asyncio.to_thread(self.sync.search, thread, text, limit)

    async def forget(self, thread: str) -> None:
        if self._async is not None:
            await self._async.forget(thread)
        else:
            await asyncio.to_thread(self.sync.forget, thread)
