# transformers' modules are untyped; calling them is intended.
# mypy: disable-error-code="no-untyped-call"
"""The decoder's attention with a compiled path for one-token decode steps on CPU.

The projections, RoPE and the cache update are transformers'; only the attention over the
cache changes: one query row without a mask goes through ``compiled_attend_one`` (about 90
us per layer at a 512-token context, against about 600 us for ATen's flash kernel). Every
other case (prefill, masks, grouped heads, other devices) is transformers' forward as is.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2TextAttention,
    apply_rotary_pos_emb,
)

from .decode_kernels_deepseek_ocr import compiled_attend_one, compiled_decode_enabled

__all__ = ["DeepseekOcrTextAttention"]


class DeepseekOcrTextAttention(DeepseekOcr2TextAttention):
    """transformers' DeepSeek attention (same parameters and names)."""

    @classmethod
    def from_attention(cls, attention: DeepseekOcr2TextAttention) -> DeepseekOcrTextAttention:
        """``attention`` itself with this class's forward: the subclass adds no state, so
        nothing is built or copied."""
        attention.__class__ = cls
        return attention  # type: ignore[return-value]  # its class is cls now

    # transformers types the returned weights as a Tensor; its own SDPA path returns None too.
    def forward(  # type: ignore[override]
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, T, D)`` -> ``(B, T, D)`` and attention weights (``None`` on the fast path)."""
        one_step = (
            hidden_states.shape[1] == 1
            and attention_mask is None
            and past_key_values is not None
            and position_embeddings is not None
            and self.num_key_value_groups == 1
            and not self.training
            and not kwargs.get("output_attentions")
            and hidden_states.device.type == "cpu"
            and compiled_decode_enabled()
        )
        if not one_step:
            return super().forward(
                hidden_states, position_embeddings, attention_mask, past_key_values, **kwargs
            )
        assert position_embeddings is not None and past_key_values is not None  # for mypy
        heads = (*hidden_states.shape[:-1], -1, self.head_dim)  # (B, 1, H, Dh)
        query = self.q_proj(hidden_states).view(heads).transpose(1, 2)  # (B, H, 1, Dh)
        key = self.k_proj(hidden_states).view(heads).transpose(1, 2)
        value = self.v_proj(hidden_states).view(heads).transpose(1, 2)
        cos, sin = position_embeddings
        query, key = apply_rotary_pos_emb(query, key, cos, sin)
        keys, values = past_key_values.update(key, value, self.layer_idx)  # (B, H, L, Dh)
        out = compiled_attend_one(query, keys, values, self.scaling)  # (B, 1, H, Dh)
        if out is None:  # compiling failed just now (it warned): ATen's kernel, same cache
            out = F.scaled_dot_product_attention(query, keys, values, scale=self.scaling)
            out = out.transpose(1, 2)  # (B, 1, H, Dh)
        return self.o_proj(out.reshape(*hidden_states.shape[:-1], -1)), None
