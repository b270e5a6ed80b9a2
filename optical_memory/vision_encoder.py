"""Encoders turn page images into cacheable vision tokens.

::

    Encoder (Protocol)      name, fingerprint, encode(images) -> list[VisionTokens]
      DeepSeekOCREncoder    "deepseek-ocr": DeepEncoder of DeepSeek-OCR (or DeepSeek-OCR-2)

A :class:`~optical_memory.records.VisionTokens` record carries the fingerprint of the model
that made it, and :func:`tokens_to_tensor` refuses tokens of another model, so a stale
cache is never fed to the wrong weights.

The fingerprint is ``"<family>:<32 hex digits>"``, a SHA-256 over the model's
configuration (minus bookkeeping keys such as the transformers version) and the identity
of its weights:

- loaded from a checkpoint directory: every weight file's name, size, safetensors header
  (tensor names, dtypes, shapes, offsets) and sixteen 1 MiB samples spread over the file.
  It is stable across copies of the checkpoint (no paths or times) and costs a few
  milliseconds; a fine-tune that changes none of the sampled bytes would collide, so pass
  ``fingerprint=`` (e.g. the checkpoint's revision) when that matters;
- an in-memory model without a directory: the bytes of every parameter and buffer, in
  name order (exact; SHA-256 runs at about 1 GB/s on a laptop-class CPU, so the released
  model takes several seconds, once per encoder).

torch and the model load lazily: importing this module stays light.

Example:
    >>> encoder = DeepSeekOCREncoder("/models/DeepSeek-OCR", mode="small")
    >>> [tokens] = encoder.encode(["page.png"])
    >>> tokens.shape, tokens.dtype
    ((111, 1280), 'bfloat16')
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from optical_memory.decoders.base import ImageInput, load_images
from optical_memory.errors import (
    CheckpointError,
    CheckpointMismatchError,
    DecoderUnavailable,
    InvalidSettingError,
)
from optical_memory.records import VisionTokens

if TYPE_CHECKING:
    import torch

    from optical_memory.model.generation_deepseek_ocr import OCRGenerationAPI

__all__ = [
    "DeepSeekOCREncoder",
    "Encoder",
    "load_ocr_model",
    "model_fingerprint",
    "tokens_from_tensor",
    "tokens_to_tensor",
]

_INSTALL_HINT = "install it with: pip install 'optical-memory[model]'"
_SAMPLES = 16
_SAMPLE_BYTES = 1 << 20
# Config keys that say how a file was saved, not what the model computes.
_BOOKKEEPING = frozenset(
    {
        "transformers_version",
        "_name_or_path",
        "name_or_path",
        "architectures",
        "dtype",
        "torch_dtype",
        "_commit_hash",
        "_attn_implementation_autoset",
        "_attn_implementation_internal",
        "_experts_implementation_internal",
        "output_attentions",
        "output_hidden_states",
        "return_dict",
    }
)


@runtime_checkable
class Encoder(Protocol):
    """Turns page images into vision tokens.

    Attributes:
        name: Short registry name, e.g. ``"deepseek-ocr"``.
    """

    name: str

    @property
    def fingerprint(self) -> str:
        """Identifies the weights; stored in every record the encoder makes."""
        ...

    def encode(self, images: Sequence[ImageInput]) -> list[VisionTokens]:
        """Encode each image.

        Args:
            images: Pages in any supported input form.

        Returns:
            One record per image, in input order.

        Raises:
            InvalidImageError: An input is corrupt, empty or of an unsupported type.
        """
        ...


def load_ocr_model(
    path: str | os.PathLike[str],
    device: str | None = None,
    dtype: str | None = None,
) -> OCRGenerationAPI:
    """Load DeepSeek-OCR or DeepSeek-OCR-2 from a local checkpoint directory.

    The family is read from ``config.json`` (``model_type: deepseek_ocr2`` is OCR-2,
    anything else is DeepSeek-OCR v1).

    Args:
        path: The checkpoint directory.
        device: ``"cpu"``, ``"cuda"``, ``"mps"``...; CPU when not given.
        dtype: ``"bfloat16"``, ``"float16"`` or ``"float32"``; the checkpoint's own when
            not given.

    Returns:
        The model, ready for ``encode``/``generate``/``ocr``.

    Raises:
        DecoderUnavailable: torch or transformers is not installed.
        CheckpointError: The directory or its files are missing or unreadable.
    """
    torch = _import_torch()
    from optical_memory.model.processing_deepseek_ocr import DeepSeekOCRProcessor

    directory = Path(path)
    config_file = directory / "config.json"
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {os.fspath(config_file)!r}: {exc}") from exc
    torch_dtype = None if dtype is None else _dtype(torch, dtype)
    if isinstance(raw, dict) and raw.get("model_type") == "deepseek_ocr2":
        from optical_memory.model.deepseek_ocr2 import DeepSeekOCR2

        return DeepSeekOCR2.from_pretrained(directory, device or "cpu", torch_dtype)
    from optical_memory.model import DeepSeekOCR

    model: Any = DeepSeekOCR.from_pretrained(directory, device=device, dtype=torch_dtype)
    model.set_processor(DeepSeekOCRProcessor.from_pretrained(directory, None, model._special_ids()))
    loaded: OCRGenerationAPI = model
    return loaded


def _import_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401 (checked here so the error names the extra)
    except ImportError as exc:
        raise DecoderUnavailable(
            f"torch and transformers are not installed; {_INSTALL_HINT}"
        ) from exc
    return torch


def _dtype(torch: Any, name: str) -> Any:
    known = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if name not in known:
        raise InvalidSettingError(f"dtype must be one of {sorted(known)}, not {name!r}")
    return known[name]


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items() if k not in _BOOKKEEPING}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _config_json(model: Any) -> str:
    config = getattr(model, "config", None)
    if config is None:
        config = getattr(getattr(model, "model", None), "config", None)
    data = config.to_dict() if config is not None and hasattr(config, "to_dict") else {}
    return json.dumps(_clean(data), sort_keys=True, default=str)


def _weights_digest(directory: Path, digest: Any) -> bool:
    files = sorted(directory.glob("*.safetensors"))
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}".encode())
        with file.open("rb") as handle:
            # safetensors: 8-byte little-endian header length, then the JSON header.
            header_length = int.from_bytes(handle.read(8), "little")
            digest.update(handle.read(min(header_length, size)))
            for index in range(_SAMPLES):
                handle.seek(max(0, (size - _SAMPLE_BYTES) * index // (_SAMPLES - 1)))
                digest.update(handle.read(_SAMPLE_BYTES))
    return bool(files)


def model_fingerprint(model: Any) -> str:
    """The fingerprint of a loaded DeepSeek-OCR or DeepSeek-OCR-2 model (see the module
    docstring for what it covers).

    Args:
        model: A ``DeepSeekOCR`` or ``DeepSeekOCR2``.

    Returns:
        ``"deepseek-ocr:<hex>"`` or ``"deepseek-ocr-2:<hex>"``.
    """
    from optical_memory.model.deepseek_ocr2 import DeepSeekOCR2

    network = model.model if isinstance(model, DeepSeekOCR2) else model
    family = "deepseek-ocr-2" if isinstance(model, DeepSeekOCR2) else "deepseek-ocr"
    digest = hashlib.sha256(_config_json(network).encode())
    path = str(getattr(getattr(network, "config", None), "name_or_path", "") or "")
    if not (path and Path(path).is_dir() and _weights_digest(Path(path), digest)):
        for name, tensor in sorted(network.state_dict().items()):
            digest.update(name.encode())
            digest.update(_tensor_bytes(tensor.detach().cpu().contiguous()))
    return f"{family}:{digest.hexdigest()[:32]}"


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    """Raw little-endian bytes of a contiguous CPU tensor."""
    import torch

    if tensor.dtype == torch.bfloat16:
        # numpy has no bfloat16: its bits travel as 16-bit integers.
        return tensor.view(torch.int16).numpy().astype("<i2").tobytes()
    array = tensor.numpy()
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def tokens_from_tensor(tensor: torch.Tensor, fingerprint: str, mode: str = "") -> VisionTokens:
    """Store a ``(n, width)`` tensor as a :class:`VisionTokens` record.

    bfloat16, float16 and float32 keep their dtype; other float types become float32.

    Args:
        tensor: The vision tokens, on any device.
        fingerprint: The model's fingerprint.
        mode: The mode the image was read in.

    Returns:
        The record (raw little-endian bytes, dtype, shape, fingerprint, mode).
    """
    import torch

    names = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32"}
    data = tensor.detach().to("cpu")
    if data.dtype not in names:
        data = data.float()
    data = data.contiguous()
    return VisionTokens(
        data=_tensor_bytes(data),
        dtype=names[data.dtype],
        shape=tuple(int(x) for x in data.shape),
        model_fingerprint=fingerprint,
        mode=mode,
    )


def tokens_to_tensor(
    tokens: VisionTokens,
    fingerprint: str | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Rebuild the tensor of a :class:`VisionTokens` record, exactly.

    Args:
        tokens: The record.
        fingerprint: The reading model's fingerprint; when given, it must match.
        device: Where to put the tensor.

    Returns:
        The ``(n, width)`` tensor in the record's dtype.

    Raises:
        CheckpointMismatchError: The tokens were made by another model.
    """
    import numpy as np
    import torch

    if fingerprint is not None and tokens.model_fingerprint != fingerprint:
        raise CheckpointMismatchError(
            f"vision tokens were made by model {tokens.model_fingerprint}, not by the reading "
            f"model {fingerprint}; encode the page again"
        )
    if tokens.dtype == "bfloat16":
        bits = np.frombuffer(tokens.data, dtype="<i2").astype(np.int16)
        tensor = torch.from_numpy(bits).view(torch.bfloat16)
    else:
        array = np.frombuffer(tokens.data, dtype=np.dtype(tokens.dtype).newbyteorder("<"))
        tensor = torch.from_numpy(array.astype(array.dtype.newbyteorder("=")))
    return tensor.reshape(tokens.shape).to(device)


