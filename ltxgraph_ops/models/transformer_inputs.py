"""Configuration and forward-pass inputs of the LTX-2 transformer (see :mod:`ltxgraph_ops.models.transformer`)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, NamedTuple

import torch

from ltxgraph_ops.model_version import model_version


@dataclass(frozen=True)
class TransformerConfig:
    """The header's ``transformer`` section (same key names; defaults are the reference's code defaults,
    the release's own values come from the header)."""

    num_layers: int = 48
    num_attention_heads: int = 32
    attention_head_dim: int = 128
    in_channels: int = 128
    out_channels: int = 128
    cross_attention_dim: int = 4096
    caption_channels: int = 3840
    audio_num_attention_heads: int = 32
    audio_attention_head_dim: int = 64
    audio_in_channels: int = 128
    audio_out_channels: int = 128
    audio_cross_attention_dim: int = 2048
    norm_eps: float = 1e-6
    positional_embedding_theta: float = 10000.0
    positional_embedding_max_pos: tuple[int, ...] = (20, 2048, 2048)
    audio_positional_embedding_max_pos: tuple[int, ...] = (20,)
    use_middle_indices_grid: bool = True
    rope_type: Literal["interleaved", "split"] = "interleaved"
    frequencies_precision: str = "float32"
    timestep_scale_multiplier: float = 1000
    av_ca_timestep_scale_multiplier: float = 1
    # LTX-2.3 and later (absent from 2.0 headers, whose defaults these are)
    apply_gated_attention: bool = False         # every attention scales its heads by 2 sigmoid(to_gate_logits(query))
    cross_attention_adaln: bool = False         # text attention modulated: 9 block rows, prompt AdaLN on the text
    use_prompt_adaln_single: bool = True        # with cross_attention_adaln: the text modulation follows sigma
    caption_proj_before_connector: bool = False  # the text path projects captions; the transformer has no projection
    ff_bias: bool = True                        # feed-forward biases (LTX-2.5 drops them)
    audio_ff_bias: bool = True
    use_keyframes_abs_pos_embedding: bool = False  # a learned [1, D] marker added to single-pixel-frame video tokens
    # not a header key: audio<->video scale/shift from the stream's own per-token timesteps (ltx-core 1.2.0, used
    # for LTX-2.3+) instead of the other stream's sigma (ltx-core 1.0.0 and diffusers, kept for LTX-2.0 files)
    av_modulation_own_timesteps: bool = False
    has_video: bool = True          # not header keys: which streams the checkpoint holds
    has_audio: bool = True

    @classmethod
    def from_header(cls, section: dict, has_video: bool = True, has_audio: bool = True) -> "TransformerConfig":
        """Build from the header's ``transformer`` section; unknown keys are ignored."""
        if section.get("rope_type", "interleaved") not in ("interleaved", "split"):
            raise ValueError(f"transformer header has unknown rope_type {section['rope_type']!r}")
        names = {f.name for f in fields(cls)} - {"has_video", "has_audio", "av_modulation_own_timesteps"}
        values = {key: (tuple(value) if isinstance(value, list) else value)
                  for key, value in section.items() if key in names}
        if not (has_video or has_audio):
            raise ValueError("a transformer needs a video or an audio stream")
        version = model_version({"config": {"transformer": section}}, source="transformer header")
        return cls(**values, has_video=has_video, has_audio=has_audio, av_modulation_own_timesteps=version != "2.0")

    def __post_init__(self) -> None:
        if self.has_video and self.cross_attention_dim != self.video_dim:
            raise ValueError(f"cross_attention_dim {self.cross_attention_dim} must equal the video width "
                             f"num_attention_heads * attention_head_dim = {self.video_dim}")
        if self.has_audio and self.audio_cross_attention_dim != self.audio_dim:
            raise ValueError(f"audio_cross_attention_dim {self.audio_cross_attention_dim} must equal the audio "
                             f"width audio_num_attention_heads * audio_attention_head_dim = {self.audio_dim}")

    @property
    def modulation_rows(self) -> int:
        """Rows of each block's adaLN table: (shift, scale, gate) for self-attention and feed-forward, plus
        (shift, scale, gate) of the text attention's queries with cross-attention AdaLN."""
        return 9 if self.cross_attention_adaln else 6

    @property
    def text_follows_sigma(self) -> bool:
        """True when the text keys/values depend on the step's sigma (prompt AdaLN with its timestep MLP), so a
        :class:`PreparedText` holds for one sigma only."""
        return self.cross_attention_adaln and self.use_prompt_adaln_single

    @property
    def video_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def audio_dim(self) -> int:
        return self.audio_num_attention_heads * self.audio_attention_head_dim


