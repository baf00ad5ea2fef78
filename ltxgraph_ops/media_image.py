"""Image ops (ComfyUI names): load and save through PyAV, sizes, batches, scaling, inversion and Canny edges.
IMAGE is [B, H, W, 3] in [0, 1]; MASK is [B, H, W]. Loaded images travel as 8-bit codes
(:class:`ltxgraph.frames.CodedFrames`); the scaling ops keep 8-bit inputs 8-bit (their output rounded to the
grid, as a saved file would be)."""
from __future__ import annotations

import os
from typing import Annotated

import av
import numpy as np
import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.frames import CodedFrames, Frames, float_images, same_depth
from ltxgraph.input_checks import input_check
from ltxgraph.values import SavedFile
from ltxgraph_ops.canny import canny, gaussian_blur
from ltxgraph_ops.decode_guard import DecodeBudget, open_limited
from ltxgraph_ops.file_checks import image_file, output_prefix
from ltxgraph_ops.image_geometry import RESAMPLE_METHODS, resample, resize_cropped
from ltxgraph_ops.media_video import check_images, next_output_name, rgb_chunks
from ltxgraph_ops.sampling.preview import png_bytes

MAX_RESOLUTION = 16384


def read_image(path: str, budget: DecodeBudget | None = None) -> tuple[CodedFrames, torch.Tensor]:
    """Every frame of an image file (PNG, JPEG, WebP, GIF...) as IMAGE [F, H, W, 3] (8-bit codes) and
    MASK [F, H, W] (1 - alpha; zeros without alpha), within ``budget`` (default: the default media limits)."""
    budget = budget or DecodeBudget.for_file(path, None)
    try:
        with open_limited(budget) as container:
            frames = []
            for frame in container.decode(video=0):
                budget.add_frame(frame.width, frame.height, 4)
                frames.append(frame.to_ndarray(format="rgba"))
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise InputValueError(f"{path}: cannot be read as an image ({exc})") from None
    if not frames:
        raise InputValueError(f"{path}: holds no image")
    if len({f.shape for f in frames}) != 1:
        raise InputValueError(f"{path}: its frames have different sizes")
    rgba = torch.from_numpy(np.stack(frames))
    return CodedFrames(rgba[..., :3].contiguous()), 1.0 - rgba[..., 3].float() / 255.0


@op("LoadImage", outputs={"IMAGE": "IMAGE", "MASK": "MASK"}, category="image", checks=(image_file,))
def load_image(image: Annotated[str, Port("STRING", file="input", upload=True)],
               ctx: OpContext = None) -> tuple[CodedFrames, torch.Tensor]:
    """An image from the input folder (all frames of an animated one) and its mask (1 - alpha), refused before
    decoding when larger than the run's media limits."""
    return read_image(image, DecodeBudget.for_file(image, ctx))


def _save_pngs(images: torch.Tensor | Frames, prefix: str, ctx: OpContext) -> list[SavedFile]:
    saved = []
    folder = ctx.folders.output_file(f"{prefix}_probe_.png").parent
    for array in (frame for chunk in rgb_chunks(check_images(images)) for frame in chunk):
        path = ctx.folders.output_file(next_output_name(folder, prefix, ".png"))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(png_bytes(torch.from_numpy(array)))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        saved.append(SavedFile(str(path), {"width": array.shape[1], "height": array.shape[0]}))
    return saved


@op("SaveImage", outputs={"images": "IMAGE"}, category="image", output_node=True, checks=(output_prefix,))
def save_image(images: Annotated[torch.Tensor | Frames, Port("IMAGE")],
               filename_prefix: Annotated[str, Port("STRING")] = "ComfyUI",
               ctx: OpContext = None) -> tuple:
    """Each image as ``<prefix>_00001_.png`` (next free numbers) in the output folder."""
    return (images, *_save_pngs(images, filename_prefix, ctx or OpContext("SaveImage")))


@op("PreviewImage", outputs={"images": "IMAGE"}, category="image", output_node=True)
def preview_image(images: Annotated[torch.Tensor | Frames, Port("IMAGE")], ctx: OpContext = None) -> tuple:
    """The images as PNGs under ``preview/`` in the output folder."""
    return (images, *_save_pngs(images, "preview/preview", ctx or OpContext("PreviewImage")))


@op("GetImageSize", outputs={"width": "INT", "height": "INT", "batch_size": "INT"}, category="image")
def get_image_size(image: Annotated[torch.Tensor | Frames, Port("IMAGE")]) -> tuple[int, int, int]:
    return int(image.shape[2]), int(image.shape[1]), int(image.shape[0])


