"""Every example runs offline, as the README shows: no API key, a fresh directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_chatbot_memory_continues_after_a_restart(tmp_path: Path) -> None:
    out = run_example("chatbot_memory.py", "--dir", "data", "--turns", "40", cwd=tmp_path)
    assert "model received" in out
    assert re.search(r"human: 1 page image\(s\) segment \d+", out)
    assert "fact sheet: " in out and "INV-20931" in out
    assert "80 turns stored" in out
    again = run_example("chatbot_memory.py", "--dir", "data", "--turns", "3", cwd=tmp_path)
    assert "86 turns stored" in again  # the SqliteSaver and the memory kept the thread
    assert (tmp_path / "data" / "checkpoints.db").exists()


def test_openai_sdk_chat_prints_what_it_would_send(tmp_path: Path) -> None:
    out = run_example("openai_sdk_chat.py", cwd=tmp_path)
    assert re.search(r"image_url: <[\d,]+ characters of PNG> detail=(low|high)", out)
    assert re.search(r"text: segment \d+", out)
    assert "answer: (offline) I would have been sent" in out


def test_langgraph_tools_recalls_a_segment(tmp_path: Path) -> None:
    out = run_example("langgraph_tools.py", cwd=tmp_path)
    assert re.search(r"model calls: recall_segment\(\{'segment_id': '\d+'\}\)", out)
    assert "tool returns:\n  user: Please file invoice INV-58213 for Initech" in out
    assert (
        "model answers: From the recalled turns: INV-58213 for Initech, amount EUR 4,750.00." in out
    )
