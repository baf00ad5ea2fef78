"""What a finished run amounts to, in a few words: its outputs described briefly (never dumped), the files it
wrote, its time and how many nodes ran or came from the cache. One dictionary serves the human summary and the
machine-readable one (``ltxgraph run --json``)."""
from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from . import values as V
from .errors import GraphFileError, LtxGraphError, ValidationError
from .executor import RunReport


def describe(value: Any) -> str:
    """A one-line description of a graph value: shapes, frames, sizes and durations, not contents."""
    if isinstance(value, V.Video):
        frames, height, width = value.images.shape[:3]
        audio = f", audio {value.audio.seconds:.2f} s" if value.audio is not None else ""
        return f"video {frames} frames {width}x{height} at {value.fps:g} fps{audio}"
    if isinstance(value, V.Audio):
        return f"audio {value.seconds:.2f} s at {value.sample_rate} Hz, {value.waveform.shape[-2]} channels"
    if isinstance(value, V.AVLatent):
        return f"{describe(value.video)} + {describe(value.audio)}"
    if isinstance(value, V.VideoLatent):
        return f"video latent {list(value.samples.shape)} ({value.frames} frames)"
    if isinstance(value, V.AudioLatent):
        return f"audio latent {list(value.samples.shape)} ({value.seconds:.2f} s)"
    if isinstance(value, V.SavedFile):
        return value.path
    if isinstance(value, torch.Tensor):
        return f"tensor {list(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, (bool, int, float)) or value is None:
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    return type(value).__name__


def run_summary(report: RunReport, outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """status, seconds, files written, outputs (name -> description), node counts by status, the cache
    hits (nodes served from the cache) and the compute dtype (dtype, requested, reason)."""
    statuses = Counter(node.status for node in report.nodes)
    return {
        "status": report.status,
        "seconds": round(report.seconds, 3),
        "files": list(report.files),
        "outputs": {name: describe(value) for name, value in (outputs or {}).items()},
        "nodes": dict(sorted(statuses.items())),
        "cache_hits": statuses.get("cached", 0),
        "compute_dtype": dict(report.compute_dtype),
        "error": report.error,
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The human form of :func:`run_summary`: outputs, files, then one line of time and node counts."""
    lines = [f"{name}: {text}" for name, text in summary["outputs"].items()]
    lines += [f"wrote {path}" for path in summary["files"]]
    nodes = summary["nodes"]
    counts = ", ".join(f"{nodes[s]} {s}" for s in ("executed", "cached", "unused") if nodes.get(s))
    dtype = summary.get("compute_dtype") or {}
    computed = f", computed in {dtype['dtype']} ({dtype['reason']})" if dtype else ""
    lines.append(f"{summary['status']} in {summary['seconds']:.1f}s ({counts or 'no nodes'}){computed}")
    return lines


def problems_of(error: LtxGraphError) -> list[dict[str, Any]]:
    """The problems a refused run was refused for: node, input, line and message each (None where unknown)."""
    if isinstance(error, ValidationError):
        return [{"node": p.node, "input": p.input, "line": p.line, "message": p.message} for p in error.problems]
    line = error.line if isinstance(error, GraphFileError) else None
    message = error.message if isinstance(error, GraphFileError) else str(error)
    return [{"node": None, "input": None, "line": line, "message": message}]


def refused_summary(error: LtxGraphError) -> dict[str, Any]:
    """:func:`run_summary`'s counterpart for a run that never started: status ``invalid`` (exit 2) or
    ``failed``, the error and its problems."""
    return {"status": "invalid" if error.exit_code == 2 else "failed", "error": str(error),
            "problems": problems_of(error)}


def refused_report(error: LtxGraphError, graph: str | None) -> dict[str, Any]:
    """The ``--report`` of a run that never started: a run report with no nodes, plus the problems."""
    summary = refused_summary(error)
    return {**RunReport(graph=graph, status=summary["status"], error=summary["error"]).to_json(),
            "problems": summary["problems"]}
