"""What a ComfyUI client reads before queueing: /object_info (our ops as ComfyUI node classes), /system_stats,
/queue and /prompt; and the pure pieces behind the messages (node outputs) and the same-origin check."""
from __future__ import annotations

from pathlib import Path

from ltxgraph import Registry
from ltxgraph.server.app import ServerConfig, ThreadedServer
from ltxgraph.server.messages import node_output
from ltxgraph.server.object_info import comfy_type
from ltxgraph.server.safety import cross_site

from .conftest import http


def test_object_info_and_system_stats(config: ServerConfig) -> None:
    with ThreadedServer(config) as server:
        status, info = http("GET", f"{server.url}/object_info")
        assert status == 200 and set(info) == {spec.name for spec in Registry.discover()}
        latent = info["EmptyLTXVLatentVideo"]
        assert latent["input"]["required"]["length"] == ["INT", {"default": 97, "min": 1, "max": 16384, "step": 8}]
        assert latent["input_order"]["required"] == ["width", "height", "length", "batch_size"]
        assert latent["output"] == ["LATENT"] and latent["output_name"] == ["LATENT"]
        save = info["SaveVideo"]
        assert save["output_node"] is True and save["input"]["required"]["format"][0] == ["auto", "mp4"]
        checkpoints = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
        assert "ltx-2-19b-distilled-fp8.safetensors" in checkpoints               # the files of the models folder
        assert info["RandomNoise"]["input"]["required"]["noise_seed"][1]["control_after_generate"] is True
        one = http("GET", f"{server.url}/object_info/SaveVideo")[1]
        assert one == {"SaveVideo": save}
        assert http("GET", f"{server.url}/api/object_info/NoSuchNode") == (200, {})   # ComfyUI's /api prefix too

        status, stats = http("GET", f"{server.url}/system_stats")
        assert status == 200 and stats["devices"][0]["type"] == "cpu" and stats["system"]["ram_total"] > 0
        assert stats["system"]["comfyui_version"].startswith("ltxgraph")
        assert http("GET", f"{server.url}/prompt")[1] == {"exec_info": {"queue_remaining": 0}}
        assert "checkpoints" in http("GET", f"{server.url}/models")[1]
        assert "ltx-2-19b-distilled-fp8.safetensors" in http("GET", f"{server.url}/models/checkpoints")[1]
        assert http("GET", f"{server.url}/models/..")[0] == 404


def test_comfyui_type_names() -> None:
    assert comfy_type("VIDEO_LATENT|AV_LATENT") == "LATENT"
    assert comfy_type("AUDIO_VAE") == "VAE"
    assert comfy_type("IMAGE|MASK") == "IMAGE,MASK"


def test_node_output_lists_files_inside_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = [str(out / "a.png"), str(out / "clips" / "b.mp4"), str(out / "c.flac"), str(tmp_path / "elsewhere.png")]
    assert node_output(files, out) == {
        "images": [{"filename": "a.png", "subfolder": "", "type": "output"},
                   {"filename": "b.mp4", "subfolder": "clips", "type": "output"}],
        "animated": [False, True],
        "gifs": [{"filename": "b.mp4", "subfolder": "clips", "type": "output", "format": "video/h264-mp4"}],
        "audio": [{"filename": "c.flac", "subfolder": "", "type": "output"}],
    }


def test_cross_site_requests_to_a_local_server() -> None:
    assert cross_site("127.0.0.1:8188", "https://evil.example")
    assert cross_site("localhost:8188", "null")
    assert not cross_site("127.0.0.1:8188", "http://127.0.0.1:8188")
    assert not cross_site("127.0.0.1:8188", None)                      # scripts send no Origin
    assert not cross_site("render.example:8188", "https://ui.example")   # not a loopback server: not ours to judge


def test_a_failing_node_is_reported_and_the_worker_goes_on(config: ServerConfig) -> None:
    """On the engine tests' sample ops: a node failing at run time gives execution_error (node, type, message) and
    an error in the history; the next prompt still runs and its file is announced."""
    import asyncio

    import aiohttp

    from ltxgraph.server.app import make_runner

    from .conftest import finished, messages_until

    runner = make_runner(config, Registry.from_modules("tests.engine.sample_ops"))
    failing = {"7": {"class_type": "WriteText", "inputs": {"text": "hi", "filename_prefix": "../outside"}}}
    fine = {"7": {"class_type": "WriteText", "inputs": {"text": "hi", "filename_prefix": "notes/hello"}}}
    with ThreadedServer(config, runner) as server:
        async def session() -> tuple[list[str], list[dict]]:
            async with aiohttp.ClientSession() as client:
                async with client.ws_connect(f"{server.url}/ws?clientId=c") as ws:
                    ids = []
                    for prompt in (failing, fine):
                        async with client.post(f"{server.url}/prompt", json={"prompt": prompt, "client_id": "c"}) as r:
                            assert r.status == 200, await r.text()
                            ids.append((await r.json())["prompt_id"])
                    return ids, await messages_until(ws, finished(ids[1]))

        ids, seen = asyncio.run(session())
    error = next(m["data"] for m in seen if m["type"] == "execution_error")
    assert error["prompt_id"] == ids[0] and error["node_id"] == "7" and error["node_type"] == "WriteText"
    assert "outside" in error["exception_message"] and error["exception_type"] == "UnsafePath"
    executed = next(m["data"] for m in seen if m["type"] == "executed")
    assert executed["prompt_id"] == ids[1]
    assert executed["output"] == {"files": [{"filename": executed["output"]["files"][0]["filename"],
                                             "subfolder": "notes", "type": "output"}]}
    with ThreadedServer(config, runner) as server:
        history = http("GET", f"{server.url}/history")[1]
    assert [history[i]["status"]["status_str"] for i in ids] == ["error", "success"]


def test_queue_and_history_bodies_are_checked(config: ServerConfig) -> None:
    with ThreadedServer(config) as server:
        for route in ("/queue", "/history"):
            assert http("POST", server.url + route, {"delete": "abc"})[0] == 400
            assert http("POST", server.url + route, [1, 2])[0] == 400
            assert http("POST", server.url + route, {"clear": True, "delete": ["nothing"]})[0] == 200
