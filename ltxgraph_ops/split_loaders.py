"""ComfyUI's generic loaders of the split LTX-2.5 files: VAELoader (models/vae/) and CLIPLoader (models/
text_encoders/, type "ltxv").

ComfyUI has one VAE type for the video and the audio VAE; ltxgraph keeps VAE and AUDIO_VAE apart. So "VAELoader"
loads a video VAE file and refuses an audio one, and "VAELoaderAudio" is the same ComfyUI node for an audio VAE
(audio VAE and vocoder) file: the converter picks it for a VAELoader whose output feeds an AUDIO_VAE input
(``FEED_VARIANTS`` in ltxgraph.comfyui.convert). Which kind a file is comes from its header sections alone.
"""
from __future__ import annotations

from typing import Annotated

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.input_checks import input_check, refusal
from ltxgraph_ops.audio_ops import AudioVAEHandle, audio_vae_handle
from ltxgraph_ops.model_files import check_kind
from ltxgraph_ops.text_ops import (TextEncoderHandle, gemma_prefix, projection_key, text_encoder_handle,
                                   text_encoder_headers)
from ltxgraph_ops.vae_handle import VideoVAEHandle
from ltxgraph_ops.vae_ops import VAE_SECTION, video_vae_handle
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile, ShardedSafetensors

AUDIO_SECTIONS = ("audio_vae", "vocoder")


def vae_kind(path: str) -> str:
    """"audio" for a file whose header holds an audio VAE and a vocoder, "video" for one with a video VAE
    section; CheckpointError naming the file otherwise."""
    sections = SafetensorsFile(path).config()
    if all(name in sections for name in AUDIO_SECTIONS):
        return "audio"
    check_kind(path, VAE_SECTION)
    return "video"


def _require_kind(path: str, wanted: str) -> None:
    found = vae_kind(path)
    if found != wanted:
        article = {"audio": "an", "video": "a"}
        raise CheckpointError(f"{SafetensorsFile(path).name} is {article[found]} {found} VAE file, not "
                              f"{article[wanted]} {wanted} VAE: "
                              f"connect it to {'an AUDIO_VAE' if found == 'audio' else 'a VAE'} input")


@input_check("vae_name")
def video_vae_file(vae_name: str) -> str | None:
    """Refuses a file that holds no video VAE (an audio VAE file is named as such)."""
    return refusal(_require_kind, vae_name, "video")


@input_check("vae_name")
def audio_vae_file(vae_name: str) -> str | None:
    """Refuses a file that holds no audio VAE and vocoder."""
    return refusal(_require_kind, vae_name, "audio")


@op("VAELoader", outputs={"VAE": "VAE"}, category="loaders", checks=(video_vae_file,))
def vae_loader(vae_name: Annotated[str, Port("STRING", file="vae")], ctx: OpContext = None) -> VideoVAEHandle:
    """The video VAE of a VAE file (LTX-2.5's diffusion VAE, or an earlier VAE under ``vae.``)."""
    return video_vae_handle(vae_name, ctx)


@op("VAELoaderAudio", outputs={"VAE": "AUDIO_VAE"}, category="loaders", checks=(audio_vae_file,))
def vae_loader_audio(vae_name: Annotated[str, Port("STRING", file="vae")], ctx: OpContext = None) -> AudioVAEHandle:
    """ComfyUI's VAELoader for an audio VAE file: its audio VAE and vocoder (checked now, read on first use)."""
    return audio_vae_handle(vae_name, ctx)


def has_projection(path: str) -> bool:
    """Whether a text-encoder file bundles LTX-2's text projection and connectors ("with-proj")."""
    try:
        projection_key(SafetensorsFile(path))
    except CheckpointError:
        return False
    return True


def text_encoder_file(path: str) -> None:
    """Refuses a text-encoder file that is no Gemma, or whose bundled projection does not fit it."""
    if has_projection(path):
        text_encoder_headers(path, path)
    else:
        gemma_prefix(ShardedSafetensors.for_shard(path))


@input_check("clip_name")
def clip_file(clip_name: str) -> str | None:
    """Refuses a file that holds no Gemma text model, or a bundled projection that does not fit it."""
    return refusal(text_encoder_file, clip_name)


@op("CLIPLoader", outputs={"CLIP": "CLIP"}, category="loaders", checks=(clip_file,))
def clip_loader(clip_name: Annotated[str, Port("STRING", file="text_encoders")],
                clip_type: Annotated[str, Port("STRING", choices=("ltxv",), comfy_name="type")] = "ltxv",
                device: Annotated[str, Port("STRING", choices=("default", "cpu"))] = "default",
                ctx: OpContext = None) -> TextEncoderHandle:
    """A Gemma text encoder file (type "ltxv"): with its bundled LTX-2 text projection and connectors when it has
    them (LTX-2.5's "with-proj" file: encodes prompts), else Gemma alone (for prompt generation). Runs on the
    run's device (``device`` is accepted for compatibility)."""
    return text_encoder_handle(clip_name, clip_name if has_projection(clip_name) else None, ctx)
