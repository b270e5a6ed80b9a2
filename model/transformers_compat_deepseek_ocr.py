"""The one place that knows which transformers release is installed.

transformers 5.24 renamed the decoder's cache argument and output field from
``past_key_values`` to ``cache`` (the old keyword is shimmed with a deprecation warning,
the output field is not). Everything here is detected from the installed classes, not
from version numbers, so a backport or a later rename back is read correctly. The range
we test is declared in ``pyproject.toml`` (oldest and newest both run in CI).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Final

import torch
from transformers.cache_utils import Cache
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import DeepseekOcr2TextAttention
from transformers.utils.generic import ModelOutput

__all__ = ["CACHE_KWARG", "DeepseekOcrCausalLMOutput", "cache_kwargs", "returned_cache"]


def _cache_kwarg() -> str:
    parameters = inspect.signature(DeepseekOcr2TextAttention.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


CACHE_KWARG: Final[str] = _cache_kwarg()
"""The keyword transformers' decoder modules take the KV cache by, and the field their
outputs return it in: ``"cache"`` from 5.24 on, ``"past_key_values"`` before."""


def cache_kwargs(cache: Cache | None) -> dict[str, Cache | None]:
    """``{name: cache}`` for calling a transformers decoder module on any supported release."""
    return {CACHE_KWARG: cache}


def returned_cache(output: Any) -> Any:
    """The cache a transformers decoder module returned, whatever the field is called."""
    return getattr(output, CACHE_KWARG)


@dataclass
class DeepseekOcrCausalLMOutput(ModelOutput):
    """What ``DeepSeekOCR.forward`` returns, named the same on every transformers release.

    Attributes:
        logits: ``(B, L or logits_to_keep, vocab)`` in fp32.
        past_key_values: the KV cache to pass to the next call (``None`` without cache).
    """

    logits: torch.Tensor | None = None
    past_key_values: Cache | None = None
