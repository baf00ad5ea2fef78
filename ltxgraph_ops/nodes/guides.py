"""Conditioning nodes of LTX-2.3 workflows (ComfyUI and ComfyUI-LTXVideo names): first-frame conditioning on a
fresh noise mask, IC-LoRA reference videos as (dilated) guide frames with their own attention strength, and a
reference voice as audio tokens in the conditioning.

Video latents are [B, 128, F, h, w] (8 pixel frames and 32 x 32 pixels per cell); audio latents [B, C, T, M]."""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import torch

from ltxgraph import Port, op
from ltxgraph.input_checks import input_check
from ltxgraph.values import Audio, AudioLatent, VideoLatent
from ltxgraph_ops.audio_ops import AudioVAEHandle, ltxv_audio_vae_encode
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.guides import (GUIDE_FRAMES_APPENDED, IMAGE_FITTED_TO_LATENT, add_reference_guide,
                                 encode_into_first_frames)
from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.vae_handle import VideoVAEHandle

CROP_MODES = ("disabled", "center")


# --------------------------------------------------------------------------------------- first frame


@op("LTXVImgToVideoConditionOnly", outputs={"latent": "VIDEO_LATENT"}, category="conditioning/video_models",
    exempt=IMAGE_FITTED_TO_LATENT)
def img_to_video_condition_only(vae: Annotated[VideoVAEHandle, Port("VAE")],
                                image: Annotated[torch.Tensor, Port("IMAGE")],
                                latent: Annotated[VideoLatent, Port("VIDEO_LATENT")],
                                strength: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 1.0,
                                bypass: Annotated[bool, Port("BOOLEAN", optional=True)] = False) -> VideoLatent:
    """``image`` (centre-cropped and resized to the latent's size; 8n+1 frames used) encoded into the first
    latent frames, on a fresh noise mask [1, 1, F, 1, 1]: 1 - strength on those frames, 1 elsewhere (any mask
    the latent had is replaced)."""
    if bypass:
        return latent
    samples, count = encode_into_first_frames(vae, image, latent)
    frames = samples.shape[2]
    mask = torch.ones(1, 1, frames, 1, 1)
    mask[:, :, :count] = 1.0 - strength
    return replace(latent, samples=samples, noise_mask=mask)


# --------------------------------------------------------------------------------------- IC-LoRA guides


GuideInputs = dict(
    frame_idx=Annotated[int, Port("INT", min=-9999, max=9999)],
    strength=Annotated[float, Port("FLOAT", min=0.0, max=1.0)],
    latent_downscale_factor=Annotated[float, Port("FLOAT", min=1.0, max=10.0)],
    crop=Annotated[str, Port("STRING", choices=CROP_MODES)],
    use_tiled_encode=Annotated[bool, Port("BOOLEAN")],
    tile_size=Annotated[int, Port("INT", min=64, max=512, multiple_of=32)],
    tile_overlap=Annotated[int, Port("INT", min=16, max=256, multiple_of=16)],
)
GUIDE_OUTPUTS = {"positive": "CONDITIONING", "negative": "CONDITIONING", "latent": "VIDEO_LATENT"}


@op("LTXAddVideoICLoRAGuide", outputs=GUIDE_OUTPUTS, category="Lightricks/IC-LoRA", exempt=GUIDE_FRAMES_APPENDED)
def add_video_iclora_guide(positive: Annotated[Conditioning, Port("CONDITIONING")],
                           negative: Annotated[Conditioning, Port("CONDITIONING")],
                           vae: Annotated[VideoVAEHandle, Port("VAE")],
                           latent: Annotated[VideoLatent, Port("VIDEO_LATENT")],
                           image: Annotated[torch.Tensor, Port("IMAGE")],
                           frame_idx: GuideInputs["frame_idx"] = 0,
                           strength: GuideInputs["strength"] = 1.0,
                           latent_downscale_factor: GuideInputs["latent_downscale_factor"] = 1.0,
                           crop: GuideInputs["crop"] = "disabled",
                           use_tiled_encode: GuideInputs["use_tiled_encode"] = False,
                           tile_size: GuideInputs["tile_size"] = 256,
                           tile_overlap: GuideInputs["tile_overlap"] = 64
                           ) -> tuple[Conditioning, Conditioning, VideoLatent]:
    """An IC-LoRA's reference video (or image) appended as guide frames (see :func:`add_reference_guide`);
    LTXVCropGuides removes them after sampling."""
    return add_reference_guide(positive, negative, vae, latent, image, frame_idx, strength,
                               latent_downscale_factor, crop, use_tiled_encode, tile_size, tile_overlap)


