"""Image and audio helper nodes (ComfyUI core and the packs LTX-2.3 examples borrow from): batch repetition,
size and count, padding to an outpainting canvas, audio preview, and the HDR IC-LoRA's decode postprocess.
IMAGE is [B, H, W, C] float in [0, 1]; MASK is [B, H, W]."""
from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check
from ltxgraph.values import Audio
from ltxgraph_ops.image_geometry import RESAMPLE_METHODS, resample

MAX_RESOLUTION = 16384
OUTPAINT_FILL = 0.5
"""Grey the new canvas area is filled with before outpainting."""


@op("RepeatImageBatch", outputs={"IMAGE": "IMAGE"}, category="image/batch")
def repeat_image_batch(image: Annotated[torch.Tensor, Port("IMAGE")],
                       amount: Annotated[int, Port("INT", min=1, max=4096)] = 1) -> torch.Tensor:
    """The whole batch ``amount`` times one after the other ([B, ...] -> [amount * B, ...])."""
    return image.repeat(amount, *([1] * (image.ndim - 1)))


@op("GetImageSizeAndCount", outputs={"image": "IMAGE", "width": "INT", "height": "INT", "count": "INT"},
    category="KJNodes/image")
def get_image_size_and_count(image: Annotated[torch.Tensor, Port("IMAGE")]) -> tuple[torch.Tensor, int, int, int]:
    """The image unchanged, its width and height in pixels and the number of images (frames) in the batch."""
    return image, int(image.shape[2]), int(image.shape[1]), int(image.shape[0])


def feather_weights(height: int, width: int, pads: tuple[int, int, int, int], feathering: int) -> torch.Tensor:
    """[H, W] mask values inside the original picture: (1 - d / feathering)^2 within ``feathering`` pixels of a
    padded side (d = distance to the nearest padded side: row i from the top, H - i from the bottom), else 0.
    pads = (left, top, right, bottom)."""
    left, top, right, bottom = pads
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
    far_h, far_w = torch.full_like(rows, height), torch.full_like(cols, width)
    distance = torch.stack([rows if top else far_h, height - rows if bottom else far_h,
                            cols if left else far_w, width - cols if right else far_w]).amin(dim=0)
    weight = ((feathering - distance) / feathering).clamp(min=0) ** 2
    return torch.where(distance < feathering, weight, torch.zeros_like(weight))


