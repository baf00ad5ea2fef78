"""Frames (IMAGE held as bytes or streamed): exact values, chunked reads, how ops receive them, and how the disk
cache stores them (codes as bytes; streamed frames not at all)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import pytest
import torch

import ltxgraph
from ltxgraph import Port, Registry, Runner, op
from ltxgraph import unorm8
from ltxgraph.cache import DiskStore
from ltxgraph.frames import CodedFrames, Frames, StreamedFrames, coded, first_frames, float_images
from ltxgraph.paths import Folders


def random_codes(frames: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (frames, 4, 6, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def streamed(codes: torch.Tensor, step: int, reads: list[int] | None = None) -> StreamedFrames:
    def produce():
        if reads is not None:
            reads.append(1)
        return (codes[i:i + step] for i in range(0, codes.shape[0], step))
    return StreamedFrames(tuple(codes.shape), produce)


def test_coded_frames_are_the_grid_values_of_their_codes() -> None:
    codes = random_codes(11)
    frames = CodedFrames(codes)
    assert frames.shape == (11, 4, 6, 3) and len(frames) == 11 and frames.ndim == 4
    assert torch.equal(frames.float(), unorm8.unpack(codes)) and frames.float().dtype == torch.float32
    assert torch.equal(torch.cat(list(frames.chunks())), codes)
    assert torch.equal(frames.float(torch.bfloat16), unorm8.unpack(codes, torch.bfloat16))


def test_coding_floats_keeps_grid_values_and_rounds_the_rest_like_an_8bit_file() -> None:
    codes = random_codes(9)
    assert torch.equal(coded(unorm8.unpack(codes)).codes(), codes)                # exact on the grid
    values = torch.rand(9, 4, 6, 3, generator=torch.Generator().manual_seed(3)) * 1.2 - 0.1
    frames = coded(values)
    assert torch.equal(frames.float(), unorm8.snap(values))
    assert (frames.float() - values.clamp(0, 1)).abs().max() <= 0.5 / 255 + 1e-7    # within half an LSB


@pytest.mark.parametrize("step", [1, 2, 5, 7])
def test_streamed_frames_are_made_when_read_and_every_read_makes_them_again(step: int) -> None:
    codes, reads = random_codes(7), []
    frames = streamed(codes, step, reads)
    assert reads == []
    assert torch.equal(frames.codes(), codes) and torch.equal(frames.float(), unorm8.unpack(codes))
    assert len(reads) == 2
    assert torch.equal(first_frames(frames, 3).codes(), codes[:3]) and len(reads) == 3


def test_frames_that_break_their_declared_shape_are_refused() -> None:
    codes = random_codes(6)
    with pytest.raises(ValueError, match="gave 4 of the 6"):
        StreamedFrames((6, 4, 6, 3), lambda: iter([codes[:4]])).codes()
    with pytest.raises(ValueError, match="does not fit"):
        StreamedFrames((6, 4, 6, 3), lambda: iter([codes.float()])).codes()
    with pytest.raises(ValueError, match="uint8"):
        CodedFrames(codes.float())
    with pytest.raises(ValueError, match="first 7 of 6"):
        first_frames(CodedFrames(codes), 7)


@op("MakeFrames", outputs={"IMAGE": "IMAGE"})
def make_frames(seed: Annotated[int, Port("INT")], streamed_: Annotated[bool, Port("BOOLEAN")] = False) -> Frames:
    """Seeded 8-bit frames, held as codes or streamed."""
    codes = random_codes(5, seed)
    return streamed(codes, 2) if streamed_ else CodedFrames(codes)


@op("MeanOfImage", outputs={"VALUE": "FLOAT"})
def mean_of_image(image: Annotated[torch.Tensor, Port("IMAGE")]) -> float:
    """An op that wants a float tensor."""
    assert isinstance(image, torch.Tensor) and image.dtype == torch.float32
    return float(image.mean())


@op("FrameKind", outputs={"VALUE": "STRING"})
def frame_kind(image: Annotated[torch.Tensor | Frames, Port("IMAGE")]) -> str:
    """An op that takes frames as they travel."""
    return type(image).__name__


GRAPH = """ltxgraph: 1
params: {streamed: {type: BOOLEAN, default: false}}
nodes:
  frames: {op: MakeFrames, in: {seed: 4, streamed_: $streamed}}
  mean: {op: MeanOfImage, in: {image: '@frames.IMAGE'}}
  kind: {op: FrameKind, in: {image: '@frames.IMAGE'}}
outputs: {mean: '@mean.VALUE', kind: '@kind.VALUE', frames: '@frames.IMAGE'}
"""


@pytest.mark.parametrize("is_streamed", [False, True])
def test_ops_get_float_tensors_unless_their_annotation_names_frames(tmp_path: Path, is_streamed: bool) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH)
    registry = Registry.from_modules(sys.modules[__name__])
    assert not registry.get("MeanOfImage").input_by_name["image"].takes_frames
    assert registry.get("FrameKind").input_by_name["image"].takes_frames
    runner = Runner(registry, cache_dir=tmp_path / "cache", folders=Folders((), tmp_path, tmp_path / "out"))
    result = ltxgraph.load(path).run({"streamed": is_streamed}, runner=runner)
    expected = float(unorm8.unpack(random_codes(5, 4)).mean())
    assert result.outputs["mean"] == pytest.approx(expected, abs=1e-6)
    assert result.outputs["kind"] == ("StreamedFrames" if is_streamed else "CodedFrames")
    assert torch.equal(float_images(result.outputs["frames"]), unorm8.unpack(random_codes(5, 4)))


def test_disk_cache_keeps_codes_as_bytes_and_never_stores_streamed_frames(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, Registry().storable)
    codes = random_codes(8)
    assert store.put("coded", (CodedFrames(codes),))
    back = store.get("coded")[0]
    assert isinstance(back, CodedFrames) and torch.equal(back.codes(), codes)
    entry_bytes = sum(p.stat().st_size for p in (tmp_path).rglob("values.safetensors"))
    assert codes.numel() <= entry_bytes < codes.numel() + 1024                     # one byte a value
    assert not store.put("streamed", (streamed(codes, 3),)) and store.get("streamed") is None
