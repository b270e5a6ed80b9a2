"""Read pages with DeepSeek-OCR served by vLLM: the scale-out path.

A vLLM server (or any server speaking OpenAI's chat-completions format) runs the model on
GPUs; this client sends each page as a PNG data URL with the recipe's settings: greedy
decoding, special tokens kept, and the per-request n-gram ban of
``NGramPerReqLogitsProcessor`` that stops runaway repeats. Start the server with that
processor, as the vLLM recipe does::

    vllm serve deepseek-ai/DeepSeek-OCR --no-enable-prefix-caching --mm-processor-cache-gb 0 \\
        --logits_processors vllm.model_executor.models.deepseek_ocr:NGramPerReqLogitsProcessor

Several pages are in flight at once (``workers``), so the server can batch them. Connection
errors, timeouts, HTTP 408, 429 and 5xx are retried with exponential backoff (honouring
``Retry-After``); what still fails raises
:class:`~optical_memory.errors.DecoderUnavailable`. Other 4xx answers and malformed replies
raise :class:`~optical_memory.errors.DecoderError`. The API key travels only in the
``Authorization`` header: reprs, error messages and logs never show it.

Needs ``httpx`` (``pip install 'optical-memory[vllm]'``); importing this module does not.

Example:
    >>> from optical_memory.decoders import VLLMDecoder
    >>> with VLLMDecoder("http://gpu-node:8000/v1", api_key=os.environ["VLLM_API_KEY"]) as ocr:
    ...     texts = ocr.decode([page.image for page in pages])
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from PIL import Image

from optical_memory.errors import DecoderError, DecoderUnavailable, InvalidSettingError

from .base import ImageInput, WorkerDecoder, load_images

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncVLLMDecoder", "NoRepeatNGram", "VLLMDecoder"]

_LOG = logging.getLogger(__name__)
_INSTALL_HINT = "install it with: pip install 'optical-memory[vllm]'"
_DEFAULT_MODEL = "deepseek-ai/DeepSeek-OCR"
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_DELAY_SECONDS = 30.0
_EOS = "<｜end▁of▁sentence｜>"
# vLLM inserts the image placeholder itself; a second one from the prompt breaks the request.
_IMAGE_TAG = re.compile(r"^\s*<image>\s*")
# A grounding box: <|ref|>label<|/ref|><|det|>[[x1, y1, x2, y2]]<|/det|>, either part alone.
_GROUNDING = re.compile(
    r"<\|ref\|>.*?<\|/ref\|>(?:<\|det\|>.*?<\|/det\|>)?\n?|<\|det\|>.*?<\|/det\|>\n?", re.DOTALL
)


@dataclass(frozen=True)
class NoRepeatNGram:
    """vLLM's per-request n-gram ban for DeepSeek-OCR (``vllm_xargs``).

    Once a generated n-gram's first ``ngram_size - 1`` tokens repeat within the last
    ``window_size`` tokens, its last token is banned, except the whitelisted ids. The
    defaults are the vLLM recipe's; the official scripts use 40/90 for OmniDocBench and
    20/50 for PDFs.

    Args:
        ngram_size: Length of a banned n-gram.
        window_size: How many recent tokens are searched for repeats.
        whitelist_token_ids: Tokens never banned; by default ``<td>`` and ``</td>``,
            because table markup repeats legitimately.

    Raises:
        InvalidSettingError: A size below 1.
    """

    ngram_size: int = 30
    window_size: int = 90
    whitelist_token_ids: tuple[int, ...] = (128821, 128822)

    def __post_init__(self) -> None:
        if self.ngram_size < 1 or self.window_size < 1:
            raise InvalidSettingError(
                f"ngram_size and window_size must be at least 1, not {self.ngram_size}"
                f" and {self.window_size}"
            )

    def as_xargs(self) -> dict[str, Any]:
        """The ``vllm_xargs`` a request carries for ``NGramPerReqLogitsProcessor``."""
        return {
            "ngram_size": self.ngram_size,
            "window_size": self.window_size,
            "whitelist_token_ids": list(self.whitelist_token_ids),
        }


_RECIPE_NGRAM = NoRepeatNGram()


@dataclass(frozen=True)
class _Retry:
    """Wait this long, then send the request again."""

    delay: float


@dataclass(frozen=True)
class _Endpoint:
    url: str  # without credentials: what requests go to and messages show
    auth: tuple[str, str] | None = field(repr=False)  # user:password given in the URL


def _endpoint(base_url: str) -> _Endpoint:
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSettingError(
            "base_url must be an http:// or https:// URL such as http://localhost:8000/v1"
        )
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"  # a bare host means the OpenAI-style /v1 prefix
    if not path.endswith("/chat/completions"):
        path += "/chat/completions"
    return _Endpoint(urlunsplit((parts.scheme, netloc, path, "", "")), auth)


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise DecoderUnavailable(f"httpx is not installed; {_INSTALL_HINT}") from exc
    return httpx


class _VLLMDecoderBase:
    """What VLLMDecoder and AsyncVLLMDecoder share: settings, request bodies, replies."""

    name = "vllm"

    def __init__(
        self,
        base_url: str = "http://localhost:8000/v1",
        *,
        model: str = _DEFAULT_MODEL,
        api_key: str | None = None,
        prompt: str = "Free OCR.",
        max_tokens: int | None = 4096,
        no_repeat: NoRepeatNGram | None = _RECIPE_NGRAM,
        strip_grounding: bool = False,
        workers: int = 8,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise InvalidSettingError(f"workers must be at least 1, not {workers}")
        if max_tokens is not None and max_tokens < 1:
            raise InvalidSettingError(f"max_tokens must be at least 1, not {max_tokens}")
        if timeout <= 0 or connect_timeout <= 0:
            raise InvalidSettingError("timeout and connect_timeout must be positive")
        if max_retries < 0 or retry_backoff < 0:
            raise InvalidSettingError("max_retries and retry_backoff must not be negative")
        if not model:
            raise InvalidSettingError("model must name the served model")
        self._endpoint = _endpoint(base_url)
        if api_key and self._endpoint.auth is not None:
            # Both travel in the Authorization header; httpx would drop the key silently.
            raise InvalidSettingError(
                "give api_key or user:password in base_url, not both (both use the"
                " Authorization header)"
            )
        self.model = model
        self.prompt = _IMAGE_TAG.sub("", prompt)
        self.max_tokens = max_tokens
        self.no_repeat = no_repeat
        self.strip_grounding = strip_grounding
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.extra_body = dict(extra_body or {})
        self._api_key = api_key or None
        self._workers = workers
        self._lock = threading.Lock()  # guards the sync twin's lazily made client and pool

    @property
    def url(self) -> str:
        """The chat-completions URL pages are posted to (never with credentials)."""
        return self._endpoint.url

    @property
    def workers(self) -> int:
        """How many pages a batch keeps in flight at once."""
        return self._workers

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"{type(self).__name__}(url={self.url!r}, model={self.model!r}, api_key={key},"
            f" workers={self._workers})"
        )

    def _client_options(self, httpx: Any) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return {
            "headers": headers,
            "auth": self._endpoint.auth,
            "timeout": httpx.Timeout(self.timeout, connect=self.connect_timeout),
            # One connection per page in flight, kept alive between batches.
            "limits": httpx.Limits(
                max_connections=self._workers, max_keepalive_connections=self._workers
            ),
        }

    def _body(self, page: Image.Image) -> bytes:
        """The JSON request for one page (PNG-encoded here, so call it off the event loop)."""
        png = io.BytesIO()
        page.save(png, format="PNG")
        data_url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": data_url}},
                        {"type": "text", "text": self.prompt},
                    ],
                }
            ],
            "temperature": 0.0,
            # Grounding tags and <td> are special tokens; dropping them garbles the output.
            "skip_special_tokens": False,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.no_repeat is not None:
            body["vllm_xargs"] = self.no_repeat.as_xargs()
        body.update(self.extra_body)
        return json.dumps(body).encode("utf-8")

    def _redact(self, text: str) -> str:
        """``text`` with the API key and the URL's basic-auth password masked."""
        auth = self._endpoint.auth
        for secret in (self._api_key, auth[1] if auth else None):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _backoff(self, attempt: int, retry_after: str | None = None) -> float:
        delay = self.retry_backoff * 2.0**attempt
        if retry_after is not None:
            with contextlib.suppress(ValueError):  # an HTTP date: keep our own backoff
                delay = max(delay, float(retry_after))
        return min(delay, _MAX_DELAY_SECONDS)

    def _on_transport_error(self, exc: Exception, attempt: int, index: int) -> _Retry:
        """Retry a connection error or timeout (DecoderUnavailable when out of tries);
        a request that cannot be sent at all is a DecoderError at once."""
        httpx = _import_httpx()
        if isinstance(exc, (httpx.LocalProtocolError, httpx.UnsupportedProtocol)):
            # Our own request is at fault: sending it again would fail the same way.
            raise DecoderError(
                f"request to vLLM server at {self.url} for image {index} could not be sent"
                f" ({type(exc).__name__}: {self._redact(str(exc)) or 'no detail'})"
            ) from exc
        if isinstance(exc, httpx.TimeoutException):
            what = f"did not answer within {self.timeout:g} s"
            if isinstance(exc, httpx.ConnectTimeout):
                what = f"did not accept a connection within {self.connect_timeout:g} s"
        else:
            what = f"is unreachable ({type(exc).__name__}: {self._redact(str(exc)) or 'no detail'})"
        if attempt >= self.max_retries:
            raise DecoderUnavailable(
                f"vLLM server at {self.url} {what} (image {index},"
                f" {attempt + 1} attempt{'s' if attempt else ''})"
            ) from exc
        delay = self._backoff(attempt)
        _LOG.warning("vLLM server at %s %s; retrying in %.1f s", self.url, what, delay)
        return _Retry(delay)

    def _on_response(
        self, status: int, retry_after: str | None, content: bytes, attempt: int, index: int
    ) -> str | _Retry:
        """The page's text, a retry, or the project error for this answer."""
        if status in _RETRY_STATUSES:
            what = f"answered HTTP {status}: {self._detail(content)}"
            if attempt >= self.max_retries:
                raise DecoderUnavailable(
                    f"vLLM server at {self.url} {what} (image {index},"
                    f" {attempt + 1} attempt{'s' if attempt else ''})"
                )
            delay = self._backoff(attempt, retry_after)
            _LOG.warning("vLLM server at %s %s; retrying in %.1f s", self.url, what, delay)
            return _Retry(delay)
        if status in (401, 403):
            raise DecoderError(
                f"vLLM server at {self.url} refused image {index} with HTTP {status}"
                f" (check api_key): {self._detail(content)}"
            )
        if status != 200:
            raise DecoderError(
                f"vLLM server at {self.url} rejected image {index} with HTTP {status}:"
                f" {self._detail(content)}"
            )
        return self._text(content, index)

    def _detail(self, content: bytes) -> str:
        """The server's error message (OpenAI and vLLM error shapes), else the body's start."""
        text = content.decode("utf-8", "replace")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            error = data.get("error", data)
            if isinstance(error, dict):
                error = error.get("message", error.get("detail", error))
            text = error if isinstance(error, str) else json.dumps(error)
        text = " ".join(text.split())
        return self._redact(text[:300] + ("..." if len(text) > 300 else "")) or "(empty body)"

    def _text(self, content: bytes, index: int) -> str:
        try:
            reply = json.loads(content)
            choice = reply["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise DecoderError(
                f"vLLM server at {self.url} sent a malformed reply for image {index}"
                f" (expected chat.completion JSON): {self._detail(content)}"
            ) from exc
        if not isinstance(text, str):
            raise DecoderError(
                f"vLLM server at {self.url} sent no text for image {index}"
                f" (message content is {type(text).__name__})"
            )
        # skip_special_tokens=False can leave the end-of-sentence token in the text.
        text = text.removesuffix(_EOS)
        if self.strip_grounding:
            text = _GROUNDING.sub("", text)
        return text.strip()


