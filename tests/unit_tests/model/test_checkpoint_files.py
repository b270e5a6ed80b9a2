"""Loading checkpoints in the released layout from a local directory."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from optical_memory.errors import CheckpointError, CheckpointMismatchError
from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig
from optical_memory.model.checkpoint_files_deepseek_ocr import SafetensorsFiles

from .official_layout import official_shapes

WEIGHTS = "model-00001-of-000001.safetensors"


def official_config_json(config: DeepSeekOCRConfig) -> dict[str, object]:
    """An official-style config.json, plus the sizes the released file leaves to code."""
    text = config.text
    return {
        "model_type": "deepseek_vl_v2",
        "architectures": ["DeepseekOCRForCausalLM"],
        "language_config": {
            "architectures": ["DeepseekV2ForCausalLM"],
            "bos_token_id": 0,
            "eos_token_id": 1,
            "first_k_dense_replace": 1,
            "hidden_size": text.hidden_size,
            "intermediate_size": text.intermediate_size,
            "kv_lora_rank": None,
            "lm_head": True,
            "max_position_embeddings": text.max_position_embeddings,
            "moe_intermediate_size": text.moe_intermediate_size,
            "n_group": 1,
            "n_routed_experts": text.n_routed_experts,
            "n_shared_experts": text.n_shared_experts,
            "num_attention_heads": text.num_attention_heads,
            "num_experts_per_tok": text.num_experts_per_tok,
            "num_hidden_layers": text.num_hidden_layers,
            "num_key_value_heads": text.num_key_value_heads,
            "q_lora_rank": None,
            "qk_nope_head_dim": 0,
            "qk_rope_head_dim": 0,
            "rm_head": False,
            "topk_group": 1,
            "topk_method": "greedy",
            "torch_dtype": "bfloat16",
            "use_mla": False,
            "v_head_dim": 0,
            "vocab_size": text.vocab_size,
        },
        "projector_config": {"input_dim": 2048, "model_type": "mlp_projector", "n_embed": 1280},
        "tile_tag": "2D",
        "global_view_pos": "head",
        "torch_dtype": "bfloat16",
        "vision_config": {"model_name": "deeplip_b_l", "mlp_ratio": 3.7362},
        # the released file has none of these: SAM and CLIP sizes are fixed in its code
        "sam_config": config.sam.to_diff_dict(),
        "clip_config": config.clip.to_diff_dict(),
        "image_token_id": config.image_token_id,
    }


def random_checkpoint(config: DeepSeekOCRConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        key: torch.randn(shape, generator=generator) * 0.1
        for key, shape in official_shapes(config).items()
    }


def write_checkpoint(
    directory: Path, tensors: dict[str, torch.Tensor], config: DeepSeekOCRConfig
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(official_config_json(config)))
    save_file(tensors, str(directory / WEIGHTS))
    return directory


@pytest.fixture(scope="module")
def tiny() -> DeepSeekOCRConfig:
    return DeepSeekOCRConfig.tiny()


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory, tiny: DeepSeekOCRConfig
) -> tuple[Path, dict[str, torch.Tensor]]:
    tensors = random_checkpoint(tiny)
    return write_checkpoint(tmp_path_factory.mktemp("ckpt"), tensors, tiny), tensors


def test_official_config_is_read(tmp_path: Path) -> None:
    raw = official_config_json(DeepSeekOCRConfig())
    for key in ("sam_config", "clip_config", "image_token_id"):
        raw.pop(key)
    config = DeepSeekOCRConfig.from_official_dict(raw)
    assert config.text.to_dict() == DeepSeekOCRConfig().text.to_dict()
    assert config.sam.to_dict() == DeepSeekOCRConfig().sam.to_dict()
    assert config.image_token_id == 128815
    with pytest.raises(CheckpointError, match="use_mla"):
        DeepSeekOCRConfig.from_official_dict({"language_config": {"use_mla": True}})


def test_tiny_checkpoint_round_trips(
    written: tuple[Path, dict[str, torch.Tensor]], tiny: DeepSeekOCRConfig
) -> None:
    directory, tensors = written
    model = DeepSeekOCR.from_pretrained(directory)
    assert not model.training
    assert all(not p.is_meta and p.dtype == torch.float32 for p in model.parameters())
    assert all(not b.is_meta for b in model.buffers())
    exported = model.official_state_dict()
    assert set(exported) == set(tensors)
    for key, tensor in tensors.items():
        assert torch.equal(exported[key], tensor), key
    # spot checks of each kind of table entry, against the written tensors directly
    inner = model.model
    layer = inner.language_model.layers[1].mlp
    rows = tiny.text.moe_intermediate_size
    assert torch.equal(
        layer.experts.gate_up_proj[3, :rows],
        tensors["model.layers.1.mlp.experts.3.gate_proj.weight"],
    )
    assert torch.equal(
        layer.experts.gate_up_proj[3, rows:], tensors["model.layers.1.mlp.experts.3.up_proj.weight"]
    )
    assert torch.equal(
        layer.experts.down_proj[2], tensors["model.layers.1.mlp.experts.2.down_proj.weight"]
    )
    attn = inner.vision_tower.clip_encoder.encoder.layers[1].self_attn
    qkv = tensors["model.vision_model.transformer.layers.1.self_attn.qkv_proj.bias"]
    assert torch.equal(torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias]), qkv)
    assert torch.equal(inner.view_separator, tensors["model.view_seperator"])
    compressor = inner.vision_tower.sam_encoder.compressor
    assert torch.equal(compressor.conv2.weight, tensors["model.sam_model.net_3.weight"])
    assert torch.equal(
        inner.vision_tower.clip_encoder.embeddings.position_ids, torch.arange(257)[None]
    )
    # the loaded model encodes and decodes
    image = tiny.image_token_id
    with torch.no_grad():
        tokens = model.encode_views(torch.rand(3, 512, 512) * 2 - 1)
        ids = torch.tensor([[0, *([image] * tokens.shape[0]), 5, 6]])
        out = model(ids, vision_embeds=[tokens])
    assert out.logits.shape == (1, ids.shape[1], tiny.text.vocab_size)
    assert torch.isfinite(out.logits).all()


def test_dtype_and_own_config(tmp_path: Path, tiny: DeepSeekOCRConfig) -> None:
    tensors = {k: v.to(torch.bfloat16) for k, v in random_checkpoint(tiny, seed=1).items()}
    directory = write_checkpoint(tmp_path / "bf16", tensors, tiny)
    tiny.save_pretrained(directory)  # our own config.json replaces the official-style one
    model = DeepSeekOCR.from_pretrained(directory)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    as_float = DeepSeekOCR.from_pretrained(directory, dtype=torch.float32, device="cpu")
    assert {p.dtype for p in as_float.parameters()} == {torch.float32}
    assert torch.equal(as_float.lm_head.weight, tensors["lm_head.weight"].float())
    with torch.no_grad():
        logits = model(torch.tensor([[0, 7, 8]])).logits
    assert logits.dtype == torch.float32


def test_sharded_checkpoint(tmp_path: Path, tiny: DeepSeekOCRConfig) -> None:
    tensors = random_checkpoint(tiny, seed=2)
    keys = sorted(tensors)
    halves = {"a.safetensors": keys[::2], "b.safetensors": keys[1::2]}
    tmp_path.joinpath("config.json").write_text(json.dumps(official_config_json(tiny)))
    for name, part in halves.items():
        save_file({k: tensors[k] for k in part}, str(tmp_path / name))
    weight_map = {k: name for name, part in halves.items() for k in part}
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    tmp_path.joinpath("model.safetensors.index.json").write_text(json.dumps(index))
    model = DeepSeekOCR.from_pretrained(tmp_path)
    assert torch.equal(
        model.official_state_dict()["model.norm.weight"], tensors["model.norm.weight"]
    )


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("model.layers.1.mlp.experts.2.up_proj.weight", "remove"),
        ("model.sam_model.blocks.1.attn.rel_pos_h", "reshape"),
        ("model.vision_model.post_layernorm.weight", "add"),
    ],
)
def test_bad_key_in_file_is_named(
    tmp_path: Path, tiny: DeepSeekOCRConfig, key: str, change: str
) -> None:
    tensors = random_checkpoint(tiny)
    if change == "remove":
        del tensors[key]
    elif change == "reshape":
        tensors[key] = torch.zeros(5, 16)
    else:
        tensors[key] = torch.zeros(32)
    write_checkpoint(tmp_path, tensors, tiny)
    with pytest.raises(CheckpointMismatchError, match=key.replace(".", r"\.")):
        DeepSeekOCR.from_pretrained(tmp_path)


def test_missing_directory_and_files(tmp_path: Path, tiny: DeepSeekOCRConfig) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        DeepSeekOCR.from_pretrained(tmp_path / "absent")
    with pytest.raises(CheckpointError, match=r"config\.json"):
        DeepSeekOCR.from_pretrained(tmp_path)
    tmp_path.joinpath("config.json").write_text(json.dumps(official_config_json(tiny)))
    with pytest.raises(CheckpointError, match="no weights"):
        DeepSeekOCR.from_pretrained(tmp_path)
    tmp_path.joinpath("config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        DeepSeekOCR.from_pretrained(tmp_path)


def test_corrupt_weights_file(tmp_path: Path, tiny: DeepSeekOCRConfig) -> None:
    write_checkpoint(tmp_path, random_checkpoint(tiny), tiny)
    weights = tmp_path / WEIGHTS
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage" + bytes(64))
    with pytest.raises(CheckpointError, match=WEIGHTS) as caught:
        DeepSeekOCR.from_pretrained(tmp_path)
    assert caught.value.__cause__ is not None
    # a valid header whose data was cut short
    save_file(random_checkpoint(tiny), str(weights))
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match=WEIGHTS):
        DeepSeekOCR.from_pretrained(tmp_path)


def test_hub_options_are_refused(written: tuple[Path, dict[str, torch.Tensor]]) -> None:
    with pytest.raises(TypeError, match="token"):
        DeepSeekOCR.from_pretrained(written[0], token="x")


def test_save_pretrained_round_trips(tmp_path: Path, tiny: DeepSeekOCRConfig) -> None:
    torch.manual_seed(3)
    model = DeepSeekOCR(tiny)
    model.save_pretrained(tmp_path)
    loaded = DeepSeekOCR.from_pretrained(tmp_path)
    saved, restored = model.state_dict(), loaded.state_dict()
    assert set(saved) == set(restored)
    for key, tensor in saved.items():
        assert torch.equal(restored[key], tensor), key


def mapped_ranges(file: Path) -> list[tuple[int, int]]:
    """Address ranges of this process mapping ``file`` (Linux's /proc/self/maps)."""
    ranges = []
    for line in Path("/proc/self/maps").read_text(encoding="utf-8").splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == str(file.resolve()):
            low, high = (int(side, 16) for side in fields[0].split("-"))
            ranges.append((low, high))
    return ranges


def in_ranges(tensor: torch.Tensor, ranges: list[tuple[int, int]]) -> bool:
    return any(low <= tensor.data_ptr() < high for low, high in ranges)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_only_unconverted_tensors_stay_mapped(
    tmp_path: Path, tiny: DeepSeekOCRConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packed experts and converted tensors own their memory; the rest are file views.

    A packed expert tensor filled from views kept the file's pages resident beside it,
    which put a full-size bf16 load at 9.7 GiB peak RSS.
    """
    tensors = {k: v.to(torch.bfloat16) for k, v in random_checkpoint(tiny, seed=4).items()}
    directory = write_checkpoint(tmp_path, tensors, tiny)
    weights = directory / WEIGHTS
    wanted: list[str] = []
    whole = SafetensorsFiles.tensor

    def spy(
        self: SafetensorsFiles, key: str, dtype: torch.dtype, device: torch.device | None
    ) -> torch.Tensor:
        wanted.append(key)
        return whole(self, key, dtype, device)

    monkeypatch.setattr(SafetensorsFiles, "tensor", spy)
    model = DeepSeekOCR.from_pretrained(directory)
    # experts and fused blocks are read into place, never fetched whole
    assert wanted and not [key for key in wanted if ".experts." in key or "qkv_proj" in key]
    ranges = mapped_ranges(weights)
    assert ranges
    experts = model.model.language_model.layers[1].mlp.experts
    assert not in_ranges(experts.gate_up_proj, ranges)
    assert not in_ranges(experts.down_proj, ranges)
    attn = model.model.vision_tower.clip_encoder.encoder.layers[0].self_attn
    assert not in_ranges(attn.q_proj.weight, ranges)  # a row block of the fused qkv
    assert in_ranges(model.lm_head.weight, ranges)
    assert torch.equal(model.lm_head.weight, tensors["lm_head.weight"])
    # views own per-tensor storages, so the loaded model saves and reloads
    model.save_pretrained(tmp_path / "saved")
    again = DeepSeekOCR.from_pretrained(tmp_path / "saved")
    assert torch.equal(
        again.model.language_model.layers[1].mlp.experts.down_proj, experts.down_proj
    )
    del model, experts, attn, again
    as_float = DeepSeekOCR.from_pretrained(directory, dtype=torch.float32)
    # every tensor was cast, so the file was never mapped at all
    assert as_float.lm_head.weight.dtype == torch.float32
    assert not mapped_ranges(weights)


def header_bytes(header: object, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "too short"),
        (struct.pack("<Q", 1 << 40) + b"{}", "exceeds the file"),
        (
            header_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(4)),
            "4",
        ),
        (
            header_bytes({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
            "shape",
        ),
        (
            header_bytes({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
            "Q4",
        ),
        (
            header_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)),
            "contiguous",
        ),
        (header_bytes({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)), "data_offsets"),
        (header_bytes([], b""), "JSON object"),
    ],
)
def test_bad_header_is_a_checkpoint_error(tmp_path: Path, content: bytes, message: str) -> None:
    file = tmp_path / "bad.safetensors"
    file.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as caught:
        SafetensorsFiles([file])
    assert str(file) in str(caught.value)


def test_file_cut_after_opening(tmp_path: Path) -> None:
    file = tmp_path / "cut.safetensors"
    save_file({"a": torch.arange(64, dtype=torch.float32).reshape(8, 8)}, str(file))
    with SafetensorsFiles([file]) as weights:
        with file.open("r+b") as handle:
            handle.truncate(file.stat().st_size - 16)
        with pytest.raises(CheckpointError, match=r"cut\.safetensors: cannot read tensor a"):
            weights.tensor("a", torch.float64, None)


def test_read_into_rows_and_casts(tmp_path: Path) -> None:
    file = tmp_path / "rows.safetensors"
    source = torch.arange(24, dtype=torch.float32).reshape(6, 4).to(torch.bfloat16)
    save_file({"a": source, "b": torch.ones(3, dtype=torch.bfloat16)}, str(file))
    with SafetensorsFiles([file]) as weights:
        assert weights.float_dtype == torch.bfloat16
        assert weights.shapes == {"a": (6, 4), "b": (3,)}
        block = torch.empty(2, 4, dtype=torch.bfloat16)
        weights.read_into("a", block, 3)
        assert torch.equal(block, source[3:5])
        as_float = torch.empty(3, 4, dtype=torch.float32)
        weights.read_into("a", as_float, 3)
        assert torch.equal(as_float, source[3:].float())
        with pytest.raises(ValueError, match="exceed"):
            weights.read_into("a", block, 5)
        assert torch.equal(weights.tensor("a", torch.float32, None), source.float())


def test_key_in_two_shards(tmp_path: Path) -> None:
    for name in ("x.safetensors", "y.safetensors"):
        save_file({"a": torch.zeros(2)}, str(tmp_path / name))
    with pytest.raises(CheckpointError, match="a appears in both"):
        SafetensorsFiles([tmp_path / "x.safetensors", tmp_path / "y.safetensors"])
