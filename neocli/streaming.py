"""Online scoring and anomaly detection, one record at a time (no CLI, no printing).

Two objects, in the style of river (the online-learning library):

* :class:`Scorer` wraps a trained sequence model and its codec and gives every
  unit of data (a symbol, a text line, a CSV record, a file) its surprise: bits,
  bits per symbol and probability. With ``learn=True`` it keeps learning as it
  goes, exactly as training on the same data would.
* :class:`Detector` watches numeric rows (one or more columns, optionally
  timestamped). For every row it predicts, scores, then learns, and returns a
  :class:`DetectorRow` with the predicted value, the ``raw_score`` (1 - the
  probability the model gave to what happened) and the ``anomaly_score``: how
  unusual the recent surprise is compared with this stream's own history.

The anomaly score (an anomaly *likelihood*)
-------------------------------------------
``raw_score`` alone alarms all the time on a noisy stream, so the detector asks how
unusual the recent surprise is *for this stream*. Each row's surprise is
``s = -ln(max(p, floor)) / -ln(floor)`` in [0, 1], where ``p = 1 - raw_score`` and
``floor = surprise_floor`` (1e-3). Five deviations are computed from running
statistics (O(1) a row):

* the mean of the last ``short_window`` (4) surprises against the mean and standard
  deviation of that short-window mean over the last ``long_window`` (5000) rows: a
  run of surprise;
* this row's surprise against the mean and deviation of the surprises of the last
  ``long_window`` rows: one very surprising row;
* each value against the mean and deviation of that column's last ``value_window``
  (30) values, two-sided: a value far from its recent level, even one the model
  had come to expect. The deviation is floored at ``value_min_sd`` (1%) of the
  span of the values seen so far, so that after a flat stretch of a quantised
  metric one step of its smallest unit is not an alarm;
* the mean of each column's last ``level_window`` (10) values against the same mean,
  with the deviation divided by the square root of ``level_window``: a sustained level
  shift that no single value of a noisy stream shows (``level_window=0``: off);
* the same mean of the last ``level_window`` values against the mean and deviation of
  the column's last ``baseline_window`` (500) values, once 50 are known: a slow ramp
  (a failing machine heating up, a leak) that the last 30 values follow
  (``baseline_window=0``: off).

Deviations of surprise are floored at ``min_sd`` (0.02) so a perfectly predicted
stream does not turn every blip into an alarm.

Calibrated tails. A Gaussian tail fits a smooth stream, but a spiky machine metric
has 5- and 10-sigma deviations every few hundred rows, and taken at face value each
one would be an alarm. So every deviation ``z`` is first compared with the deviations
of the same kind this stream has shown: each kind keeps the last ``calib_window``
(5000) of its deviations as counts in bins (0.1 wide up to 10, then 1/40 of a decade
wide up to 10**8.5, so the 50- or 100-sigma spikes of a mostly flat metric are told
apart; detectors saved before kept bins of 0.1 up to 40), and ``z`` is divided by
``max(1, q / z_ref)``, where ``q`` is the deviation exceeded by only a fraction
``calib_tail`` (0.2%) of those seen and ``z_ref`` the same quantile of a Gaussian
(2.88 one-sided, 3.09 two-sided). On a stream whose deviations are Gaussian-like
nothing changes; on a heavy-tailed one, its own one-in-500 deviation counts as a
Gaussian's one-in-500 (a tail of 2e-3, just below the alert level). A deviation
not beyond ``z_ref`` is not rescaled (it cannot reach the alert level anyway), and
until 100 deviations have been seen there is no rescaling. The tail probability of
each rescaled deviation is the Gaussian one; ``calib_window=0`` turns this off.

Fitted tails (peaks over threshold, the extreme-value method). Rescaling at the 0.2%
quantile and then taking a Gaussian's tail beyond it still underrates a heavy-tailed
stream: a deviation 1.23 times the stream's one-in-500 one reaches the alert level, and
bursty streams (NAB's tweet counts) have those every few thousand rows. So once 1,000
deviations of a kind have been seen, a tail below 1e-3 is also taken from this stream's
own largest deviations: above ``u``, the deviation exceeded by a fraction ``tail_fit``
(2%) of them, the excesses ``z - u`` are fitted with a generalized Pareto law (the law
that the excesses over a high threshold of almost any distribution approach), by the
method of moments on the binned deviations (bin centres): with their mean ``m`` and
variance ``v``, ``xi = (1 - m**2/v) / 2``, kept >= -0.5, and ``sigma = m (1 - xi)``
(the law's mean is ``sigma / (1 - xi)``), and::

    P(Z >= z) = p * (1 + xi (z - u) / sigma) ** (-1 / xi)

where ``p`` is the fraction of the ``n`` deviations above ``u`` (and below ``u``, the
fraction seen at or above ``z``). The moments cannot give ``xi >= 0.5``, so a tail
heavier than that is fitted too light and keeps some of its false alarms; excesses all
alike are not fitted. The larger of this and the calibrated Gaussian tail is used, so
the fit can only take evidence away: from a heavy tail (``xi > 0``) it takes much,
from a Gaussian-like stream (``xi`` near or below 0, a tail that ends) usually nothing
(on Gaussian deviations the fit is sometimes a few times above the Gaussian tail at
4-5 sigma). ``tail_fit=0`` turns this off, as it is for detectors saved before it
existed; with a ``calib_window`` below 1,000 it never applies.

The evidence is ``E = -log10(smallest tail)`` and::

    anomaly_score = E / (E + E_alert),   E_alert = -log10(alert_tail)  (alert_tail = 1.5e-4)

so the score is in [0, 1), rises with the evidence, and is 0.5 (:data:`ALERT`,
the alert level) when the smallest tail probability is ``alert_tail``.

* Out-of-range values: a value outside the range known so far (the range given,
  or the one learned from a stdin stream) is encoded in the edge bin, gets
  ``raw_score`` 1 and its tail probability is divided by ``range_evidence`` (100).
* New extremes: a value above the highest (or below the lowest) value this
  detector has seen, by more than ``extreme_tolerance`` (2%) of the span seen so
  far, has its tail probability divided by ``extreme_evidence`` (1e4). This is
  what catches a spike or level shift even when the range was scanned from the
  whole file beforehand (that range includes the anomaly, so nothing is "out of
  range"); the running extremes only use rows already read.
* Flat lines: a column that repeats one value exactly, for the first time ``flat_min``
  (10) rows in a row and more than ``flat_factor`` (1.2) times the longest run of equal
  values it had before, has this row's tail probability divided by ``extreme_evidence``
  too: a stuck sensor, a metric gone flat, a feed that stopped updating, anywhere in the
  range (no value check sees it). The longest run is a new extreme of its own kind: on a
  noisy stream (runs of 1) the 10th equal row counts; a quantised metric that often sits
  still for 25 rows needs a run of 31. The longest run is updated when a run ends, so
  records must keep growing by 20% to count again. A run counts from the row that
  passes the bar until a row raises an alert (in a quiet period, the evidence stays
  until the quiet period ends or a stronger event renews it), so one stuck sensor makes
  one alert; a run that passes the bar during the warm-up is this stream's normal and
  counts on that row only (``flat_factor=0`` turns this off, as it is for detectors
  saved before it existed).
* A day unlike the days before (timestamped rows): the mean of each column's last
  ``season_window`` (20) values is kept for each ``recurrence_slot`` (15-minute) slot of
  the day, by the wall-clock time as written (the last row's of the slot), for one day.
  Its difference from the same slot's level one day before (or a neighbouring slot's, when
  that one has none) is compared, two-sided, with the mean and deviation of the last
  ``long_window`` such differences, once 50 are known (the deviation floored as for the
  value check), then calibrated and fitted like every other kind. A daily bump that does
  not come, a weekday shaped like a holiday, a night that stays busy: values and levels
  this stream shows every day, at the wrong time of day, which no other check sees
  (``season_window=0`` turns this off, as it is for detectors saved before it existed;
  rows without a time leave it untouched).
* Routine events (timestamped rows): the largest evidence of each ``recurrence_slot``
  (15-minute) slot of the day, by the wall-clock time as written, is kept for the last
  days. When the same slot or a neighbour brought alert-level evidence on each of the
  last ``recurrence_days`` (2) days, the largest of those days' evidence is taken off
  this row's: a nightly job or a morning rush stops alerting after its second day, a
  fault repeating once the next day still alerts, and a spike far bigger than the
  routine one still does. A routine the model has partly learned, whose evidence
  falls below the alert level on one day, can alert once more two days later. The
  evidence is one per row, so with several columns a routine event in one hides a
  smaller event in another at that time. ``recurrence_days=0`` turns this off.
* Warm-up: during the first ``warmup`` (150) rows the statistics are not yet
  meaningful; the score is scaled by ``0.5 * rows / warmup``, so it stays below the
  alert level (low-confidence scores), and no alert is raised.
* One event, one alert: once a row reaches the alert level, the scores of the next
  ``refractory`` (100) rows, or of the next ``refractory_fraction`` (4%) of the rows
  read so far if that is more (a long stream's events last longer in rows), are
  multiplied by ``damping`` (0.2, so they stay below the alert level), unless a row
  brings more than twice the evidence of the alert that started the quiet period:
  that is a new, stronger event and a new alert.

The seasonal check and the quiet period of 4% (from 5%) were chosen on NAB's tuning
files with the per-row evidence of three model seeds replayed offline: the seed alone
moves NAB's score by about 1.5 points, so a change was kept only when it gained on all
three seeds (see the README). The flat-line check was added after reading the windows NAB streams missed (5 of
18 were metrics stuck at one value, 3 of them in files first run the stop before);
a factor of 1.1-1.2 scored best, 1.5 and 2 less, ``flat_min`` 5-20 alike (see the
README). The fitted tails and the windows of 5000 rows (from 1000) were chosen on 47 real NAB
streams and 7 NAB tweet streams, and checked on 4 more first run after the choice (see
the README). The alert tail
(1.5e-4, from 1.5e-3), the routine-event check and the wider calibration
bins were chosen on real NAB streams (``bench_anomaly.py --nab``, its tuning files; see
the README), at a cost on the script's own injected groups. The other defaults were
chosen on ``benchmarks/bench_anomaly.py`` (tuning files only, of
both its groups: smooth real series with injected anomalies, and noisy real metrics
with real-system anomalies; the split of runs 4-5, whose tuning and held-out files
shared recordings, re-split in run 6 without retuning). A plain HTM-style likelihood (the tail of a 5-10-row
mean of ``raw_score`` against its mean and deviation over the last 1,000-8,000 rows)
scored 12-15 on the first group's tuning series, 35-41 with the new-extreme and value
checks added, so these tails are kept; the calibration and the level checks took the
noisy group's tuning score at the alert level from 10 to 55 (results in
benchmarks/results.md).

Numbers of any size: the running statistics stay finite for values up to the largest
float (their sums of squares, once they overflow, are taken over the values scaled by
the largest), giving the scores the same values at an everyday scale would.

Saved detectors: :meth:`Detector.load` continues exactly where :meth:`Detector.save`
stopped. A file saved before the level checks and the calibrated tails existed stores
no options for them; it loads with them off, and scores as the detector that saved it.
Likewise a file saved before the routine-event check loads with it off and keeps its
calibration bins up to 40 (tested against 8c818af's and 735e471's own output).

Stop signals: :class:`SignalGuard` turns SIGINT, SIGTERM and SIGHUP into
:class:`Stopped` (with ``signum``) between rows; the commands then save and exit
with 128 + the signal (130, 143, 129).

Encoding and model
------------------
Each value is scaled to [0, 1] over its column's range and binned into ``bins``
(32) cells on ``tiles`` (2) grids shifted by half a bin, one CSDR column per grid,
so a near miss still shares a cell. The model is a small hierarchy (2 layers of
4x4x16, radius 2; chosen on the benchmark for quality at >= 3,500 rows/s at one
thread). ``raw_score`` is 1 minus the probability the prediction gave to the
actual cell or its ``tolerance`` (1) neighbours, averaged over the grids and
columns. ``predicted`` is the centre of the most probable cells: what the model
expected for this row before reading it.

Calendar features
-----------------
With timestamps (ISO 8601, or Unix seconds) and ``calendar=True``, the time of
day (24 hourly cells) and the day of the week (7 cells) are fed to the model as
an extra input-only port, so "busy on Monday morning" is learned as normal.
"""
from __future__ import annotations

