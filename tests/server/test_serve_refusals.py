"""What ``ltxgraph serve`` refuses, answered as ComfyUI answers it and never with a crash: invalid prompts (400
with ``error`` and ``node_errors``), malformed JSON (400), oversized bodies and uploads (413), files outside
their folders (traversal, absolute paths, symlinks out), and requests from pages of other sites (403)."""
from __future__ import annotations

import copy
import os
import urllib.parse
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from ltxgraph.server.app import ServerConfig, ThreadedServer
from ltxgraph.server.safety import Limits

from .conftest import http


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body with ``fields`` and one file field named "image"."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                 f"Content-Type: image/png\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture
def server(config: ServerConfig):
    with ThreadedServer(replace(config, limits=Limits(json_bytes=64 * 2**10, upload_bytes=2**20))) as running:
        yield running


def test_invalid_prompt_answered_with_node_errors(server: ThreadedServer, t2v_prompt: dict) -> None:
    bad = copy.deepcopy(t2v_prompt)
    bad["video_latent"]["inputs"]["length"] = 10                    # not 8n+1
    bad["ckpt"]["inputs"]["ckpt_name"] = "missing.safetensors"      # no such model file
    status, answer = http("POST", f"{server.url}/prompt", {"prompt": bad})
    assert status == 400
    assert answer["error"]["type"] == "prompt_outputs_failed_validation"
    assert answer["error"]["message"] == "Prompt outputs failed validation"
    assert set(answer["error"]) == {"type", "message", "details", "extra_info"}
    assert set(answer["node_errors"]) == {"video_latent", "ckpt"}
    latent = answer["node_errors"]["video_latent"]
    assert latent["class_type"] == "EmptyLTXVLatentVideo" and latent["dependent_outputs"] == ["save"]
    (error,) = latent["errors"]
    assert error["extra_info"]["input_name"] == "length" and "8n+1" in error["message"]
    assert "missing.safetensors" in answer["node_errors"]["ckpt"]["errors"][0]["message"]
    assert http("GET", f"{server.url}/queue")[1] == {"queue_running": [], "queue_pending": []}   # nothing queued


def test_unknown_node_types_and_prompts_without_outputs(server: ThreadedServer, t2v_prompt: dict) -> None:
    unknown = copy.deepcopy(t2v_prompt)
    unknown["extra"] = {"class_type": "VHS_LoadVideoFFmpeg", "inputs": {}}
    status, answer = http("POST", f"{server.url}/prompt", {"prompt": unknown})
    assert status == 400 and answer["error"]["type"] == "missing_node_type"
    assert answer["node_errors"]["extra"]["class_type"] == "VHS_LoadVideoFFmpeg"

    no_outputs = {k: v for k, v in t2v_prompt.items() if v["class_type"] != "SaveVideo"}
    status, answer = http("POST", f"{server.url}/prompt", {"prompt": no_outputs})
    assert status == 400 and answer["error"]["type"] == "prompt_no_outputs"

    status, answer = http("POST", f"{server.url}/prompt", {"client_id": "x"})
    assert status == 400 and answer["node_errors"] == {} and answer["error"]["type"] == "no_prompt"
    status, answer = http("POST", f"{server.url}/prompt", {"prompt": {"1": {"inputs": {}}}})
    assert status == 400 and answer["error"]["type"] == "invalid_prompt"

    status, answer = http("POST", f"{server.url}/prompt", {"prompt": t2v_prompt, "prompt_id": "mine"})
    assert status == 200 and answer["prompt_id"] == "mine"
    status, answer = http("POST", f"{server.url}/prompt", {"prompt": t2v_prompt, "prompt_id": "mine"})
    assert status == 400 and "already used" in answer["error"]["message"]


def test_malformed_json_and_oversized_bodies(server: ThreadedServer) -> None:
    for route in ("/prompt", "/queue", "/history"):
        status, answer = http("POST", server.url + route, raw=b'{"prompt": {')
        assert status == 400 and "not valid JSON" in answer["error"]
    status, answer = http("POST", f"{server.url}/prompt", raw=b'{"prompt": "' + b"x" * 70_000 + b'"}')
    assert status == 413 and "limit" in answer["error"]
    body, headers = multipart({}, "big.png", b"\0" * (2**20 + 10))
    status, _ = http("POST", f"{server.url}/upload/image", raw=body, headers=headers)
    assert status == 413
    assert http("GET", f"{server.url}/history?max_items=many")[0] == 400
    assert http("GET", f"{server.url}/queue")[0] == 200   # still serving


def test_view_and_upload_stay_inside_their_folders(server: ThreadedServer, config: ServerConfig,
                                                   tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not to be served")
    (config.output / "inner").mkdir(parents=True)
    (config.output / "inner" / "ok.txt").write_text("served")
    for folder in (config.output, config.input):
        os.symlink(tmp_path, folder / "escape")              # a symlink out of the folder
    (config.output / "link.txt").symlink_to(secret)

    def view(**query: str) -> int:
        return http("GET", f"{server.url}/view?{urllib.parse.urlencode(query)}")[0]

    assert http("GET", f"{server.url}/view?filename=ok.txt&subfolder=inner")[1] == b"served"
    assert view(filename="secret.txt", subfolder="..") == 403
    assert view(filename="secret.txt", subfolder="inner/../..") == 403
    assert view(filename="secret.txt", subfolder=str(tmp_path)) == 403
    assert view(filename="../secret.txt") == 400
    assert view(filename=str(secret)) == 400
    assert view(filename="secret.txt", subfolder="escape") == 403
    assert view(filename="link.txt") == 403
    assert view(filename="ok.txt", subfolder="inner", type="temp") == 400
    assert view(filename="nothing.png") == 404

    png = b"\x89PNG\r\n\x1a\n" + b"pixels"
    for fields, name in (({"subfolder": ".."}, "up.png"), ({"subfolder": "/tmp"}, "up.png"),
                         ({"subfolder": "escape"}, "up.png")):
        body, headers = multipart(fields, name, png)
        assert http("POST", f"{server.url}/upload/image", raw=body, headers=headers)[0] == 403
    assert not (tmp_path / "up.png").exists() and not Path("/tmp/up.png").exists()
    body, headers = multipart({"subfolder": "clips"}, "../../up.png", png)   # the name's folders are dropped
    status, answer = http("POST", f"{server.url}/upload/image", raw=body, headers=headers)
    assert status == 200 and answer == {"name": "up.png", "subfolder": "clips", "type": "input"}
    assert (config.input / "clips" / "up.png").read_bytes() == png
    assert http("GET", f"{server.url}/view?filename=up.png&subfolder=clips&type=input")[1] == png
    body, headers = multipart({"subfolder": "clips"}, "up.png", png + b"other")   # same name, other bytes
    assert http("POST", f"{server.url}/upload/image", raw=body, headers=headers)[1]["name"] == "up (1).png"


def test_pages_of_other_sites_are_refused(server: ThreadedServer, t2v_prompt: dict) -> None:
    port = server.url.rsplit(":", 1)[1]
    status, _ = http("POST", f"{server.url}/prompt", {"prompt": t2v_prompt},
                     headers={"Origin": "https://evil.example"})
    assert status == 403
    status, _ = http("GET", f"{server.url}/queue", headers={"Origin": f"http://127.0.0.1:{port}"})
    assert status == 200
