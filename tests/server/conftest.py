"""A server started by the test on a free port, on the tiny models, with its own folders, queue and cache; and
the prompt it runs: the shipped distilled text-to-video graph exported as a ComfyUI API-format prompt, shrunk
to 128 x 128 pixels and 9 frames."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiohttp")

from ltxgraph import Registry, load  # noqa: E402
from ltxgraph.comfyui import export_api  # noqa: E402
from ltxgraph.context import RunSettings  # noqa: E402
from ltxgraph.server.app import ServerConfig  # noqa: E402

from ..conftest import REPO  # noqa: E402

SHIPPED_GRAPH = REPO / "graphs" / "ltx2_t2v_distilled.yaml"
SMALL = {"width": 128, "height": 128, "length": 9}


@pytest.fixture(scope="session")
def t2v_prompt() -> dict[str, Any]:
    """The shipped graph as ComfyUI's API format (what ``ltxgraph export`` writes), at the smallest size."""
    registry = Registry.discover()
    return export_api(load(SHIPPED_GRAPH, registry).file, registry, SMALL)


@pytest.fixture
def config(tmp_path: Path, tiny_models: Path) -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0, models=(tiny_models,), input=tmp_path / "input",
                        output=tmp_path / "output", queue_db=tmp_path / "queue.sqlite", cache_dir=tmp_path / "cache",
                        settings=RunSettings(dtype="float32"))


def http(method: str, url: str, body: Any = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, parsed JSON body or the raw bytes) of one request, errors included (urllib, a real client)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, payload, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, payload, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    return status, json.loads(payload) if "json" in kind and payload else payload


async def messages_until(ws: Any, stop: Any, timeout: float = 300) -> list[dict[str, Any]]:
    """The websocket's JSON messages up to and including the first for which ``stop(message)`` holds."""
    received = []

    async def read() -> None:
        async for frame in ws:
            message = json.loads(frame.data)
            received.append(message)
            if stop(message):
                return
        raise AssertionError(f"websocket closed after {[m['type'] for m in received]}")

    await asyncio.wait_for(read(), timeout)
    return received


def finished(prompt_id: str):
    """ComfyUI's end of a prompt: ``executing`` with node null for it."""
    return lambda m: m["type"] == "executing" and m["data"]["node"] is None and m["data"]["prompt_id"] == prompt_id
