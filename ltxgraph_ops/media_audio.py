"""Audio ops: load any audio (or the audio of a video) through PyAV, trim, and pad with silence so audio is
never shorter than the video it drives. AUDIO is [1, C, S] float in [-1, 1] at its own rate."""
from __future__ import annotations

import math
from typing import Annotated

import av
import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check
from ltxgraph.values import Audio
from ltxgraph_ops.decode_guard import DecodeBudget, open_limited
from ltxgraph_ops.file_checks import audio_file
from ltxgraph_ops.media_video import decode_audio


def read_audio(path: str, budget: DecodeBudget | None = None) -> Audio:
    """The audio of a file, within ``budget`` (default: the default media limits)."""
    budget = budget or DecodeBudget.for_file(path, None)
    try:
        with open_limited(budget) as container:
            audio = decode_audio(container, budget)
    except (av.FFmpegError, OSError) as exc:
        raise InputValueError(f"{path}: cannot be read as audio ({exc})") from None
    if audio is None or audio.waveform.shape[-1] == 0:
        raise InputValueError(f"{path}: has no audio")
    if not bool(torch.isfinite(audio.waveform).all()):
        raise InputValueError(f"{path}: decodes to NaN or infinite samples")
    return audio


@op("LoadAudio", outputs={"AUDIO": "AUDIO"}, category="audio", checks=(audio_file,))
def load_audio(audio: Annotated[str, Port("STRING", file="input")],
               audioUI: Annotated[str, Port("STRING", upload=True)] = "",  # noqa: N803 - ComfyUI name
               ctx: OpContext = None) -> Audio:
    """An audio file (or a video's audio track) from the input folder, refused before decoding when longer or
    larger than the run's media limits. ``audioUI`` is ComfyUI's player widget (kept so workflows map slot for
    slot; unused)."""
    return read_audio(audio, DecodeBudget.for_file(audio, ctx))


@op("TrimAudioDuration", outputs={"AUDIO": "AUDIO"}, category="audio")
def trim_audio_duration(audio: Annotated[Audio, Port("AUDIO")],
                        start_index: Annotated[float, Port("FLOAT")] = 0.0,
                        duration: Annotated[float, Port("FLOAT", min=0.0)] = 60.0) -> Audio:
    """``duration`` seconds from ``start_index`` seconds (negative: from the end)."""
    total = audio.waveform.shape[-1]
    start = round(start_index * audio.sample_rate)
    start = max(0, start + total if start < 0 else start)
    if start >= total:
        raise InputValueError(f"start_index {start_index} s is past the audio's end ({total / audio.sample_rate:.3f} s)")
    stop = min(total, start + round(duration * audio.sample_rate))
    return Audio(audio.waveform[..., start:stop].clone(), audio.sample_rate)


LONGEST_PAD_SECONDS = 86400  # a day: padding longer than this is a mistake (e.g. an fps near 0), not a video


@input_check("duration")
def pad_within_a_day(duration: float, frames: int, fps: float) -> str | None:
    """Refuses padding to more than a day of audio."""
    seconds = frames / fps if frames and fps else duration
    if seconds > LONGEST_PAD_SECONDS:
        source = f"frames {frames} / fps {fps:g}" if frames and fps else f"duration {duration:g}"
        return f"{source} asks for {seconds:.3g} s of audio, more than {LONGEST_PAD_SECONDS} s"
    return None


@op("PadAudioToDuration", outputs={"AUDIO": "AUDIO"}, category="audio", checks=(pad_within_a_day,))
def pad_audio_to_duration(audio: Annotated[Audio, Port("AUDIO")],
                          duration: Annotated[float, Port("FLOAT", min=0.0)] = 5.0,
                          frames: Annotated[int, Port("INT", min=0)] = 0,
                          fps: Annotated[float, Port("FLOAT", min=0.0)] = 0.0) -> Audio:
    """Silence appended so the audio lasts at least ``duration`` seconds, or ``frames`` / ``fps`` when both are
    given (the length of the video it drives); longer audio is left as it is."""
    seconds = frames / fps if frames and fps else duration
    wanted = math.ceil(seconds * audio.sample_rate - 1e-9)
    missing = wanted - audio.waveform.shape[-1]
    if missing <= 0:
        return audio
    return Audio(torch.nn.functional.pad(audio.waveform, (0, missing)), audio.sample_rate)


@op("AudioConcat", outputs={"AUDIO": "AUDIO"}, category="audio")
def audio_concat(audio1: Annotated[Audio, Port("AUDIO")], audio2: Annotated[Audio, Port("AUDIO")],
                 direction: Annotated[str, Port("STRING", choices=("after", "before"))] = "after") -> Audio:
    """``audio2`` placed after (or before) ``audio1``, at audio1's sample rate (PyAV resampler) and channel
    count."""
    from ltxgraph_ops.models.audio_resample import resample
    second = audio2.waveform[0]
    if audio2.sample_rate != audio1.sample_rate:
        second = resample(second if second.shape[0] <= 2 else second[:2], audio2.sample_rate, audio1.sample_rate)
    channels = audio1.waveform.shape[1]
    if second.shape[0] != channels:
        second = second.mean(dim=0, keepdim=True).expand(channels, -1)
    parts = [audio1.waveform, second[None]] if direction == "after" else [second[None], audio1.waveform]
    return Audio(torch.cat(parts, dim=-1), audio1.sample_rate)
