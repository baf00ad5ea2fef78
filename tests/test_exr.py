"""EXR frames of LTXVHDRDecodePostprocess: OpenCV (test-only oracle) reads back exactly the linear values written
(half: their float16 rounding), the files land inside the output folder under ComfyUI-LTXVideo's names, and an
output_dir escaping the output folder is refused before anything is written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ltxgraph.context import OpContext
from ltxgraph.errors import InvalidInput
from ltxgraph.paths import Folders
from ltxgraph.values import SavedFile
from ltxgraph_ops.exr import exr_bytes
from ltxgraph_ops.nodes.media import hdr_decode_postprocess

READ_WITH_OPENCV = """
import json, sys, cv2, numpy
image = cv2.imread(sys.argv[1], cv2.IMREAD_UNCHANGED)
print(json.dumps({"dtype": str(image.dtype), "bgr": image.tolist()}))
"""


def linear_frame(seed: int, height: int = 5, width: int = 7) -> torch.Tensor:
    """[H, W, 3] linear light over a wide range (1e-3 .. 1e3)."""
    exponent = torch.rand(height, width, 3, generator=torch.Generator().manual_seed(seed)) * 6 - 3
    return torch.pow(10.0, exponent)


def read_with_opencv(path: Path) -> np.ndarray:
    env = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1"}
    out = subprocess.run([sys.executable, "-c", READ_WITH_OPENCV, str(path)], env=env, capture_output=True,
                         text=True, check=True)
    found = json.loads(out.stdout)
    assert found["dtype"] == "float32"
    return np.array(found["bgr"], dtype=np.float32)[..., ::-1]                     # BGR -> RGB


@pytest.mark.oracle
@pytest.mark.parametrize("half", [True, False])
def test_opencv_reads_back_the_frame(tmp_path: Path, half: bool) -> None:
    pytest.importorskip("cv2")
    rgb = linear_frame(1)
    path = tmp_path / "frame.exr"
    path.write_bytes(exr_bytes(rgb, half=half))
    expected = rgb.half().float() if half else rgb
    assert np.array_equal(read_with_opencv(path), expected.numpy())


def test_postprocess_writes_one_exr_per_frame_inside_the_output_folder(tmp_path: Path) -> None:
    ctx = OpContext("LTXVHDRDecodePostprocess", folders=Folders(output=tmp_path / "out"))
    code = torch.rand(3, 4, 6, 3, generator=torch.Generator().manual_seed(2))
    tonemapped, hdr, *saved = hdr_decode_postprocess(code, 0.0, True, "output/hdr_exr3", "frame", False, ctx=ctx)
    names = sorted(p.name for p in (tmp_path / "out" / "output" / "hdr_exr3").iterdir())
    assert names == ["frame_00000.exr", "frame_00001.exr", "frame_00002.exr"]
    assert all(isinstance(item, SavedFile) for item in saved) and len(saved) == 3
    assert (tmp_path / "out/output/hdr_exr3/frame_00001.exr").read_bytes() == exr_bytes(hdr[1], half=False)
    assert len(hdr_decode_postprocess(code, 0.0, False, ctx=ctx)) == 2                # no files when off


def test_postprocess_refuses_an_output_dir_outside_the_output_folder(tmp_path: Path) -> None:
    ctx = OpContext("LTXVHDRDecodePostprocess", folders=Folders(output=tmp_path / "out"))
    with pytest.raises(InvalidInput):
        hdr_decode_postprocess(torch.rand(1, 2, 2, 3), save_exr=True, output_dir="../elsewhere", ctx=ctx)
    assert not (tmp_path / "elsewhere").exists()
