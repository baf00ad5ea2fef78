"""A ComfyUI API-format prompt checked as ComfyUI's ``POST /prompt`` checks it, answered in its shapes.

An accepted prompt becomes a graph (the converter of :mod:`ltxgraph.comfyui`, node ids kept) validated with the
server's runner, so a prompt that is queued runs. A refused one raises :class:`PromptRejected` carrying
ComfyUI's two fields: ``error`` {type, message, details, extra_info} and ``node_errors`` {node_id: {errors,
dependent_outputs, class_type}}; each error is {type, message, details, extra_info: {input_name}}. Error types
are ComfyUI's where the case is ComfyUI's (missing_node_type, prompt_no_outputs, invalid_prompt,
prompt_outputs_failed_validation); an input ltxgraph refuses is "invalid_input", a node-level finding
"invalid_node".
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

from ..api import Graph, Runner
from ..comfyui import load_workflow
from ..comfyui.convert import ALIASES, comfy_input_names
from ..comfyui.splice import DISPLAY_ONLY, LAZY_SWITCHES, PASS_THROUGH
from ..errors import InvalidInput, Problem, ValidationError
from ..loader import SourceDoc
from ..registry import Registry

PLUMBING = PASS_THROUGH | DISPLAY_ONLY | set(LAZY_SWITCHES)


class PromptRejected(Exception):
    """A prompt refused before it is queued: ``error`` and ``node_errors`` as ComfyUI answers them (HTTP 400)."""

    def __init__(self, error: dict[str, Any], node_errors: dict[str, Any] | None = None) -> None:
        super().__init__(error["message"])
        self.error, self.node_errors = error, node_errors or {}

    def answer(self) -> dict[str, Any]:
        return {"error": self.error, "node_errors": self.node_errors}


@dataclass
class AcceptedPrompt:
    graph: Graph
    outputs_to_execute: list[str]


def error_entry(kind: str, message: str, details: str = "", **extra_info: Any) -> dict[str, Any]:
    """One ComfyUI error object."""
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


def prompt_graph(prompt: Any, registry: Registry) -> tuple[Graph, list[str]]:
    """``prompt`` converted to a graph (node ids kept) and its output node ids; raises :class:`PromptRejected`
    for a prompt that is no ComfyUI API-format prompt of known node types with an output node."""
    if not isinstance(prompt, dict) or not prompt:
        raise PromptRejected(error_entry("invalid_prompt", "the prompt must be a non-empty JSON object of nodes",
                                         f"got {type(prompt).__name__}"))
    _check_node_types(prompt, registry)
    outputs = _output_nodes(prompt, registry)
    if not outputs:
        raise PromptRejected(error_entry("prompt_no_outputs", "Prompt has no outputs",
                                         "no node of the prompt is an output node (SaveVideo, SaveImage, ...)"))
    with _answered_as_comfyui(prompt, registry, outputs):
        return load_workflow(SourceDoc(prompt, {}, None, None), "comfyui-api", registry), outputs


def check_prompt(prompt: Any, runner: Runner) -> AcceptedPrompt:
    """``prompt`` converted and validated with ``runner`` (its models, folders and settings); raises
    :class:`PromptRejected` in ComfyUI's shapes."""
    assert runner.registry is not None
    graph, outputs = prompt_graph(prompt, runner.registry)
    with _answered_as_comfyui(prompt, runner.registry, outputs):
        runner.validate(graph, {})
    return AcceptedPrompt(graph, outputs)


@contextlib.contextmanager
def _answered_as_comfyui(prompt: dict[str, Any], registry: Registry, outputs: list[str]) -> Iterator[None]:
    """Validation problems -> prompt_outputs_failed_validation with node_errors; other refusals ->
    invalid_prompt."""
    try:
        yield
    except ValidationError as exc:
        raise PromptRejected(*_validation_answer(exc.problems, prompt, registry, outputs)) from None
    except InvalidInput as exc:
        raise PromptRejected(error_entry("invalid_prompt", "Cannot execute the prompt", str(exc))) from None


def _check_node_types(prompt: dict[str, Any], registry: Registry) -> None:
    node_errors = {}
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise PromptRejected(error_entry("invalid_prompt", f"Cannot execute because node {node_id} has no "
                                             "class_type", f"Node ID '#{node_id}'", node_id=str(node_id)))
        class_type = node["class_type"]
        if class_type in PLUMBING or registry.get(ALIASES.get(class_type, class_type)) is not None:
            continue
        close = registry.suggest(class_type)
        hint = f" (did you mean '{close}'?)" if close else ""
        entry = error_entry("missing_node_type", f"Node '{class_type}' not found: ltxgraph has no op of this "
                            f"name{hint}", f"Node ID '#{node_id}'", node_id=str(node_id), class_type=class_type)
        node_errors[str(node_id)] = {"errors": [entry], "dependent_outputs": [], "class_type": class_type}
    if node_errors:
        first = next(iter(node_errors.values()))["errors"][0]
        raise PromptRejected(first, node_errors)


def _output_nodes(prompt: dict[str, Any], registry: Registry) -> list[str]:
    found = []
    for node_id, node in prompt.items():
        spec = registry.get(ALIASES.get(node["class_type"], node["class_type"]))
        if spec is not None and spec.output_node:
            found.append(str(node_id))
    return found


def _validation_answer(problems: list[Problem], prompt: dict[str, Any], registry: Registry,
                       outputs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    node_errors: dict[str, Any] = {}
    loose = []
    for problem in problems:
        if problem.node is None or str(problem.node) not in prompt:
            loose.append(problem.message)
            continue
        node_id = str(problem.node)
        class_type = prompt[node_id]["class_type"]
        entry = node_errors.setdefault(node_id, {"errors": [], "dependent_outputs": [], "class_type": class_type})
        if problem.input:
            spec = registry.get(ALIASES.get(class_type, class_type))
            names = {ours: comfy for comfy, ours in comfy_input_names(spec).items()} if spec else {}
            name = names.get(problem.input, problem.input)
            entry["errors"].append(error_entry("invalid_input", problem.message, f"{name}: {problem.message}",
                                               input_name=name))
        else:
            entry["errors"].append(error_entry("invalid_node", problem.message, problem.message))
    downstream = _dependent_outputs(prompt, outputs)
    for node_id, entry in node_errors.items():
        entry["dependent_outputs"] = downstream.get(node_id, [])
    details = [f"{e['message']}: {e['details']}" for n in node_errors.values() for e in n["errors"]] + loose
    return error_entry("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                       "\n".join(details)), node_errors


def _dependent_outputs(prompt: dict[str, Any], outputs: list[str]) -> dict[str, list[str]]:
    """node id -> the output nodes that read from it (itself included when it is one)."""
    dependents: dict[str, list[str]] = {}
    for output in outputs:
        seen, stack = set(), [output]
        while stack:
            node_id = stack.pop()
            if node_id in seen or node_id not in prompt:
                continue
            seen.add(node_id)
            dependents.setdefault(node_id, []).append(output)
            inputs = prompt[node_id].get("inputs", {})
            stack += [str(v[0]) for v in inputs.values() if isinstance(v, list) and len(v) == 2] \
                if isinstance(inputs, dict) else []
    return dependents
