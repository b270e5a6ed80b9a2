"""DeepSeek-OCR end to end over the memory (issue 10, item 4): a tiny random checkpoint on
disk, a real SQLite file; vision tokens cached per page, prompts the model answers from."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

import torch

from optical_memory import AsyncOpticalMemory, OpticalMemory
from optical_memory.decoders.base import ImageInput
from optical_memory.decoders.deepseek_ocr import DeepSeekOCRDecoder
from optical_memory.deepseek_context import NoVisionTokens
from optical_memory.messages import turn_text
from optical_memory.model import DeepSeekOCRConfig
from optical_memory.model.processing_deepseek_ocr import DeepSeekOCRProcessor
from optical_memory.records import Segment, VisionTokens
from optical_memory.vision_encoder import DeepSeekOCREncoder
from tests.unit_tests.model.tiny_ocr import OCRModel
from tests.unit_tests.model.tiny_tokenizer import write_tiny_tokenizer

from .conftest import SMALL
from .conversation import conversation

# The memory tests' small segments and short tail; pages stay Small unless a test fades them.
POLICY = replace(SMALL, facts_per_segment=2, ladder=((0, "small"),))
FADING = replace(POLICY, ladder=((0, "small"), (10, "tiny")))
MESSAGES = conversation(150)


def grow(memory: OpticalMemory, until: Callable[[list[Segment]], bool]) -> list[dict[str, Any]]:
    """Add the conversation's next turns one by one until the thread's segments satisfy
    ``until``; returns every message added so far."""
    for message in MESSAGES[memory.store.count_turns("chat") :]:
        memory.add("chat", [message])
        if until(memory.store.list_segments("chat")):
            return MESSAGES[: memory.store.count_turns("chat")]
    raise AssertionError("the conversation ran out first")


def segments(count: int) -> Callable[[list[Segment]], bool]:
    return lambda found: len(found) >= count


class CountingEncoder(DeepSeekOCREncoder):
    """The real encoder, recording each ``encode`` call's mode and page count.

    The list is shared with the copies the memory makes to read a page in another mode.
    """

    def __init__(self, model: Any, **options: Any) -> None:
        super().__init__(model, **options)
        self.calls: list[tuple[str, int]] = []

    def encode(self, images: Sequence[ImageInput]) -> list[VisionTokens]:
        self.calls.append((self.mode, len(images)))
        return super().encode(images)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random DeepSeek-OCR checkpoint: config, safetensors weights, tokenizer."""
    directory = tmp_path_factory.mktemp("tiny-deepseek-ocr")
    torch.manual_seed(0)
    model = OCRModel(DeepSeekOCRConfig.tiny()).eval()
    model.save_pretrained(directory)
    write_tiny_tokenizer(directory, model.config.image_token_id)
    return directory


@pytest.fixture(scope="module")
def loaded(checkpoint: Path) -> DeepSeekOCREncoder:
    """The checkpoint loaded once; the encoders below share its model."""
    encoder = DeepSeekOCREncoder(checkpoint, mode="small")
    assert encoder.fingerprint.startswith("deepseek-ocr:")
    return encoder


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tiny matrices run faster on one thread, and eager decode steps spare a compile (the
    kernels' own tests cover the compiled path)."""
    monkeypatch.setenv("OPTICAL_MEMORY_COMPILED_DECODE", "0")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def encoder(loaded: DeepSeekOCREncoder) -> CountingEncoder:
    return CountingEncoder(loaded.model, mode="small")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'memory.db'}"


@pytest.fixture
def memory(url: str, encoder: CountingEncoder) -> Iterator[OpticalMemory]:
    with OpticalMemory(url, policy=POLICY, encoder=encoder, readers=("deepseek-ocr",)) as memory:
        yield memory


@pytest.fixture
def fading(url: str, encoder: CountingEncoder) -> Iterator[OpticalMemory]:
    with OpticalMemory(url, policy=FADING, encoder=encoder, readers=("deepseek-ocr",)) as memory:
        yield memory


