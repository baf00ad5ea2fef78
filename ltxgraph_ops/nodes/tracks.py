"""Sparse motion tracks for LTX-2.3's motion-track IC-LoRA (ComfyUI-LTXVideo names): spline tracks from control
points (LTXVSparseTrackEditor) and their rendering as a video of coloured dots with fading trails
(LTXVDrawTracks), the control video the IC-LoRA was trained on.

Tracks travel as JSON text: a list of tracks, each a list of points {"x": px, "y": px}, one per frame."""
from __future__ import annotations

import json
from typing import Annotated, Any

import torch
import torch.nn.functional as F

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check, refusal

Point = dict[str, float]

TRAIL_FRAMES = 50
MIN_RADIUS, MAX_RADIUS = 2, 8
RENDER_SHORT_SIDE = 1080
"""Dots are drawn at this short side (pixels) and the frames scaled down, so dot sizes do not depend on the
output size."""


def catmull_rom(p0: Point, p1: Point, p2: Point, p3: Point, t: float) -> tuple[float, float]:
    """The uniform Catmull-Rom segment from p1 (t = 0) to p2 (t = 1)."""
    def axis(k: str) -> float:
        a, b, c, d = p0[k], p1[k], p2[k], p3[k]
        return 0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t * t + (3 * b - a - 3 * c + d) * t ** 3)
    return axis("x"), axis("y")


def sample_spline(points: list[Point], count: int) -> list[dict[str, int]]:
    """``count`` pixel positions (rounded) evenly along the spline through ``points``: a fixed point for one
    point, a straight line for two, Catmull-Rom segments (ends repeated) for more."""
    if not points:
        return []
    if len(points) == 1:
        return [{"x": round(points[0]["x"]), "y": round(points[0]["y"])} for _ in range(count)]
    if len(points) == 2:
        a, b = points
        return [{"x": round(a["x"] + (b["x"] - a["x"]) * i / (count - 1)),
                 "y": round(a["y"] + (b["y"] - a["y"]) * i / (count - 1))} for i in range(count)]
    padded = [points[0], *points, points[-1]]
    segments = len(padded) - 3
    samples = []
    for i in range(count):
        position = i / (count - 1) * segments
        segment = min(int(position), segments - 1)
        x, y = catmull_rom(*padded[segment:segment + 4], position - segment)
        samples.append({"x": round(x), "y": round(y)})
    return samples


def _json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputValueError(f"{name} is not valid JSON: {exc.msg} at character {exc.pos}") from None


@input_check("points_store")
def points_store_json(points_store: str) -> str | None:
    """Refuses control points that are not JSON."""
    return refusal(_json, points_store, "points_store") if points_store.strip() else None


@input_check("tracks")
def tracks_json(tracks: str) -> str | None:
    """Refuses tracks that are not JSON (nor hold JSON strings)."""
    return refusal(parse_tracks, tracks)


@op("LTXVSparseTrackEditor", outputs={"tracks": "STRING"}, category="Lightricks/motion_tracking", output_node=True,
    checks=(points_store_json,))
def sparse_track_editor(image: Annotated[torch.Tensor, Port("IMAGE")],
                        points_store: Annotated[str, Port("STRING")] = "[]",
                        coordinates: Annotated[str, Port("STRING")] = "[]",
                        points_to_sample: Annotated[int, Port("INT", min=2, max=10000)] = 121) -> str:
    """Tracks drawn in ComfyUI's editor (over ``image``): each spline of control points in ``points_store``
    sampled at ``points_to_sample`` positions; without control points, ``coordinates`` as saved; else "[]"."""
    splines = _json(points_store, "points_store") if points_store.strip() else []
    if isinstance(splines, list) and splines and isinstance(splines[0], list):
        return json.dumps([sample_spline(spline, points_to_sample) for spline in splines])
    if coordinates.strip() and coordinates.strip() != "[]":
        return coordinates
    return "[]"


def parse_tracks(text: str) -> list[list[Point]]:
    """Every list of {"x", "y"} points found in ``text`` (JSON, possibly nested or holding JSON strings)."""
    found: list[list[Point]] = []

    def visit(value: Any) -> None:
        if isinstance(value, str):
            value = _json(value, "a track")
        if not isinstance(value, list) or not value:
            return
        if isinstance(value[0], dict) and "x" in value[0] and "y" in value[0]:
            found.append(value)
            return
        for item in value:
            visit(item)

    visit(_json(text, "tracks") if text.strip() else [])
    return found


