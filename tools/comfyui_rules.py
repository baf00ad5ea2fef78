"""Measure, on the tiny LTX-2.0 transformer, how far ComfyUI's rules move a result where ComfyUI departs from
Lightricks' reference (ltxgraph keeps the reference there; see the README section "Same as ComfyUI").

ComfyUI itself does not run here (not installable from the package index); each departure is re-stated as a
small change of our own modules (facts read from ComfyUI's files, no code of it) and measured as the relative
L2 difference ||comfyui - reference|| / ||reference|| and the max abs difference of one Euler step.

Departures measured:
- ``cross_modulation``: ComfyUI (comfy/ldm/lightricks/av_model.py, the pinned fork and mainline) feeds the
  audio<->video cross-attention scale/shift and gate embedders the other stream's largest timestep in sigma
  units (0..1; gate times av_ca_multiplier / timestep_multiplier), the reference sigma * 1000 (and, LTX-2.3,
  ltx-core 1.2.0 the stream's own per-token timesteps for the scale/shift).
- ``gemma_norm_scale``: ComfyUI's Gemma 3 RMSNorm (comfy/text_encoders/llama.py) forms its scale 1 + w in the
  weight's stored dtype (bf16 in every released Gemma file) before casting it to the activations' float32; the
  reference (transformers) forms 1 + w in float32. Seen first by the golden run (tools/comfyui_golden.py).
- ``unstripped_prompt``: ComfyUI's Gemma tokenizer (comfy/sd1_clip.py, SPieceTokenizer) keeps a prompt's
  surrounding whitespace (the LTX-2.3 templates' prompt ends in a newline: one more token); ltx-core strips it.
- ``fractional_mask``: ComfyUI's sampler state is unmasked (it starts at sigma noise + (1 - sigma) clean,
  CONST.noise_scaling), the model sees m x + (1 - m) clean of it (KSamplerX0Inpaint; LTXAV's
  scale_latent_inpaint returns the clean latent) and x0 = x_in - v * sigma (CONST.calculate_denoised, one sigma
  per sample); the reference starts at the masked level m sigma and forms x0 = x - v * (m * sigma) per token.
  Equal for masks of 0 and 1. Found by the golden LTX-2.3 i2v run (strength 0.7).
- ``attention_norm_eps``: ComfyUI's transformer attention (comfy/ldm/lightricks/model.py CrossAttention) builds
  its q and k RMSNorms with eps 1e-5; the reference (ltx-core 1.2.0) with the config's norm_eps (1e-6). Found by
  the golden LTX-2.3 run, layer by layer.
- ``rope_time_reciprocal``: ComfyUI turns video token times from pixel frames into seconds as ``t * (1 /
  frame_rate)`` (LTXBaseModel._prepare_positional_embeddings and, for the audio<->video RoPE, LTXAVModel's), the
  reference as ``t / fps``: equal up to one float32 rounding of the time, which RoPE's highest frequency (theta
  pi / 2 = 15708 rad per unit of max_pos fraction) turns into angles up to 1e-3 rad apart. Found by the golden
  LTX-2.3 run (5 s videos: the LTX-2.0 goldens are shorter).

Usage: python tools/comfyui_rules.py [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ltxgraph_ops import av_model  # noqa: E402
from ltxgraph_ops.av_model import LTXAVModel  # noqa: E402
from ltxgraph_ops.conditioning import Conditioning  # noqa: E402
from ltxgraph_ops.models.attention import Attention  # noqa: E402
from ltxgraph_ops.models.gemma import GemmaTextModel  # noqa: E402
from ltxgraph_ops.models.gemma_layers import GemmaRMSNorm  # noqa: E402
from ltxgraph_ops.models.gemma_tokenizer import GemmaTokenizer  # noqa: E402
from ltxgraph_ops.models.transformer import LTXAVTransformer  # noqa: E402
from ltxgraph_ops.nodes import loaders  # noqa: E402
from ltxgraph_ops.models.transformer_inputs import StreamInput  # noqa: E402
from ltxgraph_ops.sampling.denoiser import MaskedDenoiser, sample_latents  # noqa: E402
from ltxgraph_ops.sampling.noise import add_noise  # noqa: E402
from ltxgraph_ops.sampling.samplers import sample_euler  # noqa: E402
from ltxgraph_ops.tiny import transformer as tiny  # noqa: E402
from tools.oracle.transformer import random_state  # noqa: E402

VIDEO_SHAPE, AUDIO_SHAPE = (1, 128, 3, 4, 6), (1, 8, 9, 16)   # 17 frames at 192 x 128, 0.36 s of audio


@contextlib.contextmanager
def patched(owner: object, name: str, value: object) -> Iterator[None]:
    """Inside: ``owner.name`` is ``value``; the original is put back on exit."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def comfyui_cross_modulation() -> contextlib.AbstractContextManager[None]:
    """Inside: the audio<->video modulation embedders read the other stream's sigma unscaled (ComfyUI's rule)
    instead of sigma * timestep_scale_multiplier (the reference's), the scale/shift too for LTX-2.3 (where the
    reference reads the stream's own per-token timesteps)."""
    original = LTXAVTransformer._cross

    def cross(self, state, s, other_sigma, **kwargs):
        config = self.config
        self.config = replace(config, av_modulation_own_timesteps=False)
        try:
            return original(self, state, s, other_sigma=other_sigma / config.timestep_scale_multiplier, **kwargs)
        finally:
            self.config = config

    return patched(LTXAVTransformer, "_cross", cross)


