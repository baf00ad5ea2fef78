"""Input checks on the files a graph names: media in the input folder opened by PyAV (container header only, no
frame decoded), and output name prefixes that must stay inside the output folder. The ops run the same checks
before they read or write anything, so validation refuses exactly what a run would. (Model files: check_kind
in model_files, declared beside each loader.)"""
from __future__ import annotations

import av

from ltxgraph.input_checks import input_check
from ltxgraph.media_limits import MediaLimits
from ltxgraph.paths import Folders, UnsafePath, inside
from ltxgraph_ops.image_headers import declared_image_size


def media_problem(path: str, stream_type: str, kind: str, absent: str) -> str | None:
    """Why ``path`` cannot be read as ``kind`` (PyAV cannot open it, or it has no ``stream_type`` stream:
    ``absent`` says so, or it finds no picture size), or None. A still whose header ltxgraph reads is taken as an
    image here (its size is checked against the run's media limits when it is loaded), and FFmpeg probes the rest
    within the default pixel limit (probing a decompression bomb without one would decode it)."""
    if stream_type == "video" and declared_image_size(path) is not None:
        return None
    pixels = MediaLimits().pixels
    try:
        with av.open(path, options={"max_pixels": str(pixels)}) as container:
            stream = next((s for s in container.streams if s.type == stream_type), None)
            if stream is None:
                return f"{path}: {absent}"
            if stream_type == "video" and not (stream.codec_context.width and stream.codec_context.height):
                return (f"{path}: cannot be read as {kind} (FFmpeg finds no picture size within the default "
                        f"limit of {pixels} pixels: a broken file, or a larger picture)")
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
