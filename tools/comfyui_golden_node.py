"""ComfyUI custom node package written by tools/comfyui_golden.py into ComfyUI's custom_nodes/ltxgraph_golden/
(as __init__.py, with sizes.json beside it). It runs inside ComfyUI's process, never in ltxgraph's.

ComfyUI hard-codes the Gemma 3 12B sizes and the text projection's widths; on ltxgraph's tiny models:
- the Gemma 3 config takes the tiny sizes of sizes.json (text model and vision tower);
- the text encoder's loader takes a Gemma file for what it is by its first layer's keys (ComfyUI looks for
  layer 47), and builds the text projection at the widths of the checkpoint's projection weights (ComfyUI
  builds 3840 x 49 -> 3840, or -> 4096 + 2048 for LTX-2.3);
- Gemma 3's special token ids (<end_of_turn> 106, <image_soft_token> 262144: the tokenizer's special pieces
  and TextGenerate's stop token) are the tiny vocabulary's (sizes.json), as the real vocabulary has them at
  those ids;
- a capture node (LtxgraphGoldenCapture) saves the tensor of the value it is given as a safetensors file.
"""
import dataclasses
import json
import os

import torch
from safetensors.torch import save_file

import comfy.text_encoders.llama as llama
import comfy.text_encoders.lt as lt

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sizes.json")) as _file:
    SIZES = json.load(_file)
_GEMMA = SIZES["gemma"]


@dataclasses.dataclass
class TinyGemma3Config(llama.Gemma3_12B_Config):
    vocab_size: int = _GEMMA["vocab_size"]
    hidden_size: int = _GEMMA["hidden_size"]
    intermediate_size: int = _GEMMA["intermediate_size"]
    num_hidden_layers: int = _GEMMA["num_hidden_layers"]
    num_attention_heads: int = _GEMMA["num_attention_heads"]
    num_key_value_heads: int = _GEMMA["num_key_value_heads"]


TinyGemma3Config.head_dim = _GEMMA["head_dim"]
TinyGemma3Config.sliding_attention = _GEMMA["sliding_attention"]
TinyGemma3Config.vision_config = {**llama.GEMMA3_VISION_CONFIG, **SIZES["vision"]}
TinyGemma3Config.mm_tokens_per_image = SIZES["mm_tokens_per_image"]
llama.Gemma3_12B_Config = TinyGemma3Config

_original_load_sd = lt.LTXAVTEModel.load_sd


def _projection_at_checkpoint_widths(model, state_dict):
    """The text projection rebuilt at the widths of the checkpoint's weights."""
    operations = model.gemma3_12b.operations
    dtype = next(model.text_embedding_projection.parameters()).dtype       # the dtype ComfyUI chose
    single = state_dict.get("text_embedding_projection.aggregate_embed.weight",
                            state_dict.get("text_embedding_projection.weight"))
    if single is not None:
        model.text_embedding_projection = operations.Linear(single.shape[1], single.shape[0], bias=False,
                                                            dtype=dtype)
    video = state_dict.get("text_embedding_projection.video_aggregate_embed.weight")
    audio = state_dict.get("text_embedding_projection.audio_aggregate_embed.weight")
    if video is not None and audio is not None:
        model.text_embedding_projection = lt.DualLinearProjection(video.shape[1], video.shape[0], audio.shape[0],
                                                                  dtype=dtype, operations=operations)


def _load_sd(self, state_dict):
    if "model.layers.0.self_attn.q_norm.weight" in state_dict:          # the (tiny) Gemma file
        return self.gemma3_12b.load_sd(state_dict)
    _projection_at_checkpoint_widths(self, state_dict)
    return _original_load_sd(self, state_dict)


lt.LTXAVTEModel.load_sd = _load_sd

# Gemma 3's special ids: ComfyUI's (the real vocabulary's) -> the tiny vocabulary's
_SPECIAL_IDS = {SIZES["real_special_ids"][piece]: tiny for piece, tiny in SIZES["special_ids"].items()}
_original_tokenizer_init = lt.Gemma3_12BTokenizer.__init__
_original_generate = llama.Gemma3_12B.generate


def _tokenizer_init(self, *args, **kwargs):
    _original_tokenizer_init(self, *args, **kwargs)
    special = self.tokenizer.special_tokens
    self.tokenizer.special_tokens = {piece: _SPECIAL_IDS.get(i, i) for piece, i in special.items()}


def _generate(self, *args, stop_tokens=None, **kwargs):
    if stop_tokens is not None:
        stop_tokens = [_SPECIAL_IDS.get(i, i) for i in stop_tokens]
    return _original_generate(self, *args, stop_tokens=stop_tokens, **kwargs)


lt.Gemma3_12BTokenizer.__init__ = _tokenizer_init
llama.Gemma3_12B.generate = _generate


def waveform_windows(waveform):
    """[B, C, S] -> [3, C, W]: the first, middle and last W samples of the first item (W: sizes.json), so a
    different length shows as misaligned windows."""
    width = SIZES["waveform_window"]
    start = (waveform.shape[-1] - width) // 2
    return torch.stack([waveform[0, :, :width], waveform[0, :, start:start + width], waveform[0, :, -width:]])


class LtxgraphGoldenCapture:
    """Saves ``value`` under ``key`` in ``folder``: a LATENT's samples (an audio-video latent as ``.video`` and
    ``.audio``), a CONDITIONING's first tensor, an AUDIO's waveform windows (see waveform_windows), an IMAGE's
    first, middle and last frame as 8-bit codes (round(255 x), the grid a saved video and ltxgraph's frames use)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*",), "key": ("STRING",), "folder": ("STRING",)}}

    RETURN_TYPES = ()
    FUNCTION = "capture"
    OUTPUT_NODE = True
    CATEGORY = "testing"

    @classmethod
    def VALIDATE_INPUTS(cls, input_types):
        return True

    def capture(self, value, key, folder):
        tensors = {}
        if isinstance(value, dict) and "samples" in value:
            samples = value["samples"]
            if getattr(samples, "is_nested", False):
                tensors.update({f"{key}.{name}": part for name, part in zip(("video", "audio"), samples.tensors)})
            else:
                tensors[f"{key}.latent"] = samples
        elif isinstance(value, list):                                   # CONDITIONING: the first entry's tensor
            tensors[key] = value[0][0]
        elif isinstance(value, dict) and "waveform" in value:
            tensors[key] = waveform_windows(value["waveform"].float())
        else:
            frames = value[[0, value.shape[0] // 2, value.shape[0] - 1]].float()
            tensors[key] = frames.clamp(0, 1).mul(255).round().to(torch.uint8)
        save_file({name: (t if t.dtype == torch.uint8 else t.float()).detach().cpu().contiguous()
                   for name, t in tensors.items()}, os.path.join(folder, key + ".safetensors"))
        return ()


NODE_CLASS_MAPPINGS = {"LtxgraphGoldenCapture": LtxgraphGoldenCapture}
