"""What ``ingest`` reads: files, folders, globs and bytes, resolved to documents.

A source is named by what the caller gave (a path as given, or ``bytes[0]``) and
identified by the SHA-256 of its bytes, so a moved file is not ingested twice and a
changed one is. Its kind comes from its first bytes (``%PDF``, PNG, JPEG, TIFF), else
from its file suffix; anything else must be UTF-8 text.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias, Union

from optical_memory.errors import (
    DocumentError,
    EmptyDocument,
    UnreadableDocument,
    UnsupportedDocument,
)

__all__ = [
    "DocumentKind",
    "DocumentSource",
    "SourceFailure",
    "SourceLike",
    "expand_sources",
    "text_source",
]

DocumentKind: TypeAlias = Literal["pdf", "image", "html", "markdown", "text"]

SourceLike: TypeAlias = Union[str, "os.PathLike[str]", bytes, tuple[str, bytes], "DocumentSource"]
"""A path, a folder, a glob, raw bytes, ``(name, bytes)``, or a :class:`DocumentSource`."""

_SUFFIXES: dict[str, DocumentKind] = {
    ".pdf": "pdf",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
}
_MAGIC: tuple[tuple[bytes, DocumentKind], ...] = (
    (b"%PDF", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"II*\x00", "image"),
    (b"MM\x00*", "image"),
)
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class DocumentSource:
    """One document to ingest.

    Attributes:
        name: How the caller named it: the path (as given or found in a folder), or
            ``bytes[i]`` / the name given with the bytes.
        kind: ``"pdf"``, ``"image"``, ``"html"``, ``"markdown"`` or ``"text"``.
        sha256: Hex SHA-256 of the bytes.
        path: The file, or ``None`` for bytes given directly.
        data: The bytes given directly, or ``None`` for a file (read when needed).
    """

    name: str
    kind: DocumentKind
    sha256: str
    path: Path | None = None
    data: bytes | None = None

    def read_bytes(self) -> bytes:
        """The document's bytes.

        Raises:
            UnreadableDocument: The file can no longer be read.
        """
        if self.data is not None:
            return self.data
        assert self.path is not None
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise UnreadableDocument(f"{self.name}: cannot read the file: {exc}") from exc


@dataclass(frozen=True)
class SourceFailure:
    """A source that could not even be opened (missing file, 0 bytes, unknown kind)."""

    name: str
    error: DocumentError


def expand_sources(
    sources: SourceLike | Iterable[SourceLike],
) -> tuple[list[DocumentSource], list[SourceFailure]]:
    """Resolve ``sources`` to documents, in the order given (folders and globs sorted).

    Args:
        sources: One source or several: paths, folders (searched recursively for the
            suffixes the front end reads), globs, bytes, or ``(name, bytes)`` pairs.

    Returns:
        The documents, and the sources that failed with the reason (never raised, so
        one bad source does not stop the others).
    """
    items: list[SourceLike]
    single = (str, bytes, os.PathLike, tuple, DocumentSource)
    items = [sources] if isinstance(sources, single) else list(sources)
    found: list[DocumentSource] = []
    failed: list[SourceFailure] = []
    for position, item in enumerate(items):
        try:
            if isinstance(item, DocumentSource):
                found.append(item)
            elif isinstance(item, tuple):
                name, data = item
                found.append(_from_bytes(str(name), bytes(data), Path(str(name)).suffix))
            elif isinstance(item, (bytes, bytearray, memoryview)):
                found.append(_from_bytes(f"bytes[{position}]", bytes(item), ""))
            else:
                for path in _paths(item):
                    try:
                        found.append(_from_file(path))
                    except DocumentError as exc:
                        failed.append(SourceFailure(str(path), exc))
        except DocumentError as exc:
            failed.append(SourceFailure(_name_of(item, position), exc))
    return found, failed


def _name_of(item: SourceLike, position: int) -> str:
    if isinstance(item, DocumentSource):
        return item.name
    if isinstance(item, tuple):
        return str(item[0])
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"bytes[{position}]"
    return os.fspath(item)


def _paths(item: str | os.PathLike[str]) -> list[Path]:
    text = os.fspath(item)
    path = Path(text)
    if path.is_dir():
        return sorted(
            found
            for found in path.rglob("*")
            if found.is_file() and found.suffix.lower() in _SUFFIXES
        )
    if path.exists():
        return [path]
    if _GLOB_CHARS & set(text):
        matches = sorted(Path(found) for found in glob.glob(text, recursive=True))
        files = [found for found in matches if found.is_file()]
        if files:
            return files
        raise UnreadableDocument(f"{text}: the pattern matches no file")
    raise UnreadableDocument(f"{text}: no such file or folder")


def _from_file(path: Path) -> DocumentSource:
    try:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            head = handle.read(8)
            digest.update(head)
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise UnreadableDocument(f"{path}: cannot read the file: {exc}") from exc
    if not head:
        raise EmptyDocument(f"{path}: the file is empty (0 bytes)")
    return DocumentSource(str(path), _kind(str(path), head, path.suffix), digest.hexdigest(), path)


def text_source(name: str, text: str) -> DocumentSource:
    """A document of plain text, whatever its name says."""
    data = text.encode("utf-8", "surrogatepass")
    return DocumentSource(name, "text", hashlib.sha256(data).hexdigest(), data=data)


def _from_bytes(name: str, data: bytes, suffix: str) -> DocumentSource:
    if not data:
        raise EmptyDocument(f"{name}: no bytes (0 bytes given)")
    kind = _kind(name, data[:8], suffix)
    return DocumentSource(name, kind, hashlib.sha256(data).hexdigest(), data=data)


def _kind(name: str, head: bytes, suffix: str) -> DocumentKind:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    by_suffix = _SUFFIXES.get(suffix.lower())
    if by_suffix is not None:
        return by_suffix
    if not suffix:
        return "text"  # bytes or a file without a suffix: read as UTF-8 text, or fail then
    raise UnsupportedDocument(
        f"{name}: unsupported kind of document {suffix!r}; the front end reads PDF, "
        "PNG, JPEG, TIFF, HTML, Markdown and plain text"
    )
