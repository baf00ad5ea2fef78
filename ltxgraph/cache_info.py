"""``ltxgraph cache info`` as a person reads it: what the disk cache holds, by op, in human-readable sizes."""
from __future__ import annotations

from typing import Any

UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def format_bytes(count: int) -> str:
    """1536 -> '1.5 KiB'; binary units, three significant figures."""
    value, unit = float(count), 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return f"{count} bytes"
    return f"{value:.3g} {UNITS[unit]}" if value < 1000 else f"{value:.0f} {UNITS[unit]}"


def render_info(info: dict[str, Any]) -> str:
    """:meth:`ltxgraph.cache.DiskStore.info` as lines: folder, limit, total, then one line per op (largest
    first)."""
    limit = "none" if info.get("limit") is None else format_bytes(info["limit"])
    lines = [f"folder:  {info['path']}",
             f"limit:   {limit} (least recently used results go first; set with run --cache-size)",
             f"total:   {format_bytes(info['bytes'])} in {info['entries']} entries"]
    if info["by_op"]:
        width = max(len("op"), *(len(op) for op in info["by_op"]))
        lines.append(f"  {'op':<{width}}  {'entries':>7}  {'size':>10}")
        for op, totals in info["by_op"].items():
            lines.append(f"  {op:<{width}}  {totals['entries']:>7}  {format_bytes(totals['bytes']):>10}")
    return "\n".join(lines)
