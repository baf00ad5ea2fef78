"""Hypothesis strategies for op inputs, derived from the op's own declaration.

Scalars follow their Port (min/max, multiple_of, 8n+1, choices), drawn from a small window above the minimum so
tensors stay tiny; tensor types (IMAGE [B, H, W, C], MASK [B, H, W], latents, AUDIO, VIDEO) are drawn directly in
tiny shapes; model handles come from :class:`~ltxgraph.testing.handles.TinyModels`; every other type (CONDITIONING,
SIGMAS, NOISE, GUIDER, ...) is made by running an op of the registry that produces it from drawn inputs.

Model versions: each draw of an op's inputs first picks one model set (:data:`~ltxgraph.testing.handles.MODEL_SETS`)
among those that have a handle for every model the op reads, directly or through the ops producing its inputs, and
draws every handle, and every value made from one, from that set: LTXVDurationPredictor (a MODEL_PATCH only LTX-2.5
has) gets a 2.5 MODEL and conditioning from the 2.5 text encoder; a sampler gets a 2.0, a 2.3 or a 2.5 model,
guider and conditioning, never a mix. An op that reads no model draws from the default set.

Related inputs: inputs are drawn one by one, so an op whose inputs must agree with each other (an overlap below its
tile size, a guide of its latent's frame count) would refuse most draws. A :data:`Fit` given for the op draws them
to agree instead, from the inputs drawn one by one, so every draw is valid by construction.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from hypothesis import reject
from hypothesis import strategies as st

from ltxgraph.errors import InvalidInput
from ltxgraph.executor import Executor
from ltxgraph.registry import REQUIRED, InputSpec, OpSpec, Port, Registry
from ltxgraph.types import members
from ltxgraph.values import AudioLatent, AVLatent, Audio, Video, VideoLatent

from .handles import DEFAULT_SET, MODEL_SETS, MODEL_TYPES, TinyModels

SPAN_INT = 48          # an INT is drawn from [min, min + SPAN_INT] (within max)
SPAN_FLOAT = 4.0       # a FLOAT from [min, min + SPAN_FLOAT]
SCALARS = ("INT", "FLOAT", "STRING", "BOOLEAN")
DEPTH = 3              # how many producers deep a value is made
LATENT_CHANNELS = 128  # the tiny (and real) video VAE's latent channels
AUDIO_CHANNELS, AUDIO_MEL = 8, 16  # the tiny audio VAE's latent [B, 8, T, 16]
AUDIO_LATENTS_PER_SECOND = 25.0
# producers of the types no strategy draws directly: (op name, output port)
PRODUCERS: dict[str, tuple[tuple[str, str], ...]] = {
    "CONDITIONING": (("CLIPTextEncode", "CONDITIONING"),),
    "SIGMAS": (("ManualSigmas", "SIGMAS"), ("BasicScheduler", "SIGMAS")),
    "NOISE": (("RandomNoise", "NOISE"), ("DisableNoise", "NOISE")),
    "SAMPLER": (("KSamplerSelect", "SAMPLER"),),
    "GUIDER": (("CFGGuider", "GUIDER"), ("BasicGuider", "GUIDER")),
    "GUIDER_PARAMETERS": (("GuiderParameters", "GUIDER_PARAMETERS"),),
    "IC_LORA_PARAMETERS": (("GetICLoRAParameters", "iclora_parameters"),),
}


def scalar(port: Port, default: Any = REQUIRED) -> st.SearchStrategy[Any]:
    """Valid values of a scalar port (INT, FLOAT, STRING, BOOLEAN or a union of them)."""
    if port.choices is not None:
        return st.sampled_from(port.choices)
    kinds = sorted(members(port.type))
    return st.one_of(*[_one_scalar(kind, port, default) for kind in kinds])


def _one_scalar(kind: str, port: Port, default: Any) -> st.SearchStrategy[Any]:
    if kind == "BOOLEAN":
        return st.booleans()
    if kind == "STRING":
        return st.just(default) if isinstance(default, str) else st.text("abc xyz", max_size=12)
    span = SPAN_FLOAT if kind == "FLOAT" else SPAN_INT
    numeric_default = isinstance(default, (int, float)) and not isinstance(default, bool)
    centre = default if numeric_default else 0
    low = port.min if port.min is not None else -math.inf
    high = port.max if port.max is not None else math.inf
    centre = min(max(centre, low), high)
    windows = [(max(low, centre - span / 2), min(high, centre + span / 2))]   # near the default (or 0)
    if port.min is not None:
        windows.append((port.min, min(high, port.min + span)))               # at the minimum
    return st.one_of(*[_numbers(kind, port, a, b) for a, b in windows])


def _numbers(kind: str, port: Port, low: float, high: float) -> st.SearchStrategy[Any]:
    """Numbers of ``kind`` in [low, high] that keep the port's multiple_of / 8n+1."""
    if kind == "FLOAT":
        return st.floats(float(low), float(high), allow_nan=False, allow_infinity=False)
    step, offset = (8, 1) if port.eight_n_plus_one else (port.multiple_of or 1, 0)
    first, last = math.ceil((low - offset) / step), math.floor((high - offset) / step)
    if port.multiple_of and port.eight_n_plus_one:   # both: search the window for values keeping both
        values = [v for v in range(math.ceil(low), math.floor(high) + 1) if v % port.multiple_of == 0 and v % 8 == 1]
        return st.sampled_from(values) if values else st.nothing()
    return st.integers(first, max(first, last)).map(lambda k: k * step + offset).filter(
        lambda v: (port.min is None or v >= port.min) and (port.max is None or v <= port.max))


