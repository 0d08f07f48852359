"""Threads: the count every kernel call may use (decisions D9), the per-hierarchy tuner
that picks 1 or that many, and the per-object lock that keeps one hierarchy to one thread
at a time."""
from __future__ import annotations

import contextlib
import functools
import os
import time
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

    __slots__ = ("one", "many", "use_many", "countdown", "confirmed", "window_n", "window_sum",
                 "trial_n", "trial_sum", "init", "elapsed", "spent", "aftermath")

    def __init__(self) -> None:
        self.one: float | None = None
        self.many: float | None = None
        self.use_many = True
        self.countdown = 0
        self.confirmed = 0  # trials in a row that kept the current setting
        self.window_n = 0   # steps and seconds in the current setting's open window
        self.window_sum = 0.0
        self.trial_n = 0    # steps and seconds of the trial under way
        self.trial_sum = 0.0
        self.init: dict[bool, list[float]] = {True: [], False: []}
        self.elapsed = 0.0  # seconds of stepping since the first decision
        self.spent = 0.0    # of which trials cost this much more than the current setting would have
        self.aftermath = 0.0  # seconds after a trial whose steps' excess is still charged to it


class ThreadTuner:
    """Chooses, per hierarchy, between one thread and the configured maximum by measurement.

    OpenMP's fork-join regions pay off on an idle machine but stall when another
    process holds a core (a descheduled worker holds up every region's barrier,
    sometimes for a whole scheduler time slice). Results never depend on the
    thread count, so the tuner times whole steps and keeps the faster setting:

    * It starts with three steps of each setting (the first multi-threaded one,
      which starts the threads, is ignored) and keeps the faster.
    * Now and then it runs a *trial* of the other setting (at least ``TRIAL``
      steps and ``TRIAL_SECONDS``, cut short by a step that stalls) and switches
      on a clear (10 %) difference. The trial's mean replaces the old estimate of
      that setting, so one unlucky early measurement is corrected by the next
      trial. The current setting's estimate is a moving average over windows of
      at least ``WINDOW`` steps and ``WINDOW_SECONDS``.
    * Trials are due ``base_interval`` steps apart at first, four times further
      after each trial that confirms the current setting, up to ``MAX_GAP``
      seconds; and when a window of the current setting comes out more than 10 %
      slower than the other was last measured (the load changed).
    * A due trial waits while trials so far have cost more than ``BUDGET`` (0.5 %)
      of the stepping time since the first decision, with at most ``BANK``
      seconds of unused allowance carried forward. The cost counted is what
      trials really cost: their stalls, and the excess of the steps in the
      ``AFTERMATH_SECONDS`` after a trial of several threads (idle OpenMP
      workers spin for some milliseconds and, under load, take CPU time from
      the main thread). Under load a trial of two threads is usually harmless
      and sometimes stalls for 100 ms; a schedule based on typical trials would
      pay those stalls again and again.

    Estimates are plain means over spans of time, not medians: under load a
    descheduled worker stalls a few steps in a hundred for milliseconds, and on
    cheap steps those stalls are most of the cost.
    """

    __slots__ = ("_arms", "base_interval")

    INIT = 3
    TRIAL = 5
    TRIAL_SECONDS = 0.005
    MAX_TRIAL = 1024
    STALL = 4.0
    AFTERMATH_SECONDS = 0.02
    WINDOW = 9
    WINDOW_SECONDS = 0.05
    MAX_WINDOW = 4096
    MAX_GAP = 5.0
    BUDGET = 0.005
    BANK = 0.05

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
            return n if len(a.init[True]) <= len(a.init[False]) else 1
        explore = a.trial_n > 0 or (a.countdown <= 0 and a.spent <= self.BUDGET * a.elapsed)
        return n if a.use_many != explore else 1


    def record(self, learn: bool, nt: int, seconds: float) -> None:
        """Fold one step's duration into the estimates; update the choice."""
        a = self._arm(learn)
        many = nt > 1
        if a.one is None or a.many is None:
            a.init[many].append(seconds)
            if min(len(a.init[True]), len(a.init[False])) >= self.INIT:
                # The first multi-threaded step pays for starting the threads: skip it.
                a.many, a.one = _mean(a.init[True][1:]), _mean(a.init[False])
                a.init = {True: [], False: []}
                a.use_many = a.many < a.one
                self._schedule(a)
            return
        a.elapsed += seconds
        # Unused allowance does not pile up: after a long cheap stretch, trials may
        # still only spend BANK seconds beyond the running 0.5 %.
        if a.spent < self.BUDGET * a.elapsed - self.BANK:
            a.spent = self.BUDGET * a.elapsed - self.BANK
        if many != a.use_many:  # a trial step
            current = a.one if many else a.many
            a.spent += max(seconds - current, 0.0)
            a.trial_n += 1
            a.trial_sum += seconds
            n = a.trial_n
            # Long enough in steps and in time (rare stalls must have had the chance
            # to show), or cut short by a stall.
            if not (seconds > self.STALL * current or n >= self.MAX_TRIAL
                    or (n >= self.TRIAL and a.trial_sum >= self.TRIAL_SECONDS)):
                return
            measured = a.trial_sum / n
            a.trial_n = 0
            a.trial_sum = 0.0
            # Only a trial of the maximum leaves worker threads spinning behind it.
            a.aftermath = self.AFTERMATH_SECONDS if many else 0.0
            if many:
                a.many = measured
            else:
                a.one = measured
            if measured < 0.9 * current:
                a.use_many = many
                a.confirmed = 0
                a.window_n = 0  # a partial window of the old setting
                a.window_sum = 0.0
            else:
                a.confirmed += 1
            self._schedule(a)
            return
        a.countdown -= 1
        if a.aftermath > 0.0:
            a.aftermath -= seconds
            a.spent += max(seconds - (a.many if many else a.one), 0.0)
        a.window_n += 1
        a.window_sum += seconds
        n = a.window_n
        if n < self.MAX_WINDOW and (n < self.WINDOW or a.window_sum < self.WINDOW_SECONDS):
            return
        mid = a.window_sum / n
        a.window_n = 0
        a.window_sum = 0.0
        if many:
            a.many = 0.7 * a.many + 0.3 * mid
        else:
            a.one = 0.7 * a.one + 0.3 * mid
        current, other = (a.many, a.one) if a.use_many else (a.one, a.many)
        if other < 0.9 * current:
            a.countdown = 0  # the current setting got slower: measure the other one now

    def _schedule(self, a: _Arm) -> None:
        current = a.many if a.use_many else a.one
        steps = self.base_interval * 4 ** min(a.confirmed, 8)
        if current > 0:
            steps = min(steps, self.MAX_GAP / current)
        a.countdown = int(max(self.base_interval, steps))


