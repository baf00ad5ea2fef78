"""Geometry laws of LTX-2 values, checked on an op's outputs for drawn inputs where the port types say they apply.

- ``latent_frames``: a video latent of F latent frames decodes to 8(F-1)+1 pixel frames (its ``frames``).
- ``audio_steps``: an audio latent of T steps at r latents per second covers its ``seconds``: T = ceil(seconds * r)
  (within one part in a million).
- ``pixel_cells``: an op with a VAE input that turns IMAGE [F, H, W, C] into a VIDEO_LATENT gives
  [B, C', (F-1)/8+1, H/32, W/32]; one that turns a VIDEO_LATENT into IMAGE gives 8(F-1)+1 frames per batch item of
  32 x 32 pixels per cell.
- ``fps_kept``: an op given values carrying one frame rate (VIDEO, VIDEO_LATENT, AV_LATENT) and no input setting
  one (named ``*fps*`` or ``frame_rate``) returns values carrying that frame rate.
- ``frame_count``: an INT output that is a pixel frame count (named as :data:`FRAME_COUNT_OUTPUTS`, e.g.
  LTXVDurationPredictor's ``num_frames``) is 8n+1 (n >= 0), the only lengths the video VAE encodes and decodes.

Each law returns None when it holds or does not apply, else where it breaks.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import torch

from ltxgraph.registry import OpSpec
from ltxgraph.types import members
from ltxgraph.values import AudioLatent, AVLatent, Video, VideoLatent
from ltxgraph_ops.latents import PIXELS_PER_CELL, latent_frames, pixel_frames

def _parts(value: Any) -> Iterator[Any]:
    """``value`` and, for a joint latent, its two parts."""
    if isinstance(value, AVLatent):
        yield from (value.video, value.audio)
    else:
        yield value


def latent_frames_law(spec: OpSpec, kwargs: dict[str, Any], outputs: tuple[Any, ...]) -> str | None:
    for index, value in enumerate(outputs):
        for part in _parts(value):
            if isinstance(part, VideoLatent) and part.frames != pixel_frames(part.samples.shape[2]):
                return (f"output {index}: {part.samples.shape[2]} latent frames but frames {part.frames} "
                        f"(expected {pixel_frames(part.samples.shape[2])})")
    return None


def audio_steps_law(spec: OpSpec, kwargs: dict[str, Any], outputs: tuple[Any, ...]) -> str | None:
    for index, value in enumerate(outputs):
        for part in _parts(value):
            if isinstance(part, AudioLatent):
                steps, covered = part.samples.shape[2], part.seconds * part.latents_per_second
                if steps != math.ceil(covered - 1e-6 * max(1.0, covered)):
                    return (f"output {index}: {steps} audio latent steps for {part.seconds:g} s at "
                            f"{part.latents_per_second:g} per second (expected ceil({covered:g}))")
    return None


def _ports_of(spec: OpSpec, port_type: str) -> list[str]:
    return [s.name for s in spec.inputs if port_type in members(s.port.type)]


def pixel_cells_law(spec: OpSpec, kwargs: dict[str, Any], outputs: tuple[Any, ...]) -> str | None:
    if not _ports_of(spec, "VAE"):
        return None
    output_types = [members(t) if not t.startswith("=") else set() for _, t in spec.outputs]
    for images_in in _ports_of(spec, "IMAGE"):
        pixels = kwargs.get(images_in)
        for kinds, value in zip(output_types, outputs):
            if "VIDEO_LATENT" in kinds and isinstance(pixels, torch.Tensor) and isinstance(value, VideoLatent):
                frames, height, width = pixels.shape[0], pixels.shape[1], pixels.shape[2]
                expected = (latent_frames(frames), height // PIXELS_PER_CELL, width // PIXELS_PER_CELL)
                if tuple(value.samples.shape[2:]) != expected:
                    return f"{images_in} {tuple(pixels.shape)} encoded to {tuple(value.samples.shape)}, expected F, H, W {expected}"
    for latent_in in _ports_of(spec, "VIDEO_LATENT"):
        latent = kwargs.get(latent_in)
        for kinds, value in zip(output_types, outputs):
            if kinds == {"IMAGE"} and isinstance(latent, VideoLatent) and isinstance(value, torch.Tensor):
                batch, _, frames, height, width = latent.samples.shape
                expected = (batch * pixel_frames(frames), height * PIXELS_PER_CELL, width * PIXELS_PER_CELL)
                if tuple(value.shape[:3]) != expected:
                    return f"{latent_in} {tuple(latent.samples.shape)} decoded to {tuple(value.shape)}, expected {expected}"
    return None


def _fps_of(value: Any) -> list[float | None]:
    if isinstance(value, (Video, VideoLatent)):
        return [value.fps]
    return [value.video.fps] if isinstance(value, AVLatent) else []


def fps_kept_law(spec: OpSpec, kwargs: dict[str, Any], outputs: tuple[Any, ...]) -> str | None:
    if any("fps" in s.name or s.name == "frame_rate" for s in spec.inputs):
        return None
    given = {fps for value in kwargs.values() for fps in _fps_of(value) if fps is not None}
    if len(given) != 1:
        return None
    fps = given.pop()
    for index, value in enumerate(outputs):
        kept = _fps_of(value)
        if kept and kept != [fps]:
            return f"inputs at {fps:g} fps, output {index} at {kept[0]}"
    return None


FRAME_COUNT_OUTPUTS = ("num_frames", "length", "frames")


def frame_count_law(spec: OpSpec, kwargs: dict[str, Any], outputs: tuple[Any, ...]) -> str | None:
    for (name, port_type), value in zip(spec.outputs, outputs):
        if name in FRAME_COUNT_OUTPUTS and port_type == "INT" and (value < 1 or (value - 1) % 8):
            return f"output '{name}' is {value} frames, not 8n+1 (use {max(1, (value - 1) // 8 * 8 + 1)})"
    return None


GEOMETRY: dict[str, Callable[[OpSpec, dict[str, Any], tuple[Any, ...]], str | None]] = {
    "latent_frames": latent_frames_law, "audio_steps": audio_steps_law, "pixel_cells": pixel_cells_law,
    "fps_kept": fps_kept_law, "frame_count": frame_count_law,
}
GEOMETRY_LAWS = tuple(GEOMETRY)