import collections
import datetime
import io
import math
import signal
import statistics
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from . import Hierarchy, IODesc, LayerDesc, NeoError, none, prediction, set_global_state
from .codecs import RESET, Codec

__all__ = ["ALERT", "Row", "Scorer", "units", "DetectorOptions", "DetectorRow", "Detector",
           "parse_time", "BadRow", "SignalGuard", "Stopped", "STOP_SIGNALS", "csv_rows", "scan_ranges", "DetectRun", "detect_csv",
           "open_detector", "LiveReader", "load_scorer", "save_scorer", "score_source", "format_row"]

ALERT = 0.5
_NO_CALENDAR = np.zeros(2, dtype=np.int32)
_FIT_BELOW = 1e-3  # tails this small are checked against the fitted one (Detector._fitted)
_FIT_MIN = 1000   # deviations seen before a tail is fitted (20 excesses at tail_fit 0.02)
_TIME_SLACK = 3600.0  # seconds a row's time may go back (see Detector._compute)
_LN2 = math.log(2.0)
_SQRT2 = math.sqrt(2.0)
_FLOAT_MAX = sys.float_info.max


# ============================================================================ scoring
@dataclass
class Row:
    """The surprise of one unit: total bits, bits per symbol, probability, symbol count."""

    bits: float
    bits_per_symbol: float
    probability: float
    symbols: int


class Scorer:
    """Scores symbols with a trained model, optionally learning as it goes.

    ``score_one(unit)`` takes the symbols of one unit (an iterable of codec
    symbols; ``RESET`` clears the temporal state) and returns its :class:`Row`.
    Each symbol costs ``-log2`` of the probability the model's calibrated distribution
    (``neocli.predictive``, the one ``neocli eval`` and training report) gave it before
    seeing it; right after a state reset the model has no prediction yet, and the symbol
    is scored against the uniform distribution. With ``learn=True`` the model and the
    distribution then learn from the symbol, step for step as training does.
    ``predictive`` is the model's distribution (see :func:`neocli.training.predictive_of`;
    a fresh one when None).
    """

    def __init__(self, model: Hierarchy, codec: Codec, learn: bool = False, predictive: Any = None) -> None:
        from .predictive import Predictive

        self.model = model
        self.codec = codec
        self.learn = bool(learn)
        self.predictive = predictive if predictive is not None else Predictive(codec)
        z = codec.io_size[2]
        self._uniform_bits = float(codec.io_size[1] * math.log2(z))

    def reset(self) -> None:
        """Clear the temporal state (a new file or sequence starts)."""
        self.model.clear_state()

    def score_symbol(self, symbol: Any) -> float:
        """Bits of one symbol (then learn from it if ``learn``)."""
        self.codec.check_known(symbol, "data")
        cis = self.codec.encode(symbol)
        probs = self.model.get_prediction_acts(0)
        if probs.any():
            bits = self.predictive.score(probs, cis, learn=self.learn)
        else:
            bits = self._uniform_bits
            if self.learn:
                self.predictive.observe(cis)
        self.model.step([cis], self.learn)
        return bits

    def score_one(self, unit: Iterable[Any]) -> Row:
        """The :class:`Row` of one unit of symbols."""
        bits, n = 0.0, 0
        for s in unit:
            if s is RESET:
                self.reset()
                continue
            bits += self.score_symbol(s)
            n += 1
        return Row(bits, bits / n if n else 0.0, 2.0 ** -bits, n)


def units(codec: Codec, symbols: Iterable[Any], per: str) -> Iterator[list[Any]]:
    """Group a symbol stream into units: ``symbol``, ``line`` (ends with a symbol
    whose output ends with a newline; :func:`score_source` reads lines itself for the
    codecs that have no newline symbol), ``record``  (a CSV row; for other codecs a block ended by a blank line)
    or ``file`` (everything). Each unit is yielded as soon as it is complete."""
    if per not in ("symbol", "line", "record", "file"):
        raise NeoError(f"per must be symbol, line, record or file, got {per!r}")
    if per == "record" and codec.kind == "csv":
        per = "line"
    unit: list[Any] = []
    for s in symbols:
        if s is RESET:
            if per == "record" and unit:
                yield unit
                unit = []
            continue
        unit.append(s)
        if per == "symbol" or (per == "line" and codec.format(s).endswith(b"\n")):
            yield unit
            unit = []
    if unit:
        yield unit


# ============================================================================ detection
class BadRow(NeoError):
    """A data row the detector cannot use (missing or non-numeric value, bad time, or a
    time more than an hour before the latest row's)."""


@dataclass(frozen=True)
class DetectorOptions:
    """Settings of a :class:`Detector` (defaults chosen on benchmarks/bench_anomaly.py)."""

    bins: int = 32
    tiles: int = 2
    tolerance: int = 1
    layers: int = 2
    hidden: tuple = (4, 4, 16)
    radius: int = 2
    calendar: bool = True
    short_window: int = 4
    long_window: int = 5000
    value_window: int = 30
    level_window: int = 10
    baseline_window: int = 500
    min_sd: float = 0.02
    surprise_floor: float = 1e-3
    alert_tail: float = 1.5e-4
    range_evidence: float = 100.0
    extreme_tolerance: float = 0.02
    value_min_sd: float = 0.01
    extreme_evidence: float = 1e4
    flat_factor: float = 1.2
    flat_min: int = 10
    calib_window: int = 5000
    calib_tail: float = 0.002
    tail_fit: float = 0.02
    warmup: int = 150
    refractory: int = 100
    refractory_fraction: float = 0.04
    damping: float = 0.2
    margin: float = 0.1
    recurrence_days: int = 2
    recurrence_slot: int = 900
    season_window: int = 20

    def __post_init__(self) -> None:
        def need(name: str, ok: bool, rule: str) -> None:
            if not ok:
                raise NeoError(f"{name} must be {rule}, got {getattr(self, name)!r}")
        need("bins", isinstance(self.bins, int) and 2 <= self.bins <= 4096, "an integer in [2, 4096]")
        need("tiles", isinstance(self.tiles, int) and 1 <= self.tiles <= 16, "an integer in [1, 16]")
        need("tolerance", isinstance(self.tolerance, int) and 0 <= self.tolerance < self.bins, "an integer in [0, bins)")
        need("layers", isinstance(self.layers, int) and 1 <= self.layers <= 8, "an integer in [1, 8]")
        need("hidden", len(tuple(self.hidden)) == 3 and all(int(v) >= 1 for v in self.hidden), "three sizes >= 1")
        need("radius", isinstance(self.radius, int) and self.radius >= 0, "an integer >= 0")
        need("surprise_floor", 0 < self.surprise_floor < 1, "in (0, 1)")
        for name in ("short_window", "long_window", "value_window"):
            need(name, isinstance(getattr(self, name), int) and getattr(self, name) >= 1, "an integer >= 1")
        need("min_sd", self.min_sd > 0, "> 0")
        need("alert_tail", 0 < self.alert_tail < 1, "in (0, 1)")
        need("range_evidence", self.range_evidence >= 1, ">= 1")
        need("extreme_tolerance", self.extreme_tolerance >= 0, ">= 0")
        need("value_min_sd", self.value_min_sd >= 0, ">= 0")
        need("extreme_evidence", self.extreme_evidence >= 1, ">= 1")
        need("flat_factor", type(self.flat_factor) in (int, float) and math.isfinite(self.flat_factor)
             and (self.flat_factor == 0 or self.flat_factor >= 1), "0 (off) or a finite number >= 1")
        need("flat_min", type(self.flat_min) is int and self.flat_min >= 2, "an integer >= 2")
        # 0 turns the check (or the warm-up, or the quiet period) off.
        for name in ("level_window", "baseline_window", "calib_window", "warmup", "refractory"):
            need(name, isinstance(getattr(self, name), int) and getattr(self, name) >= 0, "an integer >= 0")
        need("season_window", type(self.season_window) is int and 0 <= self.season_window <= 100_000,
             "an integer in [0, 100000]")
        need("calib_tail", 0 < self.calib_tail < 0.5, "in (0, 0.5)")
        need("tail_fit", 0 <= self.tail_fit < 0.5, "in [0, 0.5)")
        need("refractory_fraction", 0 <= self.refractory_fraction <= 1, "in [0, 1]")
        need("damping", 0 <= self.damping <= 1, "in [0, 1]")
        need("margin", self.margin >= 0, ">= 0")
        need("recurrence_days", isinstance(self.recurrence_days, int) and 0 <= self.recurrence_days <= 28,
             "an integer in [0, 28]")
        # At most an hour, so that a slot's neighbours on one day never reach another day.
        need("recurrence_slot", isinstance(self.recurrence_slot, int) and 60 <= self.recurrence_slot <= 3600
             and 86400 % self.recurrence_slot == 0, "a whole number of seconds in [60, 3600] that divides a day")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (stored in a saved detector)."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DetectorOptions":
        """Rebuild from :meth:`to_dict` output (unknown keys are an error)."""
        if not isinstance(d, dict):
            raise NeoError("detector options must be a JSON object")
        d = dict(d)
        if "hidden" in d:
            d["hidden"] = tuple(d["hidden"])
        try:
            return cls(**d)
        except TypeError as e:
            raise NeoError(f"bad detector options: {e}") from None


