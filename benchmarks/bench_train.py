"""Benchmark: ``neocli train`` symbols/s against a plain library loop on the same data.

Run by hand (never a test):  python benchmarks/bench_train.py [--symbols N] [--threads 1,2]

Both sides train the same architecture (the CLI defaults) on the same bytes of the
bundled text, in the same run, alternating. The CLI number is the symbols/s that
``neocli train --json`` reports (it also scores every prediction, decisions D14);
the library loop only steps. Target: CLI >= 0.9x the plain loop.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import neocli as neo  # noqa: E402
from neocli.training import DEFAULT_HIDDEN, DEFAULT_LAYERS  # noqa: E402


def library_loop(data: bytes, threads: int) -> float:
    """Symbols/s of the plainest possible training loop with the CLI's architecture."""
    neo.set_num_threads(threads)
    neo.set_global_state(0)
    w, h_, z = DEFAULT_HIDDEN
    h = neo.Hierarchy([neo.IODesc((1, 2, 16), neo.prediction)], [neo.LayerDesc((w, h_, z))] * DEFAULT_LAYERS)
    table = [np.array([b >> 4, b & 15], dtype=np.int32) for b in range(256)]
    start = time.perf_counter()
    for b in data:
        h.step([table[b]], True)
    return len(data) / (time.perf_counter() - start)


def cli(path: str, threads: int) -> float:
    """Symbols/s reported by ``neocli train`` on the file."""
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-m", "neocli", "train", path, "-o", os.path.join(d, "m.ohr"),
                              "--threads", str(threads), "--quiet", "--json"],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        return json.loads(out.stdout)["metrics"][0]["symbols_per_s"]


def main() -> None:
    """Run the comparison and print a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=20000)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data = (ROOT / "datasets" / "pride_and_prejudice_vol1.txt").read_bytes()[: args.symbols]
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as f:
        f.write(data)
        path = f.name
    print(f"data: first {len(data)} bytes of datasets/pride_and_prejudice_vol1.txt; "
          f"architecture: IO (1,2,16) + {DEFAULT_LAYERS} x LayerDesc({DEFAULT_HIDDEN}); neocli {neo.__version__}")
    print("\n| threads | library loop symbols/s | neocli train symbols/s | ratio |\n|---|---:|---:|---:|")
    try:
        for t in (int(x) for x in args.threads.split(",")):
            lib, cl = [], []
            for _ in range(args.repeats):
                lib.append(library_loop(data, t))
                cl.append(cli(path, t))
            lib_m, cli_m = float(np.median(lib)), float(np.median(cl))
            print(f"| {t} | {lib_m:,.0f} | {cli_m:,.0f} | {cli_m / lib_m:.2f} |", flush=True)
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
