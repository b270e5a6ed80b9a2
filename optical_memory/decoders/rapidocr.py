"""Read pages back with RapidOCR (PP-OCR ONNX models, CPU only).

RapidOCR's stock detector loses whole lines of small Latin text: its 2x2 mask dilation
and wide unclip ratio merge neighbouring lines. For Latin script this decoder turns
dilation off and runs the detector on the page upscaled 2x, unclipping boxes by 1.6
(boxes are mapped back and crops cut from the original page); on a 640x640 page of 6-px
DejaVu Sans that lifts read-back from about 0.12 to about 0.98. At 1.5x, two lines whose
glyphs touch (a cedilla over the next line's capitals) can still merge into one box and
one of them is lost; the unclip ratio is the one that gives 2x boxes the height the
recogniser reads best (1.3 at 2x crops too tightly: 0.964 against 0.981). For CJK the
stock settings read better and are kept.

Example:
    >>> from optical_memory.decoders import RapidOCRDecoder
    >>> with RapidOCRDecoder(script="latin") as decoder:
    ...     texts = decoder.decode([page.image for page in pages])
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from optical_memory.errors import DecoderError, DecoderUnavailable, InvalidSettingError
from optical_memory.metrics import is_mostly_cjk

from ._layout import (
    TextLine,
    fit_punctuation,
    join_lines,
    repair_tables,
    restore_spaces,
    to_ascii_punctuation,
)
from .base import ImageInput, WorkerDecoder, load_images

__all__ = ["RapidOCRDecoder", "Script"]

Script = Literal["auto", "latin", "cjk"]
_SCRIPTS: tuple[str, ...] = ("auto", "latin", "cjk")
_INSTALL_HINT = "install it with: pip install 'optical-memory[ocr]'"
# Lines recognised first to decide a page's script in "auto" mode.
_SAMPLE_LINES = 4
# Recognition results below this mean character confidence are noise, not text.
_MIN_LINE_SCORE = 0.5
# White border added around each page, in pixels.
_PAD = 16


@dataclass(frozen=True)
class _Settings:
    script: Script
    det_upscale: float
    unclip_ratio: float
    restore_spaces: bool


def _import_rapidocr() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise DecoderUnavailable(f"rapidocr-onnxruntime is not installed; {_INSTALL_HINT}") from exc
    return RapidOCR


def _session_options(threads: int | None) -> Any:
    import onnxruntime  # type: ignore[import-untyped]

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # RapidOCR turns the arena off, so every run maps and faults in fresh buffers for the
    # 3,000-px-wide line batches: 28 M page faults and more sys than user time per page.
    options.enable_cpu_mem_arena = True
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Engines share the cores: a spinning idle thread steals them from the others. A
        # lone engine keeps spinning (one page: 49 s wall with it, 67 s without).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _new_engine(threads: int | None) -> Any:
    rapidocr = _import_rapidocr()
    try:
        import onnxruntime
        from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
        from rapidocr_onnxruntime.utils import read_yaml, update_model_path

        engine = rapidocr(use_cls=False)  # rendered pages are never upside down
        # RapidOCR offers no way to pass SessionOptions: rebuild the two sessions we use.
        config = update_model_path(read_yaml(DEFAULT_CFG_PATH))
        options = _session_options(threads)
        for holder, section in ((engine.text_det.infer, "Det"), (engine.text_rec.session, "Rec")):
            holder.session = onnxruntime.InferenceSession(
                config[section]["model_path"],
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise DecoderError(f"RapidOCR engine could not start: {exc}") from exc
    return engine


class _PageReader:
    """One engine and the per-script detector settings; reads one page at a time."""

    def __init__(self, threads: int | None) -> None:
        self._engine = _new_engine(threads)
        post = self._engine.text_det.postprocess_op
        self._stock = (
            self._engine.text_det.limit_side_len,
            post.unclip_ratio,
            post.dilation_kernel,
        )

    def _detect(
        self, page: NDArray[np.uint8], script: Literal["latin", "cjk"], s: _Settings
    ) -> Any:
        det = self._engine.text_det
        limit, unclip, kernel = self._stock
        if script == "latin":
            # limit_type "min": the detector resizes the page so its short side is this long.
            limit = round(min(page.shape[:2]) * s.det_upscale)
            unclip, kernel = s.unclip_ratio, None
        det.limit_side_len = limit
        det.postprocess_op.unclip_ratio = unclip
        det.postprocess_op.dilation_kernel = kernel
        boxes, _ = det(page)
        return [] if boxes is None else list(boxes)

    def _recognise(self, page: NDArray[np.uint8], boxes: list[Any]) -> list[tuple[Any, Any]]:
        if not boxes:
            return []
        crops = self._engine.get_crop_img_list(page, boxes)
        results, _ = self._engine.text_rec(crops, True)
        return list(zip(boxes, results, strict=True))

    def read(self, page: NDArray[np.uint8], s: _Settings) -> str:
        # The detector misses text that touches the border (renderers keep 1% margins).
        page = np.pad(page, ((_PAD, _PAD), (_PAD, _PAD), (0, 0)), constant_values=255)
        script = s.script
        if script == "cjk":
            recognised = self._recognise(page, self._detect(page, "cjk", s))
        else:
            boxes = self._detect(page, "latin", s)
            # Longest boxes first: they carry the most evidence for the script check.
            boxes.sort(key=lambda box: -float(box[:, 0].max() - box[:, 0].min()))
            recognised = self._recognise(page, boxes[:_SAMPLE_LINES])
            if script == "auto" and is_mostly_cjk("".join(result[0] for _, result in recognised)):
                script = "cjk"
                recognised = self._recognise(page, self._detect(page, "cjk", s))
            else:
                script = "latin"
                recognised += self._recognise(page, boxes[_SAMPLE_LINES:])
        lines = [
            _to_line(box, result, latin=script == "latin", spaces=s.restore_spaces)
            for box, result in recognised
            if float(result[1]) >= _MIN_LINE_SCORE
        ]
        return repair_tables(join_lines(lines))


def _to_line(box: Any, result: Any, *, latin: bool, spaces: bool) -> TextLine:
    text: str = result[0]
    # On CJK pages the spaces put back from character positions were mostly wrong
    # ("a p t-ge t in stal l"): the crops of the stock detector are too coarse for it.
    if spaces and latin and not is_mostly_cjk(text):
        # result[2] is the recogniser's word info: [steps, words, per-word char steps, ...].
        columns = [step for word in result[2][2] for step in word]
        text = restore_spaces(text, columns)
    # On a Latin page every mark is ASCII; on a CJK page each mark takes the width of
    # its neighbours, since mixed lines hold both kinds (a per-line choice cost 2 points).
    text = to_ascii_punctuation(text) if latin else fit_punctuation(text)
    xs, ys = box[:, 0], box[:, 1]
    return TextLine(text, float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))


class RapidOCRDecoder(WorkerDecoder):
    """Reads pages with RapidOCR's PP-OCR detector and Chinese/English recogniser.

    ``script="auto"`` detects lines with the Latin settings, recognises the four widest
    lines first and, if most of their characters are CJK, detects again with the stock
    settings; a Latin page pays nothing extra, a CJK page one more detection (about a
    second). Spaces dropped by the recogniser between Latin words are put back from the
    character positions (see :func:`~optical_memory.decoders._layout.restore_spaces`).

    Batches run on ``workers`` threads, each holding its own engine and reading one page
    at a time (onnxruntime and OpenCV release the GIL, so threads use every core with
    no process start-up, no pickling and no ``if __name__ == "__main__"`` guard needed
    in the caller's script). A dense 640x640 page costs about 70 CPU-seconds.

    Args:
        script: ``"latin"``, ``"cjk"`` or ``"auto"`` (decide per page).
        workers: Threads for batches; defaults to ``os.cpu_count()``.
        det_upscale: Factor the detector upscales Latin pages by.
        unclip_ratio: How far Latin line boxes are grown around the detected text.
        restore_spaces: Re-insert dropped inter-word spaces in Latin lines.

    Raises:
        InvalidSettingError: An unknown ``script`` or a non-positive setting.
    """

    name = "rapidocr"

    def __init__(
        self,
        *,
        script: Script = "auto",
        workers: int | None = None,
        det_upscale: float = 2.0,
        unclip_ratio: float = 1.6,
        restore_spaces: bool = True,
    ) -> None:
        if script not in _SCRIPTS:
            raise InvalidSettingError(f"script must be one of {_SCRIPTS}, not {script!r}")
        if det_upscale <= 0 or unclip_ratio <= 0:
            raise InvalidSettingError("det_upscale and unclip_ratio must be positive")
        self._settings = _Settings(script, det_upscale, unclip_ratio, restore_spaces)
        self._workers = self._worker_count(workers)

        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def decode(self, images: Sequence[ImageInput]) -> list[str]:
        """Read each page to text.

        Args:
            images: Pages as PIL images, PNG/JPEG bytes, paths or ``uint8`` arrays.

        Returns:
            One string per page in input order; lines are separated by newlines.

        Raises:
            InvalidImageError: An input is unusable; the message names its index.
            DecoderUnavailable: rapidocr-onnxruntime is not installed.
            DecoderError: The engine failed on a page.
        """
        pages = [np.asarray(image)[:, :, ::-1].copy() for image in load_images(images)]  # BGR
        _import_rapidocr()
        if len(pages) <= 1 or self._workers == 1:
            return [self._read(page, threads=None) for page in pages]  # one page: every core
        with self._pool_lock:  # two threads decoding at once must not start two pools
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="rapidocr")
        threads = max(1, (os.cpu_count() or 1) // self._workers)
        futures = [self._pool.submit(self._read, page, threads) for page in pages]
        return [future.result() for future in futures]

    def _read(self, page: NDArray[np.uint8], threads: int | None) -> str:
        reader: _PageReader | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = _PageReader(threads)
        try:
            return reader.read(page, self._settings)
        except DecoderError:
            raise
        except Exception as exc:  # onnxruntime and OpenCV raise their own untyped errors
            raise DecoderError(f"RapidOCR failed on a page: {exc}") from exc

    def close(self) -> None:
        """Stop the worker threads and drop their engines."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._local = threading.local()
