"""The LTX-2.5 diffusion video decoder: latents [B, 128, F, H, W] -> pixels [B, 3, 1 + 8(F-1), 32H, 32W].

Stages 1-4 upsample the latent deterministically into a context volume: a Linear ``conv_in``, then per stage
neighbourhood-attention blocks and a pixel-shuffle upsample. Stage 5 is a small diffusion model in pixel space:
it denoises patchified noise ``x_t``, each block adding the projected context and modulated (AdaLN-Zero) by the
timestep. Timesteps run ``linspace(1, 1/n, n)``; an ``x0`` model's last prediction is the output, a ``v`` model
takes Euler steps to 0.

NATTEN's window shifts inward at the grid's end, so the last latent frame is repeated
``2 (K_t // 2)`` times through stages 1-4 and the extra context frames cropped before stage 5 (keeping at least
the stage-5 kernel's frames); the pixels are then cut to the causal frame count.

Memory is bounded by tiles (:meth:`DiffusionVideoDecoder.decode_chunks`): stages 1-3 (at 1/4 of the output
resolution and below) see the whole latent; stage 4 and the diffusion stage, which dominate memory, run on
overlapping tiles of the stage-4 grid blended linearly, one temporal group at a time.

Config: the header's ``vae`` section (``_class_name: CausalDiffusionVAE``), decoder fields under ``decoder``
(``stage_channels``, ``stage_depths``, ``stage_kernels``, ``upsamples``, ``stage5_kernel``, ...), with
ltx-core 1.2.0's defaults; the compression factors follow from the upsample strides and the patch size and must
agree with ``temporal_compression_ratio`` / ``spatial_compression_ratio`` when the header states them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from ltxgraph_ops.models.diffusion_decoder_blocks import (AdaLNZero, DiffusionNABlock, NABlock,
                                                          PixelShuffleUpsample)
from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.models.attention import RMSNorm
from ltxgraph_ops.models.timestep import SINUSOID_CHANNELS, sinusoidal_features
from ltxgraph_ops.models.progress import Counter
from ltxgraph_ops.models.video_vae import ChannelStatistics, VideoEncoder, VideoVAEConfig

DIFFUSION_VAE_CLASS = "CausalDiffusionVAE"

# ltx-core 1.2.0's defaults for fields a header leaves out
_STAGE_CHANNELS = (1024, 512, 256, 256, 128)
_STAGE_DEPTHS = (4, 6, 4, 2, 8)
_STAGE_KERNELS = ((3, 7, 7), (3, 7, 7), (3, 5, 5), (3, 5, 5), (3, 3, 3))
_UPSAMPLES = (((1, 2, 2), 2), ((2, 1, 1), 2), ((2, 2, 2), 1), ((2, 2, 2), 2))


@dataclass(frozen=True)
class DiffusionDecoderConfig:
    latent_channels: int = 128
    out_channels: int = 3
    patch_size: int = 4
    head_dim: int = 64
    stage_channels: tuple[int, ...] = _STAGE_CHANNELS
    stage_depths: tuple[int, ...] = _STAGE_DEPTHS
    stage_kernels: tuple[tuple[int, int, int], ...] = _STAGE_KERNELS
    upsamples: tuple[tuple[tuple[int, int, int], int], ...] = _UPSAMPLES   # (stride (T, H, W), channel reduction)
    stage5_kernel: tuple[int, int, int] = (3, 7, 7)
    stage5_channels: int | None = None
    t_emb_dim: int = 384
    num_inference_steps: int = 2
    timestep_scale_multiplier: float = 1.0
    model_output_type: str = "v"
    static_gates: bool = False

    @property
    def scale_factors(self) -> tuple[int, int, int]:
        """Pixel frames, rows, columns per latent cell."""
        t, h, w = (math.prod(stride[axis] for stride, _ in self.upsamples) for axis in range(3))
        return t, h * self.patch_size, w * self.patch_size

    @property
    def width5(self) -> int:
        return self.stage5_channels or self.stage_channels[-1]

    @classmethod
    def from_header(cls, section: dict, static_gates: bool = False) -> "DiffusionDecoderConfig":
        """From a header ``vae`` section; ``static_gates`` when the file carries the blocks' gate vectors."""
        decoder = section.get("decoder", section)
        fields: dict = {"static_gates": static_gates}
        for name in ("out_channels", "patch_size", "t_emb_dim", "stage5_channels"):
            if name in decoder:
                fields[name] = int(decoder[name])
        fields["latent_channels"] = int(decoder.get("in_channels", section.get("latent_channels", 128)))
        if "head_dim" in decoder or "na_head_dim" in decoder:
            fields["head_dim"] = int(decoder.get("head_dim", decoder.get("na_head_dim")))
        if "default_num_inference_steps" in decoder:
            fields["num_inference_steps"] = int(decoder["default_num_inference_steps"])
        if "timestep_scale_multiplier" in decoder:
            fields["timestep_scale_multiplier"] = float(decoder["timestep_scale_multiplier"])
        fields["model_output_type"] = str(section.get("model_output_type", "v"))
        for name in ("stage_channels", "stage_depths"):
            if name in decoder:
                fields[name] = tuple(int(v) for v in decoder[name])
        if "stage_kernels" in decoder:
            fields["stage_kernels"] = tuple(tuple(int(k) for k in kernel) for kernel in decoder["stage_kernels"])
        if "upsamples" in decoder:
            fields["upsamples"] = tuple((tuple(int(s) for s in stride), int(reduction))
                                        for stride, reduction in decoder["upsamples"])
        if "stage5_kernel" in decoder:
            fields["stage5_kernel"] = tuple(int(k) for k in decoder["stage5_kernel"])
        cfg = cls(**fields)
        cfg.check(section)
        return cfg

    def check(self, section: dict) -> None:
        """ValueError naming the field when the config is inconsistent."""
        if self.model_output_type not in ("v", "x0"):
            raise ValueError(f"model_output_type {self.model_output_type!r} is neither 'v' nor 'x0'")
        stages = len(self.stage_channels)
        if len(self.stage_depths) != stages or len(self.stage_kernels) != stages or len(self.upsamples) != stages - 1:
            raise ValueError(f"{stages} stage_channels need as many stage_depths and stage_kernels and "
                             f"{stages - 1} upsamples")
        for index, ((_, reduction), width) in enumerate(zip(self.upsamples, self.stage_channels)):
            if width // reduction != self.stage_channels[index + 1]:
                raise ValueError(f"stage_channels[{index + 1}] {self.stage_channels[index + 1]} is not "
                                 f"stage_channels[{index}] {width} / upsample reduction {reduction}")
        for width in (*self.stage_channels, self.width5):
            if width % self.head_dim:
                raise ValueError(f"width {width} is not a multiple of head_dim {self.head_dim}")
        t, h, w = self.scale_factors
        for name, stated, derived in (("temporal_compression_ratio", section.get("temporal_compression_ratio"), t),
                                      ("spatial_compression_ratio", section.get("spatial_compression_ratio"), h)):
            if stated is not None and int(stated) != derived:
                raise ValueError(f"{name} {stated} contradicts the decoder's upsample strides x patch size "
                                 f"({derived})")
        if h != w:
            raise ValueError(f"spatial compression {h}x{w} differs between rows and columns")


