"""Guiders: turn a conditional model into one denoised prediction per modality.

A guider asks the model for the passes its parameters need (positive; negative prompt for CFG; perturbed
self-attention for STG; isolated modalities for modality guidance) and combines them per modality:

    pred = c + (cfg - 1)(c - u_text) + stg (c - u_perturbed) + (modality - 1)(c - u_isolated)
    pred = pred * (r * std(c) / std(pred) + (1 - r))          (rescale r)

The rescale's std is taken over the whole batch, as ltx-core's (1.0.0 and 1.2.0) and ComfyUI-LTXVideo's guiders
take it (at batch 1 the same as per item); ``GuidanceParams.rescale_per_item`` takes it per batch item instead
(each item rescaled as if sampled alone), an option the reference does not have.

Identity guidance (ID-LoRA, ComfyUI's LTXVReferenceAudio) then adds, inside its sigma window and to every
modality, ``scale (c - c_without_reference)``, where the extra pass leaves out the prompt's reference voice.

CFG (Ho & Salimans 2022), STG (Hyung et al. 2024, spatiotemporal skip guidance), CFG rescale (Lin et al. 2023).
Passes no modality needs are not run; a model with ``run_passes`` gets all of a call's passes at once (and runs
them as one batched forward). The sampler never sees any of this.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import torch


@dataclass(frozen=True)
class ModelPass:
    """One forward of the model that a guider asks for.

    conditioning: "positive" or "negative" (the prompt whose text context is used).
    skip_self_attention: per modality, the blocks whose self-attention is bypassed (STG), None = none.
    isolate_modalities: bypass the audio<->video cross-attentions (modality guidance).
    no_cross_attention_into: per modality, True = bypass the cross-attention that feeds it from the other
    modality (in every block); () = none bypassed.
    reference: False = the prompt's reference tokens (a reference voice) are left out (identity guidance).
    """

    conditioning: str = "positive"
    skip_self_attention: tuple[tuple[int, ...] | None, ...] = ()
    isolate_modalities: bool = False
    no_cross_attention_into: tuple[bool, ...] = ()
    reference: bool = True


class GuidableModel(Protocol):
    """The model as a guider sees it: latents and per-token timesteps (sigma * noise mask) of each modality
    (e.g. (video, audio)) in, the predicted clean latents (x0) of each modality out."""

    def __call__(self, latents: tuple[torch.Tensor, ...], timesteps: tuple[torch.Tensor, ...],
                 sigma: torch.Tensor, model_pass: ModelPass) -> tuple[torch.Tensor, ...]: ...


class BatchedGuidableModel(GuidableModel, Protocol):
    """A model that can run several passes of one call together: x0s of each pass, in order."""

    def run_passes(self, latents: tuple[torch.Tensor, ...], timesteps: tuple[torch.Tensor, ...],
                   sigma: torch.Tensor, passes: Sequence[ModelPass]) -> list[tuple[torch.Tensor, ...]]: ...


def run_passes(model: GuidableModel | BatchedGuidableModel, latents: tuple[torch.Tensor, ...],
               timesteps: tuple[torch.Tensor, ...], sigma: torch.Tensor,
               passes: dict[str, ModelPass]) -> dict[str, tuple[torch.Tensor, ...]]:
    """The x0s of every pass, by role: in one ``model.run_passes`` call when the model has one, else one call
    per pass."""
    batched = getattr(model, "run_passes", None)
    if batched is None:
        return {role: model(latents, timesteps, sigma, model_pass) for role, model_pass in passes.items()}
    outputs = batched(latents, timesteps, sigma, list(passes.values()))
    if len(outputs) != len(passes):
        raise ValueError(f"the model returned {len(outputs)} predictions for {len(passes)} passes")
    return dict(zip(passes, outputs))


@dataclass(frozen=True)
class GuidanceParams:
    """Guidance of one modality. Neutral values: cfg 1, stg 0, modality 1, rescale 0.

    rescale_per_item: False (the reference) = the rescale's std over the whole batch; True = per batch item.
    """

    cfg: float = 1.0
    stg: float = 0.0
    modality: float = 1.0
    rescale: float = 0.0
    stg_blocks: tuple[int, ...] = field(default_factory=tuple)
    rescale_per_item: bool = False

    @property
    def needs_negative(self) -> bool:
        return self.cfg != 1.0

    @property
    def needs_perturbed(self) -> bool:
        return self.stg != 0.0

    @property
    def needs_isolated(self) -> bool:
        return self.modality != 1.0


@dataclass(frozen=True)
class IdentityGuidance:
    """Identity guidance: ``scale (c - c_without_reference)`` added to the guided prediction of each modality
    at steps whose sigma lies in [sigma_end, sigma_start] (scale 0: off, no extra pass)."""

    scale: float
    sigma_start: float = 1.0
    sigma_end: float = 0.0

    def active(self, sigma: torch.Tensor) -> bool:
        """On at this step? (decided by the first batch item's sigma, as ComfyUI does)."""
        first = float(sigma.reshape(-1)[0])
        return self.scale != 0.0 and self.sigma_end <= first <= self.sigma_start


def rescale_to_std(pred: torch.Tensor, cond: torch.Tensor, strength: float, per_item: bool = False) -> torch.Tensor:
    """Scale pred towards the standard deviation of cond: factor = r*std(cond)/std(pred) + (1-r), pred and cond
    [B, ...]; std over every element of the batch (the reference), or over each batch item's if per_item."""
    dims = tuple(range(1 if per_item else 0, pred.ndim))
    factor = cond.std(dim=dims, keepdim=True) / pred.std(dim=dims, keepdim=True)
    return pred * (strength * factor + (1 - strength))


def combine(params: GuidanceParams, cond: torch.Tensor, negative: torch.Tensor | None = None,
            perturbed: torch.Tensor | None = None, isolated: torch.Tensor | None = None) -> torch.Tensor:
    """The guided prediction of one modality from the passes that were run (missing ones contribute 0)."""
    pred = cond
    if negative is not None:
        pred = pred + (params.cfg - 1) * (cond - negative)
    if perturbed is not None:
        pred = pred + params.stg * (cond - perturbed)
    if isolated is not None:
        pred = pred + (params.modality - 1) * (cond - isolated)
    if params.rescale != 0:
        pred = rescale_to_std(pred, cond, params.rescale, params.rescale_per_item)
    return pred


class MultimodalGuider:
    """Per-modality CFG + STG + modality guidance with rescale (the reference's multimodal guider).

    Options of ComfyUI-LTXVideo's guider: ``perturbed_blocks`` sets, per modality, the blocks whose
    self-attention the STG pass bypasses (None = that modality is not perturbed), overriding the default of
    each modality's own ``stg_blocks`` when its stg is non-zero; ``cross_attention`` (per modality, False =
    its cross-attention from the other modality is bypassed in every pass); ``skip_steps`` (per modality, n > 0
    = recompute its guided prediction only on every (n+1)-th call and reuse the last one in between; the model
    still runs that modality on skipped calls, so the other modality sees its current tokens).
    ``identity``: :class:`IdentityGuidance` added after the rest (None = none).
    """

    def __init__(self, model: GuidableModel, params: Sequence[GuidanceParams],
                 perturbed_blocks: Sequence[tuple[int, ...] | None] | None = None,
                 cross_attention: Sequence[bool] | None = None, skip_steps: Sequence[int] | None = None,
                 identity: IdentityGuidance | None = None):
        self.model = model
        self.params = tuple(params)
        self.identity = identity
        count = len(self.params)
        for name, option in (("perturbed_blocks", perturbed_blocks), ("cross_attention", cross_attention),
                             ("skip_steps", skip_steps)):
            if option is not None and len(option) != count:
                raise ValueError(f"{name} has {len(option)} entries for {count} modalities")
        self.perturbed_blocks = None if perturbed_blocks is None else tuple(
            None if blocks is None else tuple(blocks) for blocks in perturbed_blocks)
        self.no_cross = () if cross_attention is None or all(cross_attention) else tuple(
            not on for on in cross_attention)
        self.skip_steps = tuple(skip_steps) if skip_steps is not None else (0,) * count
        self.calls = 0
        self.last: list[torch.Tensor | None] = [None] * count
        self.keep_unconditional = False          # CFG++ samplers: run the negative pass always and keep it
        self.last_unconditional: tuple[torch.Tensor, ...] | None = None

    def passes(self, sigma: torch.Tensor | None = None) -> dict[str, ModelPass]:
        """The model passes needed at noise level ``sigma`` (None: at any), by role, in the order they run."""
        needed = {"positive": ModelPass(no_cross_attention_into=self.no_cross)}
        if self.keep_unconditional or any(p.needs_negative for p in self.params):
            needed["negative"] = ModelPass(conditioning="negative", no_cross_attention_into=self.no_cross)
        if any(p.needs_perturbed for p in self.params):
            blocks = self.perturbed_blocks or tuple(tuple(p.stg_blocks) if p.needs_perturbed else None
                                                    for p in self.params)
            needed["perturbed"] = ModelPass(skip_self_attention=blocks, no_cross_attention_into=self.no_cross)
        if any(p.needs_isolated for p in self.params):
            needed["isolated"] = ModelPass(isolate_modalities=True)
        if self.identity is not None and (self.identity.active(sigma) if sigma is not None else self.identity.scale):
            needed["without_reference"] = ModelPass(no_cross_attention_into=self.no_cross, reference=False)
        return needed

    def _skipped(self, k: int, call: int) -> bool:
        n = self.skip_steps[k]
        return n > 0 and call % (n + 1) != 0 and self.last[k] is not None

    def __call__(self, latents: tuple[torch.Tensor, ...], timesteps: tuple[torch.Tensor, ...],
                 sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(latents) != len(self.params):
            raise ValueError(f"guider has parameters for {len(self.params)} modalities, got {len(latents)} latents")
        call, self.calls = self.calls, self.calls + 1
        skipped = [self._skipped(k, call) for k in range(len(self.params))]
        if all(skipped):
            return tuple(self.last)  # type: ignore[arg-type]
        outputs = run_passes(self.model, latents, timesteps, sigma, self.passes(sigma))
        if self.keep_unconditional:
            self.last_unconditional = outputs["negative"]
        guided = []
        for k, params in enumerate(self.params):
            if skipped[k]:
                guided.append(self.last[k])
                continue

            def used(role: str, needed: bool) -> torch.Tensor | None:
                return outputs[role][k] if needed and role in outputs else None
            cond = outputs["positive"][k]
            pred = combine(params, cond, negative=used("negative", params.needs_negative),
                           perturbed=used("perturbed", params.needs_perturbed),
                           isolated=used("isolated", params.needs_isolated))
            if "without_reference" in outputs:
                pred = pred + self.identity.scale * (cond - outputs["without_reference"][k])
            guided.append(pred)
        self.last = list(guided)
        return tuple(guided)


def cfg_guider(model: GuidableModel, cfg: float, modalities: int = 2) -> MultimodalGuider:
    """ComfyUI ``CFGGuider``: the same CFG scale for every modality (cfg 1 runs only the positive pass)."""
    return MultimodalGuider(model, [GuidanceParams(cfg=cfg)] * modalities)


def basic_guider(model: GuidableModel, modalities: int = 2) -> MultimodalGuider:
    """ComfyUI ``BasicGuider``: the positive prediction only."""
    return MultimodalGuider(model, [GuidanceParams()] * modalities)
