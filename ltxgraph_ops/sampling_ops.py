"""Sampling ops with ComfyUI's names: noise, samplers, schedules, guiders and SamplerCustomAdvanced.

NOISE, SAMPLER, SIGMAS and GUIDER values are descriptions; nothing runs until SamplerCustomAdvanced, which
packs the latent's modalities (video, audio or both), attaches the model's LoRAs for the duration of the run,
and samples them jointly, each under its own noise mask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Callable, Iterable

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check, refusal
from ltxgraph.types import LATENT
from ltxgraph.values import AudioLatent, AVLatent, VideoLatent
from ltxgraph_ops.av_model import LTXAVModel
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.nodes.guides import IDENTITY_GUIDANCE
from ltxgraph_ops.sampling.denoiser import sample_latents
from ltxgraph_ops.sampling.guiders import GuidanceParams, IdentityGuidance, MultimodalGuider
from ltxgraph_ops.sampling.noise import DisableNoise, RandomNoise, step_noise_generator
from ltxgraph_ops.sampling.preview import write_preview
from ltxgraph_ops.sampling.samplers import SAMPLERS, NonFiniteDenoisedError
from ltxgraph_ops.sampling.schedules import (BASIC_SCHEDULERS, ScheduleError, basic_scheduler, ltxv_sigmas,
                                             parse_manual_sigmas, percent_to_sigma, set_first_sigma)

MAX_SEED = 2 ** 64 - 1
MODALITIES = ("VIDEO", "AUDIO")


# --------------------------------------------------------------------------------------------- noise, sampler


@op("RandomNoise", outputs={"NOISE": "NOISE"}, category="sampling/custom_sampling/noise")
def random_noise(noise_seed: Annotated[int, Port("INT", min=0, max=MAX_SEED, control_after_generate=True)] = 0
                 ) -> RandomNoise:
    """Seeded Gaussian noise, ComfyUI's stream on any machine: one CPU generator seeded with ``noise_seed``
    draws the video latent's noise for the whole batch, then the audio latent's."""
    return RandomNoise(noise_seed)


@op("DisableNoise", outputs={"NOISE": "NOISE"}, category="sampling/custom_sampling/noise")
def disable_noise() -> DisableNoise:
    """No noise: sampling starts from the latent as it is."""
    return DisableNoise()


@dataclass(frozen=True)
class SamplerChoice:
    """SAMPLER: a sampling method by name (see :data:`ltxgraph_ops.sampling.samplers.SAMPLERS`)."""

    name: str

    @property
    def run(self) -> Callable[..., torch.Tensor]:
        return SAMPLERS[self.name]


@op("KSamplerSelect", outputs={"SAMPLER": "SAMPLER"}, category="sampling/custom_sampling/samplers")
def ksampler_select(sampler_name: Annotated[str, Port("STRING", choices=tuple(SAMPLERS))] = "euler"
                    ) -> SamplerChoice:
    """A sampler: euler, euler_ancestral (rectified-flow ancestral), their CFG++ forms euler_cfg_pp and
    euler_ancestral_cfg_pp, lcm, gradient_estimation, res_2s."""
    return SamplerChoice(sampler_name)


# --------------------------------------------------------------------------------------------- schedules


def _schedule(make: Callable[[], torch.Tensor]) -> torch.Tensor:
    try:
        return make()
    except ScheduleError as exc:
        raise InputValueError(str(exc)) from None


def latent_grid_shape(latent: VideoLatent | AudioLatent | AVLatent) -> tuple[int, ...]:
    """The shape whose grid sets LTXVScheduler's token count: the video part when there is one."""
    if isinstance(latent, AVLatent):
        return tuple(latent.video.samples.shape)
    return tuple(latent.samples.shape)


