"""Issue 9: transformers 5.24 renamed the decoder's cache argument and output field.

These run on every transformers release CI tests (the lock's newest and
constraints/oldest.txt's oldest) and fail if our code reaches a deprecated name or if the
installed release is outside the range the package declares.
"""

from __future__ import annotations

import inspect
import warnings
from importlib.metadata import requires, version

import pytest
import torch
from packaging.requirements import Requirement
from transformers.cache_utils import Cache
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import DeepseekOcr2TextAttention

from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig
from optical_memory.model.attention_deepseek_ocr import DeepseekOcrTextAttention
from optical_memory.model.transformers_compat_deepseek_ocr import CACHE_KWARG


def test_installed_transformers_is_inside_the_declared_range() -> None:
    declared = [
        Requirement(spec)
        for spec in requires("optical-memory") or []
        if spec.startswith("transformers")
    ]
    assert declared, "the model extra declares no transformers range"
    installed = version("transformers")
    assert all(req.specifier.contains(installed) for req in declared), (installed, declared)


def test_cache_keyword_is_the_one_transformers_takes() -> None:
    parameters = inspect.signature(DeepseekOcr2TextAttention.forward).parameters
    assert CACHE_KWARG in parameters
    assert CACHE_KWARG in ("cache", "past_key_values")


@pytest.mark.parametrize("compiled", ["1", "0"])
def test_decoding_steps_reach_no_deprecated_name(
    compiled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached one-token step takes our attention's fast path (compiled kernels on) or
    transformers' own forward (off); both must hand the cache over by its current name."""
    monkeypatch.setenv("OPTICAL_MEMORY_COMPILED_DECODE", compiled)
    torch.manual_seed(0)
    model = DeepSeekOCR(DeepSeekOCRConfig.tiny()).eval()
    assert any(isinstance(m, DeepseekOcrTextAttention) for m in model.modules())
    ids = torch.tensor([[0, 11, 12, 13, 14]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        with torch.no_grad():
            full = model(ids, use_cache=False).logits
            first = model(ids[:, :-1])
            assert isinstance(first.past_key_values, Cache)
            step = model(ids[:, -1:], past_key_values=first.past_key_values, logits_to_keep=1)
    torch.testing.assert_close(step.logits[:, 0], full[:, -1], rtol=1e-4, atol=1e-5)