@st.composite
def _seeded(draw: Callable, make: Callable[[torch.Generator], Any]) -> Any:
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 31 - 1)))
    return make(generator)


def image() -> st.SearchStrategy[torch.Tensor]:
    """IMAGE [B, H, W, 3] in [0, 1]: B 1 or 9 frames, H and W 32 or 64 pixels."""
    return st.tuples(st.sampled_from((1, 9)), st.sampled_from((32, 64)), st.sampled_from((32, 64))).flatmap(
        lambda s: _seeded(lambda g: torch.rand(*s, 3, generator=g)))


def mask() -> st.SearchStrategy[torch.Tensor]:
    """MASK [B, H, W] in [0, 1]."""
    return image().map(lambda pixels: pixels[..., 0].contiguous())


def video_latent(shape: tuple[int, int, int] | None = None) -> st.SearchStrategy[VideoLatent]:
    """VIDEO_LATENT [1, 128, F, H, W] (F 1..3 latent frames, H and W 2..3 cells; ``shape`` (F, H, W) when given),
    fps None or 24/25, with or without a noise mask [1, 1, F, 1, 1]."""
    def make(shape: tuple[int, int, int], fps: float | None, masked: bool) -> st.SearchStrategy[VideoLatent]:
        def build(g: torch.Generator) -> VideoLatent:
            frames, height, width = shape
            noise_mask = torch.rand(1, 1, frames, 1, 1, generator=g) if masked else None
            samples = torch.randn(1, LATENT_CHANNELS, frames, height, width, generator=g)
            return VideoLatent(samples, fps, 1 + 8 * (frames - 1), noise_mask)
        return _seeded(build)
    shapes = st.tuples(st.integers(1, 3), st.integers(2, 3), st.integers(2, 3)) if shape is None else st.just(shape)
    return st.tuples(shapes, st.sampled_from((None, 24.0, 25.0)), st.booleans()).flatmap(lambda a: make(*a))


def audio_latent() -> st.SearchStrategy[AudioLatent]:
    """AUDIO_LATENT [1, 8, T, 16] (T 1..12 latent steps at 25 per second), with or without a noise mask."""
    def make(steps: int, masked: bool) -> st.SearchStrategy[AudioLatent]:
        def build(g: torch.Generator) -> AudioLatent:
            noise_mask = torch.rand(1, 1, steps, 1, generator=g) if masked else None
            samples = torch.randn(1, AUDIO_CHANNELS, steps, AUDIO_MEL, generator=g)
            return AudioLatent(samples, AUDIO_LATENTS_PER_SECOND, steps / AUDIO_LATENTS_PER_SECOND, noise_mask)
        return _seeded(build)
    return st.tuples(st.integers(1, 12), st.booleans()).flatmap(lambda a: make(*a))


