# transformers' modules are untyped; calling them is intended.
# mypy: disable-error-code="no-untyped-call"
"""The decoder's MoE block and linears with a fast path for a few tokens (decode steps).

transformers' eager experts loop builds a one-hot mask over every expert, runs ``F.linear``
on gathered rows, rounds each weighted expert output to the model dtype and adds them with
``index_add_``. For a decode step (one token, 6 of 64 experts) that overhead costs more than
reading the weights. ``DeepseekOcrTextMoe`` runs only the selected experts on views of the
packed tensors (no copy of any weight), uses ``torch.mv`` for single rows (a GEMV kernel,
faster on CPU than ``F.linear``'s matrix path), sums the weighted expert outputs in fp32 and
casts once, as the official DeepSeek-OCR code does, then adds the shared experts. Above
``max_loop_tokens`` tokens (prefill) it is transformers' block unchanged.

``DeepseekOcrLinear`` does the same for the dense projections (attention, the dense MLP,
the shared experts, ``lm_head``): one row goes through a GEMV.

On CPU both first try the compiled kernels of ``decode_kernels_deepseek_ocr`` (one token
through the whole MoE block as one graph; a GEMV that streams bf16 weights two to three
times as fast as ``torch.mv``). Where those do not run, the eager path below is used.

Shapes in comments: T tokens, D hidden size, I expert width, k experts per token.
"""

from __future__ import annotations

from typing import TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2TextAttention,
    DeepseekOcr2TextMLP,
    DeepseekOcr2TextMoe,
)

from .attention_deepseek_ocr import DeepseekOcrTextAttention
from .decode_kernels_deepseek_ocr import compiled_gemv, compiled_moe_step

__all__ = ["DeepseekOcrLinear", "DeepseekOcrTextMoe", "use_fast_decode"]

_Module = TypeVar("_Module", bound=nn.Module)


class DeepseekOcrLinear(nn.Linear):
    """``nn.Linear`` that runs a single input row (a one-token decode step) as a GEMV."""

    max_gemv_rows = 32768
    """A taller weight (``lm_head``: 129,280 rows) runs as GEMVs over blocks of this many
    rows, which this CPU reads faster than one long GEMV (same dot products, same result)."""

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> DeepseekOcrLinear:
        """A fast linear holding ``linear``'s own parameters (nothing is copied)."""
        with torch.device("meta"):
            fast = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        fast.weight = linear.weight
        fast.bias = linear.bias
        return _took_over(fast, linear)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """``(..., in)`` -> ``(..., out)``; one row uses ``torch.mv``, more use ``F.linear``."""
        if input.numel() != self.in_features:
            return super().forward(input)
        row = input.reshape(-1)  # (in,)
        compiled = compiled_gemv(self.weight, row)
        if compiled is not None:
            out = compiled if self.bias is None else compiled + self.bias
        elif self.out_features > self.max_gemv_rows:
            out = self._blocked_gemv(row)
        elif self.bias is None:
            out = torch.mv(self.weight, row)  # (out,)
        else:
            out = torch.addmv(self.bias, self.weight, row)
        return out.view(*input.shape[:-1], -1)

    def _blocked_gemv(self, row: torch.Tensor) -> torch.Tensor:
        """``weight @ row (+ bias)`` as one GEMV per block of ``max_gemv_rows`` rows."""
        out = row.new_empty(self.out_features)  # (out,)
        for first in range(0, self.out_features, self.max_gemv_rows):
            rows = slice(first, first + self.max_gemv_rows)
            if self.bias is None:
                torch.mv(self.weight[rows], row, out=out[rows])
            else:
                torch.addmv(self.bias[rows], self.weight[rows], row, out=out[rows])
        return out


