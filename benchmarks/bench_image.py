#!/usr/bin/env python
"""Benchmark ``ImageEncoder.step()``: neocli against pyaogmaneo 2.14.4, in one process.

How to run (from the repository root, with the extensions built in place)::

    PYTHONPATH=. python benchmarks/bench_image.py             # full run (~40 s on 2 cores)
    PYTHONPATH=. python benchmarks/bench_image.py --quick     # smoke run
    PYTHONPATH=. python benchmarks/bench_image.py --configs small --threads 1

This is a script, not a test: it asserts nothing, it prints a Markdown table.

Method
------
* Encoders (default params), built from ``set_global_state(1234)`` in both
  libraries, so they start from the same weights:

  - ``small``:  hidden (4, 4, 16) over one (16, 16, 1) image, radius 4 (spec §14.3's setup)
  - ``medium``: hidden (8, 8, 32) over one (32, 32, 3) image, radius 3
  - ``large``:  hidden (16, 16, 32) over one (64, 64, 3) image, radius 4

* Input: a fixed cycle of 16 block-smooth random images (numpy seed 1234), the
  same for both libraries. Each encoder is warmed up with one learning pass over
  the cycle (with reconstruction learning) before anything is timed.
* Modes: ``infer`` = ``step(img, False)``; ``learn`` = ``step(img, True)``;
  ``learn+recon`` = ``step(img, True, True)``.
* Per (mode, threads) cell: ``set_num_threads(n)`` in both libraries, one untimed
  block each (which sizes the timed blocks to about 0.15 s for the slower
  library), then timed blocks alternating ABBA (pyaogmaneo, neocli, neocli,
  pyaogmaneo, ...). Reported: the median over blocks of the block's steps/s.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

import neocli
import pyaogmaneo

# name -> (hidden size, image size, radius, steps in the first untimed block)
CONFIGS = {
    "small": ((4, 4, 16), (16, 16, 1), 4, 400),
    "medium": ((8, 8, 32), (32, 32, 3), 3, 40),
    "large": ((16, 16, 32), (64, 64, 3), 4, 6),
}
MODES = {"infer": (False, False), "learn": (True, False), "learn+recon": (True, True)}
SEED = 1234
CYCLE = 16
BLOCK_SECONDS = 0.15


def describe(name: str) -> str:
    hidden, image, r, _ = CONFIGS[name]
    return f"hidden {hidden} over {image}, radius {r}"


def images_for(size) -> list:
    w, h, c = size
    rng = np.random.default_rng(SEED)
    out = []
    for _ in range(CYCLE):
        bw, bh = max(1, w // 4), max(1, h // 4)
        blocks = rng.integers(0, 256, (-(-w // bw), -(-h // bh), c))
        img = np.repeat(np.repeat(blocks, bw, axis=0), bh, axis=1)[:w, :h, :]
        out.append(np.ascontiguousarray(img, dtype=np.uint8).reshape(-1))
    return out


class Runner:
    """One encoder of one library, stepping through the image cycle."""

    def __init__(self, lib, hidden, image, radius, images):
        lib.set_global_state(SEED)
        self.e = lib.ImageEncoder(hidden, [lib.ImageVisibleLayerDesc(image, radius)])
        self.images = images
        self.t = 0

    def run(self, n: int, learn: bool, recon: bool) -> float:
        step, images, t0 = self.e.step, self.images, self.t
        start = time.perf_counter()
        for i in range(t0, t0 + n):
            step([images[i % CYCLE]], learn, recon)
        self.t = t0 + n
        return time.perf_counter() - start


def bench_config(name, threads_list, n_blocks, scale, log) -> list:
    hidden, image, radius, steps = CONFIGS[name]
    images = images_for(image)
    runners = {"pyaogmaneo": Runner(pyaogmaneo, hidden, image, radius, images),
               "neocli": Runner(neocli, hidden, image, radius, images)}
    for lib in (pyaogmaneo, neocli):
        lib.set_num_threads(max(threads_list))
    for r in runners.values():
        r.run(CYCLE, True, True)
    same = np.array_equal(runners["pyaogmaneo"].e.get_hidden_cis(), runners["neocli"].e.get_hidden_cis())
    log(f"  {name}: warmed up; hidden CSDRs {'identical' if same else 'DIFFER'} after the warm-up pass")
    n0 = max(1, int(round(steps * scale)))
    rows = []
    for mode, (learn, recon) in MODES.items():
        for threads in threads_list:
            for lib in (pyaogmaneo, neocli):
                lib.set_num_threads(threads)
            n = n0
            # Untimed block, which also sizes the timed ones: each lasts about
            # BLOCK_SECONDS (x scale) for the slower library, so that timer and
            # scheduler noise stay small against it.
            slowest = max(r.run(n, learn, recon) for r in runners.values()) / n
            n = max(1, int(BLOCK_SECONDS * scale / slowest))
            times = {"pyaogmaneo": [], "neocli": []}
            order = ("pyaogmaneo", "neocli")
            for b in range(n_blocks):
                for k in (order if b % 2 == 0 else order[::-1]):
                    times[k].append(runners[k].run(n, learn, recon))
            rate = {k: statistics.median(n / t for t in ts) for k, ts in times.items()}
            row = {"config": name, "mode": mode, "threads": threads, **rate,
                   "ratio": rate["neocli"] / rate["pyaogmaneo"]}
            rows.append(row)
            log(f"  {name:6s} {mode:11s} threads={threads}: pyaogmaneo {rate['pyaogmaneo']:9.1f}  "
                f"neocli {rate['neocli']:9.1f}  ratio {row['ratio']:.2f}")
    return rows


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter blocks: a smoke run")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--blocks", type=int, default=None, help="timed blocks per library per cell (default 8)")
    args = ap.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in configs if c not in CONFIGS]
    if bad:
        ap.error(f"unknown config(s) {bad}; choose from {list(CONFIGS)}")
    threads_list = [int(t) for t in args.threads.split(",") if t.strip()]
    n_blocks = args.blocks or (3 if args.quick else 8)
    scale = 0.25 if args.quick else 1.0

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        with open("/proc/loadavg") as f:
            loadavg = " ".join(f.read().split()[:3])
    except OSError:
        loadavg = "unknown"
    t0 = time.perf_counter()
    rows = []
    for name in configs:
        rows.extend(bench_config(name, threads_list, n_blocks, scale, log))
    print("## bench_image: ImageEncoder.step, neocli vs pyaogmaneo")
    print()
    print(f"- machine: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} "
          f"cores available, {platform.platform()}, python {platform.python_version()}, "
          f"loadavg at start {loadavg}")
    print("- configs: " + "; ".join(f"{c} = {describe(c)}" for c in configs))
    print(f"- method: {CYCLE} block-smooth images (seed {SEED}), one learning warm-up pass, "
          f"{n_blocks} timed blocks per library per cell, ABBA; steps/s = median over blocks"
          + (" (--quick)" if args.quick else ""))
    print(f"- wall time: {time.perf_counter() - t0:.0f} s")
    print()
    print("| config | mode | threads | pyaogmaneo steps/s | neocli steps/s | ratio (neocli/pyaogmaneo) |")
    print("|---|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['config']} | {r['mode']} | {r['threads']} | {fmt(r['pyaogmaneo'])} | {fmt(r['neocli'])} | "
              f"{r['ratio']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
