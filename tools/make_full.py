"""Write synthetic full-size LTX-2 checkpoints (random weights; the real key layout, shapes and header config;
fp8 e4m3fn linear weights with per-tensor scales) for benchmarks at real scale on small machines.

Usage: python tools/make_full.py OUT_DIR [--component transformer] [--seed N]
Files: ltx-2-19b-synthetic-fp8.safetensors (the transformer under model.diffusion_model., ~19 GB).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ltxgraph_ops.tiny import transformer as tiny_transformer  # noqa: E402
from ltxgraph_ops.weights.writing import header_metadata, write_synthetic  # noqa: E402

FILES = {"transformer": "ltx-2-19b-synthetic-fp8.safetensors"}


def write_component(component: str, out_dir: Path, seed: int = 0) -> Path:
    if component == "transformer":
        config = tiny_transformer.full_config()
        with torch.device("meta"):
            layout = tiny_transformer.build(config, device="meta")
        return write_synthetic(out_dir / FILES[component], layout, tiny_transformer.PREFIX,
                               header_metadata({"transformer": config}), seed)
    raise ValueError(f"unknown component {component!r}: choose from {', '.join(FILES)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--component", choices=sorted(FILES), action="append")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for component in args.component or sorted(FILES):
        start = time.perf_counter()
        path = write_component(component, args.out_dir, args.seed)
        print(f"{path}  {path.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