@dataclass
class DetectorRow:
    """What :meth:`Detector.update` returns for one row."""

    predicted: tuple
    raw_score: float
    anomaly_score: float
    out_of_range: bool = False
    _alert: Optional[float] = field(default=None, repr=False, compare=False)


def parse_time(text: Any) -> float:
    """Unix seconds of a timestamp: a number (Unix seconds) or an ISO 8601 date-time
    (naive times are taken as UTC). Raises :class:`BadRow` when it is neither."""
    return _when(text)[0]


def _when(text: Any) -> tuple[float, datetime.datetime]:
    """(Unix seconds, the wall-clock date-time as written) of a timestamp."""
    if isinstance(text, datetime.datetime):
        dt = text
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        dt = _from_unix(float(text), text)
    else:
        s = str(text).strip()
        if s.lstrip("+-").replace(".", "", 1).isdigit():  # a plain number is Unix seconds
            dt = _from_unix(float(s), text)
        else:
            try:
                dt = datetime.datetime.fromisoformat(s)
            except ValueError:
                dt = _dateutil_parse(s)
    # Calendar features use the wall-clock time the data was written in; order
    # checks use the absolute instant (naive times are taken as UTC).
    aware = dt if dt.tzinfo is not None else dt.replace(tzinfo=datetime.timezone.utc)
    return aware.timestamp(), dt


