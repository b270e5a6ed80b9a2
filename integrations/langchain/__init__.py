"""LangChain 1.x and LangGraph adapters (``pip install 'optical-memory[langchain]'``).

- :class:`OpticalMemoryMiddleware`: an ``AgentMiddleware`` for ``create_agent`` that shows
  the model its conversation through an optical memory (older turns as labelled page
  images, the fact sheet, recent turns as they were), keeps the graph state free of
  image bytes, and registers the two tools below.
- :class:`RecallSegmentTool` (``recall_segment``) and :class:`SearchMemoryTool`
  (``search_memory``): the agent gets back the exact text the pages no longer show.
- :class:`OpticalChatMessageHistory`: a ``BaseChatMessageHistory`` for
  ``RunnableWithMessageHistory``.
- :class:`OpticalByteStore`: a ``BaseStore[str, bytes]`` over the SQLite or Redis store.
- :func:`context_messages`, :func:`count_message_tokens`: an ``OpticalContext`` as
  LangChain messages, and what messages cost a reader, images included.
"""

from optical_memory.integrations.langchain.byte_store import OpticalByteStore
from optical_memory.integrations.langchain.history import OpticalChatMessageHistory
from optical_memory.integrations.langchain.messages import (
    context_messages,
    count_message_tokens,
    memory_message,
)
from optical_memory.integrations.langchain.middleware import OpticalMemoryMiddleware
from optical_memory.integrations.langchain.tools import RecallSegmentTool, SearchMemoryTool

__all__ = [
    "OpticalByteStore",
    "OpticalChatMessageHistory",
    "OpticalMemoryMiddleware",
    "RecallSegmentTool",
    "SearchMemoryTool",
    "context_messages",
    "count_message_tokens",
    "memory_message",
]
