"""Thread-count setting shared by every kernel call (decisions D9)."""
from __future__ import annotations

import os
import warnings

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
    return max(1, int(_core.omp_max_threads()))


_num_threads = _default_threads()
_warned_no_openmp = False


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
    if n > 1 and not _core.OPENMP_ENABLED:
        # Say so once rather than silently ignoring the request (decisions D9).
        global _warned_no_openmp
        if not _warned_no_openmp:
            _warned_no_openmp = True
            warnings.warn("neocli was built without OpenMP: kernels run on one thread "
                          f"(set_num_threads({n}) has no effect)", RuntimeWarning, stacklevel=2)
    _num_threads = int(n) if _core.OPENMP_ENABLED else 1


def get_num_threads() -> int:
    """The configured maximum number of threads (pyaogmaneo returns 1 here; we return the setting)."""
    return _num_threads


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


class _Arm:
    """Step-time estimates for one learn flag: one thread vs the maximum."""

    __slots__ = ("one", "many", "use_many", "countdown", "samples")

    def __init__(self) -> None:
        self.one: float | None = None
        self.many: float | None = None
        self.use_many = True
        self.countdown = 0
        self.samples: dict[bool, list[float]] = {True: [], False: []}


class ThreadTuner:
    """Chooses, per hierarchy, between one thread and the configured maximum by measurement.

    OpenMP's fork-join regions pay off on an idle machine but stall when another
    process holds a core (a descheduled worker holds up every region's barrier).
    Results never depend on the thread count, so the tuner times whole steps and
    keeps the faster setting. It starts with three steps of each, then tries the
    other setting for five steps now and then: every ``500 * (ratio - 1)`` steps,
    where ``ratio`` is how much slower it was (so exploring costs about 1 % of the
    run), but at least every 5 seconds, so a stray slow step costs at most that.
    It switches only on a clear (10 %) difference. Times are plain means: under
    load a descheduled worker makes some steps stall for milliseconds, and those
    stalls are the cost that matters.
    """

    __slots__ = ("_arms", "base_interval")

    INIT = 3
    TRIAL = 5
    WINDOW = 9
    MAX_GAP = 5.0

    def __init__(self, base_interval: int = 32) -> None:
        self._arms: dict[bool, _Arm] = {}
        self.base_interval = base_interval

    def _arm(self, learn: bool) -> _Arm:
        a = self._arms.get(learn)
        if a is None:
            a = self._arms[learn] = _Arm()
        return a

    def choose(self, learn: bool, n: int) -> int:
        """The thread count for the next step with learning ``learn`` and maximum ``n``."""
        if n <= 1:
            return 1
        a = self._arm(learn)
        if a.one is None or a.many is None:
            return n if len(a.samples[True]) <= len(a.samples[False]) else 1
        explore = a.countdown <= 0
        return n if a.use_many != explore else 1

    def record(self, learn: bool, nt: int, seconds: float) -> None:
        """Fold one step's duration into the estimates; update the choice."""
        a = self._arm(learn)
        many = nt > 1
        if a.one is None or a.many is None:
            a.samples[many].append(seconds)
            if min(len(a.samples[True]), len(a.samples[False])) >= self.INIT:
                # The first multi-threaded step pays for starting the threads: skip it.
                a.many, a.one = _mean(a.samples[True][1:]), _mean(a.samples[False])
                a.samples = {True: [], False: []}
                a.use_many = a.many < a.one
                self._schedule(a)
            return
        if many != a.use_many:  # an exploration step
            trial = a.samples[many]
            trial.append(seconds)
            if len(trial) < self.TRIAL:
                return
            mid = _mean(trial)
            trial.clear()
            if many:
                a.many = 0.5 * a.many + 0.5 * mid
            else:
                a.one = 0.5 * a.one + 0.5 * mid
            if (a.many if many else a.one) < 0.9 * (a.one if many else a.many):
                a.use_many = many
                a.samples[not many].clear()  # a partial window of the old setting
            self._schedule(a)
            return
        a.countdown -= 1
        window = a.samples[many]
        window.append(seconds)
        if len(window) < self.WINDOW:
            return
        mid = _mean(window)
        window.clear()
        if many:
            a.many = 0.7 * a.many + 0.3 * mid
        else:
            a.one = 0.7 * a.one + 0.3 * mid
        current, other = (a.many, a.one) if a.use_many else (a.one, a.many)
        if other < 0.9 * current:
            a.countdown = 0  # the current setting got slower: measure the other one now

    def _schedule(self, a: _Arm) -> None:
        current, other = (a.many, a.one) if a.use_many else (a.one, a.many)
        ratio = other / current if current > 0 else 1.0
        # TRIAL trial steps cost TRIAL * (ratio - 1) extra step-times; spacing them
        # 100 * TRIAL * (ratio - 1) steps apart keeps exploring near 1 % of the run,
        # and at most MAX_GAP seconds apart so a change in load is noticed.
        steps = max(self.base_interval, 100.0 * self.TRIAL * (ratio - 1.0))
        if current > 0:
            steps = min(steps, self.MAX_GAP / current)
        a.countdown = int(max(self.base_interval, steps))
