"""Adapters for LangChain 1.x and LangGraph.

Not built yet: the integrations land with their own issue.
"""

__all__: list[str] = []
