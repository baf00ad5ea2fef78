"""``ltxgraph serve``: its options, and the loop that runs the server until Ctrl-C or SIGTERM.

aiohttp (the ``ltxgraph[serve]`` extra) is imported only when the command runs, so the rest of ltxgraph never
needs it.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from ..api import DEFAULT_MEMORY_BYTES
from ..context import RunSettings
from ..errors import InvalidInput
from ..registry import Registry
from .safety import DEFAULT_JSON_BYTES, DEFAULT_UPLOAD_BYTES, Limits


def add_serve_command(sub: Any, parse_bytes: Callable[[str], int], dtype_choices: tuple[str, ...]) -> None:
    """Register ``serve`` on the CLI's subparsers (``parse_bytes``: the CLI's size parser)."""
    serve = sub.add_parser("serve", help="serve ComfyUI's HTTP and websocket API (queue, history, /view, ...)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the "
                            "network, with no authentication)")
    serve.add_argument("--port", type=int, default=8188, help="port (default 8188, ComfyUI's; 0: any free port)")
    serve.add_argument("--models-dir", action="append", default=[], type=Path,
                       help="models folder laid out like ComfyUI's (checkpoints/, loras/, ...); repeatable "
                            "(default: the embedded tiny models)")
    serve.add_argument("--input-dir", type=Path, default=Path("input"),
                       help="where uploads go and input media are read (default ./input)")
    serve.add_argument("--out", type=Path, default=Path("output"), help="output folder served by /view "
                                                                        "(default ./output)")
    serve.add_argument("--queue-db", type=Path,
                       help="SQLite file of the queue and history (default <cache dir>/server/queue.sqlite)")
    serve.add_argument("--cache-dir", type=Path, help="results cache folder (default: the CLI's)")
    serve.add_argument("--device", default="cpu", help="torch device for model compute (default cpu)")
    serve.add_argument("--dtype", choices=dtype_choices, default=None,
                       help="what models compute in (default $LTXGRAPH_DTYPE or auto, as for run)")
    serve.add_argument("--memory", type=parse_bytes, default=DEFAULT_MEMORY_BYTES, metavar="SIZE",
                       help="most the in-memory results cache keeps between prompts, loaded models included "
                            f"(default {DEFAULT_MEMORY_BYTES // 2**30}G): models that fit stay warm")
    serve.add_argument("--max-upload-size", type=parse_bytes, default=DEFAULT_UPLOAD_BYTES, metavar="SIZE",
                       help="largest upload accepted (default 100M; larger: 413)")
    serve.add_argument("--max-body-size", type=parse_bytes, default=DEFAULT_JSON_BYTES, metavar="SIZE",
                       help="largest JSON request body accepted (default 16M; larger: 413)")


def serve(args: argparse.Namespace, registry: Registry) -> int:
    """Run the server until interrupted; 0 after a clean stop."""
    try:
        from .app import Server, ServerConfig, make_runner   # aiohttp is imported here
    except ImportError as exc:
        raise InvalidInput(f"ltxgraph serve needs aiohttp: pip install 'ltxgraph[serve]' ({exc})") from None
    settings = RunSettings(args.device, dtype=args.dtype) if args.dtype else RunSettings(args.device)
    config = ServerConfig(args.host, args.port, tuple(args.models_dir), args.input_dir, args.out, args.queue_db,
                          args.cache_dir, settings, Limits(args.max_body_size, args.max_upload_size), args.memory)
    server = Server(config, make_runner(config, registry))
    asyncio.run(_run_until_stopped(server))
    return 0


async def _run_until_stopped(server: Any) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopped.set)
    await server.start()
    if server.recovered:
        print(f"marked failed (the server had stopped while they ran): {', '.join(server.recovered)}",
              file=sys.stderr)
    running, pending = server.store.queue()
    print(f"ltxgraph serve: listening on {server.url} ({len(pending)} queued prompt(s) resumed); "
          f"outputs in {server.config.output}, queue in {server.store.path}", file=sys.stderr, flush=True)
    await stopped.wait()
    print("stopping: the running prompt is interrupted, queued prompts stay queued", file=sys.stderr)
    await server.stop()
