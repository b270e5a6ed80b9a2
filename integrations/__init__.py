"""Adapters for LangChain 1.x and LangGraph: :mod:`optical_memory.integrations.langchain`."""

__all__: list[str] = []
