#!/usr/bin/env python
"""Probe pyaogmaneo's ImageEncoder SOM rounding in the smallest possible setting.

Issue 5: neocli's ImageEncoder weight bytes differ from pyaogmaneo 2.14.4's in
about 2 of every million SOM updates, always by +1 on the reference's side, where
neocli's float32 ``rate*255*((pixel - mu) - w)`` lands one ulp under a .5
boundary. This script isolates that update: one hidden cell, one visible pixel of
one channel (so ``pixel - mu`` is exactly 0 and the update is ``rate*255*(-w)``),
the weight byte ``old`` and the cell's resource ``rate`` written into a
serialized encoder. It steps pyaogmaneo once per (old, rate) pair and compares
the new byte with the spec's float32 formula (spec §10.2), which neocli uses.

Run by hand (pyaogmaneo is a test extra; this is not a test)::

    python tools/som_rounding_probe.py                # ~30,000 probes, a few seconds
    python tools/som_rounding_probe.py --search 90    # exhaustive two-product search, ~1 min

Measured 2026-11-26: 6 of 29,184 probes differ (old bytes 50, 64, 75 and 90),
each the reference's byte = formula's + 1; on a denser grid (3,999 rates x 256
bytes) 7 of 1,023,744. The result does not depend on the pixel value, ``lr``,
``falloff`` or ``n_radius``, nor on the global random state or thread count.

``--search OLD`` asks whether *any* evaluation of the form
``round_away(float32(float32(rate*X)*Y))`` reproduces the reference for one old
byte: X runs over every float32 in [1, 2) (which covers every X up to an exact
power-of-two scale) and Y over the 13 floats nearest ``(255-2*OLD)/X``. For old
byte 90 no (X, Y) pair fits, whereas the same search on neocli's own results
finds its pair: the reference's update is not two float32 multiplications of
the rate by constants in any order, so no reordering of the spec's expression,
weight decoding or choice of constant can reproduce it. Division forms, fused
multiply-add rounding, float64 intermediates and re-quantising a float weight
were excluded the same way (issue 5 note).
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
    """Compare the reference with the spec's formula on a grid of (old, rate) pairs."""
    ref = Reference()
    rates = sorted({float(F(k / 64)) for k in range(1, 40)} | {float(F(k / 100)) for k in range(1, 60)}
                   | {float(F(k / 1000)) for k in range(1, 60, 3)})
    differ = []
    for rate in rates:
        for old in range(256):
            got = ref.new_byte(old, rate)
            if got != formula(old, rate):
                differ.append((old, rate, got, formula(old, rate)))
    print(f"{len(rates) * 256} probes, {len(differ)} differ")
    for old, rate, got, ours in differ:
        print(f"  old {old:3d}  rate {rate!r:22}  pyaogmaneo {got}  formula {ours}")
    return 0


def two_product_fits(rates: np.ndarray, deltas: np.ndarray, e: int) -> list[tuple[float, float]]:
    """Every (X, Y), X in [1, 2), with round_away(float32(float32(rate*X)*Y)) == delta for all rates."""
    xs = (np.arange(2 ** 23, dtype=np.uint32) | np.uint32(0x3F800000)).view(F)
    fits = []
    for lo in range(0, len(xs), 1 << 20):
        x = xs[lo:lo + (1 << 20)]
        y0 = (F(e) / x).astype(F).view(np.int32)
        for k in range(-6, 7):
            y = (y0 + k).view(F)
            ok = np.ones(len(x), bool)
            for r, d in zip(rates, deltas):
                v = ((F(r) * x).astype(F) * y).astype(F)
                ok &= np.trunc((v + F(0.5)).astype(np.float64)) == d
                if not ok.any():
                    break
            fits += [(float(a), float(b)) for a, b in zip(x[ok], y[ok])]
    return fits


def search(old: int) -> int:
    """Exhaustive two-product search for one old byte < 128, against the reference and against the formula."""
    if not 0 <= old < 128:
        raise SystemExit("--search takes an old byte in 0..127 (a positive update)")
    e = 255 - 2 * old
    # Only rates whose exact update lies near a .5 boundary constrain the rounding.
    rates = [r for r in (F(k / 1000) for k in range(1, 1000)) if abs(float(r) * e % 1 - 0.5) < 2e-5]
    ref = Reference()
    deltas = np.array([ref.new_byte(old, float(r)) - old for r in rates])
    mine = np.array([formula(old, float(r)) - old for r in rates])
    print(f"old {old}: {len(rates)} near-tie rates, formula differs on {int((deltas != mine).sum())}")
    # The formula's own pair, scaled by exact powers of two: (255/128, 128*(-w)).
    own_pair = (255 / 128, float(F(F(0) - F(F(F(old) * TWO) - F(1))) * F(128)))
    for name, d in (("pyaogmaneo", deltas), ("the formula", mine)):
        fits = two_product_fits(np.array(rates), d, e)
        own = own_pair in fits
        print(f"  two-product forms fitting {name}: {len(fits)}"
              + (" (including the formula's own rate*255 then *(-w))" if own else ""))
    return 0


def main() -> int:
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--search":
        return search(int(sys.argv[2]))
    return grid()


if __name__ == "__main__":
    raise SystemExit(main())