def comfyui_gemma_norm_scale(stored: torch.dtype = torch.bfloat16) -> contextlib.AbstractContextManager[None]:
    """Inside: Gemma's RMSNorm scale (offset + weight) is rounded to ``stored`` (the Gemma file's dtype) before it
    scales the float32 activations (ComfyUI's rule) instead of being formed in float32 (the reference's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        out = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.weight is not None:
            out = out * (self.weight.to(stored) + self.offset).float()
        return out.to(x.dtype)

    return patched(GemmaRMSNorm, "forward", forward)


def comfyui_unstripped_prompt() -> contextlib.AbstractContextManager[None]:
    """Inside: prompts are tokenized with their surrounding whitespace (ComfyUI's rule), not stripped (ltx-core's)."""
    return patched(GemmaTokenizer, "strips_prompt", False)


def comfyui_generated_token_embedding(stored: torch.dtype = torch.bfloat16) -> contextlib.AbstractContextManager[None]:
    """Inside: a token Gemma generated is embedded as ComfyUI's generation loop embeds it (comfy/text_encoders/
    llama.py BaseGenerate): the table row times sqrt(hidden), rounded to ``stored`` (the Gemma file's dtype),
    then cast to the compute dtype; the prompt's tokens (and the reference's) stay in the compute dtype. Told
    apart by width: a generation step embeds one token per row."""
    original = GemmaTextModel.embed

    def embed(self, ids: torch.Tensor, dtype: torch.dtype = torch.float32, images=None) -> torch.Tensor:
        if images is not None or ids.shape[1] != 1:
            return original(self, ids, dtype, images)
        return (self.embed_tokens(ids, stored) * self.config.hidden_size ** 0.5).to(dtype)

    return patched(GemmaTextModel, "embed", embed)


COMFYUI_TEXT_ENCODER_LORA_PREFIX = "text_encoders."


def comfyui_text_encoder_lora_names() -> contextlib.AbstractContextManager[None]:
    """Inside: a Gemma LoRA attached to a CLIP keeps only the files ComfyUI reads for a text encoder: keys named
    ``text_encoders.<the text encoder's own key>`` (comfy/lora.py model_lora_keys_clip); ComfyUI logs "lora key
    not loaded" for others, such as the tiny Gemma LoRA's ``model.layers.N.*`` (ltxgraph matches any prefix)."""
    from safetensors import safe_open
    original = loaders.LoraTextEncoder.applied_gemma

    def read_by_comfyui(path: str) -> bool:
        with safe_open(path, "pt") as f:
            return any(key.startswith(COMFYUI_TEXT_ENCODER_LORA_PREFIX) for key in f.keys())

    def applied_gemma(self):
        return original(replace(self, loras=tuple(lora for lora in self.loras if read_by_comfyui(lora[0]))))

    return patched(loaders.LoraTextEncoder, "applied_gemma", applied_gemma)


