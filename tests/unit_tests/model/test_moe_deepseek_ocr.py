"""The fast decode modules against transformers' and torch's own: same parameters, outputs.

Every test runs twice: on the compiled CPU kernels, and on the eager path that replaces
them where they cannot run (``OPTICAL_MEMORY_COMPILED_DECODE=0``).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2TextAttention,
    DeepseekOcr2TextModel,
    DeepseekOcr2TextMoe,
)

from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig, modeling_deepseek_ocr
from optical_memory.model.attention_deepseek_ocr import DeepseekOcrTextAttention
from optical_memory.model.configuration_deepseek_ocr import DeepseekOcrTextConfig
from optical_memory.model.moe_deepseek_ocr import DeepseekOcrLinear, DeepseekOcrTextMoe

WIDTH = 64
FALLBACK = DeepseekOcrTextMoe.max_loop_tokens + 1


@pytest.fixture(autouse=True, params=["compiled", "eager"])
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    switch = "1" if request.param == "compiled" else "0"
    monkeypatch.setenv("OPTICAL_MEMORY_COMPILED_DECODE", switch)
    return str(request.param)


def blocks(dtype: torch.dtype) -> tuple[DeepseekOcr2TextMoe, DeepseekOcrTextMoe]:
    """transformers' block (eager experts) and the fast block sharing its parameters."""
    config = DeepseekOcrTextConfig(
        hidden_size=WIDTH,
        num_hidden_layers=2,
        n_routed_experts=8,
        num_experts_per_tok=3,
        n_shared_experts=2,
        moe_intermediate_size=16,
    )
    config._experts_implementation = "eager"
    torch.manual_seed(0)
    reference = DeepseekOcr2TextMoe(config).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.normal_(0, 0.2)
    reference = reference.to(dtype)
    return reference, DeepseekOcrTextMoe.from_moe(copy.deepcopy(reference))


