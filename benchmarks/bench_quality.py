"""Learning quality in bits per byte against the compressors people use instead.

Run by hand (takes minutes; 1 thread, run it niced on a shared machine):

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_quality.py [--json out.json]
        [--corpus FILE ...] [--limit BYTES] [--config '{"hidden": "8x8x32", ...}']

For every corpus, the last 10 % is held out (never tuned on) and the first 90 % is
the training part. Measured for neocli (with the training defaults unless
``--config`` says otherwise):

* online: bits/byte over one pass over the training part, each byte scored before
  the model learns it (the first epoch; later epochs are not scored);
* held-out, learning off: the trained model continues from where training ended
  and scores the held-out part without learning;
* held-out, learning on: the same, learning while it scores (an online learner's
  honest measure, and what an adaptive compressor does);

each with the calibrated distribution (``neocli.predictive``) and with the raw
per-column rule floored at 1e-6 (``raw``), plus symbols/s and wall time. In the same
run and on the same bytes: gzip -9, bzip2 -9, xz -9e, zstd -19 and PPMd order 6.
A compressor's online figure is its compressed size of the training part; its
held-out figure is the extra compressed size of train+test over train, per test
byte (it keeps adapting, like learning on).
"""
from __future__ import annotations

import argparse
import bz2
import copy
import gzip
import json
import lzma
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import neocli as neo  # noqa: E402
from neocli.codecs import BytesCodec  # noqa: E402
from neocli.predictive import Predictive  # noqa: E402

DATASETS = os.path.join(os.path.dirname(HERE), "datasets")
CORPORA = ["pride_and_prejudice_vol1.txt", "kjv_genesis.txt", "python_stdlib.py.txt", "dpkg.log", "gpl-3.txt"]


# ----------------------------------------------------------------------------- compressors

def compressors() -> dict[str, object]:
    """name -> bytes -> compressed bytes (the optional ones only when installed)."""
    out = {
        "gzip -9": lambda b: gzip.compress(b, 9, mtime=0),
        "bzip2 -9": lambda b: bz2.compress(b, 9),
        "xz -9e": lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME),
    }
    try:
        import zstandard
        out["zstd -19"] = lambda b: zstandard.ZstdCompressor(level=19).compress(b)
    except ImportError:
        print("note: zstandard not installed (pip install neocli[bench]): zstd skipped", file=sys.stderr)
    try:
        import pyppmd
        out["PPMd o6"] = lambda b: pyppmd.compress(b, max_order=6, mem_size=64 << 20, variant="H")
    except ImportError:
        print("note: pyppmd not installed (pip install neocli[bench]): PPMd skipped", file=sys.stderr)
    return out


def compressor_bits(fn, train: bytes, test: bytes) -> dict[str, float]:
    """online (compressed train) and held-out (extra bits of train+test) in bits/byte."""
    t0 = time.perf_counter()
    ct = len(fn(train))
    cb = len(fn(train + test))
    return {"online": 8.0 * ct / len(train), "heldout_on": 8.0 * (cb - ct) / len(test),
            "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- neocli

def build(cfg: dict, codec) -> neo.Hierarchy:
    """A seeded hierarchy for ``cfg`` (keys as in ``neocli.presets.DEFAULTS``)."""
    from neocli.presets import build_hierarchy
    return build_hierarchy(codec, cfg)


def run_pass(h, codec, pred, data: bytes, learn: bool, score: bool, calib_learn: bool | None = None):
    """Step over ``data``; return (calibrated bits, raw bits, scored, CPU seconds)."""
    from neocli.codecs import FLOOR
    calib_learn = learn if calib_learn is None else calib_learn
    bits = raw = 0.0
    n = 0
    t0 = time.process_time()
    enc = [codec.encode(b) for b in range(256)]
    for b in data:
        cis = enc[b]
        if score:
            raw += h._score(0, cis, FLOOR)[1]
            bits += pred.score(h.get_prediction_acts(0), cis, learn=calib_learn)
            n += 1
        elif calib_learn:
            pred.score(h.get_prediction_acts(0), cis, learn=True)
        h.step([cis], learn)
    return bits, raw, n, time.process_time() - t0


def neocli_measure(cfg: dict, train: bytes, test: bytes, heldout: bool = True) -> dict:
    """The three measures (calibrated and raw), symbols/s and wall time for ``cfg``."""
    from neocli.presets import resolve
    cfg = resolve(cfg)
    codec = BytesCodec(cfg["byte_layout"])
    t0 = time.perf_counter()
    h = build(cfg, codec)
    pred = Predictive(codec)
    pred.observe(codec.encode(train[0]))
    h.step([codec.encode(train[0])], True)
    bits, raw, n, secs = run_pass(h, codec, pred, train[1:], True, True)
    # CPU time, not wall time: on a shared machine wall time measures the neighbours.
    out = {"online": bits / n, "online_raw": raw / n, "symbols_per_s": len(train) / secs}
    for _ in range(cfg["epochs"] - 1):
        h.clear_state()
        run_pass(h, codec, pred, train, True, False)
    out["train_seconds"] = time.perf_counter() - t0
    if heldout:
        for mode, learn in (("heldout_off", False), ("heldout_on", True)):
            hh, pp = copy.deepcopy(h), copy.deepcopy(pred)
            b, r, m, _ = run_pass(hh, codec, pp, test, learn, True)
            out[mode], out[mode + "_raw"] = b / m, r / m
    out["wall_seconds"] = time.perf_counter() - t0
    return out


def split(data: bytes) -> tuple[bytes, bytes]:
    """The training part (first 90 %) and the held-out part (last 10 %)."""
    cut = len(data) * 9 // 10
    return data[:cut], data[cut:]


def main(argv=None) -> None:
    """Measure every corpus and print a markdown table (and optionally JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", action="append", help="corpus file (default: the bundled ones)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first BYTES of each corpus")
    ap.add_argument("--config", default="{}", help="JSON overrides of the training defaults")
    ap.add_argument("--json", help="write all numbers to this JSON file")
    args = ap.parse_args(argv)
    neo.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cfg = json.loads(args.config)
    paths = args.corpus or [os.path.join(DATASETS, c) for c in CORPORA]
    comps = compressors()
    results = {}
    for path in paths:
        data = open(path, "rb").read()
        if args.limit:
            data = data[:args.limit]
        train, test = split(data)
        name = os.path.basename(path)
        r = {"bytes": len(data), "neocli": neocli_measure(cfg, train, test)}
        for cname, fn in comps.items():
            r[cname] = compressor_bits(fn, train, test)
        results[name] = r
        print_table(name, r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": cfg, "results": results}, f, indent=2)


def print_table(name: str, r: dict) -> None:
    """One corpus as a markdown table."""
    n = r["neocli"]
    print(f"\n### {name} ({r['bytes']:,} bytes; train {r['bytes'] * 9 // 10:,}, held out the rest)\n")
    print("| model | online | held-out, learning off | held-out, learning on | symbols/s | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| neocli defaults, calibrated | {n['online']:.3f} | {n['heldout_off']:.3f} | {n['heldout_on']:.3f} "
          f"| {n['symbols_per_s']:,.0f} | {n['wall_seconds']:.0f} |")
    print(f"| neocli defaults, raw (1e-6 floor per column) | {n['online_raw']:.3f} | {n['heldout_off_raw']:.3f} "
          f"| {n['heldout_on_raw']:.3f} | | |")
    for k, v in r.items():
        if isinstance(v, dict) and k != "neocli":
            print(f"| {k} | {v['online']:.3f} | | {v['heldout_on']:.3f} | | {v['seconds']:.1f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
