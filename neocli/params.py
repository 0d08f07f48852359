"""Descriptors and parameter records, with pyaogmaneo 2.14.4's names and defaults.

Records are plain mutable objects: a hierarchy reads its ``params`` at every
``step``, so ``h.params.layers[0].encoder.lr = 0.2`` takes effect on the next step.
Float fields are stored as float32 values (what the kernels use, and what
pyaogmaneo reports back), integer fields as ints.
"""
from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np

from ._errors import NeoError

__all__ = [
    "IOType", "none", "prediction", "action", "MergeMode", "merge_random", "merge_average",
    "IODesc", "LayerDesc", "EncoderParams", "DecoderParams", "ActorParams", "LayerParams",
    "IOParams", "Params",
]


class IOType(enum.IntEnum):
    """What an IO port does: input only, predicted (decoder) or acted on (actor)."""

    none = 0
    prediction = 1
    action = 2


none = IOType.none
prediction = IOType.prediction
action = IOType.action


class MergeMode(enum.IntEnum):
    """How ``Hierarchy.merge`` combines weights.

    Unlike pyaogmaneo 2.14.4, whose Python enum is swapped (spec quirk Q1), the
    names here mean what they say.
    """

    merge_random = 0
    merge_average = 1


merge_random = MergeMode.merge_random
merge_average = MergeMode.merge_average


F32_MAX = float(np.finfo(np.float32).max)


def _f32(value: Any, name: str) -> float:
    """``value`` as the float32 the kernels will use; TypeError for a non-number,
    NeoError for NaN, infinities and values beyond float32 (shared by records and step)."""
    if type(value) is float and -F32_MAX <= value <= F32_MAX:
        # The common case (defaults, RL rewards: every step), without the general
        # checks below; NaN fails the comparison and takes the general path.
        return float(np.float32(value))
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    try:
        f = float(value)  # in Python floats: numpy would warn comparing a float16 with 3.4e38
    except OverflowError:  # an int beyond any float
        f = math.inf if value > 0 else -math.inf
    if isinstance(value, (float, np.floating)) and not math.isfinite(f):
        raise NeoError(f"{name} must be finite, got {value}")
    if abs(f) > F32_MAX:
        # float32(value) would be inf: it cannot be saved (JSON has no inf) and poisons the weights.
        raise NeoError(f"{name} must fit in float32 (|x| <= 3.4e38), got {value}")
    return float(np.float32(f))


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if not -(2**31) <= v < 2**31:
        raise NeoError(f"{name} must fit in 32 bits, got {v}")
    return v


def _size3(value: Any, name: str) -> tuple[int, int, int]:
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a (width, height, column_size) tuple, got {value!r}") from None
    if len(items) != 3:
        raise NeoError(f"{name} must have 3 entries (width, height, column_size), got {len(items)}")
    return tuple(_int(x, name) for x in items)  # type: ignore[return-value]


class _Record:
    """Base of the records: typed fields, equality, repr and dict conversion."""

    _fields: dict[str, str] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        kind = self._fields.get(name)
        if kind is None:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        if kind == "f":
            value = _f32(value, name)
        elif kind == "i":
            value = _int(value, name)
        elif kind == "b":
            value = bool(value)
        elif kind == "size":
            value = _size3(value, name)
        elif kind == "iotype":
            try:
                value = IOType(int(value))
            except (ValueError, TypeError):
                raise NeoError(f"io_type must be none, prediction or action, got {value!r}") from None
        else:
            value = self._coerce(name, kind, value)
        object.__setattr__(self, name, value)

    def _coerce(self, name: str, kind: str, value: Any) -> Any:
        raise AssertionError(kind)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]  # mutable records

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields)
        return f"{type(self).__name__}({args})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields (used in ``.ohr`` headers)."""
        out: dict[str, Any] = {}
        for k, kind in self._fields.items():
            v = getattr(self, k)
            if isinstance(v, _Record):
                v = v.to_dict()
            elif isinstance(v, list):
                v = [x.to_dict() for x in v]
            elif kind == "size":
                v = list(v)
            elif kind == "iotype":
                v = v.name
            out[k] = v
        return out

    @classmethod
    def from_dict(cls, data: Any):
        """Rebuild a record from :meth:`to_dict` output, rejecting unknown keys."""
        if not isinstance(data, dict):
            raise NeoError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - set(cls._fields)
        if unknown:
            raise NeoError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
        obj = cls()
        for k, v in data.items():
            kind = cls._fields[k]
            if kind == "iotype" and isinstance(v, str):
                if v not in IOType.__members__:
                    raise NeoError(f"unknown io_type {v!r}")
                v = IOType[v]
            elif kind in _RECORD_KINDS:
                v = _RECORD_KINDS[kind].from_dict(v)
            elif kind in _LIST_KINDS:
                if not isinstance(v, list):
                    raise NeoError(f"{k} must be a list")
                v = [_LIST_KINDS[kind].from_dict(x) for x in v]
            setattr(obj, k, v)
        return obj


