#!/usr/bin/env python
"""Memory over a long run: 1,000,000 steps of a small hierarchy, RSS sampled throughout.

How to run (from the repository root, with the extension built in place)::

    PYTHONPATH=. python benchmarks/bench_memory.py                  # 1,000,000 steps, 1 thread
    PYTHONPATH=. python benchmarks/bench_memory.py --steps 20000    # a quick look
    PYTHONPATH=. python benchmarks/bench_memory.py --json /tmp/mem.json

This is a script, not a test (decisions D15): it asserts nothing and prints the
RSS series and its summary. A leak of even a few bytes per step shows up as a
steady climb over a million steps; flat RSS after warm-up is the expected result.

What runs
---------
* The hierarchy: a prediction IO ``(1, 2, 16)`` (a byte as two nibble columns,
  the CLI's default codec), an action IO ``(1, 1, 4)`` with a 64-sample history,
  and two layers of ``(4, 4, 16)``; default params except the actor's
  ``min_steps = 4``; ``set_global_state(1234)`` before construction.
* Each step: the next byte of ``datasets/pride_and_prejudice_vol1.txt`` (cycled)
  and the previous action, ``reward`` = 1 when the last prediction was right,
  learning on; then ``get_prediction_cis`` for both IOs, ``get_prediction_acts``,
  ``sample_prediction(0, 0.5)``.
* Every 1,000 steps, the other allocation paths: ``serialize_to_buffer`` and a
  throw-away ``Hierarchy(buffer=...)``, state and weights buffers out and back in,
  ``clear_state``; every 100,000 steps ``save_to_file`` and a reload from the file.
* RSS (``/proc/self/statm`` resident pages, else ``ru_maxrss``) is sampled every
  ``--every`` steps (default 20,000). The summary gives min/max over the whole run
  and over the part after the first 10% (warm-up: allocator pools, page faults of
  first use), and the growth between the first and last samples of that part.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

import neocli as neo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size (peak RSS where /proc is unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build() -> neo.Hierarchy:
    """The small hierarchy of the docstring."""
    neo.set_global_state(1234)
    h = neo.Hierarchy([neo.IODesc((1, 2, 16), neo.prediction), neo.IODesc((1, 1, 4), neo.action, history_capacity=64)],
                      [neo.LayerDesc((4, 4, 16)), neo.LayerDesc((4, 4, 16))])
    h.params.ios[1].actor.min_steps = 4
    return h


def run(steps: int, every: int, threads: int) -> dict:
    """Step ``steps`` times, sampling RSS every ``every`` steps; return the series and summary."""
    neo.set_num_threads(threads)
    with open(os.path.join(ROOT, "datasets", "pride_and_prejudice_vol1.txt"), "rb") as f:
        text = np.frombuffer(f.read(), dtype=np.uint8)
    nibbles = np.stack([text >> 4, text & 15], axis=1).astype(np.int32)
    h = build()
    tmp = tempfile.mkdtemp(prefix="bench-memory-")
    path = os.path.join(tmp, "m.ohr")
    action = np.zeros(1, dtype=np.int32)
    reward = 0.0
    series = [(0, rss_bytes())]
    start = time.perf_counter()
    for t in range(1, steps + 1):
        cis = nibbles[t % len(nibbles)]
        h.step([cis, action], True, reward)
        pred = h.get_prediction_cis(0)
        action = h.get_prediction_cis(1)
        h.get_prediction_acts(0)
        h.sample_prediction(0, 0.5)
        reward = 1.0 if np.array_equal(pred, nibbles[(t + 1) % len(nibbles)]) else 0.0
        if t % 1000 == 0:
            neo.Hierarchy(buffer=h.serialize_to_buffer())
            h.set_state_from_buffer(h.serialize_state_to_buffer())
            h.set_weights_from_buffer(h.serialize_weights_to_buffer())
            h.clear_state()
        if t % 100_000 == 0:
            h.save_to_file(path)
            h = neo.Hierarchy(file_name=path)
        if t % every == 0:
            series.append((t, rss_bytes()))
            done = time.perf_counter() - start
            print(f"{t:>9,} steps  {series[-1][1] / 2**20:8.2f} MiB  ({t / done:,.0f} steps/s)",
                  file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(tmp, ignore_errors=True)
    settled = [r for s, r in series if s >= steps // 10 and s > 0]
    return {
        "steps": steps, "every": every, "threads": threads, "seconds": seconds,
        "series": [{"step": s, "rss_bytes": r} for s, r in series],
        "min_mib": min(r for _, r in series) / 2**20, "max_mib": max(r for _, r in series) / 2**20,
        "settled_min_mib": min(settled) / 2**20, "settled_max_mib": max(settled) / 2**20,
        "settled_growth_kib": (settled[-1] - settled[0]) / 1024,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, print the series and the summary."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--every", type=int, default=20_000, help="steps between RSS samples")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    if args.steps < 10 or args.every < 1:
        ap.error("--steps must be >= 10 and --every >= 1")
    res = run(args.steps, min(args.every, args.steps), args.threads)
    print("step,rss_mib")
    for p in res["series"]:
        print(f"{p['step']},{p['rss_bytes'] / 2**20:.2f}")
    print(f"\n{res['steps']:,} steps in {res['seconds']:.0f} s ({res['steps'] / res['seconds']:,.0f} steps/s), "
          f"{res['threads']} thread(s)")
    print(f"RSS min {res['min_mib']:.2f} MiB, max {res['max_mib']:.2f} MiB over the whole run")
    print(f"after the first 10%: min {res['settled_min_mib']:.2f} MiB, max {res['settled_max_mib']:.2f} MiB, "
          f"first-to-last growth {res['settled_growth_kib']:+.0f} KiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
