"""The HTTP and websocket routes of ``ltxgraph serve``, as ComfyUI's server answers them (every route also under
``/api``, as ComfyUI registers them), and :class:`Server`, which starts them with the worker.

aiohttp is ComfyUI's own server library: clients see the same websocket framing (JSON text messages
{"type", "data"}), the same multipart parsing and the same status codes.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import WSMsgType, web

from ..api import DEFAULT_MEMORY_BYTES, Runner
from ..context import RunSettings
from ..defaults import default_models
from ..paths import MODEL_FOLDERS, Folders
from ..registry import Registry
from ..wording import CLI_NAMES
from .object_info import files_of, object_info
from .stats import system_stats
from .prompts import PromptRejected, check_prompt, error_entry
from .safety import Limits, RequestRefused, confined, cross_site, parse_json
from .store import PromptIdTaken, PromptStore, QueuedPrompt
from .worker import Worker

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UPLOAD_TYPES = ("input", "output")


@dataclass
class ServerConfig:
    """host/port: where to listen (port 0: any free port). models: models folders (none: the embedded default
    models). input/output: the folders /upload writes and /view reads (outputs are written there). queue_db: the
    SQLite file of the queue and history. cache_dir: the results cache (None: the CLI's default)."""

    host: str = "127.0.0.1"
    port: int = 8188
    models: tuple[Path, ...] = ()
    input: Path = field(default_factory=lambda: Path("input"))
    output: Path = field(default_factory=lambda: Path("output"))
    queue_db: Path | None = None
    cache_dir: Path | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    limits: Limits = field(default_factory=Limits)
    memory_bytes: int = DEFAULT_MEMORY_BYTES


def make_runner(config: ServerConfig, registry: Registry | None = None) -> Runner:
    """The worker's runner: its memory cache keeps models between prompts; without models folders the embedded
    default models are provided once, now, so every later check and run sees the same folders."""
    folders = Folders(config.models, config.input, config.output, False, CLI_NAMES)
    runner = Runner(registry, cache_dir=config.cache_dir, folders=folders, memory_bytes=config.memory_bytes,
                    settings=config.settings)
    if not folders.models:
        found, _ = default_models(Path(runner.cache_dir))   # type: ignore[arg-type]
        runner.folders = replace(folders, models=tuple(found))
    runner.compute_dtype()   # decided once, before the first prompt
    return runner


class Server:
    """The aiohttp application, the websocket clients, the store and the worker of one server."""

    def __init__(self, config: ServerConfig, runner: Runner | None = None) -> None:
        self.config = config
        self.runner = runner or make_runner(config)
        db = config.queue_db or Path(self.runner.cache_dir) / "server" / "queue.sqlite"   # type: ignore[arg-type]
        self.store = PromptStore(db)
        self.recovered = self.store.recover()
        self.worker = Worker(self.store, self.runner, self.send)
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.outbox: asyncio.Queue[tuple[str, dict[str, Any], str | None]] | None = None
        self._site_runner: web.AppRunner | None = None
        self._sender: asyncio.Task | None = None
        self.url = ""
        for folder in (config.input, config.output):
            folder.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.outbox = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_loop())
        app = web.Application(client_max_size=self.config.limits.upload_bytes,
                              middlewares=[self._refusals, self._same_origin])
        routes = self._routes()
        app.add_routes(routes + [web.route(r.method, "/api" + r.path, r.handler) for r in routes])
        self._site_runner = web.AppRunner(app, access_log=None)
        await self._site_runner.setup()
        site = web.TCPSite(self._site_runner, self.config.host, self.config.port)
        await site.start()
        host, port = self._site_runner.addresses[0][:2]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        self.worker.start()

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.worker.close)
        for ws in list(self.sockets.values()):
            await ws.close()
        if self._sender is not None:
            self._sender.cancel()
        if self._site_runner is not None:
            await self._site_runner.cleanup()
        self.store.close()

    # ---------------------------------------------------------------- websocket

    def send(self, kind: str, data: dict[str, Any], client_id: str | None) -> None:
        """Queue a message for ``client_id`` (None: every client); callable from any thread."""
        if self.loop is None or self.outbox is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, (kind, data, client_id))

    async def _send_loop(self) -> None:
        assert self.outbox is not None
        while True:
            kind, data, client_id = await self.outbox.get()
            text = json.dumps({"type": kind, "data": data}, default=str)
            targets = list(self.sockets.values()) if client_id is None else \
                [ws for ws in [self.sockets.get(client_id)] if ws is not None]
            for ws in targets:
                try:
                    await ws.send_str(text)
                except (ConnectionError, RuntimeError):
                    pass   # a client gone mid-send is dropped when its handler ends

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        old = self.sockets.pop(client_id, None)
        if old is not None:
            await old.close()
        self.sockets[client_id] = ws
        try:
            await ws.send_str(json.dumps({"type": "status", "data": {"status": self.worker.status(),
                                                                       "sid": client_id}}))
            watch = self.worker.watch
            if watch is not None and watch.client_id == client_id and watch.current is not None:
                await ws.send_str(json.dumps({"type": "executing", "data": {
                    "node": watch.current, "display_node": watch.current, "prompt_id": watch.prompt_id}}))
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            if self.sockets.get(client_id) is ws:
                del self.sockets[client_id]
        return ws

    # ---------------------------------------------------------------- middlewares

    @web.middleware
    async def _refusals(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """RequestRefused and oversized bodies answered as JSON {"error": message}; nothing else leaks."""
        try:
            return await handler(request)
        except RequestRefused as exc:
            return web.json_response({"error": exc.message}, status=exc.status)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"request body over the limit of "
                                               f"{self.config.limits.upload_bytes} bytes"}, status=413)

    @web.middleware
    async def _same_origin(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if cross_site(request.headers.get("Host"), request.headers.get("Origin")):
            return web.json_response({"error": "refused: a page of another origin may not use this server"},
                                     status=403)
        return await handler(request)

    # ---------------------------------------------------------------- routes

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.get("/ws", self.websocket),
            web.post("/prompt", self.post_prompt),
            web.get("/prompt", self.get_prompt),
            web.get("/queue", self.get_queue),
            web.post("/queue", self.post_queue),
            web.post("/interrupt", self.post_interrupt),
            web.get("/history", self.get_history),
            web.get("/history/{prompt_id}", self.get_history_item),
            web.post("/history", self.post_history),
            web.get("/view", self.view),
            web.post("/upload/image", self.upload_image),
            web.get("/object_info", self.get_object_info),
            web.get("/object_info/{node_class}", self.get_object_info),
            web.get("/system_stats", self.system_stats),
            web.get("/models", self.get_model_folders),
            web.get("/models/{folder}", self.get_models),
            web.get("/embeddings", self.get_embeddings),
        ]

    async def _json_body(self, request: web.Request) -> Any:
        limit = self.config.limits.json_bytes
        if request.content_length is not None and request.content_length > limit:
            raise RequestRefused(413, f"request body of {request.content_length} bytes is over the limit of "
                                      f"{limit} bytes")
        body = await request.content.read(limit + 1)
        return parse_json(body, limit)

    async def post_prompt(self, request: web.Request) -> web.Response:
        data = await self._json_body(request)
        if not isinstance(data, dict) or "prompt" not in data:
            return web.json_response({"error": {"type": "no_prompt", "message": "No prompt provided",
                                                 "details": "the body must be a JSON object with a 'prompt'",
                                                 "extra_info": {}}, "node_errors": {}}, status=400)
        extra_data = data.get("extra_data") if isinstance(data.get("extra_data"), dict) else {}
        if isinstance(data.get("client_id"), str):
            extra_data = {**extra_data, "client_id": data["client_id"]}
        try:
            accepted = await asyncio.get_running_loop().run_in_executor(None, check_prompt, data["prompt"],
                                                                        self.runner)
        except PromptRejected as exc:
            return web.json_response(exc.answer(), status=400)
        number = _number(data, self.store.next_number())
        prompt_id = str(data["prompt_id"]) if isinstance(data.get("prompt_id"), str) else str(uuid.uuid4())
        try:
            self.store.put(QueuedPrompt(number, prompt_id, data["prompt"], extra_data, accepted.outputs_to_execute))
        except PromptIdTaken as exc:
            return web.json_response(PromptRejected(error_entry("invalid_prompt", str(exc))).answer(), status=400)
        self.send("status", {"status": self.worker.status()}, None)
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": {}})

    async def get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self.worker.status())

    async def get_queue(self, request: web.Request) -> web.Response:
        running, pending = self.store.queue()
        return web.json_response({"queue_running": [p.as_list() for p in running],
                                  "queue_pending": [p.as_list() for p in pending]})

    async def _clear_and_delete(self, request: web.Request) -> tuple[bool, list[str]]:
        """A ComfyUI {"clear": bool, "delete": [prompt ids]} body (POST /queue, POST /history)."""
        data = await self._json_body(request)
        if not isinstance(data, dict):
            raise RequestRefused(400, "the body must be a JSON object with 'clear' and/or 'delete'")
        delete = data.get("delete", [])
        if not isinstance(delete, list):
            raise RequestRefused(400, "'delete' must be a list of prompt ids")
        return bool(data.get("clear")), [str(p) for p in delete]

    async def post_queue(self, request: web.Request) -> web.Response:
        clear, delete = await self._clear_and_delete(request)
        if clear:
            self.store.delete_pending(None)
        self.store.delete_pending(delete)
        self.send("status", {"status": self.worker.status()}, None)
        return web.Response(status=200)

    async def post_interrupt(self, request: web.Request) -> web.Response:
        data = await self._json_body(request) if request.can_read_body else None
        prompt_id = data.get("prompt_id") if isinstance(data, dict) else None
        self.worker.interrupt(str(prompt_id) if prompt_id is not None else None)
        return web.Response(status=200)

    async def get_history(self, request: web.Request) -> web.Response:
        max_items = request.query.get("max_items")
        if max_items is not None and not max_items.isdigit():
            raise RequestRefused(400, f"max_items must be a whole number, not {max_items!r}")
        return web.json_response(self.store.history(int(max_items) if max_items is not None else None))

    async def get_history_item(self, request: web.Request) -> web.Response:
        return web.json_response(self.store.history(prompt_id=request.match_info["prompt_id"]))

    async def post_history(self, request: web.Request) -> web.Response:
        clear, delete = await self._clear_and_delete(request)
        if clear:
            self.store.delete_history(None)
        self.store.delete_history(delete)
        return web.Response(status=200)

    def _folder(self, kind: str | None) -> Path:
        kind = kind or "output"
        if kind not in UPLOAD_TYPES:
            raise RequestRefused(400, f"type must be one of {', '.join(UPLOAD_TYPES)}, not {kind!r}")
        return self.config.input if kind == "input" else self.config.output

    async def view(self, request: web.Request) -> web.StreamResponse:
        filename = request.query.get("filename")
        if not filename:
            raise RequestRefused(400, "give the file as ?filename=NAME[&subfolder=DIR][&type=output|input]")
        path = confined(self._folder(request.query.get("type")), request.query.get("subfolder", ""), filename)
        if not path.is_file():
            return web.json_response({"error": f"no such file: {filename!r}"}, status=404)
        return web.FileResponse(path, headers={"Content-Disposition": f'filename="{path.name}"'})

    async def upload_image(self, request: web.Request) -> web.Response:
        post = await request.post()
        image = post.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            raise RequestRefused(400, "the form must carry a file field named 'image' with a file name")
        kind = str(post.get("type") or "input")
        subfolder = str(post.get("subfolder") or "")
        folder = self._folder(kind)
        path = confined(folder, subfolder, Path(image.filename).name)
        data = image.file.read()
        overwrite = str(post.get("overwrite", "")).lower() in ("true", "1")
        if not overwrite:
            path = _free_name(path, data)
        path.parent.mkdir(parents=True, exist_ok=True)
        confined(folder, subfolder, path.name)   # the folder made may not be a symlink out either
        if not path.exists() or path.read_bytes() != data:
            temporary = path.with_name(f".{path.name}.{os.getpid()}.upload")
            temporary.write_bytes(data)
            os.replace(temporary, path)
        return web.json_response({"name": path.name, "subfolder": subfolder, "type": kind})

    async def get_object_info(self, request: web.Request) -> web.Response:
        assert self.runner.registry is not None
        info = await asyncio.get_running_loop().run_in_executor(
            None, object_info, self.runner.registry, self.runner.folders, request.match_info.get("node_class"))
        return web.json_response(info, dumps=lambda value: json.dumps(value, default=str))

    async def get_model_folders(self, request: web.Request) -> web.Response:
        return web.json_response(list(MODEL_FOLDERS))

    async def get_models(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.json_response({"error": f"no model folder {folder!r}"}, status=404)
        return web.json_response(files_of(self.runner.folders, folder))

    async def get_embeddings(self, request: web.Request) -> web.Response:
        return web.json_response([])   # LTX-2 prompts take no textual-inversion embeddings

    async def system_stats(self, request: web.Request) -> web.Response:
        return web.json_response(system_stats(self.runner.settings.device))


def _number(data: dict[str, Any], next_number: float) -> float:
    """The queue position of a new prompt: the client's ``number``, else the next one (negated for
    ``front``, as ComfyUI does)."""
    if isinstance(data.get("number"), (int, float)) and not isinstance(data.get("number"), bool):
        return data["number"]
    number = int(next_number)
    return -number if data.get("front") else number


def _free_name(path: Path, data: bytes) -> Path:
    """``path``, or ``name (1).ext``, ``name (2).ext``, ...: the first that is free or already holds ``data``."""
    candidate, counter = path, 1
    while candidate.exists() and candidate.read_bytes() != data:
        candidate = path.with_name(f"{path.stem} ({counter}){path.suffix}")
        counter += 1
    return candidate


class ThreadedServer:
    """A :class:`Server` on its own event loop in a background thread (for tests and embedding):
    ``with ThreadedServer(config) as server: urlopen(server.url + "/queue")``."""

    def __init__(self, config: ServerConfig, runner: Runner | None = None) -> None:
        self.config, self.runner = config, runner
        self.server: Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ltxgraph-serve-loop", daemon=True)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def __enter__(self) -> "ThreadedServer":
        self.server = Server(self.config, self.runner)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(60)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(120)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
