"""How far do ensembles of hierarchies mixed in log space get? (issue 14, item 7)

Run by hand (minutes; 1 thread, niced on a shared machine):

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_ensemble.py [--limit 60000]
        [--corpus FILE ...] [--json out.json]

A measurement, not a shipped model option: it answers whether the model options the
issue allows (ensembles of hierarchies mixed in log space, codec changes) close the
gap to bzip2 -9 within the time budget. For each corpus slice (the first ``--limit``
bytes; the last 10 % is the tail), every configuration is run online (each byte
scored before it is learned, learning always on), reporting bits/byte over the first
90 % ("online") and over the last 10 % ("tail", learning on: the analogue of the
quality benchmark's held-out-learning-on measure), and symbols per CPU second.

Members are training-default hierarchies (1 × 8×8×32, one 256-cell byte column,
down radius 4, ``ios.decoder.scale=4``), each with its own calibrated distribution
(``neocli.predictive``). A member may also see the previous ``lags`` bytes as an
extra input-only port (a codec change: ``IODesc((1, lags, 256), none)``) and differ
in seed and decoder learning rate, for diversity. The mix is geometric:
``q(y) ∝ Π_i p_i(y)^{w_i}``, the weights learned online by gradient descent on the
log loss (the gradient for ``w_i`` is ``E_q[log p_i] - log p_i(y)``).

In the same run and on the same slice: gzip -9 and bzip2 -9 (online: compressed
size of the first 90 %; tail: extra compressed size of the whole over the first 90 %).
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import neocli as neo  # noqa: E402
from neocli.codecs import BytesCodec  # noqa: E402
from neocli.predictive import Predictive  # noqa: E402
from neocli.presets import apply_params  # noqa: E402

DATASETS = os.path.join(os.path.dirname(HERE), "datasets")
CORPORA = ["pride_and_prejudice_vol1.txt", "python_stdlib.py.txt", "gpl-3.txt"]
CONFIGS = {
    "single (the defaults)": [{}],
    "single, 2 previous bytes as input": [{"lags": 2}],
    "2 members": [{"seed": 0}, {"lags": 2, "seed": 1}],
    "4 members": [{"seed": 0}, {"lags": 2, "seed": 1}, {"lags": 1, "seed": 2, "lr": 0.05}, {"lags": 4, "seed": 3}],
}
LR_MIX = 0.002


def member(m: dict) -> tuple:
    """(hierarchy, predictive, lags) of one member description."""
    lags = m.get("lags", 0)
    ios = [neo.IODesc((1, 1, 256), neo.prediction, num_dendrites_per_cell=4, up_radius=2, down_radius=4)]
    if lags:
        ios.append(neo.IODesc((1, lags, 256), neo.none, up_radius=2, down_radius=0))
    layers = [neo.LayerDesc((8, 8, 32), num_dendrites_per_cell=4, up_radius=2, recurrent_radius=0, down_radius=4)]
    neo.set_global_state(m.get("seed", 0))
    h = neo.Hierarchy(ios, layers)
    apply_params(h, {"ios.decoder.scale": 4.0, "ios.decoder.lr": m.get("lr", 0.1)})
    return h, Predictive(BytesCodec("byte")), lags


def run(members: list[dict], data: bytes) -> dict:
    """Online and tail bits/byte of the geometric mix of ``members`` over ``data``."""
    ms = [member(m) for m in members]
    hist = [[0] * lags for _, _, lags in ms]
    w = np.ones(len(ms)) / len(ms) if len(ms) > 1 else np.ones(1)
    cut = len(data) * 9 // 10
    sums, counts = [0.0, 0.0], [0, 0]
    t0 = time.process_time()
    for i, b in enumerate(data):
        if i:
            logs = np.empty((len(ms), 256))
            for j, (h, p, _) in enumerate(ms):
                acts = h.get_prediction_acts(0)
                logs[j] = np.log(np.maximum(p.distributions(acts)[0], 1e-300))
                p.score(acts, [b], learn=True)
            s = w @ logs
            s -= s.max()
            q = np.exp(s)
            q /= q.sum()
            part = int(i >= cut)
            sums[part] += -np.log2(q[b])
            counts[part] += 1
            if len(ms) > 1:
                w -= LR_MIX * (logs @ q - logs[:, b])
        for j, (h, _, lags) in enumerate(ms):
            h.step([[b]] + ([hist[j]] if lags else []), True)
            if lags:
                hist[j] = [b] + hist[j][:-1]
    secs = time.process_time() - t0
    return {"online": sums[0] / counts[0], "tail": sums[1] / counts[1], "symbols_per_s": len(data) / secs,
            "weights": [round(float(v), 3) for v in w]}


def compressor(fn, data: bytes) -> dict:
    """online/tail bits per byte of a compressor on the same split."""
    cut = len(data) * 9 // 10
    a, b = len(fn(data[:cut])), len(fn(data))
    return {"online": 8.0 * a / cut, "tail": 8.0 * (b - a) / (len(data) - cut)}


def main(argv=None) -> None:
    """Run every configuration on every corpus slice and print markdown tables."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", action="append")
    ap.add_argument("--limit", type=int, default=60000)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    neo.set_num_threads(1)
    out = {}
    for path in args.corpus or [os.path.join(DATASETS, c) for c in CORPORA]:
        data = open(path, "rb").read()[:args.limit]
        name = os.path.basename(path)
        res = {k: run(v, data) for k, v in CONFIGS.items()}
        res["gzip -9"] = compressor(lambda x: gzip.compress(x, 9, mtime=0), data)
        res["bzip2 -9"] = compressor(lambda x: bz2.compress(x, 9), data)
        out[name] = res
        print(f"\n### {name}, first {len(data):,} bytes\n")
        print("| model | online | tail (learning on) | symbols/s (CPU) |")
        print("|---|---:|---:|---:|")
        for k, r in res.items():
            sps = f"{r['symbols_per_s']:,.0f}" if "symbols_per_s" in r else ""
            print(f"| {k} | {r['online']:.3f} | {r['tail']:.3f} | {sps} |")
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
