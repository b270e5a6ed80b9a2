"""langchain-tests' standard unit suite for both memory tools."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.unit_tests import ToolsUnitTests

from optical_memory import OpticalMemory
from optical_memory.integrations.langchain import RecallSegmentTool, SearchMemoryTool


class _WithMemory:
    memory: OpticalMemory

    @pytest.fixture(autouse=True)
    def _memory(self, tmp_path: Path) -> Iterator[None]:
        with OpticalMemory(f"sqlite:///{tmp_path / 'memory.db'}") as memory:
            self.memory = memory
            yield


class TestRecallSegmentTool(_WithMemory, ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return RecallSegmentTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"memory": self.memory, "thread": "chat-42"}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"segment_id": "483920571038465"}


class TestSearchMemoryTool(_WithMemory, ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return SearchMemoryTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"memory": self.memory}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "invoice INV-10007"}


def test_the_model_sees_the_tools_by_the_names_the_middleware_documents(tmp_path: Path) -> None:
    with OpticalMemory(f"sqlite:///{tmp_path / 'memory.db'}") as memory:
        recall, search = RecallSegmentTool(memory=memory), SearchMemoryTool(memory=memory)
        assert (recall.name, search.name) == ("recall_segment", "search_memory")
        assert "segment" in recall.description and set(recall.args) == {"segment_id"}
        assert set(search.args) == {"query", "limit"}
