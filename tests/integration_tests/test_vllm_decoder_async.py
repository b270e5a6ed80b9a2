"""AsyncVLLMDecoder against the real local chat-completions server: mirrors test_vllm_decoder.py."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from PIL import Image

from optical_memory.decoders import AsyncVLLMDecoder, NoRepeatNGram
from optical_memory.errors import DecoderError, DecoderUnavailable, InvalidImageError
from tests.integration_tests.chat_server import KEY, ChatServer, closed_port, sample_pages

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ChatServer]:
    with ChatServer(api_key=KEY) as running:
        yield running
    assert running.problems == []


@pytest_asyncio.fixture
async def decoder(server: ChatServer) -> AsyncIterator[AsyncVLLMDecoder]:
    async with AsyncVLLMDecoder(server.url, api_key=KEY, retry_backoff=0.01) as opened:
        yield opened


async def test_reads_pages_in_order_with_the_recipe_request(
    server: ChatServer, decoder: AsyncVLLMDecoder
) -> None:
    pages, expected = sample_pages()
    assert await decoder.decode(pages) == expected  # type: ignore[arg-type]
    assert server.paths == ["/v1/chat/completions"] * 3
    assert all(h["Authorization"] == f"Bearer {KEY}" for h in server.headers)
    body = server.bodies[0]
    assert body["temperature"] == 0
    assert body["skip_special_tokens"] is False
    assert body["vllm_xargs"]["whitelist_token_ids"] == [128821, 128822]
    assert body["messages"][0]["content"][1] == {"type": "text", "text": "Free OCR."}
    assert await decoder.decode([]) == []


async def test_keeps_several_pages_in_flight_but_no_more_than_workers() -> None:
    with ChatServer(pause=0.3) as server:
        async with AsyncVLLMDecoder(server.url, workers=3) as decoder:
            pages = [Image.new("RGB", (10 + i, 10), "white") for i in range(7)]
            start = time.perf_counter()
            texts = await decoder.decode(pages)
            elapsed = time.perf_counter() - start
    assert texts == [f"page {10 + i}x10 rgb 255,255,255" for i in range(7)]
    assert server.max_in_flight == 3
    assert elapsed < 7 * 0.3


async def test_concurrent_calls_share_the_decoder(decoder: AsyncVLLMDecoder) -> None:
    batches = [[Image.new("RGB", (20 + i, 8 + j)) for j in range(2)] for i in range(3)]
    results = await asyncio.gather(*(decoder.decode(batch) for batch in batches))
    assert results == [[f"page {20 + i}x{8 + j} rgb 0,0,0" for j in range(2)] for i in range(3)]


async def test_settings_and_grounding(server: ChatServer) -> None:
    server.script = ["grounded", "eos"]
    async with AsyncVLLMDecoder(
        f"http://127.0.0.1:{server.port}",
        api_key=KEY,
        prompt="<image>\n<|grounding|>Convert the document to markdown.",
        max_tokens=None,
        no_repeat=NoRepeatNGram(ngram_size=40),
        strip_grounding=True,
    ) as decoder:
        page = Image.new("RGB", (8, 8))
        assert await decoder.decode([page]) == ["# Minutes\n\nThe meeting opened at nine."]
        assert await decoder.decode([page]) == ["page 8x8 rgb 0,0,0"]
    body = server.bodies[0]
    assert "max_tokens" not in body
    assert body["vllm_xargs"]["ngram_size"] == 40
    assert body["messages"][0]["content"][1]["text"].startswith("<|grounding|>")


async def test_retries_500_429_and_dropped_connections(
    server: ChatServer, decoder: AsyncVLLMDecoder
) -> None:
    server.script = ["500", "429", "drop"]
    assert await decoder.decode([Image.new("RGB", (9, 9))]) == ["page 9x9 rgb 0,0,0"]
    assert server.requests == 4


async def test_persistent_500_raises_unavailable_after_retries(server: ChatServer) -> None:
    server.script = ["500"] * 3
    async with AsyncVLLMDecoder(server.url, api_key=KEY, max_retries=2, retry_backoff=0) as dec:
        with pytest.raises(DecoderUnavailable, match="HTTP 500"):
            await dec.decode([Image.new("RGB", (9, 9))])
    assert server.requests == 3


async def test_server_down_raises_unavailable_naming_the_url_without_credentials() -> None:
    sock = closed_port()
    try:
        port = sock.getsockname()[1]
        async with AsyncVLLMDecoder(
            f"http://admin:hunter2@127.0.0.1:{port}/v1", retry_backoff=0.01
        ) as decoder:
            with pytest.raises(DecoderUnavailable) as caught:
                await decoder.decode([Image.new("RGB", (8, 8))])
    finally:
        sock.close()
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in message
    assert "hunter2" not in message and "admin" not in message


async def test_unauthorized_raises_decoder_error_without_retrying(server: ChatServer) -> None:
    async with AsyncVLLMDecoder(server.url, api_key="sk-wrong-key-42") as decoder:
        with pytest.raises(DecoderError, match="HTTP 401") as caught:
            await decoder.decode([Image.new("RGB", (8, 8))])
    assert not isinstance(caught.value, DecoderUnavailable)
    assert "sk-wrong-key-42" not in str(caught.value)
    assert server.requests == 1


@pytest.mark.parametrize("behaviour", ["malformed", "no-choices"])
async def test_malformed_reply_raises_decoder_error(
    server: ChatServer, decoder: AsyncVLLMDecoder, behaviour: str
) -> None:
    server.script = [behaviour]
    with pytest.raises(DecoderError, match="malformed reply"):
        await decoder.decode([Image.new("RGB", (8, 8))])
    assert server.requests == 1


async def test_one_failed_page_fails_the_batch(
    server: ChatServer, decoder: AsyncVLLMDecoder
) -> None:
    server.script = ["malformed"]
    with pytest.raises(DecoderError, match="malformed reply"):
        await decoder.decode([Image.new("RGB", (8, 8 + i)) for i in range(4)])
    assert await decoder.decode([Image.new("RGB", (8, 8))]) == ["page 8x8 rgb 0,0,0"]


async def test_timeout_retries_then_raises_unavailable(server: ChatServer) -> None:
    server.script = ["slow", "slow"]
    start = time.perf_counter()
    async with AsyncVLLMDecoder(
        server.url, api_key=KEY, timeout=0.3, max_retries=1, retry_backoff=0.01
    ) as decoder:
        with pytest.raises(DecoderUnavailable, match=r"did not answer within 0.3 s"):
            await decoder.decode([Image.new("RGB", (8, 8))])
    assert time.perf_counter() - start < 1.9
    assert server.requests == 2


async def test_bad_input_raises_before_anything_is_sent(
    server: ChatServer, decoder: AsyncVLLMDecoder
) -> None:
    with pytest.raises(InvalidImageError, match="image 1"):
        await decoder.decode([Image.new("RGB", (8, 8)), b"not an image"])
    assert server.requests == 0


async def test_key_never_appears_in_repr_errors_or_logs(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script = ["500", "500"]
    async with AsyncVLLMDecoder(server.url, api_key=KEY, max_retries=1, retry_backoff=0) as decoder:
        assert KEY not in repr(decoder)
        assert repr(decoder).startswith("AsyncVLLMDecoder(url=")
        with caplog.at_level(logging.DEBUG), pytest.raises(DecoderUnavailable) as caught:
            await decoder.decode([Image.new("RGB", (8, 8))])
    shown = "".join(traceback.format_exception(caught.type, caught.value, caught.tb))
    assert KEY not in shown
    assert "retrying" in caplog.text
    assert KEY not in caplog.text
