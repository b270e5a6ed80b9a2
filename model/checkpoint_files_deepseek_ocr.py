"""Safetensors files read for ``from_pretrained``: mapped views, or positional reads.

A safetensors file is an 8-byte little-endian header length, a JSON header (per tensor:
``dtype``, ``shape`` and ``data_offsets`` relative to the end of the header), then the data.
A tensor the model keeps as it is stored (same dtype, on the CPU) is handed out as a view
into a private memory map of the file, so its pages are file-backed and nothing is copied.
Every other tensor (a dtype conversion, another device, an expert packed into a stacked
tensor, a row block of a fused tensor) is read with positional reads straight into the
memory that keeps it. Its bytes never pass through the map, so the map's pages for it are
never faulted in and do not stay resident next to the converted copy.
"""

from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import torch

from optical_memory.errors import CheckpointError

__all__ = ["SafetensorsFiles", "StoredTensor"]

Shape = tuple[int, ...]

_DTYPES = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "U16": torch.uint16,
    "I32": torch.int32,
    "U32": torch.uint32,
    "I64": torch.int64,
    "U64": torch.uint64,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
}
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit: a larger one means a corrupt file


@dataclass(frozen=True)
class StoredTensor:
    """Where one tensor's bytes sit: ``nbytes`` from absolute byte ``start`` of ``file``."""

    file: Path
    dtype: torch.dtype
    shape: Shape
    start: int
    nbytes: int


