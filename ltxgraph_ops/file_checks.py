"""Input checks on the files a graph names: media in the input folder opened by PyAV (container header only, no
frame decoded), LTX-2 model files identified from their safetensors header (no weight read), and output name
prefixes that must stay inside the output folder. The ops run the same checks before they read or write
anything, so validation refuses exactly what a run would."""
from __future__ import annotations

import av

from ltxgraph.input_checks import input_check
from ltxgraph.paths import Folders, UnsafePath, inside
from ltxgraph_ops.model_files import header_section, transformer_config
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile


def media_problem(path: str, stream_type: str, kind: str, absent: str) -> str | None:
    """Why ``path`` cannot be read as ``kind`` (PyAV cannot open it, it has no ``stream_type`` stream: ``absent``
    says so, or its video stream declares no picture size), or None."""
    try:
        with av.open(path) as container:
            stream = next((s for s in container.streams if s.type == stream_type), None)
            if stream is None:
                return f"{path}: {absent}"
            if stream_type == "video" and not (stream.codec_context.width and stream.codec_context.height):
                return f"{path}: cannot be read as {kind} (its header declares no picture size)"
    except (av.FFmpegError, OSError) as exc:
        return f"{path}: cannot be read as {kind} ({exc})"
    return None


@input_check("image")
def image_file(image: str) -> str | None:
    """Refuses an input file that is not an image."""
    return media_problem(image, "video", "an image", "holds no image")


@input_check("file")
def video_file(file: str) -> str | None:
    """Refuses an input file that is not a video."""
    return media_problem(file, "video", "a video", "has no video stream")


@input_check("audio")
def audio_file(audio: str) -> str | None:
    """Refuses an input file that has no audio."""
    return media_problem(audio, "audio", "audio", "has no audio")


def checkpoint_problem(path: str) -> str | None:
    """Why ``path`` is not an LTX-2 checkpoint with a transformer (from its header), or None."""
    try:
        transformer_config(SafetensorsFile(path))
    except CheckpointError as exc:
        return str(exc)
    return None


def section_problem(path: str, section: str) -> str | None:
    """Why ``path``'s header carries no ``section`` config (e.g. "audio_vae"), or None."""
    try:
        header_section(SafetensorsFile(path), section)
    except CheckpointError as exc:
        return str(exc)
    return None


@input_check("ckpt_name")
def transformer_checkpoint(ckpt_name: str) -> str | None:
    """Refuses a checkpoint without an LTX-2 transformer."""
    return checkpoint_problem(ckpt_name)


@input_check("unet_name")
def transformer_file(unet_name: str) -> str | None:
    """Refuses a diffusion-model file without an LTX-2 transformer."""
    return checkpoint_problem(unet_name)


@input_check("ckpt_name")
def audio_checkpoint(ckpt_name: str) -> str | None:
    """Refuses a checkpoint whose header has no audio VAE or no vocoder."""
    return section_problem(ckpt_name, "audio_vae") or section_problem(ckpt_name, "vocoder")


@input_check("filename_prefix")
def output_prefix(filename_prefix: str, folders: Folders) -> str | None:
    """Refuses a filename prefix that leaves the output folder (absolute, ``..``, a symlink out), unless the
    run allows paths outside its folders."""
    if not filename_prefix:
        return None
    try:
        inside(folders.output, filename_prefix, folders.allow_outside, folders.names)
    except UnsafePath as exc:
        return str(exc)
    return None
