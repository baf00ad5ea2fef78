"""``GET /system_stats``: the machine as ComfyUI describes it (system: OS, RAM, versions; devices: memory)."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

import torch

def system_stats(device: str) -> dict[str, Any]:
    """ComfyUI's /system_stats: system (os, RAM, versions) and devices (name, type, memory in bytes; a CPU
    device's memory is the RAM)."""
    page = os.sysconf("SC_PAGE_SIZE")
    ram_total, ram_free = page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    torch_device = torch.device(device)
    total, free = ram_total, ram_free
    if torch_device.type == "cuda" and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info(torch_device)
    return {
        "system": {"os": os.name, "ram_total": ram_total, "ram_free": ram_free,
                   "comfyui_version": f"ltxgraph {_version()}", "python_version": sys.version,
                   "pytorch_version": torch.__version__, "embedded_python": False, "argv": sys.argv,
                   "platform": platform.platform()},
        "devices": [{"name": str(torch_device), "type": torch_device.type, "index": torch_device.index,
                     "vram_total": total, "vram_free": free, "torch_vram_total": total, "torch_vram_free": free}],
    }


def _version() -> str:
    try:
        return importlib.metadata.version("ltxgraph")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