class SafetensorsFiles:
    """The tensors of one or more safetensors files (the shards of one checkpoint).

    Headers are read and checked when the object is made; data is read per tensor on
    request. Use it as a context manager: leaving it closes the file descriptors, while
    views already handed out keep their memory map alive for as long as they live.

    Example:
        >>> with SafetensorsFiles([Path("model.safetensors")]) as weights:  # doctest: +SKIP
        ...     head = weights.tensor("lm_head.weight", torch.bfloat16, None)
    """

    def __init__(self, files: Sequence[Path]) -> None:
        """Read and check every file's header.

        Args:
            files: the safetensors files; a key may appear in only one of them.

        Raises:
            CheckpointError: a file is missing, unreadable, corrupt or truncated, holds a
                dtype torch lacks, or two files hold the same key.
        """
        self.tensors: dict[str, StoredTensor] = {}
        self._readers: dict[Path, _FileReader] = {}
        try:
            for file in files:
                reader = _FileReader(file)
                self._readers[file] = reader
                for key, stored in reader.header.items():
                    if key in self.tensors:
                        raise CheckpointError(
                            f"{key} appears in both {self.tensors[key].file} and {file}"
                        )
                    self.tensors[key] = stored
        except BaseException:
            self.close()
            raise

    @property
    def shapes(self) -> dict[str, Shape]:
        """Key -> shape, for every tensor of every file."""
        return {key: stored.shape for key, stored in self.tensors.items()}

    @property
    def float_dtype(self) -> torch.dtype | None:
        """The dtype of the first floating-point tensor by key (the checkpoint's dtype)."""
        dtypes = (self.tensors[key].dtype for key in sorted(self.tensors))
        return next((dtype for dtype in dtypes if dtype in _FLOATS), None)

    def tensor(self, key: str, dtype: torch.dtype, device: torch.device | None) -> torch.Tensor:
        """One tensor as ``dtype`` on ``device`` (``None``: the CPU).

        Args:
            key: the tensor's name.
            dtype: the wanted dtype.
            device: the wanted device.

        Returns:
            A view into the file's memory map when the tensor needs no conversion, else a
            tensor of its own filled by positional reads.

        Raises:
            CheckpointError: the file cannot be read.
        """
        stored = self.tensors[key]
        on_cpu = device is None or device.type == "cpu"
        if dtype == stored.dtype and on_cpu:
            view = self._readers[stored.file].view(key, stored)
            if view is not None:
                return view
        raw = torch.empty(stored.shape, dtype=stored.dtype)
        self.read_into(key, raw)
        return raw.to(device=device or raw.device, dtype=dtype)

    def read_into(self, key: str, out: torch.Tensor, first_row: int = 0) -> None:
        """Fill ``out`` with the tensor's elements from row ``first_row`` on, casting to its dtype.

        Args:
            key: the tensor's name.
            out: the destination (any dtype and device); it takes ``out.numel()`` elements.
            first_row: the first row (index along dimension 0) to read.

        Raises:
            CheckpointError: the file cannot be read.
            ValueError: ``out`` asks for more elements than the tensor has from that row.
        """
        stored = self.tensors[key]
        size = stored.dtype.itemsize
        row = stored.nbytes // stored.shape[0] if stored.shape and stored.shape[0] else 0
        offset = first_row * row
        if offset + out.numel() * size > stored.nbytes:
            raise ValueError(
                f"{key}: {out.numel()} elements from row {first_row} exceed shape {stored.shape}"
            )
        direct = out.dtype == stored.dtype and out.device.type == "cpu" and out.is_contiguous()
        target = out if direct else torch.empty(out.shape, dtype=stored.dtype)
        self._readers[stored.file].read(key, stored.start + offset, target)
        if not direct:
            with torch.no_grad():
                out.copy_(target)

    def close(self) -> None:
        """Close the file descriptors (views handed out stay valid)."""
        for reader in self._readers.values():
            reader.close()

    def __enter__(self) -> SafetensorsFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _FileReader:
    """One open safetensors file: its checked header, positional reads and a lazy map."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._map: mmap.mmap | None = None
        try:
            self._raw = open(file, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise CheckpointError(f"{file} is not a readable safetensors file: {exc}") from exc
        try:
            self.header = self._read_header()
        except (OSError, ValueError, KeyError, TypeError, OverflowError) as exc:
            self._raw.close()
            raise CheckpointError(f"{file} is not a readable safetensors file: {exc}") from exc

    def _read_header(self) -> dict[str, StoredTensor]:
        file_size = self._raw.seek(0, 2)
        prefix = self._read_at(8, 0)
        if len(prefix) < 8:
            raise ValueError(f"{file_size} bytes is too short for a header")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(_MAX_HEADER, file_size - 8):
            raise ValueError(f"header length {length} exceeds the file ({file_size} bytes)")
        raw = json.loads(self._read_at(length, 8))
        if not isinstance(raw, dict):
            raise ValueError("the header is not a JSON object")
        base, data_size = 8 + length, file_size - 8 - length
        tensors: dict[str, StoredTensor] = {}
        for key, entry in raw.items():
            if key == "__metadata__":
                continue
            dtype = _DTYPES.get(entry["dtype"])
            if dtype is None:
                raise ValueError(f"tensor {key} has dtype {entry['dtype']!r}, unknown to torch")
            shape = tuple(int(side) for side in entry["shape"])
            begin, end = (int(n) for n in entry["data_offsets"])
            numel = 1
            for side in shape:
                numel *= side
            if min(shape, default=0) < 0 or end - begin != numel * dtype.itemsize:
                raise ValueError(f"tensor {key}: offsets {[begin, end]} do not fit shape {shape}")
            tensors[key] = StoredTensor(self.file, dtype, shape, base + begin, end - begin)
        # the data must be covered exactly, tensor after tensor: a cut file fails here
        covered = 0
        for stored in sorted(tensors.values(), key=lambda t: t.start):
            if stored.start - base != covered:
                raise ValueError(f"tensor data is not contiguous at byte {covered}")
            covered += stored.nbytes
        if covered != data_size:
            raise ValueError(f"header describes {covered} data bytes, the file has {data_size}")
        return tensors

    def _read_at(self, count: int, offset: int) -> bytes:
        self._raw.seek(offset)
        return self._raw.read(count) or b""

    def read(self, key: str, offset: int, out: torch.Tensor) -> None:
        """Positional reads of ``out.nbytes`` bytes at ``offset`` into contiguous CPU ``out``."""
        if out.numel() == 0:
            return
        buffer = out.detach().view(-1).view(torch.uint8).numpy().data
        done = 0
        try:
            while done < len(buffer):
                self._raw.seek(offset + done)
                count = self._raw.readinto(buffer[done:])
                if not count:
                    raise EOFError(f"file ends {len(buffer) - done} bytes early")
                done += count
        except (OSError, EOFError) as exc:
            raise CheckpointError(f"{self.file}: cannot read tensor {key}: {exc}") from exc

    def view(self, key: str, stored: StoredTensor) -> torch.Tensor | None:
        """A zero-copy view into a private map of the file, or ``None`` when none can be made
        (an empty or misaligned tensor)."""
        if stored.nbytes == 0 or stored.start % stored.dtype.itemsize:
            return None
        if self._map is None:
            try:
                # copy-on-write: writing to a parameter never writes to the checkpoint
                self._map = mmap.mmap(self._raw.fileno(), 0, access=mmap.ACCESS_COPY)
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"{self.file}: cannot map tensor {key}: {exc}") from exc
        count = stored.nbytes // stored.dtype.itemsize
        flat = torch.frombuffer(self._map, dtype=stored.dtype, count=count, offset=stored.start)
        return flat.view(stored.shape)

    def close(self) -> None:
        # the map itself lives on in the views' storages until the last one is freed
        self._map = None
        self._raw.close()
