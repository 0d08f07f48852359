"""Start-up time of the ``neocli`` command: ``--version``, ``detect --help`` and a real detect
on a 1,000-row and a 10-row CSV (``neocli detect`` runs once per file in shell loops, so
its start-up counts once per file).

    OMP_NUM_THREADS=1 python benchmarks/bench_startup.py [--runs 10] [--before DIR]

Each command (the ``neocli`` on PATH) runs ``--runs`` times with this checkout on PYTHONPATH; with ``--before DIR``
(another copy of the package, e.g. ``git archive OLD neocli | tar -x -C DIR`` plus the
built ``neocli/*.so``) the two trees alternate run by run (ABBA), so both see the same
machine load. Reported: the median wall time and the median CPU time of the child process
(user + system), in seconds; CPU time is the one to compare on a shared machine.
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _csv(path: str, rows: int) -> None:
    with open(path, "w") as f:
        f.write("timestamp,value\n")
        for i in range(rows):
            f.write(f"{1700000000 + 3600 * i},{20 + 5 * math.sin(i / 24 * 2 * math.pi) + (i % 7) * 0.1:.3f}\n")


def _once(cmd: list[str], tree: str) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": tree, "OMP_NUM_THREADS": "1"}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({tree}): {p.stderr}")
    return wall, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime


def main() -> None:
    """Time each command and print one line per command and tree."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--before", metavar="DIR", help="another package tree to time alternately")
    args = ap.parse_args()
    trees = {"this checkout": ROOT} | ({"before": args.before} if args.before else {})
    tmp = tempfile.mkdtemp(prefix="neocli-startup-")
    big, small, out = (os.path.join(tmp, n) for n in ("d1000.csv", "d10.csv", "out.csv"))
    _csv(big, 1000)
    _csv(small, 10)
    detect = ["--columns", "value", "--time-column", "timestamp", "--threads", "1", "--quiet", "-o", out]
    commands = [["neocli", "--version"], ["neocli", "detect", "--help"], ["neocli", "detect", big, *detect],
                ["neocli", "detect", small, *detect]]
    for cmd in commands:
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for i in range(args.runs):
            for name in (list(trees) if i % 2 == 0 else list(trees)[::-1]):
                times[name].append(_once(cmd, trees[name]))
        shown = " ".join(cmd).replace(tmp + os.sep, "")
        for name, ts in times.items():
            print(f"{shown:<95} {name:>14}: wall {statistics.median(w for w, _ in ts):.3f} s, "
                  f"CPU {statistics.median(c for _, c in ts):.3f} s")
    for p in (big, small, out):
        if os.path.exists(p):
            os.remove(p)
    os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