@contextlib.contextmanager
def comfyui_fractional_mask() -> Iterator[None]:
    """Inside: ComfyUI's sampling under a noise mask m (KSamplerX0Inpaint, CONST.noise_scaling and
    calculate_denoised): the sampler's state starts unmasked at sigma noise + (1 - sigma) clean, the model sees
    x_in = m x + (1 - m) clean of it, and its clean estimate is x_in - v sigma with the step's sigma, blended
    m x0 + (1 - m) clean. The reference starts at the masked level (m sigma) and estimates x - v (m sigma) per
    token on its own state. The same for masks of 0 and 1."""
    def one_sigma_denoised(stream: StreamInput, velocity: torch.Tensor) -> torch.Tensor:
        sigma = stream.sigma.reshape(-1, 1, 1).to(torch.float32)                 # [B, 1, 1]
        return (stream.latent.float() - velocity.float() * sigma).to(stream.latent.dtype)

    def call(self: MaskedDenoiser, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        x_in = self.keep_clean(self.unpack(x))
        return self.pack(self.keep_clean(self.model(x_in, self.timesteps(sigma), sigma)))

    def start(self: MaskedDenoiser, noise: Sequence[torch.Tensor], sigma: float | torch.Tensor) -> torch.Tensor:
        return self.pack([add_noise(clean, n, sigma) for clean, n in zip(self.clean, noise)])

    with patched(av_model, "denoised", one_sigma_denoised), patched(MaskedDenoiser, "__call__", call), \
            patched(MaskedDenoiser, "start", start):
        yield


COMFYUI_ATTENTION_NORM_EPS = 1e-5


def comfyui_attention_norm_eps() -> contextlib.AbstractContextManager[None]:
    """Inside: every transformer attention built normalises q and k with eps 1e-5 (ComfyUI's CrossAttention)
    instead of the config's norm_eps (the reference's, 1e-6 in every release)."""
    original = Attention.__init__

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        self.q_norm.eps = self.k_norm.eps = COMFYUI_ATTENTION_NORM_EPS

    return patched(Attention, "__init__", init)


def comfyui_rope_time_reciprocal() -> contextlib.AbstractContextManager[None]:
    """Inside: video token times (generated frames and guides) become seconds as ``pixel frame * (1 / fps)``
    (ComfyUI's rounding) instead of ``pixel frame / fps`` (the reference's): the layout is made at fps 1 (pixel
    frames, exact) and its time axis then multiplied by the float32 reciprocal, as ComfyUI does."""
    original = av_model.LTXAVModel._video_layout

    def video_layout(self, latent: torch.Tensor, conditioning: Conditioning):
        fps = conditioning.frame_rate or self.fps or av_model.DEFAULT_FPS
        tokens, positions, attention, select = original(self, latent, replace(conditioning, frame_rate=1.0))
        positions = positions.clone()
        positions[:, 0] = positions[:, 0] * (1.0 / fps)
        return tokens, positions, attention, select

    return patched(av_model.LTXAVModel, "_video_layout", video_layout)


@contextlib.contextmanager
def comfyui_departures() -> Iterator[None]:
    """Inside: every ComfyUI departure from the reference that the golden comparison emulates."""
    with comfyui_cross_modulation(), comfyui_gemma_norm_scale(), comfyui_unstripped_prompt(), \
            comfyui_fractional_mask(), comfyui_generated_token_embedding(), comfyui_text_encoder_lora_names(), \
            comfyui_attention_norm_eps(), comfyui_rope_time_reciprocal():
        yield


def tiny_model(seed: int = 0, version: str = "2.0") -> LTXAVModel:
    """The tiny transformer of ``version`` with seeded weights, behind the guiders' model interface, one prompt
    (2.3: text already projected to each stream's width)."""
    config = tiny.TINY_CONFIGS[version]()
    transformer = tiny.build(config)
    transformer.load_state_dict(random_state(transformer, seed))
    g = torch.Generator().manual_seed(seed + 1)
    c = transformer.config
    widths = (c.video_dim, c.audio_dim) if c.caption_proj_before_connector else (c.caption_channels,) * 2
    prompt = Conditioning(torch.randn(1, 7, widths[0], generator=g), torch.randn(1, 7, widths[1], generator=g),
                          torch.ones(1, 7, dtype=torch.int64), frame_rate=25.0)
    return LTXAVModel(transformer.eval(), ("video", "audio"), prompt)


def relative(ours: torch.Tensor, theirs: torch.Tensor) -> dict[str, float]:
    return {"relative_l2": float((theirs - ours).norm() / ours.norm()), "max_abs": float((theirs - ours).abs().max())}


def noise(seed: int = 42) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(VIDEO_SHAPE, generator=g), torch.randn(AUDIO_SHAPE, generator=g)


@torch.inference_mode()
def cross_modulation_step(version: str = "2.0") -> dict[str, dict[str, float]]:
    """One Euler step sigma 1 -> 0 of text-to-video (x1 = x0 at sigma 1): reference vs ComfyUI's rule."""
    model = tiny_model(version=version)
    latents, sigma = noise(), torch.tensor(1.0)
    timesteps = (torch.ones(1, 1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    reference = model(latents, timesteps, sigma)
    with comfyui_cross_modulation():
        comfyui = model(latents, timesteps, sigma)
    return {name: relative(r, c) for name, r, c in zip(("video", "audio"), reference, comfyui)}


@torch.inference_mode()
def fractional_mask_step(strength: float = 0.6) -> dict[str, float]:
    """Image-to-video with strength < 1 (first latent frame mask 1 - strength): the first frame after two Euler
    steps sigma 1 -> 0.5 -> 0, the reference vs ComfyUI's rule (:func:`comfyui_fractional_mask`)."""
    model = tiny_model()
    clean = (torch.randn(VIDEO_SHAPE, generator=torch.Generator().manual_seed(7)), torch.zeros(AUDIO_SHAPE))
    mask = torch.ones(1, 1, VIDEO_SHAPE[2], 1, 1)
    mask[:, :, 0] = 1.0 - strength
    sigmas = torch.tensor([1.0, 0.5, 0.0])

    def first_frame() -> torch.Tensor:
        return sample_latents(sample_euler, model, clean, (mask, None), noise(), sigmas)[0][:, :, :1]

    reference = first_frame()
    with comfyui_fractional_mask():
        comfyui = first_frame()
    return relative(reference, comfyui)


def measure() -> dict[str, object]:
    return {"cross_modulation_one_euler_step": cross_modulation_step(),
            "cross_modulation_one_euler_step_ltx23": cross_modulation_step("2.3"),
            "fractional_mask_first_frame_two_euler_steps_strength_0.6": fractional_mask_step()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = measure()
    print(json.dumps(results, indent=2 if args.json else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
