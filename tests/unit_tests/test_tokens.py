"""Offline token counting: real cl100k/o200k counts, tiktoken's cache, the fallback."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import importlib.util
import re
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import tiktoken.load

from optical_memory.tokens import (
    DATA_DIR_ENV,
    EncodingUnavailable,
    TokenCountApproximationWarning,
    TokenCounter,
    UnknownEncodingError,
    approximate_token_count,
    count_tokens,
    get_encoding,
    get_token_counter,
)

CORPUS = Path(__file__).resolve().parents[2] / "benchmarks" / "corpus"
# Stated in approximate_token_count's docstring: passages within 14%, files within 2%.
PASSAGE_TOLERANCE = 0.15
FILE_TOLERANCE = 0.03


class _NetworkTouched(AssertionError):
    pass


def _refuse(*args: object, **kwargs: object) -> None:
    raise _NetworkTouched(f"network access attempted: {args!r}")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)


@pytest.fixture(scope="module")
def empty_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Module-scoped so the encodings built from bpe-openai data are built once.
    return tmp_path_factory.mktemp("tiktoken-cache")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, empty_cache: Path, no_network: None) -> Iterator[Path]:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty_cache))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TokenCountApproximationWarning)
        yield empty_cache
    assert list(empty_cache.iterdir()) == [], "nothing may be written to tiktoken's cache"


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_network: None) -> Path:
    """An empty data dir replaces bpe-openai, and tiktoken's cache is empty too."""
    data_dir = tmp_path / "data"
    cache_dir = tmp_path / "cache"
    data_dir.mkdir()
    cache_dir.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache_dir))
    return data_dir


def _bpe_openai_file(name: str) -> Path:
    spec = importlib.util.find_spec("bpe_openai")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.tiktoken.gz"


def _cache_key(monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    """The file name tiktoken's cache uses for an encoding's rank file."""
    plugin = importlib.import_module("tiktoken_ext.openai_public")
    requested: list[str] = []

    def record(path: str, expected_hash: str | None = None) -> dict[bytes, int]:
        requested.append(path)
        raise LookupError

    with monkeypatch.context() as patch, pytest.raises(LookupError):
        patch.setattr(plugin, "load_tiktoken_bpe", record)
        plugin.ENCODING_CONSTRUCTORS[name]()
    return hashlib.sha1(requested[0].encode()).hexdigest()


def _passages(file_name: str) -> list[str]:
    text = (CORPUS / file_name).read_text(encoding="utf-8")
    return [p for p in re.split(r"^=== .* ===$", text, flags=re.MULTILINE) if p.strip()]


def test_cl100k_known_counts_offline(offline: Path) -> None:
    assert count_tokens("hello world") == 2
    assert get_encoding().encode("hello") == [15339]
    assert get_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert count_tokens("") == 0


def test_o200k_known_counts_offline(offline: Path) -> None:
    assert count_tokens("hello world", encoding="o200k_base") == 2
    assert get_encoding("o200k_base").encode("hello") == [24912]


def test_encoding_keeps_tiktokens_special_tokens(offline: Path) -> None:
    enc = get_encoding("cl100k_base")
    assert enc.name == "cl100k_base"
    assert enc.encode("<|endoftext|>", allowed_special="all") == [100257]
    assert count_tokens("<|endoftext|>") > 1  # counted as plain text, no error


def test_counter_is_exact(offline: Path) -> None:
    counter = get_token_counter("cl100k_base")
    assert isinstance(counter, TokenCounter)
    assert counter.exact
    assert counter.name == "cl100k_base"
    assert counter.count("hello world") == 2
    assert get_token_counter("cl100k_base") is counter


def test_tiktoken_plugin_is_restored(offline: Path) -> None:
    plugin = importlib.import_module("tiktoken_ext.openai_public")
    get_encoding("cl100k_base")
    assert plugin.load_tiktoken_bpe is tiktoken.load.load_tiktoken_bpe


def test_uses_tiktoken_cache_when_it_has_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_network: None
) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / _cache_key(monkeypatch, "cl100k_base")).write_bytes(
        gzip.decompress(_bpe_openai_file("cl100k_base").read_bytes())
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv(DATA_DIR_ENV, str(empty))
    assert get_encoding("cl100k_base").encode("hello") == [15339]


def test_data_dir_with_plain_tiktoken_file(no_data: Path) -> None:
    raw = gzip.decompress(_bpe_openai_file("cl100k_base").read_bytes())
    (no_data / "cl100k_base.tiktoken").write_bytes(raw)
    assert get_token_counter("cl100k_base").exact
    assert count_tokens("hello world") == 2


def test_fallback_warns_once_and_approximates(no_data: Path) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    with pytest.warns(TokenCountApproximationWarning) as record:
        first = count_tokens(text)
        second = count_tokens(text)
    assert len(record) == 1
    assert first == second == approximate_token_count(text)
    counter = get_token_counter("cl100k_base")
    assert not counter.exact
    assert counter.name == "cl100k_base"
    with pytest.raises(EncodingUnavailable):
        get_encoding("cl100k_base")


def test_fallback_on_corrupt_data(no_data: Path) -> None:
    (no_data / "o200k_base.tiktoken.gz").write_bytes(b"not gzip at all")
    (no_data / "cl100k_base.tiktoken.gz").write_bytes(gzip.compress(b"aGVsbG8= 0\n"))
    with pytest.raises(EncodingUnavailable, match="cannot read"):
        get_encoding("o200k_base")
    with pytest.raises(EncodingUnavailable, match="SHA-256"):
        get_encoding("cl100k_base")
    with pytest.warns(TokenCountApproximationWarning):
        assert count_tokens("hello world", "o200k_base") == approximate_token_count("hello world")


def test_unknown_encoding(offline: Path) -> None:
    with pytest.raises(UnknownEncodingError) as info:
        get_encoding("no_such_encoding")
    assert isinstance(info.value, ValueError)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert count_tokens("two words", "no_such_encoding") == approximate_token_count("two words")
    assert [w.category for w in caught] == [TokenCountApproximationWarning]


def test_encoding_without_offline_data_never_downloads(offline: Path) -> None:
    # p50k_base is not shipped by bpe-openai and gpt2 uses another file format.
    for name in ("p50k_base", "gpt2"):
        with pytest.raises(EncodingUnavailable):
            get_encoding(name)


def test_approximation_edge_cases() -> None:
    assert approximate_token_count("") == 0
    assert approximate_token_count("a") == 1
    assert approximate_token_count("你好") == 2


@pytest.mark.parametrize("file_name", ["english_prose.txt", "chinese.txt"])
def test_approximation_is_close_on_corpus(offline: Path, file_name: str) -> None:
    passages = _passages(file_name)
    assert len(passages) >= 8
    for passage in passages:
        real = count_tokens(passage)
        assert abs(approximate_token_count(passage) - real) <= PASSAGE_TOLERANCE * real
    text = (CORPUS / file_name).read_text(encoding="utf-8")
    real = count_tokens(text)
    assert abs(approximate_token_count(text) - real) <= FILE_TOLERANCE * real


def test_stale_tiktoken_cache_entry_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_network: None
) -> None:
    # A cache entry with the wrong hash would make tiktoken download again; we skip it.
    stale = tmp_path / _cache_key(monkeypatch, "cl100k_base")
    stale.write_bytes(b"stale")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert count_tokens("hello world") == 2
    assert stale.read_bytes() == b"stale"
