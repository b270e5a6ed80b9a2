"""``python -m optical_memory``: the same as the ``optical-memory`` command."""

from optical_memory.cli import main

main()
