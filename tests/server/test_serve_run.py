"""A ComfyUI client's session against ``ltxgraph serve``: a real websocket client and real HTTP requests against
a server the test starts on a free port; the shipped text-to-video graph, exported to ComfyUI's API format, runs
on the tiny models."""
from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import aiohttp

from ltxgraph.server.app import ServerConfig, ThreadedServer

from .conftest import finished, http, messages_until

ORDER = ("execution_start", "execution_cached", "executing", "execution_success")


def check_comfyui_order(messages: list[dict], prompt_id: str) -> None:
    """ComfyUI's order: start, cached, then executing per node with progress and executed inside the node that
    sent them (a cached output node's executed comes with no executing, as ComfyUI resends cached outputs),
    success, and a last executing with node null."""
    mine = [m for m in messages if m["data"].get("prompt_id") == prompt_id]
    kinds = [m["type"] for m in mine]
    assert kinds[:2] == ["execution_start", "execution_cached"]
    assert kinds[-2:] == ["execution_success", "executing"] and mine[-1]["data"]["node"] is None
    cached = set(mine[1]["data"]["nodes"])
    current = None
    for message in mine[2:-2]:
        if message["type"] == "executing":
            current = message["data"]["node"]
            assert current not in cached
        else:
            assert message["type"] in ("progress", "executed"), message
            node = message["data"]["node"]
            assert node == current or (message["type"] == "executed" and node in cached), \
                "progress and executed belong to the executing node"


def cached_nodes(messages: list[dict]) -> set[str]:
    return set(next(m for m in messages if m["type"] == "execution_cached")["data"]["nodes"])


def test_prompt_runs_with_comfyui_messages_and_the_mp4_is_served(config: ServerConfig, t2v_prompt: dict) -> None:
    reseeded = copy.deepcopy(t2v_prompt)
    reseeded["noise"]["inputs"]["noise_seed"] = 7
    with ThreadedServer(config) as server:
        async def session() -> list[tuple[dict, list[dict]]]:
            runs = []
            async with aiohttp.ClientSession() as client:
                async with client.ws_connect(f"{server.url}/ws?clientId=tester") as ws:
                    for prompt in (t2v_prompt, reseeded, reseeded):
                        async with client.post(f"{server.url}/prompt",
                                               json={"prompt": prompt, "client_id": "tester"}) as response:
                            assert response.status == 200
                            answer = await response.json()
                        runs.append((answer, await messages_until(ws, finished(answer["prompt_id"]))))
            return runs

        (answer, first), (_, second), (_, third) = asyncio.run(session())
        prompt_id = answer["prompt_id"]
        assert answer["node_errors"] == {} and answer["number"] == 0
        assert first[0] == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}},
                                                        "sid": "tester"}}
        check_comfyui_order(first, prompt_id)
        executing = [m["data"]["node"] for m in first if m["type"] == "executing"]
        assert {"ckpt", "stage1", "stage2", "save"} <= set(executing)
        steps = [(m["data"]["value"], m["data"]["max"]) for m in first
                 if m["type"] == "progress" and m["data"]["node"] == "stage1"]
        assert steps == [(k, 8) for k in range(1, 9)]   # the distilled schedule's 8 steps, one message each
        executed = [m["data"] for m in first if m["type"] == "executed"]
        assert [e["node"] for e in executed] == ["save"]
        video = executed[0]["output"]["images"][0]
        assert video["type"] == "output" and video["filename"].endswith(".mp4") and video["subfolder"] == "ltx2"
        assert executed[0]["output"]["animated"] == [True]
        assert executed[0]["output"]["gifs"][0]["format"] == "video/h264-mp4"

        # another seed: the models loaded for the first prompt are still in memory (nothing reloaded)
        check_comfyui_order(second, second[-1]["data"]["prompt_id"])
        cached = cached_nodes(second)
        assert {"ckpt", "text_encoder", "audio_vae", "upscaler", "prompt"} <= cached
        ran = {m["data"]["node"] for m in second if m["type"] == "executing"} - {None}
        assert {"noise", "stage1", "stage2", "save"} <= ran and not ran & cached
        # the same prompt again: every node served from the caches, the saved file announced again
        check_comfyui_order(third, third[-1]["data"]["prompt_id"])
        assert {"stage1", "stage2", "save"} <= cached_nodes(third)
        assert not [m for m in third if m["type"] == "executing" and m["data"]["node"] is not None]
        assert [m["data"]["node"] for m in third if m["type"] == "executed"] == ["save"]

        status, history = http("GET", f"{server.url}/history/{prompt_id}")
        entry = history[prompt_id]
        assert status == 200 and entry["status"]["status_str"] == "success" and entry["status"]["completed"]
        assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached",
                                                                "execution_success"]
        assert entry["prompt"][:2] == [0, prompt_id] and entry["prompt"][4] == ["save"]
        assert entry["outputs"]["save"]["images"] == [video]
        status, listed = http("GET", f"{server.url}/history?max_items=1")
        assert status == 200 and list(listed) == [third[-1]["data"]["prompt_id"]]

        status, body = http("GET", f"{server.url}/view?filename={video['filename']}&subfolder=ltx2&type=output")
        on_disk = Path(config.output) / "ltx2" / video["filename"]
        assert status == 200 and body == on_disk.read_bytes() and body[4:8] == b"ftyp"   # an MP4, whole
        assert http("GET", f"{server.url}/queue")[1] == {"queue_running": [], "queue_pending": []}
