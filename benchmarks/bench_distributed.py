"""Benchmark: scaling out on Dask (train-many, data-parallel training, sweeps).

Run by hand (never a test):
    nice -n 10 python benchmarks/bench_distributed.py [--part many,dp,sweep] [--workers 2]

* train-many: 4 files, serial in this process against a LocalCluster of
  ``--workers`` single-threaded processes (cluster start-up reported apart);
  every distributed model is checked byte-identical (weights, state) to its serial
  twin. Target: >= 1.8x with 2 workers on 2 cores.
* data-parallel: 40 kB of the bundled novel, K = 1, 2, 4 shards and several
  sync intervals, held-out bits/symbol on the next 10 kB, against sequential
  training and against one 20 kB shard alone; wall time on a LocalCluster of K
  workers.
* sweep: a 4-point grid, serial against the LocalCluster, rows checked equal.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import neocli as neo  # noqa: E402
from neocli import distributed as D  # noqa: E402
from neocli import training  # noqa: E402

NOVEL = (ROOT / "datasets" / "pride_and_prejudice_vol1.txt").read_bytes()


def _content(model: bytes) -> tuple[bytes, bytes]:
    h = neo.Hierarchy(buffer=model)
    return h.serialize_weights_to_buffer().tobytes(), h.serialize_state_to_buffer().tobytes()


def _opts(**arch) -> training.TrainOptions:
    return training.TrainOptions(architecture=training.Architecture(**arch))


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench_many(tmp: str, workers: int, size: int, repeats: int) -> list[str]:
    """train-many: serial against Dask on 4 files, alternating; returns Markdown lines."""
    files = []
    for i in range(4):
        p = os.path.join(tmp, f"part{i}.txt")
        Path(p).write_bytes(NOVEL[i * size:(i + 1) * size])
        files.append(p)
    opts = _opts()
    ts, td, same = [], [], True
    up, eng = _timed(lambda: D.DaskEngine(workers=workers))
    with eng:
        for _ in range(repeats):  # alternate, so both sides see the same load
            t, serial = _timed(lambda: D.train_many(files, opts))
            ts.append(t)
            t, dist = _timed(lambda: D.train_many(files, opts, eng))
            td.append(t)
            same &= all(a.ok and b.ok and _content(a.value) == _content(b.value) for a, b in zip(serial, dist))
    s, d = min(ts), min(td)
    return [
        f"train-many, 4 files x {size // 1000} kB, default architecture, {workers} workers "
        f"(best of {repeats} alternating runs; all runs: serial {_fmt(ts)} s, Dask {_fmt(td)} s):",
        "",
        "| run | wall s | speed-up |",
        "|---|---:|---:|",
        f"| serial (in-process) | {s:.1f} | 1.00x |",
        f"| Dask, {workers} workers (tasks) | {d:.1f} | {s / d:.2f}x |",
        f"| Dask, {workers} workers (+ {up:.1f} s cluster start) | {d + up:.1f} | {s / (d + up):.2f}x |",
        "",
        f"models byte-identical (weights, state) to the serial ones: {same}",
        "",
    ]


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in xs)


def _bits(model: bytes, codec, valid: str) -> float:
    m = training.TrainedModel(neo.Hierarchy(buffer=model), codec)
    return training.evaluate(m, [valid]).bits_per_symbol


def bench_dp(tmp: str, ks: list[int], syncs: list[int], layers: int) -> list[str]:
    """Data-parallel quality and speed; returns Markdown lines."""
    train, half, valid = (os.path.join(tmp, n) for n in ("train.txt", "half.txt", "valid.txt"))
    Path(train).write_bytes(NOVEL[:40000])
    Path(half).write_bytes(NOVEL[20000:40000])
    Path(valid).write_bytes(NOVEL[40000:50000])
    opts = _opts(layers=layers)
    codec = training.fit_codec([train], opts.codec)
    init = bytes(training.build_model(codec, opts).serialize_to_buffer())
    stream = D.encode_stream([train], codec)
    lines = [f"data-parallel, 40 kB train / 10 kB held out, {layers} layer(s) of the default size:", "",
             "| run | held-out bits/symbol | wall s | rounds | sync s (driver) |", "|---|---:|---:|---:|---:|"]
    t = time.perf_counter()
    seq = D.train_data_parallel(stream, init, 1, stream.steps)
    lines.append(f"| sequential, in-process | {_bits(seq.model, codec, valid):.3f} | {time.perf_counter() - t:.1f} | 1 | - |")
    t = time.perf_counter()
    alone = D.train_data_parallel(D.encode_stream([half], codec), init, 1, 20000)
    lines.append(f"| one 20 kB shard alone | {_bits(alone.model, codec, valid):.3f} | {time.perf_counter() - t:.1f} | 1 | - |")
    for k in ks:
        with D.DaskEngine(workers=k) as eng:
            for n in (syncs if k > 1 else [5000]):
                r = D.train_data_parallel(stream, init, k, n, engine=eng)
                lines.append(f"| K={k}, sync every {n}, Dask {k} workers | {_bits(r.model, codec, valid):.3f} | "
                             f"{r.seconds:.1f} | {r.rounds} | {r.sync_seconds:.2f} |")
                if k == 1:
                    lines[-1] += " identical to sequential: " + str(_content(r.model) == _content(seq.model))
    return lines + [""]


def bench_sweep(tmp: str, workers: int, repeats: int) -> list[str]:
    """A 4-point sweep, serial against Dask, alternating; returns Markdown lines."""
    train, valid = os.path.join(tmp, "strain.txt"), os.path.join(tmp, "svalid.txt")
    Path(train).write_bytes(NOVEL[:10000])
    Path(valid).write_bytes(NOVEL[20000:25000])
    grid = {"layers": ["1", "2"], "hidden": ["4x4x16", "5x5x32"]}
    points = [(row, D.with_options(training.TrainOptions(), row)) for row in D.expand_grid(grid)]
    ts, td, same = [], [], True
    up, eng = _timed(lambda: D.DaskEngine(workers=workers))
    with eng:
        for _ in range(repeats):
            t, serial = _timed(lambda: D.sweep([train], [valid], points))
            ts.append(t)
            t, dist = _timed(lambda: D.sweep([train], [valid], points, eng))
            td.append(t)
            same &= [(r["options"], r["bits_per_symbol"]) for r in serial] == \
                [(r["options"], r["bits_per_symbol"]) for r in dist]
    s, d, best = min(ts), min(td), serial[0]
    return [f"sweep, grid layers=1,2 x hidden=4x4x16,5x5x32 (10 kB train, 5 kB held out), {workers} workers "
            f"(best of {repeats} alternating runs; all runs: serial {_fmt(ts)} s, Dask {_fmt(td)} s):", "",
            "| run | wall s | speed-up |", "|---|---:|---:|",
            f"| serial | {s:.1f} | 1.00x |", f"| Dask (tasks) | {d:.1f} | {s / d:.2f}x |",
            f"| Dask (+ {up:.1f} s cluster start) | {d + up:.1f} | {s / (d + up):.2f}x |", "",
            f"rows equal to the serial sweep: {same}; best {best['options']} at {best['bits_per_symbol']:.3f} bits/symbol", ""]


def main() -> None:
    """Run the parts asked for and print Markdown."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="many,dp,sweep")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=8000, help="bytes per train-many file")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ks", default="1,2,4")
    ap.add_argument("--syncs", default="1000,2000,5000,10000")
    ap.add_argument("--layers", type=int, default=1)
    args = ap.parse_args()
    neo.set_num_threads(1)
    parts = args.part.split(",")
    load = os.getloadavg()[0]
    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load:.1f} on "
          f"{os.cpu_count()} cores (other jobs share the machine).\n")
    with tempfile.TemporaryDirectory() as tmp:
        if "many" in parts:
            print("\n".join(bench_many(tmp, args.workers, args.size, args.repeats)), flush=True)
        if "dp" in parts:
            print("\n".join(bench_dp(tmp, [int(k) for k in args.ks.split(",")],
                                     [int(s) for s in args.syncs.split(",")], args.layers)), flush=True)
        if "sweep" in parts:
            print("\n".join(bench_sweep(tmp, args.workers, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
