"""Codec reading speed on text without whitespace (issue 13, item 14).

The ``words`` codec used to rescan and re-concatenate the word cut at each 64 KiB
chunk boundary, so a long run without whitespace (CJK text) was quadratic. This
prints the time per million characters for 1, 2 and 4 M characters: a flat
column means linear. ``chars`` is timed on the same data for comparison.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_codecs.py
"""
from __future__ import annotations

import io
import time

from neocli.codecs import CharsCodec, WordsCodec


def run(codec_cls, n_chars: int) -> float:
    data = ("漢字かな" * (n_chars // 4)).encode()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in codec_cls().symbols(io.BytesIO(data)):
            pass
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    print(f"{'codec':6} {'M chars':>7} {'seconds':>8} {'s per M chars':>14}")
    for cls in (WordsCodec, CharsCodec):
        per = []
        for m in (1, 2, 4):
            dt = run(cls, m * 1_000_000)
            per.append(dt / m)
            print(f"{cls.kind:6} {m:7d} {dt:8.3f} {dt / m:14.3f}")
        print(f"{cls.kind:6} ratio of s/M at 4 M vs 1 M: {per[-1] / per[0]:.2f} (1.0 = linear, 4.0 = quadratic)")


if __name__ == "__main__":
    main()
