"""A calibrated predictive distribution over the symbols a codec can produce.

``Hierarchy.get_prediction_acts`` gives one probability vector per column (the
pyaogmaneo-compatible output, unchanged). A symbol spread over several columns
(the two nibbles of a byte, the digits of a vocabulary id) is not a distribution
on its own: the product of its columns' probabilities gives mass to symbols the
codec never produces, and a column probability of zero makes a surprise cost
infinite bits. ``Predictive`` turns the activations into a real distribution:

1. the *joint* score of every candidate symbol is the sum of its columns' log
   activations (a product of columns);
2. it is sharpened or flattened by an exponent ``beta`` and normalised over the
   symbols seen so far (``softmax(beta * log joint)``);
3. it is mixed with the order-0 frequencies seen so far (additive prior ``alpha``
   over every symbol the codec can produce), with weight ``w``:
   ``p = (1 - w) * joint^beta / Z + w * order0``. A symbol never seen before gets
   probability only from the order-0 part, so it costs what a surprise should.

``beta`` and ``w`` are learned online by gradient descent on the log loss of each
symbol (``update``), so the distribution adapts to how reliable the hierarchy's
prediction is on this data. The whole state (counts, ``beta``, ``w``) is a small
JSON-ready dict (``to_dict``/``from_dict``), stored in a model's header so that a
resumed run or ``eval --learn`` continues exactly.

CSV codecs model each column's value on its own: every column is a separate
factor with its own state, and the probability of a row is the product of its
columns' probabilities.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._errors import NeoError
from ._predictive import factor_score

__all__ = ["Predictive", "sample_index"]

# Learning rates of the log-loss gradient steps on log(beta) and logit(w): large
# enough to settle within a few thousand symbols, small enough not to chase noise.
LR_BETA = 0.002
LR_MIX = 0.02
ALPHA = 0.5           # order-0 additive prior (Krichevsky-Trofimov)
BETA0 = 1.0
MAX_SYMBOLS = 1 << 21
W0 = 0.05
_LB = (math.log(0.05), math.log(8.0))                      # log beta in [0.05, 8]
_ML = (math.log(1e-5 / (1 - 1e-5)), math.log(0.9 / 0.1))   # w in [1e-5, 0.9]


def _factors(codec) -> list[tuple[int, np.ndarray]]:
    """(number of symbols, flat activation indices ``(n, columns)``) per factor."""
    _, cols, z = codec.io_size
    kind = codec.kind
    if kind == "csv":
        return [(z, (np.arange(z) + c * z)[:, None]) for c in range(cols)]
    if kind == "bytes":
        ids = np.arange(256)
        codes = np.stack([ids >> 4, ids & 15], axis=1) if cols == 2 else ids[:, None]
    else:
        n = len(codec.vocab) if kind in ("chars", "words") else codec.vocab_size
        n = max(n, 1)
        if n > MAX_SYMBOLS:
            # Every step scores every symbol: beyond this a model is unusably slow, and a
            # hostile header must not make loading allocate gigabytes.
            raise NeoError(f"the codec has {n} symbols; the predictive distribution handles at most {MAX_SYMBOLS}")
        ids = np.arange(n)
        codes = np.empty((n, cols), dtype=np.int64)
        for c in range(cols - 1, -1, -1):
            codes[:, c] = ids % z
            ids = ids // z
        codes = np.minimum(codes, z - 1)
    return [(codes.shape[0], codes + np.arange(cols)[None, :] * z)]


class _Factor:
    """The learned state of one factor (a symbol set with its own columns)."""

    __slots__ = ("n", "idx", "counts", "total", "seen", "nseen", "log_beta", "mix_logit", "_lj", "_la", "_none")

    def __init__(self, n: int, idx: np.ndarray, nacts: int) -> None:
        self.n = n
        self.idx = np.ascontiguousarray(idx, dtype=np.intp)
        self.counts = np.zeros(n, dtype=np.float64)
        self.total = 0.0
        self.seen = np.zeros(n, dtype=np.uint8)
        self.nseen = 0
        self.log_beta = math.log(BETA0)
        self.mix_logit = math.log(W0 / (1.0 - W0))
        self._lj = np.empty(n, dtype=np.float64)
        self._la = np.empty(nacts, dtype=np.float64)
        self._none = np.empty(0, dtype=np.float64)

    def run(self, acts: np.ndarray, k: int, learn: bool, out: np.ndarray | None = None) -> float:
        """p[k] (k >= 0), the whole distribution into ``out`` if given; with ``learn``
        one gradient step on -log p[k] and the count of ``k``."""
        pk, self.log_beta, self.mix_logit = factor_score(
            acts, self.idx, self.counts, self.seen, self.nseen, self.total, self.log_beta,
            self.mix_logit, k, learn, ALPHA, LR_BETA, LR_MIX, _LB[0], _LB[1], _ML[0], _ML[1],
            self._la, self._lj, self._none if out is None else out)
        if learn and k >= 0:
            self.count(k)
        return pk

    def count(self, k: int) -> None:
        """Add one occurrence of symbol ``k`` to the order-0 counts."""
        self.counts[k] += 1.0
        self.total += 1.0
        if not self.seen[k]:
            self.seen[k] = 1
            self.nseen += 1

    def to_dict(self) -> dict[str, Any]:
        nz = np.flatnonzero(self.counts)
        return {"ids": nz.tolist(), "counts": self.counts[nz].astype(np.int64).tolist(),
                "log_beta": self.log_beta, "mix_logit": self.mix_logit}

    def load(self, d: Any, where: str) -> None:
        if not isinstance(d, dict):
            raise NeoError(f"{where} must be an object")
        ids, counts = d.get("ids"), d.get("counts")
        lb, ml = d.get("log_beta"), d.get("mix_logit")
        if (not isinstance(ids, list) or not isinstance(counts, list) or len(ids) != len(counts)
                or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < self.n for i in ids)
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
            raise NeoError(f"{where}: ids and counts must be lists of the same length of symbol "
                           f"indices in [0, {self.n}) and counts >= 0")
        for name, v in (("log_beta", lb), ("mix_logit", ml)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise NeoError(f"{where}: {name} must be a finite number")
        self.counts[:] = 0.0
        self.counts[np.asarray(ids, dtype=np.intp)] = np.asarray(counts, dtype=np.float64)
        self.total = float(self.counts.sum())
        self.seen = (self.counts > 0).astype(np.uint8)
        self.nseen = int(self.seen.sum())
        self.log_beta = float(lb)
        self.mix_logit = float(ml)


class Predictive:
    """The calibrated distribution of a codec's next symbol, learned online.

    ``acts`` below is ``Hierarchy.get_prediction_acts(i)`` of the codec's IO;
    ``cis`` is the actual symbol's CSDR (``codec.encode(symbol)``).
    """

    VERSION = 1

    def __init__(self, codec, state: dict[str, Any] | None = None) -> None:
        self.codec_kind = codec.kind
        self._z = codec.io_size[2]
        self._cols = codec.io_size[1]
        self._factors = [_Factor(n, idx, codec.io_size[1] * codec.io_size[2]) for n, idx in _factors(codec)]
        if state is not None:
            self.load(state)

    # ------------------------------------------------------------ distribution
    def _acts(self, acts: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(acts, dtype=np.float32).reshape(-1)
        if a.shape[0] != self._cols * self._z:
            raise NeoError(f"acts must have {self._cols * self._z} values, got {a.shape[0]}")
        return a

    def _symbol_index(self, f: int, cis: Any) -> int:
        if self.codec_kind == "csv":
            return int(cis[f])
        k = 0
        for c in cis:
            k = k * self._z + int(c)
        if not 0 <= k < self._factors[0].n:
            raise NeoError(f"symbol CSDR {[int(c) for c in cis]} is outside the codec's symbols")
        return k

    def distributions(self, acts: np.ndarray) -> list[np.ndarray]:
        """One probability vector per factor (one factor, except one per CSV column),
        over every symbol index the codec can produce; each sums to 1."""
        a = self._acts(acts)
        outs = []
        for f in self._factors:
            out = np.empty(f.n, dtype=np.float64)
            f.run(a, -1, False, out)
            outs.append(out)
        return outs

    def bits(self, acts: np.ndarray, cis: Any) -> float:
        """-log2 of the probability of the symbol ``cis`` (nothing learned)."""
        return self.score(acts, cis, learn=False)

    def score(self, acts: np.ndarray, cis: Any, learn: bool = True) -> float:
        """Bits of the symbol ``cis`` under the current distribution, then (``learn``)
        adapt ``beta``, ``w`` and the order-0 counts to it."""
        a = self._acts(acts)
        total = 0.0
        for j, f in enumerate(self._factors):
            total -= math.log2(f.run(a, self._symbol_index(j, cis), learn))
        return total

    def observe(self, cis: Any) -> None:
        """Count a symbol for the order-0 part without a prediction (the first symbol
        after a reset, which the hierarchy had no context for)."""
        for j, f in enumerate(self._factors):
            f.count(self._symbol_index(j, cis))

    def num_symbols(self, factor: int = 0) -> int:
        """How many symbols factor ``factor`` has (all the codec can produce)."""
        return self._factors[factor].n

    def code(self, k: int) -> np.ndarray:
        """The CSDR of symbol index ``k`` (not for CSV, whose columns are separate factors)."""
        f = self._factors[0]
        return (f.idx[k] - np.arange(self._cols) * self._z).astype(np.int32)

    @property
    def params(self) -> list[tuple[float, float]]:
        """(beta, w) of each factor: the learned sharpness and escape weight."""
        return [(math.exp(f.log_beta), 1.0 / (1.0 + math.exp(-f.mix_logit))) for f in self._factors]

    # ------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready state (stored under ``predictive`` in a model header)."""
        return {"version": self.VERSION, "factors": [f.to_dict() for f in self._factors]}

    def load(self, state: Any) -> None:
        """Restore ``to_dict`` output (validated: headers come from strangers)."""
        if not isinstance(state, dict) or state.get("version") != self.VERSION:
            raise NeoError(f"predictive state must be an object with version {self.VERSION}")
        fs = state.get("factors")
        if not isinstance(fs, list) or len(fs) != len(self._factors):
            raise NeoError(f"predictive state must have {len(self._factors)} factors for this codec")
        for i, (f, d) in enumerate(zip(self._factors, fs)):
            f.load(d, f"predictive factor {i}")

    @classmethod
    def from_dict(cls, codec, state: Any) -> "Predictive":
        """A distribution for ``codec`` with the state ``state`` (``to_dict`` output)."""
        return cls(codec, state)


