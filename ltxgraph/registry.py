"""Op declarations and the registry that collects them.

An op is a plain function whose signature is its contract (as in Hamilton): every parameter is annotated
``Annotated[python_type, Port("TYPE", ...constraints)]``; one parameter may be annotated ``OpContext`` to
receive the run context. ``@op(outputs={...})`` attaches the declaration to the function; nothing is
registered globally. A :class:`Registry` is built explicitly from modules, or discovered from the
``ltxgraph.ops`` entry-point group.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import inspect
import pkgutil
import typing
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, Callable, Iterable

from .context import OpContext
from .errors import InvalidInput
from .frames import Frames
from .input_checks import InputCheck, refuse
from .paths import Folders
from .types import is_scalar, members

ENTRY_POINT_GROUP = "ltxgraph.ops"
BUILTIN_OPS_PACKAGE = "ltxgraph_ops"


class _Missing:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Missing()


@dataclass(frozen=True)
class Port:
    """Type and constraints of an op input (the metadata inside ``Annotated``).

    file: the models/input folder kind a STRING names a file in ("checkpoints", "loras", "input", ...); the
    engine resolves it safely inside that folder and fingerprints the file for the cache.
    widget / control_after_generate / upload / optional describe the ComfyUI node's UI so workflows map 1:1;
    comfy_name is ComfyUI's name for the input where it is not an identifier (e.g. "resize_type.width").
    shown_when: (controlling input, its values) for a widget of a ComfyUI dynamic combo, present in a
    workflow's widgets_values only when the controlling input has one of those values.
    round_down: a value arriving through a connection that breaks multiple_of / 8n+1 is rounded down (as
    ComfyUI does) with a warning; a literal or parameter must satisfy the constraint.
    """

    type: str
    min: float | None = None
    max: float | None = None
    multiple_of: int | None = None
    eight_n_plus_one: bool = False
    choices: tuple[Any, ...] | None = None
    file: str | None = None
    multiline: bool = False
    widget: bool | None = None
    control_after_generate: bool = False
    upload: bool = False
    optional: bool = False
    comfy_name: str | None = None
    shown_when: tuple[str, tuple[str, ...]] | None = None
    round_down: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        members(self.type)  # fail at declaration time on unknown types

    @property
    def is_widget(self) -> bool:
        """Whether ComfyUI shows this input as a widget (scalars and choices) rather than a socket."""
        return self.widget if self.widget is not None else is_scalar(self.type)


@dataclass(frozen=True)
class InputSpec:
    """One input of an op. ``takes_frames``: the parameter's annotation names :class:`ltxgraph.frames.Frames`,
    so IMAGE values reach it as they travel (frames held as bytes or streamed); other inputs get float
    tensors."""

    name: str
    port: Port
    default: Any = REQUIRED
    takes_frames: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class OpSpec:
    """What the engine knows of an op: its name, typed inputs and outputs, version and the function."""

    name: str
    fn: Callable[..., Any]
    inputs: tuple[InputSpec, ...]
    outputs: tuple[tuple[str, str], ...]
    version: str
    category: str = ""
    description: str = ""
    output_node: bool = False
    context_param: str | None = None
    checks: tuple[InputCheck, ...] = ()
    exempt: dict[str, str] = field(default_factory=dict, compare=False)
    lazy_switch: tuple[str, str, str] | None = None
    identity_of: str | None = None
    input_by_name: dict[str, InputSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_by_name", {spec.name: spec for spec in self.inputs})

    def output_type(self, port: str) -> str | None:
        return dict(self.outputs).get(port)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (for ``ltxgraph ops --json``, schemas and the converter)."""

        def constraint_dict(port: Port) -> dict[str, Any]:
            keys = ("min", "max", "multiple_of", "choices", "file")
            out = {k: getattr(port, k) for k in keys if getattr(port, k) is not None}
            if port.eight_n_plus_one:
                out["eight_n_plus_one"] = True
            if "choices" in out:
                out["choices"] = list(out["choices"])
            return out

        return {
            "name": self.name,
            "version": self.version,
            "category": self.category,
            "description": self.description,
            "output_node": self.output_node,
            "inputs": [{"name": s.name, "type": s.port.type, "required": s.required,
                        **({} if s.required else {"default": s.default}),
                        "widget": s.port.is_widget, **constraint_dict(s.port)} for s in self.inputs],
            "outputs": [{"name": n, "type": t} for n, t in self.outputs],
        }


class OpPackageError(InvalidInput):
    """An op package named by the user (``--plugin``) or an entry point cannot be imported."""


class OpDeclarationError(TypeError):
    """An op's declaration is malformed (a programming error in an op package)."""


