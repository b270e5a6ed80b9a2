"""VLLMDecoder against a real local chat-completions server (see chat_server.py).

The server is a stdlib HTTP server on a free port that checks every request the way
``vllm serve`` would and decodes the PNG it carries; retries, refusals, malformed replies
and timeouts are produced by that server over real sockets.
"""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from collections.abc import Iterator

import pytest
from PIL import Image

from optical_memory.decoders import (
    AsyncVLLMDecoder,
    Decoder,
    NoRepeatNGram,
    VLLMDecoder,
    get_decoder,
)
from optical_memory.errors import (
    DecoderError,
    DecoderUnavailable,
    InvalidImageError,
    InvalidSettingError,
)
from tests.integration_tests.chat_server import KEY, ChatServer, closed_port, sample_pages

_OPEN: list[VLLMDecoder] = []


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer(api_key=KEY) as running:
        yield running
        while _OPEN:
            _OPEN.pop().close()
    assert running.problems == []


def _decoder(server: ChatServer, **kwargs: object) -> VLLMDecoder:
    """A decoder for ``server`` with fast retries; closed when the test ends."""
    options: dict[str, object] = {"base_url": server.url, "api_key": KEY, "retry_backoff": 0.01}
    options.update(kwargs)
    decoder = VLLMDecoder(**options)  # type: ignore[arg-type]
    _OPEN.append(decoder)
    return decoder


def test_reads_pages_in_order_with_the_recipe_request(server: ChatServer) -> None:
    pages, expected = sample_pages()
    with _decoder(server, workers=2) as decoder:
        assert decoder.decode(pages) == expected  # type: ignore[arg-type]
    assert server.paths == ["/v1/chat/completions"] * 3
    assert all(h["Authorization"] == f"Bearer {KEY}" for h in server.headers)
    body = server.bodies[0]
    assert body["model"] == "deepseek-ai/DeepSeek-OCR"
    assert body["temperature"] == 0
    assert body["max_tokens"] == 4096
    assert body["skip_special_tokens"] is False
    assert body["vllm_xargs"] == {
        "ngram_size": 30,
        "window_size": 90,
        "whitelist_token_ids": [128821, 128822],
    }
    content = body["messages"][0]["content"]
    assert content[0]["type"] == "image_url"
    assert content[1] == {"type": "text", "text": "Free OCR."}


def test_is_a_decoder_and_in_the_registry(server: ChatServer) -> None:
    decoder = get_decoder("vllm", base_url=server.url, api_key=KEY)
    assert isinstance(decoder, VLLMDecoder)
    assert isinstance(decoder, Decoder)
    assert decoder.decode([]) == []
    assert server.requests == 0
    with decoder:
        assert decoder.decode([Image.new("RGB", (8, 8), "white")]) == ["page 8x8 rgb 255,255,255"]


def test_keeps_several_pages_in_flight_but_no_more_than_workers() -> None:
    with ChatServer(pause=0.3) as server, VLLMDecoder(server.url, workers=3) as decoder:
        pages = [Image.new("RGB", (10 + i, 10), "white") for i in range(7)]
        start = time.perf_counter()
        texts = decoder.decode(pages)
        elapsed = time.perf_counter() - start
    assert texts == [f"page {10 + i}x10 rgb 255,255,255" for i in range(7)]
    assert server.max_in_flight == 3
    assert elapsed < 7 * 0.3  # overlapped: three rounds of 0.3 s, not seven


def test_prompt_max_tokens_ngram_and_extra_body(server: ChatServer) -> None:
    decoder = _decoder(
        server,
        prompt="<image>\n<|grounding|>Convert the document to markdown.",
        max_tokens=None,
        no_repeat=NoRepeatNGram(ngram_size=20, window_size=50),
        extra_body={"top_k": 1},
    )
    decoder.decode([Image.new("RGB", (8, 8))])
    body = server.bodies[0]
    assert body["messages"][0]["content"][1]["text"] == (
        "<|grounding|>Convert the document to markdown."
    )
    assert "max_tokens" not in body
    assert body["vllm_xargs"]["ngram_size"] == 20
    assert body["vllm_xargs"]["window_size"] == 50
    assert body["top_k"] == 1
    _decoder(server, no_repeat=None).decode([Image.new("RGB", (8, 8))])
    assert "vllm_xargs" not in server.bodies[1]


def test_base_url_forms(server: ChatServer) -> None:
    bare = f"http://127.0.0.1:{server.port}"
    for url in (bare, bare + "/", server.url + "/", server.url + "/chat/completions"):
        decoder = _decoder(server, base_url=url)
        assert decoder.url == server.url + "/chat/completions"
        assert decoder.decode([Image.new("RGB", (5, 5))]) == ["page 5x5 rgb 0,0,0"]


def test_strips_grounding_tags_and_the_end_token(server: ChatServer) -> None:
    server.script = ["grounded", "grounded", "eos"]
    page = Image.new("RGB", (8, 8))
    raw = _decoder(server).decode([page])[0]
    assert raw.startswith("<|ref|>title<|/ref|><|det|>[[12, 30, 980, 88]]<|/det|>")
    clean = _decoder(server, strip_grounding=True).decode([page])[0]
    assert clean == "# Minutes\n\nThe meeting opened at nine."
    assert _decoder(server).decode([page]) == ["page 8x8 rgb 0,0,0"]