def age_colours(ratios: torch.Tensor) -> torch.Tensor:
    """[N] age ratios (0 = oldest in the trail, 1 = now) -> [N, 3] RGB: blue -> green -> yellow -> red."""
    r, g, b = torch.zeros_like(ratios), torch.zeros_like(ratios), torch.zeros_like(ratios)
    low, high = ratios <= 1 / 3, ratios > 2 / 3
    mid = ~low & ~high
    g = torch.where(low, ratios * 3, g)
    b = torch.where(low, 1 - ratios * 3, b)
    r = torch.where(mid, (ratios - 1 / 3) * 3, r)
    g = torch.where(mid, torch.ones_like(g), g)
    r = torch.where(high, torch.ones_like(r), r)
    g = torch.where(high, 1 - (ratios - 2 / 3) * 3, g)
    return torch.stack([r, g, b], dim=-1)


def render_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) with the short side at RENDER_SHORT_SIDE, aspect kept (long side truncated)."""
    if height <= width:
        return int(width * RENDER_SHORT_SIDE / height), RENDER_SHORT_SIDE
    return RENDER_SHORT_SIDE, int(height * RENDER_SHORT_SIDE / width)


def draw_dots(frame: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, colours: torch.Tensor) -> None:
    """Paint filled discs (pixel offsets d with |d|^2 <= r^2 around the rounded centre) on ``frame`` [H, W, 3]
    in order: where discs overlap, the later one shows."""
    height, width = frame.shape[:2]
    reach = MAX_RADIUS + 1
    offsets = torch.arange(-reach, reach + 1)
    dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")                      # [D, D]
    cx, cy = centres.round().long().unbind(-1)
    rows, cols = cy[:, None, None] + dy, cx[:, None, None] + dx                    # [M, D, D]
    inside = (dx * dx + dy * dy).float() <= (radii * radii)[:, None, None]
    inside &= (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    order = torch.arange(len(centres), dtype=torch.float32)[:, None, None].expand_as(inside)
    top = torch.full((height * width,), -1.0)
    top.scatter_reduce_(0, (rows * width + cols)[inside], order[inside], reduce="amax", include_self=True)
    painted = top >= 0
    frame.view(-1, 3)[painted] = colours[top[painted].long()]


@op("LTXVDrawTracks", outputs={"IMAGE": "IMAGE"}, category="Lightricks/motion_tracking", checks=(tracks_json,))
def draw_tracks(tracks: Annotated[str, Port("STRING", multiline=True)],
                width: Annotated[int, Port("INT", min=8, max=8192, multiple_of=8)] = 512,
                height: Annotated[int, Port("INT", min=8, max=8192, multiple_of=8)] = 512,
                ctx: OpContext = None) -> torch.Tensor:
    """A video [frames, height, width, 3] with one frame per track point: at frame t every track shows its last
    50 positions as dots, newest on top, radius 2 -> 8 px and colour blue -> red from old to new (drawn at
    1080 px short side, scaled down bilinearly; channels in BGR order and float16 precision as the IC-LoRA
    was trained). No tracks: one black frame."""
    parsed = parse_tracks(tracks)
    if not parsed:
        return torch.zeros(1, height, width, 3)
    render_w, render_h = render_size(width, height)
    scale = torch.tensor([render_w / width, render_h / height])
    frames = max(len(track) for track in parsed)
    positions = torch.zeros(len(parsed), frames, 2)
    visible = torch.zeros(len(parsed), frames, dtype=torch.bool)
    for i, track in enumerate(parsed):
        positions[i, :len(track)] = torch.tensor([[p["x"], p["y"]] for p in track], dtype=torch.float32) * scale
        visible[i, :len(track)] = True
    out = torch.zeros(frames, height, width, 3)
    for t in range(frames):
        first = max(0, t - TRAIL_FRAMES)
        ages = torch.arange(t - first, -1, -1, dtype=torch.float32)             # oldest first
        ratios = 1.0 - ages / TRAIL_FRAMES
        radii = MIN_RADIUS + (MAX_RADIUS - MIN_RADIUS) * ratios
        colours = age_colours(ratios)
        canvas = torch.zeros(render_h, render_w, 3)
        shown = visible[:, first:t + 1].T                                        # [steps, tracks], oldest first
        steps = torch.arange(t - first + 1)[:, None].expand_as(shown)[shown]
        if len(steps):
            draw_dots(canvas, positions[:, first:t + 1].transpose(0, 1)[shown], radii[steps], colours[steps])
        small = F.interpolate(canvas.permute(2, 0, 1)[None], size=(height, width), mode="bilinear",
                              align_corners=False)[0].permute(1, 2, 0)
        out[t] = small.flip(-1)
        if ctx is not None:
            ctx.step(t + 1, frames)
    return out.half().float()