def attention_weights(attention_strength: float, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Per-pixel attention multipliers of a guide: mask x strength ([frames, H, W] or [H, W]); None = all 1."""
    if attention_mask is None:
        return None if attention_strength == 1.0 else torch.full((1, 1), float(attention_strength))
    return attention_mask.float().clamp(0.0, 1.0) * attention_strength


@op("LTXAddVideoICLoRAGuideAdvanced", outputs=GUIDE_OUTPUTS, category="Lightricks/IC-LoRA",
    exempt=GUIDE_FRAMES_APPENDED)
def add_video_iclora_guide_advanced(positive: Annotated[Conditioning, Port("CONDITIONING")],
                                    negative: Annotated[Conditioning, Port("CONDITIONING")],
                                    vae: Annotated[VideoVAEHandle, Port("VAE")],
                                    latent: Annotated[VideoLatent, Port("VIDEO_LATENT")],
                                    image: Annotated[torch.Tensor, Port("IMAGE")],
                                    frame_idx: GuideInputs["frame_idx"] = 0,
                                    strength: GuideInputs["strength"] = 1.0,
                                    latent_downscale_factor: GuideInputs["latent_downscale_factor"] = 1.0,
                                    crop: GuideInputs["crop"] = "disabled",
                                    use_tiled_encode: GuideInputs["use_tiled_encode"] = False,
                                    tile_size: GuideInputs["tile_size"] = 256,
                                    tile_overlap: GuideInputs["tile_overlap"] = 64,
                                    attention_strength: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 1.0,
                                    attention_mask: Annotated[torch.Tensor | None,
                                                              Port("MASK", optional=True)] = None
                                    ) -> tuple[Conditioning, Conditioning, VideoLatent]:
    """LTXAddVideoICLoRAGuide whose guide tokens are attended to with weight ``attention_strength``, times
    ``attention_mask`` (pixel space, [frames, H, W] or [H, W], averaged onto the guide's tokens) when given."""
    return add_reference_guide(positive, negative, vae, latent, image, frame_idx, strength,
                               latent_downscale_factor, crop, use_tiled_encode, tile_size, tile_overlap,
                               attention_weights(attention_strength, attention_mask))


# --------------------------------------------------------------------------------------- reference audio


def audio_tokens(latent: torch.Tensor) -> torch.Tensor:
    """Audio latent [B, C, T, M] -> tokens [B, T, C * M] (channels major, as the transformer patchifies)."""
    batch, channels, frames, bins = latent.shape
    return latent.permute(0, 2, 1, 3).reshape(batch, frames, channels * bins)


@op("LTXVSetAudioRefTokens", outputs={"positive": "CONDITIONING", "negative": "CONDITIONING",
                                      "frozen_audio": "AUDIO_LATENT"}, category="Lightricks/IC-LoRA")
def set_audio_ref_tokens(positive: Annotated[Conditioning, Port("CONDITIONING")],
                         negative: Annotated[Conditioning, Port("CONDITIONING")],
                         audio_latent: Annotated[AudioLatent, Port("AUDIO_LATENT")]
                         ) -> tuple[Conditioning, Conditioning, AudioLatent]:
    """A voice to keep: the audio latent's tokens [B, T, C * M] attached to both prompts as reference audio,
    and the latent itself frozen (noise mask 0 [B, 1, T, 1]) for a stage that regenerates around it."""
    tokens = audio_tokens(audio_latent.samples)
    batch, _, frames, _ = audio_latent.samples.shape
    frozen = replace(audio_latent, noise_mask=torch.zeros(batch, 1, frames, 1))
    return positive.with_reference_audio(tokens), negative.with_reference_audio(tokens), frozen


IDENTITY_GUIDANCE = "identity_guidance"
"""ModelHandle metadata key: (scale, start_percent, end_percent) of LTXVReferenceAudio's identity guidance."""


@input_check("end_percent")
def percent_range(start_percent: float, end_percent: float) -> str | None:
    """Refuses a step range that ends before it starts."""
    if start_percent > end_percent:
        return f"start_percent {start_percent} is after end_percent {end_percent}"
    return None


@op("LTXVReferenceAudio", outputs={"MODEL": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING"},
    category="model/conditioning/ltxv", checks=(percent_range,))
def reference_audio(model: Annotated[ModelHandle, Port("MODEL")],
                    positive: Annotated[Conditioning, Port("CONDITIONING")],
                    negative: Annotated[Conditioning, Port("CONDITIONING")],
                    reference_audio: Annotated[Audio, Port("AUDIO")],
                    audio_vae: Annotated[AudioVAEHandle, Port("AUDIO_VAE")],
                    identity_guidance_scale: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 3.0,
                    start_percent: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 0.0,
                    end_percent: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 1.0
                    ) -> tuple[ModelHandle, Conditioning, Conditioning]:
    """ID-LoRA speaker identity: ``reference_audio`` encoded by the audio VAE and attached to both prompts as
    reference tokens; the MODEL carries identity guidance (each step inside start..end percent adds
    scale x (cond - cond without the reference) to the guided prediction; scale 0 = off)."""
    tokens = audio_tokens(ltxv_audio_vae_encode(reference_audio, audio_vae).samples)
    guided = model
    if identity_guidance_scale != 0.0:
        guided = replace(model, metadata={**model.metadata,
                                          IDENTITY_GUIDANCE: (identity_guidance_scale, start_percent, end_percent)})
    return guided, positive.with_reference_audio(tokens), negative.with_reference_audio(tokens)
