"""Read pages back with the Tesseract 5 command-line engine.

Tesseract fails on small text at its native size (below 0.4 read-back at 7-8 px), so
every page is upscaled with Lanczos before it is piped to ``tesseract`` as PNG. It is
the cheap round-trip check: a few seconds a dense page, reliable down to 7-7.5 px Latin
text; for CJK below 12 px prefer :class:`~optical_memory.decoders.RapidOCRDecoder`.

Example:
    >>> from optical_memory.decoders import TesseractDecoder
    >>> TesseractDecoder(lang="eng").decode(["page-0.png"])
    ['GNU GENERAL PUBLIC LICENSE ...']
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from PIL import Image

from optical_memory.errors import (
    DecoderError,
    DecoderUnavailable,
    InvalidSettingError,
    UnknownLanguageError,
)

from .base import ImageInput, WorkerDecoder, load_images

__all__ = ["TesseractDecoder"]

_INSTALL_HINT = "install it with: apt install tesseract-ocr"
_TIMEOUT_SECONDS = 600.0
# Tesseract separates CJK characters with spaces; they are not in the text.
_CJK_GAP = re.compile(
    r"(?<=[\u2e80-\u9fff\uac00-\ud7af\uf900-\uffef])\s+(?=[\u2e80-\u9fff\uac00-\ud7af\uf900-\uffef])"
)


def _binary() -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise DecoderUnavailable(f"the tesseract binary is not on PATH; {_INSTALL_HINT}")
    return path


@lru_cache(maxsize=4)
def _installed_languages(binary: str) -> frozenset[str]:
    try:
        done = subprocess.run(
            [binary, "--list-langs"], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DecoderUnavailable(f"tesseract --list-langs failed: {exc}; {_INSTALL_HINT}") from exc
    # The first line is a header: 'List of available languages in "...":'
    return frozenset(line.strip() for line in done.stdout.splitlines()[1:] if line.strip())


class TesseractDecoder(WorkerDecoder):
    """Reads pages with ``tesseract``, upscaling each page first.

    Defaults were chosen by reading dense DejaVu Sans pages: 2x upscaling (640x640 at
    7 px: 0.976 against 0.968 at 3x) and page segmentation mode 3 (automatic, so
    multi-column pages read column by column; modes 4 and 6 read single columns no
    better).

    Args:
        lang: Tesseract language(s), e.g. ``"eng"``, ``"chi_sim"`` or ``"eng+chi_sim"``.
        upscale: Lanczos upscaling factor applied before reading.
        psm: Tesseract page segmentation mode (``--psm``).
        workers: Pages read in parallel; defaults to ``os.cpu_count()``.

    Raises:
        DecoderUnavailable: ``tesseract`` is not installed, or a requested language
            pack is not; the message lists the installed ones.
        InvalidSettingError: A non-positive ``upscale`` or ``workers``, or an unknown ``psm``.
        UnknownLanguageError: A requested language is not installed.
    """

    name = "tesseract"

    def __init__(
        self,
        *,
        lang: str = "eng",
        upscale: float = 2.0,
        psm: int = 3,
        workers: int | None = None,
    ) -> None:
        if upscale <= 0:
            raise InvalidSettingError(f"upscale must be positive, not {upscale}")
        if not 0 <= psm <= 13:
            raise InvalidSettingError(
                f"psm must be a Tesseract page segmentation mode 0-13, not {psm}"
            )
        self._binary = _binary()
        installed = _installed_languages(self._binary)
        wanted = lang.split("+")
        missing = [code for code in wanted if code not in installed]
        if not lang or missing:
            raise UnknownLanguageError(
                f"tesseract language(s) {missing or [lang]} not installed (installed:"
                f" {', '.join(sorted(installed))}); install e.g. apt install"
                f" tesseract-ocr-{(missing or ['<lang>'])[0].replace('_', '-')}"
            )
        self.lang = lang
        self.upscale = upscale
        self.psm = psm
        self._workers = self._worker_count(workers)

    def decode(self, images: Sequence[ImageInput]) -> list[str]:
        """Read each page to text.

        Args:
            images: Pages as PIL images, PNG/JPEG bytes, paths or ``uint8`` arrays.

        Returns:
            One string per page in input order.

        Raises:
            InvalidImageError: An input is unusable; the message names its index.
            DecoderError: ``tesseract`` failed or timed out on a page.
        """
        pages = load_images(images)
        if len(pages) <= 1 or self._workers == 1:
            return [self._read(page, index, parallel=False) for index, page in enumerate(pages)]
        with ThreadPoolExecutor(max_workers=min(self._workers, len(pages))) as pool:
            return list(
                pool.map(lambda item: self._read(item[1], item[0], parallel=True), enumerate(pages))
            )

    def _read(self, page: Image.Image, index: int, *, parallel: bool) -> str:
        gray = page.convert("L")
        if self.upscale != 1:
            size = (round(gray.width * self.upscale), round(gray.height * self.upscale))
            gray = gray.resize(size, Image.Resampling.LANCZOS)
        png = io.BytesIO()
        gray.save(png, format="PNG")
        env = dict(os.environ)
        if parallel:
            env["OMP_THREAD_LIMIT"] = "1"  # one page per core; Tesseract's own threads would fight
        command = [self._binary, "stdin", "stdout", "-l", self.lang, "--psm", str(self.psm)]
        try:
            done = subprocess.run(
                command,
                input=png.getvalue(),
                capture_output=True,
                env=env,
                timeout=_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise DecoderError(f"tesseract failed on image {index}: {exc}") from exc
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip()
            raise DecoderError(
                f"tesseract failed on image {index} (exit {done.returncode}): {detail}"
            )
        text = done.stdout.decode("utf-8", "replace").replace("\f", "")
        return _CJK_GAP.sub("", text).strip()
