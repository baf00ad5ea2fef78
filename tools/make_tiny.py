"""Write the tiny LTX-2 model set (real key layout and header format, random weights from a seed) into a folder
laid out like ComfyUI's models folder.

Usage: python tools/make_tiny.py OUT_DIR [--seed N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ltxgraph_ops.tiny.files import write_tiny_models  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_tiny_models(args.out_dir, args.seed):
        print(f"{path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
