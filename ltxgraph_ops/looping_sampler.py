"""LTXVLoopingSampler: sampling a long or large video latent in overlapping temporal (and spatial) tiles.

The scheme of ComfyUI-LTXVideo's looping sampler, for video latents:

- Temporal tiles of ``temporal_tile_size`` pixel frames (/8 latent frames) advancing by tile - overlap.
- The first tile is sampled from its part of ``latents`` (a partial schedule refines them), with the matching
  part of ``optional_guiding_latents`` appended as a guide (IC-LoRA control or detailer input) at
  ``guiding_strength``.
- Every later tile is conditioned on the previous output's last ``overlap`` latent frames (a guide at frame 0,
  ``temporal_overlap_cond_strength``) and on its guiding latents after the overlap; its first frame is dropped
  and the next overlap - 1 frames cross-fade linearly into the previous output.
- Keyframe images (``optional_cond_images`` at ``optional_cond_image_indices``, pixel frames of the whole video,
  negative from the end) are added as guides in the tile that holds them, at ``cond_image_strength``.
- ``guiding_start_step`` / ``guiding_end_step`` limit the guiding latents to a middle range of the schedule.
- Optional AdaIN (``adain_factor``) pulls each later tile's per-channel statistics towards the first tile's (or
  towards ``optional_normalizing_latents`` per frame).
- Spatial tiles (``horizontal_tiles`` x ``vertical_tiles`` with ``spatial_overlap`` latent cells) are each
  processed through the temporal loop and blended with linear ramps.

Each tile's noise seed is the noise seed + start * tiles + v * horizontal_tiles + h. Per-tile prompts and
negative-index latents of the original are not offered (a clear error names them).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check
from ltxgraph.values import VideoLatent
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.guides import IMAGE_FITTED_TO_LATENT, add_guide, append_latent_guide, crop_guides
from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.latents import pixel_frames
from ltxgraph_ops.models.progress import Counter, counted
from ltxgraph_ops.sampling.noise import RandomNoise
from ltxgraph_ops.sampling_ops import Guider, SamplerChoice, sampler_custom_advanced
from ltxgraph_ops.vae_handle import VideoVAEHandle


def temporal_chunks(frames: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """[start, stop) latent frames of each temporal tile (the original's ranges); a latent no longer than the
    overlap is one tile (the original's ranges would be empty)."""
    step = tile - overlap
    chunks = [(start, min(end, frames)) for start, end in zip(range(0, frames + step, step),
                                                               range(tile, frames + step, step))]
    return chunks or [(0, frames)]


def keyframes_per_chunk(indices: list[int], tile: int, overlap: int, total_pixels: int,
                        time_scale: int = 8) -> dict[int, list[tuple[int, int]]]:
    """Keyframe pixel indices (negative from the end) -> {chunk: [(keyframe number, pixel index in the
    chunk)]}. Chunk 0 holds frames [0, tile*8 - 8]; chunk n >= 1 starts at pixel n*step*8 - 7 and holds a
    keyframe only past its leading overlap."""
    tile_px, overlap_px = tile * time_scale, overlap * time_scale
    step = tile_px - overlap_px
    out: dict[int, list[tuple[int, int]]] = {}
    for number, index in enumerate(indices):
        pixel = index + total_pixels if index < 0 else index
        if not 0 <= pixel < total_pixels:
            raise InputValueError(f"keyframe index {index} is outside the video's {total_pixels} frames")
        if pixel < tile_px - time_scale + 1:
            out.setdefault(0, []).append((number, pixel))
            continue
        chunk = 1
        while True:
            begin = chunk * step - (time_scale - 1)
            end = tile_px + chunk * step - time_scale
            if begin + overlap_px <= pixel <= end:
                out.setdefault(chunk, []).append((number, pixel - begin))
                break
            chunk += 1
    return out


def spatial_tile_size(cells: int, tiles: int, overlap: int, axis: str) -> int:
    """Latent cells of each of ``tiles`` spatial tiles along an axis of ``cells`` cells overlapping by ``overlap``
    (the last tile takes the remainder). Tiles must advance (be larger than the overlap), else ComfyUI-LTXVideo's
    blend ramps do not fit them: refused, naming spatial_overlap."""
    size = (cells + (tiles - 1) * overlap) // tiles
    if tiles > 1 and size <= overlap:
        fits = (f"at most spatial_overlap {cells - tiles}" if cells - tiles >= 1
                else f"at most {cells - 1} {axis} tiles" if cells > 1 else f"one {axis} tile")
        raise InputValueError(f"spatial_overlap {overlap} leaves no room for {tiles} {axis} tiles on a latent "
                              f"{cells} cells {'wide' if axis == 'horizontal' else 'high'}: use {fits}")
    return size


def adain(latent: torch.Tensor, reference: torch.Tensor, factor: float, per_frame: bool) -> torch.Tensor:
    """``latent`` [B, C, F, H, W] with its per-channel (or per channel and frame) mean and std moved towards
    ``reference``'s by ``factor``."""
    if factor == 0:
        return latent
    dims = (3, 4) if per_frame else (2, 3, 4)
    if per_frame:
        reference = reference[:, :, : latent.shape[2]]
    mean, std = latent.mean(dims, keepdim=True), latent.std(dims, keepdim=True).clamp_min(1e-6)
    ref_mean, ref_std = reference.mean(dims, keepdim=True), reference.std(dims, keepdim=True)
    normalised = (latent - mean) / std * ref_std + ref_mean
    return torch.lerp(latent, normalised, factor)


def linear_transition(first: torch.Tensor, second: torch.Tensor, overlap: int) -> torch.Tensor:
    """``first`` then ``second`` along frames, the last ``overlap`` frames of one cross-faded into the first
    ``overlap`` of the other (weights strictly between 1 and 0)."""
    if overlap <= 0:
        return torch.cat([first, second], dim=2)
    alpha = torch.linspace(1, 0, overlap + 2)[1:-1].view(1, 1, -1, 1, 1).to(first.dtype)
    mixed = alpha * first[:, :, -overlap:] + (1 - alpha) * second[:, :, :overlap]
    return torch.cat([first[:, :, :-overlap], mixed, second[:, :, overlap:]], dim=2)


def split_sigmas(sigmas: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The schedule as (before the guiding range, the guiding range, after it), neighbours sharing a sigma."""
    high, rest = sigmas[: start + 1], sigmas[start:]
    middle, low = rest[: end - start + 1], rest[end - start:]
    return high, middle, low


class TileSampler:
    """Samples one tile's latent with guides, as SamplerCustomAdvanced would, and crops the guides off."""

    def __init__(self, guider: Guider, sampler: SamplerChoice, noise: Any, ctx: OpContext) -> None:
        self.guider, self.sampler, self.noise, self.ctx = guider, sampler, noise, ctx

    def __call__(self, positive: Conditioning, negative: Conditioning, latent: VideoLatent, sigmas: torch.Tensor,
                 seed: int) -> VideoLatent:
        if sigmas.numel() < 2:
            return crop_guides(positive, negative, latent)[2]
        noise = RandomNoise(seed) if isinstance(self.noise, RandomNoise) else self.noise
        guider = replace(self.guider, positive=positive, negative=negative)
        _, denoised = sampler_custom_advanced(noise, guider, self.sampler, sigmas, latent, self.ctx)
        return crop_guides(positive, negative, denoised)[2]


@input_check("optional_positive_conditionings", presence=("optional_positive_conditionings",))
def no_per_tile_prompts(optional_positive_conditionings: Any) -> str | None:
    """Refuses the per-tile prompts this sampler does not run."""
    if optional_positive_conditionings is not None:
        return "per-tile prompts (optional_positive_conditionings) are not supported; leave that input unconnected"
    return None


@input_check("optional_negative_index_latents", presence=("optional_negative_index_latents",))
def no_negative_index_latents(optional_negative_index_latents: Any) -> str | None:
    """Refuses the negative-index latents this sampler does not run."""
    if optional_negative_index_latents is not None:
        return ("negative-index latents (optional_negative_index_latents) are not supported; leave that input "
                "unconnected")
    return None


@input_check("temporal_overlap")
def temporal_overlap_below_tile(temporal_tile_size: int, temporal_overlap: int) -> str | None:
    """Refuses a temporal overlap as long as the tile (pixel frames)."""
    if temporal_overlap >= temporal_tile_size:
        return f"temporal_overlap {temporal_overlap} must be smaller than temporal_tile_size {temporal_tile_size}"
    return None


def image_indices(text: str) -> list[int]:
    """"0, 40" -> [0, 40]; empty text -> [0]."""
    return [int(item) for item in (text.strip() or "0").split(",")]


@input_check("optional_cond_image_indices")
def indices_are_numbers(optional_cond_image_indices: str) -> str | None:
    """Refuses keyframe indices that are not whole numbers separated by commas."""
    try:
        image_indices(optional_cond_image_indices)
    except ValueError:
        return (f"optional_cond_image_indices {optional_cond_image_indices!r} must be frame numbers separated by "
                "commas, e.g. '0, 40'")
    return None


@op("LTXVLoopingSampler", outputs={"denoised_output": "VIDEO_LATENT"}, category="sampling",
    checks=(no_per_tile_prompts, no_negative_index_latents, temporal_overlap_below_tile, indices_are_numbers),
    exempt=IMAGE_FITTED_TO_LATENT)
def looping_sampler(
        model: Annotated[ModelHandle, Port("MODEL")],
        vae: Annotated[VideoVAEHandle, Port("VAE")],
        noise: Annotated[Any, Port("NOISE")],
        sampler: Annotated[SamplerChoice, Port("SAMPLER")],
        sigmas: Annotated[torch.Tensor, Port("SIGMAS")],
        guider: Annotated[Guider, Port("GUIDER")],
        latents: Annotated[VideoLatent, Port("VIDEO_LATENT")],
        temporal_tile_size: Annotated[int, Port("INT", min=24, max=1000, multiple_of=8)] = 80,
        temporal_overlap: Annotated[int, Port("INT", min=16, max=80, multiple_of=8)] = 24,
        guiding_strength: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 1.0,
        temporal_overlap_cond_strength: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 0.5,
        cond_image_strength: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 1.0,
        horizontal_tiles: Annotated[int, Port("INT", min=1, max=6)] = 1,
        vertical_tiles: Annotated[int, Port("INT", min=1, max=6)] = 1,
        spatial_overlap: Annotated[int, Port("INT", min=1, max=8)] = 1,
        optional_cond_images: Annotated[torch.Tensor | None, Port("IMAGE", optional=True)] = None,
        optional_guiding_latents: Annotated[VideoLatent | None, Port("VIDEO_LATENT", optional=True)] = None,
        adain_factor: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 0.0,
        optional_positive_conditionings: Annotated[Any, Port("CONDITIONING", optional=True)] = None,
        optional_negative_index_latents: Annotated[Any, Port("VIDEO_LATENT", optional=True)] = None,
        guiding_start_step: Annotated[int, Port("INT", min=0, max=1000)] = 0,
        guiding_end_step: Annotated[int, Port("INT", min=0, max=1000)] = 1000,
        optional_cond_image_indices: Annotated[str, Port("STRING")] = "0",
        optional_normalizing_latents: Annotated[VideoLatent | None, Port("VIDEO_LATENT", optional=True)] = None,
        ctx: OpContext = None) -> VideoLatent:
    """Sample ``latents`` in overlapping temporal (and spatial) tiles, each conditioned on the previous one's
    end, on its part of the guiding latents and on the keyframes it holds; see the module documentation."""
    ctx = ctx or OpContext("LTXVLoopingSampler")
    if guider.model is not model:
        guider = replace(guider, model=model)
    time_scale = vae.scale_factors[0]
    tile, overlap = temporal_tile_size // time_scale, temporal_overlap // time_scale
    if overlap >= tile:
        raise InputValueError(f"temporal_overlap {temporal_overlap} must be smaller than temporal_tile_size "
                              f"{temporal_tile_size}")
    samples = latents.samples
    batch, _, frames, height, width = samples.shape
    guide = None if optional_guiding_latents is None else optional_guiding_latents.samples
    if guide is not None and guide.shape[2] != frames:
        raise InputValueError(f"optional_guiding_latents has {guide.shape[2]} latent frames, latents {frames}")
    indices = image_indices(optional_cond_image_indices)
    images = optional_cond_images
    if images is not None and images.shape[0] != len(indices):
        raise InputValueError(f"{images.shape[0]} conditioning images but {len(indices)} indices "
                              f"({optional_cond_image_indices!r})")
    seed = getattr(noise, "seed", 0)
    run = TileSampler(guider, sampler, noise, ctx)
    tile_h = spatial_tile_size(height, vertical_tiles, spatial_overlap, "vertical")
    tile_w = spatial_tile_size(width, horizontal_tiles, spatial_overlap, "horizontal")
    output = torch.zeros_like(samples, dtype=torch.float32)
    weights = torch.zeros(1, 1, 1, height, width)
    for v in range(vertical_tiles):
        for h in range(horizontal_tiles):
            top = v * (tile_h - spatial_overlap)
            left = h * (tile_w - spatial_overlap)
            bottom = height if v == vertical_tiles - 1 else top + tile_h
            right = width if h == horizontal_tiles - 1 else left + tile_w
            region = (slice(None), slice(None), slice(None), slice(top, bottom), slice(left, right))
            part = replace(latents, samples=samples[region],
                           noise_mask=None if latents.noise_mask is None or latents.noise_mask.shape[3] == 1
                           else latents.noise_mask[region])
            result = _temporal_loop(
                run, vae, part, None if guide is None else guide[region], images, indices, sigmas, tile, overlap,
                guiding_strength, temporal_overlap_cond_strength, cond_image_strength, adain_factor,
                None if optional_normalizing_latents is None else optional_normalizing_latents.samples[region],
                guiding_start_step, guiding_end_step,
                seed_base=lambda start: seed + start * vertical_tiles * horizontal_tiles + v * horizontal_tiles + h,
                on_chunk=_tile_counter(ctx, v * horizontal_tiles + h, vertical_tiles * horizontal_tiles))
            ramp = _ramp(bottom - top, right - left, v, h, vertical_tiles, horizontal_tiles, spatial_overlap)
            output[region] += result.float() * ramp
            weights[region] += ramp
    fps = _known_fps(latents, optional_guiding_latents, optional_normalizing_latents, optional_negative_index_latents)
    return replace(latents, samples=(output / weights).to(samples.dtype), fps=fps)


def _known_fps(*latents: Any) -> float | None:
    """The first frame rate known among latents of the one video (an empty latent has none until it meets one)."""
    return next((latent.fps for latent in latents if isinstance(latent, VideoLatent) and latent.fps is not None), None)


def _ramp(rows: int, cols: int, v: int, h: int, vertical: int, horizontal: int, overlap: int) -> torch.Tensor:
    """Blend weights [1, 1, 1, rows, cols] of one spatial tile: linear ramps over the overlaps with neighbours."""
    weights = torch.ones(1, 1, 1, rows, cols)
    up, down = torch.linspace(0, 1, overlap), torch.linspace(1, 0, overlap)
    if h > 0:
        weights[..., :overlap] *= up
    if h < horizontal - 1:
        weights[..., -overlap:] *= down
    if v > 0:
        weights[..., :overlap, :] *= up.view(-1, 1)
    if v < vertical - 1:
        weights[..., -overlap:, :] *= down.view(-1, 1)
    return weights.clamp_min(1e-6)


def _tile_counter(ctx: OpContext, spatial_index: int, spatial_tiles: int) -> Counter:
    """Progress in tiles (spatial tile x temporal chunk) from one spatial tile's chunk counter."""
    def count(chunk: int, chunks: int) -> None:
        ctx.step(spatial_index * chunks + chunk, spatial_tiles * chunks, "tile")
    return count


def _temporal_loop(run: TileSampler, vae: VideoVAEHandle, latents: VideoLatent, guide: torch.Tensor | None,
                   images: torch.Tensor | None, indices: list[int], sigmas: torch.Tensor, tile: int, overlap: int,
                   guiding_strength: float, overlap_strength: float, image_strength: float, adain_factor: float,
                   normalizing: torch.Tensor | None, guiding_start: int, guiding_end: int,
                   seed_base, on_chunk: Counter | None = None) -> torch.Tensor:
    """One spatial tile sampled in overlapping temporal chunks; ``on_chunk(done, total)`` after each chunk."""
    frames = latents.samples.shape[2]
    chunks = temporal_chunks(frames, tile, overlap)
    keyframes = {} if images is None else keyframes_per_chunk(indices, tile, overlap, pixel_frames(frames),
                                                              vae.scale_factors[0])
    positive, negative = run.guider.positive, run.guider.negative or run.guider.positive
    high, middle, low = split_sigmas(sigmas, guiding_start, guiding_end)
    result = first_out = None
    for number, (start, stop) in enumerate(counted(chunks, on_chunk)):
        part = VideoLatent(latents.samples[:, :, start:stop], latents.fps, pixel_frames(stop - start),
                           None if latents.noise_mask is None else latents.noise_mask[:, :, start:stop])
        chunk_guide = None if guide is None else guide[:, :, start:stop]

        def with_guides(latent: VideoLatent, include_guide: bool, previous: torch.Tensor | None):
            pos, neg = positive.with_guides(None), negative.with_guides(None)
            if previous is not None:
                pos, neg, latent = append_latent_guide(pos, neg, latent, previous[:, :, -overlap:], 0,
                                                       overlap_strength, scale_factors=vae.scale_factors)
            if include_guide and chunk_guide is not None:
                skip = 0 if previous is None else overlap
                frame = 0 if skip == 0 else 1 + (skip - 1) * vae.scale_factors[0]
                pos, neg, latent = append_latent_guide(pos, neg, latent, chunk_guide[:, :, skip:], frame,
                                                       guiding_strength, scale_factors=vae.scale_factors)
            for image_number, index in keyframes.get(number, []):
                pos, neg, latent = add_guide(pos, neg, vae, latent, images[image_number:image_number + 1], index,
                                             image_strength)
            return pos, neg, latent

        previous = result
        seed = seed_base(start)
        current = part
        for phase, phase_sigmas in (("high", high), ("middle", middle), ("low", low)):
            if phase_sigmas.numel() < 2:
                continue
            pos, neg, guided = with_guides(current, phase == "middle", previous)
            current = replace(run(pos, neg, guided, phase_sigmas, seed), noise_mask=part.noise_mask)
        out = current.samples
        if result is None:
            result = first_out = out
            continue
        reference, per_frame = (first_out, False) if normalizing is None else (normalizing[:, :, start:stop], True)
        out = adain(out, reference, adain_factor, per_frame)
        result = linear_transition(result, out[:, :, 1:], overlap - 1)
    return result[:, :, :frames]
