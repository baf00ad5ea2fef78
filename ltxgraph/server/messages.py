"""A run's progress events told as ComfyUI's websocket messages, and its files as ComfyUI's node outputs.

Per prompt, in ComfyUI's order: ``execution_start``, ``execution_cached`` (nodes served from the caches),
then per executed node ``executing`` {node}, ``progress`` {value, max} per sampling step, ``executed``
{node, output} for nodes that wrote files; then ``execution_success`` (or ``execution_error`` /
``execution_interrupted``) and a last ``executing`` with node null. A stop request (POST /interrupt) is honoured
at the next node start or sampling step: the watcher raises KeyboardInterrupt there, which the executor turns
into an interrupted run.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..events import ProgressEvent

Send = Callable[[str, dict[str, Any], "str | None"], None]   # (message type, data, client id; None = everyone)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".exr"}
VIDEO_FORMATS = {".mp4": "video/h264-mp4", ".webm": "video/webm", ".gif": "image/gif", ".mov": "video/quicktime"}
AUDIO_SUFFIXES = {".flac", ".wav", ".mp3", ".opus", ".ogg", ".m4a"}
# messages a prompt's history keeps (ComfyUI's status.messages)
HISTORY_MESSAGES = ("execution_start", "execution_cached", "execution_success", "execution_error",
                    "execution_interrupted")


def now_ms() -> int:
    return int(time.time() * 1000)


def node_output(paths: list[str], output_folder: Path) -> dict[str, Any]:
    """ComfyUI's ``output`` of a node that wrote ``paths``: "images" (stills and, as ComfyUI's SaveVideo
    reports them, videos with "animated"), "gifs" (videos, as VideoHelperSuite reports them), "audio" and, for
    any other file, "files": entries of {filename, subfolder, type: "output"}."""
    root = output_folder.resolve()
    images: list[dict[str, Any]] = []
    gifs: list[dict[str, Any]] = []
    audio: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    animated: list[bool] = []
    for path_text in paths:
        path = Path(path_text).resolve()
        if not path.is_relative_to(root):
            continue   # only files /view can serve are announced
        relative = path.relative_to(root)
        entry = {"filename": relative.name, "subfolder": relative.parent.as_posix().strip("."), "type": "output"}
        suffix = path.suffix.lower()
        if suffix in VIDEO_FORMATS:
            images.append(entry)
            animated.append(True)
            gifs.append({**entry, "format": VIDEO_FORMATS[suffix]})
        elif suffix in AUDIO_SUFFIXES:
            audio.append(entry)
        elif suffix in IMAGE_SUFFIXES:
            images.append(entry)
            animated.append(False)
        else:
            files.append(entry)
    output: dict[str, Any] = {}
    if images:
        output["images"] = images
        if any(animated):
            output["animated"] = animated
    if gifs:
        output["gifs"] = gifs
    if audio:
        output["audio"] = audio
    if files:
        output["files"] = files
    return output


@dataclass
class PromptWatch:
    """The progress watcher of one prompt: sends its messages to ``client_id`` and keeps what its history
    needs (outputs by node, the status messages, the nodes executed)."""

    prompt_id: str
    client_id: str | None
    send: Send
    output_folder: Path
    stop: threading.Event
    cached: set[str] = field(default_factory=set)
    outputs: dict[str, Any] = field(default_factory=dict)
    messages: list[list[Any]] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    current: str | None = None

    def tell(self, kind: str, data: dict[str, Any]) -> None:
        """Send one message about this prompt (``prompt_id`` added); status messages go to the history too."""
        data = {**data, "prompt_id": self.prompt_id}
        if kind in HISTORY_MESSAGES:
            self.messages.append([kind, data])
        self.send(kind, data, self.client_id)

    def started(self) -> None:
        self.tell("execution_start", {"timestamp": now_ms()})

    def served_from_cache(self, cached: set[str]) -> None:
        """Announce the nodes whose results the caches hold (no ``executing`` is sent for them)."""
        self.cached = cached
        self.tell("execution_cached", {"nodes": sorted(cached), "timestamp": now_ms()})

    def __call__(self, event: ProgressEvent) -> None:
        if self.stop.is_set() and (event.kind == "node_started" or (event.kind == "step" and event.unit == "step")):
            raise KeyboardInterrupt   # the executor reports the run as interrupted
        node = event.node
        if event.kind == "node_started" and node is not None:
            self.current = node
            if node not in self.cached:
                self.tell("executing", {"node": node, "display_node": node})
        elif event.kind == "step" and event.unit == "step" and node is not None:
            self.tell("progress", {"value": event.step, "max": event.total, "node": node})
        elif event.kind == "node_finished" and event.report is not None and node is not None:
            if event.report.status == "executed":
                self.executed.append(node)
            output = node_output(event.report.files, self.output_folder)
            if output:
                self.outputs[node] = output
                self.tell("executed", {"node": node, "display_node": node, "output": output})

    def succeeded(self) -> None:
        self.tell("execution_success", {"timestamp": now_ms()})

    def failed(self, node_id: str | None, node_type: str | None, error: BaseException,
               traceback_lines: list[str]) -> None:
        self.tell("execution_error", {"node_id": node_id, "node_type": node_type, "executed": self.executed,
                                      "exception_message": str(error), "exception_type": type(error).__name__,
                                      "traceback": traceback_lines, "current_inputs": {}, "current_outputs": {},
                                      "timestamp": now_ms()})

    def interrupted(self, node_type: str | None) -> None:
        self.tell("execution_interrupted", {"node_id": self.current, "node_type": node_type,
                                            "executed": self.executed, "timestamp": now_ms()})

    def done(self) -> None:
        """The last message of a prompt: ``executing`` with node null."""
        self.tell("executing", {"node": None})

    def history(self, status: str) -> dict[str, Any]:
        """ComfyUI's history fields of this prompt (outputs, status, meta)."""
        meta = {node: {"node_id": node, "display_node": node, "parent_node": None, "real_node_id": node}
                for node in self.outputs}
        return {"outputs": self.outputs, "meta": meta,
                "status": {"status_str": "success" if status == "success" else "error",
                           "completed": status == "success", "messages": self.messages}}