@op("LTXVScheduler", outputs={"SIGMAS": "SIGMAS"}, category="sampling/custom_sampling/schedulers")
def ltxv_scheduler(steps: Annotated[int, Port("INT", min=1, max=10000)] = 20,
                   max_shift: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 2.05,
                   base_shift: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 0.95,
                   stretch: Annotated[bool, Port("BOOLEAN")] = True,
                   terminal: Annotated[float, Port("FLOAT", min=0.0, max=0.99)] = 0.1,
                   latent: Annotated[Any, Port(LATENT, optional=True)] = None) -> torch.Tensor:
    """LTX-2's shifted schedule; the shift grows with the latent's token count (4096 tokens without a latent);
    with ``stretch`` the last non-zero sigma is ``terminal``."""
    shape = None if latent is None else latent_grid_shape(latent)
    return _schedule(lambda: ltxv_sigmas(steps, max_shift, base_shift, stretch, terminal, shape))


LONGEST_SCHEDULE = 100_000  # steps / denoise beyond this is a denoise near 0 (5e-324 overflowed int())


@input_check("denoise")
def schedule_not_endless(steps: int, denoise: float) -> str | None:
    """Refuses a denoise so near 0 that its schedule would be endless."""
    if 0.0 < denoise < 1.0 and steps / denoise > LONGEST_SCHEDULE:
        return (f"denoise {denoise:g} with {steps} steps asks for a {steps / denoise:.3g}-step schedule (at most "
                f"{LONGEST_SCHEDULE}): raise denoise")
    return None


@op("BasicScheduler", outputs={"SIGMAS": "SIGMAS"}, category="sampling/custom_sampling/schedulers",
    checks=(schedule_not_endless,))
def basic_scheduler_op(model: Annotated[ModelHandle, Port("MODEL")],
                       scheduler: Annotated[str, Port("STRING", choices=BASIC_SCHEDULERS)] = "simple",
                       steps: Annotated[int, Port("INT", min=1, max=10000)] = 20,
                       denoise: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 1.0) -> torch.Tensor:
    """A named schedule on LTX-2's sigma table (flow shift 2.37); denoise < 1 keeps its tail."""
    return _schedule(lambda: basic_scheduler(scheduler, steps, denoise))


@input_check("sigmas")
def sigmas_fall(sigmas: str) -> str | None:
    """Refuses sigmas text that is not a list of finite, non-negative numbers that never rise."""
    try:
        values = parse_manual_sigmas(sigmas).tolist()
    except ScheduleError as exc:
        return str(exc)
    if not all(math.isfinite(v) and v >= 0 for v in values):
        return f"sigmas must be finite and non-negative: {values}"
    rises = [i for i in range(1, len(values)) if values[i] > values[i - 1]]
    if rises:
        i = rises[0]
        return (f"sigmas must fall from noise to clean: sigma {i} ({values[i]:g}) is above sigma {i - 1} "
                f"({values[i - 1]:g})")
    return None


@op("ManualSigmas", outputs={"SIGMAS": "SIGMAS"}, category="sampling/custom_sampling/schedulers",
    checks=(sigmas_fall,))
def manual_sigmas(sigmas: Annotated[str, Port("STRING")] = "1, 0.5") -> torch.Tensor:
    """Sigmas written out, comma separated (e.g. the distilled list): finite, non-negative, never rising."""
    return parse_manual_sigmas(sigmas)


@op("SetFirstSigma", outputs={"SIGMAS": "SIGMAS"}, category="sampling/custom_sampling/sigmas")
def set_first_sigma_op(sigmas: Annotated[torch.Tensor, Port("SIGMAS")],
                       sigma: Annotated[float, Port("FLOAT", min=0.0, max=20000.0)] = 136.0) -> torch.Tensor:
    """The schedule with its first sigma replaced."""
    return _schedule(lambda: set_first_sigma(sigmas, sigma))


# --------------------------------------------------------------------------------------------- guiders


