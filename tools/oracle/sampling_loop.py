"""A whole LTX-2 sampling loop against the reference: the tiny transformer with identical weights, the 8-step
distilled schedule, video (first frame kept, as in image-to-video) and audio denoised jointly with Euler at
CFG 1. Ours runs through the op path (LTXAVModel adapter, guider, masked denoiser); the reference runs
ltx-pipelines' ``euler_denoising_loop`` on states built by ltx-core's latent tools and its X0 model."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.av_model import LTXAVModel  # noqa: E402
from ltxgraph_ops.conditioning import Conditioning  # noqa: E402
from ltxgraph_ops.models.transformer_tokens import audio_tokens, video_tokens  # noqa: E402
from ltxgraph_ops.sampling.denoiser import sample_latents  # noqa: E402
from ltxgraph_ops.sampling.guiders import cfg_guider  # noqa: E402
from ltxgraph_ops.sampling.noise import add_noise, gaussian_noise  # noqa: E402
from ltxgraph_ops.sampling.samplers import sample_euler  # noqa: E402
from ltxgraph_ops.tiny import transformer as tiny  # noqa: E402
from tools.oracle.transformer import build_pair, max_error  # noqa: E402

DISTILLED = torch.tensor([1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0])
FRAMES, HEIGHT, WIDTH, AUDIO_FRAMES, TEXT = 3, 2, 3, 5, 6
FPS = 24.0
SEED = 321


def inputs(config: dict):
    generator = torch.Generator().manual_seed(SEED)
    video = torch.randn(1, 128, FRAMES, HEIGHT, WIDTH, generator=generator)
    audio = torch.randn(1, 8, AUDIO_FRAMES, 16, generator=generator)
    video_mask = torch.ones(1, 1, FRAMES, HEIGHT, WIDTH)
    video_mask[:, :, 0] = 0.0  # the first frame is kept (image-to-video)
    context_mask = torch.ones(1, TEXT, dtype=torch.int64)
    context_mask[:, :2] = 0    # left padding, as the text encoder produces it
    conditioning = Conditioning(torch.randn(1, TEXT, config["caption_channels"], generator=generator),
                                torch.randn(1, TEXT, config["caption_channels"], generator=generator),
                                context_mask, frame_rate=FPS)
    return video, audio, video_mask, conditioning


def reference_loop(reference: torch.nn.Module, video, audio, video_mask, noise, conditioning) -> tuple:
    from dataclasses import replace

    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
    from ltx_core.guidance.perturbations import BatchedPerturbationConfig, PerturbationConfig
    from ltx_core.model.transformer.modality import Modality
    from ltx_core.model.transformer.model import X0Model
    from ltx_core.tools import AudioLatentTools, VideoLatentTools
    from ltx_core.types import AudioLatentShape, VideoLatentShape
    from ltx_pipelines.utils.samplers import euler_denoising_loop

    video_tools = VideoLatentTools(VideoLatentPatchifier(1), VideoLatentShape(1, 128, FRAMES, HEIGHT, WIDTH), fps=FPS)
    audio_tools = AudioLatentTools(AudioPatchifier(16), AudioLatentShape(1, 8, AUDIO_FRAMES, 16))
    video_state = video_tools.create_initial_state("cpu", torch.float32, initial_latent=video)
    audio_state = audio_tools.create_initial_state("cpu", torch.float32, initial_latent=audio)
    video_state = replace(video_state, denoise_mask=video_tokens(video_mask),
                          latent=video_tokens(add_noise(video, noise[0], DISTILLED[0], video_mask)))
    audio_state = replace(audio_state, latent=audio_tokens(add_noise(audio, noise[1], DISTILLED[0])))
    x0_model = X0Model(reference)
    none = BatchedPerturbationConfig([PerturbationConfig([])])

    def modality(state, context, sigma):
        return Modality(latent=state.latent, sigma=sigma.reshape(1), timesteps=state.denoise_mask * sigma,
                        positions=state.positions, context=context, enabled=True,
                        context_mask=conditioning.context_mask, attention_mask=None)

    def denoise(video_state, audio_state, sigmas, step):
        sigma = sigmas[step]
        return x0_model(modality(video_state, conditioning.video_context, sigma),
                        modality(audio_state, conditioning.audio_context, sigma), none)

    with torch.no_grad():
        video_out, audio_out = euler_denoising_loop(DISTILLED, video_state, audio_state, EulerDiffusionStep(),
                                                    denoise)
    return video_out.latent, audio_out.latent


def check_distilled_av_loop() -> float:
    config = tiny.tiny_config()
    pair = build_pair(config)
    video, audio, video_mask, conditioning = inputs(config)
    noise = gaussian_noise([video.shape, audio.shape], SEED)
    adapter = LTXAVModel(pair.ours, ("video", "audio"), conditioning)
    with torch.no_grad():
        ours = sample_latents(sample_euler, cfg_guider(adapter, 1.0), [video, audio], [video_mask, None],
                              noise, DISTILLED)
    ref_video, ref_audio = reference_loop(pair.reference, video, audio, video_mask, noise, conditioning)
    kept = float((ours[0][:, :, 0] - video[:, :, 0]).abs().max())  # must be exactly the input
    return max(max_error(video_tokens(ours[0]), ref_video), max_error(audio_tokens(ours[1]), ref_audio), kept)


CHECKS: dict[str, Callable[[], float]] = {"sampling.distilled_8_step_av_loop": check_distilled_av_loop}