class IODesc(_Record):
    """One IO port: its CSDR size, type, and the radii/dendrites of its layer-0 links."""

    _fields = {
        "size": "size", "io_type": "iotype", "num_dendrites_per_cell": "i",
        "value_num_dendrites_per_cell": "i", "up_radius": "i", "down_radius": "i",
        "history_capacity": "i",
    }

    def __init__(self, size=(5, 5, 16), io_type=IOType.prediction, num_dendrites_per_cell=4,
                 value_num_dendrites_per_cell=8, up_radius=2, down_radius=2, history_capacity=512):
        self.size = size
        self.io_type = io_type
        self.num_dendrites_per_cell = num_dendrites_per_cell
        self.value_num_dendrites_per_cell = value_num_dendrites_per_cell
        self.up_radius = up_radius
        self.down_radius = down_radius
        self.history_capacity = history_capacity


class LayerDesc(_Record):
    """One hidden layer: its size, decoder dendrites and radii (spec §12)."""

    _fields = {
        "hidden_size": "size", "num_dendrites_per_cell": "i", "up_radius": "i",
        "recurrent_radius": "i", "down_radius": "i",
    }

    def __init__(self, hidden_size=(5, 5, 16), num_dendrites_per_cell=4, up_radius=2,
                 recurrent_radius=0, down_radius=2):
        self.hidden_size = hidden_size
        self.num_dendrites_per_cell = num_dendrites_per_cell
        self.up_radius = up_radius
        self.recurrent_radius = recurrent_radius
        self.down_radius = down_radius


class EncoderParams(_Record):
    """Encoder learning parameters (spec §5, §12)."""

    _fields = {"choice": "f", "vigilance": "f", "lr": "f", "active_ratio": "f", "l_radius": "i"}

    def __init__(self, choice=0.01, vigilance=0.9, lr=0.5, active_ratio=0.1, l_radius=2):
        self.choice = choice
        self.vigilance = vigilance
        self.lr = lr
        self.active_ratio = active_ratio
        self.l_radius = l_radius


class DecoderParams(_Record):
    """Decoder parameters (spec §6, §12)."""

    _fields = {"scale": "f", "lr": "f"}

    def __init__(self, scale=8.0, lr=0.1):
        self.scale = scale
        self.lr = lr


class ActorParams(_Record):
    """Actor parameters (spec §7, §12)."""

    _fields = {
        "vlr": "f", "plr": "f", "smoothing": "f", "delay_rate": "f", "policy_clip": "f",
        "discount": "f", "td_scale_decay": "f", "min_steps": "i", "history_iters": "i",
    }

    def __init__(self, vlr=0.001, plr=0.01, smoothing=0.02, delay_rate=0.001, policy_clip=0.2,
                 discount=0.99, td_scale_decay=0.999, min_steps=16, history_iters=16):
        self.vlr = vlr
        self.plr = plr
        self.smoothing = smoothing
        self.delay_rate = delay_rate
        self.policy_clip = policy_clip
        self.discount = discount
        self.td_scale_decay = td_scale_decay
        self.min_steps = min_steps
        self.history_iters = history_iters


class LayerParams(_Record):
    """Per-layer parameters: encoder, decoder and the recurrent importance."""

    _fields = {"encoder": "enc", "decoder": "dec", "recurrent_importance": "f"}

    def __init__(self, encoder=None, decoder=None, recurrent_importance=0.5):
        self.encoder = EncoderParams() if encoder is None else encoder
        self.decoder = DecoderParams() if decoder is None else decoder
        self.recurrent_importance = recurrent_importance

    def _coerce(self, name, kind, value):
        expected = _RECORD_KINDS[kind]
        if not isinstance(value, expected):
            raise TypeError(f"{name} must be a {expected.__name__}, got {type(value).__name__}")
        return value


class IOParams(_Record):
    """Per-IO parameters: decoder, actor and the port's importance in encoder 0."""

    _fields = {"decoder": "dec", "actor": "act", "importance": "f"}

    def __init__(self, decoder=None, actor=None, importance=1.0):
        self.decoder = DecoderParams() if decoder is None else decoder
        self.actor = ActorParams() if actor is None else actor
        self.importance = importance

    _coerce = LayerParams._coerce


class Params(_Record):
    """All parameters of a hierarchy.

    As in pyaogmaneo, a standalone ``Params()`` has empty lists and
    ``anticipation=False`` (quirk Q7, kept for compatibility); a hierarchy's own
    params start with one record per layer and IO and ``anticipation=True``.
    """

    _fields = {"layers": "layers", "ios": "ios", "anticipation": "b"}

    def __init__(self, layers=None, ios=None, anticipation=False):
        self.layers = [] if layers is None else layers
        self.ios = [] if ios is None else ios
        self.anticipation = anticipation

    def _coerce(self, name, kind, value):
        if not isinstance(value, list):
            raise TypeError(f"{name} must be a list, got {type(value).__name__}")
        return value


_RECORD_KINDS = {"enc": EncoderParams, "dec": DecoderParams, "act": ActorParams}
_LIST_KINDS = {"layers": LayerParams, "ios": IOParams}