def av_latent() -> st.SearchStrategy[AVLatent]:
    return st.builds(AVLatent, video_latent(), audio_latent())


def audio() -> st.SearchStrategy[Audio]:
    """AUDIO [1, channels, samples] in [-1, 1] at 16 or 44.1 kHz, up to 0.1 s."""
    def make(channels: int, rate: int, samples: int) -> st.SearchStrategy[Audio]:
        return _seeded(lambda g: Audio(torch.rand(1, channels, samples, generator=g) * 2 - 1, rate))
    return st.tuples(st.sampled_from((1, 2)), st.sampled_from((16000, 44100)), st.integers(64, 1600)).flatmap(
        lambda a: make(*a))


def video() -> st.SearchStrategy[Video]:
    return st.builds(Video, image(), st.sampled_from((24.0, 25.0)), st.none() | audio())


DIRECT: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "IMAGE": image, "MASK": mask, "VIDEO_LATENT": video_latent, "AUDIO_LATENT": audio_latent,
    "AV_LATENT": av_latent, "AUDIO": audio, "VIDEO": video,
}


Fit = Callable[[dict[str, Any]], st.SearchStrategy[dict[str, Any]]]
"""An op's related inputs drawn to agree: from its keyword arguments drawn one by one, a strategy of keyword
arguments the op accepts (the related ones drawn again from the others)."""