def tokens(count: int, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(count)
    return torch.randn(1, count, WIDTH, generator=generator).to(dtype)  # (1, T, D)


@pytest.mark.parametrize("count", [1, 5, FALLBACK])
def test_fp32_matches_transformers(count: int) -> None:
    reference, fast = blocks(torch.float32)
    x = tokens(count, torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), reference(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("count", [1, 5])
def test_bf16_within_one_rounding(count: int) -> None:
    """transformers rounds each expert output; we round once, so the two differ by that."""
    reference, fast = blocks(torch.bfloat16)
    x = tokens(count, torch.bfloat16)
    with torch.no_grad():
        expected, got = reference(x).float(), fast(x).float()
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=2**-7, atol=2**-7 * scale)


def test_bf16_sums_experts_in_fp32_like_the_reference() -> None:
    """The official code: bf16 expert outputs, fp32 weighted sum, one cast, + shared."""
    reference, fast = blocks(torch.bfloat16)
    x = tokens(1, torch.bfloat16)[0]  # (1, D)
    with torch.no_grad():
        _, weights, chosen = reference.gate(x)
        experts = reference.experts
        total = torch.zeros(1, WIDTH)
        for slot, index in enumerate(chosen[0].tolist()):
            gate, up = (x @ experts.gate_up_proj[index].T).chunk(2, dim=-1)
            out = (experts.act_fn(gate) * up) @ experts.down_proj[index].T  # bf16
            total += out.float() * weights[0, slot]
        expected = total.to(torch.bfloat16) + reference.shared_experts(x)
        got = fast(x)
    torch.testing.assert_close(got.float(), expected.float(), rtol=2**-8, atol=1e-3)


def test_many_tokens_take_transformers_path_unchanged() -> None:
    reference, fast = blocks(torch.bfloat16)
    x = tokens(FALLBACK, torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(fast(x), reference(x))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_linear_one_row_matches_nn_linear(bias: bool, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    plain = nn.Linear(WIDTH, 48, bias=bias).to(dtype)
    fast = DeepseekOcrLinear.from_linear(plain)
    assert fast.weight is plain.weight
    row, rows = torch.randn(1, 1, WIDTH).to(dtype), torch.randn(3, WIDTH).to(dtype)
    with torch.no_grad():
        expected, got = plain(row), fast(row)
        assert torch.equal(fast(rows), plain(rows))  # more rows: F.linear itself
    assert got.shape == expected.shape == (1, 1, 48)
    if dtype == torch.float32:
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    else:  # both accumulate in fp32 and round once; the sums' order may differ
        torch.testing.assert_close(got.float(), expected.float(), rtol=2**-7, atol=2**-7)


@pytest.mark.parametrize("bias", [False, True])
def test_tall_linear_in_row_blocks_equals_one_gemv(
    bias: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lm_head``'s blocked GEMV computes the very same dot products as one ``torch.mv``."""
    torch.manual_seed(0)
    fast = DeepseekOcrLinear(WIDTH, 100, bias=bias).bfloat16()
    row = torch.randn(1, 1, WIDTH).bfloat16()
    with torch.no_grad():
        whole = fast(row)
        monkeypatch.setattr(DeepseekOcrLinear, "max_gemv_rows", 16)  # 7 blocks, the last short
        blocked = fast(row)
    assert blocked.shape == (1, 1, 100)
    assert torch.equal(blocked, whole)


def test_decoder_uses_them_with_transformers_parameter_names() -> None:
    model = DeepSeekOCR(DeepSeekOCRConfig.tiny())
    text = model.model.language_model
    assert [type(layer.mlp) for layer in text.layers][1:] == [DeepseekOcrTextMoe]
    assert all(type(layer.self_attn) is DeepseekOcrTextAttention for layer in text.layers)
    linears = [m for m in (*text.modules(), model.lm_head) if isinstance(m, nn.Linear)]
    assert linears and all(type(m) is DeepseekOcrLinear for m in linears)
    with torch.device("meta"):
        plain = DeepseekOcr2TextModel(model.config.text)
    assert list(text.state_dict()) == list(plain.state_dict())


def test_swapping_draws_no_weights_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded tiny models keep the weights (and RNG state) they had without the swap."""
    torch.manual_seed(0)
    swapped = DeepSeekOCR(DeepSeekOCRConfig.tiny()).state_dict()
    after_swapped = torch.rand(1)
    monkeypatch.setattr(modeling_deepseek_ocr, "use_fast_decode", lambda model: None)
    torch.manual_seed(0)
    plain = DeepSeekOCR(DeepSeekOCRConfig.tiny())
    assert type(plain.model.language_model.layers[1].mlp) is DeepseekOcr2TextMoe
    assert torch.equal(torch.rand(1), after_swapped)
    assert all(torch.equal(swapped[name], t) for name, t in plain.state_dict().items())


def test_decode_steps_match_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefill then one-token steps with the KV cache: fast modules vs transformers' own."""
    torch.manual_seed(0)
    model = DeepSeekOCR(DeepSeekOCRConfig.tiny()).eval()
    ids = torch.tensor([[0, 11, 12, 13, 14]])

    def greedy() -> torch.Tensor:
        with torch.no_grad():
            out = model(ids)
            steps = [out.logits[:, -1]]
            for _ in range(3):
                token = out.logits[:, -1].argmax(-1, keepdim=True)
                out = model(token, past_key_values=out.past_key_values, logits_to_keep=1)
                steps.append(out.logits[:, -1])
        return torch.stack(steps)

    fast = greedy()
    monkeypatch.setattr(DeepseekOcrTextMoe, "max_loop_tokens", 0)
    monkeypatch.setattr(DeepseekOcrLinear, "forward", nn.Linear.forward)
    monkeypatch.setattr(DeepseekOcrTextAttention, "forward", DeepseekOcr2TextAttention.forward)
    torch.testing.assert_close(fast, greedy(), rtol=1e-5, atol=1e-6)
