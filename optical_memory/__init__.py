"""optical-memory: more LLM memory per context token through optical context compression.

Old chat turns and long documents are rendered into page images whose resolution
decays with age; a vision encoder or an OCR engine reads them back. See the README.

The package stays light on import: renderers, decoders and the model load their heavy
dependencies only when used.
"""

from __future__ import annotations

from optical_memory import _checkout

__version__ = "0.1.0"
__all__ = ["__version__"]

_checkout.expose_sibling_packages(__name__, __path__)
