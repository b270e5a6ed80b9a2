"""Ingest in a subprocess and SIGKILL itself once N pages are stored (a crash mid-run).

Usage: python -m tests.integration_tests.documents.ingest_until_killed STORE_URL KILL_AT
DECODER|- SOURCE...
"""

from __future__ import annotations

import os
import signal
import sys

from optical_memory.documents import IngestedPage, ingest


def main() -> None:
    store, kill_at, decoder, *sources = sys.argv[1:]
    stored = 0

    def count(page: IngestedPage) -> None:
        nonlocal stored
        stored += 1
        if stored == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)

    ingest(sources, store=store, decoder=None if decoder == "-" else decoder, on_page=count)


if __name__ == "__main__":
    main()