class DeepseekOcrTextMoe(DeepseekOcr2TextMoe):
    """transformers' DeepSeek MoE block; up to ``max_loop_tokens`` tokens take a direct loop.

    Parameters, names and layout are the parent's (``experts.gate_up_proj`` is
    ``(E, 2I, D)``, ``experts.down_proj`` is ``(E, D, I)``), so checkpoints load unchanged.
    """

    max_loop_tokens = 16
    """Token counts up to this take the loop; above it (prefill) the parent is as fast."""

    @classmethod
    def from_moe(cls, moe: DeepseekOcr2TextMoe) -> DeepseekOcrTextMoe:
        """A fast block that takes over ``moe``'s submodules (and so its parameters)."""
        with torch.device("meta"):  # the parent builds throwaway experts: give them no memory
            fast = cls(moe.config)
        for name, child in moe.named_children():
            setattr(fast, name, child)
        return _took_over(fast, moe)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` -> ``(..., D)``: routed experts (fp32 sum) plus the shared experts."""
        flat = hidden_states.reshape(-1, hidden_states.shape[-1])  # (T, D)
        if flat.shape[0] > self.max_loop_tokens:
            return super().forward(hidden_states)
        if flat.shape[0] == 1 and self._one_graph:
            compiled = self._compiled_one_token(flat[0])
            if compiled is not None:
                return compiled.view(hidden_states.shape)
        _, weights, experts = self.gate(flat)  # (T, k) fp32, (T, k) int64
        if flat.shape[0] == 1:
            routed = self._one_token(flat[0], experts[0].tolist(), weights[0].tolist())[None]
        else:
            routed = self._few_tokens(flat, experts, weights)  # (T, D) fp32
        out: torch.Tensor = routed.to(flat.dtype) + self.shared_experts(flat)  # (T, D)
        return out.view(hidden_states.shape)

    @property
    def _one_graph(self) -> bool:
        """Whether this block is what ``compiled_moe_step`` computes: SiLU experts, greedy
        routing, shared experts as one bias-free MLP."""
        shared = self.shared_experts
        return (
            self.config.hidden_act == "silu"
            and self.gate.topk_method == "greedy"
            and type(shared) is DeepseekOcr2TextMLP
            and all(
                isinstance(linear, nn.Linear) and linear.bias is None
                for linear in (shared.gate_proj, shared.up_proj, shared.down_proj)
            )
        )

    def _compiled_one_token(self, row: torch.Tensor) -> torch.Tensor | None:
        """One ``(D,)`` token through the compiled block, ``(D,)``; ``None`` if it did not run."""
        shared, experts = self.shared_experts, self.experts
        return compiled_moe_step(
            row,
            self.gate.weight,
            experts.gate_up_proj,
            experts.down_proj,
            shared.gate_proj.weight,
            shared.up_proj.weight,
            shared.down_proj.weight,
            cast(int, self.gate.top_k),  # typed optional in transformers; set by every config
            float(self.gate.routed_scaling_factor),
        )

    def _expert(self, index: int, rows: torch.Tensor) -> torch.Tensor:
        """Expert ``index`` on ``(D,)`` or ``(n, D)`` rows, in the weights' dtype."""
        experts = self.experts
        gate, up = _linear(rows, experts.gate_up_proj[index]).chunk(2, dim=-1)  # (..., I) each
        return _linear(experts.act_fn(gate) * up, experts.down_proj[index])  # (..., D)

    def _one_token(
        self, row: torch.Tensor, experts: list[int], weights: list[float]
    ) -> torch.Tensor:
        """The weighted sum over one ``(D,)`` token's experts, ``(D,)`` in fp32."""
        total = torch.zeros(row.shape[-1], dtype=torch.float32, device=row.device)  # (D,)
        for index, weight in zip(experts, weights, strict=True):
            total.add_(self._expert(index, row), alpha=weight)
        return total

    def _few_tokens(
        self, flat: torch.Tensor, experts: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Each selected expert once, over the tokens that chose it; ``(T, D)`` in fp32."""
        top_k = experts.shape[-1]
        order = experts.reshape(-1).argsort(stable=True)  # (T*k,) grouped by expert
        counts = torch.bincount(experts.reshape(-1), minlength=self.experts.num_experts)
        total = torch.zeros(flat.shape, dtype=torch.float32, device=flat.device)  # (T, D)
        start = 0
        for index, count in enumerate(counts.tolist()):
            if not count:
                continue
            slots = order[start : start + count]  # (n,) positions in the (T, k) routing
            start += count
            tokens = slots // top_k  # (n,)
            rows = flat[tokens] if count > 1 else flat[tokens[0]]  # (n, D), or (D,) for mv
            out = self._expert(index, rows).float().view(count, -1)  # (n, D)
            total.index_add_(0, tokens, out * weights.reshape(-1)[slots, None])
        return total


def _took_over(new: _Module, old: nn.Module) -> _Module:
    """``new`` in ``old``'s training mode and with its init mark: transformers' ``post_init``
    skips modules marked ``_is_hf_initialized``, so the weights are not drawn a second time."""
    new.train(old.training)
    if getattr(old, "_is_hf_initialized", False):
        new._is_hf_initialized = True  # type: ignore[assignment]
    return new


def _linear(rows: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``rows @ weight.T``; a single ``(D,)`` row goes through ``torch.mv``."""
    return torch.mv(weight, rows) if rows.dim() == 1 else F.linear(rows, weight)


def use_fast_decode(model: nn.Module) -> None:
    """Swap in ``DeepseekOcrTextMoe`` for every MoE block, ``DeepseekOcrTextAttention`` for
    every attention block and ``DeepseekOcrLinear`` for every plain ``nn.Linear`` in ``model``.

    The new modules take over the old ones' submodules and parameters, so nothing is copied
    or renamed and checkpoints load as before.
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is DeepseekOcr2TextMoe:
                setattr(parent, name, DeepseekOcrTextMoe.from_moe(child))
            elif type(child) is DeepseekOcr2TextAttention:
                setattr(parent, name, DeepseekOcrTextAttention.from_attention(child))
            elif type(child) is nn.Linear:
                setattr(parent, name, DeepseekOcrLinear.from_linear(child))
