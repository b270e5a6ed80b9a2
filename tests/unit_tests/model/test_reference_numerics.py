"""The model against a naive re-implementation written from the reference facts alone.

The reference below reads only the official checkpoint names (``official_state_dict``) and
plain torch ops, none of transformers' SAM, CLIP or DeepSeek layers, so a wrong scale,
window, position resize, concat order, RoPE or routing in the model shows up as a value
mismatch rather than passing a shape check.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig

Tensors = dict[str, torch.Tensor]


@pytest.fixture(scope="module")
def model() -> DeepSeekOCR:
    torch.manual_seed(0)
    model = DeepSeekOCR(DeepSeekOCRConfig.tiny()).eval()
    with torch.no_grad():  # real signal everywhere (SAM's own init is ~1e-10, routers 0)
        for name, parameter in model.named_parameters():
            if parameter.dim() == 1 and "norm" in name and name.endswith("weight"):
                parameter.copy_(1 + 0.1 * torch.randn_like(parameter))
            else:
                parameter.normal_(0, 0.05)
    return model


def _heads(x: torch.Tensor, count: int) -> torch.Tensor:
    return x.unflatten(-1, (count, -1)).transpose(-3, -2)  # (..., L, C) -> (..., h, L, c)


def _sam_attention(sd: Tensors, prefix: str, x: torch.Tensor, heads: int) -> torch.Tensor:
    """Global attention over ``(B, H, W, C)`` with decomposed rel-pos from the unscaled q."""
    batch, height, width, channels = x.shape
    qkv = (
        x.reshape(batch, height * width, -1) @ sd[prefix + "qkv.weight"].T + sd[prefix + "qkv.bias"]
    )
    q, k, v = (_heads(part, heads) for part in qkv.split(channels, dim=-1))  # (B, h, HW, c)
    logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)

    def table(name: str, size: int) -> torch.Tensor:
        rel = sd[prefix + name]
        if rel.shape[0] != 2 * size - 1:
            rel = F.interpolate(rel.T[None], size=2 * size - 1, mode="linear")[0].T
        offsets = torch.arange(size)[:, None] - torch.arange(size)[None, :] + size - 1
        return rel[offsets]  # (size_q, size_k, c)

    grid_q = q.unflatten(2, (height, width))  # (B, h, H, W, c)
    rel_h = torch.einsum("bnhwc,hkc->bnhwk", grid_q, table("rel_pos_h", height))
    rel_w = torch.einsum("bnhwc,wkc->bnhwk", grid_q, table("rel_pos_w", width))
    logits = logits.view(batch, heads, height, width, height, width)
    logits = logits + rel_h[..., :, None] + rel_w[..., None, :]
    weights = logits.reshape(batch, heads, height * width, -1).softmax(dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(batch, height, width, channels)
    return out @ sd[prefix + "proj.weight"].T + sd[prefix + "proj.bias"]


def _windowed(sd: Tensors, prefix: str, x: torch.Tensor, heads: int, window: int) -> torch.Tensor:
    batch, height, width, channels = x.shape
    pad_h, pad_w = -height % window, -width % window
    padded = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # zeros after norm1, attended to
    rows, columns = (height + pad_h) // window, (width + pad_w) // window
    windows = padded.view(batch, rows, window, columns, window, channels).transpose(2, 3)
    out = _sam_attention(sd, prefix, windows.reshape(-1, window, window, channels), heads)
    out = out.view(batch, rows, columns, window, window, channels).transpose(2, 3)
    return out.reshape(batch, rows * window, columns * window, channels)[:, :height, :width]


def _layer_norm_2d(x: torch.Tensor, sd: Tensors, prefix: str) -> torch.Tensor:
    mean = x.mean(1, keepdim=True)
    var = (x - mean).pow(2).mean(1, keepdim=True)
    x = (x - mean) / torch.sqrt(var + 1e-6)
    return x * sd[prefix + "weight"][:, None, None] + sd[prefix + "bias"][:, None, None]


def _sam(sd: Tensors, config: DeepSeekOCRConfig, pixels: torch.Tensor) -> torch.Tensor:
    p = "model.sam_model."
    x = F.conv2d(pixels, sd[p + "patch_embed.proj.weight"], sd[p + "patch_embed.proj.bias"], 16)
    x = x.permute(0, 2, 3, 1)  # (B, g, g, C)
    pos = sd[p + "pos_embed"].permute(0, 3, 1, 2)
    pos = F.interpolate(pos, x.shape[1:3], mode="bicubic", antialias=True, align_corners=False)
    x = x + pos.permute(0, 2, 3, 1)
    width = x.shape[-1]
    for i in range(config.sam.num_hidden_layers):
        b = f"{p}blocks.{i}."
        y = F.layer_norm(x, (width,), sd[b + "norm1.weight"], sd[b + "norm1.bias"], 1e-6)
        heads = config.sam.num_attention_heads
        if i in config.sam.global_attn_indexes:
            y = _sam_attention(sd, b + "attn.", y, heads)
        else:
            y = _windowed(sd, b + "attn.", y, heads, 14)
        x = x + y
        y = F.layer_norm(x, (width,), sd[b + "norm2.weight"], sd[b + "norm2.bias"], 1e-6)
        y = F.gelu(y @ sd[b + "mlp.lin1.weight"].T + sd[b + "mlp.lin1.bias"])
        x = x + y @ sd[b + "mlp.lin2.weight"].T + sd[b + "mlp.lin2.bias"]
    x = _layer_norm_2d(F.conv2d(x.permute(0, 3, 1, 2), sd[p + "neck.0.weight"]), sd, p + "neck.1.")
    x = _layer_norm_2d(F.conv2d(x, sd[p + "neck.2.weight"], padding=1), sd, p + "neck.3.")
    x = F.conv2d(x, sd[p + "net_2.weight"], stride=2, padding=1)
    return F.conv2d(x, sd[p + "net_3.weight"], stride=2, padding=1)  # (B, 1024, q, q)


def _clip(sd: Tensors, config: DeepSeekOCRConfig, features: torch.Tensor) -> torch.Tensor:
    p = "model.vision_model."
    batch, width, rows, columns = features.shape
    tokens = features.flatten(2).transpose(1, 2)
    cls = sd[p + "embeddings.class_embedding"].expand(batch, 1, width)
    table = sd[p + "embeddings.position_embedding.weight"]  # (257, C)
    grid = table[1:].T.reshape(1, width, 16, 16)
    grid = F.interpolate(grid, (rows, columns), mode="bicubic", antialias=True, align_corners=False)
    x = torch.cat([cls, tokens], 1) + torch.cat([table[:1], grid.flatten(2)[0].T])
    x = F.layer_norm(x, (width,), sd[p + "pre_layrnorm.weight"], sd[p + "pre_layrnorm.bias"], 1e-5)
    heads = config.clip.num_attention_heads
    for i in range(config.clip.num_hidden_layers):
        b = f"{p}transformer.layers.{i}."
        y = F.layer_norm(
            x, (width,), sd[b + "layer_norm1.weight"], sd[b + "layer_norm1.bias"], 1e-5
        )
        qkv = y @ sd[b + "self_attn.qkv_proj.weight"].T + sd[b + "self_attn.qkv_proj.bias"]
        q, k, v = (_heads(part, heads) for part in qkv.split(width, dim=-1))
        weights = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(dim=-1)
        y = (weights @ v).transpose(1, 2).reshape(batch, -1, width)
        x = x + y @ sd[b + "self_attn.out_proj.weight"].T + sd[b + "self_attn.out_proj.bias"]
        y = F.layer_norm(
            x, (width,), sd[b + "layer_norm2.weight"], sd[b + "layer_norm2.bias"], 1e-5
        )
        y = y @ sd[b + "mlp.fc1.weight"].T + sd[b + "mlp.fc1.bias"]
        y = y * torch.sigmoid(1.702 * y)  # quick_gelu
        x = x + y @ sd[b + "mlp.fc2.weight"].T + sd[b + "mlp.fc2.bias"]
    return x[:, 1:]  # no post-norm, CLS dropped


def test_vision_tokens_match_the_naive_deep_encoder(model: DeepSeekOCR) -> None:
    # 640 px: SAM grid 40 (positions resized from 64, windows padded to 42, the global
    # block's rel-pos resized from 127 to 79), CLIP positions resized from 16 to 10.
    sd, config = model.official_state_dict(), model.config
    pixels = torch.rand(1, 3, 640, 640) * 2 - 1
    with torch.no_grad():
        actual = model.encode_views(pixels)
        sam = _sam(sd, config, pixels)
        clip = _clip(sd, config, sam)
        fused = torch.cat([clip, sam.flatten(2).transpose(1, 2)], dim=-1)[0]  # CLIP first
        projected = (
            fused @ sd["model.projector.layers.weight"].T + sd["model.projector.layers.bias"]
        )
        rows = projected.view(10, 10, -1)
        newline = sd["model.image_newline"].expand(10, 1, -1)
        expected = torch.cat(
            [torch.cat([rows, newline], 1).flatten(0, 1), sd["model.view_seperator"][None]]
        )
    assert actual.shape == (111, config.text.hidden_size)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def _rms(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


def _swiglu(sd: Tensors, prefix: str, x: torch.Tensor) -> torch.Tensor:
    inner = F.silu(x @ sd[prefix + "gate_proj.weight"].T) * (x @ sd[prefix + "up_proj.weight"].T)
    return inner @ sd[prefix + "down_proj.weight"].T


def _decoder(sd: Tensors, config: DeepSeekOCRConfig, embeds: torch.Tensor) -> torch.Tensor:
    text = config.text
    length, heads = embeds.shape[0], text.num_attention_heads
    head_dim = text.hidden_size // heads
    inv_freq = 10000.0 ** (-torch.arange(0, head_dim, 2).float() / head_dim)
    angles = torch.arange(length).float()[:, None] * inv_freq  # (L, c/2)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()

    def rope(x: torch.Tensor) -> torch.Tensor:  # rotate-half over the full head
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin

    causal = torch.full((length, length), float("-inf")).triu(1)
    x = embeds
    for i in range(text.num_hidden_layers):
        p = f"model.layers.{i}."
        y = _rms(x, sd[p + "input_layernorm.weight"])
        q, k, v = (_heads(y @ sd[f"{p}self_attn.{n}_proj.weight"].T, heads) for n in "qkv")
        weights = (rope(q) @ rope(k).transpose(-1, -2) / math.sqrt(head_dim) + causal).softmax(-1)
        attended = (weights @ v).transpose(0, 1).reshape(length, -1)  # (L, h*c)
        x = x + attended @ sd[p + "self_attn.o_proj.weight"].T
        y = _rms(x, sd[p + "post_attention_layernorm.weight"])
        if i == 0:  # first_k_dense_replace = 1
            x = x + _swiglu(sd, p + "mlp.", y)
            continue
        scores = (y @ sd[p + "mlp.gate.weight"].T).softmax(-1)
        top, chosen = scores.topk(text.num_experts_per_tok, dim=-1)  # not renormalised
        routed = torch.zeros_like(y)
        for t in range(length):
            for weight, expert in zip(top[t], chosen[t].tolist(), strict=True):
                routed[t] += weight * _swiglu(sd, f"{p}mlp.experts.{expert}.", y[t])
        x = x + routed + _swiglu(sd, p + "mlp.shared_experts.", y)  # shared: unweighted
    return _rms(x, sd["model.norm.weight"]) @ sd["lm_head.weight"].T


def test_logits_match_the_naive_decoder(model: DeepSeekOCR) -> None:
    sd, config = model.official_state_dict(), model.config
    image = config.image_token_id
    ids = torch.tensor([0, 11, 12, *([image] * 5), 13, 14, 15])
    vision = torch.randn(5, config.text.hidden_size)
    embeds = sd["model.embed_tokens.weight"][ids].clone()
    embeds[ids == image] = vision
    with torch.no_grad():
        actual = model(ids[None], vision_embeds=[vision], use_cache=False).logits[0]
        expected = _decoder(sd, config, embeds)
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
