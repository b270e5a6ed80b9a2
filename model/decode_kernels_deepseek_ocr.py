"""Compiled CPU kernels for one-token decode steps: GEMV, attention and the MoE block.

A decode step reads every active weight once (1.15 GB per token at full size) and does one
multiply-add per weight, so its speed is set by how fast the weights stream from memory.
ATen's CPU GEMV for bf16 reads 10-17 GB/s on a 2-core machine that copies 35-70 GB/s.
The same dot products written as ``(weight.float() * row.float()).sum(-1)`` and compiled
by ``torch.compile`` (inductor) become one vectorised, threaded reduction that converts
bf16 in registers and reads 35-45 GB/s on that machine; indexing the packed expert tensors
inside the compiled MoE block reads only the 6 selected experts, with no copy and no
host sync for the routing.

The kernels need inductor's toolchain: a C++ compiler (g++ or clang) and the Python
headers. The first decode step of a process compiles them (9 s on 2 cores with an empty
inductor cache, 1.7 s from inductor's on-disk cache). If compiling fails, one
``CompiledDecodeWarning`` says why and every step runs the eager path (``torch.mv``, ATen's
attention) from then on: about a third of the speed, the same results up to rounding. Only
CPU tensors take the compiled path; CUDA and MPS keep their vendor kernels.
``OPTICAL_MEMORY_COMPILED_DECODE=0`` turns the compiled path off.

Shapes in comments: D hidden size, I expert width, E experts, k experts per token, N rows.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import torch
import torch.nn.functional as F

__all__ = [
    "CompiledDecodeWarning",
    "attend_one_reference",
    "attention_in_reference",
    "attention_out_reference",
    "compiled_attention_in",
    "compiled_attention_out",
    "compiled_decode_enabled",
    "compiled_gemv",
    "compiled_moe_step",
    "gemv_reference",
    "moe_step_reference",
]


class CompiledDecodeWarning(RuntimeWarning):
    """The compiled decode kernels could not be built; decoding continues on the eager path."""


def compiled_decode_enabled() -> bool:
    """Whether CPU decode steps try the compiled kernels (``OPTICAL_MEMORY_COMPILED_DECODE``,
    on unless set to ``0``, ``false`` or ``no``) and compiling has not failed before."""
    setting = os.environ.get("OPTICAL_MEMORY_COMPILED_DECODE", "1").strip().lower()
    return setting not in {"0", "false", "no", "off"} and _failure is None


def gemv_reference(weight: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """``weight @ row`` for ``(N, K)`` and ``(..., K)``, accumulated in fp32, ``(..., N)`` in
    the weight's dtype: the kernel's own definition, and its eager form."""
    return (weight.float() * row.float()[..., None, :]).sum(-1).to(weight.dtype)


def moe_step_reference(
    row: torch.Tensor,
    router: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    shared_gate: torch.Tensor,
    shared_up: torch.Tensor,
    shared_down: torch.Tensor,
    top_k: int,
    scaling: float,
) -> torch.Tensor:
    """One token ``(D,)`` through a DeepSeek MoE block with SiLU experts, ``(D,)``.

    Greedy softmax top-k routing in fp32 without renormalisation; each selected expert's
    output rounded to the model dtype, summed in fp32 with its routing weight and cast
    once (the official DeepSeek-OCR order); then the shared experts are added.
    ``router`` is ``(E, D)``, ``gate_up`` ``(E, 2I, D)``, ``down`` ``(E, D, I)``.
    """
    dtype = row.dtype
    x = row.float()  # (D,)
    scores = (router.float() * x).sum(-1).softmax(-1)  # (E,)
    weights, experts = scores.topk(top_k, sorted=False)  # (k,), (k,)
    hidden = (gate_up[experts].float() * x).sum(-1).to(dtype)  # (k, 2I)
    gate, up = hidden.chunk(2, dim=-1)  # (k, I) each
    act = (F.silu(gate) * up).float()  # (k, I)
    outs = (down[experts].float() * act[:, None, :]).sum(-1).to(dtype)  # (k, D)
    routed = (outs.float() * (weights * scaling)[:, None]).sum(0)  # (D,) fp32
    shared_act = F.silu(gemv_reference(shared_gate, row)) * gemv_reference(shared_up, row)
    return routed.to(dtype) + gemv_reference(shared_down, shared_act)


def attend_one_reference(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float
) -> torch.Tensor:
    """One query position against the whole cache, without a mask: ``(B, H, 1, Dh)`` with
    ``(B, H, L, Dh)`` keys and values -> ``(B, 1, H, Dh)`` (the layout attention returns).

    Scores, softmax and the weighted sum of values run in fp32, one cast at the end, as
    SDPA's CPU kernels do; ATen's flash kernel spends ~0.6 ms per layer on this one row.
    """
    scores = (query.float() * key.float()).sum(-1) * scaling  # (B, H, L)
    probs = scores.softmax(-1)  # (B, H, L)
    out = (probs[..., None] * value.float()).sum(-2)  # (B, H, Dh)
    return out[:, None].to(query.dtype)  # (B, 1, H, Dh)


def attention_in_reference(
    hidden: torch.Tensor,
    q_weight: torch.Tensor,
    k_weight: torch.Tensor,
    v_weight: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(B, 1, D)`` -> query, key, value ``(B, H, 1, Dh)``: three projections and RoPE (the
    rotate-half form of transformers' ``apply_rotary_pos_emb``; ``cos``, ``sin`` ``(B, 1, Dh)``)."""
    batch, head_dim = hidden.shape[0], cos.shape[-1]
    cos, sin = cos[:, None], sin[:, None]  # (B, 1, 1, Dh)

    def heads(weight: torch.Tensor) -> torch.Tensor:
        return gemv_reference(weight, hidden).view(batch, 1, -1, head_dim).transpose(1, 2)

    def rotated(x: torch.Tensor) -> torch.Tensor:
        half = head_dim // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    return rotated(heads(q_weight)), rotated(heads(k_weight)), heads(v_weight)


