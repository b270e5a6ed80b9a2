"""A small real OpenAI chat-completions server for the vLLM decoder tests.

It speaks the request and reply format ``vllm serve`` does for DeepSeek-OCR: it checks
the method, path, bearer key and JSON shape of every request, decodes the page from its
``data:image/png;base64`` URL with Pillow, and "reads" it by describing it (size and the
colour of its first pixel), so a test can tell which page an answer belongs to. Invalid
requests get vLLM's error JSON with HTTP 400 and are recorded in ``problems``.

Each request takes the next behaviour from ``script`` (``"ok"`` once it is empty):
``"ok"``, ``"500"``, ``"429"`` (with ``Retry-After: 0``), ``"drop"`` (close the connection
without answering), ``"slow"`` (answer after 2 s), ``"malformed"`` (HTTP 200, not JSON),
``"no-choices"`` (HTTP 200, JSON without ``choices``), ``"grounded"`` (text with layout
tags), ``"eos"`` (text ending in the end-of-sentence token).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

KEY = "sk-test-0123456789abcdef"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EOS = "<｜end▁of▁sentence｜>"
GROUNDED = (
    "<|ref|>title<|/ref|><|det|>[[12, 30, 980, 88]]<|/det|>\n# Minutes\n\n"
    "<|ref|>text<|/ref|><|det|>[[12, 100, 980, 300]]<|/det|>\nThe meeting opened at nine."
)


def page_text(image: Image.Image) -> str:
    """What the server "reads" on a page: its size and its first pixel's colour."""
    pixel = image.convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return f"page {image.width}x{image.height} rgb {pixel[0]},{pixel[1]},{pixel[2]}"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def sample_pages() -> tuple[list[object], list[str]]:
    """Three pages in three input forms, and what the server reads on each."""
    pages: list[object] = [
        Image.new("RGB", (64, 48), (10, 20, 30)),
        _png(Image.new("L", (32, 40), 200)),
        np.full((24, 56, 3), 7, dtype=np.uint8),
    ]
    expected = ["page 64x48 rgb 10,20,30", "page 32x40 rgb 200,200,200", "page 56x24 rgb 7,7,7"]
    return pages, expected


class ChatServer:
    """Serves ``POST /v1/chat/completions`` on 127.0.0.1 from a background thread.

    Args:
        api_key: The bearer key every request must carry; ``None`` accepts any.
        model: The served model name requests must ask for.
        pause: Seconds each request is held before it is answered (to observe overlap).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "deepseek-ai/DeepSeek-OCR",
        pause: float = 0,
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.pause = pause
        self.script: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.problems: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> int:
        """How many requests arrived (valid or not)."""
        return len(self.paths)

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _next_behaviour(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "ok"

    def _check(self, handler: BaseHTTPRequestHandler, raw: bytes) -> tuple[str, Image.Image]:
        """Validate one request like vLLM would; returns (prompt, page) or raises ValueError."""
        if handler.path != "/v1/chat/completions":
            raise LookupError(f"no route {handler.path}")
        authorization = handler.headers.get("Authorization")
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            raise PermissionError("Unauthorized")
        if not handler.headers.get("Content-Type", "").startswith("application/json"):
            raise ValueError("Content-Type must be application/json")
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        self.bodies.append(body)
        if body.get("model") != self.model:
            raise LookupError(f"The model `{body.get('model')}` does not exist.")
        messages = body["messages"]
        if not (isinstance(messages, list) and len(messages) == 1):
            raise ValueError("expected one message")
        message = messages[0]
        if message.get("role") != "user" or not isinstance(message.get("content"), list):
            raise ValueError("expected a user message with a content list")
        image_parts = [p for p in message["content"] if p.get("type") == "image_url"]
        text_parts = [p for p in message["content"] if p.get("type") == "text"]
        if len(image_parts) != 1 or len(text_parts) != 1 or len(message["content"]) != 2:
            raise ValueError("expected one image_url part and one text part")
        url = image_parts[0]["image_url"]["url"]
        prefix = "data:image/png;base64,"
        if not url.startswith(prefix):
            raise ValueError("image url must be a PNG data URL")
        try:
            png = base64.b64decode(url[len(prefix) :], validate=True)
        except binascii.Error as exc:
            raise ValueError(f"bad base64: {exc}") from exc
        if not png.startswith(PNG_SIGNATURE):
            raise ValueError("data URL is not a PNG")
        page = Image.open(io.BytesIO(png))
        page.load()
        if page.format != "PNG":
            raise ValueError("data URL is not a PNG")
        prompt = text_parts[0]["text"]
        if not isinstance(prompt, str) or "<image>" in prompt:
            raise ValueError("the prompt must be text without an <image> placeholder")
        temperature = body.get("temperature")
        if not isinstance(temperature, (int, float)) or temperature != 0:
            raise ValueError("temperature must be 0")
        if "max_tokens" in body and not (
            isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
        ):
            raise ValueError("max_tokens must be a positive integer")
        if "vllm_xargs" in body and not isinstance(body["vllm_xargs"], dict):
            raise ValueError("vllm_xargs must be an object")
        return prompt, page

    def _completion(self, text: str) -> bytes:
        reply = {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "tool_calls": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                    "stop_reason": None,
                }
            ],
            "usage": {"prompt_tokens": 273, "completion_tokens": 9, "total_tokens": 282},
        }
        return json.dumps(reply).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn serves vLLM

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

            def _send(
                self, status: int, payload: bytes, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _error(self, status: int, message: str) -> None:
                error = {"object": "error", "message": message, "type": "BadRequestError"}
                self._send(status, json.dumps({**error, "param": None, "code": status}).encode())

            def do_GET(self) -> None:
                server.paths.append(self.path)
                self._error(405, "Method Not Allowed")

            def do_POST(self) -> None:
                with server._lock:
                    server.paths.append(self.path)
                    server.headers.append(dict(self.headers.items()))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                behaviour = server._next_behaviour()
                if server.pause:
                    server._stopping.wait(server.pause)
                try:
                    _, page = server._check(self, raw)
                except PermissionError as exc:
                    self._send(401, json.dumps({"error": str(exc)}).encode())
                    return
                except LookupError as exc:
                    server.problems.append(str(exc))
                    self._error(404, str(exc))
                    return
                except (ValueError, KeyError, TypeError, OSError) as exc:
                    server.problems.append(f"{type(exc).__name__}: {exc}")
                    self._error(400, f"invalid request: {exc}")
                    return
                text = page_text(page)
                if behaviour == "500":
                    self._error(500, "Internal Server Error")
                elif behaviour == "429":
                    self._send(429, b'{"error": "busy"}', {"Retry-After": "0"})
                elif behaviour == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif behaviour == "slow":
                    server._stopping.wait(2.0)
                    self._send(200, server._completion(text))
                elif behaviour == "malformed":
                    self._send(200, b"<html>502 Bad Gateway</html>")
                elif behaviour == "no-choices":
                    self._send(200, b'{"object": "chat.completion", "choices": []}')
                elif behaviour == "grounded":
                    self._send(200, server._completion(GROUNDED))
                elif behaviour == "eos":
                    self._send(200, server._completion(text + EOS))
                else:
                    self._send(200, server._completion(text))

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (timeout tests)

        return Handler


def closed_port() -> socket.socket:
    """A bound socket that does not listen: connecting to its port is refused.

    Keep it open while the test runs so no other process takes the port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock
