"""The full-size module tree against the released checkpoint's key and shape table, on meta."""

from __future__ import annotations

import time

import pytest
import torch

from optical_memory.errors import CheckpointMismatchError
from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig

from .official_layout import official_shapes, read_tsv

RELEASED_PARAMETERS = 3_336_106_240


@pytest.fixture(scope="module")
def tsv() -> dict[str, tuple[int, ...]]:
    return read_tsv()


def meta_model() -> DeepSeekOCR:
    with torch.device("meta"):
        return DeepSeekOCR(DeepSeekOCRConfig())


def meta_tensors(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, dtype=torch.bfloat16, device="meta") for k, s in shapes.items()}


def test_tsv_is_the_released_table(tsv: dict[str, tuple[int, ...]]) -> None:
    assert len(tsv) == 2710
    assert sum(torch.Size(shape).numel() for shape in tsv.values()) == RELEASED_PARAMETERS


def test_test_layout_writer_matches_the_tsv(tsv: dict[str, tuple[int, ...]]) -> None:
    # the writer the tiny-checkpoint tests use is itself checked against the real table
    assert official_shapes(DeepSeekOCRConfig()) == tsv


def test_full_size_loads_exactly_the_released_keys(tsv: dict[str, tuple[int, ...]]) -> None:
    started = time.perf_counter()
    model = meta_model()
    built = time.perf_counter() - started
    report = model.load_official_state_dict(meta_tensors(tsv))
    assert report.missing_keys == () and report.unexpected_keys == ()
    # every parameter counted, the unused CLIP patch conv included; no buffers
    assert sum(p.numel() for p in model.parameters()) == RELEASED_PARAMETERS
    assert set(model.official_state_dict()) == set(tsv)
    assert built < 5, f"meta build took {built:.2f} s"


def test_decoder_matches_the_reference_facts() -> None:
    text = DeepSeekOCRConfig().text
    layer = meta_model().model.language_model.layers[1]
    assert (text.n_routed_experts, text.num_experts_per_tok, text.n_shared_experts) == (64, 6, 2)
    assert tuple(layer.mlp.experts.gate_up_proj.shape) == (64, 2 * 896, 1280)
    assert tuple(layer.mlp.shared_experts.gate_proj.weight.shape) == (1792, 1280)
    assert layer.mlp.gate.topk_method == "greedy"
    assert layer.mlp.gate.routed_scaling_factor == 1.0
    assert text.rms_norm_eps == 1e-6 and text.rope_parameters["rope_theta"] == 10000.0
    assert text.head_dim == 128 and text.num_key_value_heads == 10
    assert not DeepSeekOCRConfig().tie_word_embeddings


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("remove", "model.layers.7.mlp.experts.42.up_proj.weight"),
        ("add", "model.sam_model.blocks.12.norm1.weight"),
        ("reshape", "model.vision_model.transformer.layers.3.self_attn.qkv_proj.weight"),
    ],
)
def test_one_bad_key_is_named(tsv: dict[str, tuple[int, ...]], change: str, named: str) -> None:
    shapes = dict(tsv)
    if change == "remove":
        del shapes[named]
    elif change == "add":
        shapes[named] = (768,)
    else:
        shapes[named] = (3072, 1000)
    with pytest.raises(CheckpointMismatchError) as caught:
        meta_model().load_official_state_dict(meta_tensors(shapes))
    message = str(caught.value)
    assert named in message
    assert "1 " in message and message.count("\n") == 1  # that key and no other


def test_every_bad_key_is_named(tsv: dict[str, tuple[int, ...]]) -> None:
    shapes = dict(tsv)
    del shapes["model.view_seperator"]
    del shapes["lm_head.weight"]
    shapes["model.view_separator"] = (1280,)
    shapes["model.norm.weight"] = (1281,)
    with pytest.raises(CheckpointMismatchError) as caught:
        meta_model().load_official_state_dict(meta_tensors(shapes))
    message = str(caught.value)
    for key in ("model.view_seperator", "lm_head.weight", "model.view_separator"):
        assert key in message
    assert "model.norm.weight: checkpoint (1281,), model (1280,)" in message


def test_non_strict_reports_and_still_rejects_shapes(tsv: dict[str, tuple[int, ...]]) -> None:
    shapes = dict(tsv)
    del shapes["lm_head.weight"]
    shapes["extra.weight"] = (1,)
    report = meta_model().load_official_state_dict(meta_tensors(shapes), strict=False)
    assert report.missing_keys == ("lm_head.weight",)
    assert report.unexpected_keys == ("extra.weight",)
    shapes["model.norm.weight"] = (2,)
    with pytest.raises(CheckpointMismatchError, match=r"model\.norm\.weight"):
        meta_model().load_official_state_dict(meta_tensors(shapes), strict=False)