def attention_out_reference(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    scaling: float,
    o_weight: torch.Tensor,
) -> torch.Tensor:
    """``attend_one_reference`` then the output projection: ``(B, 1, D)``."""
    out = attend_one_reference(query, key, value, scaling)  # (B, 1, H, Dh)
    return gemv_reference(o_weight, out.flatten(2))  # (B, 1, D)


_LOG = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")
_lock = threading.Lock()
_kernels: dict[str, Callable[..., Any]] = {}
_failure: BaseException | None = None


def _run(name: str, eager: Callable[..., Any], *args: Any) -> Any:
    """``name``'s compiled kernel on ``args``; ``None`` when compiled kernels are off or
    compiling failed (that failure warns once and switches them off for the process)."""
    if not compiled_decode_enabled():
        return None
    kernel = _kernels.get(name)
    if kernel is None:
        _LOG.info("compiling the %s decode kernel (first use; inductor caches it on disk)", name)
        # Dynamic shapes: one kernel per dtype serves every layer, width and cache length.
        # Emulated casts round where the eager definition rounds to the model dtype.
        compiled = torch.compile(
            eager, dynamic=True, fullgraph=True, options={"emulate_precision_casts": True}
        )
        with _lock:
            kernel = _kernels.setdefault(name, compiled)
    # Parameters as plain tensors: dynamo gives parameters static shapes, and with those
    # inductor built a projection over (B, 1, K) rows that ran 10x slower (1.9 ms, not 0.17).
    args = tuple(arg.detach() if isinstance(arg, torch.nn.Parameter) else arg for arg in args)
    try:
        return kernel(*args)
    except Exception as error:  # compiling fails many ways: no compiler, no headers, ...
        _switch_off(error)
        return None


def _switch_off(error: Exception) -> None:
    """Record the first failure and warn about it once."""
    global _failure
    with _lock:
        if _failure is not None:
            return
        _failure = error
    first_line = next(iter(str(error).strip().splitlines()), "")
    warnings.warn(
        f"compiled decode kernels are unavailable ({type(error).__name__}: {first_line}); "
        "decoding continues on the eager path, about a third of the speed on CPU. "
        "Install a C++ compiler (g++ or clang) and the Python headers (python3-dev) for "
        "the fast path, or set OPTICAL_MEMORY_COMPILED_DECODE=0 to silence this.",
        CompiledDecodeWarning,
        stacklevel=4,
    )


def _compiled(reference: Callable[_P, _R]) -> Callable[_P, _R | None]:
    """``reference`` compiled for CPU tensors. The wrapper returns ``None`` where it does not
    run (its first tensor on another device, compiled kernels off or failed): the caller
    then takes its eager path."""

    @functools.wraps(reference)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R | None:
        first = args[0]
        if kwargs or not isinstance(first, torch.Tensor) or first.device.type != "cpu":
            return None
        out: _R | None = _run(reference.__name__, reference, *args)
        return out

    run.__name__ = run.__qualname__ = "compiled_" + reference.__name__.removesuffix("_reference")
    run.__doc__ = f"``{reference.__name__}`` compiled; ``None`` where it does not run."
    return run


compiled_gemv = _compiled(gemv_reference)
compiled_attention_in = _compiled(attention_in_reference)
compiled_attention_out = _compiled(attention_out_reference)
compiled_moe_step = _compiled(moe_step_reference)