def test_context_serves_vision_tokens_from_the_cache(
    memory: OpticalMemory, encoder: CountingEncoder
) -> None:
    grow(memory, segments(3))
    context = memory.context("chat", reader="deepseek-ocr")
    pages = context.pages
    assert len(pages) >= 2
    # every miss read in one call, each page in Small (640 px), as the reader bills it
    assert encoder.calls == [("small", len(pages))]
    for page in pages:
        tokens = page.vision_tokens
        assert tokens is not None
        assert (tokens.shape, tokens.mode) == ((111, 64), "small")
        assert tokens.model_fingerprint == encoder.fingerprint
        assert memory.store.get_vision_tokens("chat", page.page_id, encoder.fingerprint) == tokens
    again = memory.context("chat", reader="deepseek-ocr")
    assert encoder.calls == [("small", len(pages))]  # all hits
    assert [p.vision_tokens for p in again.pages] == [p.vision_tokens for p in pages]


def test_the_model_answers_from_the_prompt_and_cached_tokens(
    memory: OpticalMemory, encoder: CountingEncoder
) -> None:
    # the last turn names the marker itself: only pages may take image slots
    messages = [*grow(memory, segments(2)), {"role": "user", "content": "Is <image> a tag?"}]
    memory.add("chat", messages[-1:])
    context = memory.context("chat", reader="deepseek-ocr")
    prompt = context.to_deepseek(instruction="assistant:")
    assert prompt.prompt.count("<image>") == len(prompt.vision_tokens) == len(context.pages)
    assert prompt.page_ids == tuple(page.page_id for page in context.pages)
    for page in context.pages:
        assert f"{page.label}\n<image>" in prompt.prompt
    assert context.facts in prompt.prompt
    tail = "\n".join(f"{turn.role}: {turn_text(turn)}" for turn in context.turns)
    assert [turn.message for turn in context.turns] == messages[-len(context.turns) :]
    assert prompt.prompt.endswith(tail.replace("<image>", "<\u200bimage>") + "\nassistant:")
    model = encoder.model
    result = model.generate(prompt.prompt, vision_tokens=prompt.tensors(), max_new_tokens=4)
    assert 1 <= len(result.token_ids) <= 4
    # the cached tokens are exactly what the pages encode to: the same answer from the PNGs
    images = [page.image for page in context.pages]
    direct = model.generate(prompt.prompt, images=images, mode="small", max_new_tokens=4)
    assert direct.token_ids == result.token_ids
    assert prompt.generate(encoder, max_new_tokens=4).token_ids == result.token_ids


def test_a_decayed_page_gets_new_tokens_in_its_smaller_mode(
    fading: OpticalMemory, encoder: CountingEncoder
) -> None:
    memory = fading
    grow(memory, segments(1))
    first = memory.context("chat", reader="deepseek-ocr").pages[0]
    assert first.tier == "small" and first.vision_tokens is not None
    # it ages past 10 turns
    grow(memory, lambda found: any(s.id == first.segment_id and s.tier == "tiny" for s in found))
    encoder.calls.clear()
    later = memory.context("chat", reader="deepseek-ocr")
    decayed = next(p for p in later.pages if p.segment_id == first.segment_id)
    assert decayed.tier == "tiny" and decayed.page_id != first.page_id
    # the replaced page's tokens went with it; the new page was read in Tiny (512 px)
    assert memory.store.get_vision_tokens("chat", first.page_id, encoder.fingerprint) is None
    assert decayed.vision_tokens is not None
    assert (decayed.vision_tokens.mode, decayed.vision_tokens.shape) == ("tiny", (73, 64))
    assert ("tiny", sum(p.tier == "tiny" for p in later.pages)) in encoder.calls
    prompt = later.to_deepseek()
    result = encoder.model.generate(prompt.prompt, vision_tokens=prompt.tensors(), max_new_tokens=2)
    assert result.token_ids