@dataclass(frozen=True)
class PreparedText:
    """One stream's text context with every block's cross-attention keys and values computed once.

    Built by :meth:`LTXAVTransformer.prepare_text`; pass it as :attr:`StreamInput.context` to reuse it across
    sampling steps and across guidance passes that share the prompt. The text keys and values depend only on the
    prompt and the weights (not on the noise level or the latent), so results equal the uncached forward.

    keys, values:   per block [B, S, D] (keys RMS-normalised; text attention has no RoPE).
    context_mask:   [B, S] 1 = text token, 0 = padding; None = all valid.
    sigma:          [B] the noise level the text was modulated for when the model's text keys/values follow
                    sigma (LTX-2.3 prompt AdaLN, ``TransformerConfig.text_follows_sigma``); then it holds for that
                    sigma only (reused across the guidance passes of one step). None: holds for every sigma.

    Memory: ``2 * num_layers * B * S * D`` elements per stream per prompt. At the 19B size with 1024 text tokens
    and B = 1 in float32: 1.5 GiB (video, D = 4096) + 0.75 GiB (audio, D = 2048); twice that for a positive and a
    negative prompt. It saves ``4 * num_layers * B * S * D * D`` FLOPs per stream per forward (3.3 TFLOP video).
    """

    stream: Literal["video", "audio"]
    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    context_mask: torch.Tensor | None = None
    sigma: torch.Tensor | None = None

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


class TextKeysValuesStore:
    """One stream's per-block text keys and values, kept as the forwards compute them: what a block-streaming
    model (never all blocks resident, so :meth:`LTXAVTransformer.prepare_text` cannot run) reuses from its second
    forward on. Give the same store with the same text (context and mask) to every forward: block i computes
    its pair when the store lacks it and reads it otherwise, so results equal the forward without the store.
    Only for a transformer whose text keys/values do not follow sigma. Memory as :class:`PreparedText`, over the
    text columns some row reads."""

    def __init__(self, stream: Literal["video", "audio"], blocks: int) -> None:
        self.stream = stream
        self.keys: list[torch.Tensor | None] = [None] * blocks
        self.values: list[torch.Tensor | None] = [None] * blocks

    def complete(self) -> bool:
        return all(k is not None for k in self.keys)

    def get(self, block: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        key = self.keys[block]
        return None if key is None else (key, self.values[block])

    def put(self, block: int, pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep block ``block``'s (keys, values) [B, S, D] and return them."""
        self.keys[block], self.values[block] = pair
        return pair

    def check(self, stream: str, blocks: int, text: torch.Tensor) -> None:
        """The store fits ``stream``, a model of ``blocks`` blocks and the text [B, S, ...] its pairs come from."""
        kept = next((k for k in self.keys if k is not None), None)
        if stream != self.stream or blocks != len(self.keys) or (
                kept is not None and tuple(kept.shape[:2]) != tuple(text.shape[:2])):
            found = "no pairs" if kept is None else f"pairs of text {tuple(kept.shape[:2])}"
            raise ValueError(f"the {stream} input's text store was built for the {self.stream} stream of "
                             f"{len(self.keys)} blocks with {found}; this forward has {blocks} blocks and text "
                             f"{tuple(text.shape[:2])}")

    def prepared(self, context_mask: torch.Tensor | None) -> PreparedText:
        """The complete store as a :class:`PreparedText` with ``context_mask``."""
        return PreparedText(self.stream, tuple(self.keys), tuple(self.values), context_mask)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values) if t is not None)


@dataclass(frozen=True)
class ReferenceTokens:
    """Clean context tokens the blocks see before a stream's own tokens (LTX-2.3 ID-LoRA / lipdub: a reference
    voice before the audio). They take part in every attention of the stream at timestep 0 (clean) and at their
    own positions (a reference voice: negative times, ending one latent frame before 0); the output drops them.

    tokens:    [B, R, C] patchified clean latent (the stream's token layout).
    positions: [B, n_axes, R, 2] token ``[start, end)`` ranges in the stream's units.
    """

    tokens: torch.Tensor
    positions: torch.Tensor

    def __post_init__(self) -> None:
        if self.tokens.ndim != 3 or self.positions.ndim != 4 or self.positions.shape[2] != self.tokens.shape[1]:
            raise ValueError(f"reference tokens {tuple(self.tokens.shape)} [B, R, C] and positions "
                             f"{tuple(self.positions.shape)} [B, n_axes, R, 2] do not fit together")

    @property
    def count(self) -> int:
        return self.tokens.shape[1]


