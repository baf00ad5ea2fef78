"""Which LTX-2 model version a single-file checkpoint is: '2.0' (19B), '2.3' (22B) or '2.5', decided in one
place from its header (the ``config`` JSON's ``transformer`` section and the optional ``model_version`` /
``gemma_source_checkpoint`` metadata) and checked against the transformer keys the file holds.

The header fields that tell the versions apart (ltx-core 1.2.0's configurators; packages/ltx-trainer/AGENTS.md):
- 2.0: none of the 2.3 fields, or all False: caption projection in the transformer, 6 adaLN rows, no gates.
- 2.3: ``apply_gated_attention``, ``cross_attention_adaln`` and ``caption_proj_before_connector`` all True (text
  path V2: projections before the connectors).
- 2.5: the 2.3 fields plus what 2.5 adds: a ``gemma_source_checkpoint`` (Gemma 4), a ``model_version`` of 2.4 or
  later, or bias-free feed-forwards (``ff_bias`` False).
A header that mixes them (some 2.3 fields set, others not) is refused with what was found.

Files without a transformer section are told apart where they can be: a LoRA by the layers it patches
(:func:`lora_version`), a latent upscaler by the 2.3-only resampling its header describes or, for the plain x2
upscalers whose headers are alike, by its release name (:func:`upscaler_version`).
"""
from __future__ import annotations

import json
from collections.abc import Collection, Mapping

VERSIONS = ("2.0", "2.3", "2.5")
LTX23_FIELDS = ("apply_gated_attention", "cross_attention_adaln", "caption_proj_before_connector")
# transformer keys (without the model.diffusion_model. prefix) only a 2.0 / a 2.3-or-later file holds (video or audio)
CAPTION_PROJECTION_KEYS = ("caption_projection.linear_1.weight", "audio_caption_projection.linear_1.weight")
GATE_KEYS = ("transformer_blocks.0.attn1.to_gate_logits.weight",
             "transformer_blocks.0.audio_attn1.to_gate_logits.weight")
# layer names a LoRA can patch that only one layout has: 2.0's caption projections in the transformer; 2.3's
# attention gates and sigma-driven prompt AdaLN
LTX20_ONLY_LAYERS = ("caption_projection.", "audio_caption_projection.")
LTX23_ONLY_LAYERS = (".to_gate_logits.", "prompt_adaln_single.")
# the latent upscaler release files whose headers do not tell the version (the x2 ones: same fields, same shapes)
UPSCALER_RELEASES = {"ltx-2-spatial-upscaler-x2-1.0.safetensors": "2.0",
                     "ltx-2.3-spatial-upscaler-x2-1.1.safetensors": "2.3",
                     "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors": "2.5"}


class ModelVersionError(ValueError):
    """The header does not describe an LTX-2 version this code knows, or its keys contradict it."""


def numeric_version(text: str) -> tuple[int, ...]:
    """'2.3.0' -> (2, 3, 0); parsing stops at the first part that is not a number ('2.4-rc2' -> (2,))."""
    parts = []
    for part in str(text).split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def model_version(metadata: Mapping[str, object], keys: Collection[str] = (), source: str = "checkpoint") -> str:
    """'2.0' | '2.3' | '2.5' for a checkpoint's safetensors ``metadata`` (its ``config`` as a dict or JSON text,
    plus optional ``model_version`` / ``gemma_source_checkpoint``) and the transformer ``keys`` it holds (any
    prefix; () skips the key check). Raises :class:`ModelVersionError` naming what it lacks or found."""
    config = metadata.get("config", {})
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as exc:
            raise ModelVersionError(f"{source}: header 'config' is not valid JSON ({exc})") from None
    transformer = config.get("transformer") if isinstance(config, Mapping) else None
    if not isinstance(transformer, Mapping):
        found = ", ".join(sorted(config)) if isinstance(config, Mapping) and config else "no config"
        raise ModelVersionError(f"{source}: header config has no 'transformer' section (found: {found}); cannot "
                                "tell which LTX-2 version this is")
    version = _version_of(transformer, metadata, source)
    _check_keys(version, keys, source)
    return version


def _version_of(transformer: Mapping[str, object], metadata: Mapping[str, object], source: str) -> str:
    flags = {name: bool(transformer.get(name, False)) for name in LTX23_FIELDS}
    if not any(flags.values()):
        return "2.0"
    if not all(flags.values()):
        found = ", ".join(f"{name}={transformer.get(name)!r}" for name in LTX23_FIELDS)
        raise ModelVersionError(f"{source}: header transformer section mixes LTX-2.0 and LTX-2.3 fields ({found}); "
                                "LTX-2.3 and later set all three True, LTX-2.0 none")
    stamped = numeric_version(str(metadata.get("model_version", "")))
    newer = ("gemma_source_checkpoint" in metadata or stamped >= (2, 4)
             or transformer.get("ff_bias", True) is False)
    return "2.5" if newer else "2.3"


def _check_keys(version: str, keys: Collection[str], source: str) -> None:
    """The transformer keys fit the version (2.0: a caption projection, no gates; later: gates, no caption
    projection); skipped when no keys are given or the file holds no transformer."""
    names = {key.removeprefix("model.diffusion_model.") for key in keys}
    if not any(name.startswith(("patchify_proj.", "audio_patchify_proj.")) for name in names):
        return
    wanted, unwanted = (CAPTION_PROJECTION_KEYS, GATE_KEYS) if version == "2.0" else (GATE_KEYS,
                                                                                     CAPTION_PROJECTION_KEYS)
    present = sorted(names & set(unwanted))
    if present or not names & set(wanted):
        found = f"holds {present[0]!r}" if present else f"lacks {' / '.join(repr(k) for k in wanted)}"
        other = "LTX-2.3" if version == "2.0" else "LTX-2.0"
        raise ModelVersionError(f"{source}: the header describes LTX-{version}, but the transformer {found} "
                                f"(an {other} layout?)")


def lora_version(keys: Collection[str]) -> str | None:
    """'2.0' for a LoRA that patches a layer only the LTX-2.0 transformer has, '2.3' for one that patches a layer
    only LTX-2.3 and later have; None when every layer it patches exists in both (it fits either)."""
    layers = {key.split("diffusion_model.", 1)[-1] for key in keys}
    if any(layer.startswith(LTX20_ONLY_LAYERS) for layer in layers):
        return "2.0"
    if any(part in f".{layer}" for layer in layers for part in LTX23_ONLY_LAYERS):
        return "2.3"
    return None


def upscaler_version(config: Mapping[str, object], file_name: str) -> str | None:
    """'2.3' for an upscaler only LTX-2.3 released (a rational x1.5 or a temporal one, from its header), the
    version of a known x2 release by its name, else None (the header does not say)."""
    if config.get("rational_resampler") or config.get("temporal_upsample"):
        return "2.3"
    return UPSCALER_RELEASES.get(file_name)


def same_layout(version: str, other: str) -> bool:
    """Whether a LoRA or upscaler made for one version fits a model of the other: 2.0 only with 2.0; one made
    for 2.3 is taken to fit 2.5 as well (2.5 keeps 2.3's patched layers; no 2.5-only LoRA or upscaler is known)."""
    return (version == "2.0") == (other == "2.0")
