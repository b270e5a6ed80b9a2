"""Run as a process: compact one thread of a memory (for the concurrency tests)."""

from __future__ import annotations

import sys

from optical_memory import OpticalMemory
from tests.integration_tests.memory.conftest import SMALL

if __name__ == "__main__":
    url, tenant, thread = sys.argv[1:4]
    with OpticalMemory(url, tenant=tenant, policy=SMALL) as memory:
        memory.compact(thread)
    print("done")
