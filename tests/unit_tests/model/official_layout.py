"""The released checkpoint's tensor names and shapes, written from the reference, not from
the model's conversion table, so tests can check the table against it."""

from __future__ import annotations

from pathlib import Path

from optical_memory.model import DeepSeekOCRConfig

Shape = tuple[int, ...]

TSV = Path(__file__).resolve().parents[2] / "data" / "deepseek_ocr_weights.tsv"


def read_tsv() -> dict[str, Shape]:
    """The released checkpoint's 2,710 names and shapes."""
    shapes: dict[str, Shape] = {}
    for line in TSV.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.startswith("key\t") or not line.strip():
            continue
        key, shape = line.split("\t")
        shapes[key] = tuple(int(n) for n in shape.split(","))
    return shapes


def official_shapes(config: DeepSeekOCRConfig) -> dict[str, Shape]:
    """Names and shapes a checkpoint in the official layout has for ``config``."""
    sam, clip, text = config.sam, config.clip, config.text
    out: dict[str, Shape] = {}

    def linear(prefix: str, rows: int, cols: int, bias: bool = True) -> None:
        out[f"{prefix}.weight"] = (rows, cols)
        if bias:
            out[f"{prefix}.bias"] = (rows,)

    def norm(prefix: str, width: int, bias: bool = True) -> None:
        out[f"{prefix}.weight"] = (width,)
        if bias:
            out[f"{prefix}.bias"] = (width,)

    width, patch = sam.hidden_size, int(sam.patch_size)  # type: ignore[arg-type]
    grid = int(sam.image_size) // patch  # type: ignore[arg-type]
    head = width // sam.num_attention_heads
    neck, mid, squeezed = (
        sam.output_channels,
        sam.compressor_mid_channels,
        sam.compressor_out_channels,
    )
    out["model.sam_model.patch_embed.proj.weight"] = (width, 3, patch, patch)
    out["model.sam_model.patch_embed.proj.bias"] = (width,)
    out["model.sam_model.pos_embed"] = (1, grid, grid, width)
    for i in range(sam.num_hidden_layers):
        block = f"model.sam_model.blocks.{i}"
        norm(f"{block}.norm1", width)
        norm(f"{block}.norm2", width)
        linear(f"{block}.attn.qkv", 3 * width, width)
        linear(f"{block}.attn.proj", width, width)
        span = grid if i in sam.global_attn_indexes else sam.window_size
        out[f"{block}.attn.rel_pos_h"] = (2 * span - 1, head)
        out[f"{block}.attn.rel_pos_w"] = (2 * span - 1, head)
        linear(f"{block}.mlp.lin1", sam.mlp_dim, width)
        linear(f"{block}.mlp.lin2", width, sam.mlp_dim)
    out["model.sam_model.neck.0.weight"] = (neck, width, 1, 1)
    norm("model.sam_model.neck.1", neck)
    out["model.sam_model.neck.2.weight"] = (neck, neck, 3, 3)
    norm("model.sam_model.neck.3", neck)
    out["model.sam_model.net_2.weight"] = (mid, neck, 3, 3)
    out["model.sam_model.net_3.weight"] = (squeezed, mid, 3, 3)

    c = clip.hidden_size
    positions = (int(clip.image_size) // int(clip.patch_size)) ** 2 + 1  # type: ignore[arg-type]
    out["model.vision_model.embeddings.class_embedding"] = (c,)
    out["model.vision_model.embeddings.patch_embedding.weight"] = (c, 3, 14, 14)
    out["model.vision_model.embeddings.position_embedding.weight"] = (positions, c)
    norm("model.vision_model.pre_layrnorm", c)
    for i in range(clip.num_hidden_layers):
        layer = f"model.vision_model.transformer.layers.{i}"
        norm(f"{layer}.layer_norm1", c)
        norm(f"{layer}.layer_norm2", c)
        linear(f"{layer}.self_attn.qkv_proj", 3 * c, c)
        linear(f"{layer}.self_attn.out_proj", c, c)
        linear(f"{layer}.mlp.fc1", clip.intermediate_size, c)
        linear(f"{layer}.mlp.fc2", c, clip.intermediate_size)

    d = text.hidden_size
    linear("model.projector.layers", d, c + squeezed)
    out["model.image_newline"] = (d,)
    out["model.view_seperator"] = (d,)
    out["model.embed_tokens.weight"] = (text.vocab_size, d)
    out["lm_head.weight"] = (text.vocab_size, d)
    norm("model.norm", d, bias=False)
    assert text.mlp_layer_types is not None
    for i, kind in enumerate(text.mlp_layer_types):
        layer = f"model.layers.{i}"
        norm(f"{layer}.input_layernorm", d, bias=False)
        norm(f"{layer}.post_attention_layernorm", d, bias=False)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            linear(f"{layer}.self_attn.{name}", d, d, bias=False)
        if kind == "dense":
            linear(f"{layer}.mlp.gate_proj", text.intermediate_size, d, bias=False)
            linear(f"{layer}.mlp.up_proj", text.intermediate_size, d, bias=False)
            linear(f"{layer}.mlp.down_proj", d, text.intermediate_size, bias=False)
            continue
        expert, shared = (
            text.moe_intermediate_size,
            text.moe_intermediate_size * text.n_shared_experts,
        )
        linear(f"{layer}.mlp.gate", text.n_routed_experts, d, bias=False)
        for e in range(text.n_routed_experts):
            linear(f"{layer}.mlp.experts.{e}.gate_proj", expert, d, bias=False)
            linear(f"{layer}.mlp.experts.{e}.up_proj", expert, d, bias=False)
            linear(f"{layer}.mlp.experts.{e}.down_proj", d, expert, bias=False)
        linear(f"{layer}.mlp.shared_experts.gate_proj", shared, d, bias=False)
        linear(f"{layer}.mlp.shared_experts.up_proj", shared, d, bias=False)
        linear(f"{layer}.mlp.shared_experts.down_proj", d, shared, bias=False)
    return out