def _busy(obj: object) -> NeoError:
    kind = type(obj).__name__
    return NeoError(f"this {kind} is in use by another thread (a step or another call is running there): "
                    f"one {kind} may be used by one thread at a time; give each thread its own, or guard "
                    "it with a lock")


def exclusive(method):
    """Run ``method`` holding the object's ``_lock``; raise NeoError if another thread holds it.

    The kernels release the GIL, so without this a second thread could read or
    change a hierarchy's arrays in the middle of a step: no crash (indices stay in
    range) but silently mixed results or a torn snapshot in a saved file.
    """
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        held = False
        try:  # acquired inside the try: a KeyboardInterrupt cannot leave it held
            held = self._lock.acquire(False)
            if not held:
                raise _busy(self)
            return method(self, *args, **kwargs)
        finally:
            if held:
                self._lock.release()
    return wrapper


def run_step(obj, learn: bool, kernel):
    """``kernel(nt)`` holding ``obj._lock``, on the thread count ``obj._tuner`` picks.

    The kernels release the GIL (see ``exclusive``); the step is timed for the
    tuner only when more than one thread is allowed.
    """
    held = False
    try:  # acquired inside the try: a KeyboardInterrupt cannot leave it held
        held = obj._lock.acquire(False)
        if not held:
            raise _busy(obj)
        n = _num_threads
        if n == 1:
            return kernel(1)
        tuner = obj._tuner
        nt = tuner.choose(learn, n)
        start = time.perf_counter()
        out = kernel(nt)
        tuner.record(learn, nt, time.perf_counter() - start)
        return out
    finally:
        if held:
            obj._lock.release()


@contextlib.contextmanager
def holding(objs):
    """Hold the locks of ``objs`` (merge sources) for a block; NeoError if one is busy."""
    with contextlib.ExitStack() as stack:
        for o in dict.fromkeys(objs):  # each once, in order
            if not o._lock.acquire(False):
                raise _busy(o)
            stack.callback(o._lock.release)
        yield
