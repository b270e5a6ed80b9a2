"""A LangChain agent chatbot whose memory is optical, and which survives restarts.

``create_agent`` with ``OpticalMemoryMiddleware`` and a ``SqliteSaver`` checkpointer: the
graph state (text only) is checkpointed in ``checkpoints.db``, the turns and their page
images live in the memory's ``memory.db``, both in ``--dir``. Before every model call
the middleware hands the model the older turns as page images labelled with their
segment ids, the fact sheet, and the recent turns as text.

Run it (offline unless an API key is set; see offline_model.py)::

    python examples/chatbot_memory.py                  # 40 scripted user turns
    python examples/chatbot_memory.py --interactive    # type your own; empty line ends
    OPENAI_API_KEY=... python examples/chatbot_memory.py   # with langchain-openai installed

Run it twice with the same ``--dir``: the conversation continues where it stopped.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from langchain.agents import create_agent
from langgraph.checkpoint.sqlite import SqliteSaver
from offline_model import OfflineChatModel, chat_model

from optical_memory import OpticalMemory
from optical_memory.integrations.langchain import OpticalMemoryMiddleware

SCRIPT = [
    "Hi, I'm Ana. I run the billing service; our Postgres is at db-7.internal port 5433.",
    "Invoice INV-20931 for Globex (EUR 12,480.00) is due on 2025-04-30.",
    "The rollout of v2.3 is planned for Tuesday 14:00 UTC, after Rui reviews migration 0042.",
    "Our on-call this week is Mei (mei@example.com), next week it's Tomas.",
    "The staging cluster is called kiwi-staging and runs 6 nodes of 8 vCPU each.",
]


def user_turns(count: int, interactive: bool) -> Iterator[str]:
    if not interactive:
        yield from (f"{SCRIPT[i % len(SCRIPT)]} (note {i})" for i in range(count))
        return
    while text := input("> "):
        yield text


def main() -> None:
    parser = argparse.ArgumentParser(description="An agent chatbot with optical memory.")
    parser.add_argument("--dir", type=Path, default=Path("chatbot-data"), help="where to keep it")
    parser.add_argument("--turns", type=int, default=40, help="scripted user turns")
    parser.add_argument("--thread", default="ana", help="the conversation's name")
    parser.add_argument("--budget", type=int, default=6000, help="context tokens per call")
    parser.add_argument("--interactive", action="store_true", help="type the user's turns")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)

    model, reader = chat_model(quiet=True)
    offline = isinstance(model, OfflineChatModel)
    memory = OpticalMemory(f"sqlite:///{args.dir / 'memory.db'}", readers=(reader,))
    middleware = OpticalMemoryMiddleware(memory, reader=reader, budget=args.budget)
    conn = sqlite3.connect(args.dir / "checkpoints.db", check_same_thread=False)
    agent = create_agent(
        model,
        system_prompt="You are a helpful assistant with a long memory.",
        middleware=[middleware],
        checkpointer=SqliteSaver(conn),
    )
    config = {"configurable": {"thread_id": args.thread}}
    for index, text in enumerate(user_turns(args.turns, args.interactive)):
        last = not args.interactive and index == args.turns - 1
        if offline:
            model.quiet = not (args.interactive or last)  # print what the model received
        result = agent.invoke({"messages": [{"role": "user", "content": text}]}, config)
        if args.interactive or last:
            print(f"assistant: {result['messages'][-1].content}")
    context = memory.context(args.thread, reader=reader, budget=args.budget)
    print(
        f"thread {args.thread!r}: {memory.store.count_turns(args.thread)} turns stored, "
        f"{len(memory.store.list_segments(args.thread))} segment(s); a context now shows "
        f"{len(context.pages)} page image(s) and {len(context.turns)} recent turns for "
        f"{context.tokens} tokens, where the same turns as text cost {context.raw_tokens}"
    )
    conn.close()
    memory.close()


if __name__ == "__main__":
    main()
