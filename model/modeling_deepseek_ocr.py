# transformers' base classes and their post_init are untyped; calling them is intended.
# mypy: disable-error-code="no-untyped-call"
"""DeepSeek-OCR v1 in PyTorch, as a delta over transformers' SAM, CLIP and DeepSeek MoE classes.

What is written here is only the DeepSeek-OCR glue: the two-conv 16x compressor after
SAM's neck, position-table resizing for other resolutions, CLIP reading the compressor
output as its patch embeddings, the channel concat and linear projector, the
``image_newline``/``view_separator`` layout, and checkpoint loading. The decoder is
transformers' ``deepseek_ocr2`` text model (the same MHA DeepSeek MoE: greedy softmax
top-k without renormalisation, shared experts, packed expert tensors).

Shapes in comments: N views, S pixels per side, g = S/16 SAM grid, q = g/4 token grid,
D = projector width (1280), B batch, L sequence.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_utils import PreTrainedModel
from transformers.models.clip.modeling_clip import (
    CLIPEncoder,
    CLIPPreTrainedModel,
    CLIPVisionEmbeddings,
)
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2TextModel,
    DeepseekOcr2TextRotaryEmbedding,
)
from transformers.models.sam.modeling_sam import SamVisionEncoder
from typing_extensions import Self

from optical_memory.errors import CheckpointError

from .checkpoint_files_deepseek_ocr import SafetensorsFiles
from .configuration_deepseek_ocr import (
    DeepseekOcrClipConfig,
    DeepSeekOCRConfig,
    DeepseekOcrSamConfig,
    DeepseekOcrTextConfig,
)
from .conversion_deepseek_ocr import (
    ConversionStep,
    LoadReport,
    Rename,
    check_official_shapes,
    conversion_plan,
    export_step,
    import_step,
)
from .generation_deepseek_ocr import DeepSeekOCRGenerationMixin
from .kv_cache_deepseek_ocr import DeepseekOcrKVCache
from .layout_deepseek_ocr import VisionTokenLayout, vision_token_layout
from .moe_deepseek_ocr import DeepseekOcrLinear, use_fast_decode
from .transformers_compat_deepseek_ocr import (
    DeepseekOcrCausalLMOutput,
    cache_kwargs,
    returned_cache,
)

__all__ = [
    "DeepSeekOCR",
    "DeepseekOcrClipEncoder",
    "DeepseekOcrCompressor",
    "DeepseekOcrModel",
    "DeepseekOcrPreTrainedModel",
    "DeepseekOcrSamEncoder",
    "DeepseekOcrTextModel",
    "ImageViews",
    "VisionTokenLayout",
    "vision_token_layout",
]

_WEIGHT_FILES = ("model-00001-of-000001.safetensors", "model.safetensors")
_INDEX_FILE = "model.safetensors.index.json"
_NATIVE_MARKER = "model.language_model.norm.weight"  # only our own names have it


def resize_bicubic(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(1, C, H, W)`` to ``size`` as the reference does: bicubic, antialiased, fp32.

    MPS has no antialiased bicubic kernel, so there the resize runs on the CPU.
    """
    if tuple(grid.shape[-2:]) == size:
        return grid
    work = grid.float()
    if work.device.type == "mps":
        work = work.cpu()
    out = F.interpolate(work, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.to(device=grid.device, dtype=grid.dtype)


@dataclass(frozen=True)
class ImageViews:
    """The pixel views of one image, normalised to [-1, 1].

    Attributes:
        global_view: ``(3, S, S)`` or ``(1, 3, S, S)``.
        tiles: ``(n, 3, s, s)`` local tiles in row-major order, or ``None``.
        tile_grid: ``(columns, rows)`` of the tiles, with ``columns * rows == n``.
    """

    global_view: torch.Tensor
    tiles: torch.Tensor | None = None
    tile_grid: tuple[int, int] | None = None


class DeepseekOcrCompressor(nn.Module):
    """Two 3x3 stride-2 convolutions without bias: 16x fewer tokens, 256 -> 1024 channels."""

    def __init__(self, config: DeepseekOcrSamConfig) -> None:
        super().__init__()
        mid, out = config.compressor_mid_channels, config.compressor_out_channels
        self.conv1 = nn.Conv2d(config.output_channels, mid, 3, stride=2, padding=1, bias=False)
        self.conv2 = nn.Conv2d(mid, out, 3, stride=2, padding=1, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``(N, 256, g, g)`` -> ``(N, 1024, g/4, g/4)``."""
        return self.conv2(self.conv1(hidden_states))  # type: ignore[no-any-return]


class DeepseekOcrSamEncoder(SamVisionEncoder):
    """transformers' SAM-ViT-B image encoder at any resolution, followed by the compressor."""

    config: DeepseekOcrSamConfig

    def __init__(self, config: DeepseekOcrSamConfig) -> None:
        super().__init__(config)
        self.compressor = DeepseekOcrCompressor(config)
        self.post_init()  # the compressor came after SamVisionEncoder's own post_init

    def resized_pos_embed(self, height: int, width: int) -> torch.Tensor:
        """The 64x64 absolute position table resized to the patch grid, ``(1, h, w, C)``."""
        assert self.pos_embed is not None  # DeepSeek-OCR always uses absolute positions
        table = self.pos_embed.permute(0, 3, 1, 2)
        return resize_bicubic(table, (height, width)).permute(0, 2, 3, 1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` pixels -> ``(N, 1024, q, q)`` compressed features."""
        # the projection conv directly: SamPatchEmbeddings insists on 1024 px inputs
        hidden = self.patch_embed.projection(pixel_values).permute(0, 2, 3, 1)  # (N, g, g, 768)
        hidden = hidden + self.resized_pos_embed(hidden.shape[1], hidden.shape[2])
        for layer in self.layers:
            hidden = layer(hidden)
        hidden = self.neck(hidden)  # (N, 256, g, g)
        return self.compressor(hidden)  # type: ignore[no-any-return]


class DeepseekOcrClipEmbeddings(CLIPVisionEmbeddings):
    """CLIP embeddings over given patch features: CLS + features + resized positions."""

    def forward(  # type: ignore[override]
        self, patch_embeds: torch.Tensor
    ) -> torch.Tensor:
        """``(N, C, h, w)`` features -> ``(N, 1 + h*w, C)`` token embeddings."""
        count, channels, height, width = patch_embeds.shape
        tokens = patch_embeds.flatten(2).transpose(1, 2)  # (N, h*w, C)
        cls = self.class_embedding.to(tokens.dtype).expand(count, 1, -1)
        table = self.position_embedding.weight  # (1 + 16*16, C)
        side = math.isqrt(table.shape[0] - 1)
        grid = table[1:].reshape(1, side, side, channels).permute(0, 3, 1, 2)
        grid = resize_bicubic(grid, (height, width)).flatten(2).transpose(1, 2)  # (1, h*w, C)
        positions = torch.cat([table[:1].unsqueeze(0), grid], dim=1).to(tokens.dtype)
        return torch.cat([cls, tokens], dim=1) + positions


class DeepseekOcrClipEncoder(CLIPPreTrainedModel):
    """CLIP-L without patch conv and post-norm: embeddings, ``pre_layrnorm``, 24 layers.

    The unused ``embeddings.patch_embedding`` stays, as it is part of the checkpoint.
    """

    config_class = DeepseekOcrClipConfig

    def __init__(self, config: DeepseekOcrClipConfig) -> None:
        super().__init__(config)
        self.embeddings = DeepseekOcrClipEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # annotated with the joint CLIPConfig, but reads only the vision fields
        self.encoder = CLIPEncoder(config)  # type: ignore[arg-type]
        self.post_init()

    def forward(self, patch_embeds: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` compressor output -> ``(N, h*w, C)`` CLIP features without CLS."""
        hidden = self.pre_layrnorm(self.embeddings(patch_embeds))
        hidden = self.encoder(inputs_embeds=hidden).last_hidden_state  # (N, 1 + h*w, C)
        return hidden[:, 1:]  # type: ignore[no-any-return]


class DeepseekOcrTextModel(DeepseekOcr2TextModel):
    """transformers' DeepSeek MoE text model (the decoder of DeepSeek-OCR-2 is the same one),
    with the MoE blocks and linears of ``moe_deepseek_ocr`` (fast decode, same parameters)."""

    config: DeepseekOcrTextConfig

    def __init__(self, config: DeepseekOcrTextConfig) -> None:
        super().__init__(config)
        use_fast_decode(self)


class DeepseekOcrVisionTower(nn.Module):
    """DeepEncoder: SAM + compressor, then CLIP over the compressed features."""

    def __init__(self, config: DeepSeekOCRConfig) -> None:
        super().__init__()
        self.sam_encoder = DeepseekOcrSamEncoder(config.sam)
        self.clip_encoder = DeepseekOcrClipEncoder(config.clip)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> ``(N, q, q, 2048)``: CLIP features then SAM features."""
        sam = self.sam_encoder(pixel_values)  # (N, 1024, q, q)
        clip = self.clip_encoder(sam)  # (N, q*q, 1024)
        count, _, rows, columns = sam.shape
        features = torch.cat([clip, sam.flatten(2).transpose(1, 2)], dim=-1)
        return features.reshape(count, rows, columns, -1)


class DeepseekOcrPreTrainedModel(PreTrainedModel):
    """Shared settings and weight init of the DeepSeek-OCR models."""

    config: DeepSeekOCRConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _supports_flash_attn = False  # SAM adds a relative-position bias to its attention
    _supports_flex_attn = False
    _no_split_modules = ["SamVisionLayer", "CLIPEncoderLayer", "DeepseekOcr2TextDecoderLayer"]  # noqa: RUF012
    _skip_keys_device_placement = ["past_key_values"]  # noqa: RUF012

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, DeepseekOcrModel):
            std = module.image_newline.shape[0] ** -0.5
            init.normal_(module.image_newline, mean=0.0, std=std)
            init.normal_(module.view_separator, mean=0.0, std=std)


class DeepseekOcrModel(DeepseekOcrPreTrainedModel):
    """DeepEncoder, projector, separators and the decoder without its head."""

    def __init__(self, config: DeepSeekOCRConfig) -> None:
        super().__init__(config)
        width = config.text.hidden_size
        self.vision_tower = DeepseekOcrVisionTower(config)
        self.multi_modal_projector = nn.Linear(config.vision_feature_size, width)
        self.image_newline = nn.Parameter(torch.empty(width))
        self.view_separator = nn.Parameter(torch.empty(width))
        self.language_model = DeepseekOcrTextModel(config.text)
        self.post_init()

    def view_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> ``(N, q, q, D)`` projected vision tokens."""
        return self.multi_modal_projector(self.vision_tower(pixel_values))  # type: ignore[no-any-return]

    def with_newlines(self, grid: torch.Tensor) -> torch.Tensor:
        """``(rows, columns, D)`` -> ``(rows * (columns + 1), D)``: a newline after each row."""
        newline = self.image_newline.to(grid.dtype).expand(grid.shape[0], 1, -1)
        return torch.cat([grid, newline], dim=1).flatten(0, 1)


class DeepSeekOCR(DeepSeekOCRGenerationMixin, DeepseekOcrPreTrainedModel):
    """DeepSeek-OCR v1: encode page images into vision tokens and decode text from them.

    Build it from a config (random weights) or load the released checkpoint from a local
    directory with ``from_pretrained``. ``encode_views`` turns one image into its vision
    tokens (cacheable); ``forward`` takes token ids with ``<image>`` slots and either pixels
    or cached vision tokens, and returns fp32 logits with a KV cache. Greedy generation
    and OCR (``generate``, ``ocr``...) come from ``DeepSeekOCRGenerationMixin``.

    Example:
        >>> model = DeepSeekOCR(DeepSeekOCRConfig.tiny())
        >>> tokens = model.encode_views(torch.zeros(3, 512, 512))
        >>> tokens.shape
        torch.Size([73, 64])
    """

    def __init__(self, config: DeepSeekOCRConfig) -> None:
        super().__init__(config)
        self.model = DeepseekOcrModel(config)
        width, vocab = config.text.hidden_size, config.text.vocab_size
        self.lm_head = DeepseekOcrLinear(width, vocab, bias=False)  # one row: a GEMV
        self.post_init()

    # --- vision -----------------------------------------------------------------------

    def vision_layout(
        self,
        global_size: int,
        tile_size: int | None = None,
        tile_grid: tuple[int, int] | None = None,
    ) -> VisionTokenLayout:
        """``vision_token_layout`` with this model's patch size; see there."""
        patch = self.config.sam.patch_size
        return vision_token_layout(
            global_size,
            tile_size,
            tile_grid,
            patch_size=patch if isinstance(patch, int) else int(patch[0]),
        )

    def encode_views(
        self,
        global_pixels: torch.Tensor,
        tile_pixels: torch.Tensor | None = None,
        tile_grid: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Encode one image into the vision tokens that fill its ``<image>`` slots.

        Order: local tiles stitched into one grid (rows with newlines), then the global
        view (rows with newlines), then the view separator.

        Args:
            global_pixels: ``(3, S, S)`` or ``(1, 3, S, S)`` global view in [-1, 1].
            tile_pixels: ``(n, 3, s, s)`` tiles in row-major order, or ``None``.
            tile_grid: ``(columns, rows)`` of the tiles; required with ``tile_pixels``.

        Returns:
            ``(n_slots, D)`` in the model's dtype and device; ``n_slots`` equals
            ``vision_layout(...).n_slots``.

        Raises:
            ValueError: the shapes do not fit together.
        """
        if global_pixels.dim() == 3:
            global_pixels = global_pixels.unsqueeze(0)
        if global_pixels.dim() != 4 or global_pixels.shape[:2] != (1, 3):
            raise ValueError(f"global view must be (3, S, S), got {tuple(global_pixels.shape)}")
        if tile_pixels is None and tile_grid is not None:
            raise ValueError("tile_grid was given without tile_pixels")
        columns, rows = (1, 1) if tile_pixels is None else self._check_tiles(tile_pixels, tile_grid)
        weight = self.model.multi_modal_projector.weight
        global_grid = self.model.view_features(global_pixels.to(weight.device, weight.dtype))[0]
        parts = []
        if tile_pixels is not None:
            local = self.model.view_features(tile_pixels.to(weight.device, weight.dtype))
            _, q_rows, q_columns, width = local.shape  # (n, q, q, D)
            local = local.reshape(rows, columns, q_rows, q_columns, width).permute(0, 2, 1, 3, 4)
            parts.append(self.model.with_newlines(local.reshape(rows * q_rows, -1, width)))
        parts.append(self.model.with_newlines(global_grid))
        parts.append(self.model.view_separator.to(global_grid.dtype).unsqueeze(0))
        return torch.cat(parts, dim=0)

    @staticmethod
    def _check_tiles(tiles: torch.Tensor, grid: tuple[int, int] | None) -> tuple[int, int]:
        if grid is None:
            raise ValueError("tile_pixels needs tile_grid=(columns, rows)")
        columns, rows = grid
        if tiles.dim() != 4 or tiles.shape[1] != 3 or tiles.shape[0] != columns * rows:
            raise ValueError(
                f"tiles {tuple(tiles.shape)} do not fill a {columns}x{rows} grid of (3, s, s)"
            )
        return columns, rows

    # --- decoding ---------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.Tensor,
        images: Sequence[ImageViews] | None = None,
        vision_embeds: Sequence[torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Cache | None = None,
        use_cache: bool = True,
        logits_to_keep: int = 0,
    ) -> DeepseekOcrCausalLMOutput:
        """Run the decoder over token ids whose ``<image>`` slots hold vision tokens.

        Args:
            input_ids: ``(B, L)`` token ids. Every ``<image>`` id (``config.image_token_id``)
                is one slot; slots are filled in order, row by row over the batch.
            images: pixel views of the images, in slot order (encoded here).
            vision_embeds: vision tokens from ``encode_views``, in slot order (e.g. cached);
                give this or ``images``, not both.
            attention_mask: ``(B, L_past + L)`` 1 for real tokens, 0 for padding.
            position_ids: ``(B, L)``; by default they continue from the cache.
            past_key_values: a transformers ``Cache`` from an earlier call.
            use_cache: return a cache (a new ``DeepseekOcrKVCache`` if none was given).
            logits_to_keep: compute logits only for the last this many positions (0: all).

        Returns:
            ``logits`` ``(B, L or logits_to_keep, vocab)`` in fp32 and ``past_key_values``.

        Raises:
            ValueError: the number of vision tokens differs from the number of slots.
        """
        embed = self.model.language_model.embed_tokens
        inputs_embeds = embed(input_ids)  # (B, L, D)
        slots = input_ids == self.config.image_token_id
        if images is not None and vision_embeds is not None:
            raise ValueError("give images or vision_embeds, not both")
        if images is not None:
            vision_embeds = [
                self.encode_views(view.global_view, view.tiles, view.tile_grid) for view in images
            ]
        n_slots = int(slots.sum())
        if vision_embeds is not None or n_slots:
            tokens = torch.cat(list(vision_embeds or []), dim=0) if vision_embeds else None
            count = 0 if tokens is None else tokens.shape[0]
            if count != n_slots:
                raise ValueError(f"{n_slots} <image> slot(s) but {count} vision token(s)")
            if tokens is not None:
                # index assignment rather than masked_scatter, which misbehaves on MPS
                inputs_embeds = inputs_embeds.clone()
                inputs_embeds[slots] = tokens.to(inputs_embeds.device, inputs_embeds.dtype)
        if use_cache and past_key_values is None:
            past_key_values = DeepseekOcrKVCache()
        outputs = self.model.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            **cache_kwargs(past_key_values),
        )
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden).float()
        return DeepseekOcrCausalLMOutput(logits=logits, past_key_values=returned_cache(outputs))

    # --- checkpoints ------------------------------------------------------------------

    def _our_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(t.shape) for name, t in self.state_dict(keep_vars=True).items()}

    def load_official_state_dict(
        self, tensors: Mapping[str, torch.Tensor], strict: bool = True
    ) -> LoadReport:
        """Load tensors named as in the released checkpoint (``model.sam_model...``).

        Names and shapes are all checked before anything is copied. Parameters still on
        the meta device receive the given tensors (on the meta device only shapes are
        checked); others keep their device. Every tensor is cast to the parameter's dtype.

        Args:
            tensors: official name -> tensor.
            strict: fail on missing or unexpected keys; otherwise report them and leave the
                parameters they would feed untouched. Misshapen keys always fail.

        Returns:
            Missing and unexpected official keys (empty when strict).

        Raises:
            CheckpointMismatchError: naming every missing, unexpected or misshapen key.
        """
        shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}

        def read(name: str, dtype: torch.dtype, device: torch.device | None) -> torch.Tensor:
            tensor = tensors[name]
            return tensor.to(device=device or tensor.device, dtype=dtype)

        return self._load_official(shapes, read, strict=strict, device=None, dtype=None)

    def _load_official(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        read: Callable[[str, torch.dtype, torch.device | None], torch.Tensor],
        *,
        strict: bool,
        device: torch.device | None,
        dtype: torch.dtype | None,
        read_into: Callable[[str, torch.Tensor, int], None] | None = None,
    ) -> LoadReport:
        """Check, convert and assign; meta parameters go to ``device`` (``None``: the
        source's), every parameter becomes ``dtype`` (``None``: the parameter's).

        ``read(name, dtype, device)`` returns an official tensor cast and placed; the
        optional ``read_into`` fills row blocks and packed experts in place (see
        ``import_step``)."""
        current = self.state_dict(keep_vars=True)
        ours = {name: tuple(t.shape) for name, t in current.items()}
        if _NATIVE_MARKER in shapes:
            # saved by save_pretrained under our own names: the identity mapping
            steps = [ConversionStep(Rename(k, k), ((k, s),), ((k, s),)) for k, s in ours.items()]
        else:
            steps = conversion_plan(ours)
        report = check_official_shapes(steps, shapes, strict=strict)
        skipped = set(report.missing_keys)

        def place(name: str) -> tuple[torch.dtype, torch.device | None]:
            target = current[name]
            return dtype or target.dtype, device if target.is_meta else target.device

        for step in steps:
            if skipped.intersection(name for name, _ in step.sources):
                continue
            step_dtype, step_device = place(step.targets[0][0])

            def fetch(
                name: str, cast: torch.dtype = step_dtype, to: torch.device | None = step_device
            ) -> torch.Tensor:
                return read(name, cast, to)

            for name, tensor in import_step(step, fetch, place, read_into).items():
                self._assign(name, tensor)
        self._materialize_buffers()
        return report

    def _assign(self, name: str, tensor: torch.Tensor) -> None:
        module_name, _, attribute = name.rpartition(".")
        module = self.get_submodule(module_name)
        old = getattr(module, attribute)
        if isinstance(old, nn.Parameter):
            setattr(module, attribute, nn.Parameter(tensor, requires_grad=old.requires_grad))
        else:
            module.register_buffer(attribute, tensor)

    def _materialize_buffers(self) -> None:
        """Recompute the buffers no checkpoint holds (RoPE frequencies, CLIP position ids)."""
        real = [p.device for p in self.parameters() if not p.is_meta]
        if not real:
            return
        device = real[0]
        for module in self.modules():
            if isinstance(module, CLIPVisionEmbeddings) and module.position_ids.is_meta:
                ids = torch.arange(module.num_positions, device=device).expand((1, -1))
                module.register_buffer("position_ids", ids, persistent=False)
            if isinstance(module, DeepseekOcr2TextRotaryEmbedding) and module.inv_freq.is_meta:
                fresh, _ = module.compute_default_rope_parameters(module.config)
                module.register_buffer("inv_freq", fresh.to(device), persistent=False)
                module.register_buffer("original_inv_freq", fresh.to(device), persistent=False)

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """This model's tensors under the released checkpoint's names and layout.

        Returns:
            Official name -> tensor. Per-expert tensors are views into the packed expert
            tensors (no copy of the experts is made); clone them before handing the dict
            to safetensors' ``save_file``, which refuses tensors that share storage.
        """
        ours = self.state_dict()
        steps = conversion_plan({name: tuple(t.shape) for name, t in ours.items()})
        out: dict[str, torch.Tensor] = {}
        for step in steps:
            out.update(export_step(step, ours.__getitem__))
        return out

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        *model_args: Any,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> Self:
        """Load the released checkpoint (or one laid out like it) from a local directory.

        Reads ``config.json`` (the released one, ``model_type: deepseek_vl_v2``, or one
        saved by ``DeepSeekOCRConfig.save_pretrained``) and the safetensors weights
        (``model.safetensors.index.json`` shards, else ``model-00001-of-000001.safetensors``
        or ``model.safetensors``) with official tensor names, or with our own names as
        ``save_pretrained`` writes them. The model is built on the meta device, then filled
        one tensor at a time: a tensor kept as stored (same dtype, on the CPU) is a view
        into a memory map of the file, and every other one (cast, moved, a packed expert
        or a row block) is read with positional reads straight into its own memory, so no
        second copy of the weights is ever held. Nothing is downloaded.

        Args:
            pretrained_model_name_or_path: the checkpoint directory.
            device: where the weights go (default CPU).
            dtype: weight dtype (default: the checkpoint's own, bfloat16 for the release).

        Returns:
            The model in eval mode.

        Raises:
            CheckpointError: the directory, config or weights are missing or unreadable.
            CheckpointMismatchError: the weights do not match the config (every bad key is
                named).
            TypeError: an option of transformers' hub loader was passed.
        """
        if model_args or kwargs:
            extra = [*map(repr, model_args), *kwargs]
            raise TypeError(f"DeepSeekOCR.from_pretrained reads a local directory; got {extra}")
        directory = Path(pretrained_model_name_or_path)
        if not directory.is_dir():
            raise CheckpointError(f"checkpoint directory {directory} does not exist")
        config = _read_config(directory)
        config.name_or_path = str(directory)  # where the tokenizer is found later
        files = _weight_files(directory)
        target = torch.device(device) if device is not None else torch.device("cpu")
        with SafetensorsFiles(files) as weights:
            with torch.device("meta"):
                model = cls(config)
            model._load_official(
                weights.shapes,
                weights.tensor,
                strict=True,
                device=target,
                dtype=dtype or weights.float_dtype or torch.float32,
                read_into=weights.read_into,
            )
        model.eval()
        return model


def _read_config(directory: Path) -> DeepSeekOCRConfig:
    path = directory / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path} does not exist") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    try:
        if raw.get("model_type") == DeepSeekOCRConfig.model_type:
            return DeepSeekOCRConfig.from_dict(raw)
        return DeepSeekOCRConfig.from_official_dict(raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a DeepSeek-OCR config: {exc}") from exc


def _weight_files(directory: Path) -> list[Path]:
    index = directory / _INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index} is not a safetensors index: {exc}") from exc
        files = [directory / name for name in names]
        absent = [str(file) for file in files if not file.is_file()]
        if absent:
            raise CheckpointError(f"{index} lists missing file(s): {', '.join(absent)}")
        return files
    for name in _WEIGHT_FILES:
        if (directory / name).is_file():
            return [directory / name]
    tried = ", ".join((_INDEX_FILE, *_WEIGHT_FILES))
    raise CheckpointError(f"no weights in {directory} (looked for {tried})")