@dataclass(frozen=True)
class Guider:
    """GUIDER: the model, the prompts and the guidance of each modality ("video", "audio"); modalities without
    parameters get ``default``. Built into a :class:`MultimodalGuider` when the sampler knows the modalities."""

    model: ModelHandle
    positive: Conditioning
    negative: Conditioning | None
    default: GuidanceParams = field(default_factory=GuidanceParams)
    per_modality: dict[str, GuidanceParams] = field(default_factory=dict)
    perturb: dict[str, bool] | None = None
    cross_attention: dict[str, bool] = field(default_factory=dict)
    skip_steps: dict[str, int] = field(default_factory=dict)

    def build(self, adapter: LTXAVModel, modalities: tuple[str, ...]) -> MultimodalGuider:
        params = [self.per_modality.get(name, self.default) for name in modalities]
        blocks = None
        if self.perturb is not None:
            blocks = [p.stg_blocks if self.perturb.get(name, True) else None for name, p in zip(modalities, params)]
        return MultimodalGuider(adapter, params, perturbed_blocks=blocks,
                                cross_attention=[self.cross_attention.get(name, True) for name in modalities],
                                skip_steps=[self.skip_steps.get(name, 0) for name in modalities],
                                identity=self.identity_guidance())

    def identity_guidance(self) -> IdentityGuidance | None:
        """The model's identity guidance (LTXVReferenceAudio), its percent window as sigmas; None = none."""
        if IDENTITY_GUIDANCE not in self.model.metadata:
            return None
        scale, start_percent, end_percent = self.model.metadata[IDENTITY_GUIDANCE]
        return IdentityGuidance(scale, percent_to_sigma(start_percent), percent_to_sigma(end_percent))


@op("CFGGuider", outputs={"GUIDER": "GUIDER"}, category="sampling/custom_sampling/guiders")
def cfg_guider_op(model: Annotated[ModelHandle, Port("MODEL")],
                  positive: Annotated[Conditioning, Port("CONDITIONING")],
                  negative: Annotated[Conditioning, Port("CONDITIONING")],
                  cfg: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 8.0) -> Guider:
    """Classifier-free guidance at ``cfg`` for every modality (cfg 1 runs the positive prompt only)."""
    return Guider(model, positive, negative, GuidanceParams(cfg=cfg))


@op("BasicGuider", outputs={"GUIDER": "GUIDER"}, category="sampling/custom_sampling/guiders")
def basic_guider_op(model: Annotated[ModelHandle, Port("MODEL")],
                    conditioning: Annotated[Conditioning, Port("CONDITIONING")]) -> Guider:
    """The positive prompt's prediction, unguided."""
    return Guider(model, conditioning, None)


@dataclass(frozen=True)
class GuiderSettings:
    """GUIDER_PARAMETERS: one modality's guidance as ComfyUI-LTXVideo's GuiderParameters node sets it."""

    cfg: float
    stg: float
    perturb_attn: bool
    rescale: float
    modality_scale: float
    skip_step: int
    cross_attn: bool


@op("GuiderParameters", outputs={"GUIDER_PARAMETERS": "GUIDER_PARAMETERS"}, category="lightricks/LTXV")
def guider_parameters(modality: Annotated[str, Port("STRING", choices=MODALITIES)] = "VIDEO",
                      cfg: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 1.0,
                      stg: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 1.0,
                      perturb_attn: Annotated[bool, Port("BOOLEAN")] = True,
                      rescale: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 0.7,
                      modality_scale: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 0.0,
                      skip_step: Annotated[int, Port("INT", min=0, max=100)] = 0,
                      cross_attn: Annotated[bool, Port("BOOLEAN")] = True,
                      parameters: Annotated[dict | None, Port("GUIDER_PARAMETERS", optional=True)] = None
                      ) -> dict[str, GuiderSettings]:
    """Guidance of one modality, added to ``parameters`` (each modality at most once). pred = c + (cfg-1)(c-u)
    + stg (c - perturbed) + (modality_scale-1)(c - isolated), then std rescale; perturb_attn: this modality's
    self-attention is bypassed in the STG pass; cross_attn False: the other modality's cross-attention into it
    is bypassed; skip_step n: its prediction is recomputed only every n+1 steps."""
    parameters = dict(parameters or {})
    message = guidance_set_twice(modality, parameters)
    if message:
        raise InputValueError(message)
    parameters[modality] = GuiderSettings(cfg, stg, perturb_attn, rescale, modality_scale, skip_step, cross_attn)
    return parameters