@op("EmptyImage", outputs={"IMAGE": "IMAGE"}, category="image")
def empty_image(width: Annotated[int, Port("INT", min=1, max=MAX_RESOLUTION)] = 512,
                height: Annotated[int, Port("INT", min=1, max=MAX_RESOLUTION)] = 512,
                batch_size: Annotated[int, Port("INT", min=1, max=4096)] = 1,
                color: Annotated[int, Port("INT", min=0, max=0xFFFFFF)] = 0) -> torch.Tensor:
    """A batch filled with ``color`` (0xRRGGBB)."""
    rgb = torch.tensor([(color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF], dtype=torch.float32) / 255.0
    return rgb.expand(batch_size, height, width, 3).clone()


@op("ImageScaleBy", outputs={"IMAGE": "IMAGE"}, category="image/upscaling")
def image_scale_by(image: Annotated[torch.Tensor | Frames, Port("IMAGE")],
                   upscale_method: Annotated[str, Port("STRING", choices=RESAMPLE_METHODS)] = "nearest-exact",
                   scale_by: Annotated[float, Port("FLOAT", min=0.01, max=8.0)] = 1.0) -> torch.Tensor:
    """Both sides times ``scale_by`` (rounded)."""
    return same_depth(image, resample(float_images(image), max(1, round(image.shape[2] * scale_by)),
                                      max(1, round(image.shape[1] * scale_by)), upscale_method))


@op("ImageScale", outputs={"IMAGE": "IMAGE"}, category="image/upscaling")
def image_scale(image: Annotated[torch.Tensor | Frames, Port("IMAGE")],
                upscale_method: Annotated[str, Port("STRING", choices=RESAMPLE_METHODS)] = "nearest-exact",
                width: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION)] = 512,
                height: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION)] = 512,
                crop: Annotated[str, Port("STRING", choices=("disabled", "center"))] = "disabled") -> torch.Tensor:
    """To width x height (0 keeps the aspect ratio from the other side); ``center`` crops to the aspect."""
    if width == 0 and height == 0:
        return image
    if width == 0:
        width = max(1, round(image.shape[2] * height / image.shape[1]))
    elif height == 0:
        height = max(1, round(image.shape[1] * width / image.shape[2]))
    return same_depth(image, resize_cropped(float_images(image), width, height, upscale_method, crop))


def _longer_side(image: torch.Tensor | Frames, size: int, method: str) -> torch.Tensor | Frames:
    h, w = image.shape[1:3]
    scale = size / max(h, w)
    return same_depth(image, resample(float_images(image), max(1, round(w * scale)), max(1, round(h * scale)),
                                      method))


@op("ImageScaleToMaxDimension", outputs={"IMAGE": "IMAGE"}, category="image/upscaling")
def image_scale_to_max_dimension(
        image: Annotated[torch.Tensor | Frames, Port("IMAGE")],
        upscale_method: Annotated[str, Port("STRING", choices=RESAMPLE_METHODS)] = "area",
        largest_size: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION)] = 512) -> torch.Tensor:
    """The longer side to ``largest_size``, aspect ratio kept."""
    return image if largest_size == 0 else _longer_side(image, largest_size, upscale_method)


@op("ResizeImagesByLongerEdge", outputs={"images": "IMAGE"}, category="image/transform")
def resize_images_by_longer_edge(images: Annotated[torch.Tensor | Frames, Port("IMAGE")],
                                 longer_edge: Annotated[int, Port("INT", min=1, max=8192)] = 1024) -> torch.Tensor:
    return _longer_side(images, longer_edge, "lanczos")


@op("ImageFromBatch", outputs={"IMAGE": "IMAGE"}, category="image/batch")
def image_from_batch(image: Annotated[torch.Tensor, Port("IMAGE")],
                     batch_index: Annotated[int, Port("INT", min=-16384, max=16384)] = 0,
                     length: Annotated[int, Port("INT", min=1, max=4096)] = 1) -> torch.Tensor:
    """``length`` images from ``batch_index`` (negative counts from the end), clipped to the batch."""
    count = image.shape[0]
    start = batch_index + count if batch_index < 0 else batch_index
    start = min(max(start, 0), count - 1)
    return image[start:start + length].clone()


@op("ImageBatch", outputs={"IMAGE": "IMAGE"}, category="image/batch")
def image_batch(image1: Annotated[torch.Tensor, Port("IMAGE")],
                image2: Annotated[torch.Tensor, Port("IMAGE")]) -> torch.Tensor:
    """``image2`` after ``image1`` (resized to image1's size when they differ)."""
    if image2.shape[1:3] != image1.shape[1:3]:
        image2 = resize_cropped(image2, image1.shape[2], image1.shape[1], "bilinear", "center")
    return torch.cat([image1, image2[..., : image1.shape[-1]]], dim=0)


@op("ImageInvert", outputs={"IMAGE": "IMAGE"}, category="image")
def image_invert(image: Annotated[torch.Tensor, Port("IMAGE")]) -> torch.Tensor:
    return 1.0 - image


@input_check("low_threshold")
def thresholds_ordered(low_threshold: float, high_threshold: float) -> str | None:
    """Refuses a low threshold above the high one."""
    if low_threshold > high_threshold:
        return f"low_threshold {low_threshold} is above high_threshold {high_threshold}"
    return None


@op("Canny", outputs={"IMAGE": "IMAGE"}, category="image/preprocessors", checks=(thresholds_ordered,))
def canny_op(image: Annotated[torch.Tensor, Port("IMAGE")],
             low_threshold: Annotated[float, Port("FLOAT", min=0.01, max=0.99)] = 0.4,
             high_threshold: Annotated[float, Port("FLOAT", min=0.01, max=0.99)] = 0.8) -> torch.Tensor:
    """White edges on black, per image: Canny with hysteresis thresholds on the Sobel gradient magnitude of
    the grey image."""
    gray = (check_images(image, "image")[..., :3] * torch.tensor([0.299, 0.587, 0.114])).sum(-1, keepdim=True)
    edges = canny(gaussian_blur(gray.movedim(-1, 1)), low_threshold, high_threshold, l2_gradient=True)
    return edges.movedim(1, -1).expand(-1, -1, -1, 3).clone()
