"""``DeepseekOcrKVCache`` holds exactly what transformers' ``DynamicCache`` holds."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig
from optical_memory.model.generation_deepseek_ocr import DeepseekOcrKVCache


def _states(batch: int, rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    keys = torch.randn(batch, 2, rows, 4, generator=generator).bfloat16()
    return keys, -keys


def test_appends_equal_concatenation_across_growth_selection_and_crop() -> None:
    ours, theirs = DeepseekOcrKVCache(), DynamicCache()
    # 300 + 1-row steps crosses the first growth (300 + 256 rows); then rows leave, the
    # cache is cropped and grows again.
    chunks = [300, *[1] * 300, 7]
    batch = 3
    for step, rows in enumerate(chunks):
        keys, values = _states(batch, rows, step)
        got = ours.update(keys, values, 0)
        want = theirs.update(keys, values, 0)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        if step == 5:
            pages = torch.tensor([0, 2])
            ours.batch_select_indices(pages)
            theirs.batch_select_indices(pages)
            batch = 2
        if step == 10:
            ours.crop(-4)
            theirs.crop(-4)
    assert ours.get_seq_length() == theirs.get_seq_length() == 300 + 300 + 7 - 4
    layer = ours.layers[0]
    assert layer.keys.data_ptr() == layer._key_buffer.data_ptr()  # type: ignore[attr-defined]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_greedy_decoding_is_identical_to_dynamic_cache(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = DeepSeekOCR(DeepSeekOCRConfig.tiny()).to(dtype).eval()
    ids = torch.randint(3, 100, (1, 40), generator=torch.Generator().manual_seed(1))

    def greedy(cache: DynamicCache) -> tuple[list[int], torch.Tensor]:
        with torch.inference_mode():
            out = model(ids, past_key_values=cache, logits_to_keep=1)
            chosen, logits = [], [out.logits[:, -1]]
            for _ in range(24):
                token = out.logits[:, -1].argmax(-1, keepdim=True)
                chosen.append(int(token))
                out = model(token, past_key_values=out.past_key_values, logits_to_keep=1)
                logits.append(out.logits[:, -1])
        return chosen, torch.cat(logits)

    ours_ids, ours_logits = greedy(DeepseekOcrKVCache())
    theirs_ids, theirs_logits = greedy(DynamicCache())
    assert ours_ids == theirs_ids
    torch.testing.assert_close(ours_logits, theirs_logits, rtol=0, atol=0)


def test_forward_makes_one_when_none_is_given() -> None:
    model = DeepSeekOCR(DeepSeekOCRConfig.tiny()).eval()
    with torch.inference_mode():
        out = model(torch.tensor([[0, 5, 6]]), logits_to_keep=1)
    assert isinstance(out.past_key_values, DeepseekOcrKVCache)
