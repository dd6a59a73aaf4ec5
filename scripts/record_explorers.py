"""Record the explorers' grids that take minutes into book/data/explorers/ (run once).

    python scripts/record_explorers.py curves   # chapter 11: B × η, 40 epochs each

The learning curves (:mod:`mlp_core.book.explorers.curves`) train one run per (B, η) of
the grid, about half an hour on one core; the file carries the machine facts, like the
benchmark recordings. tests/test_explorers.py recomputes a few settings and compares them
exactly. Nothing else is timed: the recordings hold no speed figure.
"""

from __future__ import annotations

import argparse
import json
import sys

from mlp_core.book.explorers import curves
from mlp_core.core.io import atomic_write


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", choices=["curves"], help="which grid to record")
    p.add_argument("--out", default=str(curves.GRID_FILE), help="where to write it")
    args = p.parse_args(argv)
    grid = curves.record_grid(progress=lambda line: print(line, flush=True))
    text = json.dumps(grid, indent=1, ensure_ascii=False) + "\n"
    path = atomic_write(args.out, lambda f: f.write(text.encode("utf-8")))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
