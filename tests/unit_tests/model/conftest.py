"""Model tests need the ``model`` extra (torch, transformers, safetensors).

Without it the modules that import torch are not collected, and
``test_model_extra_installed`` reports the gap: a skip outside CI, a failure in CI.
"""

from __future__ import annotations

from pathlib import Path

try:
    import safetensors  # noqa: F401
    import torch
    import transformers  # noqa: F401
except ImportError:
    MODEL_EXTRA = False
else:
    MODEL_EXTRA = True

if not MODEL_EXTRA:
    collect_ignore_glob = [
        str(path.name)
        for path in Path(__file__).parent.glob("test_*.py")
        if path.name != "test_model_extra_installed.py"
    ]

if MODEL_EXTRA:
    from collections.abc import Iterator

    import pytest

    @pytest.fixture(scope="module", autouse=True)
    def one_thread() -> Iterator[None]:
        """Tiny matrices run faster on one thread, and spare cores other runs share."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)