class VLLMDecoder(_VLLMDecoderBase, WorkerDecoder):
    """Reads pages with DeepSeek-OCR on a vLLM server (OpenAI chat-completions API).

    Pages are posted from ``workers`` threads sharing one connection pool; ``decode``
    returns when every page is read, in input order. Safe to share between threads.

    Args:
        base_url: The server's OpenAI base URL, e.g. ``http://gpu-node:8000/v1``. A bare
            ``http://host:port`` gets ``/v1``; a URL ending in ``/chat/completions`` is
            used as is. ``user:password@`` in the URL becomes HTTP basic auth (then give
            no ``api_key``: both would use the ``Authorization`` header).
        model: The served model name (``vllm serve``'s ``--served-model-name``).
        api_key: Sent as ``Authorization: Bearer``; shown nowhere.
        prompt: The text after the image. DeepSeek-OCR is prompt-sensitive: ``"Free
            OCR."`` reads plain text; ``"<|grounding|>Convert the document to markdown."``
            gives Markdown with layout boxes. A leading ``<image>`` is dropped, since the
            server places the image itself.
        max_tokens: Cap on generated tokens per page; ``None`` lets the server fill the
            context (8192 tokens including the image's).
        no_repeat: The n-gram ban sent as ``vllm_xargs``; ``None`` sends none (for a
            server started without ``NGramPerReqLogitsProcessor``).
        strip_grounding: Remove ``<|ref|>..<|/ref|><|det|>..<|/det|>`` layout tags
            (and the line break after each) from the text.
        workers: Pages in flight at once.
        timeout: Seconds to wait for a page's answer (generation included).
        connect_timeout: Seconds to wait for a connection.
        max_retries: Retries per page after a connection error, timeout, 408, 429 or 5xx.
        retry_backoff: First retry delay in seconds; doubles each retry (at most 30 s).
        extra_body: More request fields, merged last (e.g. ``{"top_k": 1}``).

    Raises:
        InvalidSettingError: A malformed ``base_url`` or an out-of-range setting.
    """

    # Made on first use (see _open); the settings live in _VLLMDecoderBase.
    _client: httpx.Client | None = None
    _pool: ThreadPoolExecutor | None = None

    def decode(self, images: Sequence[ImageInput]) -> list[str]:
        """Read each page to text on the server.

        Args:
            images: Pages as PIL images, PNG/JPEG bytes, paths or ``uint8`` arrays.

        Returns:
            One string per page in input order.

        Raises:
            InvalidImageError: An input is unusable (checked before anything is sent).
            DecoderUnavailable: httpx is missing, or the server stayed unreachable,
                overloaded or failing (timeouts, 429, 5xx) through every retry.
            DecoderError: The server rejected a page (HTTP 4xx) or sent a malformed reply.
        """
        pages = load_images(images)
        _import_httpx()
        if not pages:
            return []
        client, pool = self._open()
        if len(pages) == 1 or pool is None:
            return [self._read(client, page, index) for index, page in enumerate(pages)]
        futures: list[Future[str]] = [
            pool.submit(self._read, client, page, index) for index, page in enumerate(pages)
        ]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:  # after a failure, pages not yet sent are not sent
                future.cancel()

    def _open(self) -> tuple[httpx.Client, ThreadPoolExecutor | None]:
        with self._lock:  # two threads decoding at once must share one client and pool
            if self._client is None:
                httpx = _import_httpx()
                self._client = httpx.Client(**self._client_options(httpx))
            if self._pool is None and self._workers > 1:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="vllm")
            return self._client, self._pool

    def _read(self, client: httpx.Client, page: Image.Image, index: int) -> str:
        httpx = _import_httpx()
        body = self._body(page)
        headers = {"Content-Type": "application/json"}
        attempt = 0
        while True:
            outcome: str | _Retry
            try:
                response = client.post(self.url, content=body, headers=headers)
            except httpx.TransportError as exc:
                outcome = self._on_transport_error(exc, attempt, index)
            else:
                outcome = self._on_response(
                    response.status_code,
                    response.headers.get("retry-after"),
                    response.content,
                    attempt,
                    index,
                )
            if isinstance(outcome, str):
                return outcome
            time.sleep(outcome.delay)
            attempt += 1

    def close(self) -> None:
        """Stop the worker threads and close the connections."""
        with self._lock:
            pool, client = self._pool, self._client
            self._pool = self._client = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if client is not None:
            client.close()


