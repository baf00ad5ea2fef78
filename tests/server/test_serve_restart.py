"""The queue survives the server: a prompt interrupted (POST /interrupt) stops at its next sampling step, a
server stopped with prompts queued starts them when it comes back, and a prompt left running by a server that
died is in the history as failed, never lost."""
from __future__ import annotations

import asyncio
import uuid

import aiohttp

from ltxgraph.server.app import ServerConfig, ThreadedServer
import pytest

from ltxgraph.server import store as store_module
from ltxgraph.server.store import DIED_MESSAGE, PromptIdTaken, PromptStore, QueuedPrompt

from .conftest import finished, http, messages_until


def test_interrupt_then_restart_with_a_queued_prompt_that_completes(config: ServerConfig, t2v_prompt: dict) -> None:
    with ThreadedServer(config) as server:
        async def session() -> tuple[list[str], list[dict]]:
            async with aiohttp.ClientSession() as client:
                async with client.ws_connect(f"{server.url}/ws?clientId=c1") as ws:
                    ids = []
                    for _ in range(3):
                        async with client.post(f"{server.url}/prompt",
                                               json={"prompt": t2v_prompt, "client_id": "c1"}) as response:
                            ids.append((await response.json())["prompt_id"])
                    seen = await messages_until(ws, lambda m: m["type"] == "progress" and m["data"]["value"] == 2)
                    async with client.post(f"{server.url}/interrupt") as response:
                        assert response.status == 200
                    seen += await messages_until(ws, finished(ids[0]))
                    seen += await messages_until(ws, lambda m: m["type"] == "execution_start")
            return ids, seen

        ids, seen = asyncio.run(session())
        interrupted = [m for m in seen if m["type"] == "execution_interrupted"]
        assert len(interrupted) == 1 and interrupted[0]["data"]["prompt_id"] == ids[0]
        assert interrupted[0]["data"]["node_id"] == "stage1" and interrupted[0]["data"]["node_type"] == \
            "SamplerCustomAdvanced"
        steps = [m["data"]["value"] for m in seen if m["type"] == "progress" and m["data"]["prompt_id"] == ids[0]]
        assert steps[:2] == [1, 2] and len(steps) < 8                     # stopped between steps, not at the end
        running = http("GET", f"{server.url}/queue")[1]
        assert [item[1] for item in running["queue_running"]] == [ids[1]]
        assert [item[1] for item in running["queue_pending"]] == [ids[2]]
    # stopped: the running prompt was interrupted, the queued one stays queued

    with ThreadedServer(config) as server:   # the same queue file
        async def wait_for_last() -> list[dict]:
            async with aiohttp.ClientSession() as client:
                async with client.ws_connect(f"{server.url}/ws?clientId=c1") as ws:
                    history = http("GET", f"{server.url}/history/{ids[2]}")[1]
                    if history:                                       # finished before we connected
                        return []
                    return await messages_until(ws, finished(ids[2]))

        asyncio.run(wait_for_last())
        history = http("GET", f"{server.url}/history")[1]
        assert list(history) == ids
        assert [history[i]["status"]["status_str"] for i in ids] == ["error", "error", "success"]
        assert [history[i]["status"]["messages"][-1][0] for i in ids] == ["execution_interrupted"] * 2 + \
            ["execution_success"]
        assert history[ids[2]]["outputs"]["save"]["images"][0]["filename"].endswith(".mp4")
        assert http("GET", f"{server.url}/queue")[1] == {"queue_running": [], "queue_pending": []}


def test_a_prompt_running_when_the_server_died_is_marked_failed(tmp_path) -> None:
    store = PromptStore(tmp_path / "queue.sqlite")
    died, queued = str(uuid.uuid4()), str(uuid.uuid4())
    store.put(QueuedPrompt(0, died, {"1": {"class_type": "SaveVideo", "inputs": {}}}, {"client_id": "a"}, ["1"]))
    store.put(QueuedPrompt(1, queued, {"2": {"class_type": "SaveVideo", "inputs": {}}}, {}, ["2"]))
    assert store.claim(timeout=0).prompt_id == died    # the server runs it... and dies (no finish)
    store.close()

    reopened = PromptStore(tmp_path / "queue.sqlite")
    assert reopened.recover() == [died]
    entry = reopened.history(prompt_id=died)[died]
    assert entry["prompt"] == [0, died, {"1": {"class_type": "SaveVideo", "inputs": {}}}, {"client_id": "a"}, ["1"]]
    assert entry["status"]["status_str"] == "error" and not entry["status"]["completed"]
    assert entry["status"]["messages"][0][1]["exception_message"] == DIED_MESSAGE
    running, pending = reopened.queue()
    assert running == [] and [p.prompt_id for p in pending] == [queued]   # the queued one is still queued
    assert reopened.recover() == []


def test_queue_order_delete_and_clear(tmp_path) -> None:
    store = PromptStore(tmp_path / "queue.sqlite")
    for number, name in ((2, "b"), (1, "a"), (-3, "front"), (2, "c")):
        store.put(QueuedPrompt(number, name, {}, {}, []))
    assert [p.prompt_id for p in store.queue()[1]] == ["front", "a", "b", "c"]
    assert store.next_number() == 3
    assert store.delete_pending(["a", "unknown"]) == 1
    assert store.claim(timeout=0).prompt_id == "front"
    assert store.delete_pending(None) == 2 and store.remaining() == 1   # the running one stays
    store.finish("front", "success", {"outputs": {}, "status": {}, "meta": {}})
    assert list(store.history()) == ["front"] and store.remaining() == 0
    with pytest.raises(PromptIdTaken):
        store.put(QueuedPrompt(0, "front", {}, {}, []))   # an id in the history is not reused
    store.delete_history(None)
    assert store.history() == {}


def test_history_keeps_the_newest(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "MAX_HISTORY", 3)
    store = PromptStore(tmp_path / "queue.sqlite")
    for index in range(5):
        store.put(QueuedPrompt(index, f"p{index}", {}, {}, []))
        store.finish(store.claim(timeout=0).prompt_id, "success", {"outputs": {}, "status": {}, "meta": {}})
    assert list(store.history()) == ["p2", "p3", "p4"]
