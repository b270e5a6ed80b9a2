"""Run the command line as users run it: ``python -m optical_memory.cli`` in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``optical-memory ARGS...`` and capture its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "optical_memory.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        timeout=timeout,
    )