def sample_index(p: np.ndarray, rng: np.random.Generator, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, penalty: np.ndarray | None = None) -> int:
    """Draw an index from the distribution ``p`` with the usual generation controls.

    ``penalty`` (same length, >= 1) divides the probability of each index (the
    repetition penalty); ``temperature`` 0 takes the most probable index;
    ``top_k`` > 0 keeps the k most probable; ``top_p`` < 1 keeps the smallest set
    whose mass reaches ``top_p`` (nucleus sampling). Ties break toward the lower index.
    """
    p = np.asarray(p, dtype=np.float64)
    if penalty is not None:
        p = p / penalty
    if temperature <= 0.0:
        return int(np.argmax(p))
    logp = np.log(np.maximum(p, 1e-300)) / temperature
    order = np.argsort(-logp, kind="stable")
    w = np.exp(logp[order] - logp[order[0]])
    w[p[order] <= 0.0] = 0.0
    if top_k > 0:
        w[top_k:] = 0.0
    if top_p < 1.0:
        cum = np.cumsum(w) / w.sum()
        keep = int(np.searchsorted(cum, top_p)) + 1
        w[keep:] = 0.0
    cum = np.cumsum(w)
    u = rng.random() * cum[-1]
    i = min(int(np.searchsorted(cum, u, side="right")), len(w) - 1)
    return int(order[i])