class InputStrategies:
    """Strategies for the inputs of the ops of ``registry``; model handles and files from ``tiny``; ``fits``: op
    name -> the :data:`Fit` of its related inputs."""

    def __init__(self, registry: Registry, tiny: TinyModels, fits: Mapping[str, Fit] | None = None) -> None:
        self.registry, self.tiny, self.fits = registry, tiny, dict(fits or {})

    def drawable(self, port_type: str, depth: int = 0, version: str | None = None) -> bool:
        """Whether values of every member of ``port_type`` can be drawn (from the model set of ``version``; any
        set when None)."""
        versions = [version] if version else list(MODEL_SETS)
        return any(all(self._drawable_one(kind, depth, v) for kind in members(port_type)) for v in versions)

    def drawable_input(self, spec: InputSpec, version: str | None = None) -> bool:
        """Whether values of input ``spec`` can be drawn (a file input needs a tiny file of its kind)."""
        return bool(self._files(spec.port.file)) if spec.port.file else self.drawable(spec.port.type, 0, version)

    def undrawable(self, spec: OpSpec) -> list[str]:
        """The required inputs of ``spec`` no model set can feed all together: [] when one can (else the fewest
        any set leaves out)."""
        missing = [[s.name for s in spec.inputs if s.required and not self.drawable_input(s, version)]
                   for version in MODEL_SETS]
        return min(missing, key=len)

    def model_sets(self, spec: OpSpec, depth: int = 0) -> list[str]:
        """The versions whose model sets can feed every required input of ``spec``; only the default set when the
        op reads no model (its inputs are the same from any set)."""
        if not self.reads_models(spec, depth):
            return [DEFAULT_SET]
        return [version for version in MODEL_SETS if self._feeds(spec, depth, version)]

    def reads_models(self, spec: OpSpec, depth: int = 0) -> bool:
        """Whether an input of ``spec`` is a model handle or made by a producer from one."""
        return any(self._reads_models(s.port.type, depth) for s in spec.inputs)

    def _reads_models(self, port_type: str, depth: int) -> bool:
        """Whether a value of ``port_type`` is a model handle or made by a producer from one."""
        for kind in members(port_type):
            if kind in MODEL_TYPES:
                return True
            producers = [self.registry.get(name) for name, _ in PRODUCERS.get(kind, ())] if depth < DEPTH else []
            if any(spec is not None and self.reads_models(spec, depth + 1) for spec in producers):
                return True
        return False

    def _drawable_one(self, kind: str, depth: int, version: str) -> bool:
        if kind in MODEL_TYPES:
            return kind in MODEL_SETS[version].port_types
        if kind in DIRECT or kind in SCALARS:
            return True
        return depth < DEPTH and any(self._producer_ok(name, depth, version) for name, _ in PRODUCERS.get(kind, ()))

    def _producer_ok(self, name: str, depth: int, version: str) -> bool:
        spec = self.registry.get(name)
        return spec is not None and self._feeds(spec, depth + 1, version)

    def _feeds(self, spec: OpSpec, depth: int, version: str) -> bool:
        """Whether every required input of ``spec`` can be drawn ``depth`` producers deep from the set of
        ``version``."""
        return all(self.drawable_input(s, version) if s.port.file else self.drawable(s.port.type, depth, version)
                   for s in spec.inputs if s.required)

    def value(self, spec: InputSpec, depth: int = 0, version: str = DEFAULT_SET
              ) -> st.SearchStrategy[Any]:
        """Valid values of input ``spec`` (None too, for an optional input whose default is None), model handles
        and values made from them from the model set of ``version``."""
        port = spec.port
        if port.file is not None:
            drawn = st.sampled_from(self._files(port.file))
        elif set(members(port.type)) <= set(SCALARS):
            drawn = scalar(port, spec.default)
        else:
            kinds = sorted(k for k in members(port.type) if self._drawable_one(k, depth, version))
            drawn = st.one_of(*[self.of_type(kind, depth, version) for kind in kinds])
        return st.none() | drawn if spec.default is None else drawn

    def of_type(self, kind: str, depth: int = 0, version: str = DEFAULT_SET) -> st.SearchStrategy[Any]:
        if kind in DIRECT:
            return DIRECT[kind]()
        if kind in MODEL_TYPES:
            return st.just(kind).map(lambda port_type: self.tiny.handle(port_type, version))
        if kind in SCALARS:
            return scalar(Port(kind))
        producers = [p for p in PRODUCERS.get(kind, ()) if self._producer_ok(p[0], depth, version)]
        return st.sampled_from(producers).flatmap(lambda p: self._produced(*p, depth=depth, version=version))

    def _produced(self, name: str, port: str, depth: int, version: str) -> st.SearchStrategy[Any]:
        spec = self.registry.get(name)
        assert spec is not None
        index = [n for n, _ in spec.outputs].index(port)
        return self._inputs_from(spec, depth + 1, version).map(lambda kwargs: produce(spec, kwargs, self.tiny)[index])

    def inputs(self, spec: OpSpec, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
        """Keyword arguments for ``spec.fn`` (without the context), from one model set that can feed them all."""
        return st.sampled_from(self.model_sets(spec, depth)).flatmap(
            lambda version: self._inputs_from(spec, depth, version))

    def _inputs_from(self, spec: OpSpec, depth: int, version: str) -> st.SearchStrategy[dict[str, Any]]:
        drawn = st.fixed_dictionaries({s.name: self.value(s, depth, version) for s in spec.inputs})
        fit = self.fits.get(spec.name)
        return drawn if fit is None else drawn.flatmap(fit)

    def _files(self, kind: str) -> list[str]:
        if kind == "input":
            return self.tiny.input_files()
        return self.tiny.files(kind)


def call(spec: OpSpec, kwargs: dict[str, Any], tiny: TinyModels) -> Any:
    """Call the op as the engine does: a context (folders of the tiny set) for an op that declares one."""
    if spec.context_param:
        kwargs = {**kwargs, spec.context_param: tiny.context(spec.name)}
    return spec.fn(**kwargs)


def produce(spec: OpSpec, kwargs: dict[str, Any], tiny: TinyModels) -> tuple[Any, ...]:
    """The outputs of a producer op for drawn inputs; inputs it refuses are not drawn (hypothesis ``reject``)."""
    try:
        return outputs(spec, call(spec, kwargs, tiny))
    except InvalidInput:
        reject()


def outputs(spec: OpSpec, returned: Any) -> tuple[Any, ...]:
    """The op's output values by port (the files an output op wrote after them), checked against the declared
    types as the engine checks them."""
    return Executor._check_outputs(spec, returned)