def test_tokens_of_other_weights_or_another_mode_are_encoded_again(
    memory: OpticalMemory, encoder: CountingEncoder
) -> None:
    grow(memory, segments(3))
    pages = memory.context("chat", reader="deepseek-ocr").pages
    good = pages[0].vision_tokens
    assert good is not None
    stale = VisionTokens(
        data=good.data,
        dtype=good.dtype,
        shape=good.shape,
        model_fingerprint="deepseek-ocr:" + "0" * 32,
        mode="small",
    )
    memory.store.put_vision_tokens("chat", pages[0].page_id, stale)
    wrong_mode = VisionTokens(  # the second page as if cached by these weights in Tiny
        data=bytes(73 * 64 * 4),
        dtype="float32",
        shape=(73, 64),
        model_fingerprint=encoder.fingerprint,
        mode="tiny",
    )
    memory.store.put_vision_tokens("chat", pages[1].page_id, wrong_mode)
    encoder.calls.clear()
    again = memory.context("chat", reader="deepseek-ocr").pages
    assert encoder.calls == [("small", 2)]
    assert [p.vision_tokens for p in again] == [p.vision_tokens for p in pages]
    assert memory.store.get_vision_tokens("chat", pages[0].page_id, encoder.fingerprint) == good


def test_rehydrate_generates_from_cached_tokens(
    url: str, checkpoint: Path, encoder: CountingEncoder
) -> None:
    decoder = DeepSeekOCRDecoder(encoder.model, mode="small", max_new_tokens=3)
    with OpticalMemory(
        url, policy=POLICY, encoder=encoder, decoder=decoder, readers=("deepseek-ocr",)
    ) as memory:
        grow(memory, segments(1))
        page = memory.context("chat", reader="deepseek-ocr").pages[0]
        calls = list(encoder.calls)
        text = memory.rehydrate("chat", page.segment_id)
        assert encoder.calls == calls  # read from the cache, no encoding
        assert text == "\n".join(decoder.decode([page.png]))
        # a decoder over other weights reads the images instead
        other = DeepSeekOCRDecoder(_other_model(checkpoint), mode="small", max_new_tokens=3)
        assert memory.rehydrate("chat", page.segment_id, other) == "\n".join(
            other.decode([page.png])
        )


def _other_model(checkpoint: Path) -> OCRModel:
    torch.manual_seed(1)
    model = OCRModel(DeepSeekOCRConfig.tiny()).eval()
    model.set_processor(
        DeepSeekOCRProcessor.from_pretrained(checkpoint, None, model._special_ids())
    )
    return model


def test_to_deepseek_needs_a_context_with_vision_tokens(url: str, encoder: CountingEncoder) -> None:
    with OpticalMemory(url, policy=POLICY, readers=("deepseek-ocr",)) as plain:
        grow(plain, segments(1))
        context = plain.context("chat", reader="deepseek-ocr")
        assert context.pages and context.pages[0].vision_tokens is None
        with pytest.raises(NoVisionTokens, match="encoder"):
            context.to_deepseek()
    with OpticalMemory(url, policy=POLICY, encoder=encoder, readers=("deepseek-ocr",)) as memory:
        with pytest.raises(NoVisionTokens, match="'text'"):
            memory.context("chat", reader="text").to_deepseek()
        assert memory.context("chat", reader="deepseek-ocr").to_deepseek().vision_tokens


async def test_async_context_carries_vision_tokens(url: str, encoder: CountingEncoder) -> None:
    async with AsyncOpticalMemory(
        url, policy=POLICY, encoder=encoder, readers=("deepseek-ocr",)
    ) as memory:
        await memory.add("chat", conversation(40))
        context = await memory.context("chat", reader="deepseek-ocr")
        prompt = context.to_deepseek()
        assert len(prompt.vision_tokens) == len(context.pages) > 0
