"""``AsyncOpticalMemory``: the asyncio twin of :class:`~optical_memory.memory.OpticalMemory`.

Same constructor, same method names (``add``, ``compact``, ``context``, ...) as
coroutines. Each call runs the synchronous memory in a worker thread: most of the work
is drawing pages and reading them back, which is CPU-bound and would stall an event
loop if run on it, and the stores' blocking clients are thread-safe. Calls on one
thread of conversation are serialised by a lock, so a context never sees a half-done
compaction of the same memory object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from optical_memory.context import OpticalContext
from optical_memory.decoders.base import Decoder
from optical_memory.memory import DEFAULT_READERS, OpticalMemory, SearchHit, ThreadReport
from optical_memory.messages import MessageLike
from optical_memory.policy import DecayPolicy
from optical_memory.records import Turn
from optical_memory.renderers import TextRenderer
from optical_memory.store import Store
from optical_memory.vision_encoder import Encoder

__all__ = ["AsyncOpticalMemory"]


class AsyncOpticalMemory:
    """See :class:`~optical_memory.memory.OpticalMemory`; every method is a coroutine."""

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        tenant: str = "default",
        policy: DecayPolicy | None = None,
        renderer: TextRenderer | None = None,
        decoder: Decoder | None = None,
        encoder: Encoder | None = None,
        readers: Sequence[str] = DEFAULT_READERS,
        auto_compact: bool = True,
    ) -> None:
        self.sync = OpticalMemory(
            store,
            tenant=tenant,
            policy=policy,
            renderer=renderer,
            decoder=decoder,
            encoder=encoder,
            readers=readers,
            auto_compact=auto_compact,
        )
        self._locks: dict[str, asyncio.Lock] = {}

    async def _run(self, thread: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        lock = self._locks.setdefault(thread, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(method, thread, *args, **kwargs)

    async def add(self, thread: str, messages: Iterable[MessageLike]) -> list[Turn]:
        """See :meth:`OpticalMemory.add`."""
        batch = list(messages)  # an iterator is read on the loop, not in the worker
        result: list[Turn] = await self._run(thread, self.sync.add, batch)
        return result

    async def compact(self, thread: str) -> list[str]:
        """See :meth:`OpticalMemory.compact`."""
        result: list[str] = await self._run(thread, self.sync.compact)
        return result

    async def decay(self, thread: str, now: float | None = None) -> list[str]:
        """See :meth:`OpticalMemory.decay`."""
        result: list[str] = await self._run(thread, self.sync.decay, now)
        return result

    async def context(
        self, thread: str, *, reader: str, budget: int | None = None
    ) -> OpticalContext:
        """See :meth:`OpticalMemory.context`."""
        result: OpticalContext = await self._run(
            thread, self.sync.context, reader=reader, budget=budget
        )
        return result

    async def recall(self, thread: str, segment_id: str) -> list[Turn]:
        """See :meth:`OpticalMemory.recall`."""
        result: list[Turn] = await self._run(thread, self.sync.recall, segment_id)
        return result

    async def search(self, thread: str, text: str, limit: int = 10) -> list[SearchHit]:
        """See :meth:`OpticalMemory.search`."""
        result: list[SearchHit] = await self._run(thread, self.sync.search, text, limit)
        return result

    async def rehydrate(self, thread: str, segment_id: str, decoder: Decoder | None = None) -> str:
        """See :meth:`OpticalMemory.rehydrate`."""
        result: str = await self._run(thread, self.sync.rehydrate, segment_id, decoder)
        return result

    async def verify(self, thread: str, decoder: Decoder | None = None) -> dict[str, float]:
        """See :meth:`OpticalMemory.verify`."""
        result: dict[str, float] = await self._run(thread, self.sync.verify, decoder)
        return result

    async def inspect(self, thread: str) -> ThreadReport:
        """See :meth:`OpticalMemory.inspect`."""
        result: ThreadReport = await self._run(thread, self.sync.inspect)
        return result

    async def forget(self, thread: str) -> None:
        """See :meth:`OpticalMemory.forget`."""
        await self._run(thread, self.sync.forget)

    async def aclose(self) -> None:
        """Close the store."""
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncOpticalMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
