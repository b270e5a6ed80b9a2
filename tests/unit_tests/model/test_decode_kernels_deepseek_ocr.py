"""The compiled decode kernels against their eager definitions and against ATen's own ops.

They compile with inductor's C++ toolchain. Without a C++ compiler they cannot run: a
skip outside CI, a failure in CI (``.ci/run`` installs g++).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import apply_rotary_pos_emb

from optical_memory.model import decode_kernels_deepseek_ocr as kernels
from tests.conftest import missing_component


@pytest.fixture(scope="module", autouse=True)
def compiler_works() -> None:
    """Each test here needs the compiled path itself, not the fallback."""
    if not kernels.compiled_decode_enabled():
        pytest.fail("compiled decode kernels are off or failed before these tests")
    if kernels.compiled_gemv(torch.ones(3, 5), torch.ones(5)) is None:
        missing_component(f"torch.compile cannot build CPU kernels: {kernels._failure!r}")


def random(*shape: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.mark.parametrize("shape", [(48, 64), (1000, 77), (3, 1)])
def test_gemv_fp32_equals_torch_mv(shape: tuple[int, int]) -> None:
    weight, row = random(*shape, dtype=torch.float32), random(shape[1], dtype=torch.float32)
    got = kernels.compiled_gemv(weight, row)
    assert got is not None and got.shape == (shape[0],) and got.dtype == torch.float32
    torch.testing.assert_close(got, torch.mv(weight, row), rtol=1e-5, atol=1e-5)


def test_gemv_bf16_accumulates_in_fp32_and_rounds_once() -> None:
    """The same dot products in another order, each rounded once to bf16."""
    weight, row = random(700, 1280, dtype=torch.bfloat16), random(1280, dtype=torch.bfloat16)
    got = kernels.compiled_gemv(weight, row)
    assert got is not None and got.dtype == torch.bfloat16
    exact = weight.double() @ row.double()
    assert ((got.double() - exact).abs() <= exact.abs() * 2**-8 + 1e-6).all()
    assert torch.equal(got, kernels.gemv_reference(weight, row))


def test_gemv_on_a_row_block_view_reads_only_that_block() -> None:
    weight, row = random(300, 64, dtype=torch.bfloat16), random(64, dtype=torch.bfloat16)
    whole = kernels.compiled_gemv(weight, row)
    block = kernels.compiled_gemv(weight[100:250], row)
    assert whole is not None and block is not None
    assert torch.equal(block, whole[100:250])


@pytest.mark.parametrize("length", [1, 7, 300])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_out_matches_sdpa_then_the_projection(length: int, dtype: torch.dtype) -> None:
    query = random(2, 4, 1, 32, dtype=dtype, seed=1)
    # The cache hands out views of a longer buffer: strided keys and values.
    key = random(2, 4, 512, 32, dtype=dtype, seed=2)[:, :, :length]
    value = random(2, 4, 512, 32, dtype=dtype, seed=3)[:, :, :length]
    o_weight = random(48, 128, dtype=dtype, seed=4) * 0.1
    got = kernels.compiled_attention_out(query, key, value, 32**-0.5, o_weight)
    attended = F.scaled_dot_product_attention(query, key, value, scale=32**-0.5)
    expected = F.linear(attended.transpose(1, 2).flatten(2), o_weight)  # (2, 1, 48)
    assert got is not None and got.shape == (2, 1, 48) and got.dtype == dtype
    if dtype == torch.float32:
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    else:  # SDPA rounds the attended values to bf16 before the projection; we do too
        torch.testing.assert_close(got.float(), expected.float(), rtol=2**-6, atol=2**-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_in_matches_transformers_projections_and_rope(dtype: torch.dtype) -> None:
    hidden = random(2, 1, 64, dtype=dtype, seed=5)
    weights = [random(64, 64, dtype=dtype, seed=6 + i) * 0.1 for i in range(3)]
    angles = random(2, 1, 16, dtype=torch.float32, seed=9)
    cos, sin = (
        torch.cat((angles, angles), -1).cos().to(dtype),
        torch.cat((angles, angles), -1).sin().to(dtype),
    )
    got = kernels.compiled_attention_in(hidden, *weights, cos, sin)
    assert got is not None
    q, k, v = (F.linear(hidden, w).view(2, 1, 2, 32).transpose(1, 2) for w in weights)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    for ours, theirs in zip(got, (q, k, v), strict=True):
        assert ours.shape == theirs.shape == (2, 2, 1, 32) and ours.dtype == dtype
        tolerance = 1e-5 if dtype == torch.float32 else 2**-6
        torch.testing.assert_close(ours, theirs, rtol=tolerance, atol=tolerance)


def moe_weights(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    experts, width, inner, shared = 8, 64, 16, 32
    shapes = {
        "router": (experts, width),
        "gate_up": (experts, 2 * inner, width),
        "down": (experts, width, inner),
        "shared_gate": (shared, width),
        "shared_up": (shared, width),
        "shared_down": (width, shared),
    }
    return {
        name: random(*shape, dtype=dtype, seed=seed) * 0.3
        for seed, (name, shape) in enumerate(shapes.items())
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_moe_step_equals_its_eager_definition(dtype: torch.dtype) -> None:
    weights = moe_weights(dtype)
    row = random(64, dtype=dtype, seed=9)
    got = kernels.compiled_moe_step(row, *weights.values(), 3, 1.0)
    expected = kernels.moe_step_reference(row, *weights.values(), 3, 1.0)
    assert got is not None and got.shape == (64,) and got.dtype == dtype
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_moe_step_reads_only_the_selected_experts() -> None:
    """Experts the router does not pick may hold anything, NaN included."""
    weights = moe_weights(torch.float32)
    row = random(64, dtype=torch.float32, seed=9)
    chosen = (weights["router"] @ row).softmax(-1).topk(3).indices
    clean = kernels.compiled_moe_step(row, *weights.values(), 3, 1.0)
    unused = torch.ones(8, dtype=torch.bool)
    unused[chosen] = False
    weights["gate_up"][unused] = float("nan")
    weights["down"][unused] = float("nan")
    poisoned = kernels.compiled_moe_step(row, *weights.values(), 3, 1.0)
    assert clean is not None and poisoned is not None
    assert torch.equal(poisoned, clean)


def test_other_devices_take_the_eager_path() -> None:
    weight, row = torch.ones(3, 4, device="meta"), torch.ones(4, device="meta")
    assert kernels.compiled_gemv(weight, row) is None
    cache = weight.view(1, 1, 3, 4)
    assert kernels.compiled_attention_out(row.view(1, 1, 1, 4), cache, cache, 1.0, weight) is None


def run_python(code: str, tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter with its own inductor cache (nothing compiled before)."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"), **environ}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_without_a_compiler_one_warning_then_the_eager_path(tmp_path: Path) -> None:
    code = """
        import warnings
        import torch
        from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig
        from optical_memory.model.decode_kernels_deepseek_ocr import CompiledDecodeWarning

        torch.manual_seed(0)
        model = DeepSeekOCR(DeepSeekOCRConfig.tiny()).eval()
        with warnings.catch_warnings(record=True) as caught, torch.no_grad():
            warnings.simplefilter("always")
            out = model(torch.tensor([[0, 11, 12]]))
            for _ in range(3):
                token = out.logits[:, -1].argmax(-1, keepdim=True)
                out = model(token, past_key_values=out.past_key_values, logits_to_keep=1)
        ours = [w for w in caught if issubclass(w.category, CompiledDecodeWarning)]
        assert len(ours) == 1, [str(w.message) for w in caught]
        assert "C++ compiler" in str(ours[0].message)
        assert torch.isfinite(out.logits).all()
        print("fell back")
    """
    result = run_python(code, tmp_path, CXX=str(tmp_path / "no-such-compiler"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fell back" in result.stdout


def test_the_environment_switch_turns_the_compiled_path_off(tmp_path: Path) -> None:
    code = """
        import torch
        from optical_memory.model import decode_kernels_deepseek_ocr as kernels

        assert not kernels.compiled_decode_enabled()
        assert kernels.compiled_gemv(torch.ones(3, 4), torch.ones(4)) is None
        print("off")
    """
    result = run_python(code, tmp_path, OPTICAL_MEMORY_COMPILED_DECODE="0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "off" in result.stdout
