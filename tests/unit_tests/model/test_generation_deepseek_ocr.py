"""Greedy decoding, the n-gram rule, streaming and batches, end to end on the tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from optical_memory.errors import InvalidSettingError
from optical_memory.model import DeepSeekOCRConfig
from optical_memory.model.generation_deepseek_ocr import (
    NoRepeatNGram,
    NoRepeatNGramLogitsProcessor,
)
from optical_memory.model.processing_deepseek_ocr import DeepSeekOCRProcessor

from .tiny_ocr import OCRModel
from .tiny_tokenizer import write_tiny_tokenizer

PROMPT = "<image>\nFree OCR."


_Model = OCRModel


def _page(text: str, size: tuple[int, int] = (200, 120)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((8, 8), text, fill="black")
    return image


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Model]:
    torch.manual_seed(0)
    tiny = _Model(DeepSeekOCRConfig.tiny()).eval()
    directory = tmp_path_factory.mktemp("tokenizer")
    write_tiny_tokenizer(directory, tiny.config.image_token_id)
    tiny.set_processor(DeepSeekOCRProcessor.from_pretrained(directory, None, tiny._special_ids()))
    yield tiny


@pytest.fixture(scope="module")
def pages() -> list[Image.Image]:
    return [_page("hello"), _page("a longer second page", (260, 90)), _page("3")]


# --- the n-gram rule alone ---------------------------------------------------------------


def test_rule_bans_the_token_that_would_repeat_an_ngram() -> None:
    rule = NoRepeatNGram(ngram_size=3, window_size=90, whitelist_token_ids=())
    assert rule.banned([1, 2]) == set()
    assert rule.banned([1, 2, 3, 1, 2]) == {3}
    assert rule.banned([1, 2, 3, 1, 2, 4, 1, 2]) == {3, 4}
    assert rule.banned([1, 2, 3, 2, 1]) == set()


def test_rule_only_looks_at_ngrams_starting_in_the_window() -> None:
    ids = [1, 2, 3, 1, 2]
    assert NoRepeatNGram(3, 5, ()).banned(ids) == {3}  # start 0 is in the last 5 positions
    assert NoRepeatNGram(3, 4, ()).banned(ids) == set()


def test_rule_never_bans_whitelisted_ids() -> None:
    ids = [7, 8, 9, 7, 8]
    assert NoRepeatNGram(3, 90, (9,)).banned(ids) == set()
    assert NoRepeatNGram(3, 90).whitelist_token_ids == (128821, 128822)
    with pytest.raises(InvalidSettingError):
        NoRepeatNGram(0, 90)


def test_unigram_rule_bans_everything_in_the_window() -> None:
    assert NoRepeatNGram(1, 2, ()).banned([5, 6, 7]) == {6, 7}


def test_logits_processor_ignores_the_prompt() -> None:
    processor = NoRepeatNGramLogitsProcessor(NoRepeatNGram(3, 90, ()), prompt_length=3)
    scores = torch.zeros(2, 10)
    ids = torch.tensor([[1, 2, 3, 1, 2], [4, 5, 6, 4, 5]])  # repeats only across the prompt
    assert torch.equal(processor(ids, scores), scores)
    ids = torch.tensor([[0, 0, 0, 1, 2, 3, 1, 2], [0, 0, 0, 4, 5, 6, 7, 8]])
    out = processor(ids, torch.zeros(2, 10))
    assert out[0, 3] == float("-inf") and torch.isfinite(out[0, :3]).all()
    assert torch.isfinite(out[1]).all()


# --- end to end on the tiny model ----------------------------------------------------------


def test_greedy_with_cache_equals_recomputing_the_whole_sequence(
    model: _Model, pages: list[Image.Image]
) -> None:
    [encoded] = model.encode(pages[:1], "tiny")
    assert encoded.tokens.shape == (73, 64)
    result = model.generate(PROMPT, vision_tokens=[encoded.tokens], max_new_tokens=12)
    again = model.generate(PROMPT, vision_tokens=[encoded.tokens], max_new_tokens=12)
    assert result == again
    assert len(result.token_ids) == 12 and result.finish_reason == "length"
    ids = model._ocr_processor().prompt_ids(PROMPT, [73])
    with torch.no_grad():
        for _ in range(12):
            logits = model(torch.tensor([ids]), vision_embeds=[encoded.tokens]).logits
            ids.append(int(logits[0, -1].argmax()))
    assert ids[-12:] == result.token_ids


def test_streaming_yields_the_same_ids_and_text(model: _Model, pages: list[Image.Image]) -> None:
    result = model.generate(PROMPT, images=pages[:1], mode="tiny", max_new_tokens=15)
    chunks = list(
        model.generate(PROMPT, images=pages[:1], mode="tiny", max_new_tokens=15, stream=True)
    )
    assert [chunk.token_id for chunk in chunks] == result.token_ids
    assert "".join(chunk.text for chunk in chunks) == result.text


def test_a_stream_does_not_change_the_callers_grad_mode(model: _Model) -> None:
    stream = model.generate("Hello", max_new_tokens=5, stream=True)
    next(stream)
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    assert len(list(stream)) == 4


def test_cached_vision_tokens_give_the_same_output_as_images(
    model: _Model, pages: list[Image.Image]
) -> None:
    encoded = model.encode(pages[:2], "small")
    assert [item.tokens.shape[0] for item in encoded] == [111, 111]
    from_images = model.generate(
        "<image> and <image>", images=pages[:2], mode="small", max_new_tokens=10
    )
    from_tokens = model.generate(
        "<image> and <image>", vision_tokens=[item.tokens for item in encoded], max_new_tokens=10
    )
    assert from_images == from_tokens


def test_batch_equals_one_by_one_when_pages_finish_at_different_steps(
    model: _Model, pages: list[Image.Image], tmp_path: Path
) -> None:
    prompts = [PROMPT, "Read this: <image>\nFree OCR, please.", "<image>"]
    images = [[page] for page in pages]
    first = [
        model.generate(p, images=i, mode="tiny", max_new_tokens=30)
        for p, i in zip(prompts[:2], images[:2], strict=True)
    ]
    # Make a token of page 0 (absent from page 1's output) the end of sequence, so page 0
    # stops early and leaves the batch while the others go on.
    stop = next(t for t in first[0].token_ids[3:] if t not in first[1].token_ids)
    original = model._ocr_processor()
    model.set_processor(
        DeepSeekOCRProcessor(
            original.tokenizer, original.image_processor, replace(original.special_ids, eos=stop)
        )
    )
    try:
        batch = model.generate_batch(prompts, images, mode="tiny", max_new_tokens=30)
        alone = [
            model.generate(p, images=i, mode="tiny", max_new_tokens=30)
            for p, i in zip(prompts, images, strict=True)
        ]
    finally:
        model.set_processor(original)
    assert batch == alone
    assert batch[0].finish_reason == "eos" and stop not in batch[0].token_ids
    assert batch[1].finish_reason == "length" and len(batch[1].token_ids) == 30


def test_no_repeat_rule_blocks_a_repeat_that_plain_greedy_makes(model: _Model) -> None:
    rule = NoRepeatNGram(ngram_size=3, window_size=90, whitelist_token_ids=())
    plain = model.generate("Hello world", max_new_tokens=120, no_repeat=None).token_ids
    repeats = [t for t in range(len(plain)) if plain[t] in rule.banned(plain[:t])]
    assert repeats, "the tiny model should fall into a loop without the rule"
    step = repeats[0]
    ruled = model.generate("Hello world", max_new_tokens=120, no_repeat=rule).token_ids
    assert ruled[:step] == plain[:step]
    assert ruled[step] != plain[step]
    assert all(ruled[t] not in rule.banned(ruled[:t]) for t in range(len(ruled)))
    # Whitelisting the banned id lets the repeat through again.
    allowed = replace(rule, whitelist_token_ids=(plain[step],))
    relaxed = model.generate("Hello world", max_new_tokens=step + 1, no_repeat=allowed).token_ids
    assert relaxed == plain[: step + 1]


def test_ocr_and_ocr_batch(model: _Model, pages: list[Image.Image]) -> None:
    texts = model.ocr_batch(pages, mode="tiny", batch_size=2, max_new_tokens=6)
    assert texts == [model.ocr(page, "tiny", max_new_tokens=6) for page in pages]
    result = model.generate(PROMPT, images=pages[:1], mode="tiny", max_new_tokens=6)
    assert texts[0] == result.text.strip()


def test_gundam_pages_decode(model: _Model) -> None:
    [encoded] = model.encode([_page("wide", (1300, 700))], "gundam")
    assert encoded.layout is not None and encoded.layout.tile_grid == (2, 1)
    assert encoded.tokens.shape[0] == encoded.layout.num_slots == 273 + 21 * 10
    assert (
        len(model.generate(PROMPT, vision_tokens=[encoded.tokens], max_new_tokens=3).token_ids) == 3
    )


def test_caller_mistakes_are_value_errors(model: _Model, pages: list[Image.Image]) -> None:
    tokens = torch.zeros(73, 64)
    with pytest.raises(InvalidSettingError, match="not both"):
        model.generate(PROMPT, images=pages[:1], vision_tokens=[tokens])
    with pytest.raises(ValueError, match="1 <image> markers but 2 images"):
        model.generate(PROMPT, vision_tokens=[tokens, tokens])
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(PROMPT, vision_tokens=[tokens], max_new_tokens=0)
    with pytest.raises(ValueError, match="slots, hidden"):
        model.generate(PROMPT, vision_tokens=[torch.zeros(73)])
    with pytest.raises(ValueError, match="2 prompts but 1 image lists"):
        model.generate_batch([PROMPT, PROMPT], images=[pages[:1]])
    with pytest.raises(ValueError, match="unknown DeepSeek-OCR mode"):
        model.encode(pages[:1], "huge")


def test_empty_batches_generate_nothing(model: _Model) -> None:
    assert model.generate_batch([]) == []
    assert model.ocr_batch([]) == []
