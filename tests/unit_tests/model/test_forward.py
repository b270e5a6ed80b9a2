"""Decoding over vision tokens: cached tokens, KV cache, slot checks, config round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers.cache_utils import DynamicCache

from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig, ImageViews


@pytest.fixture(scope="module")
def model() -> DeepSeekOCR:
    torch.manual_seed(0)
    model = DeepSeekOCR(DeepSeekOCRConfig.tiny()).eval()
    with torch.no_grad():  # SAM's own init is ~1e-10; give the vision path real signal
        for parameter in model.model.vision_tower.parameters():
            parameter.normal_(0, 0.05)
    return model


def prompt(model: DeepSeekOCR, slots: int, before: int = 3, after: int = 4) -> torch.Tensor:
    image = model.config.image_token_id
    return torch.tensor([[0, *range(10, 10 + before), *([image] * slots), *range(20, 20 + after)]])


def test_cached_vision_tokens_give_the_same_logits(model: DeepSeekOCR) -> None:
    views = ImageViews(torch.rand(3, 640, 640) * 2 - 1, torch.rand(2, 3, 512, 512) * 2 - 1, (1, 2))
    with torch.no_grad():
        cached = model.encode_views(views.global_view, views.tiles, views.tile_grid)
        ids = prompt(model, cached.shape[0])
        from_pixels = model(ids, images=[views]).logits
        from_cache = model(ids, vision_embeds=[cached.clone()]).logits
        blank = model(ids, vision_embeds=[torch.zeros_like(cached)]).logits
    assert from_pixels.dtype == torch.float32
    assert torch.equal(from_pixels, from_cache)
    assert not torch.allclose(from_pixels, blank)  # the vision tokens do reach the logits


def test_two_images_fill_slots_in_order(model: DeepSeekOCR) -> None:
    first, second = torch.rand(3, 512, 512) * 2 - 1, torch.rand(3, 640, 640) * 2 - 1
    with torch.no_grad():
        a, b = model.encode_views(first), model.encode_views(second)
        image = model.config.image_token_id
        ids = torch.tensor([[0, *([image] * a.shape[0]), 9, *([image] * b.shape[0]), 11]])
        both = model(ids, images=[ImageViews(first), ImageViews(second)]).logits
        in_order = model(ids, vision_embeds=[a, b]).logits
        flat = torch.cat([b, a])  # same count, wrong order
        reordered = model(ids, vision_embeds=[flat[: a.shape[0]], flat[a.shape[0] :]]).logits
    assert torch.equal(both, in_order)
    assert not torch.allclose(both, reordered)


def test_kv_cache_matches_a_full_pass(model: DeepSeekOCR) -> None:
    with torch.no_grad():
        tokens = model.encode_views(torch.rand(3, 512, 512) * 2 - 1)
        ids = prompt(model, tokens.shape[0])
        full = model(ids, vision_embeds=[tokens], use_cache=False).logits
        first = model(ids[:, :-2], vision_embeds=[tokens])
        assert isinstance(first.past_key_values, DynamicCache)
        cache = first.past_key_values
        step1 = model(ids[:, -2:-1], past_key_values=cache, logits_to_keep=1)
        step2 = model(ids[:, -1:], past_key_values=step1.past_key_values, logits_to_keep=1)
    assert cache.get_seq_length() == ids.shape[1]
    torch.testing.assert_close(first.logits, full[:, :-2], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(step1.logits[:, 0], full[:, -2], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(step2.logits[:, 0], full[:, -1], rtol=1e-4, atol=1e-5)


def test_slot_count_must_match(model: DeepSeekOCR) -> None:
    tokens = torch.zeros(73, 64)
    with pytest.raises(ValueError, match="72 <image> slot"):
        model(prompt(model, 72), vision_embeds=[tokens])
    with pytest.raises(ValueError, match="73 <image> slot"):
        model(prompt(model, 73))
    with pytest.raises(ValueError, match="not both"):
        model(
            prompt(model, 73), images=[ImageViews(torch.zeros(3, 512, 512))], vision_embeds=[tokens]
        )


def test_bfloat16_model_returns_fp32_logits(model: DeepSeekOCR) -> None:
    half = DeepSeekOCR(DeepSeekOCRConfig.tiny()).to(torch.bfloat16).eval()
    with torch.no_grad():
        out = half(prompt(half, 73), images=[ImageViews(torch.rand(3, 512, 512))])
    assert out.logits.dtype == torch.float32
    assert torch.isfinite(out.logits).all()


def test_config_round_trips(tmp_path: Path) -> None:
    for config in (DeepSeekOCRConfig(), DeepSeekOCRConfig.tiny(full_vocab=True)):
        config.save_pretrained(tmp_path)
        loaded = DeepSeekOCRConfig.from_pretrained(tmp_path)
        assert loaded.to_dict() == config.to_dict()
        assert type(loaded.text) is type(config.text)
    assert DeepSeekOCRConfig.tiny(full_vocab=True).image_token_id == 128815


def test_moe_layer_follows_the_reference_routing(model: DeepSeekOCR) -> None:
    """Softmax over all experts in fp32, plain top-k, weights not renormalised, plus shared."""
    official = model.official_state_dict()
    text = model.config.text
    hidden = torch.randn(5, text.hidden_size)

    def swiglu(x: torch.Tensor, prefix: str) -> torch.Tensor:
        gate, up = official[f"{prefix}.gate_proj.weight"], official[f"{prefix}.up_proj.weight"]
        inner = torch.nn.functional.silu(x @ gate.T) * (x @ up.T)
        return inner @ official[f"{prefix}.down_proj.weight"].T

    scores = (hidden @ official["model.layers.1.mlp.gate.weight"].T).softmax(dim=-1)
    weights, chosen = scores.topk(text.num_experts_per_tok, dim=-1)
    expected = swiglu(hidden, "model.layers.1.mlp.shared_experts")
    for row in range(hidden.shape[0]):
        for weight, expert in zip(weights[row], chosen[row].tolist(), strict=True):
            prefix = f"model.layers.1.mlp.experts.{expert}"
            expected[row] += weight * swiglu(hidden[row : row + 1], prefix)[0]
    with torch.no_grad():
        actual = model.model.language_model.layers[1].mlp(hidden[None])[0]
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