@dataclass(frozen=True)
class StreamInput:
    """One stream (video or audio) of a forward pass.

    latent:         [B, T, C] noisy tokens (guide tokens appended after the generated ones).
    sigma:          [B] (or a scalar tensor) noise level of the step.
    positions:      [B, n_axes, T, 2] token ``[start, end)`` ranges (video: time s, height px, width px;
                    audio: time s); guide tokens carry the positions of the frames they guide.
    context:        [B, S, caption_channels] text embeddings (connector output; [B, S, stream width] when the
                    text path projects captions, LTX-2.3), or a :class:`PreparedText`
                    of this stream (cached text keys/values; its own mask is used, ``context_mask`` must be None).
    context_mask:   [B, S] 1 = text token, 0 = padding; None = all valid.
    noise_mask:     [B, T] in [0, 1], 1 = generate, 0 = keep; per-token timestep = noise_mask * sigma.
    attention_mask: [B, T, T] in [0, 1] self-attention weights (0 blocks, <1 weakens; guide strength).
    enabled:        False leaves this stream's tokens untouched by the blocks (they still feed the other
                    stream's cross-attention); its output is the output head applied to its input embedding.
    text_rows:      [B] long: the row of ``context`` (then a batch of the distinct prompts, [P, S, ...]) that each
                    latent row reads, so guidance passes sharing a prompt share its text keys/values; None = row b
                    reads row b.
    reference:      clean tokens placed before ``latent`` for the blocks (see :class:`ReferenceTokens`); the
                    velocity returned covers ``latent`` only. None = no reference.
    keyframes_mask: [B, T] non-zero on tokens whose latent frame encodes one pixel frame (the causal first
                    frame, generated keyframe slots): they receive the model's keyframe absolute-position
                    embedding (``use_keyframes_abs_pos_embedding``, LTX-2.5; ignored by models without it).
                    None = no token marked.
    text_store:     a :class:`TextKeysValuesStore` of this stream that the forward fills and reads (``context``
                    then a tensor); None = text keys/values computed from ``context`` and not kept.
    """

    latent: torch.Tensor
    sigma: torch.Tensor
    positions: torch.Tensor
    context: torch.Tensor | PreparedText
    context_mask: torch.Tensor | None = None
    noise_mask: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    enabled: bool = True
    text_rows: torch.Tensor | None = None
    reference: ReferenceTokens | None = None
    keyframes_mask: torch.Tensor | None = None
    text_store: TextKeysValuesStore | None = None

    def __post_init__(self) -> None:
        if self.reference is not None and self.attention_mask is not None:
            raise ValueError("a stream with reference tokens cannot also take a self-attention mask (guide "
                             "strengths): reference tokens go to the audio stream, guides to the video stream")

    def timesteps(self) -> torch.Tensor:
        """Per-token timestep ``noise_mask * sigma``: [B, T]."""
        sigma = self.sigma.reshape(-1, 1).to(torch.float32)
        if self.noise_mask is None:
            return sigma.expand(self.latent.shape[0], self.latent.shape[1])
        return self.noise_mask.to(torch.float32) * sigma

    def sequence(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What the blocks see: tokens [B, R + T, C], positions [B, n_axes, R + T, 2] and per-token timesteps
        [B, R + T], the reference's R tokens (timestep 0) first; without a reference, this stream's own."""
        if self.reference is None:
            return self.latent, self.positions, self.timesteps()
        batch = self.latent.shape[0]
        ref = self.reference
        tokens = ref.tokens.to(self.latent.device, self.latent.dtype).expand(batch, -1, -1)
        positions = ref.positions.to(self.positions.device, self.positions.dtype).expand(batch, -1, -1, -1)
        timesteps = self.timesteps()
        return (torch.cat([tokens, self.latent], dim=1), torch.cat([positions, self.positions], dim=2),
                torch.cat([timesteps.new_zeros(batch, ref.count), timesteps], dim=1))


Blocks = frozenset[int] | Literal["all"]


@dataclass(frozen=True)
class Perturbations:
    """Guidance perturbations of one forward pass.

    Each ``skip_*`` names the blocks (indices, or ``"all"``) where that attention is skipped:
    self-attention skipped = its output replaced by the value projection (STG); audio<->video attention
    skipped = its residual dropped (modality guidance skips both directions in every block).
    ``samples`` [B] bool picks the perturbed samples of the batch; None = every sample.
    """

    skip_video_self_attention: Blocks = frozenset()
    skip_audio_self_attention: Blocks = frozenset()
    skip_audio_to_video: Blocks = frozenset()
    skip_video_to_audio: Blocks = frozenset()
    samples: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for name in ("skip_video_self_attention", "skip_audio_self_attention", "skip_audio_to_video",
                     "skip_video_to_audio"):
            blocks = getattr(self, name)
            if isinstance(blocks, str):
                if blocks != "all":
                    raise ValueError(f"{name} must be block indices or 'all', not {blocks!r}")
            else:
                object.__setattr__(self, name, frozenset(int(b) for b in blocks))

    @classmethod
    def stg(cls, blocks: list[int], video: bool = True, audio: bool = True) -> "Perturbations":
        """Spatio-temporal guidance: value-only self-attention in ``blocks`` of the chosen streams."""
        chosen = frozenset(blocks)
        return cls(skip_video_self_attention=chosen if video else frozenset(),
                   skip_audio_self_attention=chosen if audio else frozenset())

    @classmethod
    def isolate_modalities(cls) -> "Perturbations":
        """Modality guidance: no audio<->video attention anywhere."""
        return cls(skip_audio_to_video="all", skip_video_to_audio="all")

    def keep_mask(self, blocks: Blocks, index: int, batch: int, like: torch.Tensor
                  ) -> torch.Tensor | None | Literal["skip"]:
        """For block ``index``: None (nothing perturbed), ``"skip"`` (every sample perturbed), or a
        [B, 1, 1] mask, 1 = keep, 0 = perturbed."""
        if not (blocks == "all" or index in blocks):
            return None
        if self.samples is None or bool(self.samples.all()):
            return "skip"
        if not bool(self.samples.any()):
            return None
        return (~self.samples.bool()).to(like.dtype).reshape(batch, 1, 1)

    def keep(self, kind: str, index: int, batch: int, like: torch.Tensor) -> torch.Tensor | None | Literal["skip"]:
        """:meth:`keep_mask` of one attention ``kind``: "video_self_attention", "audio_self_attention",
        "audio_to_video" or "video_to_audio"."""
        return self.keep_mask(getattr(self, f"skip_{kind}"), index, batch, like)


@dataclass(frozen=True)
class StackedPerturbations:
    """Perturbations of a batch that stacks several guidance passes (one forward for all passes of a step):
    ``parts[i]`` applies to the next ``rows[i]`` rows of the batch, so STG skips self-attention and modality
    isolation skips audio<->video attention in the perturbed pass's rows only."""

    parts: tuple[Perturbations, ...]
    rows: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.parts) != len(self.rows):
            raise ValueError(f"{len(self.parts)} perturbations for {len(self.rows)} row counts")

    def keep(self, kind: str, index: int, batch: int, like: torch.Tensor) -> torch.Tensor | None | Literal["skip"]:
        """Like :meth:`Perturbations.keep` over the stacked batch: None, ``"skip"`` or a [B, 1, 1] mask."""
        if batch != sum(self.rows):
            raise ValueError(f"the batch has {batch} rows, the stacked perturbations {sum(self.rows)}")
        masks = [part.keep(kind, index, rows, like) for part, rows in zip(self.parts, self.rows)]
        if all(mask is None for mask in masks):
            return None
        if all(isinstance(mask, str) for mask in masks):
            return "skip"
        full = {None: 1.0, "skip": 0.0}
        return torch.cat([torch.full((rows, 1, 1), full[mask], dtype=like.dtype, device=like.device)
                          if mask is None or isinstance(mask, str) else mask
                          for mask, rows in zip(masks, self.rows)])


NO_PERTURBATIONS = Perturbations()
PassPerturbations = Perturbations | StackedPerturbations    # what a forward pass takes


class Velocity(NamedTuple):
    """Predicted velocity per stream: video [B, Tv, C], audio [B, Ta, C] (None where no input)."""

    video: torch.Tensor | None
    audio: torch.Tensor | None


def denoised(stream: StreamInput, velocity: torch.Tensor) -> torch.Tensor:
    """Clean-latent estimate ``x0 = x - v * t`` per token, in float32, returned in the latent dtype."""
    t = stream.timesteps().unsqueeze(-1)
    return (stream.latent.float() - velocity.float() * t).to(stream.latent.dtype)