def _from_unix(v: float, shown: Any) -> datetime.datetime:
    if not math.isfinite(v):
        raise BadRow(f"timestamp {shown!r} is not finite")
    try:
        return datetime.datetime.fromtimestamp(v, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise BadRow(f"timestamp {shown!r} is out of range") from None


def _dateutil_parse(s: str) -> datetime.datetime:
    from dateutil import parser  # python-dateutil: the ISO 8601 forms fromisoformat misses

    try:
        return parser.isoparse(s)
    except (ValueError, OverflowError):
        try:
            return parser.parse(s)
        except (ValueError, OverflowError):
            raise BadRow(f"timestamp {s!r} is neither ISO 8601 nor Unix seconds") from None


def _calendar(text: Any) -> tuple[float, np.ndarray, float]:
    """(Unix seconds, [hour-of-day cell, day-of-week cell], wall-clock seconds) of a
    timestamp: the wall-clock seconds count the time as written (as if it were UTC), so
    a local 03:15 is the same time of day before and after a daylight-saving change."""
    if type(text) is str and text.isdigit() and len(text) < 12:
        # Plain Unix seconds (the common machine-log form): the cells by arithmetic,
        # without building a datetime (1970-01-01 was a Thursday, weekday 3).
        t = float(text)
        d, r = divmod(int(text), 86400)
        return t, np.array([r // 3600, (d + 3) % 7], dtype=np.int32), t
    t, dt = _when(text)
    wall = t if dt.tzinfo is None else dt.replace(tzinfo=datetime.timezone.utc).timestamp()
    return t, np.array([dt.hour, dt.weekday()], dtype=np.int32), wall


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM or SIGHUP) arrived; ``signum`` says which.

    The CLI saves what it must, then exits with 128 + ``signum`` (130 for Ctrl-C).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


#: The signals :class:`SignalGuard` turns into :class:`Stopped` (SIGHUP where it exists).
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class SignalGuard:
    """SIGINT/SIGTERM/SIGHUP become :class:`Stopped`, but never in the middle of a row.

    Use ``with guard:`` around a loop and ``with guard.critical():`` around each
    row's update: a signal that arrives inside the critical part is held until it
    ends, so the saved model is always consistent; while waiting for input it
    interrupts at once.
    """

    def __init__(self) -> None:
        self._depth = 0
        self.pending: Optional[int] = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "SignalGuard":
        for sig in STOP_SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay as they are
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self._depth:
            self.pending = signum
        else:
            raise Stopped(signum)

    class _Critical:
        def __init__(self, guard: "SignalGuard") -> None:
            self.g = guard

        def __enter__(self) -> None:
            self.g._depth += 1

        def __exit__(self, *exc: Any) -> None:
            self.g._depth -= 1
            if not self.g._depth and self.g.pending is not None:
                raise Stopped(self.g.pending)

    def critical(self) -> "SignalGuard._Critical":
        """A context in which signals are held until it ends."""
        return SignalGuard._Critical(self)


class _NoGuard:
    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        pass


_NO_GUARD = _NoGuard()


class Detector:
    """Online anomaly detector for numeric rows (see the module docstring).

    ``update(x, t)`` predicts, scores, then learns from one row and returns a
    :class:`DetectorRow`; ``score_one(x, t)`` / ``learn_one(x, t)`` split it
    river-style (``score_one`` leaves the detector unchanged). ``x`` is a number
    or a sequence (one value per column); ``t`` a timestamp (ISO 8601 string,
    Unix seconds or datetime) or None.

    ``ranges``: one ``(low, high)`` per column (or one pair for all), or None to
    learn the range adaptively from the stream (the first ``warmup`` rows widen
    it freely; later, a value outside it widens it by ``margin`` of the span and
    counts as evidence of an anomaly).
    """

    def __init__(self, columns: Sequence[str] = ("value",), ranges: Any = None,
                 options: Optional[DetectorOptions] = None, seed: int = 0,
                 model: Optional[Hierarchy] = None) -> None:
        self.columns = [str(c) for c in columns]
        if not self.columns:
            raise NeoError("columns must name at least one column")
        self.options = options or DetectorOptions()
        self.ranges = _check_ranges(ranges, len(self.columns))
        self.adaptive = self.ranges is None
        o = self.options
        self.rows = 0
        self.last_time: Optional[float] = None
        self._short = _Window(o.short_window)   # surprise of the last rows
        self._long = _Window(o.long_window)     # surprise, one per row
        self._long_m = _Window(o.long_window)   # short-window means of surprise
        self._vals = [_Window(o.value_window) for _ in self.columns]
        self._levels = [_Window(max(o.level_window, 1)) for _ in self.columns]
        self._baselines = [_Window(max(o.baseline_window, 1)) for _ in self.columns]
        # Deviations seen so far (short-mean surprise, surprise, then the value, the level
        # and the level against the baseline of each column), to calibrate the tails.
        # ... then, with the seasonal check on, each column's level against yesterday's.
        n_kinds = 2 + 3 * len(self.columns) + (len(self.columns) if o.season_window else 0)
        self._calib = [_Calib(o.calib_window) for _ in range(n_kinds)]
        self._sqrt_level = math.sqrt(max(o.level_window, 1))
        self._z_ref = (statistics.NormalDist().inv_cdf(1.0 - o.calib_tail),
                       statistics.NormalDist().inv_cdf(1.0 - o.calib_tail / 2.0))
        self._seen: Optional[list[list[float]]] = None  # [low, high] of each column's values so far
        # Per column: [last value, length of its run of equal values, longest run before
        # it, whether the run passed the flat-line bar without an alert yet].
        self._runs: Optional[list[list[Any]]] = None
        self._quiet = 0
        self._alert_e = 0.0
        self._pending: Optional[tuple] = None
        # The largest evidence seen in each time slot of the last days (slot -> evidence).
        self._slots: dict[int, float] = {}
        self._per_day = 86400 // self.options.recurrence_slot  # slots in a day
        # The seasonal check, per column: its last season_window values, the level (their
        # mean) at the last row of each time slot of the last day, and the differences
        # between each level and the same slot's the day before.
        self._s_vals = [_Window(max(o.season_window, 1)) for _ in self.columns]
        self._s_slots: list[dict[int, float]] = [{} for _ in self.columns]
        self._s_diffs = [_Window(o.long_window) for _ in self.columns]
        # Slots kept beyond yesterday's and its neighbours: those a row an hour back needs.
        self._s_slack = -(-int(_TIME_SLACK) // o.recurrence_slot)
        if model is None:
            set_global_state(int(seed))
            model = Hierarchy(self._io_descs(), [
                LayerDesc(hidden_size=tuple(int(v) for v in o.hidden), up_radius=o.radius, down_radius=o.radius)
                for _ in range(o.layers)])
        self.model = model
        w, h, z = model.get_io_size(0)
        if (w * h, z) != (len(self.columns) * o.tiles, o.bins):
            raise NeoError(f"model IO 0 is {(w, h, z)}, but {len(self.columns)} columns x {o.tiles} tiles "
                           f"of {o.bins} bins are needed")
        self.calendar = model.get_num_io() > 1

    # ------------------------------------------------------------------ building
    def _io_descs(self) -> list[IODesc]:
        o = self.options
        ios = [IODesc(size=(1, len(self.columns) * o.tiles, o.bins), io_type=prediction,
                      up_radius=o.radius, down_radius=o.radius)]
        if o.calendar:
            ios.append(IODesc(size=(1, 2, 24), io_type=none, up_radius=o.radius, down_radius=o.radius))
        return ios

    # ------------------------------------------------------------------ encoding
    def _values(self, x: Any) -> list[float]:
        try:
            if type(x) is float:
                v = [x]
            elif type(x) is list and all(type(a) is float for a in x):
                v = x
            else:
                v = [float(x)] if np.isscalar(x) else [float(a) for a in x]
        except (TypeError, ValueError):
            raise BadRow(f"not numbers: {x!r}") from None
        if len(v) != len(self.columns):
            raise BadRow(f"expected {len(self.columns)} values, got {len(v)}")
        if not all(math.isfinite(a) for a in v):
            raise BadRow(f"not finite: {x!r}")
        return v

    def _range_for(self, v: list[float]) -> tuple[list, list, bool]:
        """(lows, highs, out_of_range) to encode ``v`` with, the range widened if adaptive."""
        o = self.options
        if self.ranges is None:  # the first row of an adaptive stream
            return list(v), list(v), False
        lo = [r[0] for r in self.ranges]
        hi = [r[1] for r in self.ranges]
        out = any(a < l or a > h for a, l, h in zip(v, lo, hi))
        if out and self.adaptive:
            for j, a in enumerate(v):
                span = max(hi[j] - lo[j], abs(a) * 1e-3, 1e-9)
                # The margin stops where the span would overflow (bins of infinite width
                # encode nothing); a value beyond even that is refused.
                if a < lo[j]:
                    lo[j] = max(a - o.margin * span, hi[j] - _FLOAT_MAX, -_FLOAT_MAX)
                elif a > hi[j]:
                    hi[j] = min(a + o.margin * span, lo[j] + _FLOAT_MAX, _FLOAT_MAX)
                else:
                    continue
                if not (lo[j] <= a <= hi[j] and hi[j] - lo[j] < math.inf):
                    raise BadRow(f"{self.columns[j]}: {a!r} is too far from the values before it "
                                 f"(the range would span more than {_FLOAT_MAX:g})")
        # Free widening during warm-up: the range is still being learned.
        return lo, hi, out and self.rows >= o.warmup

    def _encode(self, v: list[float], lo: list, hi: list) -> list[int]:
        # Tiles: the value binned on grids shifted by 1/tiles of a bin, so that
        # near-misses share cells in some tiles.
        o = self.options
        top = o.bins - 1
        cells = []
        for a, l, h in zip(v, lo, hi):
            x = (a - l) / (h - l) if h > l else 0.5
            x = min(max(x, 0.0), 1.0) * top
            for k in range(o.tiles):
                cells.append(min(int(x + (k + 0.5) / o.tiles), top))
        return cells

    def _decode(self, cells: list[int], lo: list, hi: list) -> tuple:
        o = self.options
        out = []
        for j, (l, h) in enumerate(zip(lo, hi)):
            tc = cells[j * o.tiles:(j + 1) * o.tiles]
            x = sum(c - (k + 0.5) / o.tiles + 0.5 for k, c in enumerate(tc)) / (o.tiles * (o.bins - 1))
            out.append(l + min(max(x, 0.0), 1.0) * (h - l))
        return tuple(out)

    # ------------------------------------------------------------------ scoring
    def _compute(self, x: Any, t: Any) -> tuple:
        """Everything ``update`` needs, without changing the detector."""
        o = self.options
        v = self._values(x)
        cal = None
        when = None
        if t is not None:
            when, cal, wall = _calendar(t)
            # Up to an hour back is kept: the hour a daylight-saving change repeats in
            # local times, or machines whose clocks differ a little.
            if self.last_time is not None and when < self.last_time - _TIME_SLACK:
                raise BadRow(f"time {t!r} is more than an hour earlier than the latest row's")
        if self.calendar and cal is None:
            cal = _NO_CALENDAR
        lo, hi, out = self._range_for(v)
        cis = self._encode(v, lo, hi)
        acts = self.model.get_prediction_acts(0)
        z = o.bins
        flat = acts.tolist()  # a few dozen floats: plain Python beats numpy calls at this size
        cols = [flat[k:k + z] for k in range(0, len(flat), z)]
        if any(max(col) > 0.0 for col in cols):
            pred = self._decode([col.index(max(col)) for col in cols], lo, hi)
            tol = o.tolerance
            p_sum = 0.0
            for col, c in zip(cols, cis):
                p_sum += sum(col[max(c - tol, 0):c + tol + 1]) if tol else col[c]
            raw = 1.0 - min(max(p_sum / len(cis), 0.0), 1.0)
        else:
            pred = tuple(v)
            raw = 1.0
        if out:
            raw = 1.0
        surprise = -math.log(max(1.0 - raw, o.surprise_floor)) / -math.log(o.surprise_floor)
        m = self._short.mean_with(surprise)
        zs: list[float] = []
        # Computed once a row: the evidence reads it, the commit updates the runs with it.
        flat = self._flat_counts(v) if o.flat_factor and self._runs is not None else None
        wslot = int(wall // o.recurrence_slot) if when is not None else None
        season = self._season(v, wslot) if o.season_window and wslot is not None else None
        e = e_raw = self._evidence(v, surprise, m, out, zs, flat is not None and any(flat), season)
        e_alert = -math.log10(o.alert_tail)
        slot = None
        if wslot is not None and o.recurrence_days:
            slot = wslot
            e = self._recurrence(e, slot, e_alert)
        score = e / (e + e_alert)
        alert = False
        if self._quiet > 0 and not (e >= e_alert and e > 2.0 * self._alert_e):
            score *= o.damping
        elif self.rows < o.warmup:
            score *= 0.5 * self.rows / o.warmup
        else:
            alert = e >= e_alert
        row = DetectorRow(pred, raw, score, out)
        row._alert = e if alert else None
        return (v, when, cal, np.array(cis, dtype=np.int32), lo, hi, row, surprise, m, e_raw, slot, flat, zs,
                wslot, season)

    def _recurrence(self, e: float, slot: int, e_alert: float) -> float:
        """The evidence ``e`` less the largest evidence the same time of day (this slot or
        a neighbour) brought on the last ``recurrence_days`` days, when on each of them it
        reached the alert level: a daily job, a morning rush, is this stream's normal,
        however surprising. One evidence per row: with several columns, a routine event
        in one column also hides a smaller event in another at that time of day."""
        o = self.options
        per_day = self._per_day
        got = self._slots.get
        refs = []
        for k in range(1, o.recurrence_days + 1):
            c = slot - k * per_day
            refs.append(max(got(c - 1, 0.0), got(c, 0.0), got(c + 1, 0.0)))
        if min(refs) < e_alert:
            return e
        return max(e - max(refs), 0.0)

    def _evidence(self, v: list[float], surprise: float, m: float, out: bool, zs: list,
                  flat: bool = False, season: Optional[list] = None) -> float:
        """-log10 of the smallest tail probability (see the module docstring); the
        deviations found are appended to ``zs`` (None where there is none yet); ``flat``: this
        row passes the flat-line bar (see :meth:`_flat_counts`); ``season``: each column's
        (level, difference from the day before) of :meth:`_season`, or None."""
        o = self.options
        tail = 1.0
        if len(self._long) >= 2:
            if o.calib_window:
                z_ref = self._z_ref[0]
                zm = max(self._long_m.z(m, o.min_sd), 0.0)
                z = max(self._long.z(surprise, o.min_sd), 0.0)
                zs += (zm, z)
                tail = 0.5 * math.erfc(max(zm / self._calib[0].scale(zm, o.calib_tail, z_ref),
                                           z / self._calib[1].scale(z, o.calib_tail, z_ref)) / _SQRT2)
                if o.tail_fit and tail < _FIT_BELOW:
                    tail = min(self._fitted(0, zm, z_ref, 0.5), self._fitted(1, z, z_ref, 0.5))
            else:
                # Uncalibrated, the tails as the detector computed them before calibration
                # existed, to the last bit (a detector saved then continues exactly).
                zs += (None, None)
                tail = min(self._long_m.upper_tail(m, o.min_sd), self._long.upper_tail(surprise, o.min_sd))
        else:
            zs += (None, None)
        seen = self._seen or [None] * len(v)
        z_ref = self._z_ref[1]
        k = 2
        for x, w, lw, bw, lh in zip(v, self._vals, self._levels, self._baselines, seen):
            if len(w) >= 10:
                floor = o.value_min_sd * (lh[1] - lh[0]) if lh is not None else 0.0
                if floor == math.inf:  # the span of huge values overflows; its halves do not
                    floor = o.value_min_sd * 2.0 * (0.5 * lh[1] - 0.5 * lh[0])
                if not (o.calib_window or o.level_window):
                    # The value check alone, uncalibrated: computed as before calibration
                    # and the level checks existed (a detector saved then continues exactly).
                    zs += (None, None, None)
                    tail = min(tail, w.two_sided_tail(x, floor))
                    k += 3
                    continue
                mu, sd = w.mean_sd(floor)
                z = abs(x - mu) / sd
                zs.append(z)
                z = z / self._calib[k].scale(z, o.calib_tail, z_ref)
                zl = zb = None
                # The level is checked once its window is full (a detector saved before the
                # level check existed, given one, starts with it empty).
                if o.level_window and len(lw) + 1 >= o.level_window:
                    # The mean of the last level_window values: a sustained shift that
                    # no single value of a noisy stream shows ...
                    level = lw.mean_with(x)
                    zl = abs(level - mu) / (sd / self._sqrt_level)
                    z = max(z, zl / self._calib[k + 1].scale(zl, o.calib_tail, z_ref))
                    if o.baseline_window and len(bw) >= 50:
                        # ... and against a longer baseline: a slow ramp that the last
                        # value_window values follow.
                        mu_b, sd_b = bw.mean_sd(floor)
                        zb = abs(level - mu_b) / (sd_b / self._sqrt_level)
                        z = max(z, zb / self._calib[k + 2].scale(zb, o.calib_tail, z_ref))
                zs += (zl, zb)
                t = math.erfc(z / _SQRT2)
                if o.tail_fit and t < _FIT_BELOW:  # the value, level and baseline deviations
                    t = min(self._fitted(k + j, d, z_ref, 1.0) for j, d in enumerate(zs[-3:]) if d is not None)
                tail = min(tail, t)
            else:
                zs += (None, None, None)
            k += 3
        if o.season_window:
            for x, (_, d), dw, lh in zip(v, season or [(None, None)] * len(v), self._s_diffs, seen):
                if d is None or len(dw) < 50:
                    zs.append(None)
                else:
                    # The level against the same time of day yesterday, in the deviations of
                    # that difference this stream has shown: a day unlike the days before.
                    floor = o.value_min_sd * (lh[1] - lh[0]) if lh is not None else 0.0
                    if floor == math.inf:  # as for the value check: the halves do not overflow
                        floor = o.value_min_sd * 2.0 * (0.5 * lh[1] - 0.5 * lh[0])
                    mu, sd = dw.mean_sd(floor)
                    z = abs(d - mu) / sd
                    if z == math.inf:  # d - mu overflows near the largest floats; halves do not
                        z = abs(0.5 * d - 0.5 * mu) / (0.5 * sd)
                    zs.append(z)
                    t = math.erfc(z / self._calib[k].scale(z, o.calib_tail, z_ref) / _SQRT2)
                    if o.tail_fit and t < _FIT_BELOW:
                        t = self._fitted(k, z, z_ref, 1.0)
                    tail = min(tail, t)
                k += 1
        if out:
            tail /= o.range_evidence
        if self._seen is not None:
            tol = o.extreme_tolerance
            for x, (lo, hi) in zip(v, self._seen):
                if x > hi + tol * (hi - lo) or x < lo - tol * (hi - lo):
                    tail /= o.extreme_evidence
                    break
        if flat:  # a run of equal values longer than any before (see _flat_counts)
            tail /= o.extreme_evidence
        return 0.0 if tail >= 1.0 else -math.log10(max(tail, 1e-300))

    def _season(self, v: list[float], wslot: int) -> list[tuple]:
        """Per column, (level, difference): the mean of the last ``season_window`` values
        with this one (None until there are that many), and its difference from the level
        at the same time slot one day before (or a neighbouring slot; None when there is
        none, or it is not finite)."""
        o = self.options
        out = []
        c = wslot - self._per_day
        for x, w, st in zip(v, self._s_vals, self._s_slots):
            if len(w) + 1 < o.season_window:
                out.append((None, None))
                continue
            level = w.mean_with(x)
            ref = st.get(c)
            if ref is None:
                ref = st.get(c - 1, st.get(c + 1))
            d = None if ref is None else level - ref
            out.append((level, d if d is not None and math.isfinite(d) else None))
        return out

    def _flat_counts(self, v: list[float]) -> list[bool]:
        """Per column, whether this row's value is flat-line evidence: it makes the run of
        equal values, for the first time in that run, at least ``flat_min`` rows long and
        longer than ``flat_factor`` times the longest run before it (a stuck sensor, a
        metric gone flat), or it continues a run that passed that bar after the warm-up
        and has not raised an alert since (one that passed it in a quiet period)."""
        o = self.options
        out = []
        for x, (last, run, longest, pending) in zip(v, self._runs):
            if x != last:
                out.append(False)
                continue
            bar = o.flat_factor * longest
            r = run + 1
            out.append(pending or (r >= o.flat_min and r > bar and not (run >= o.flat_min and run > bar)))
        return out

    def _fitted(self, k: int, z: float, z_ref: float, sides: float) -> float:
        """The tail probability of deviation ``z`` of kind ``k``: the calibrated Gaussian
        one (``sides`` 0.5: one-sided, 1: two-sided), or, when larger, the one fitted to
        this stream's own largest deviations of that kind (see :meth:`_Calib.fitted_tail`)."""
        o = self.options
        cb = self._calib[k]
        t = sides * math.erfc(z / cb.scale(z, o.calib_tail, z_ref) / _SQRT2)
        if t < _FIT_BELOW:
            t = max(t, cb.fitted_tail(z, o.tail_fit))
        return t

    def score_one(self, x: Any, t: Any = None) -> float:
        """The anomaly score of a row, leaving the detector unchanged."""
        self._pending = (x, t, self._compute(x, t))
        return self._pending[2][6].anomaly_score

    def learn_one(self, x: Any, t: Any = None) -> None:
        """Learn from a row (after ``score_one`` on the same row, its work is reused)."""
        if self._pending is not None and self._pending[0] is x and self._pending[1] is t:
            c = self._pending[2]
        else:
            c = self._compute(x, t)
        self._pending = None
        self._commit(c)

    def update(self, x: Any, t: Any = None) -> DetectorRow:
        """Predict, score, then learn from one row: its :class:`DetectorRow`."""
        c = self._compute(x, t)
        self._commit(c)
        return c[6]

    def _commit(self, c: tuple) -> None:
        o = self.options
        v, when, cal, cis, lo, hi, row, surprise, m, e_raw, slot, flat, zs, wslot, season = c
        self.model.step([cis, cal] if self.calendar else [cis], True)
        if self.adaptive:
            self.ranges = [(float(a), float(b)) for a, b in zip(lo, hi)]
        if when is not None:
            self.last_time = when if self.last_time is None else max(self.last_time, when)
        self._short.push(surprise)
        self._long.push(surprise)
        self._long_m.push(m)
        for x, w, lw, bw in zip(v, self._vals, self._levels, self._baselines):
            w.push(x)
            lw.push(x)
            bw.push(x)
        for z, cb in zip(zs, self._calib):
            if z is not None:
                cb.push(z)
        if self._runs is None:
            self._runs = [[x, 1, 0, False] for x in v]
        else:
            counts = flat or [False] * len(v)
            # A run that passed the bar keeps counting until an alert has reported it, so
            # one passing it in a quiet period alerts when that ends; in the warm-up a run
            # is this stream's normal and counts once only, at its crossing.
            keep = row._alert is None and self.rows >= o.warmup
            for x, rl, c in zip(v, self._runs, counts):
                if x == rl[0]:
                    rl[1] += 1
                    rl[3] = c and keep
                else:
                    rl[2] = max(rl[2], rl[1])
                    rl[0], rl[1], rl[3] = x, 1, False
        if self._seen is None:
            self._seen = [[x, x] for x in v]
        else:
            for x, lh in zip(v, self._seen):
                if x < lh[0]:
                    lh[0] = x
                elif x > lh[1]:
                    lh[1] = x
        if season is not None:
            # The slots a later row can still look up: yesterday's and its neighbours, also
            # for a row up to an hour back (see _compute).
            slack = self._s_slack
            keep = wslot - self._per_day - 2 - slack
            for x, w, st, dw, (level, d) in zip(v, self._s_vals, self._s_slots, self._s_diffs, season):
                w.push(x)
                if d is not None:
                    dw.push(d)
                if level is not None:  # a mean_with, finite for any finite values
                    st[wslot] = level
                    if len(st) > self._per_day + 8 + slack:
                        for k in [k for k in st if k < keep]:
                            del st[k]
        if slot is not None and self.rows >= o.warmup:  # warm-up evidence means nothing yet
            if e_raw > self._slots.get(slot, -1.0):
                self._slots[slot] = e_raw
            if len(self._slots) > (o.recurrence_days + 2) * self._per_day:
                old = slot - (o.recurrence_days + 1) * self._per_day - 1
                for k in [k for k in self._slots if k < old]:
                    del self._slots[k]
        if row._alert is not None:
            self._quiet = max(o.refractory, int(o.refractory_fraction * self.rows))
            self._alert_e = row._alert
        elif self._quiet > 0:
            self._quiet -= 1
        self.rows += 1

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """The detector's own state (JSON-ready) beside the model's weights and state."""
        return {"columns": self.columns, "options": self.options.to_dict(),
                "ranges": self.ranges, "adaptive": self.adaptive, "rows": self.rows,
                "last_time": self.last_time, "short": self._short.to_dict(), "long": self._long.to_dict(),
                "long_m": self._long_m.to_dict(), "values": [w.to_dict() for w in self._vals], "seen": self._seen,
                "runs": self._runs,
                "levels": [w.to_dict() for w in self._levels],
                "baselines": [w.to_dict() for w in self._baselines], "calib": [list(cb.q) for cb in self._calib],
                "calib_bins": "log" if self._calib[0].log else "linear",
                "quiet": self._quiet, "alert_evidence": self._alert_e,
                "slots": [[k, e] for k, e in sorted(self._slots.items())],
                "season": [{"values": w.to_dict(), "levels": [[k, a] for k, a in sorted(st.items())],
                            "diffs": dw.to_dict()}
                           for w, st, dw in zip(self._s_vals, self._s_slots, self._s_diffs)]}

    def save(self, path: str, meta: Optional[dict[str, Any]] = None) -> None:
        """Write the detector (model, state and statistics) atomically to an ``.ohr`` file."""
        m = dict(meta or {})
        m["detector"] = self.state_dict()
        self.model.save_to_file(path, meta=m)

    @classmethod
    def load(cls, path: str) -> "Detector":
        """A detector saved with :meth:`save`; it continues exactly where it stopped."""
        from .ohr import read_header

        header = read_header(path)
        d = header.get("detector")
        if not isinstance(d, dict):
            return cls._from_csv_model(path, header)
        model = Hierarchy(file_name=path)
        try:
            opts = dict(d["options"])
            for name, before in _OPTIONS_BEFORE.items():
                opts.setdefault(name, before)
            det = cls(d["columns"], d["ranges"], DetectorOptions.from_dict(opts), model=model)
            det.adaptive = bool(d["adaptive"])
            det.rows = int(d["rows"])
            det.last_time = None if d["last_time"] is None else float(d["last_time"])
            det._short.load(d["short"])
            det._long.load(d["long"])
            det._long_m.load(d["long_m"])
            if len(d["values"]) != len(det._vals):
                raise ValueError("one value window per column expected")
            for w, wd in zip(det._vals, d["values"]):
                w.load(wd)
            seen = d.get("seen")  # absent in detectors saved before the extreme-value check
            det._seen = None if seen is None else [[float(a), float(b)] for a, b in seen]
            if det._seen is not None and len(det._seen) != len(det.columns):
                raise ValueError("one seen range per column expected")
            runs = d.get("runs")  # absent in detectors saved before the flat-line check
            if runs is not None:
                if not (isinstance(runs, list) and len(runs) == len(det.columns)
                        and all(_good_run(rl, det.rows) for rl in runs)):
                    raise ValueError("one run of equal values per column expected: "
                                     "[value, run length, longest run before, passed the bar]")
                det._runs = [[float(x), r, m, p] for x, r, m, p in runs]
            # Absent in detectors saved before the level check, the baseline check and the
            # calibrated tails (whose options turn them off, see _OPTIONS_BEFORE).
            _load_windows(d.get("levels"), det._levels, "one level window per column expected")
            _load_windows(d.get("baselines"), det._baselines, "one baseline window per column expected")
            log = d.get("calib_bins", "linear") == "log"  # detectors saved before: 0.1 up to 40
            for cb in det._calib:
                cb.log = log
            _load_windows(d.get("calib"), det._calib,
                          "calibration histories: two for surprise, three per column and, with the "
                          "seasonal check, one more per column expected")
            season = d.get("season")  # absent in detectors saved before the seasonal check
            if det.options.season_window:
                if not (isinstance(season, list) and len(season) == len(det.columns)):
                    raise ValueError("one seasonal state per column expected")
                for s, w, st, dw in zip(season, det._s_vals, det._s_slots, det._s_diffs):
                    w.load(s["values"])
                    dw.load(s["diffs"])
                    for k, a in s["levels"]:
                        if type(k) is not int or type(a) not in (int, float) or not math.isfinite(a):
                            raise ValueError("a seasonal level is [slot, finite number]")
                        st[k] = float(a)
            det._slots = {int(k): float(e) for k, e in d.get("slots", [])}
            det._quiet = int(d["quiet"])
            det._alert_e = float(d["alert_evidence"])
        except (KeyError, TypeError, ValueError, OverflowError) as e:  # Overflow: an integer too large
            raise NeoError(f"'{path}': damaged detector entry in the header ({e})") from None
        return det


    @classmethod
    def _from_csv_model(cls, path: str, header: dict[str, Any]) -> "Detector":
        """A detector around a model trained by ``neocli train --codec csv`` (fixed
        range and bins of its codec, one tile, no calendar port)."""
        c = header.get("codec")
        if not isinstance(c, dict) or c.get("kind") != "csv":
            raise NeoError(f"'{path}' is neither a detector model nor a csv-codec model")
        from .codecs import codec_from_dict

        codec = codec_from_dict(c)
        model = Hierarchy(file_name=path)
        if model.get_num_io() != 1:
            raise NeoError(f"'{path}': a csv-codec model with {model.get_num_io()} IO ports")
        names = codec.columns or [str(i + 1) for i in range(len(codec.lows))]
        opts = DetectorOptions(bins=codec.bins, tiles=1, tolerance=min(1, codec.bins - 1), calendar=False)
        return cls(names, list(zip(codec.lows, codec.highs)), opts, model=model)


#: Options a detector saved before they existed does not store, with the values that
#: make it work as it did (the checks they belong to off), so that it continues exactly.
_OPTIONS_BEFORE = {"level_window": 0, "baseline_window": 0, "calib_window": 0, "recurrence_days": 0,
                   "tail_fit": 0.0, "flat_factor": 0.0, "season_window": 0, "refractory_fraction": 0.0}


def _good_run(rl: Any, rows: int) -> bool:
    """Whether ``rl`` is a saved flat-line run: a finite value, a run length in [1, rows],
    a longest run in [0, rows] and a flag."""
    if not (isinstance(rl, list) and len(rl) == 4):
        return False
    x, r, m, p = rl
    return (type(x) in (int, float) and math.isfinite(x) and type(r) is int and type(m) is int
            and 1 <= r <= rows and 0 <= m <= rows and type(p) is bool)


def _load_windows(saved: Any, windows: list, mismatch: str) -> None:
    """Restore ``windows`` from their saved states (nothing when ``saved`` is None)."""
    if saved is None:
        return
    if len(saved) != len(windows):
        raise ValueError(mismatch)
    for w, wd in zip(windows, saved):
        w.load(wd)


class _Window:
    """The last ``size`` numbers with their running sum and sum of squares (O(1) a row).

    Values whose squares overflow (beyond about 1e154) make the sums infinite: the sums
    are then recomputed from the numbers at each push, and the mean and deviation taken
    over the numbers scaled by the largest, until those values have left the window.
    A value removed that dwarfs the rest (its square a million times their sum of
    squares) has its rounding error recomputed away, so one huge value does not leave
    a lasting deviation behind (a metric dropping to near zero does this too; the
    statistics then differ from the plain running ones in their last bits). Otherwise
    they are the running ones, to the last bit.
    """

    def __init__(self, size: int) -> None:
        self.q: collections.deque = collections.deque(maxlen=size)
        self.s = 0.0
        self.s2 = 0.0

    def __len__(self) -> int:
        return len(self.q)

    def push(self, x: float) -> None:
        old2 = 0.0
        if len(self.q) == self.q.maxlen:
            old = self.q[0]
            old2 = old * old
            self.s -= old
            self.s2 -= old2
        self.q.append(x)
        self.s += x
        self.s2 += x * x
        if not (self.s2 < math.inf and old2 <= 1e6 * self.s2):
            self.s = _sum(self.q)
            self.s2 = _sum([a * a for a in self.q])

    def mean_with(self, x: float) -> float:
        """The mean the window would have after pushing ``x``."""
        n = len(self.q)
        if n == self.q.maxlen:
            m = (self.s - self.q[0] + x) / n
            if math.isfinite(m):
                return m
            return _scaled_mean_sd(list(self.q)[1:] + [x])[0]
        m = (self.s + x) / (n + 1)
        return m if math.isfinite(m) else _scaled_mean_sd(list(self.q) + [x])[0]

    def _mean_sd(self, min_sd: float, rel: float = 0.0) -> tuple[float, float]:
        if self.s2 < math.inf:
            n = len(self.q)
            mu = self.s / n
            sd = math.sqrt(max(self.s2 / n - mu * mu, 0.0))
        else:
            mu, sd = _scaled_mean_sd(self.q)
        return mu, max(sd, min_sd, rel * (1.0 + abs(mu)))

    def mean_sd(self, min_sd: float) -> tuple[float, float]:
        """Mean and standard deviation of the window (sd floored at ``min_sd``, and above 0)."""
        return self._mean_sd(min_sd, 1e-12)

    def z(self, x: float, min_sd: float) -> float:
        """(x - mean) / sd of the window (sd floored at ``min_sd``, and above 0)."""
        mu, sd = self.mean_sd(min_sd)
        return (x - mu) / sd

    def upper_tail(self, x: float, min_sd: float) -> float:
        """P(X >= x) for X ~ N(mean, sd) of the window (sd floored at ``min_sd``)."""
        mu, sd = self._mean_sd(min_sd)
        return 0.5 * math.erfc((x - mu) / (sd * math.sqrt(2.0)))

    def two_sided_tail(self, x: float, min_sd: float = 0.0) -> float:
        """P(|X - mean| >= |x - mean|) for X ~ N(mean, sd) of the window (sd floored at ``min_sd``)."""
        mu, sd = self._mean_sd(min_sd, 1e-12)
        return math.erfc(abs(x - mu) / (sd * math.sqrt(2.0)))

    def to_dict(self) -> dict[str, Any]:
        # Sums that overflowed are stored as None (JSON has no infinity): they are
        # recomputed from the numbers on load, as every push recomputes them then.
        return {"q": list(self.q), "s": self.s if math.isfinite(self.s) else None,
                "s2": self.s2 if math.isfinite(self.s2) else None}

    def load(self, d: dict[str, Any]) -> None:
        """Restore a saved window; ValueError when it is damaged (more numbers than the
        window holds, something that is not a finite number, or sums that are not numbers)."""
        q = d["q"]
        if not isinstance(q, list) or len(q) > self.q.maxlen:
            raise ValueError(f"a window of {self.q.maxlen} holds a list of at most that many numbers")
        if not all(type(a) in (int, float) and math.isfinite(a) for a in q):
            raise ValueError("a window holds finite numbers only")
        s, s2 = d["s"], d["s2"]
        if s is None or s2 is None:  # overflowed when saved
            s, s2 = _sum(q), _sum([a * a for a in q])
        elif not (type(s) in (int, float) and type(s2) in (int, float) and math.isfinite(s)
                  and math.isfinite(s2) and s2 >= 0):
            raise ValueError("a window's sums are finite numbers (None when they overflowed), "
                             "its sum of squares >= 0")
        self.q.clear()
        self.q.extend(float(a) for a in q)
        self.s, self.s2 = float(s), float(s2)


def _sum(values: Any) -> float:
    """The exact sum of finite numbers, or an infinity when it overflows."""
    try:
        return math.fsum(values)
    except OverflowError:
        return sum(values)


def _scaled_mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard deviation of finite numbers of any size, computed over the
    numbers divided by the largest magnitude (nothing overflows)."""
    v = list(values)
    c = max(abs(a) for a in v)
    if c == 0.0:
        return 0.0, 0.0
    u = [a / c for a in v]
    m = math.fsum(u) / len(u)
    var = math.fsum((a - m) * (a - m) for a in u) / len(u)
    return m * c, math.sqrt(var) * c


class _Calib:
    """The last ``size`` deviations (z values), kept as counts in bins, to rescale a tail
    to this stream's own spread (see the module docstring).

    Bins are 0.1 wide up to 10 and then 1/40 of a decade wide up to 10**8.5, so that the
    50- or 100-sigma deviations of a spiky metric are told apart too (``log=True``, the
    default). Detectors saved before kept bins of 0.1 up to 40 only (``log=False``)."""

    BINS = 400

    def __init__(self, size: int, log: bool = True) -> None:
        self.q: collections.deque = collections.deque(maxlen=max(size, 1))
        self.on = size > 0
        self.log = log
        self.h = [0] * (self.BINS + 1)
        # The bin found by the last scale(), with the count of deviations in it and above:
        # the next search starts there (the histogram moves by one deviation a row).
        self._b = self.BINS
        self._above = 0

    def _bin(self, z: float) -> int:
        if z < 10.0 or not self.log:
            z *= 10.0
            return int(z) if z < self.BINS else self.BINS  # an infinite deviation goes in the top bin
        b = 100.0 + 40.0 * math.log10(z / 10.0) if z < math.inf else math.inf
        return int(b) if b < self.BINS else self.BINS

    def _top(self, b: int) -> float:
        """The upper edge of bin ``b``."""
        if b < 99 or not self.log:
            return (b + 1) / 10.0
        return 10.0 ** (1.0 + (b + 1 - 100) / 40.0)

    def push(self, z: float) -> None:
        if not self.on or z != z:  # an undefined deviation (inf/inf) tells nothing
            return
        b = self._bin(z)
        if len(self.q) == self.q.maxlen:
            old = self.q[0]
            self.h[old] -= 1
            if old >= self._b:
                self._above -= 1
        self.q.append(b)
        self.h[b] += 1
        if b >= self._b:
            self._above += 1

    def scale(self, z: float, tail: float, z_ref: float) -> float:
        """The divisor of a deviation ``z``: the deviation exceeded by a fraction ``tail``
        of the ones seen, over ``z_ref`` (a Gaussian's), at least 1. Only a deviation
        beyond ``z_ref`` can reach an alert, so smaller ones are not rescaled (1)."""
        n = len(self.q)
        if z <= z_ref or n < 100:
            return 1.0
        # The highest bin b whose count of deviations at or above it exceeds tail * n.
        limit = tail * n
        h = self.h
        b, above = self._b, self._above
        while b < self.BINS and above - h[b] > limit:
            above -= h[b]
            b += 1
        while above <= limit and b > 0:
            b -= 1
            above += h[b]
        self._b, self._above = b, above
        if above <= limit:
            return 1.0
        return max(1.0, self._top(b) / z_ref)

    def _bottom(self, b: int) -> float:
        """The lower edge of bin ``b``."""
        return 0.0 if b == 0 else self._top(b - 1)

    def fitted_tail(self, z: float, fraction: float) -> float:
        """P(Z >= z) from the deviations seen, the largest ``fraction`` of them fitted
        with a generalized Pareto tail (peaks over threshold, see the module docstring);
        0 until _FIT_MIN deviations have been seen."""
        n = len(self.q)
        if n < _FIT_MIN or z != z:
            return 0.0
        h = self.h
        top = self.BINS  # deviations too large for the bins: counted, not fitted
        need = fraction * n
        count = h[top]
        u_bin = None
        for b in range(top - 1, -1, -1):
            count += h[b]
            if count >= need:
                u_bin = b
                break
        if u_bin is None:
            return 0.0
        u = self._bottom(u_bin)
        if z <= u:  # within the deviations seen often enough: their own frequency
            return sum(h[self._bin(z):]) / n
        # Excesses over u, one per deviation, at their bins' centres (ascending).
        ys = []
        cs = []
        for b in range(u_bin, top):
            if h[b]:
                ys.append(0.5 * (self._bottom(b) + self._top(b)) - u)
                cs.append(h[b])
        if not ys:  # every large deviation beyond the bins: nothing to fit
            return 0.0
        fit = _gpd_moments(ys, cs)
        if fit is None:
            return 0.0
        xi, sigma = fit
        k = sum(cs)
        p = (k + h[top]) / n
        y = z - u
        if abs(xi) < 1e-9:
            return p * math.exp(-y / sigma)
        a = 1.0 + xi * y / sigma
        return p * a ** (-1.0 / xi) if a > 0.0 else 0.0  # beyond a light tail's end: 0

    def load(self, q: list) -> None:
        self.q.clear()
        self.h = [0] * (self.BINS + 1)
        self._b = self.BINS
        self._above = 0
        if len(q) > self.q.maxlen:  # the counts would include deviations the window dropped
            raise ValueError(f"{len(q)} calibration deviations for a window of {self.q.maxlen}")
        for b in q:
            b = int(b)
            if not 0 <= b <= self.BINS:
                raise ValueError(f"calibration bin {b} out of range")
            self.q.append(b)
            self.h[b] += 1
            if b >= self._b:
                self._above += 1


def _gpd_moments(ys: list, cs: list) -> Optional[tuple[float, float]]:
    """(xi, sigma) of the generalized Pareto law with the mean and variance of the
    excesses ``ys`` (``cs`` of each), xi kept >= -0.5 and sigma matching the mean for
    that xi; None when the excesses are all alike (nothing to fit)."""
    k = sum(cs)
    m = sum(c * y for y, c in zip(ys, cs)) / k
    # Two passes: one pass (E[y^2] - m^2) leaves a rounding residue when all excesses
    # are equal, which reads as an enormous scale.
    v = sum(c * (y - m) * (y - m) for y, c in zip(ys, cs)) / k
    if not (m > 0.0 and v > 1e-9 * m * m):
        return None
    xi = max(0.5 * (1.0 - m * m / v), -0.5)  # the moments give xi < 0.5
    return xi, m * (1.0 - xi)  # a generalized Pareto law's mean is sigma / (1 - xi)


def _check_ranges(ranges: Any, n: int) -> Optional[list[tuple[float, float]]]:
    if ranges is None:
        return None
    r = list(ranges)
    if len(r) == 2 and all(isinstance(a, (int, float)) for a in r):
        r = [tuple(r)] * n
    if len(r) != n:
        raise NeoError(f"ranges: expected {n} (low, high) pairs, got {len(r)}")
    out = []
    for lo, hi in r:
        lo, hi = float(lo), float(hi)
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
            raise NeoError(f"ranges: bad range {lo}:{hi} (need finite LO <= HI)")
        if not math.isfinite(hi - lo):
            raise NeoError(f"ranges: range {lo}:{hi} has an infinite span HI-LO (values would decode to inf/nan)")
        out.append((lo, hi))
    return out


# ============================================================================ CSV streams
def csv_rows(text: Any, columns: Sequence[str], time_column: Optional[str] = None,
             where: str = "data", names: Optional[list[str]] = None,
             ) -> Iterator[tuple[int, Optional[str], Optional[list[str]]]]:
    """Rows of a CSV text stream: ``(line number, time text, value texts)``.

    ``columns`` and ``time_column`` are header names or 1-based numbers. The first
    row is the header, except when every column is given by number and none of the
    first row's chosen value cells holds text (each is a number or empty): then the
    data has no header and the first row is data, a missing value in it treated as
    in any other row (a header names its columns; it does not hold numbers or
    nothing where the values are). A row too short to hold the columns yields ``None`` for its
    values; blank lines are skipped. Rows come out as soon as they are read (a live
    stdin works line by line). ``names``, when given, is filled with the output
    names of the time column (if any) and the columns, as soon as the first row is
    read: the header's names, or the numbers given when there is no header.
    """
    import csv

    reader = csv.reader(text)
    first = True
    idx: list[int] = []
    tix: Optional[int] = None
    by_number = all(str(c).strip().isdigit() for c in list(columns) + ([time_column] if time_column else []))
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if first:
                first = False
                cells = [c.strip() for c in row]
                # A header names its columns: with the columns given by number, a first row
                # is one only if a chosen cell holds text (an empty cell is a missing value).
                headerless = by_number and not any(
                    int(c) <= len(cells) and cells[int(c) - 1] and not _is_float(cells[int(c) - 1])
                    for c in columns)
                # Numbered up to the last column chosen (a short first row is data too).
                width = max([len(cells)] + [int(c) for c in list(columns) + [time_column] if c is not None]) \
                    if headerless else 0
                header = [str(i + 1) for i in range(width)] if headerless else cells
                if not headerless and all(_is_float(c) for c in cells):
                    raise NeoError(f"{where}: the first row ({', '.join(cells)}) holds only numbers, so the "
                                   "data has no header: give the columns by number (1-based)")
                idx = [_column_index(c, header, "columns") for c in columns]
                tix = None if time_column is None else _column_index(time_column, header, "time column")
                if names is not None:
                    names[:] = ([header[tix]] if tix is not None else []) + [header[i] for i in idx]
                if not headerless:
                    continue
            need = max(idx + ([tix] if tix is not None else []))
            if len(row) <= need:
                yield reader.line_num, None, None
                continue
            yield reader.line_num, (row[tix] if tix is not None else None), [row[i] for i in idx]
    except csv.Error as e:
        raise NeoError(f"{where}: line {reader.line_num}: malformed CSV ({e})") from None
    except UnicodeDecodeError as e:
        raise NeoError(f"{where}: invalid UTF-8 in CSV data ({e.reason})") from None
    if first:
        raise NeoError(f"{where}: no header row (the first line must name the columns)")


def _column_index(name: str, header: list[str], what: str) -> int:
    name = str(name).strip()
    if name in header:
        return header.index(name)
    if name.isdigit() and 1 <= int(name) <= len(header):
        return int(name) - 1
    raise NeoError(f"{what}: no column named {name!r} (the header has {', '.join(header)})")


def scan_ranges(text: Any, columns: Sequence[str], time_column: Optional[str] = None,
                where: str = "data") -> Optional[list[tuple[float, float]]]:
    """Per-column (min, max) of the usable values of a CSV stream (None if there are none)."""
    lo = hi = None
    for _, _, cells in csv_rows(text, columns, time_column, where):
        if cells is None:
            continue
        try:
            v = np.array([float(c) for c in cells])
        except ValueError:
            continue
        if not np.all(np.isfinite(v)):
            continue
        lo = v if lo is None else np.minimum(lo, v)
        hi = v if hi is None else np.maximum(hi, v)
    if lo is None:
        return None
    return [(float(a), float(b)) for a, b in zip(lo, hi)]


class DetectRun:
    """Turns CSV rows into detector output lines, applying the bad-row policy.

    ``on_bad_row="skip"``: a bad row (too few cells, a missing or non-numeric
    value, a bad timestamp or one more than an hour before the latest) gets no output
    row and is counted
    (``skipped``, ``first_bad``); ``"error"``: :class:`BadRow` naming the line.
    """

    def __init__(self, detector: Detector, time_column: Optional[str] = None,
                 on_bad_row: str = "skip", where: str = "data") -> None:
        if on_bad_row not in ("skip", "error"):
            raise NeoError(f"on_bad_row must be skip or error, got {on_bad_row!r}")
        self.detector = detector
        self.time_column = time_column
        self.on_bad_row = on_bad_row
        self.where = where
        self.skipped = 0
        self.first_bad: Optional[str] = None

    def header(self, names: Optional[list[str]] = None) -> str:
        """The output CSV header line; ``names`` are the input's names of the time
        column (if any) and the columns (``csv_rows(names=...)``), else the ones given."""
        given = ([self.time_column] if self.time_column is not None else []) + list(self.detector.columns)
        names = list(names) if names and len(names) == len(given) else given
        cols = names[1:] if self.time_column is not None else names
        names += [f"predicted_{c}" for c in cols] + ["raw_score", "anomaly_score"]
        return ",".join(_csv_cell(n) for n in names) + "\n"

    def process(self, lineno: int, t: Optional[str], cells: Optional[list[str]]) -> Optional[str]:
        """The output line of one input row (None for a skipped bad row)."""
        try:
            if cells is None:
                raise BadRow("too few columns")
            if self.time_column is not None and not (t or "").strip():
                raise BadRow("missing timestamp")
            try:
                x = [float(c) for c in cells]
            except ValueError:
                bad = next(c for c in cells if not _is_float(c))
                raise BadRow(f"{bad!r} is not a number" if bad.strip() else "missing value") from None
            row = self.detector.update(x, t if self.time_column is not None else None)
        except BadRow as e:
            msg = f"{self.where}: line {lineno}: {e}"
            if self.on_bad_row == "error":
                raise BadRow(msg) from None
            self.skipped += 1
            if self.first_bad is None:
                self.first_bad = msg
            return None
        out = ([_csv_cell(t)] if self.time_column is not None else []) + [_csv_cell(c) for c in cells]
        out += [f"{p:.6g}" for p in row.predicted]
        out += [f"{row.raw_score:.6f}", f"{row.anomaly_score:.6f}"]
        return ",".join(out) + "\n"


def _is_float(c: str) -> bool:
    try:
        float(c)
        return True
    except ValueError:
        return False


def _csv_cell(c: Any) -> str:
    s = str(c)
    if any(ch in s for ch in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


# ============================================================================ helpers for the commands
class LiveReader(io.BufferedIOBase):
    """A binary stream whose ``read(n)`` returns what is available (at least one
    byte, blocking only when there is none) instead of waiting for ``n`` bytes, so
    a codec reading a pipe sees each line as soon as it is written."""

    def __init__(self, raw: Any) -> None:
        # A BufferedIOBase, so io.TextIOWrapper can wrap it (a CSV codec does).
        super().__init__()
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, as soon as any are available (b"" at end of stream)."""
        if n is None or n < 0:
            return self._raw.read()
        return self._raw.read1(n) if hasattr(self._raw, "read1") else self._raw.read(n)

    read1 = read

    def readline(self, limit: int = -1) -> bytes:
        """One line, returned as soon as its newline arrives."""
        return self._raw.readline(limit)

    def readable(self) -> bool:
        """Always readable."""
        return True

    def writable(self) -> bool:
        """Never writable."""
        return False

    def seekable(self) -> bool:
        """Never seekable (it may be a pipe)."""
        return False

    def readinto(self, b: Any) -> int:
        """Fill ``b`` with what is available."""
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        """Leave the underlying stream open (it may be stdin)."""

    @property
    def closed(self) -> bool:
        """Never closed by this wrapper."""
        return False


def load_scorer(path: str, learn: bool = False) -> tuple[Scorer, dict[str, Any]]:
    """A :class:`Scorer` for a sequence model file (see :func:`neocli.training.load_model`), and its header."""
    from .training import load_model, predictive_of

    m = load_model(path)
    return Scorer(m.hierarchy, m.codec, learn, predictive_of(m)), m.header


def save_scorer(scorer: Scorer, path: str, header: Optional[dict[str, Any]] = None) -> None:
    """Write the scorer's (possibly updated) model atomically, with the header's training
    record and user metadata (see :func:`neocli.training.save_model`)."""
    from .training import save_model

    header = header or {}
    record = header.get("training")
    user = header.get("user")
    save_model(path, scorer.model, scorer.codec, record=dict(record) if isinstance(record, dict) else None,
               meta=user if isinstance(user, dict) else None, predictive=scorer.predictive)


def format_row(fmt: str, source: str, index: int, row: Row, first: bool) -> str:
    """One output line of ``neocli score`` (with the header line first if ``first``)."""
    if fmt == "jsonl":
        import json

        return json.dumps({"source": source, "unit": index, "symbols": row.symbols, "bits": round(row.bits, 6),
                           "bits_per_symbol": round(row.bits_per_symbol, 6),
                           "probability": float(f"{row.probability:.6g}")}) + "\n"
    sep = "\t" if fmt == "tsv" else ","
    head = sep.join(["source", "unit", "symbols", "bits", "bits_per_symbol", "probability"]) + "\n" if first else ""
    src = source if fmt == "tsv" else _csv_cell(source)
    return head + sep.join([src, str(index), str(row.symbols), f"{row.bits:.6f}", f"{row.bits_per_symbol:.6f}",
                            f"{row.probability:.6g}"]) + "\n"


def open_detector(data: Optional[str], columns: Sequence[str], time_column: Optional[str] = None,
                  ranges: Any = None, model: Optional[str] = None, seed: int = 0,
                  options: Optional[DetectorOptions] = None) -> Detector:
    """The detector ``neocli detect`` uses: loaded from ``model``, else new, with the
    range given, else scanned from the seekable file ``data``, else adaptive (stdin)."""
    if model is not None:
        det = Detector.load(model)
        if list(columns) != det.columns:
            raise NeoError(f"the model watches columns {', '.join(det.columns)}, not {', '.join(columns)}")
        return det
    if ranges is None and data not in (None, "-"):
        with open(data, newline="", encoding="utf-8") as f:
            ranges = scan_ranges(f, columns, time_column, where=data)
    return Detector(columns, ranges, options, seed=seed)


def detect_csv(run: DetectRun, text: Any, out: Any, flush: bool, guard: Optional[SignalGuard] = None) -> int:
    """Feed a CSV text stream through ``run`` and write the output lines to the text
    file ``out`` (the header first); ``flush`` after each row for live streams.
    Returns the number of rows written."""
    names: list[str] = []
    head = True
    n = 0
    for lineno, t, cells in csv_rows(text, run.detector.columns, run.time_column, run.where, names):
        if head:
            # Written once the first row is read, so that it can use the input's names.
            out.write(run.header(names))
            head = False
            if flush:
                out.flush()
        # The row's learning and its output line go together: a signal waits for both.
        with guard.critical() if guard is not None else _NO_GUARD:
            line = run.process(lineno, t, cells)
            if line is not None:
                out.write(line)
                n += 1
                if flush:
                    out.flush()
    if head:
        out.write(run.header(names))
    return n


def score_source(scorer: Scorer, stream: Any, per: str, where: str, emit: Any,
                 guard: Optional[SignalGuard] = None) -> int:
    """Score each unit of one source and call ``emit(index, row)`` as soon as the unit
    is complete (1-based index); the temporal state is cleared first (each source is
    a new sequence). Returns the number of units.

    ``per="line"`` reads the source line by line (a CSV codec: record by record), so a
    unit is complete when its newline arrives, whatever the codec does with newlines
    (the words codec, for one, has no newline symbol)."""
    scorer.reset()
    codec = scorer.codec
    if per == "line" and codec.kind != "csv":
        groups: Iterable[list[Any]] = (list(codec.symbols(io.BytesIO(line), False, where=where))
                                       for line in iter(stream.readline, b""))
    else:
        groups = units(codec, codec.symbols(stream, per == "record", where=where), per)
    n = 0
    for unit in groups:
        # Learning from a unit and writing its row go together: a signal waits for both.
        with guard.critical() if guard is not None else _NO_GUARD:
            n += 1
            emit(n, scorer.score_one(unit))
    return n