def test_retries_500_429_and_dropped_connections(server: ChatServer) -> None:
    server.script = ["500", "429", "drop"]
    assert _decoder(server).decode([Image.new("RGB", (9, 9))]) == ["page 9x9 rgb 0,0,0"]
    assert server.requests == 4


def test_persistent_500_raises_unavailable_after_retries(server: ChatServer) -> None:
    server.script = ["500"] * 3
    with pytest.raises(DecoderUnavailable, match="HTTP 500") as caught:
        _decoder(server, max_retries=2).decode([Image.new("RGB", (9, 9))])
    assert server.requests == 3
    assert server.url in str(caught.value)
    assert "3 attempts" in str(caught.value)


def test_server_down_raises_unavailable_naming_the_url_without_credentials() -> None:
    sock = closed_port()
    try:
        port = sock.getsockname()[1]
        decoder = VLLMDecoder(f"http://admin:hunter2@127.0.0.1:{port}/v1", retry_backoff=0.01)
        with pytest.raises(DecoderUnavailable) as caught:
            decoder.decode([Image.new("RGB", (8, 8))])
    finally:
        sock.close()
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in message
    assert "unreachable" in message and "4 attempts" in message
    assert "hunter2" not in message and "admin" not in message


def test_unauthorized_raises_decoder_error_without_retrying(server: ChatServer) -> None:
    wrong = "sk-wrong-key-42"
    with pytest.raises(DecoderError, match="HTTP 401") as caught:
        _decoder(server, api_key=wrong).decode([Image.new("RGB", (8, 8))])
    assert not isinstance(caught.value, DecoderUnavailable)
    assert server.requests == 1
    assert wrong not in str(caught.value)


def test_other_4xx_names_the_servers_message(server: ChatServer) -> None:
    with pytest.raises(DecoderError, match="does not exist") as caught:
        _decoder(server, model="no-such-model").decode([Image.new("RGB", (8, 8))])
    assert "HTTP 404" in str(caught.value)
    server.problems.clear()  # the server rightly refused the unknown model


@pytest.mark.parametrize("behaviour", ["malformed", "no-choices"])
def test_malformed_reply_raises_decoder_error(server: ChatServer, behaviour: str) -> None:
    server.script = [behaviour]
    with pytest.raises(DecoderError, match="malformed reply") as caught:
        _decoder(server).decode([Image.new("RGB", (8, 8))])
    assert not isinstance(caught.value, DecoderUnavailable)
    assert server.requests == 1


def test_timeout_retries_then_raises_unavailable(server: ChatServer) -> None:
    server.script = ["slow", "slow"]
    start = time.perf_counter()
    with pytest.raises(DecoderUnavailable, match=r"did not answer within 0.3 s"):
        _decoder(server, timeout=0.3, max_retries=1).decode([Image.new("RGB", (8, 8))])
    assert time.perf_counter() - start < 1.9  # gave up long before the server answered
    assert server.requests == 2


def test_bad_input_raises_before_anything_is_sent(server: ChatServer) -> None:
    with pytest.raises(InvalidImageError, match="image 1"):
        _decoder(server).decode([Image.new("RGB", (8, 8)), b"not an image"])
    assert server.requests == 0


def test_key_never_appears_in_repr_errors_or_logs(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    decoder = _decoder(server, max_retries=1)
    assert KEY not in repr(decoder)
    assert "api_key='***'" in repr(decoder)
    assert "api_key=None" in repr(VLLMDecoder(server.url))
    server.script = ["500", "500"]
    with caplog.at_level(logging.DEBUG), pytest.raises(DecoderUnavailable) as caught:
        decoder.decode([Image.new("RGB", (8, 8))])
    shown = "".join(traceback.format_exception(caught.type, caught.value, caught.tb))
    assert KEY not in shown
    assert "retrying" in caplog.text
    assert KEY not in caplog.text


def test_invalid_settings() -> None:
    for kwargs in ({"workers": 0}, {"max_tokens": 0}, {"timeout": 0}, {"max_retries": -1}):
        with pytest.raises(InvalidSettingError):
            VLLMDecoder(**kwargs)  # type: ignore[arg-type]
    for url in ("localhost:8000", "ftp://host/v1", "http:///v1"):
        with pytest.raises(InvalidSettingError, match="base_url"):
            VLLMDecoder(url)
    with pytest.raises(InvalidSettingError):
        NoRepeatNGram(ngram_size=0)


def test_basic_auth_from_the_url_and_never_together_with_a_key() -> None:
    with ChatServer() as open_server:
        url = open_server.url.replace("http://", "http://admin:hunter2@")
        with VLLMDecoder(url, retry_backoff=0.01) as decoder:
            assert decoder.decode([Image.new("RGB", (8, 8))]) == ["page 8x8 rgb 0,0,0"]
            assert decoder.url == open_server.url + "/chat/completions"
            assert "hunter2" not in repr(decoder)
        # "admin:hunter2" in base64
        assert open_server.headers[0]["Authorization"] == "Basic YWRtaW46aHVudGVyMg=="
    with pytest.raises(InvalidSettingError, match="not both"):
        VLLMDecoder("http://admin:hunter2@localhost:8000/v1", api_key=KEY)


def test_twins_share_signatures() -> None:
    for name in ("__init__", "decode"):
        sync = inspect.signature(getattr(VLLMDecoder, name))
        asynchronous = inspect.signature(getattr(AsyncVLLMDecoder, name))
        assert sync == asynchronous, name