def patchify(pixels: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, F, H, W] -> [B, C p p, F, H/p, W/p], channels ordered (c, column offset, row offset)."""
    b, c, f, h, w = pixels.shape
    x = pixels.reshape(b, c, f, h // patch, patch, w // patch, patch).permute(0, 1, 6, 4, 2, 3, 5)
    return x.reshape(b, c * patch * patch, f, h // patch, w // patch)


def unpatchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of :func:`patchify`."""
    b, cpp, f, h, w = x.shape
    x = x.reshape(b, cpp // (patch * patch), patch, patch, f, h, w).permute(0, 1, 4, 5, 3, 6, 2)
    return x.reshape(b, -1, f, h * patch, w * patch)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features (cos | sin, 256) of the scaled timestep -> ``mlp``: Linear, SiLU, Linear."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(Linear(SINUSOID_CHANNELS, dim), nn.SiLU(), Linear(dim, dim))

    def forward(self, timesteps: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.mlp(sinusoidal_features(timesteps).to(dtype))


@dataclass(frozen=True)
class DecodeTiling:
    """Tiles of the stage-4 grid for :meth:`DiffusionVideoDecoder.decode_chunks`, in pixels / frames of the
    output (multiples of the stage-4 cell: 8 px and 2 frames for the release): tile size and the distance
    between tile starts (their difference is the blended overlap). Defaults: diffusers' and ltx-core's."""

    height: int = 768
    width: int = 768
    frames: int = 80
    stride_height: int = 704
    stride_width: int = 704
    stride_frames: int = 56


def tile_intervals(length: int, tile: int, stride: int, min_size: int) -> list[tuple[int, int]]:
    """Overlapping [start, end) tiles of [0, length) starting every ``stride``; a last tile shorter than
    ``min_size`` (the attention kernels' floor) is merged into the one before."""
    if length <= tile:
        return [(0, length)]
    starts = list(range(0, length, stride))
    while len(starts) > 1 and length - starts[-1] < min_size:
        starts.pop()
    return [(s, min(s + tile, length)) for s in starts[:-1]] + [(starts[-1], length)]


def blend_into(previous: torch.Tensor, current: torch.Tensor, extent: int, dim: int) -> torch.Tensor:
    """``current`` with its first ``extent`` cells along ``dim`` ramped in from ``previous``'s last ones:
    weight ``i / extent`` on ``current`` at offset i."""
    extent = min(previous.shape[dim], current.shape[dim], extent)
    if extent <= 0:
        return current
    ramp = torch.arange(extent, dtype=current.dtype, device=current.device) / extent
    shape = [1] * current.ndim
    shape[dim] = extent
    ramp = ramp.reshape(shape)
    head = current.narrow(dim, 0, extent)
    head.copy_(previous.narrow(dim, previous.shape[dim] - extent, extent) * (1 - ramp) + head * ramp)
    return current


class DiffusionVideoDecoder(nn.Module):
    """Checkpoint names under ``vae.decoder.``: conv_in, det_stages.{i}.{j}, upsamples.{i}, t_embedder,
    conv_in_x_t, shared_adaln, diff_blocks.{j}, norm_out, conv_out."""

    def __init__(self, cfg: DiffusionDecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        channels, head_dim = cfg.stage_channels, cfg.head_dim
        self.conv_in = Linear(cfg.latent_channels, channels[0])
        self.det_stages = nn.ModuleList(
            nn.ModuleList(NABlock(channels[i], cfg.stage_kernels[i], head_dim) for _ in range(cfg.stage_depths[i]))
            for i in range(len(cfg.upsamples)))
        self.upsamples = nn.ModuleList(PixelShuffleUpsample(channels[i], stride, reduction)
                                       for i, (stride, reduction) in enumerate(cfg.upsamples))
        self.t_embedder = TimestepEmbedder(cfg.t_emb_dim)
        pixel_channels = cfg.out_channels * cfg.patch_size ** 2
        self.conv_in_x_t = Linear(pixel_channels, cfg.width5)
        self.shared_adaln = AdaLNZero(cfg.width5, cfg.t_emb_dim)
        self.diff_blocks = nn.ModuleList(
            DiffusionNABlock(cfg.width5, cfg.stage5_kernel, channels[-1], head_dim, cfg.static_gates)
            for _ in range(cfg.stage_depths[-1]))
        self.norm_out = RMSNorm(cfg.width5, 1e-6)
        self.conv_out = Linear(cfg.width5, pixel_channels)

    @property
    def ghost_latent_frames(self) -> int:
        """Copies of the last latent frame appended for NATTEN's border shift."""
        return self.cfg.stage_kernels[0][0] // 2 * 2

    # -- deterministic stages -------------------------------------------------------------------------------
    def stages_1_to_3(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latent [B, C, F, H, W] (ghost frames appended) -> stage-4 input [B, T, H, W, C4]."""
        x = self.conv_in(latent.permute(0, 2, 3, 4, 1))
        for blocks, upsample in zip(self.det_stages[:-1], self.upsamples[:-1]):
            for block in blocks:
                x = block(x)
            x = upsample(x)
        return x

    def stage_4(self, x: torch.Tensor, drop_leading_frame: bool, crop_ghost: bool) -> torch.Tensor:
        """Stage-4 input (a tile of it) -> context [B, T5, H5, W5, C5]; ``crop_ghost`` on the tile holding the
        clip's end cuts the ghost frames' context, keeping at least the stage-5 kernel's frames."""
        for block in self.det_stages[-1]:
            x = block(x)
        x = self.upsamples[-1](x, drop_leading_frame=drop_leading_frame)
        if crop_ghost and self.ghost_latent_frames:
            ghost = self.ghost_latent_frames * self.cfg.scale_factors[0]
            keep = min(x.shape[1], max(x.shape[1] - ghost, 1, self.cfg.stage5_kernel[0]))
            x = x[:, :keep]
        return x

    # -- diffusion stage ------------------------------------------------------------------------------------
    def predict(self, context: torch.Tensor, x_t: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """One stage-5 evaluation: context [B, T, h, w, C5], noisy pixels x_t [B, 3, T, h p, w p], timestep [B]
        -> the model's prediction (x0 or v) [B, 3, T, h p, w p]."""
        embedding = self.t_embedder(self.cfg.timestep_scale_multiplier * timestep, context.dtype)
        modulation = self.shared_adaln(embedding)
        x = self.conv_in_x_t(patchify(x_t, self.cfg.patch_size).permute(0, 2, 3, 4, 1))
        for block in self.diff_blocks:
            x = block(x, context, modulation)
        x = self.conv_out(self.norm_out(x))
        return unpatchify(x.permute(0, 4, 1, 2, 3), self.cfg.patch_size)

    def denoise(self, context: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """x_t (pure noise at t = 1) -> pixels in [-1, 1] nominal, over ``num_inference_steps`` steps."""
        steps = self.cfg.num_inference_steps
        timesteps = torch.linspace(1.0, 1.0 / steps, steps, device=context.device)
        batch = context.shape[0]
        for index, t_now in enumerate(timesteps):
            t_next = timesteps[index + 1] if index + 1 < steps else torch.zeros(())
            prediction = self.predict(context, x_t, t_now.expand(batch))
            if index == steps - 1 and self.cfg.model_output_type == "x0":
                return prediction
            velocity = (prediction.float() if self.cfg.model_output_type == "v"
                        else (x_t.float() - prediction.float()) / t_now)                     # x0 -> velocity
            x_t = (x_t.float() - (t_now - t_next) * velocity).to(x_t.dtype)                 # Euler step
        return x_t

    def _needs_shared_noise(self) -> bool:
        return not (self.cfg.num_inference_steps == 1 and self.cfg.model_output_type == "x0")

    # -- decode ---------------------------------------------------------------------------------------------
    def forward(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Raw (un-normalised) latent [B, C, F, H, W] -> pixels [B, 3, 1 + s_t (F-1), s H, s W], untiled."""
        frames = latent.shape[2]
        padded = torch.cat([latent, latent[:, :, -1:].expand(-1, -1, self.ghost_latent_frames, -1, -1)], dim=2)
        context = self.stage_4(self.stages_1_to_3(padded), drop_leading_frame=True, crop_ghost=True)
        patch = self.cfg.patch_size
        shape = (latent.shape[0], self.cfg.out_channels, context.shape[1], context.shape[2] * patch,
                 context.shape[3] * patch)
        x_t = torch.randn(shape, generator=generator, dtype=latent.dtype).to(latent.device)
        pixels = self.denoise(context, x_t)
        return pixels[:, :, :1 + (frames - 1) * self.cfg.scale_factors[0]]

    def decode_chunks(self, latent: torch.Tensor, tiling: DecodeTiling = DecodeTiling(),
                      generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Raw latent [B, C, F, H, W] -> consecutive pixel chunks [B, 3, n, s H, s W] (all frames in order):
        stages 1-3 once, stage 4 and 5 per tile of the stage-4 grid (sizes ``tiling``), tiles blended
        linearly over their overlap; each temporal group is yielded once the next has been blended in. A
        single-step x0 decoder draws each tile's noise in turn; a multi-step one slices one shared canvas."""
        upsample_stride = self.upsamples[-1].stride
        patch = self.cfg.patch_size
        scale = (upsample_stride[0], upsample_stride[1] * patch, upsample_stride[2] * patch)
        sizes = [(tiling.frames // scale[0], tiling.stride_frames // scale[0]),
                 (tiling.height // scale[1], tiling.stride_height // scale[1]),
                 (tiling.width // scale[2], tiling.stride_width // scale[2])]
        floors = [max(k4, -(-k5 // s)) for k4, k5, s in
                  zip(self.cfg.stage_kernels[len(self.cfg.upsamples) - 1], self.cfg.stage5_kernel, upsample_stride)]
        padded = torch.cat([latent, latent[:, :, -1:].expand(-1, -1, self.ghost_latent_frames, -1, -1)], dim=2)
        features = self.stages_1_to_3(padded)
        ghost = self.ghost_latent_frames * math.prod(u.stride[0] for u in self.upsamples[:-1])
        grid = (features.shape[1] - ghost, features.shape[2], features.shape[3])
        intervals = [tile_intervals(length, tile, stride, floor)
                     for length, (tile, stride), floor in zip(grid, sizes, floors)]
        overlaps = [(tile - stride) * s for (tile, stride), s in zip(sizes, scale)]
        lead = 1 if scale[0] == 2 else 0          # the causal first cell decodes to one frame
        canvas = None
        if self._needs_shared_noise():
            canvas = torch.randn((latent.shape[0], self.cfg.out_channels, grid[0] * scale[0] - lead,
                                  grid[1] * scale[1], grid[2] * scale[2]), generator=generator, dtype=latent.dtype)
        total_frames = 1 + (latent.shape[2] - 1) * self.cfg.scale_factors[0]
        emitted, previous = 0, None
        for index, (t0, t1) in enumerate(intervals[0]):
            first, last = t0 == 0, t1 == grid[0]
            group = self._decode_group(features[:, t0:features.shape[1] if last else t1], intervals[1:],
                                       sizes[1:], overlaps[1:], scale, first, last,
                                       canvas, t0 * scale[0] - (0 if first else lead), generator)
            if previous is not None:
                group = blend_into(previous, group, overlaps[0], dim=2)
            if not last:
                keep = sizes[0][1] * scale[0] - (lead if first else 0)
                chunk, previous = group[:, :, :keep], group
            else:
                chunk = group
            chunk = chunk[:, :, :max(0, total_frames - emitted)]
            emitted += chunk.shape[2]
            yield chunk

    def _decode_group(self, features: torch.Tensor, intervals: list, sizes: list, overlaps: list,
                      scale: tuple[int, int, int], first: bool, last: bool, canvas: torch.Tensor | None,
                      pixel_t0: int, generator: torch.Generator | None) -> torch.Tensor:
        """One temporal group: every (row, column) tile through stage 4 and 5, blended into [B, 3, n, H, W]."""
        patch = self.cfg.patch_size
        rows = []
        for h0, h1 in intervals[0]:
            row = []
            for w0, w1 in intervals[1]:
                context = self.stage_4(features[:, :, h0:h1, w0:w1], drop_leading_frame=first, crop_ghost=last)
                shape = (features.shape[0], self.cfg.out_channels, context.shape[1], context.shape[2] * patch,
                         context.shape[3] * patch)
                if canvas is None:
                    x_t = torch.randn(shape, generator=generator, dtype=features.dtype).to(features.device)
                else:
                    x_t = canvas[:, :, pixel_t0:pixel_t0 + shape[2], h0 * scale[1]:h0 * scale[1] + shape[3],
                                 w0 * scale[2]:w0 * scale[2] + shape[4]].to(features.device)
                row.append(self.denoise(context, x_t))
            rows.append(row)
        joined_rows = []
        for i, row in enumerate(rows):
            kept = []
            for j, tile in enumerate(row):
                if i > 0:
                    tile = blend_into(rows[i - 1][j], tile, overlaps[0], dim=3)
                if j > 0:
                    tile = blend_into(row[j - 1], tile, overlaps[1], dim=4)
                height = sizes[0][1] * scale[1] if i < len(rows) - 1 else tile.shape[3]
                width = sizes[1][1] * scale[2] if j < len(row) - 1 else tile.shape[4]
                kept.append(tile[:, :, :, :height, :width])
            joined_rows.append(torch.cat(kept, dim=4))
        return torch.cat(joined_rows, dim=3)


def encoder_config(section: dict) -> VideoVAEConfig | None:
    """The convolutional encoder's config from a diffusion VAE section's nested ``encoder`` (ltx-core's
    ``blocks`` or ``encoder_blocks``), or None when the section has none."""
    encoder = section.get("encoder")
    if encoder is None:
        return None
    flat = {key: value for key, value in encoder.items() if key not in ("blocks", "out_channels")}
    flat["encoder_blocks"] = encoder.get("blocks", encoder.get("encoder_blocks", []))
    flat["latent_channels"] = encoder.get("out_channels", section.get("latent_channels", 128))
    return VideoVAEConfig.from_header(flat)


class DiffusionVideoVAE(nn.Module):
    """An LTX-2.5 VAE file under ``vae.``: the convolutional encoder (when the header has one), the diffusion
    decoder and the latent statistics; latents in and out of graphs are normalised."""

    def __init__(self, cfg: DiffusionDecoderConfig, encoder: VideoVAEConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.per_channel_statistics = ChannelStatistics(cfg.latent_channels)
        if encoder is not None:
            self.encoder = VideoEncoder(encoder)
        self.decoder = DiffusionVideoDecoder(cfg)

    @classmethod
    def from_header(cls, section: dict, static_gates: bool = False) -> "DiffusionVideoVAE":
        return cls(DiffusionDecoderConfig.from_header(section, static_gates), encoder_config(section))

    @property
    def latent_channels(self) -> int:
        return self.cfg.latent_channels

    def encode(self, pixels: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        """pixels [B, 3, 1+8k, 32h, 32w] in [-1, 1] -> normalised latent [B, 128, 1+k, h, w]."""
        if not hasattr(self, "encoder"):
            raise ValueError("this LTX-2.5 VAE file has no encoder (its header has no 'encoder' section)")
        return self.per_channel_statistics.normalize(self.encoder(pixels, on_block))

    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised latent [B, C, F, H, W] -> pixels [B, 3, 1 + 8(F-1), 32H, 32W] in [-1, 1] nominal."""
        return self.decoder(self.per_channel_statistics.denormalize(latent), generator)

    def decode_chunks(self, latent: torch.Tensor, tiling: DecodeTiling = DecodeTiling(),
                      generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Normalised latent -> consecutive pixel chunks, tiled (:meth:`DiffusionVideoDecoder.decode_chunks`)."""
        yield from self.decoder.decode_chunks(self.per_channel_statistics.denormalize(latent), tiling, generator)
