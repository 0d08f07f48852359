"""Memory a hierarchy will take, computed from its descriptors before anything is allocated.

``estimate_model_bytes(io_descs, layer_descs)`` gives, in bytes:

* ``state``, ``weights``, ``persistent``, ``total``: exactly what the built model's
  ``get_state_size()``, ``get_weights_size()`` and ``get_size()`` report (the
  sections of its ``.ohr`` file);
* ``resident``: every array the built model holds, the sections plus the kernels'
  scratch buffers (per-cell sums, dendrite activations, actor work space);
* ``peak``: ``resident`` plus the largest temporary array saving makes (the actor
  history is rotated into file order on the way out). Saving streams the file
  array by array (:func:`neocli.ohr.save`), so it adds nothing proportional to the
  model; loading a file reads it whole, so resuming needs ``resident + total``.

``check_memory`` compares ``peak`` with the memory available (``MemAvailable`` of
``/proc/meminfo``, else free pages from ``os.sysconf``) and raises ``NeoError``
beyond it; when the available memory cannot be read, nothing is checked.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from ._errors import NeoError
from .params import IOType

__all__ = ["estimate_model_bytes", "available_memory", "check_memory", "human_bytes"]


def _area(r: int) -> int:
    return (2 * r + 1) ** 2


def _encoder(hs, vis) -> dict[str, int]:
    hw, hh, hz = hs
    cols, cells = hw * hh, hw * hh * hz
    weights = sum(2 * cells * z * _area(r) for (_, _, z, r) in vis)
    # totals_a/b per visible layer, importance, comparison, learn flags, two input sums, 4 floats per cell
    scratch = len(vis) * 8 * cells + 4 * max(len(vis), 1) + 5 * cols + 8 * cells + 16 * cells
    return {"state": 4 * cols, "weights": weights, "persistent": cells, "scratch": scratch}


def _decoder(out, nd: int, vis) -> dict[str, int]:
    ow, oh, oz = out
    cols, cells = ow * oh, ow * oh * oz
    weights = sum(cells * nd * z * _area(r) for (_, _, z, r) in vis)
    return {"state": 4 * cols + 4 * cells + 4 * cells * nd, "weights": weights, "persistent": 0,
            "scratch": 8 * cells * nd}


def _actor(out, vd: int, pd: int, cap: int, vis) -> dict[str, int]:
    ow, oh, oz = out
    cols, cells = ow * oh, ow * oh * oz
    value = sum(4 * cols * vd * z * _area(r) for (_, _, z, r) in vis)
    policy = sum(4 * cells * pd * z * _area(r) for (_, _, z, r) in vis)
    in_cols = vis[0][0] * vis[0][1]
    ring = 4 * cap * (len(vis) * in_cols + 2 * cols + 1)
    return {"state": 8 * cols + 8 + ring, "weights": value + policy,
            "persistent": 4 * cols + 4 * cells + policy,
            "scratch": 4 * cols * (vd + 2 * oz * pd + 2 * oz), "ring": ring}


def estimate_model_bytes(io_descs: Sequence[Any], layer_descs: Sequence[Any]) -> dict[str, int]:
    """Bytes a ``Hierarchy(io_descs, layer_descs)`` will take, without allocating it.

    Returns ``{"state", "weights", "persistent", "total", "resident", "peak"}`` (see
    the module docstring). The descriptors are validated as the constructor does,
    so an architecture the constructor refuses raises the same ``NeoError`` here.
    """
    from .hierarchy import _check_descs  # late: hierarchy imports the compiled core

    ios, layers = _check_descs(io_descs, layer_descs)
    L = len(layers)
    nfb = 2 if L > 1 else 1
    parts = []
    for l, ld in enumerate(layers):
        hs = tuple(ld.hidden_size)
        if l == 0:
            for io in ios:
                if io.io_type == IOType.prediction:
                    parts.append(_decoder(io.size, io.num_dendrites_per_cell, [(*hs, io.down_radius)] * nfb))
            for io in ios:
                if io.io_type == IOType.action:
                    parts.append(_actor(io.size, io.value_num_dendrites_per_cell, io.num_dendrites_per_cell,
                                        io.history_capacity, [(*hs, io.down_radius)] * nfb))
            vis = [(*io.size, io.up_radius) for io in ios]
        else:
            parts.append(_decoder(layers[l - 1].hidden_size, ld.num_dendrites_per_cell,
                                  [(*hs, ld.down_radius)] * (2 if l < L - 1 else 1)))
            vis = [(*layers[l - 1].hidden_size, ld.up_radius)]
        if ld.recurrent_radius >= 0:
            vis = vis + [(*hs, ld.recurrent_radius)]
        parts.append(_encoder(hs, vis))
    out = {k: sum(p[k] for p in parts) for k in ("state", "weights", "persistent", "scratch")}
    out["persistent"] += 8  # the hierarchy's own random generator
    # The step loop keeps each layer's previous hidden CSDR, and the feedback of all but the top.
    cols = [ld.hidden_size[0] * ld.hidden_size[1] for ld in layers]
    out["scratch"] += 4 * sum(cols) + 4 * sum(cols[:-1])
    total = out["state"] + out["weights"] + out["persistent"]
    resident = total + out.pop("scratch")
    ring = max((p.get("ring", 0) for p in parts), default=0)
    return {**out, "total": total, "resident": resident, "peak": resident + ring}


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None when it cannot be read.

    ``MemAvailable`` from ``/proc/meminfo`` (Linux: free memory plus reclaimable
    caches), else free physical pages times the page size from ``os.sysconf``.
    """
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    fields = line.split()
                    unit = 1024 if fields[2:3] == [b"kB"] else 1
                    return int(fields[1]) * unit
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    if pages <= 0 or size <= 0:
        return None
    return pages * size


def human_bytes(n: int) -> str:
    """``n`` bytes with a binary unit, e.g. ``5.5 GiB``."""
    x = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if x < 1024 or unit == "TiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{x:.1f} {unit}"
        x /= 1024
    raise AssertionError("unreachable")


def check_memory(io_descs: Sequence[Any], layer_descs: Sequence[Any], available: int | None = None,
                 override: str = "force=True", force: bool = False) -> dict[str, int]:
    """Estimate the model (``estimate_model_bytes``) and refuse it beyond available memory.

    ``available`` defaults to :func:`available_memory`; when that is unknown the
    check is skipped. ``force=True`` skips it too. The ``NeoError`` names the
    estimated peak, the memory available and ``override``, the way to go ahead
    anyway (the CLI passes its flag, e.g. ``"--force"``). Returns the estimate.
    """
    est = estimate_model_bytes(io_descs, layer_descs)
    if force:
        return est
    if available is None:
        available = available_memory()
    if available is not None and est["peak"] > available:
        raise NeoError(f"this architecture needs about {human_bytes(est['peak'])} of memory "
                       f"({human_bytes(est['weights'])} of weights), more than the "
                       f"{human_bytes(available)} available: use smaller layers (hidden sizes, radii, "
                       f"dendrites), or {override} to try anyway")
    return est