class DeepSeekOCREncoder:
    """DeepEncoder of DeepSeek-OCR (or DeepSeek-OCR-2) as an :class:`Encoder`.

    Args:
        model: A checkpoint directory (loaded on first use) or a loaded model.
        mode: ``tiny``, ``small``, ``base``, ``large`` or ``gundam`` (OCR-2: ``small``,
            ``base``, ``gundam``).
        device: Where a model loaded from a directory runs; CPU when not given.
        dtype: Weight dtype of a model loaded from a directory (``"bfloat16"``...).
        fingerprint: Overrides the computed fingerprint (e.g. a checkpoint revision).
    """

    name = "deepseek-ocr"

    def __init__(
        self,
        model: str | os.PathLike[str] | OCRGenerationAPI,
        *,
        mode: str = "small",
        device: str | None = None,
        dtype: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        if isinstance(model, (str, os.PathLike)):
            self._path: Path | None = Path(model)
            self._model: OCRGenerationAPI | None = None
        else:
            self._path, self._model = None, model
        self.mode = mode
        self._device = device
        self._dtype = dtype
        self._fingerprint = fingerprint

    @property
    def model(self) -> OCRGenerationAPI:
        """The model, loaded on first access."""
        if self._model is None:
            assert self._path is not None  # one of the two is always set
            self._model = load_ocr_model(self._path, self._device, self._dtype)
        return self._model

    @property
    def fingerprint(self) -> str:
        """The model's fingerprint (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model)
        return self._fingerprint

    def encode(self, images: Sequence[ImageInput]) -> list[VisionTokens]:
        """Encode each page into a :class:`VisionTokens` record.

        Args:
            images: Pages as PIL images, PNG/JPEG bytes, paths or ``uint8`` arrays.

        Returns:
            One record per page, in input order; ``shape`` is ``(slots, hidden)``.

        Raises:
            InvalidImageError: An input is corrupt, empty or of an unsupported type.
            InvalidSettingError: Unknown mode.
            DecoderUnavailable: torch or transformers is not installed.
            CheckpointError: The checkpoint cannot be loaded.
        """
        pages = load_images(images)
        encoded = self.model.encode(pages, self.mode)
        fingerprint = self.fingerprint
        return [tokens_from_tensor(item.tokens, fingerprint, self.mode) for item in encoded]
