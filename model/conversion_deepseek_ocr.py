"""Official DeepSeek-OCR checkpoint names and ours, in one declarative table.

``KEY_MAP`` pairs each official key template with our parameter name(s). Templates use
``{i}`` (a layer), ``{e}`` (an expert), ``{p}`` (``weight`` or ``bias``) and ``{x}`` (any
dotted tail). Three kinds of entry exist:

- ``Rename``: one tensor, same shape, new name.
- ``SplitRows``: one official tensor cut into equal row blocks (CLIP's fused ``qkv_proj``
  into ``q_proj``/``k_proj``/``v_proj``).
- ``PackExperts``: per-expert tensors stacked into one ``[experts, rows, cols]`` tensor; with
  two sources (gate, up) each expert's rows are the gate rows followed by the up rows.

The table is read from our side: every parameter of the model finds its first matching
entry, which names the official keys and shapes it needs (``conversion_plan``). So the
expected official key set always follows the model's own configuration, tiny or full.
CLIP's ``position_ids`` is a non-persistent buffer, so it is neither expected nor written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache

import torch

from optical_memory.errors import CheckpointMismatchError

__all__ = [
    "KEY_MAP",
    "ConversionStep",
    "LoadReport",
    "PackExperts",
    "Rename",
    "SplitRows",
    "check_official_shapes",
    "conversion_plan",
    "export_step",
    "import_step",
]

Shape = tuple[int, ...]

_PLACEHOLDERS = {"i": r"\d+", "e": r"\d+", "p": r"weight|bias", "x": r"[A-Za-z0-9_.]+"}


@dataclass(frozen=True)
class Rename:
    """One official tensor under a new name, shape unchanged."""

    official: str
    ours: str


@dataclass(frozen=True)
class SplitRows:
    """One official tensor cut into equal row blocks, one block per target, in order."""

    official: str
    ours: tuple[str, ...]


@dataclass(frozen=True)
class PackExperts:
    """Per-expert official tensors (templates with ``{e}``) stacked into one tensor.

    Each expert's slice is the row-wise concatenation of ``official`` in order.
    """

    official: tuple[str, ...]
    ours: str


Entry = Rename | SplitRows | PackExperts

_SAM = "model.vision_tower.sam_encoder"
_CLIP = "model.vision_tower.clip_encoder"
_TEXT = "model.language_model"

KEY_MAP: tuple[Entry, ...] = (
    # SAM-ViT-B (transformers' SamVisionEncoder names) and the 16x compressor
    Rename("model.sam_model.patch_embed.proj.{p}", f"{_SAM}.patch_embed.projection.{{p}}"),
    Rename("model.sam_model.pos_embed", f"{_SAM}.pos_embed"),
    Rename("model.sam_model.blocks.{i}.norm1.{p}", f"{_SAM}.layers.{{i}}.layer_norm1.{{p}}"),
    Rename("model.sam_model.blocks.{i}.norm2.{p}", f"{_SAM}.layers.{{i}}.layer_norm2.{{p}}"),
    Rename("model.sam_model.blocks.{i}.attn.{x}", f"{_SAM}.layers.{{i}}.attn.{{x}}"),
    Rename("model.sam_model.blocks.{i}.mlp.{x}", f"{_SAM}.layers.{{i}}.mlp.{{x}}"),
    Rename("model.sam_model.neck.0.weight", f"{_SAM}.neck.conv1.weight"),
    Rename("model.sam_model.neck.1.{p}", f"{_SAM}.neck.layer_norm1.{{p}}"),
    Rename("model.sam_model.neck.2.weight", f"{_SAM}.neck.conv2.weight"),
    Rename("model.sam_model.neck.3.{p}", f"{_SAM}.neck.layer_norm2.{{p}}"),
    Rename("model.sam_model.net_2.weight", f"{_SAM}.compressor.conv1.weight"),
    Rename("model.sam_model.net_3.weight", f"{_SAM}.compressor.conv2.weight"),
    # CLIP-L (transformers' CLIP names; fused qkv split into q, k, v)
    SplitRows(
        "model.vision_model.transformer.layers.{i}.self_attn.qkv_proj.{p}",
        tuple(
            f"{_CLIP}.encoder.layers.{{i}}.self_attn.{name}.{{p}}"
            for name in ("q_proj", "k_proj", "v_proj")
        ),
    ),
    Rename("model.vision_model.transformer.layers.{i}.{x}", f"{_CLIP}.encoder.layers.{{i}}.{{x}}"),
    Rename("model.vision_model.embeddings.{x}", f"{_CLIP}.embeddings.{{x}}"),
    Rename("model.vision_model.pre_layrnorm.{p}", f"{_CLIP}.pre_layrnorm.{{p}}"),
    # Projector and the two learned separators (the checkpoint spells "seperator")
    Rename("model.projector.layers.{p}", "model.multi_modal_projector.{p}"),
    Rename("model.image_newline", "model.image_newline"),
    Rename("model.view_seperator", "model.view_separator"),
    # DeepSeek MoE decoder (transformers' deepseek_ocr2 text model: packed experts)
    PackExperts(
        (
            "model.layers.{i}.mlp.experts.{e}.gate_proj.weight",
            "model.layers.{i}.mlp.experts.{e}.up_proj.weight",
        ),
        f"{_TEXT}.layers.{{i}}.mlp.experts.gate_up_proj",
    ),
    PackExperts(
        ("model.layers.{i}.mlp.experts.{e}.down_proj.weight",),
        f"{_TEXT}.layers.{{i}}.mlp.experts.down_proj",
    ),
    Rename("model.embed_tokens.weight", f"{_TEXT}.embed_tokens.weight"),
    Rename("model.layers.{i}.{x}", f"{_TEXT}.layers.{{i}}.{{x}}"),
    Rename("model.norm.weight", f"{_TEXT}.norm.weight"),
    Rename("lm_head.weight", "lm_head.weight"),
)


@dataclass(frozen=True)
class ConversionStep:
    """Official tensors (name, shape) that together make our tensors (name, shape)."""

    entry: Entry
    sources: tuple[tuple[str, Shape], ...]
    targets: tuple[tuple[str, Shape], ...]


@dataclass(frozen=True)
class LoadReport:
    """What a non-strict load left out, in official names."""

    missing_keys: tuple[str, ...]
    unexpected_keys: tuple[str, ...]


@cache
def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w)\}", template)
    regex = "".join(
        f"(?P<{part}>{_PLACEHOLDERS[part]})" if n % 2 else re.escape(part)
        for n, part in enumerate(parts)
    )
    return re.compile(regex)


def _fill(template: str, values: Mapping[str, str]) -> str:
    return re.sub(r"\{(\w)\}", lambda m: values[m.group(1)], template)


def _match(template: str, key: str) -> dict[str, str] | None:
    found = _pattern(template).fullmatch(key)
    return found.groupdict() if found else None


def conversion_plan(our_shapes: Mapping[str, Shape]) -> list[ConversionStep]:
    """Map every tensor of our model to the official tensors it is made from.

    Args:
        our_shapes: our state-dict names and shapes.

    Returns:
        One step per official source group, in our state-dict order.

    Raises:
        KeyError: a tensor of ours has no entry in ``KEY_MAP`` (a bug in the table).
    """
    steps: list[ConversionStep] = []
    split_groups: dict[tuple[SplitRows, str], list[tuple[int, str, Shape]]] = {}
    for key, shape in our_shapes.items():
        step = _plan_one(key, tuple(shape), split_groups)
        if step is not None:
            steps.append(step)
    for (entry, official), parts in split_groups.items():
        if len(parts) != len(entry.ours):
            raise KeyError(f"{official}: only {len(parts)} of {len(entry.ours)} row blocks exist")
        targets = tuple((key, shape) for _, key, shape in sorted(parts))  # in entry.ours order
        rows = sum(shape[0] for _, shape in targets)
        steps.append(ConversionStep(entry, ((official, (rows, *targets[0][1][1:])),), targets))
    return steps


def _plan_one(
    key: str, shape: Shape, split_groups: dict[tuple[SplitRows, str], list[tuple[int, str, Shape]]]
) -> ConversionStep | None:
    for entry in KEY_MAP:
        if isinstance(entry, Rename):
            values = _match(entry.ours, key)
            if values is not None:
                return ConversionStep(
                    entry, ((_fill(entry.official, values), shape),), ((key, shape),)
                )
        elif isinstance(entry, SplitRows):
            for position, template in enumerate(entry.ours):
                values = _match(template, key)
                if values is not None:
                    group = split_groups.setdefault((entry, _fill(entry.official, values)), [])
                    group.append((position, key, shape))
                    return None
        else:
            values = _match(entry.ours, key)
            if values is not None:
                experts, rows = shape[0], shape[1] // len(entry.official)
                sources = tuple(
                    (_fill(template, {**values, "e": str(e)}), (rows, *shape[2:]))
                    for e in range(experts)
                    for template in entry.official
                )
                return ConversionStep(entry, sources, ((key, shape),))
    raise KeyError(f"no checkpoint name is known for parameter {key!r}")


def check_official_shapes(
    steps: Iterable[ConversionStep], found: Mapping[str, Shape], *, strict: bool
) -> LoadReport:
    """Compare a checkpoint's names and shapes with what the model needs, before any copy.

    Args:
        steps: the model's conversion plan.
        found: official names and shapes present in the checkpoint.
        strict: raise on missing or unexpected keys too (misshapen keys always raise).

    Returns:
        The missing and unexpected official keys (empty when ``strict``).

    Raises:
        CheckpointMismatchError: naming every missing, unexpected or misshapen key.
    """
    expected = {name: shape for step in steps for name, shape in step.sources}
    missing = sorted(name for name in expected if name not in found)
    unexpected = sorted(name for name in found if name not in expected)
    misshapen = sorted(
        f"{name}: checkpoint {tuple(found[name])}, model {expected[name]}"
        for name in expected
        if name in found and tuple(found[name]) != expected[name]
    )
    problems = [("misshapen", misshapen)]
    if strict:
        problems = [("missing", missing), ("unexpected", unexpected), *problems]
    if any(items for _, items in problems):
        counts = ", ".join(f"{len(items)} {label}" for label, items in problems if items)
        lines = [f"  {label}: {item}" for label, items in problems for item in items]
        raise CheckpointMismatchError(
            f"checkpoint does not match the model ({counts} key(s)):\n" + "\n".join(lines)
        )
    return LoadReport(tuple(missing), tuple(unexpected))


def import_step(
    step: ConversionStep,
    read: Callable[[str], torch.Tensor],
    like: Callable[[str], tuple[torch.dtype, torch.device | None]],
    read_into: Callable[[str, torch.Tensor, int], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Build our tensors of one step from official ones.

    Args:
        step: the step.
        read: returns an official tensor by name, already in the wanted dtype and device.
        like: dtype and device (``None``: the source's) for one of our tensors.
        read_into: fills a tensor with an official tensor's elements from a given row on,
            casting them (``read_into(name, out, first_row)``). When given, row blocks and
            packed experts are read straight into the tensors that keep them, and their
            sources are never materialised; ``like``'s ``None`` device then means the CPU.

    Returns:
        Our tensors by name.
    """
    entry = step.entry
    if isinstance(entry, Rename):
        return {step.targets[0][0]: read(step.sources[0][0])}
    if isinstance(entry, SplitRows):
        source = step.sources[0][0]
        if read_into is not None:
            out: dict[str, torch.Tensor] = {}
            first = 0
            for name, shape in step.targets:
                dtype, device = like(name)
                out[name] = torch.empty(shape, dtype=dtype, device=device)
                read_into(source, out[name], first)
                first += shape[0]
            return out
        whole = read(source)
        blocks = torch.split(whole, [shape[0] for _, shape in step.targets], dim=0)
        # copies, so no two parameters share storage (safetensors refuses to save that)
        return {name: block.clone() for (name, _), block in zip(step.targets, blocks, strict=True)}
    name, shape = step.targets[0]
    dtype, device = like(name)
    rows = shape[1] // len(entry.official)
    if read_into is not None:
        filled = torch.empty(shape, dtype=dtype, device=device)
        for n, (source, _) in enumerate(step.sources):
            expert, part = divmod(n, len(entry.official))
            read_into(source, filled[expert, part * rows : (part + 1) * rows], 0)
        return {name: filled}
    packed: torch.Tensor | None = None
    for n, (source, _) in enumerate(step.sources):
        tensor = read(source)
        if packed is None:
            # allocated once, so the experts are never held twice in memory
            packed = torch.empty(shape, dtype=dtype, device=device or tensor.device)
        expert, part = divmod(n, len(entry.official))
        packed[expert, part * rows : (part + 1) * rows].copy_(tensor)
    assert packed is not None  # a plan step always has sources
    return {name: packed}


def export_step(
    step: ConversionStep, get: Callable[[str], torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Build the official tensors of one step from ours (the inverse of ``import_step``).

    Args:
        step: the step.
        get: returns one of our tensors by name.

    Returns:
        Official tensors by name.
    """
    entry = step.entry
    if isinstance(entry, Rename):
        return {step.sources[0][0]: get(step.targets[0][0])}
    if isinstance(entry, SplitRows):
        return {step.sources[0][0]: torch.cat([get(name) for name, _ in step.targets], dim=0)}
    packed = get(step.targets[0][0])
    rows = packed.shape[1] // len(entry.official)
    out: dict[str, torch.Tensor] = {}
    for n, (source, _) in enumerate(step.sources):
        expert, part = divmod(n, len(entry.official))
        out[source] = packed[expert, part * rows : (part + 1) * rows]
    return out
