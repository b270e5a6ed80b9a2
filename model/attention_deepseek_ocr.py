# transformers' modules are untyped; calling them is intended.
# mypy: disable-error-code="no-untyped-call"
"""The decoder's attention with a compiled path for one-token decode steps on CPU.

A one-token step without a mask runs as two compiled graphs around the (eager) cache
update: the q/k/v projections with RoPE, then attention over the cache with the output
projection. The attention part alone takes ~170 us per layer at a 512-token context against
~630 us for ATen's flash kernel on this one row, and two calls replace about twenty small
ops. Every other case (prefill, masks, grouped heads, biases, other devices) is
transformers' forward as is.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import DeepseekOcr2TextAttention

from .decode_kernels_deepseek_ocr import compiled_attention_in, compiled_attention_out
from .transformers_compat_deepseek_ocr import CACHE_KWARG

__all__ = ["DeepseekOcrTextAttention"]


class DeepseekOcrTextAttention(DeepseekOcr2TextAttention):
    """transformers' DeepSeek attention (same parameters and names)."""

    @classmethod
    def from_attention(cls, attention: DeepseekOcr2TextAttention) -> DeepseekOcrTextAttention:
        """``attention`` itself with this class's forward: the subclass adds no state, so
        nothing is built or copied."""
        attention.__class__ = cls
        return cast(DeepseekOcrTextAttention, attention)

    # The cache arrives by keyword, named as the installed transformers names it
    # (``past_key_values`` before 5.24, ``cache`` after); ``*args`` keeps the override
    # compatible with both signatures. transformers 5.23 annotates the returned weights as a
    # Tensor although its own SDPA path returns None (as ours does); 5.24+'s deprecation
    # decorator leaves forward unannotated, so the ignore is unused there.
    def forward(  # type: ignore[override, unused-ignore]
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, T, D)`` -> ``(B, T, D)`` and attention weights (``None`` on the fast path)."""
        cache: Cache | None = args[0] if args else kwargs.get(CACHE_KWARG)
        one_step = (
            hidden_states.shape[1] == 1
            and attention_mask is None
            and cache is not None
            and position_embeddings is not None
            and self.num_key_value_groups == 1
            and all(
                linear.bias is None
                for linear in (self.q_proj, self.k_proj, self.v_proj, self.o_proj)
            )
            and not self.training
            and not kwargs.get("output_attentions")
        )
        projected = None
        if one_step:
            assert position_embeddings is not None  # for mypy
            cos, sin = position_embeddings  # (B, 1, Dh) each
            weights = (self.q_proj.weight, self.k_proj.weight, self.v_proj.weight)
            projected = compiled_attention_in(hidden_states, *weights, cos, sin)
        if projected is None:  # not a one-token step, not on CPU, or compiled kernels off
            result: tuple[torch.Tensor, torch.Tensor | None] = super().forward(
                hidden_states, position_embeddings, attention_mask, *args, **kwargs
            )
            return result
        assert cache is not None  # for mypy
        query, key, value = projected  # (B, H, 1, Dh) each
        keys, values = cache.update(key, value, self.layer_idx)  # (B, H, L, Dh)
        out = compiled_attention_out(query, keys, values, self.scaling, self.o_proj.weight)
        if out is None:  # compiling failed just now (it warned): ATen's kernel, same cache
            attended = F.scaled_dot_product_attention(query, keys, values, scale=self.scaling)
            out = self.o_proj(attended.transpose(1, 2).flatten(2))  # (B, 1, D)
        return out, None
