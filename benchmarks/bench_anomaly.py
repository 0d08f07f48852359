"""Anomaly-detection benchmark: neocli's Detector against a rolling z-score and river's HalfSpaceTrees.

Data: datasets/anomaly/*.csv (timestamp,value,label), made by ``--make-data`` from
the clean real series in datasets/anomaly/source/ (sources and licences in
datasets/README.md): each series gets anomalies injected (spike, level shift,
variance change, frequency change, flat-line, slow drift), seeded; the water-flow
series keeps its own four real, documented anomalies instead. ``label`` is 1
inside each anomaly's window. A second group, the NAB-kind streams
(datasets/anomaly/nab_*.csv), is made from noisy, spiky, quantised real metrics (this
build VM's own CPU, context switches, interrupts, processes, disk writes and memory
recorded by tools/record_metrics.py; daily trading volume and range; absolute daily
returns) with the anomalies real systems show (level shift, burst of spikes, failure
ramp, pattern change, drop to zero, spike), plus one clean, unlabelled file per source
where any alert is a false positive. Whole recordings are held out in both groups
(see TUNE and NAB_TUNE).

Metric (the shape of the NAB "standard" profile, written from its description):
a window of 10% of the file length divided by the number of anomalies is centred
on each anomaly's onset. Detections are the rows whose score reaches the
threshold; the first 15% of each file is probationary (detections ignored).
In each window only the earliest detection counts, worth ``sigma(y)`` where
``sigma(y) = 2 / (1 + exp(5 y)) - 1`` and ``y`` is the detection's position
relative to the window's end in window lengths (-1 = window start: ~0.987,
0 = window end: 0), so early detection earns more. A window with no detection
costs ``A_FN = 1``. A detection outside every window costs ``A_FP = 0.11``
times ``-sigma(y)`` with ``y`` its distance past the previous window's end in
window lengths (-1 if no window precedes it): false positives right after a
window cost little, others the full 0.11. Per detector, the raw total over all
files is normalised: ``100 * (S - S_null) / (S_perfect - S_null)``, where the
null detector detects nothing and the perfect one detects every window at its
start. Per detector and group (injected, NAB-kind, all), a threshold is chosen on the
tuning files and applied unchanged to the held-out files; the scores at the fixed
alert level 0.5 (neocli's) and with the held-out files' own best threshold (what a
benchmark that optimises the threshold over its whole corpus reports) are printed too.

    python benchmarks/bench_anomaly.py --make-sources     # NAB-kind sources from matplotlib and river
    python benchmarks/bench_anomaly.py --make-data        # regenerate datasets/anomaly/
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_anomaly.py
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_anomaly.py --speed   # the 365,000-row CLI run
    OMP_NUM_THREADS=1 python benchmarks/bench_anomaly.py --nab DIR   # a NAB checkout (not bundled, AGPL)

With ``--nab DIR`` the same metric (probation capped at 750 rows, as NAB does) scores
the files of a Numenta Anomaly Benchmark checkout against its label windows, split into
tuning files and the held-out ones named in NAB_HELD_OUT (``--per-file`` prints each
file's tp/fn/fp at 0.5).
"""
from __future__ import annotations

import argparse
import csv
import functools
import glob
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "datasets", "anomaly")
sys.path.insert(0, ROOT)

# Whole recordings are held out, so the tuning never saw their shape nor their days: the
# S&P 500 returns (one table of stocks over the same days) are all held out, with the
# NAB-kind group's stock series.
TUNE = ["seattle_temp_hourly", "co2_weekly", "water_flow_hourly", "sunspots_yearly",
        "airline_passengers_monthly", "elec_equip_monthly"]
HELD_OUT = ["sf_temp_hourly", "seattle_tempmax_daily", "elnino_sst_monthly",
            "sp500_aapl_daily_return", "sp500_xom_daily_return"]
# The order --make-data made the files in (its random draws follow it).
MADE = ["seattle_temp_hourly", "co2_weekly", "sp500_aapl_daily_return", "water_flow_hourly",
        "sunspots_yearly", "airline_passengers_monthly", "sf_temp_hourly", "seattle_tempmax_daily",
        "elnino_sst_monthly", "elec_equip_monthly", "sp500_xom_daily_return"]
