"""Thread-count setting shared by every kernel call (decisions D9)."""
from __future__ import annotations

import os

import numpy as np

from . import _core
from ._errors import NeoError


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n >= 1:
            return n
    return max(1, int(_core.omp_max_threads()), 1)


_num_threads = _default_threads()


def set_num_threads(n: int) -> None:
    """Set the maximum number of threads kernels use; wins over ``OMP_NUM_THREADS``.

    Kernels with little work run on one thread regardless (an OpenMP region costs
    more than it saves there); results are identical for any count.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"number of threads must be an integer, got {type(n).__name__}")
    if n < 1:
        raise NeoError(f"number of threads must be >= 1, got {n}")
    _num_threads = int(n) if _core.OPENMP_ENABLED else 1


def get_num_threads() -> int:
    """The configured maximum number of threads (pyaogmaneo returns 1 here; we return the setting)."""
    return _num_threads
