"""LTX-2.5's bundled ("with-proj") text-encoder file: Gemma 4 with LTX-2's text projection and connectors in one
safetensors file, as ComfyUI's CLIPLoader (type "ltxv") and ltx-core 1.2.0's PromptEncoder load it.

The layout, checked against ltx-core 1.2.0 (Lightricks/LTX-2 at 400fd31, August 2026):
``gemma_assets.build_text_encoder_tensors_from_gemma_root`` packs the file in what it calls ComfyUI's LTXAV
text-encoder layout, and ``encoder_configurator`` loads it:

- Gemma 4's language model flat under ``model.*`` (``model.layers.N.*``, ``model.embed_tokens.*``,
  ``model.norm.*``; told by ``model.layers.0.post_feedforward_layernorm.weight``), or Hugging Face's
  ``model.language_model.*``; its vision and audio embedders under ``vision_model.*``,
  ``multi_modal_projector.*`` and ``audio_projector.*`` (not read by ltxgraph: Gemma 4 prompts are text only);
- the text projection under ``text_embedding_projection.{video,audio}_aggregate_embed.*`` and the connectors under
  ``model.diffusion_model.{video,audio}_embeddings_connector.*`` (the keys of ``EMBEDDINGS_PROCESSOR_KEY_OPS``,
  the same as in a single-file checkpoint);
- the tokenizer as Hugging Face tokenizers JSON in a ``tokenizer_json`` uint8 tensor, processor files in
  ``hf_asset__<name>`` tensors, and the metadata ``gemma_config`` (the Hugging Face config, with
  ``gemma_version``). No ``config`` entry: ltx-core reads the connectors' settings from the transformer file.

ltxgraph's own tiny and synthetic files add a ``config`` entry (Gemma 4's config and the 2.5 ``transformer``
section) and the SentencePiece ``spiece_model``. A packed file without the section gets its text path here: the
sizes from its tensors, the rest (RoPE, registers' std, V2 switches) the LTX-2.5 release's.
ComfyUI's own loader of this file was not found in the sources available here, so nothing is checked against it.
"""
from __future__ import annotations

from ltxgraph_ops.gemma_generation import PACKED_CONFIG_KEY
from ltxgraph_ops.model_files import TRANSFORMER_PREFIX, header_section
from ltxgraph_ops.releases import transformer_section_25
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

PROJECTION = "text_embedding_projection."
CONNECTORS = {"": "video_embeddings_connector.", "audio_": "audio_embeddings_connector."}  # field prefix -> keys


def text_path_section(file: SafetensorsFile) -> dict:
    """The ``transformer`` header section the text projection and connectors read: the file's own, or for a
    file packed by ltx-core without one, the 2.5 release's with the sizes its tensors show."""
    if "transformer" in file.config() or PACKED_CONFIG_KEY not in file.metadata:
        return header_section(file, "transformer")
    return {**transformer_section_25(), **sizes_from_tensors(file)}


def _shape(file: SafetensorsFile, key: str) -> tuple[int, ...]:
    entry = file.entries.get(key)
    if entry is None:
        raise CheckpointError(f"{file.path}: bundled text path without '{key}'")
    return tuple(entry.shape)


def sizes_from_tensors(file: SafetensorsFile) -> dict:
    """The text path's sizes a packed file's tensors fix: per stream the connector's depth, heads (rows of the
    gated attention's ``to_gate_logits``), head width and registers, and the stream width (the aggregate
    projection's output, which V2 connectors work at)."""
    sizes: dict = {}
    for field, connector in CONNECTORS.items():
        block = f"{TRANSFORMER_PREFIX}{connector}transformer_1d_blocks."
        heads = _shape(file, f"{block}0.attn1.to_gate_logits.weight")[0]
        width = _shape(file, f"{block}0.attn1.to_q.weight")[0]
        stream = _shape(file, f"{PROJECTION}{field or 'video_'}aggregate_embed.weight")[0]
        if width % heads or stream % heads:
            raise CheckpointError(f"{file.path}: the {field or 'video_'}connector's width {width} (stream {stream}) "
                                  f"does not split into its {heads} heads")
        sizes.update({f"{field}connector_num_attention_heads": heads,
                      f"{field}connector_attention_head_dim": width // heads,
                      f"{field}num_attention_heads": heads, f"{field}attention_head_dim": stream // heads})
    video = f"{TRANSFORMER_PREFIX}{CONNECTORS['']}"
    depth = {int(key[len(video):].split(".")[1]) for key in file.entries
             if key.startswith(f"{video}transformer_1d_blocks.")}
    sizes["connector_num_layers"] = len(depth)
    sizes["connector_num_learnable_registers"] = _shape(file, f"{video}learnable_registers")[0]
    return sizes
