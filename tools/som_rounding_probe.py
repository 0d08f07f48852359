#!/usr/bin/env python
"""Probe pyaogmaneo's ImageEncoder SOM rounding one weight update at a time.

Spec §10.2 says each SOM update adds ``round_away(rate*255*((pixel - mu) - w))``
to the weight byte. pyaogmaneo 2.14.4 does that except in one case, found with
this script: for a positive update whose float32 sum ``x + 0.5`` lands one ulp
below a power of two (every mantissa bit set: 0.99999994, 1.9999999, 3.9999998,
...), it gives that power of two instead of the integer below. Negative updates
never do this. neocli replicates it (``neo_img_som`` in ``cython_core/_image.pyx``);
before that, about 2 in a million SOM updates came out one below pyaogmaneo's.
(The same function also replicates what happens to updates outside the int
range; the probe's rates stay far from that.)

The probe: one hidden cell over one pixel of one channel (so ``pixel - mu`` is
exactly 0 and the update is ``rate*255*(-w)``), with the weight byte ``old`` and
the cell's resource ``rate`` written into a serialized encoder, stepped once.

Run by hand (pyaogmaneo is a test extra; this is not a test)::

    python tools/som_rounding_probe.py                  # grid of ~30,000 updates, < 1 s
    python tools/som_rounding_probe.py --thresholds 90  # exact flip points, one old byte

``--thresholds OLD...`` finds, for every .5 boundary k + 0.5 that an update
from OLD can reach, the smallest float32 rate at which pyaogmaneo rounds up, by
bisection over adjacent floats, and compares it with each formula's.

Measured 2026-11-26: on the grid the spec's formula differs in 6 of 29,184
updates (old bytes 50, 64, 75, 90: sums 1.9999999, 7.9999995, 15.999999,
31.999998, 63.999996), neocli's in none. Flip points for old bytes 1, 10, 30,
50, 64, 65, 75, 90, 100, 110 and 120: neocli's formula hits all 1,375 exactly,
the spec's misses 50 (each at k = 2^n - 1, by one or two rate ulps). For negative updates (old bytes 145,
165, 180, 205) both formulas hit every flip point. Results do not depend on the
pixel value, ``lr``, ``falloff``, ``n_radius``, the global random state or the
thread count.
"""
from __future__ import annotations

import struct
import sys

import numpy as np
import pyaogmaneo as pa

F = np.float32
TWO = F(2) / F(255)


def update(old: int, rate: float, corrected: bool) -> int:
    """The new byte by spec §10.2 with ``pixel - mu == 0``; ``corrected`` adds neocli's rounding case."""
    w = F(F(F(old) * TWO) - F(1))
    x = F(F(F(rate) * F(255)) * F(F(0) - w))
    x = min(max(x, F(-512)), F(512))
    y = F(x + np.copysign(F(0.5), x))
    d = int(np.trunc(y))
    if corrected and y > 0 and (int(np.array(y, F).view(np.uint32)) & 0x7FFFFF) == 0x7FFFFF:
        d += 1
    return min(255, max(0, old + d))


class Reference:
    """A one-cell, one-pixel pyaogmaneo ImageEncoder whose weight and resource can be set."""

    def __init__(self) -> None:
        pa.set_num_threads(1)
        pa.set_global_state(3)
        enc = pa.ImageEncoder((1, 1, 1), [pa.ImageVisibleLayerDesc((1, 1, 1), 0)])
        self.base = bytes(enc.serialize_to_buffer())
        self.res_at = self.base.find(struct.pack("<f", 0.5))  # the cell's resource (initially 0.5)
        if self.res_at < 0 or self.base.find(struct.pack("<f", 0.5), self.res_at + 1) >= 0:
            raise SystemExit("cannot locate the resource in pyaogmaneo's buffer (format changed?)")

    def new_byte(self, old: int, rate: float) -> int:
        """The forward weight byte after one learning step from ``old`` with resource ``rate``."""
        b = bytearray(self.base)
        b[self.res_at:self.res_at + 4] = struct.pack("<f", rate)
        b[-2] = old  # the forward weight (the last byte is the reconstruction weight)
        e = pa.ImageEncoder(buffer=np.frombuffer(bytes(b), np.uint8))
        e.step([np.array([100], np.uint8)], True, False)
        return int(e.serialize_weights_to_buffer()[0])


def grid() -> int:
    """Compare pyaogmaneo with both formulas on a grid of (old, rate) pairs."""
    ref = Reference()
    rates = sorted({float(F(k / 64)) for k in range(1, 40)} | {float(F(k / 100)) for k in range(1, 60)}
                   | {float(F(k / 1000)) for k in range(1, 60, 3)})
    differ = {False: [], True: []}
    for rate in rates:
        for old in range(256):
            got = ref.new_byte(old, rate)
            for corrected in differ:
                if got != update(old, rate, corrected):
                    differ[corrected].append((old, rate, got, update(old, rate, corrected)))
    print(f"{len(rates) * 256} updates: the spec's formula differs in {len(differ[False])}, "
          f"neocli's in {len(differ[True])}")
    for old, rate, got, spec in differ[False]:
        print(f"  old {old:3d}  rate {rate!r:22}  pyaogmaneo {got}  spec {spec}")
    return 1 if differ[True] else 0


def _bits(r) -> int:
    return int(np.array(r, F).view(np.int32))


def _float(i: int) -> float:
    return float(np.array(i, np.int32).view(F))


def _flip(new_byte, old: int, k: int) -> int:
    """Bit pattern of the smallest rate near (k+0.5)/|255-2*old| whose update exceeds k in magnitude."""
    e = abs(255 - 2 * old)
    lo, hi = _bits(F((k + 0.5) / e)) - 64, _bits(F((k + 0.5) / e)) + 64
    if abs(new_byte(old, _float(lo)) - old) > k or abs(new_byte(old, _float(hi)) - old) <= k:
        raise SystemExit(f"old {old}, k {k}: the flip point is not within 64 rate ulps of (k+0.5)/{e}")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if abs(new_byte(old, _float(mid)) - old) > k:
            hi = mid
        else:
            lo = mid
    return hi


def thresholds(olds: list[int]) -> int:
    """Flip points of pyaogmaneo, the spec's formula and neocli's, for each old byte."""
    ref = Reference()
    total, missed = 0, {False: 0, True: 0}
    for old in olds:
        e = abs(255 - 2 * old)
        for k in range(e):
            reach = old + k + 0.5 if old < 128 else old - k - 0.5  # the byte the boundary stands for
            if not 0 <= reach <= 255:
                break
            want = _flip(ref.new_byte, old, k)
            total += 1
            for corrected in missed:
                got = _flip(lambda o, rate, c=corrected: update(o, rate, c), old, k)
                if got != want:
                    missed[corrected] += 1
                    name = "neocli" if corrected else "spec"
                    print(f"  old {old:3d}  k {k:3d}: {name} flips {got - want:+d} rate ulps from pyaogmaneo")
    print(f"{total} flip points: the spec's formula misses {missed[False]}, neocli's {missed[True]}")
    return 1 if missed[True] else 0


def main() -> int:
    """``--thresholds OLD...`` or, without arguments, the grid."""
    if len(sys.argv) > 2 and sys.argv[1] == "--thresholds":
        return thresholds([int(a) for a in sys.argv[2:]])
    return grid()


if __name__ == "__main__":
    raise SystemExit(main())
