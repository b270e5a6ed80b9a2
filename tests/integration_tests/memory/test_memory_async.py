"""AsyncOpticalMemory mirrors OpticalMemory (same names, coroutines)."""

from __future__ import annotations

import inspect

from optical_memory import AsyncOpticalMemory, OpticalMemory

from .conftest import SMALL
from .conversation import conversation


def test_twins_have_the_same_methods_and_parameters() -> None:
    for name, method in inspect.getmembers(OpticalMemory, inspect.isfunction):
        if name.startswith("_") or name == "close":
            continue
        twin = getattr(AsyncOpticalMemory, name)
        assert inspect.iscoroutinefunction(twin), name
        assert (
            inspect.signature(twin).parameters.keys() == inspect.signature(method).parameters.keys()
        ), name
    assert (
        inspect.signature(AsyncOpticalMemory).parameters.keys()
        == inspect.signature(OpticalMemory).parameters.keys()
    )


async def test_async_memory_round_trip(store_url: str, unique_tenant: str) -> None:
    async with AsyncOpticalMemory(store_url, tenant=unique_tenant, policy=SMALL) as memory:
        messages = conversation(40)
        for message in messages:
            await memory.add("chat", [message])
        context = await memory.context("chat", reader="deepseek-ocr", budget=3000)
        assert context.pages and context.tokens <= 3000
        segment = context.pages[0].segment_id
        recalled = await memory.recall("chat", segment)
        first = messages.index(recalled[0].message)
        assert [t.message for t in recalled] == messages[first : first + len(recalled)]
        hits = await memory.search("chat", "invoice")
        assert hits
        report = await memory.inspect("chat")
        assert report.turns == 40
        await memory.forget("chat")
        assert (await memory.inspect("chat")).turns == 0