def guidance_set_twice(modality: str, earlier: Iterable[str]) -> str | None:
    """Refuses guidance of ``modality`` when the ``earlier`` (connected) parameters set it already."""
    return f"guidance for {modality} is already set by the connected parameters" if modality in earlier else None


def parse_blocks(text: str) -> tuple[int, ...]:
    """"29" or "28, 29" -> block indices."""
    try:
        return tuple(int(item) for item in text.replace("\n", ",").split(",") if item.strip())
    except ValueError:
        raise InputValueError(f"skip_blocks {text!r} must be block numbers separated by commas, e.g. '29'") from None


@input_check("skip_blocks")
def block_numbers(skip_blocks: str) -> str | None:
    """Refuses skip_blocks text that is not block numbers separated by commas."""
    return refusal(parse_blocks, skip_blocks)


@op("MultimodalGuider", outputs={"GUIDER": "GUIDER"}, category="lightricks/LTXV", checks=(block_numbers,))
def multimodal_guider(model: Annotated[ModelHandle, Port("MODEL")],
                      positive: Annotated[Conditioning, Port("CONDITIONING")],
                      negative: Annotated[Conditioning, Port("CONDITIONING")],
                      parameters: Annotated[dict, Port("GUIDER_PARAMETERS")],
                      skip_blocks: Annotated[str, Port("STRING", multiline=True)] = "") -> Guider:
    """Per-modality CFG + STG (self-attention bypassed in ``skip_blocks``) + modality guidance + rescale, the
    reference pipelines' guider; modalities without parameters are unguided (cfg 1, no STG)."""
    blocks = parse_blocks(skip_blocks)
    layers = model.structure().config.num_layers
    outside = [b for b in blocks if not 0 <= b < layers]
    if outside:
        raise InputValueError(f"skip_blocks {outside} are outside the model's blocks 0..{layers - 1}")
    per_modality, perturb, cross, skips = {}, {}, {}, {}
    for key, settings in parameters.items():
        name = key.lower()
        per_modality[name] = GuidanceParams(cfg=settings.cfg, stg=settings.stg, modality=settings.modality_scale,
                                            rescale=settings.rescale, stg_blocks=blocks)
        perturb[name], cross[name], skips[name] = settings.perturb_attn, settings.cross_attn, settings.skip_step
    return Guider(model, positive, negative, GuidanceParams(stg_blocks=blocks), per_modality, perturb, cross, skips)


# --------------------------------------------------------------------------------------------- sampling


def _parts(latent: VideoLatent | AudioLatent | AVLatent) -> list[tuple[str, VideoLatent | AudioLatent]]:
    if isinstance(latent, AVLatent):
        return [("video", latent.video), ("audio", latent.audio)]
    return [("video" if isinstance(latent, VideoLatent) else "audio", latent)]


def _rebuild(latent, samples: tuple[torch.Tensor, ...]):
    """The input latent (type, masks, fps and durations kept) with new samples."""
    if isinstance(latent, AVLatent):
        return AVLatent(replace(latent.video, samples=samples[0]), replace(latent.audio, samples=samples[1]))
    return replace(latent, samples=samples[0])


@op("SamplerCustomAdvanced", outputs={"output": "=latent_image", "denoised_output": "=latent_image"},
    category="sampling/custom_sampling")
