"""Text-born pages get DeepSeek-OCR vision tokens, stored beside each page (a tiny random
checkpoint on disk: the real encoder, not a stand-in)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from optical_memory.documents import ingest
from optical_memory.model import DeepSeekOCRConfig
from optical_memory.records import VisionTokens
from optical_memory.store import open_store
from optical_memory.store.codec import decode
from optical_memory.vision_encoder import DeepSeekOCREncoder
from tests.unit_tests.model.tiny_ocr import OCRModel
from tests.unit_tests.model.tiny_tokenizer import write_tiny_tokenizer


def test_every_page_gets_its_vision_tokens(tmp_path: Path, sqlite_url: str) -> None:
    torch.manual_seed(0)
    model = OCRModel(DeepSeekOCRConfig.tiny()).eval()
    model.save_pretrained(tmp_path / "ckpt")
    write_tiny_tokenizer(tmp_path / "ckpt", model.config.image_token_id)
    encoder = DeepSeekOCREncoder(tmp_path / "ckpt", mode="small")
    text = "Vision tokens are cached for every page of a text-born document. " * 60

    summary = ingest([("notes.txt", text.encode())], store=sqlite_url, encoder=encoder)

    assert len(summary.pages) >= 1 and summary.failures == []
    store = open_store(sqlite_url)
    try:
        keys = [page.vision_tokens for page in summary.pages]
        assert all(key is not None and key.endswith(f"tokens/{n:06d}")
                   for n, key in enumerate(keys, start=1))  # fmt: skip
        values = store.get_blobs([key for key in keys if key is not None])
    finally:
        store.close()
    for key, value in zip(keys, values, strict=True):
        assert value is not None
        tokens = decode(VisionTokens, str(key), value)
        assert tokens.model_fingerprint == encoder.fingerprint
        assert tokens.shape[0] > 0