class AsyncVLLMDecoder(_VLLMDecoderBase):
    """Async twin of :class:`VLLMDecoder`: same arguments, ``await decode(...)``.

    Up to ``workers`` pages of a call are in flight at once on one connection pool; PNG
    encoding runs in a worker thread so the event loop stays free. Use one decoder per
    event loop and close it with ``aclose()`` or ``async with``.

    Example:
        >>> async with AsyncVLLMDecoder("http://gpu-node:8000/v1") as ocr:
        ...     texts = await ocr.decode([page.image for page in pages])
    """

    # Made on first use; the settings live in _VLLMDecoderBase.
    _client: httpx.AsyncClient | None = None

    async def decode(self, images: Sequence[ImageInput]) -> list[str]:
        """Read each page to text on the server; see :meth:`VLLMDecoder.decode`."""
        pages = load_images(images)
        httpx = _import_httpx()
        if not pages:
            return []
        if self._client is None:
            self._client = httpx.AsyncClient(**self._client_options(httpx))
        client = self._client
        slots = asyncio.Semaphore(self._workers)

        async def read(page: Image.Image, index: int) -> str:
            async with slots:
                return await self._read(client, page, index)

        tasks = [asyncio.ensure_future(read(page, index)) for index, page in enumerate(pages)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:  # after a failure, pages not yet answered are abandoned
                task.cancel()
            # Collect the other pages' outcomes so none is reported as never retrieved.
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _read(self, client: httpx.AsyncClient, page: Image.Image, index: int) -> str:
        httpx = _import_httpx()
        body = await asyncio.to_thread(self._body, page)
        headers = {"Content-Type": "application/json"}
        attempt = 0
        while True:
            outcome: str | _Retry
            try:
                response = await client.post(self.url, content=body, headers=headers)
            except httpx.TransportError as exc:
                outcome = self._on_transport_error(exc, attempt, index)
            else:
                outcome = self._on_response(
                    response.status_code,
                    response.headers.get("retry-after"),
                    response.content,
                    attempt,
                    index,
                )
            if isinstance(outcome, str):
                return outcome
            await asyncio.sleep(outcome.delay)
            attempt += 1

    async def aclose(self) -> None:
        """Close the connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> AsyncVLLMDecoder:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
