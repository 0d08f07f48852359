#!/usr/bin/env python
"""Probe pyaogmaneo's ImageEncoder SOM rounding in the smallest possible setting.

Issue 5 (open): neocli's ImageEncoder weight bytes differ from pyaogmaneo 2.14.4's
in about 2 of every million SOM updates, always by +1 on the reference's side,
where neocli's float32 ``rate*255*((pixel - mu) - w)`` lands one ulp under a .5
boundary. This script isolates that update: one hidden cell, one visible pixel of
one channel (so ``pixel - mu`` is exactly 0 and the update is ``rate*255*(-w)``),
the weight byte ``old`` and the cell's resource ``rate`` written into a
serialized encoder. It steps pyaogmaneo once per (old, rate) pair and compares
the new byte with the spec's float32 formula (spec §10.2), which neocli uses.

Run by hand (pyaogmaneo is a test extra; this is not a test)::

    python tools/som_rounding_probe.py            # ~30,000 probes, a few seconds

Measured 2026-11-26: 6 of 29,184 probes differ (old bytes 50, 64, 75 and 90),
each the reference's byte = formula's + 1. No single float32 weight value per
old byte explains them across rates, and none of ~200 orderings of the
expression in float32/float64 tried (see the issue note) reproduces them.
"""
from __future__ import annotations

import struct

import numpy as np
import pyaogmaneo as pa

F = np.float32
TWO = F(2) / F(255)


def formula(old: int, rate: float) -> int:
    """Spec §10.2 with ``pixel - mu == 0``: old + round_away(rate*255*(0 - w)), clamped."""
    w = F(F(F(old) * TWO) - F(1))
    x = F(F(F(rate) * F(255)) * F(F(0) - w))
    x = min(max(x, F(-512)), F(512))
    return min(255, max(0, old + int(np.trunc(F(x + np.copysign(F(0.5), x))))))


def main() -> int:
    pa.set_num_threads(1)
    pa.set_global_state(3)
    enc = pa.ImageEncoder((1, 1, 1), [pa.ImageVisibleLayerDesc((1, 1, 1), 0)])
    base = bytes(enc.serialize_to_buffer())
    res_at = base.find(struct.pack("<f", 0.5))  # the one cell's resource (initially 0.5)
    if res_at < 0 or base.find(struct.pack("<f", 0.5), res_at + 1) >= 0:
        raise SystemExit("cannot locate the resource in pyaogmaneo's buffer (format changed?)")
    rates = sorted({float(F(k / 64)) for k in range(1, 40)} | {float(F(k / 100)) for k in range(1, 60)}
                   | {float(F(k / 1000)) for k in range(1, 60, 3)})
    differ = []
    for rate in rates:
        for old in range(256):
            b = bytearray(base)
            b[res_at:res_at + 4] = struct.pack("<f", rate)
            b[-2] = old  # the forward weight (the last byte is the reconstruction weight)
            e = pa.ImageEncoder(buffer=np.frombuffer(bytes(b), np.uint8))
            e.step([np.array([100], np.uint8)], True, False)
            ref = int(e.serialize_weights_to_buffer()[0])
            if ref != formula(old, rate):
                differ.append((old, rate, ref, formula(old, rate)))
    print(f"{len(rates) * 256} probes, {len(differ)} differ")
    for old, rate, ref, ours in differ:
        print(f"  old {old:3d}  rate {rate!r:22}  pyaogmaneo {ref}  formula {ours}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
