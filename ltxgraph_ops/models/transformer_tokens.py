"""Token layout of the LTX-2 transformer: latents <-> token sequences, token positions in physical units, and
the self-attention weights that let guide (keyframe) tokens attend to the generated ones with a strength.

Video latent [B, C, F, H, W] -> tokens [B, F*H*W, C] (frame-major, then row, then column).
Audio latent [B, C, T, M] -> tokens [B, T, C*M] (channel-major inside a token).
Positions are ``[B, n_axes, T, 2]``: a ``[start, end)`` range per axis, video (time s, height px, width px),
audio (time s).
"""
from __future__ import annotations

import torch

VIDEO_SCALE = (8, 32, 32)        # pixels per latent cell: frames, rows, columns
AUDIO_SAMPLE_RATE = 16000
AUDIO_HOP = 160                  # waveform samples per mel frame
AUDIO_MEL_PER_LATENT = 4         # mel frames per audio latent frame


def video_tokens(latent: torch.Tensor) -> torch.Tensor:
    """[B, C, F, H, W] -> [B, F*H*W, C]."""
    return latent.flatten(2).transpose(1, 2)


def video_latent(tokens: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """[B, F*H*W, C] -> [B, C, F, H, W]."""
    return tokens.transpose(1, 2).unflatten(2, (frames, height, width))


def audio_tokens(latent: torch.Tensor) -> torch.Tensor:
    """[B, C, T, M] -> [B, T, C*M]."""
    return latent.transpose(1, 2).flatten(2)


def audio_latent(tokens: torch.Tensor, channels: int) -> torch.Tensor:
    """[B, T, C*M] -> [B, C, T, M]."""
    return tokens.unflatten(2, (channels, -1)).transpose(1, 2)


def video_positions(frames: int, height: int, width: int, fps: float, batch: int = 1, first_frame: int = 0,
                    scale: tuple[int, int, int] = VIDEO_SCALE, device: torch.device | str | None = None,
                    causal: bool | None = None) -> torch.Tensor:
    """Positions of a latent grid's tokens: [B, 3, F*H*W, 2], time in seconds, height/width in pixels.

    Latent cell i covers pixels ``[i*s, (i+1)*s)`` per axis. ``first_frame`` (pixel frames) places the grid in
    time, as a guide placed at that frame. With the causal first-frame fix (default: for a grid starting at
    frame 0) time ranges shift by ``1 - s`` and are clamped at 0 before the offset, because the causal VAE
    encodes a grid's first pixel frame alone.
    """
    grid = torch.meshgrid(*(torch.arange(n, device=device) for n in (frames, height, width)), indexing="ij")
    starts = torch.stack([axis.flatten() for axis in grid])                     # [3, N] latent cells
    bounds = torch.stack([starts, starts + 1], dim=-1)                          # [3, N, 2]
    bounds = bounds * torch.tensor(scale, device=device).view(3, 1, 1)          # pixels
    if first_frame == 0 if causal is None else causal:
        bounds[0] = (bounds[0] + 1 - scale[0]).clamp(min=0)
    bounds[0] = bounds[0] + first_frame
    bounds = bounds.float()
    bounds[0] = bounds[0] / fps
    return bounds.unsqueeze(0).expand(batch, -1, -1, -1).clone()


def first_frame_keyframes_mask(batch: int, tokens: int, cells_per_frame: int,
                               device: torch.device | str | None = None) -> torch.Tensor:
    """[B, T] 1 on the first latent frame's ``cells_per_frame`` tokens, 0 elsewhere (guide tokens included): the
    causal VAE's first latent frame encodes one pixel frame, the token class LTX-2.5's keyframe absolute-position
    embedding marks (ltx-core 1.2.0 marks it for every target, keyframe slots or not)."""
    mask = torch.zeros(batch, tokens, device=device)
    mask[:, :cells_per_frame] = 1.0
    return mask


def audio_positions(frames: int, batch: int = 1, first_frame: int = 0,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Positions of audio latent frames ``first_frame ..``: [B, 1, T, 2] in seconds.

    Latent frame i starts at mel frame ``max(4i + 1 - 4, 0)`` (causal encoder); a mel frame is 160 samples at
    16 kHz.
    """
    def seconds(start: int) -> torch.Tensor:
        latent_index = torch.arange(start, start + frames, dtype=torch.float32, device=device)
        mel = (latent_index * AUDIO_MEL_PER_LATENT + 1 - AUDIO_MEL_PER_LATENT).clip(min=0)
        return mel * AUDIO_HOP / AUDIO_SAMPLE_RATE

    bounds = torch.stack([seconds(first_frame), seconds(first_frame + 1)], dim=-1)   # [T, 2]
    return bounds[None, None].expand(batch, 1, -1, -1).clone()


def reference_audio_positions(frames: int, batch: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
    """Positions of ``frames`` reference audio latent frames placed before the generated audio: [B, 1, R, 2] in
    seconds, their own positions (as :func:`audio_positions`) shifted so the last one ends one latent frame
    (4 mel frames, 0.04 s) before time 0."""
    own = audio_positions(frames, batch, device=device)
    if frames == 0:
        return own
    latent_frame_seconds = AUDIO_MEL_PER_LATENT * AUDIO_HOP / AUDIO_SAMPLE_RATE
    return own - (own[0, 0, -1, 1] + latent_frame_seconds)


def guide_attention_mask(generated_tokens: int, guide_tokens: list[int], strengths: list[float], batch: int = 1,
                         device: torch.device | str | None = None,
                         token_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Self-attention weights [B, N, N] in [0, 1] for ``generated_tokens`` followed by guide groups.

    Generated tokens attend to each other fully, each guide group to itself fully, a guide group and the
    generated tokens to each other with the group's strength (times the token's weight from
    ``token_weights`` [sum(guide_tokens)], if given), and different guide groups not at all.
    """
    total = generated_tokens + sum(guide_tokens)
    weights = torch.zeros(total, total, device=device)
    weights[:generated_tokens, :generated_tokens] = 1.0
    start = generated_tokens
    for count, strength in zip(guide_tokens, strengths, strict=True):
        stop = start + count
        weights[start:stop, start:stop] = 1.0
        cross = torch.full((count,), float(strength), device=device)
        if token_weights is not None:
            cross = cross * token_weights[start - generated_tokens:stop - generated_tokens].to(device)
        weights[:generated_tokens, start:stop] = cross
        weights[start:stop, :generated_tokens] = cross[:, None]
        start = stop
    return weights.expand(batch, -1, -1).clone()
