"""What keeps a server safe to leave running: files served and uploaded stay inside their folders, request
bodies have a size limit, and a request from a web page of another site cannot queue work on a local server.

Paths: a /view or /upload name (filename plus subfolder) is refused when absolute, when it holds ``..`` or a NUL,
and when it resolves (symlinks followed) outside its folder: :func:`ltxgraph.paths.inside` decides, the one
path check of the project. Bodies: JSON bodies up to ``json_bytes``, uploads up to ``upload_bytes``; larger ones
are answered 413 before they are read whole.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..paths import UnsafePath, inside

DEFAULT_JSON_BYTES = 16 * 2**20
DEFAULT_UPLOAD_BYTES = 100 * 2**20   # ComfyUI's default --max-upload-size (100 MB)


class RequestRefused(Exception):
    """A request the server answers with ``status`` and a one-line ``message`` (never a traceback)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Limits:
    json_bytes: int = DEFAULT_JSON_BYTES
    upload_bytes: int = DEFAULT_UPLOAD_BYTES


def confined(folder: Path, subfolder: str, filename: str) -> Path:
    """``folder/subfolder/filename`` resolved, or RequestRefused(403) when it would leave ``folder``; a file name
    must be a plain name (no folder part: that belongs in ``subfolder``). Messages never show server paths."""
    if not filename or "/" in filename or "\\" in filename or filename in (".", ".."):
        raise RequestRefused(400, f"invalid file name {filename!r}: give a plain name and put folders in 'subfolder'")
    try:
        return inside(folder, str(Path(subfolder or ".") / filename))
    except UnsafePath:
        raise RequestRefused(403, f"refused: subfolder {subfolder!r} / filename {filename!r} leaves the folder "
                                  "it must stay in (absolute path, '..' or a symlink out)") from None


def parse_json(body: bytes, limit: int) -> Any:
    """A request body as JSON, or RequestRefused (413 over ``limit`` bytes, 400 when not JSON)."""
    if len(body) > limit:
        raise RequestRefused(413, f"request body of {len(body)} bytes is over the limit of {limit} bytes")
    try:
        return json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestRefused(400, f"the request body is not valid JSON: {exc}") from None


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a name or an address) is this machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cross_site(host_header: str | None, origin_header: str | None) -> bool:
    """A browser request to a loopback server from a page of another origin (as ComfyUI refuses them: a web page
    must not queue work on a local server)."""
    if not host_header or not origin_header:
        return False
    host = urlsplit("//" + host_header.lower())
    origin = urlsplit(origin_header.lower())
    if not is_loopback(host.hostname):
        return False
    if origin.hostname is None:
        return True   # "null" or garbage: a sandboxed page or a file
    same_port = host.port is None or origin.port is None or host.port == origin.port
    return not (host.hostname == origin.hostname and same_port)