def sampler_custom_advanced(noise: Annotated[Any, Port("NOISE")],
                            guider: Annotated[Guider, Port("GUIDER")],
                            sampler: Annotated[SamplerChoice, Port("SAMPLER")],
                            sigmas: Annotated[torch.Tensor, Port("SIGMAS")],
                            latent_image: Annotated[Any, Port(LATENT)],
                            ctx: OpContext = None) -> tuple[Any, Any]:
    """Denoise ``latent_image`` down ``sigmas`` (video and audio jointly, each under its noise mask: 1 =
    generate, 0 = keep); a first sigma below 1 noises the input to that level (refinement). Returns the
    sampled latent and the model's last clean estimate, both with the input's masks, fps and durations. With a
    disk cache the state after each step is checkpointed and a rerun continues from the newest step."""
    ctx = ctx or OpContext("SamplerCustomAdvanced")
    if guider.model.metadata.get("audio_only") and isinstance(latent_image, AVLatent):
        # audio-only model (LTXVAudioOnlyModel): the audio alone is denoised; the placeholder video passes
        audio, audio_denoised = sampler_custom_advanced(noise, guider, sampler, sigmas, latent_image.audio, ctx)
        return AVLatent(latent_image.video, audio), AVLatent(latent_image.video, audio_denoised)
    parts = _parts(latent_image)
    modalities = tuple(name for name, _ in parts)
    latents = [part.samples.float() for _, part in parts]
    masks = [part.noise_mask for _, part in parts]
    if sigmas.ndim != 1:
        raise InputValueError(f"sigmas must be a 1-D list, got shape {tuple(sigmas.shape)}")
    if not bool(torch.isfinite(sigmas).all()) or bool((sigmas < 0).any()):
        raise InputValueError(f"sigmas must be finite and non-negative: {sigmas.tolist()}")
    noise_values = noise.generate(latents)
    steps = max(sigmas.numel() - 1, 0)
    last_denoised: list[torch.Tensor] = []

    preview_dir = ctx.settings.preview_dir

    checkpoint = ctx.sampler_checkpoint(steps) if steps else None

    def on_step(info: dict) -> None:
        last_denoised[:] = [info["denoised"]]
        if checkpoint is not None:
            checkpoint.history["denoised"] = info["denoised"]
        extra = {}
        if preview_dir is not None and modalities[0] == "video":
            video = info["denoised"][:, : latents[0][0].numel()].reshape(latents[0].shape)
            extra["preview"] = str(write_preview(preview_dir, f"{ctx.node}-step{info['i'] + 1:03d}.png", video))
        ctx.step(info["i"] + 1, steps, sigma=float(info["sigma"]), **extra)

    fps = next((part.fps for _, part in parts if isinstance(part, VideoLatent) and part.fps), None)
    with torch.inference_mode(), guider.model.applied() as transformer:
        # the guidance passes of a step run as one batched forward while their activations fit the budget; a
        # streamed model keeps its text keys/values where they fit beside them
        adapter = LTXAVModel(transformer, modalities, guider.positive, guider.negative, fps=fps,
                             on_block=ctx.counter("block"),
                             compute_dtype=ctx.settings.compute_dtype,
                             activation_budget=ctx.settings.memory_budget)
        guided = guider.build(adapter, modalities)
        generator = step_noise_generator(getattr(noise, "seed", 0), sampler.name)
        try:
            with ctx.stop_after_step():
                samples = sample_latents(sampler.run, guided, latents, masks, noise_values, sigmas.float(),
                                         callback=on_step, generator=generator, checkpoint=checkpoint)
        except NonFiniteDenoisedError as exc:
            raise InputValueError(f"{exc} (of {steps} steps)") from None
        except ValueError as exc:
            raise InputValueError(str(exc)) from None
    out = tuple(s.to(latent.dtype) for s, latent in zip(samples, (part.samples for _, part in parts)))
    if not last_denoised and checkpoint is not None and "denoised" in checkpoint.history:
        last_denoised = [checkpoint.history["denoised"]]   # resumed after the last step
    if last_denoised:
        sizes = [latent[0].numel() for latent in latents]
        flat = torch.split(last_denoised[0], sizes, dim=1)
        denoised = tuple(f.reshape(latent.shape).to(part.samples.dtype)
                         for f, latent, (_, part) in zip(flat, latents, parts))
    else:
        denoised = out
    return _rebuild(latent_image, out), _rebuild(latent_image, denoised)
