# transformers' config base classes are untyped; calling them is intended.
# mypy: disable-error-code="no-untyped-call"
"""Configuration of DeepSeek-OCR v1: SAM-ViT-B, a 16x compressor, CLIP-L and a DeepSeek MoE decoder.

``DeepSeekOCRConfig()`` is the released ``deepseek-ai/DeepSeek-OCR`` model;
``DeepSeekOCRConfig.tiny()`` is a few-hundred-thousand-parameter model with the same layout
for tests. The three parts are sub-configs of transformers' own classes, so
``save_pretrained``/``from_pretrained`` round-trip and each part can be built on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec
from transformers.models.clip.configuration_clip import CLIPVisionConfig
from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import DeepseekOcr2TextConfig
from transformers.models.sam.configuration_sam import SamVisionConfig

from optical_memory.errors import CheckpointError, InvalidSettingError

__all__ = [
    "DeepSeekOCRConfig",
    "DeepseekOcrClipConfig",
    "DeepseekOcrSamConfig",
    "DeepseekOcrTextConfig",
]

IMAGE_TOKEN_ID = 128815
"""Id of ``<image>`` in the released tokenizer; every vision-token slot holds one."""


class DeepseekOcrSamConfig(SamVisionConfig):
    """SAM-ViT-B as DeepSeek-OCR uses it, plus the two-conv 16x token compressor.

    The SAM defaults of transformers already are ViT-B with window 14 and global blocks
    2, 5, 8 and 11. ``compressor_mid_channels`` and ``compressor_out_channels`` are the
    outputs of the two stride-2 convolutions (``net_2``, ``net_3`` in the checkpoint).
    """

    model_type = "deepseek_ocr_sam"
    base_config_key = "sam_config"

    compressor_mid_channels: int = 512
    compressor_out_channels: int = 1024


class DeepseekOcrClipConfig(CLIPVisionConfig):
    """CLIP-L/14 at 224 px; it reads the compressor output in place of its patch embeddings."""

    model_type = "deepseek_ocr_clip"
    base_config_key = "clip_config"

    hidden_size: int = 1024
    intermediate_size: int = 4096
    projection_dim: int = 768
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int | list[int] | tuple[int, int] | None = 224
    patch_size: int | list[int] | tuple[int, int] | None = 14
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5


class DeepseekOcrTextConfig(DeepseekOcr2TextConfig):
    """The DeepSeek-3B-MoE decoder: MHA, layer 0 dense, 64 routed experts (top-6) + 2 shared.

    Router: softmax in fp32, plain top-k, weights not renormalised, scaling 1.0.
    ``mlp_layer_types`` defaults to one dense layer followed by sparse ones.
    """

    model_type = "deepseek_ocr_text"
    base_config_key = "text_config"
    default_theta = 10_000.0

    vocab_size: int = 129280
    hidden_size: int = 1280
    intermediate_size: int = 6848
    num_hidden_layers: int = 12
    num_attention_heads: int = 10
    num_key_value_heads: int | None = 10
    max_position_embeddings: int = 8192
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    n_routed_experts: int = 64
    n_shared_experts: int = 2
    num_experts_per_tok: int | None = 6
    moe_intermediate_size: int = 896
    topk_method: str | None = "greedy"
    routed_scaling_factor: float = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        if self.mlp_layer_types is None:
            # first_k_dense_replace = 1 in the released model
            self.mlp_layer_types = ["dense"] + ["sparse"] * (self.num_hidden_layers - 1)
        if len(self.mlp_layer_types) != self.num_hidden_layers:
            raise InvalidSettingError(
                f"mlp_layer_types has {len(self.mlp_layer_types)} entries for "
                f"{self.num_hidden_layers} layers"
            )
        super().__post_init__(**kwargs)


class DeepSeekOCRConfig(PreTrainedConfig):
    """DeepSeek-OCR v1: DeepEncoder (SAM + compressor + CLIP) and the MoE decoder.

    Args:
        sam_config: SAM-ViT-B and compressor settings (dict or config).
        clip_config: CLIP-L settings; its width must equal the compressor's output channels.
        text_config: decoder settings.
        image_token_id: id of the ``<image>`` token whose slots receive vision tokens.
        tie_word_embeddings: the released model keeps ``lm_head`` separate.

    Example:
        >>> config = DeepSeekOCRConfig()
        >>> config.text_config.n_routed_experts
        64
    """

    model_type = "deepseek_ocr"
    sub_configs_defaults = {  # noqa: RUF012 (transformers' own class attribute)
        "sam_config": SubConfigSpec(DeepseekOcrSamConfig),
        "clip_config": SubConfigSpec(DeepseekOcrClipConfig),
        "text_config": SubConfigSpec(DeepseekOcrTextConfig),
    }

    sam_config: dict[str, Any] | PreTrainedConfig | None = None
    clip_config: dict[str, Any] | PreTrainedConfig | None = None
    text_config: dict[str, Any] | PreTrainedConfig | None = None
    image_token_id: int = IMAGE_TOKEN_ID
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.clip.hidden_size != self.sam.compressor_out_channels:
            raise InvalidSettingError(
                f"CLIP width {self.clip.hidden_size} must equal the compressor's output "
                f"channels {self.sam.compressor_out_channels}: CLIP reads them as patch embeddings"
            )
        if not 0 <= self.image_token_id < self.text.vocab_size:
            raise InvalidSettingError(
                f"image_token_id {self.image_token_id} is outside the vocabulary "
                f"(size {self.text.vocab_size})"
            )

    @property
    def sam(self) -> DeepseekOcrSamConfig:
        """The SAM sub-config, typed."""
        assert isinstance(self.sam_config, DeepseekOcrSamConfig)  # set in __post_init__
        return self.sam_config

    @property
    def clip(self) -> DeepseekOcrClipConfig:
        """The CLIP sub-config, typed."""
        assert isinstance(self.clip_config, DeepseekOcrClipConfig)
        return self.clip_config

    @property
    def text(self) -> DeepseekOcrTextConfig:
        """The decoder sub-config, typed."""
        assert isinstance(self.text_config, DeepseekOcrTextConfig)
        return self.text_config

    @property
    def vision_feature_size(self) -> int:
        """Channels of one fused vision feature: CLIP output and SAM compressor output."""
        return self.clip.hidden_size + self.sam.compressor_out_channels

    @classmethod
    def tiny(cls, *, full_vocab: bool = False) -> DeepSeekOCRConfig:
        """A small model with the real spatial math, for tests.

        SAM keeps patch 16, its 64x64 position grid and window 14 (block 1 is global), and
        CLIP keeps its 16x16 + 1 position table, so vision-token counts match the released
        model at every resolution. Widths are 32 (vision) and 64 (decoder), with 2 layers
        each, 4 routed experts (top-2) and 2 shared.

        Args:
            full_vocab: keep the released 129,280-token vocabulary and ``<image>`` id 128815,
                so real tokenizer ids work. By default the vocabulary has 1,024 ids; BOS 0,
                EOS 1 and pad 2 are unchanged and ``<image>`` is id 1000.

        Returns:
            The tiny configuration.
        """
        return cls(
            sam_config={
                "hidden_size": 32,
                "output_channels": 16,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "mlp_dim": 64,
                "global_attn_indexes": [1],
                "compressor_mid_channels": 24,
                "compressor_out_channels": 32,
            },
            clip_config={
                "hidden_size": 32,
                "intermediate_size": 64,
                "projection_dim": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
            },
            text_config={
                "vocab_size": 129280 if full_vocab else 1024,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 4,
                "n_routed_experts": 4,
                "num_experts_per_tok": 2,
                "n_shared_experts": 2,
                "moe_intermediate_size": 16,
                "max_position_embeddings": 2048,
            },
            image_token_id=IMAGE_TOKEN_ID if full_vocab else 1000,
        )

    @classmethod
    def from_official_dict(cls, raw: Mapping[str, Any]) -> DeepSeekOCRConfig:
        """Build a config from the released ``config.json`` (``model_type: deepseek_vl_v2``).

        The released file describes only the decoder (``language_config``); SAM and CLIP
        sizes are fixed in its code and take the defaults here. Two optional keys extend
        the format for small test checkpoints: ``sam_config`` and ``clip_config`` (dicts of
        the sub-config fields); ``image_token_id`` may also be given.

        Args:
            raw: the parsed ``config.json``.

        Returns:
            The configuration.

        Raises:
            CheckpointError: the file describes a variant this model does not implement
                (multi-head latent attention, grouped routing, renormalised top-k).
        """
        language = raw.get("language_config")
        lang: Mapping[str, Any] = language if isinstance(language, Mapping) else raw
        if lang.get("use_mla", False):
            raise CheckpointError("config.json asks for multi-head latent attention (use_mla)")
        if lang.get("topk_method", "greedy") != "greedy":
            raise CheckpointError(f"config.json routing {lang['topk_method']!r} is not 'greedy'")
        if lang.get("norm_topk_prob", False):
            raise CheckpointError("config.json renormalises top-k weights (norm_topk_prob)")
        if lang.get("scoring_func", "softmax") != "softmax":
            raise CheckpointError(f"config.json scoring {lang['scoring_func']!r} is not softmax")
        copied = (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "moe_intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "n_routed_experts",
            "n_shared_experts",
            "num_experts_per_tok",
            "routed_scaling_factor",
            "rms_norm_eps",
            "max_position_embeddings",
            "bos_token_id",
            "eos_token_id",
            "hidden_act",
            "attention_bias",
        )
        text: dict[str, Any] = {key: lang[key] for key in copied if lang.get(key) is not None}
        layers = int(text.get("num_hidden_layers", 12))
        dense = int(lang.get("first_k_dense_replace") or 0)
        freq = int(lang.get("moe_layer_freq") or 1)
        if lang.get("n_routed_experts") is None and "n_routed_experts" in lang:
            raise CheckpointError("config.json describes a dense decoder (n_routed_experts null)")
        text["mlp_layer_types"] = [
            "sparse" if i >= dense and i % freq == 0 else "dense" for i in range(layers)
        ]
        rope_theta = lang.get("rope_theta")
        if lang.get("rope_scaling"):
            raise CheckpointError("config.json sets rope_scaling, which this model does not use")
        if rope_theta is not None:
            text["rope_parameters"] = {"rope_type": "default", "rope_theta": float(rope_theta)}
        kwargs: dict[str, Any] = {"text_config": text}
        for key in ("sam_config", "clip_config", "image_token_id"):
            if key in raw:
                kwargs[key] = raw[key]
        kwargs["tie_word_embeddings"] = bool(raw.get("tie_word_embeddings", False))
        return cls(**kwargs)