KINDS = ["spike", "level_shift", "variance", "frequency", "flatline", "drift"]
WATER_FLOW_REAL = [96, 212, 329, 875]  # river's WaterFlow docstring: three low-flow moments, one peak

# The NAB-kind set: noisy, spiky, often quantised real metrics (this VM's own metrics
# recorded by tools/record_metrics.py, daily trading volume and range, absolute daily
# returns), restamped where needed and given the anomalies real systems show. Each
# source makes two files with anomalies and one clean file (no label: any alert is a
# false positive). Recordings are held out whole: the six VM metrics are columns of one
# recording (same times, same load spikes), so all tune; Google's volume and range are
# the same stock on the same days, and the S&P 500 returns one table, so all are held out.
NAB_TUNE = ["vm_cpu_busy", "vm_ctx_switches", "vm_disk_written", "vm_mem_available",
            "vm_interrupts", "vm_procs_running"]
NAB_HELD = ["goog_volume_daily", "goog_range_daily", "sp500_amzn_abs_return",
            "sp500_jpm_abs_return", "sp500_intc_abs_return"]
NAB_MADE = ["vm_cpu_busy", "vm_ctx_switches", "vm_disk_written", "goog_volume_daily",
            "sp500_amzn_abs_return", "vm_mem_available", "vm_interrupts", "vm_procs_running",
            "goog_range_daily", "sp500_jpm_abs_return", "sp500_intc_abs_return"]
NAB_KINDS = ["shift", "burst", "ramp", "pattern", "zero", "spike"]
VM_COLUMNS = {"vm_cpu_busy": "cpu_busy_pct", "vm_ctx_switches": "ctx_switches_per_s",
              "vm_interrupts": "interrupts_per_s", "vm_procs_running": "procs_running",
              "vm_disk_written": "disk_sectors_written_per_s", "vm_mem_available": "mem_available_mib"}


