"""The VAE value of an LTX-2.5 VAE file (header ``vae._class_name: CausalDiffusionVAE``): its convolutional
encoder and diffusion decoder (:mod:`ltxgraph_ops.models.diffusion_decoder`) behind the same
:class:`~ltxgraph_ops.vae_handle.VideoVAEHandle` the LTX-2.0/2.3 VAE uses, so every decode op runs it.

The decoder denoises from noise: its noise comes from a fixed seed (:data:`DECODE_SEED`), so a decode is a pure
function of the latent (cacheable, repeatable). Every decode runs tiled (stages 4 and 5 per tile of
:class:`~ltxgraph_ops.models.diffusion_decoder.DecodeTiling`'s default size), which bounds its memory.
"""
from __future__ import annotations

import torch

from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.model_files import header_section
from ltxgraph_ops.models.diffusion_decoder import DIFFUSION_VAE_CLASS, DecodeTiling, DiffusionVideoVAE
from ltxgraph_ops.models.progress import Counter
from ltxgraph_ops.vae_handle import VideoVAEHandle
from ltxgraph_ops.weights.loading import load_component, match_component, parameters_on_meta
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

PREFIX, SECTION = "vae.", "vae"
DECODE_SEED = 0
EXTRA_PREFIXES = ("decoder.coarse_",)   # the release's bundled preview head, which decoding does not use


def is_diffusion_vae(file: SafetensorsFile) -> bool:
    """Whether the file's header describes an LTX-2.5 diffusion VAE."""
    section = file.config().get(SECTION)
    return isinstance(section, dict) and section.get("_class_name") == DIFFUSION_VAE_CLASS


def diffusion_vae_layout(file: SafetensorsFile) -> DiffusionVideoVAE:
    """The VAE's architecture on the meta device from the header, checked against the file's tensors."""
    section = header_section(file, SECTION)
    gates = f"{PREFIX}decoder.diff_blocks.0.gate_msa" in file.entries
    try:
        with torch.device("meta"):
            layout = DiffusionVideoVAE.from_header(section, static_gates=gates)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{file.path}: '{SECTION}' config: {exc}") from None
    match_component(layout, file, PREFIX, allow_extra=EXTRA_PREFIXES)
    return layout


class DiffusionVAEModel:
    """The loaded VAE as :class:`~ltxgraph_ops.vae_handle.VideoAutoencoder`: float32 in and out, computed in
    ``dtype``."""

    def __init__(self, path: str, device: str | torch.device, dtype: torch.dtype,
                 tiling: DecodeTiling = DecodeTiling()) -> None:
        file = SafetensorsFile(path)
        section = header_section(file, SECTION)
        with parameters_on_meta():
            model = DiffusionVideoVAE.from_header(section, f"{PREFIX}decoder.diff_blocks.0.gate_msa" in file.entries)
        self.model = load_component(model, file, PREFIX, dtype, device=device, allow_extra=EXTRA_PREFIXES)
        self.dtype, self.tiling = dtype, tiling

    @property
    def per_channel_statistics(self) -> torch.nn.Module:
        return self.model.per_channel_statistics

    def encode(self, pixels: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        return self.model.encode(pixels.to(self.dtype), on_block).float()

    def decode(self, latent: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        """Normalised latent [B, 128, F, H, W] -> pixels [B, 3, 1 + 8(F-1), 32H, 32W]; ``on_block(done, total)``
        once, with the number of temporal tile groups."""
        generator = torch.Generator().manual_seed(DECODE_SEED)
        chunks = [chunk.float() for chunk in self.model.decode_chunks(latent.to(self.dtype), self.tiling, generator)]
        if on_block is not None:
            on_block(len(chunks), len(chunks))
        return torch.cat(chunks, dim=2)


def diffusion_vae_handle(path: str, device: str | torch.device, dtype: torch.dtype) -> VideoVAEHandle:
    """VAE of an LTX-2.5 VAE file: its tensors checked against the header now, read on first use."""
    file = SafetensorsFile(path)
    layout = diffusion_vae_layout(file)
    from ltxgraph_ops.vae_ops import vae_statistics   # vae_ops dispatches to this module
    return VideoVAEHandle(file.name, Lazy(lambda: DiffusionVAEModel(path, device, dtype), f"video VAE of {file.name}"),
                          latent_channels=layout.latent_channels, scale_factors=layout.cfg.scale_factors,
                          statistics=Lazy(lambda: vae_statistics(path), f"VAE statistics of {file.name}"),
                          decoder_bytes=dtype.itemsize * sum(p.numel() for p in layout.decoder.parameters()))
