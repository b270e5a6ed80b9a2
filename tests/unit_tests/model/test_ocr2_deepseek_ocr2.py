"""DeepSeek-OCR-2 through transformers' native classes: a tiny random checkpoint on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from transformers.models.deepseek_ocr2 import (
    DeepseekOcr2Config,
    DeepseekOcr2ForConditionalGeneration,
)

from optical_memory.errors import CheckpointError, InvalidSettingError
from optical_memory.model.deepseek_ocr2 import DeepSeekOCR2

from .tiny_tokenizer import write_tiny_tokenizer

IMAGE_ID = 1000
PROMPT = "<image>\nFree OCR."


def tiny_ocr2_config() -> DeepseekOcr2Config:
    """SAM keeps patch 16 and its 64x64 grid, so 1024/768 views give 256/144 queries."""
    return DeepseekOcr2Config(
        vision_config={
            "sam_config": {
                "hidden_size": 32,
                "output_channels": 16,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "global_attn_indexes": [1],
                "downsample_channels": [24, 32],
                "mlp_dim": 64,
            },
            "encoder_config": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "num_key_value_heads": 2,
            },
        },
        text_config={
            "vocab_size": 1024,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "n_routed_experts": 4,
            "num_experts_per_tok": 2,
            "n_shared_experts": 1,
            "moe_intermediate_size": 16,
            "mlp_layer_types": ["dense", "sparse"],
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 2,
        },
        image_token_id=IMAGE_ID,
    )


def save_tiny_ocr2(directory: Path, seed: int = 0) -> Path:
    """Save a tiny random DeepSeek-OCR-2 checkpoint with a tokenizer into ``directory``."""
    torch.manual_seed(seed)
    DeepseekOcr2ForConditionalGeneration(tiny_ocr2_config()).save_pretrained(directory)
    write_tiny_tokenizer(directory, IMAGE_ID)
    return directory


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ocr2(tmp_path_factory.mktemp("ocr2"))


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> DeepSeekOCR2:
    return DeepSeekOCR2.from_pretrained(checkpoint, device="cpu", dtype=torch.float32)


def _page(text: str, size: tuple[int, int] = (300, 200)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((10, 10), text, fill="black")
    return image


def test_loads_locally_with_the_checkpoint_special_ids(model: DeepSeekOCR2) -> None:
    ids = model.processor.special_ids
    assert (ids.bos, ids.eos, ids.pad, ids.image) == (0, 1, 2, IMAGE_ID)
    assert not model.model.training
    assert next(model.model.parameters()).dtype == torch.float32


def test_modes_give_query_counts_plus_separator(model: DeepSeekOCR2) -> None:
    small, base = model.encode([_page("a")], "small"), model.encode([_page("a")], "base")
    assert small[0].tokens.shape == (144 + 1, 64)
    assert base[0].tokens.shape == (256 + 1, 64)
    [wide] = model.encode([_page("wide", (1000, 500))], "gundam")
    assert wide.tokens.shape == (256 + 2 * 144 + 1, 64)
    with pytest.raises(InvalidSettingError, match="unknown DeepSeek-OCR-2 mode"):
        model.encode([_page("a")], "tiny")


def test_slot_filling_matches_transformers_own_forward(model: DeepSeekOCR2) -> None:
    page = _page("same logits")
    batch = model.image_processor(
        [page], crop_to_patches=False, tile_size=1024, return_tensors="pt"
    )
    ids = torch.tensor([model.processor.prompt_ids(PROMPT, [257])])
    with torch.no_grad():
        theirs = model.model(
            input_ids=ids,
            pixel_values=batch["pixel_values"],
            num_local_patches=batch["num_local_patches"],
        ).logits[0, -1]
        [encoded] = model.encode([page], "base")
        ours, _ = model._decoder_forward(
            ids, [encoded.tokens], None, torch.arange(ids.shape[1])[None], None
        )
    torch.testing.assert_close(ours[0], theirs.float())


def test_generation_cached_tokens_streaming_and_batches(model: DeepSeekOCR2) -> None:
    pages = [_page("one"), _page("two, longer", (260, 120))]
    result = model.generate(PROMPT, images=pages[:1], mode="small", max_new_tokens=8)
    assert len(result.token_ids) == 8
    [encoded] = model.encode(pages[:1], "small")
    assert model.generate(PROMPT, vision_tokens=[encoded.tokens], max_new_tokens=8) == result
    chunks = list(
        model.generate(PROMPT, images=pages[:1], mode="small", max_new_tokens=8, stream=True)
    )
    assert [chunk.token_id for chunk in chunks] == result.token_ids
    prompts = [PROMPT, "Please read <image>\nFree OCR."]
    batch = model.generate_batch(
        prompts, [[page] for page in pages], mode="small", max_new_tokens=8
    )
    assert batch[0] == result
    assert batch[1] == model.generate(prompts[1], images=pages[1:], mode="small", max_new_tokens=8)
    assert model.ocr(pages[0], "small", max_new_tokens=8) == result.text.strip()


def test_missing_files_are_checkpoint_errors(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        DeepSeekOCR2.from_pretrained(tmp_path)
    partial = tmp_path / "no-tokenizer"
    shutil.copytree(checkpoint, partial)
    (partial / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match=r"no tokenizer\.json"):
        DeepSeekOCR2.from_pretrained(partial)
    (partial / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="cannot load DeepSeek-OCR-2"):
        DeepSeekOCR2.from_pretrained(partial)
