"""An agent that reads a value its memory only shows as a page image, through the
``recall_segment`` tool the middleware registers.

Forty turns in, the earliest ones are page images labelled ``segment <id>``. Asked for
an exact value from the start, the model calls ``recall_segment`` with the id from the
label; the tool returns the segment's turns verbatim (and sharpens its pages), and the
model answers from them. The offline model (no API key; see offline_model.py) plays that
part by script, so the run shows the whole round trip without a network.

Run it::

    python examples/langgraph_tools.py
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from offline_model import chat_model, first_segment, last_tool_result

from optical_memory import OpticalMemory
from optical_memory.integrations.langchain import OpticalMemoryMiddleware

QUESTION = "What exactly was the invoice number and amount I gave you in my first message?"


def scripted(messages: list[BaseMessage]) -> AIMessage:
    """The offline model: recall the oldest segment when asked, answer from the result."""
    result = last_tool_result(messages)
    if result is not None:
        found = re.search(r"INV-\d+ .*?EUR [\d,]+\.\d\d", str(result.content))
        return AIMessage(f"From the recalled turns: {found.group(0) if found else 'not found'}.")
    if messages[-1].content == QUESTION and (segment := first_segment(messages)):
        call = {"name": "recall_segment", "args": {"segment_id": segment}, "id": "call-1"}
        return AIMessage("", tool_calls=[call])
    return AIMessage("Noted.")


def main() -> None:
    model, reader = chat_model(scripted, quiet=True)
    folder = Path(tempfile.mkdtemp(prefix="optical-memory-"))
    with OpticalMemory(f"sqlite:///{folder / 'memory.db'}", readers=(reader,)) as memory:
        agent = create_agent(
            model,
            system_prompt="Use recall_segment when a page is too blurred to read exactly.",
            middleware=[OpticalMemoryMiddleware(memory, reader=reader)],
            checkpointer=InMemorySaver(),
        )
        config = {"configurable": {"thread_id": "billing"}}
        first = "Please file invoice INV-58213 for Initech, amount EUR 4,750.00, due 2025-07-15."
        turns = [first] + [
            f"Status note {i}: the payment run for supplier batch {i} went through without "
            "errors, and the ledger export was sent to accounting as usual."
            for i in range(40)
        ]
        for text in turns:
            agent.invoke({"messages": [HumanMessage(text)]}, config)
        result = agent.invoke({"messages": [HumanMessage(QUESTION)]}, config)
        for message in result["messages"][-3:]:
            if isinstance(message, AIMessage) and message.tool_calls:
                call = message.tool_calls[0]
                print(f"model calls: {call['name']}({call['args']})")
            elif isinstance(message, ToolMessage):
                print(f"tool returns:\n  {str(message.content).splitlines()[0]}")
            else:
                print(f"model answers: {message.content}")


if __name__ == "__main__":
    main()
