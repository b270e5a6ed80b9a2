"""The core's DeepSeek-OCR decoder and vision encoder over the tiny models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from optical_memory.decoders import Decoder, get_decoder
from optical_memory.decoders.deepseek_ocr import DeepSeekOCRDecoder
from optical_memory.errors import CheckpointMismatchError, InvalidImageError
from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig
from optical_memory.model.deepseek_ocr2 import DeepSeekOCR2
from optical_memory.model.generation_deepseek_ocr import DeepSeekOCRGenerationMixin
from optical_memory.model.processing_deepseek_ocr import DeepSeekOCRProcessor
from optical_memory.records import VisionTokens
from optical_memory.vision_encoder import (
    DeepSeekOCREncoder,
    Encoder,
    model_fingerprint,
    tokens_from_tensor,
    tokens_to_tensor,
)

from .test_ocr2_deepseek_ocr2 import save_tiny_ocr2
from .tiny_ocr import OCRModel
from .tiny_tokenizer import write_tiny_tokenizer

_Model = OCRModel


def _tiny(seed: int, tokenizer_dir: Path) -> _Model:
    torch.manual_seed(seed)
    model = _Model(DeepSeekOCRConfig.tiny()).eval()
    model.set_processor(
        DeepSeekOCRProcessor.from_pretrained(tokenizer_dir, None, model._special_ids())
    )
    return model


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tokenizer")
    write_tiny_tokenizer(directory, 1000)
    return directory


@pytest.fixture(scope="module")
def model(tokenizer_dir: Path) -> _Model:
    return _tiny(0, tokenizer_dir)


@pytest.fixture(scope="module")
def pages() -> list[Image.Image]:
    images = []
    for text in ("first page", "second"):
        image = Image.new("RGB", (220, 100), "white")
        ImageDraw.Draw(image).text((6, 6), text, fill="black")
        images.append(image)
    return images


def test_encoder_makes_vision_token_records(model: _Model, pages: list[Image.Image]) -> None:
    encoder = DeepSeekOCREncoder(model, mode="tiny")
    assert isinstance(encoder, Encoder)
    records = encoder.encode(pages)
    assert [record.shape for record in records] == [(73, 64), (73, 64)]
    assert {record.dtype for record in records} == {"float32"}
    assert {record.mode for record in records} == {"tiny"}
    assert records[0].model_fingerprint == encoder.fingerprint
    assert encoder.fingerprint.startswith("deepseek-ocr:")
    expected = model.encode(pages[:1], "tiny")[0].tokens
    assert torch.equal(tokens_to_tensor(records[0], encoder.fingerprint), expected)
    with pytest.raises(InvalidImageError):
        encoder.encode([b"not a png"])


def test_fingerprint_follows_the_weights(model: _Model, tokenizer_dir: Path) -> None:
    assert model_fingerprint(model) == model_fingerprint(_tiny(0, tokenizer_dir))
    assert model_fingerprint(model) != model_fingerprint(_tiny(1, tokenizer_dir))


def test_bfloat16_tokens_round_trip_exactly() -> None:
    tensor = torch.randn(111, 64).to(torch.bfloat16)
    record = tokens_from_tensor(tensor, "deepseek-ocr:test", "small")
    assert (record.dtype, record.shape, len(record.data)) == ("bfloat16", (111, 64), 111 * 64 * 2)
    back = tokens_to_tensor(VisionTokens.from_header(record.to_header(), record.data))
    assert back.dtype == torch.bfloat16 and torch.equal(back, tensor)
    assert torch.equal(torch.from_numpy(record.to_numpy()), tensor.float())
    half = tokens_from_tensor(torch.randn(4, 8, dtype=torch.float64), "x:y")
    assert half.dtype == "float32"


def test_decoder_reads_pages_and_cached_tokens_alike(
    model: _Model, pages: list[Image.Image]
) -> None:
    decoder = get_decoder("deepseek-ocr", model=model, mode="tiny", max_new_tokens=6, batch_size=2)
    assert isinstance(decoder, DeepSeekOCRDecoder) and isinstance(decoder, Decoder)
    texts = decoder.decode(pages)
    assert texts == model.ocr_batch(pages, "tiny", max_new_tokens=6)
    records = decoder.encoder.encode(pages)
    assert decoder.decode_tokens(records) == texts


def test_tokens_of_another_model_are_refused(
    model: _Model, pages: list[Image.Image], tokenizer_dir: Path
) -> None:
    other = DeepSeekOCREncoder(_tiny(1, tokenizer_dir), mode="tiny").encode(pages[:1])
    decoder = DeepSeekOCRDecoder(model, mode="tiny", max_new_tokens=2)
    with pytest.raises(CheckpointMismatchError, match="encode the page again"):
        decoder.decode_tokens(other)


def test_a_checkpoint_directory_loads_on_first_use(
    tmp_path: Path, pages: list[Image.Image]
) -> None:
    directory = save_tiny_ocr2(tmp_path / "ocr2")
    with DeepSeekOCRDecoder(directory, mode="base", dtype="float32", max_new_tokens=4) as decoder:
        assert decoder.encoder._model is None  # nothing loaded yet
        [text] = decoder.decode(pages[:1])
        assert isinstance(text, str)
        assert isinstance(decoder.model, DeepSeekOCR2)
        fingerprint = decoder.encoder.fingerprint
    assert fingerprint.startswith("deepseek-ocr-2:")
    # The fingerprint comes from the files: a copy of the checkpoint shares it.
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    assert DeepSeekOCREncoder(copy, mode="base").fingerprint == fingerprint
    other = save_tiny_ocr2(tmp_path / "other", seed=1)
    assert DeepSeekOCREncoder(other, mode="base").fingerprint != fingerprint


def test_a_deepseek_ocr_checkpoint_directory_loads(
    tmp_path: Path, model: _Model, pages: list[Image.Image], tokenizer_dir: Path
) -> None:
    if not issubclass(DeepSeekOCR, DeepSeekOCRGenerationMixin):
        pytest.skip("DeepSeekOCR is not wired with DeepSeekOCRGenerationMixin yet")
    model.config.save_pretrained(tmp_path)
    save_file(model.official_state_dict(), tmp_path / "model.safetensors")
    shutil.copy(tokenizer_dir / "tokenizer.json", tmp_path / "tokenizer.json")
    decoder = DeepSeekOCRDecoder(tmp_path, mode="tiny", max_new_tokens=5)
    assert decoder.decode(pages[:1]) == model.ocr_batch(pages[:1], "tiny", max_new_tokens=5)
    fingerprint = decoder.encoder.fingerprint
    assert fingerprint.startswith("deepseek-ocr:")
    assert DeepSeekOCREncoder(tmp_path, mode="tiny").fingerprint == fingerprint