# ---------------------------------------------------------------------------- data
def read_series(path):
    """(timestamps, values, labels or None) of a CSV with a header."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ts = [r["timestamp"] for r in rows]
    v = np.array([float(r["value"]) for r in rows])
    lab = np.array([int(r["label"]) for r in rows]) if rows and "label" in rows[0] else None
    return ts, v, lab


def inject(v, kind, at, rng):
    """A copy of ``v`` with one anomaly of ``kind`` starting at row ``at``."""
    x = v.copy()
    n = len(x)
    sd = float(np.std(v))
    dsd = float(np.std(np.diff(v))) or sd
    size = max(4 * dsd, 0.4 * sd) * rng.uniform(1.0, 1.5)
    sign = rng.choice([-1.0, 1.0])
    seg = int(min(max(20, 0.03 * n), 400))
    end = min(n, at + seg)
    if kind == "spike":
        x[at] += sign * size * 1.5
    elif kind == "level_shift":
        x[at:] += sign * size
    elif kind == "variance":
        x[at:end] += rng.normal(0.0, 2.5 * dsd + 0.2 * sd, end - at)
    elif kind == "frequency":
        # The segment plays the series at twice its speed.
        src = at + 2 * np.arange(end - at)
        x[at:end] = v[np.minimum(src, n - 1)]
    elif kind == "flatline":
        x[at:end] = v[at]
    elif kind == "drift":
        ramp = np.minimum(np.arange(n - at) / (3.0 * seg), 1.0)
        x[at:] += sign * 1.5 * size * ramp
    return x


def inject_nab(v, kind, at, rng):
    """A copy of ``v`` with one anomaly of a real-system kind starting at row ``at``:
    ``shift`` (a sustained level shift), ``burst`` (a burst of spikes), ``ramp`` (a
    failure ramp up, then a fall back), ``pattern`` (the noise grows threefold), ``zero``
    (a drop to zero: an outage) or ``spike`` (one value well beyond the series' range).
    Sizes are in units of the series' robust span (1st to 99th percentile), so a noisy
    metric's natural spikes stay as they are and are not labelled."""
    x = v.copy()
    n = len(x)
    lo, med, hi = (float(a) for a in np.percentile(v, [1, 50, 99]))
    span = (hi - lo) or (float(np.max(v) - np.min(v))) or 1.0
    up = (hi - med) >= (med - lo) * 0.5 or kind in ("spike", "burst", "ramp")
    sign = 1.0 if up else -1.0
    seg = int(min(max(20, rng.uniform(0.02, 0.05) * n), 600))
    end = min(n, at + seg)
    floor = 0.0 if float(np.min(v)) >= 0.0 else -np.inf
    if kind == "shift":
        d = rng.uniform(0.35, 0.7) * span
        if med - d < lo and float(np.min(v)) >= 0.0:
            sign = 1.0
        x[at:] += sign * d
    elif kind == "burst":
        k = int(rng.integers(4, 10))
        where = at + np.sort(rng.choice(max(end - at, k), k, replace=False))
        where[0] = at
        x[where[where < n]] = hi + rng.uniform(0.3, 1.0, int(np.sum(where < n))) * span
    elif kind == "ramp":
        top = hi + rng.uniform(0.2, 0.6) * span
        r = np.linspace(0.0, 1.0, end - at)
        x[at:end] = x[at:end] * (1.0 - r) + top * r
    elif kind == "pattern":
        x[at:end] = med + 3.0 * (x[at:end] - med)
    elif kind == "zero":
        x[at:end] = 0.0 if float(np.min(v)) >= 0.0 else lo - 0.5 * span
    elif kind == "spike":
        x[at] = max(float(np.max(v)), hi) + rng.uniform(0.3, 0.8) * span
    return np.maximum(x, floor)


def windows_from_onsets(n, onsets):
    """NAB-style windows: total 10% of the file, centred on each onset."""
    w = max(2, int(0.1 * n / len(onsets)))
    return [(max(0, a - w // 2), min(n - 1, a + w // 2)) for a in onsets]


def make_data():
    """Write datasets/anomaly/*.csv from datasets/anomaly/source/ (seeded, reproducible)."""
    for old in glob.glob(os.path.join(DATA, "*.csv")):
        os.remove(old)
    rng = np.random.default_rng(20261203)
    k = 0
    for name in MADE:
        ts, v, _ = read_series(os.path.join(DATA, "source", name + ".csv"))
        n = len(v)
        if name == "water_flow_hourly":
            _write(os.path.join(DATA, f"{name}_real.csv"), ts, v, windows_from_onsets(n, WATER_FLOW_REAL))
            continue
        variants = 2 if n > 5000 else 3
        per = 3 if n > 5000 else (2 if n > 1000 else 1)
        for j in range(variants):
            x = v
            lo = int(0.2 * n)
            slots = np.linspace(lo, n - max(25, int(0.05 * n)), per + 1).astype(int)
            onsets = []
            for s in range(per):
                kind = KINDS[k % len(KINDS)]
                k += 1
                at = int(rng.integers(slots[s], max(slots[s] + 1, slots[s + 1] - int(0.05 * n))))
                x = inject(x, kind, at, rng)
                onsets.append(at)
            kinds = "-".join(KINDS[(k - per + i) % len(KINDS)] for i in range(per))
            _write(os.path.join(DATA, f"{name}_v{j}_{kinds}.csv"), ts, x, windows_from_onsets(n, onsets))
    make_nab_data()
    for p in sorted(glob.glob(os.path.join(DATA, "*.csv"))):
        print(os.path.basename(p), os.path.getsize(p))


def nab_source(name):
    """(timestamps, values) of a NAB-kind source (see datasets/README.md)."""
    if name in VM_COLUMNS:
        with open(os.path.join(DATA, "source", "vm_metrics.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        v = np.array([float(r[VM_COLUMNS[name]]) for r in rows])
        # Recorded every 0.5 s; written at 5-minute steps, as cloud metrics are.
        t0 = np.datetime64("2026-11-02T00:00:00")
        ts = [str(t0 + np.timedelta64(300 * i, "s")).replace("T", " ") for i in range(len(v))]
        return ts, v
    ts, v, _ = read_series(os.path.join(DATA, "source", name + ".csv"))
    return ts, v


def make_nab_sources():
    """Write the NAB-kind source files that come from installed packages (the VM metrics
    were recorded once with tools/record_metrics.py and are kept as recorded)."""
    import gzip

    import matplotlib
    import river

    src = os.path.join(DATA, "source")
    with gzip.open(os.path.join(os.path.dirname(river.__file__), "datasets", "sp500.csv.gz"), "rt") as f:
        rows = list(csv.DictReader(f))
    for tick in ("AMZN", "JPM", "INTC"):
        with open(os.path.join(src, f"sp500_{tick.lower()}_abs_return.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["timestamp", "value"])
            for r in rows:
                w.writerow([r["date"] + " 00:00:00", f"{abs(float(r[tick])):.6g}"])
    d = np.load(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "goog.npz"))["price_data"]
    for name, col in (("goog_volume_daily", d["volume"] / 1e6), ("goog_range_daily", 100.0 * (d["high"] - d["low"]) / d["close"])):
        with open(os.path.join(src, name + ".csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["timestamp", "value"])
            for t, a in zip(d["date"], col):
                w.writerow([f"{t} 00:00:00", f"{a:.6g}"])


def make_nab_data():
    """The NAB-kind files: per source two variants with one to three anomalies, one clean."""
    rng = np.random.default_rng(20261204)
    for name in NAB_MADE:
        ts, v = nab_source(name)
        n = len(v)
        per_list = [1, 2] if n < 2000 else [2, 3]
        order = list(rng.permutation(len(NAB_KINDS)))  # each source gets distinct kinds
        for j, per in enumerate(per_list):
            x = v
            # Anomalies after the probationary 15%, one per slot, none in the last 5%.
            slots = np.linspace(int(0.2 * n), int(0.95 * n), per + 1).astype(int)
            onsets, kinds = [], []
            for s_ in range(per):
                kind = NAB_KINDS[order.pop(0)]
                at = int(rng.integers(slots[s_], max(slots[s_] + 1, slots[s_ + 1] - int(0.06 * n))))
                x = inject_nab(x, kind, at, rng)
                onsets.append(at)
                kinds.append(kind)
            _write(os.path.join(DATA, f"nab_{name}_v{j}_{'-'.join(kinds)}.csv"), ts, x,
                   windows_from_onsets(n, onsets))
        _write(os.path.join(DATA, f"nab_{name}_clean.csv"), ts, v, [])


def _write(path, ts, x, windows):
    lab = np.zeros(len(x), dtype=int)
    for a, b in windows:
        lab[a:b + 1] = 1
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["timestamp", "value", "label"])
        for t, a, l in zip(ts, x, lab):
            w.writerow([t, f"{a:.6g}", l])


def files(split, group="injected"):
    """The files of one split (``tune`` or ``held``) of one group (``injected`` or ``nab``)."""
    if group == "nab":
        names = ["nab_" + n for n in (NAB_TUNE if split == "tune" else NAB_HELD)]
    else:
        names = TUNE if split == "tune" else HELD_OUT
    return sorted(p for p in glob.glob(os.path.join(DATA, "*.csv"))
                  if any(os.path.basename(p).startswith(n + "_") for n in names))


# ---------------------------------------------------------------------------- metric
A_TP, A_FP, A_FN = 1.0, 0.11, 1.0


def _sigma(y):
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def label_windows(lab):
    """Contiguous runs of 1 in ``lab`` as (start, end) inclusive."""
    out, start = [], None
    for i, l in enumerate(lab):
        if l and start is None:
            start = i
        if not l and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(lab) - 1))
    return out


def file_score(scores, lab, threshold, probation_cap=None):
    """(raw score, null score, perfect score, tp, fn, fp) of one file."""
    n = len(scores)
    wins = label_windows(lab)
    probation = int(0.15 * n)
    if probation_cap is not None:  # NAB caps the probationary period at 15 % of 5,000 rows
        probation = min(probation, probation_cap)
    det = np.flatnonzero(np.asarray(scores) >= threshold)
    det = det[det >= probation]
    s, tp, fp = 0.0, 0, 0
    hit = [False] * len(wins)
    for i in det:
        inside = None
        prev_end = None
        for w, (a, b) in enumerate(wins):
            if a <= i <= b:
                inside = w
                break
            if b < i:
                prev_end = (a, b)
        if inside is not None:
            if not hit[inside]:
                a, b = wins[inside]
                y = (i - b) / max(b - a + 1, 1)
                s += A_TP * _sigma(y)
                hit[inside] = True
                tp += 1
        else:
            fp += 1
            if prev_end is None:
                s -= A_FP
            else:
                a, b = prev_end
                y = (i - b) / max(b - a + 1, 1)
                s += A_FP * _sigma(y)
    fn = hit.count(False)
    s -= A_FN * fn
    null = -A_FN * len(wins)
    perfect = A_TP * _sigma(-1.0) * len(wins)
    return s, null, perfect, tp, fn, fp


def corpus_score(results, threshold, probation_cap=None):
    """Normalised score (0 = detect nothing, 100 = perfect) and tp/fn/fp over files."""
    S = N = P = 0.0
    tp = fn = fp = 0
    for scores, lab in results:
        s, nl, pf, a, b, c = file_score(scores, lab, threshold, probation_cap)
        S, N, P = S + s, N + nl, P + pf
        tp, fn, fp = tp + a, fn + b, fp + c
    return 100.0 * (S - N) / (P - N), tp, fn, fp


def best_threshold(results, probation_cap=None):
    """The threshold maximising the corpus score (searched over score quantiles)."""
    allv = np.concatenate([np.asarray(s) for s, _ in results])
    cands = np.unique(np.quantile(allv, np.linspace(0.9, 1.0, 201)))
    cands = np.concatenate([cands, [0.5]])
    best = max(cands, key=lambda t: corpus_score(results, t, probation_cap)[0])
    return float(best)


# ---------------------------------------------------------------------------- NAB layout
# NAB (Numenta Anomaly Benchmark) caps its probationary period at 15 % of 5,000 rows.
NAB_PROBATION_CAP = 750
# With --nab, the files whose names contain one of these are held out (never tuned on):
# a fixed choice, made before any run, that takes part of every kind of source.
NAB_HELD_OUT = ("elb_request_count", "iio_us-east-1", "nyc_taxi", "art_load_balancer",
                "TravelTime_451", "exchange-2_cpc", "rogue_agent_key_updown", "speed_t4013",
                "Twitter_volume_AMZN", "ec2_disk_write", "machine_temperature", "art_daily_flatmiddle")


def _nab_time(text):
    return np.datetime64(text.strip().replace(" ", "T"))


def nab_corpus(root):
    """[(name, path, labels)] of a NAB checkout's data files that have label windows.

    ``root`` holds ``data/<category>/<file>.csv`` (timestamp,value) and
    ``labels/combined_windows.json`` (file -> [[start, end], ...] timestamps). NAB is
    AGPL-licensed data and is not bundled: point this at your own checkout.
    """
    import json

    with open(os.path.join(root, "labels", "combined_windows.json")) as f:
        windows = json.load(f)
    out = []
    for name, wins in sorted(windows.items()):
        path = os.path.join(root, "data", name)
        if not os.path.exists(path):
            continue
        ts, _, _ = read_series(path)
        t = np.array([_nab_time(x) for x in ts])
        lab = np.zeros(len(ts), dtype=int)
        for a, b in wins:
            lab[(t >= _nab_time(a)) & (t <= _nab_time(b))] = 1
        out.append((name, path, lab))
    return out


def _run_one(args):
    runner, path = args
    t0 = time.process_time()
    s = runner(path)
    return s, time.process_time() - t0


def nab_main(root, dets, jobs, per_file):
    """Score each detector on a NAB checkout: all files, the tuning part and the held-out part."""
    from multiprocessing import Pool

    corpus = nab_corpus(root)
    if not corpus:
        raise SystemExit(f"no labelled data files under {root}")
    held = [any(h in name for h in NAB_HELD_OUT) for name, _, _ in corpus]
    rows = sum(len(lab) for _, _, lab in corpus)
    print(f"NAB checkout {root}: {len(corpus)} files ({held.count(False)} tuning, {held.count(True)} held out), "
          f"{rows} rows; probation 15 % capped at {NAB_PROBATION_CAP} rows")
    cap = NAB_PROBATION_CAP
    print(f"{'detector':8} {'part':5} {'thr':>7} {'score':>6} {'@.5':>6} {'@tune thr':>9}  "
          f"{'tp/fn/fp @thr':>14} {'tp/fn/fp @.5':>13}  rows/s(cpu)")
    for dname, run in dets.items():
        with Pool(jobs) as pool:
            got = pool.map(_run_one, [(run, path) for _, path, _ in corpus], chunksize=1)
        cpu = sum(c for _, c in got)
        res = [(s, lab) for (s, _), (_, _, lab) in zip(got, corpus)]
        for (name, _, lab), (s, _) in zip(corpus, got):
            if len(s) != len(lab):  # a skipped row would shift every later score against the labels
                raise SystemExit(f"{dname}: {len(s)} scores for the {len(lab)} rows of {name}")
        parts = {"all": res, "tune": [r for r, h in zip(res, held) if not h],
                 "held": [r for r, h in zip(res, held) if h]}
        thr_tune = best_threshold(parts["tune"], cap) if parts["tune"] else 0.5
        for part, rs in parts.items():
            if not rs:
                continue
            thr = best_threshold(rs, cap)
            sc, a1, b1, f1 = corpus_score(rs, thr, cap)
            s5, a2, b2, f2 = corpus_score(rs, 0.5, cap)
            st = corpus_score(rs, thr_tune, cap)[0]
            print(f"{dname:8} {part:5} {thr:7.4f} {sc:6.1f} {s5:6.1f} {st:9.1f}  "
                  f"{a1:4d}/{b1:3d}/{f1:5d} {a2:4d}/{b2:3d}/{f2:5d}"
                  + (f"  {rows / cpu:8.0f}" if part == "all" else ""), flush=True)
        if per_file:
            for (name, _, lab), r, h in zip(corpus, res, held):
                raw, null, _, a, b, f = file_score(r[0], r[1], 0.5, cap)
                print(f"    {'H' if h else 'T'} {name:58} {len(lab):6d} rows  @.5 raw {raw:6.2f} "
                      f"(null {null:4.1f})  tp/fn/fp {a}/{b}/{f}")


# ---------------------------------------------------------------------------- detectors
def run_neocli(path, opts=None, calendar=True):
    from neocli.streaming import DetectRun, Detector, DetectorOptions, csv_rows, scan_ranges

    o = DetectorOptions(**{**(opts or {}), "calendar": calendar})
    with open(path, newline="") as f:
        rng = scan_ranges(f, ["value"], "timestamp")
    det = Detector(["value"], rng, o, seed=0)
    out = []
    with open(path, newline="") as f:
        for _, t, cells in csv_rows(f, ["value"], "timestamp"):
            out.append(det.update([float(cells[0])], t).anomaly_score)
    return out


def run_zscore(path, window=100):
    """Windowed Gaussian: |x - mean| / sd over the trailing window, mapped to 1 - 2 Q(z)."""
    _, v, _ = read_series(path)
    out = []
    for i in range(len(v)):
        w = v[max(0, i - window):i]
        if len(w) < 10:
            out.append(0.0)
            continue
        sd = w.std() or 1e-9
        z = abs(v[i] - w.mean()) / sd
        out.append(1.0 - math.erfc(z / math.sqrt(2.0)))
    return out


def run_hst(path):
    """river's HalfSpaceTrees on the min-max-scaled value and its last 3 predecessors."""
    from river import anomaly, preprocessing

    _, v, _ = read_series(path)
    scaler = preprocessing.MinMaxScaler()
    model = anomaly.HalfSpaceTrees(n_trees=25, height=8, window_size=250, seed=42)
    out, hist = [], [v[0]] * 4
    for a in v:
        hist = hist[1:] + [a]
        x = {f"v{k}": hist[k] for k in range(4)}
        scaler.learn_one(x)
        xs = scaler.transform_one(x)
        out.append(model.score_one(xs))
        model.learn_one(xs)
    return out


def evaluate(name, runner, split_files, threshold=None):
    t0 = time.process_time()
    results = []
    rows = 0
    for p in split_files:
        _, _, lab = read_series(p)
        s = runner(p)
        assert len(s) == len(lab)
        results.append((s, lab))
        rows += len(lab)
    cpu = time.process_time() - t0
    return results, rows, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-data", action="store_true")
    ap.add_argument("--make-sources", action="store_true", help="write the NAB-kind sources taken from packages")
    ap.add_argument("--speed", action="store_true", help="time `neocli detect` on a 365,000-row corpus")
    ap.add_argument("--no-hst", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="detector option KEY=VALUE (tuning)")
    ap.add_argument("--nab", metavar="DIR", help="score a NAB checkout instead (DIR/data, DIR/labels); not bundled")
    ap.add_argument("--jobs", type=int, default=2, help="processes for --nab (one file each)")
    ap.add_argument("--per-file", action="store_true", help="with --nab: each file's score at 0.5")
    args = ap.parse_args()
    if args.make_sources:
        return make_nab_sources()
    if args.make_data:
        return make_data()
    if args.speed:
        return speed()
    opts = {}
    for kv in args.set:
        k, v = kv.split("=")
        opts[k] = tuple(int(a) for a in v.split("x")) if k == "hidden" else (float(v) if "." in v or "e" in v else int(v))
    dets = {"neocli": functools.partial(run_neocli, opts=opts), "zscore": run_zscore}
    if not args.no_hst:
        dets["hst"] = run_hst
    if args.nab:
        return nab_main(args.nab, dets, args.jobs, args.per_file)
    split = {(g, sp): files(sp, g) for g in ("injected", "nab") for sp in ("tune", "held")}
    print("files (tune/held-out): " + ", ".join(f"{g} {len(split[g, 'tune'])}/{len(split[g, 'held'])}"
                                                for g in ("injected", "nab")) + f"; options {opts or 'defaults'}")
    print("thr: chosen on the group's tuning files; held@thr uses it unchanged; held*: the held-out files' own best")
    print(f"{'detector':8} {'group':8} {'thr':>7} {'tune':>6} {'held@thr':>8} {'tune@.5':>7} {'held@.5':>7} "
          f"{'held*':>6}  {'tune tp/fn/fp':>13} {'held tp/fn/fp':>13} {'held@.5 tp/fn/fp':>16}  rows/s(cpu)")
    for name, run in dets.items():
        res, rows, cpu = {}, 0, 0.0
        for key, fs in split.items():
            res[key], n, c = evaluate(name, run, fs)
            rows, cpu = rows + n, cpu + c
        for g in ("injected", "nab", "all"):
            rt = res[g, "tune"] if g != "all" else res["injected", "tune"] + res["nab", "tune"]
            rh = res[g, "held"] if g != "all" else res["injected", "held"] + res["nab", "held"]
            thr = best_threshold(rt)
            st, a1, b1, f1 = corpus_score(rt, thr)
            sh, a2, b2, f2 = corpus_score(rh, thr)
            t5 = corpus_score(rt, 0.5)[0]
            h5, a3, b3, f3 = corpus_score(rh, 0.5)
            hb = corpus_score(rh, best_threshold(rh))[0]
            print(f"{name:8} {g:8} {thr:7.4f} {st:6.1f} {sh:8.1f} {t5:7.1f} {h5:7.1f} {hb:6.1f}  "
                  f"{a1:3d}/{b1:3d}/{f1:4d}  {a2:3d}/{b2:3d}/{f2:4d}  {a3:6d}/{b3:3d}/{f3:4d}"
                  + (f"  {rows / cpu:8.0f}" if g == "all" else ""), flush=True)


def speed():
    """365,000 rows of single-value series in files of 1,000-22,000 rows through the CLI."""
    rng = np.random.default_rng(0)
    pool = [read_series(p) for p in files("tune") + files("held")]
    tmp = tempfile.mkdtemp(prefix="neocli-speed-")
    total, k, paths = 0, 0, []
    while total < 365_000:
        n = int(min(rng.integers(1000, 22001), 365_000 - total if 365_000 - total >= 1000 else 1000))
        ts, v, _ = pool[k % len(pool)]
        k += 1
        reps = -(-n // len(v))
        vals = np.tile(v, reps)[:n]
        t0 = 1.4e9
        p = os.path.join(tmp, f"s{k}.csv")
        with open(p, "w") as f:
            f.write("timestamp,value\n")
            for i, a in enumerate(vals):
                f.write(f"{int(t0 + 300 * i)},{a:.6g}\n")
        paths.append(p)
        total += n
    print(f"{len(paths)} files, {total} rows")
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    wall = time.perf_counter()
    cpu0 = os.times()
    for p in paths:
        subprocess.run([sys.executable, "-m", "neocli", "detect", p, "--columns", "value", "--time-column",
                        "timestamp", "--threads", "1", "--quiet", "-o", p + ".out"], check=True, env=env)
    wall = time.perf_counter() - wall
    cpu1 = os.times()
    cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    print(f"wall {wall:.1f} s ({total / wall:.0f} rows/s), cpu {cpu:.1f} s ({total / cpu:.0f} rows/s); "
          f"target < 120 s")
    for p in paths:
        os.remove(p)
        os.remove(p + ".out")
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