@op("ImagePadForOutpaintTargetSize", outputs={"IMAGE": "IMAGE", "MASK": "MASK"}, category="image")
def pad_for_outpaint_target_size(
        image: Annotated[torch.Tensor, Port("IMAGE")],
        target_width: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION)] = 0,
        target_height: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION)] = 0,
        feathering: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION)] = 0,
        upscale_method: Annotated[str, Port("STRING", choices=RESAMPLE_METHODS)] = "nearest-exact",
        mask: Annotated[torch.Tensor | None, Port("MASK", optional=True)] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``image`` shrunk to fit target_width x target_height (aspect kept, never enlarged), centred on a grey
    (0.5) canvas of that size. MASK: 1 on the new area, 0 on the picture, rising as (1 - d/feathering)^2 within
    ``feathering`` pixels of a padded edge. With a (not all-zero) ``mask``: 1 - the mask, padded with 0 (the
    new area 1); feathering is then not applied (as in ComfyUI-KJNodes)."""
    if mask is not None and not bool(mask.any()):
        mask = None
    batch, height, width, channels = image.shape
    scale = min(target_width / width, target_height / height)
    if scale < 1:
        height, width = int(height * scale), int(width * scale)
        if height < 1 or width < 1:
            raise InputValueError(f"target {target_width}x{target_height} leaves no pixels of the image")
        image = resample(image, width, height, upscale_method)
        if mask is not None:
            mask = F.interpolate(mask[None].float(), size=(height, width), mode="nearest")[0]
    top = max(0, (target_height - height) // 2)
    bottom = max(0, target_height - height - top)
    left = max(0, (target_width - width) // 2)
    right = max(0, target_width - width - left)
    canvas = torch.full((batch, height + top + bottom, width + left + right, channels), OUTPAINT_FILL)
    canvas[:, top:top + height, left:left + width] = image.float()
    if mask is not None:
        return canvas, 1 - F.pad(mask.float(), (left, right, top, bottom), value=0.0)
    new_mask = torch.ones(batch, height + top + bottom, width + left + right)
    inner = torch.zeros(height, width)
    if feathering > 0 and feathering * 2 < height and feathering * 2 < width:
        inner = feather_weights(height, width, (left, top, right, bottom), feathering)
    new_mask[:, top:top + height, left:left + width] = inner
    return canvas, new_mask


@op("PreviewAudio", outputs={"audio": "AUDIO"}, category="audio", output_node=True)
def preview_audio(audio: Annotated[Audio, Port("AUDIO")]) -> Audio:
    """The audio, passed on (ComfyUI plays it in the browser; a headless run keeps it as a node output)."""
    return audio


# ------------------------------------------------------------------------------------------------ HDR


LOGC3 = dict(a=5.555556, b=0.052272, c=0.247190, d=0.385537, e=5.367655, f=0.092809, cut=0.010591)
"""ARRI LogC3 (EI 800): linear x >= cut maps to c log10(a x + b) + d, below to e x + f."""
HDR_MAX = 1e4


def logc3_to_linear(logc: torch.Tensor) -> torch.Tensor:
    """LogC3 code values in [0, 1] -> linear scene light [0, inf) (the inverse of both curve pieces)."""
    k = LOGC3
    logc = logc.clamp(0.0, 1.0)
    from_log = (torch.pow(10.0, (logc - k["d"]) / k["c"]) - k["b"]) / k["a"]
    from_lin = (logc - k["f"]) / k["e"]
    return torch.where(logc >= k["e"] * k["cut"] + k["f"], from_log, from_lin)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer: 12.92 x below 0.0031308, else 1.055 x^(1/2.4) - 0.055, clamped to [0, 1]."""
    curve = 1.055 * torch.pow(x.clamp(min=0.0031308), 1.0 / 2.4) - 0.055
    return torch.where(x <= 0.0031308, 12.92 * x, curve).clamp(0.0, 1.0)


@input_check("save_exr")
def no_exr(save_exr: bool) -> str | None:
    """Refuses EXR output, which ltxgraph does not write."""
    return "save_exr: ltxgraph writes no EXR files; leave it off and use the hdr_linear output" if save_exr else None


@op("LTXVHDRDecodePostprocess", outputs={"tonemapped": "IMAGE", "hdr_linear": "IMAGE"}, category="Lightricks/HDR",
    output_node=True, checks=(no_exr,))
def hdr_decode_postprocess(image: Annotated[torch.Tensor, Port("IMAGE")],
                           exposure: Annotated[float, Port("FLOAT", min=-10.0, max=10.0, optional=True)] = 0.0,
                           save_exr: Annotated[bool, Port("BOOLEAN", optional=True)] = False,
                           output_dir: Annotated[str, Port("STRING", optional=True)] = "output/hdr_exr",
                           filename_prefix: Annotated[str, Port("STRING", optional=True)] = "frame",
                           half_precision: Annotated[bool, Port("BOOLEAN", optional=True)] = True
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames decoded from an HDR IC-LoRA latent (LogC3 code values in [0, 1]) -> linear light hdr_linear
    (clamped to [0, 1e4]) and an SDR preview: exposure (stops) x 2^exposure, Reinhard x / (1 + x), sRGB."""
    hdr = logc3_to_linear(image.float()).clamp(0.0, HDR_MAX)
    exposed = hdr * math.pow(2.0, exposure)
    return linear_to_srgb((exposed / (1.0 + exposed)).clamp(0.0, 1.0)), hdr