def op(name: str | None = None, *, outputs: dict[str, str] | None = None, version: str | int = 1,
       category: str = "", output_node: bool = False,
       checks: Iterable[InputCheck] = (), exempt: dict[str, str] | None = None,
       lazy_switch: tuple[str, str, str] | None = None, identity_of: str | None = None
       ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare ``fn`` as an op. Inputs come from its signature; outputs are ``{port_name: TYPE}`` in order.
    An output written ``"=name"`` has the type of the value connected to input ``name`` (a sampler returns
    the kind of latent it was given). ``checks``: :func:`~ltxgraph.input_checks.input_check` refusals of input
    values, run by validation on literals and before every call of the op (the returned function runs them).
    ``exempt``: contract laws the op does not keep, law -> reason (see :mod:`ltxgraph.testing.contracts`).
    ``lazy_switch``: (switch input, input taken when it is off, input taken when on), ComfyUI's lazy inputs: when
    the switch is a literal (or a parameter), the input not taken is disconnected before planning, so what only
    feeds it is neither run nor held to the whole-graph checks. ``identity_of``: the input the op returns unchanged
    (ComfyUI's primitive nodes), so a switch it feeds is known before the run."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = _read_signature(fn, name or fn.__name__, outputs or {}, str(version), category, output_node)
        spec = replace(spec, checks=_declared_checks(spec, tuple(checks)), exempt=dict(exempt or {}),
                       lazy_switch=_declared_switch(spec, lazy_switch), identity_of=identity_of)
        if identity_of is not None and identity_of not in spec.input_by_name:
            raise OpDeclarationError(f"op {spec.name}: identity_of names unknown input {identity_of!r}")
        if not spec.checks:
            fn.__ltxgraph_op__ = spec  # type: ignore[attr-defined]
            return fn
        checked = _checked_call(fn, spec)
        checked.__ltxgraph_op__ = replace(spec, fn=checked)  # type: ignore[attr-defined]
        return checked

    return decorate


def _declared_switch(spec: OpSpec, switch: tuple[str, str, str] | None) -> tuple[str, str, str] | None:
    unknown = [n for n in (switch or ()) if n not in spec.input_by_name]
    if unknown or (switch is not None and len(switch) != 3):
        raise OpDeclarationError(f"op {spec.name}: lazy_switch {switch!r} must name three inputs (unknown: {unknown})")
    return switch


def _declared_checks(spec: OpSpec, checks: tuple[InputCheck, ...]) -> tuple[InputCheck, ...]:
    for check in checks:
        if not isinstance(check, InputCheck):
            raise OpDeclarationError(f"op {spec.name}: check {check!r} is not declared with @input_check")
        unknown = [n for n in dict.fromkeys((check.input, *check.reads)) if n not in spec.input_by_name]
        if unknown:
            raise OpDeclarationError(f"op {spec.name}: check '{check.name}' reads unknown inputs {unknown}")
    return checks


def _checked_call(fn: Callable[..., Any], spec: OpSpec) -> Callable[..., Any]:
    """``fn`` preceded by ``spec``'s input checks on the values it is called with."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        context = bound.arguments.get(spec.context_param) if spec.context_param else None
        refuse(spec.checks, bound.arguments, context.folders if context is not None else Folders())
        return fn(*args, **kwargs)

    return checked


def _read_signature(fn: Callable[..., Any], name: str, outputs: dict[str, str], version: str, category: str,
                    output_node: bool) -> OpSpec:
    hints = typing.get_type_hints(fn, include_extras=True)
    inputs, context_param = [], None
    for param in inspect.signature(fn).parameters.values():
        hint = hints.get(param.name)
        if hint is OpContext:
            context_param = param.name
            continue
        ports = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Port)]
        if len(ports) != 1:
            raise OpDeclarationError(f"op {name}: parameter '{param.name}' needs Annotated[..., Port(...)]")
        default = REQUIRED if param.default is inspect.Parameter.empty else param.default
        inputs.append(InputSpec(param.name, ports[0], default, _names_frames(hint)))
    input_names = {spec.name for spec in inputs}
    for port_name, port_type in outputs.items():
        if port_type.startswith("="):
            if port_type[1:] not in input_names:
                raise OpDeclarationError(f"op {name}: output '{port_name}' follows unknown input '{port_type[1:]}'")
        elif len(members(port_type)) != 1:
            raise OpDeclarationError(f"op {name}: output '{port_name}' must have exactly one type")
    doc = inspect.getdoc(fn) or ""
    return OpSpec(name, fn, tuple(inputs), tuple(outputs.items()), version, category,
                  doc.split("\n\n")[0].replace("\n", " "), output_node, context_param)


def _names_frames(hint: Any) -> bool:
    """Whether an ``Annotated[python_type, ...]`` hint's python type is, or is a union holding, Frames."""
    python_type = typing.get_args(hint)[0] if getattr(hint, "__metadata__", None) else hint
    return any(isinstance(t, type) and issubclass(t, Frames) for t in (python_type, *typing.get_args(python_type)))


GraphFinding = tuple[str, "str | None", str]  # (node id, input name or None, message)


def graph_check(fn: Callable[..., Iterable[GraphFinding]]) -> Callable[..., Iterable[GraphFinding]]:
    """Declare ``fn(nodes)`` a whole-graph check of an op package, run by validation once every node resolved
    cleanly with its files found: ``nodes`` maps node id -> resolved node (``spec.name``, ``inputs``, ``files``
    (input name -> Path), ``upstream()``); it yields ``(node id, input name or None, message)`` per problem.
    For what no single node can see: e.g. model files of different model versions in one graph."""
    fn.__ltxgraph_graph_check__ = True  # type: ignore[attr-defined]
    return fn


def check_value(spec: InputSpec, value: Any, label: str | None = None) -> str | None:
    """The message for a scalar ``value`` that breaks ``spec``'s constraints, or None when it is fine.
    The message starts with ``label`` (default: "name value")."""
    port, label = spec.port, label or f"{spec.name} {value!r}"
    if port.choices is not None and value not in port.choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in port.choices], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        shown = ", ".join(map(str, port.choices[:12])) + (", ..." if len(port.choices) > 12 else "")
        return f"{label} is not one of: {shown}{hint}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value != value and (port.min is not None or port.max is not None):   # NaN compares false with any bound
        return f"{label} is not a number: give one {_range(port)}"
    if port.min is not None and value < port.min:
        return f"{label} is below the minimum {port.min:g}"
    if port.max is not None and value > port.max:
        return f"{label} is above the maximum {port.max:g}"
    if port.multiple_of and value % port.multiple_of:
        low = int(value // port.multiple_of * port.multiple_of)
        return f"{label} is not a multiple of {port.multiple_of}: use {low} or {low + port.multiple_of}"
    if port.eight_n_plus_one and (value - 1) % 8:
        low = int((value - 1) // 8 * 8 + 1)
        return f"{label} is not 8n+1: use {low} or {low + 8}"
    return None


def _range(port: Port) -> str:
    """"between 0 and 1", "at least 0" or "at most 5"."""
    if port.min is not None and port.max is not None:
        return f"between {port.min:g} and {port.max:g}"
    return f"at least {port.min:g}" if port.min is not None else f"at most {port.max:g}"


def round_down(spec: InputSpec, value: int) -> int:
    """The largest value <= ``value`` that satisfies ``spec``'s multiple_of and 8n+1 constraints."""
    port = spec.port
    if port.multiple_of:
        value = value // port.multiple_of * port.multiple_of
    if port.eight_n_plus_one:
        value = (value - 1) // 8 * 8 + 1
    return value


class Registry:
    """The ops available to a run, by name, and the value classes the disk cache may rebuild."""

    def __init__(self, specs: Iterable[OpSpec] = (), storable: Iterable[type] = ()) -> None:
        self._specs: dict[str, OpSpec] = {}
        self.storable: dict[str, type] = {}
        self.graph_checks: list[Callable[..., Iterable[GraphFinding]]] = []
        for spec in specs:
            self.add(spec)
        for cls in storable:
            self.storable[f"{cls.__module__}.{cls.__qualname__}"] = cls
        from . import frames, values
        self._collect_storable(values)
        self._collect_storable(frames)

    def add(self, spec: OpSpec) -> None:
        existing = self._specs.get(spec.name)
        if existing is not None and existing.fn is not spec.fn:
            raise OpDeclarationError(f"two ops are named {spec.name}: {_where(existing.fn)} and {_where(spec.fn)}")
        self._specs[spec.name] = spec

    def add_module(self, module: ModuleType, recursive: bool = True) -> None:
        """Collect every op function and storable class of ``module`` (and its submodules)."""
        modules = [module]
        if recursive and hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
                modules.append(importlib.import_module(info.name))
        for mod in modules:
            for obj in list(vars(mod).values()):
                spec = getattr(obj, "__ltxgraph_op__", None)
                if isinstance(spec, OpSpec) and getattr(obj, "__module__", None) == mod.__name__:
                    self.add(spec)
                elif (getattr(obj, "__ltxgraph_graph_check__", False) and obj.__module__ == mod.__name__
                      and obj not in self.graph_checks):
                    self.graph_checks.append(obj)
            self._collect_storable(mod)

    def _collect_storable(self, module: ModuleType) -> None:
        for obj in vars(module).values():
            if isinstance(obj, type) and obj.__dict__.get("__ltxgraph_storable__") and obj.__module__ == module.__name__:
                self.storable[f"{obj.__module__}.{obj.__qualname__}"] = obj

    @classmethod
    def from_modules(cls, *modules: ModuleType | str) -> "Registry":
        registry = cls()
        for module in modules:
            if isinstance(module, str):
                try:
                    module = importlib.import_module(module)
                except ImportError as exc:
                    raise OpPackageError(f"cannot import op package '{module}': {exc}") from exc
            registry.add_module(module)
        return registry

    @classmethod
    def discover(cls, extra_modules: Iterable[str] = ()) -> "Registry":
        """The built-in ops, every package in the ``ltxgraph.ops`` entry-point group, and ``extra_modules``."""
        names = [BUILTIN_OPS_PACKAGE]
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry.value not in names:
                names.append(entry.value)
        return cls.from_modules(*names, *extra_modules)

    def get(self, name: str) -> OpSpec | None:
        return self._specs.get(name)

    def suggest(self, name: str) -> str | None:
        close = difflib.get_close_matches(name, list(self._specs), n=1)
        return close[0] if close else None

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def __iter__(self):
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)


def _where(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
