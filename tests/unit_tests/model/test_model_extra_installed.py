"""The model tests run only with the ``model`` extra; say so when it is missing."""

from __future__ import annotations

from tests.conftest import missing_component

from .conftest import MODEL_EXTRA


def test_model_extra_installed() -> None:
    if not MODEL_EXTRA:
        missing_component("torch, transformers and safetensors (the model extra) are not installed")
    import torch
    from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import DeepseekOcr2TextModel

    # The decoder is transformers' deepseek_ocr2 text model: an older transformers lacks it.
    assert issubclass(DeepseekOcr2TextModel, torch.nn.Module)
