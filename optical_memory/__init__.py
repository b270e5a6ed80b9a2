"""optical-memory: more LLM memory per context token through optical context compression.

Old chat turns and long documents are rendered into page images whose resolution
decays with age; a vision encoder or an OCR engine reads them back. See the README.

The package stays light on import: the memory, renderers, decoders and the model load
their dependencies only when first used.

Example:
    >>> from optical_memory import OpticalMemory, DecayPolicy, readers
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from optical_memory import _checkout

if TYPE_CHECKING:
    from optical_memory import readers
    from optical_memory.memory import OpticalMemory
    from optical_memory.memory_async import AsyncOpticalMemory
    from optical_memory.policy import DecayPolicy

__version__ = "0.1.0"
__all__ = ["AsyncOpticalMemory", "DecayPolicy", "OpticalMemory", "__version__", "readers"]

_LAZY = {
    "OpticalMemory": ("optical_memory.memory", "OpticalMemory"),
    "AsyncOpticalMemory": ("optical_memory.memory_async", "AsyncOpticalMemory"),
    "DecayPolicy": ("optical_memory.policy", "DecayPolicy"),
    "readers": ("optical_memory.readers", None),
}

_checkout.expose_sibling_packages(__name__, __path__)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return sorted(__all__)
