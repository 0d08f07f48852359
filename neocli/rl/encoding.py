"""Observation and action encodings: gymnasium spaces <-> IO ports of a hierarchy."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import NeoError
from ..params import IODesc, IOType
from .envs import gym_module as _gym

#: Version tag of the encoding description stored in model headers.
ENCODING_FORMAT = "neocli.rl/1"
#: Observation bins per column when none are given (as decisions D16).
DEFAULT_BINS = 32
#: Squashing scale for unbounded observation values (``sigmoid(scale*x)``).
DEFAULT_SQUASH_SCALE = 1.0
#: A declared bound range wider than this is treated as unbounded: environments
#: often declare ``±float32 max`` for values that are never near it, and a linear
#: bin over such a range would put every real value into one cell.
MAX_LINEAR_RANGE = 1e6


# ---------------------------------------------------------------------------
# geometry


def grid_for(n: int) -> tuple[int, int]:
    """The most square ``(W, H)`` with ``W * H == n`` and ``W >= H`` (no padding columns).

    Four values give the 2x2 grid of decisions D16; a prime count gives a strip.
    """
    if n < 1:
        raise NeoError(f"a port needs at least one column, got {n}")
    h = int(math.isqrt(n))
    while n % h:
        h -= 1
    return n // h, h


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # D16's form, tanh(x/2)/2 + 1/2, in double precision in exactly this order, with
    # the C library's tanh (math.tanh): numpy's vectorised tanh differs from it in
    # the last bit for about a third of all inputs, which moves values that sit on a
    # bin edge, so the encoding would depend on numpy's build and the CPU.
    return np.array([math.tanh(v / 2.0) / 2.0 + 0.5 for v in x.tolist()], dtype=np.float64)


# ---------------------------------------------------------------------------
# observation parts


class BoxEncoder:
    """A float ``Box`` as one port of ``bins``-cell columns, one column per value.

    Value ``x`` (as float64) becomes ``u = (x - low) / (high - low)`` clipped to
    ``[0, 1]`` when both declared bounds are finite (and closer than
    :data:`MAX_LINEAR_RANGE`), else ``u = sigmoid(scale * x)`` with
    ``sigmoid(x) = tanh(x / 2) / 2 + 1 / 2``; its cell is ``int(u * (bins - 1) + 0.5)``.
    All of it is IEEE double arithmetic in that order, with ``math.tanh``, so the
    cells equal what the formula gives in plain Python, bin edges included.
    With ``squash="all"``, ``scale=3`` and 32 bins this is exactly the D16 encoding
    ``int(sigmoid(3*x) * 31 + 0.5)``. Columns are laid out on :func:`grid_for`'s grid
    in flattened (C) order of the observation.
    """

    kind = "box"

    def __init__(self, shape: Sequence[int], bins: int, low: Sequence[float | None],
                 high: Sequence[float | None], scale: float) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.n = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
            raise NeoError(f"bins must be an integer >= 2, got {bins!r}")
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise NeoError(f"the squashing scale must be a finite number > 0, got {scale!r}")
        if len(low) != self.n or len(high) != self.n:
            raise NeoError(f"box encoding: {self.n} values need {self.n} bounds, got {len(low)} and {len(high)}")
        self.bins = int(bins)
        self.scale = float(scale)
        self.low = [None if v is None else float(v) for v in low]
        self.high = [None if v is None else float(v) for v in high]
        self._linear = np.array([lo is not None and hi is not None for lo, hi in zip(self.low, self.high)])
        for i in np.flatnonzero(self._linear):
            if not self.low[i] < self.high[i]:
                raise NeoError(f"box encoding: value {i} has bounds [{self.low[i]}, {self.high[i]}], need low < high")
        self._lo = np.array([0.0 if v is None else v for v in self.low])
        self._span = np.array([1.0 if (lo is None or hi is None) else hi - lo
                               for lo, hi in zip(self.low, self.high)])
        self.grid = grid_for(self.n)

    @classmethod
    def for_space(cls, space: Any, bins: int, squash: str, scale: float) -> "BoxEncoder":
        """The encoder of a gymnasium ``Box`` (``squash``: ``auto`` or ``all``)."""
        low = np.asarray(space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(space.high, dtype=np.float64).reshape(-1)
        lows: list[float | None] = []
        highs: list[float | None] = []
        for lo, hi in zip(low, high):
            linear = (squash == "auto" and math.isfinite(lo) and math.isfinite(hi)
                      and 0 < hi - lo <= MAX_LINEAR_RANGE)
            lows.append(float(lo) if linear else None)
            highs.append(float(hi) if linear else None)
        return cls(space.shape, bins, lows, highs, scale)

    @property
    def io_size(self) -> tuple[int, int, int]:
        """The port size ``(W, H, bins)``."""
        return (*self.grid, self.bins)

    def encode(self, obs: Any, learn: bool = True) -> np.ndarray:
        """The CSDR (int32, one cell per value) of one observation."""
        try:
            x = np.asarray(obs, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise NeoError(f"observation: expected {self.n} numbers of shape {self.shape}, "
                           f"got {type(obs).__name__}") from None
        if x.size != self.n:
            raise NeoError(f"observation: expected {self.n} values (shape {self.shape}), got {x.size}")
        if np.isnan(x).any():
            raise NeoError(f"observation value {int(np.flatnonzero(np.isnan(x))[0])} is NaN")
        u = np.empty(self.n)
        lin = self._linear
        u[lin] = np.clip((x[lin] - self._lo[lin]) / self._span[lin], 0.0, 1.0)
        u[~lin] = _sigmoid(self.scale * x[~lin])
        return np.minimum((u * (self.bins - 1) + 0.5).astype(np.int32), self.bins - 1)

    def describe(self) -> str:
        """One line for humans."""
        lin = int(self._linear.sum())
        how = ("linear" if lin == self.n else f"sigmoid(x*{self.scale:g})" if lin == 0
               else f"{lin} linear, {self.n - lin} sigmoid(x*{self.scale:g})")
        return f"box {self.shape} -> {self.grid[0]}x{self.grid[1]}x{self.bins} ({how})"

    def check_space(self, space: Any, where: str) -> None:
        """Refuse a space this encoder was not made for."""
        gym = _gym()
        if not isinstance(space, gym.spaces.Box) or tuple(space.shape) != self.shape:
            raise NeoError(f"{where}: the agent expects a Box of shape {self.shape}, the environment has {space}")

    def to_dict(self) -> dict[str, Any]:
        """JSON description (``None`` bounds mean squashed values)."""
        return {"kind": self.kind, "shape": list(self.shape), "bins": self.bins, "scale": self.scale,
                "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BoxEncoder":
        """Rebuild from :meth:`to_dict` output."""
        return cls(d["shape"], d["bins"], d["low"], d["high"], d["scale"])


class DiscreteEncoder:
    """A ``Discrete(n, start)`` observation as one column of ``n`` cells (cell = value - start)."""

    kind = "discrete"

    def __init__(self, n: int, start: int = 0) -> None:
        if int(n) < 1:
            raise NeoError(f"Discrete needs n >= 1, got {n}")
        self.n, self.start = int(n), int(start)

    @property
    def io_size(self) -> tuple[int, int, int]:
        """``(1, 1, n)``."""
        return (1, 1, self.n)

    def encode(self, obs: Any, learn: bool = True) -> np.ndarray:
        """The one-column CSDR of the value."""
        v = int(obs) - self.start
        if not 0 <= v < self.n:
            raise NeoError(f"observation {obs} is outside Discrete({self.n}, start={self.start})")
        return np.array([v], dtype=np.int32)

    def describe(self) -> str:
        """One line for humans."""
        return f"discrete {self.n} -> 1x1x{self.n}"

    def check_space(self, space: Any, where: str) -> None:
        """Refuse a space this encoder was not made for."""
        gym = _gym()
        if not isinstance(space, gym.spaces.Discrete) or int(space.n) != self.n or int(space.start) != self.start:
            raise NeoError(f"{where}: the agent expects Discrete({self.n}, start={self.start}), "
                           f"the environment has {space}")

    def to_dict(self) -> dict[str, Any]:
        """JSON description."""
        return {"kind": self.kind, "n": self.n, "start": self.start}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiscreteEncoder":
        """Rebuild from :meth:`to_dict` output."""
        return cls(d["n"], d.get("start", 0))


class MultiDiscreteEncoder:
    """``MultiDiscrete``/``MultiBinary`` observations: one column per component.

    All columns share one port, so the column size is ``max(nvec)``; a component
    with fewer values simply never uses the upper cells.
    """

    kind = "multi_discrete"

    def __init__(self, nvec: Sequence[int], start: Sequence[int], shape: Sequence[int], binary: bool = False) -> None:
        self.nvec = np.asarray(nvec, dtype=np.int64).reshape(-1)
        self.start = np.asarray(start, dtype=np.int64).reshape(-1)
        self.shape = tuple(int(s) for s in shape)
        self.binary = bool(binary)
        if self.nvec.size < 1 or self.nvec.min() < 1 or self.start.size != self.nvec.size:
            raise NeoError("MultiDiscrete needs at least one component, each with n >= 1; "
                           f"got nvec {self.nvec.tolist()}")
        self.grid = grid_for(int(self.nvec.size))

    @classmethod
    def for_space(cls, space: Any) -> "MultiDiscreteEncoder":
        """The encoder of a gymnasium ``MultiDiscrete`` or ``MultiBinary``."""
        gym = _gym()
        if isinstance(space, gym.spaces.MultiBinary):
            n = int(np.prod(space.shape))
            return cls([2] * n, [0] * n, space.shape, binary=True)
        start = getattr(space, "start", np.zeros_like(space.nvec))
        return cls(np.asarray(space.nvec).reshape(-1), np.asarray(start).reshape(-1), space.shape)

    @property
    def io_size(self) -> tuple[int, int, int]:
        """``(W, H, max(nvec))``."""
        return (*self.grid, int(self.nvec.max()))

    def encode(self, obs: Any, learn: bool = True) -> np.ndarray:
        """The CSDR: component value minus its start, per column."""
        v = np.asarray(obs).reshape(-1).astype(np.int64) - self.start
        if v.size != self.nvec.size:
            raise NeoError(f"observation: expected {self.nvec.size} components, got {v.size}")
        bad = np.flatnonzero((v < 0) | (v >= self.nvec))
        if bad.size:
            i = int(bad[0])
            raise NeoError(f"observation component {i} = {v[i] + self.start[i]} is outside its range "
                           f"[{self.start[i]}, {self.start[i] + self.nvec[i]})")
        return v.astype(np.int32)

    def describe(self) -> str:
        """One line for humans."""
        name = "multi-binary" if self.binary else "multi-discrete"
        return f"{name} {self.nvec.tolist()} -> {self.grid[0]}x{self.grid[1]}x{int(self.nvec.max())}"

    def check_space(self, space: Any, where: str) -> None:
        """Refuse a space this encoder was not made for."""
        gym = _gym()
        if not isinstance(space, (gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
            raise NeoError(f"{where}: the agent expects {self.describe()}, the environment has {space}")
        other = MultiDiscreteEncoder.for_space(space)
        if (other.nvec.tolist() != self.nvec.tolist() or other.start.tolist() != self.start.tolist()
                or other.shape != self.shape):
            raise NeoError(f"{where}: the agent expects {self.describe()}, the environment has {space}")

    def to_dict(self) -> dict[str, Any]:
        """JSON description."""
        return {"kind": self.kind, "nvec": self.nvec.tolist(), "start": self.start.tolist(),
                "shape": list(self.shape), "binary": self.binary}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MultiDiscreteEncoder":
        """Rebuild from :meth:`to_dict` output."""
        return cls(d["nvec"], d["start"], d["shape"], d.get("binary", False))


def _image_encoder_module():
    """``neocli.image_encoder``, imported only when an image observation needs it."""
    try:
        from .. import image_encoder
    except ImportError as e:
        raise NeoError(f"image observations need neocli's ImageEncoder, which is not available: {e}") from None
    return image_encoder


class ImageEncoderPart:
    """A ``uint8`` image observation (``HxW`` or ``HxWxC``) through :class:`neocli.ImageEncoder`.

    The image is transposed to SPH's x-major layout (``(W, H, C)``, spec §1) and fed
    to an ImageEncoder with hidden size ``hidden`` and receptive-field ``radius``;
    its hidden CSDR is the port's input. The encoder learns (its self-organising
    map) whenever the hierarchy learns. It is created after the hierarchy, drawing
    from the process-wide generator, and its learned bytes are saved in the model
    header (:func:`agent_meta`), so an agent file is self-contained.
    """

    kind = "image"

    def __init__(self, shape: Sequence[int], hidden: Sequence[int], radius: int) -> None:
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) not in (2, 3) or min(self.shape) < 1:
            raise NeoError(f"an image observation must be HxW or HxWxC, got shape {self.shape}")
        self.hidden = tuple(int(s) for s in hidden)
        if len(self.hidden) != 3 or min(self.hidden) < 1:
            raise NeoError(f"the image encoder's hidden size must be three numbers >= 1, got {hidden!r}")
        self.radius = int(radius)
        if self.radius < 0:
            raise NeoError(f"the image encoder's radius must be >= 0, got {radius}")
        self.encoder: Any = None

    @classmethod
    def for_space(cls, space: Any, hidden: Sequence[int] | None, radius: int) -> "ImageEncoderPart":
        """The default: one hidden column per 8x8 pixels (at least 1), 16 cells, radius 4."""
        hgt, wid = int(space.shape[0]), int(space.shape[1])
        if hidden is None:
            hidden = (max(1, round(wid / 8)), max(1, round(hgt / 8)), 16)
        return cls(space.shape, hidden, radius)

    @property
    def visible_size(self) -> tuple[int, int, int]:
        """``(W, H, C)`` of the image as the ImageEncoder sees it."""
        c = self.shape[2] if len(self.shape) == 3 else 1
        return (self.shape[1], self.shape[0], c)

    @property
    def io_size(self) -> tuple[int, int, int]:
        """The ImageEncoder's hidden size."""
        return self.hidden

    def build(self) -> None:
        """Create a fresh ImageEncoder (draws from the process-wide generator)."""
        mod = _image_encoder_module()
        self.encoder = mod.ImageEncoder(self.hidden, [mod.ImageVisibleLayerDesc(self.visible_size, self.radius)])

    def load(self, data: bytes) -> None:
        """Restore a trained ImageEncoder from its serialized bytes."""
        mod = _image_encoder_module()
        self.encoder = mod.ImageEncoder(buffer=data)
        if tuple(self.encoder.get_hidden_size()) != self.hidden:
            raise NeoError(f"stored image encoder has hidden size {tuple(self.encoder.get_hidden_size())}, "
                           f"the encoding says {self.hidden}")

    def encode(self, obs: Any, learn: bool = True) -> np.ndarray:
        """Step the ImageEncoder on one image and return its hidden CSDR."""
        if self.encoder is None:
            raise NeoError("the image encoder was not built or loaded")
        a = np.asarray(obs)
        if a.shape != self.shape:
            raise NeoError(f"image observation: expected shape {self.shape}, got {a.shape}")
        if a.dtype != np.uint8:
            raise NeoError(f"image observation: expected uint8 pixels, got {a.dtype}")
        if a.ndim == 2:
            a = a[:, :, None]
        flat = np.ascontiguousarray(a.transpose(1, 0, 2)).reshape(-1)
        self.encoder.step([flat], bool(learn))
        return np.asarray(self.encoder.get_hidden_cis(), dtype=np.int32).copy()

    def describe(self) -> str:
        """One line for humans."""
        w, h, z = self.hidden
        return f"image {self.shape} -> ImageEncoder {w}x{h}x{z} (radius {self.radius})"

    def check_space(self, space: Any, where: str) -> None:
        """Refuse a space this encoder was not made for."""
        gym = _gym()
        if not isinstance(space, gym.spaces.Box) or tuple(space.shape) != self.shape or space.dtype != np.uint8:
            raise NeoError(f"{where}: the agent expects a uint8 image of shape {self.shape}, "
                           f"the environment has {space}")

    def to_dict(self) -> dict[str, Any]:
        """JSON description (the learned bytes are stored separately, see :func:`agent_meta`)."""
        return {"kind": self.kind, "shape": list(self.shape), "hidden": list(self.hidden), "radius": self.radius}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ImageEncoderPart":
        """Rebuild from :meth:`to_dict` output (without learned bytes)."""
        return cls(d["shape"], d["hidden"], d["radius"])


_OBS_KINDS = {c.kind: c for c in (BoxEncoder, DiscreteEncoder, MultiDiscreteEncoder, ImageEncoderPart)}


def is_image_space(space: Any) -> bool:
    """A ``uint8`` ``Box`` shaped ``HxW`` or ``HxWxC`` with 1-4 channels is an image."""
    gym = _gym()
    if not isinstance(space, gym.spaces.Box) or space.dtype != np.uint8:
        return False
    shp = tuple(space.shape)
    return (len(shp) == 2 and min(shp) >= 2) or (len(shp) == 3 and min(shp[:2]) >= 2 and 1 <= shp[2] <= 4)


# ---------------------------------------------------------------------------
# actions


class ActionDecoder:
    """Action ports for a ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` action space.

    ``Discrete(n, start)``: one port ``(1, 1, n)``; the env action is ``start + cell``.
    Components of equal size (``MultiBinary`` always): one port on
    :func:`grid_for`'s grid. Unequal sizes: one ``(1, 1, n_i)`` port per component.
    """

    def __init__(self, kind: str, nvec: Sequence[int], start: Sequence[int], shape: Sequence[int]) -> None:
        if kind not in ("discrete", "multi_discrete", "multi_binary"):
            raise NeoError(f"unknown action kind {kind!r}")
        self.kind = kind
        self.nvec = np.asarray(nvec, dtype=np.int64).reshape(-1)
        self.start = np.asarray(start, dtype=np.int64).reshape(-1)
        self.shape = tuple(int(s) for s in shape)
        if self.nvec.size < 1 or self.nvec.min() < 1 or self.start.size != self.nvec.size:
            raise NeoError(f"an action space needs at least one component with n >= 1, got {self.nvec.tolist()}")
        if kind == "discrete" and self.nvec.size != 1:
            raise NeoError("a Discrete action has exactly one component")
        self.split = bool(self.nvec.size > 1 and (self.nvec != self.nvec[0]).any())

    @classmethod
    def for_space(cls, space: Any) -> "ActionDecoder":
        """The decoder of a gymnasium action space, or a clear error for an unsupported one."""
        gym = _gym()
        s = gym.spaces
        if isinstance(space, s.Discrete):
            return cls("discrete", [int(space.n)], [int(space.start)], ())
        if isinstance(space, s.MultiBinary):
            n = int(np.prod(space.shape))
            return cls("multi_binary", [2] * n, [0] * n, space.shape)
        if isinstance(space, s.MultiDiscrete):
            start = getattr(space, "start", np.zeros_like(space.nvec))
            return cls("multi_discrete", np.asarray(space.nvec).reshape(-1), np.asarray(start).reshape(-1), space.shape)
        if isinstance(space, s.Box):
            raise NeoError(f"continuous action spaces ({space}) are not supported: the actor chooses among "
                           "discrete actions; discretise the actions first (e.g. a gymnasium ActionWrapper)")
        raise NeoError(f"unsupported action space {space}: only Discrete, MultiDiscrete and MultiBinary are supported")

    @property
    def io_sizes(self) -> list[tuple[int, int, int]]:
        """One size per action port, in order."""
        if self.split:
            return [(1, 1, int(n)) for n in self.nvec]
        return [(*grid_for(int(self.nvec.size)), int(self.nvec[0]))]

    def decode(self, cis: Sequence[np.ndarray]) -> Any:
        """The environment action for the actor's CSDRs (one per action port)."""
        if self.split:
            v = np.array([int(c[0]) for c in cis], dtype=np.int64)
        else:
            v = np.asarray(cis[0], dtype=np.int64).reshape(-1)
        v = v + self.start
        if self.kind == "discrete":
            return int(v[0])
        if self.kind == "multi_binary":
            return v.reshape(self.shape).astype(np.int8)
        return v.reshape(self.shape)

    def encode(self, action: Any) -> list[np.ndarray]:
        """The CSDRs (one per action port) of an environment action, e.g. a teacher's."""
        v = np.asarray(action).reshape(-1)
        if v.size != self.nvec.size or v.dtype.kind not in "iub":
            raise NeoError(f"action {action!r}: expected {self.nvec.size} integer component(s)")
        v = v.astype(np.int64) - self.start
        bad = np.flatnonzero((v < 0) | (v >= self.nvec))
        if bad.size:
            i = int(bad[0])
            raise NeoError(f"action component {i} = {v[i] + self.start[i]} is outside its range "
                           f"[{self.start[i]}, {self.start[i] + self.nvec[i]})")
        if self.split:
            return [np.array([x], dtype=np.int32) for x in v]
        return [v.astype(np.int32)]

    def zeros(self) -> list[np.ndarray]:
        """The "no action yet" input of every action port (cell 0 of each column)."""
        return [np.zeros(w * h, dtype=np.int32) for w, h, _ in self.io_sizes]

    def describe(self) -> str:
        """One line for humans."""
        ports = ", ".join(f"{w}x{h}x{z}" for w, h, z in self.io_sizes)
        name = {"discrete": f"discrete {int(self.nvec[0])}", "multi_binary": f"multi-binary {list(self.shape)}",
                "multi_discrete": f"multi-discrete {self.nvec.tolist()}"}[self.kind]
        return f"{name} -> action port(s) {ports}"

    def check_space(self, space: Any) -> None:
        """Refuse an action space this decoder was not made for."""
        other = ActionDecoder.for_space(space)
        if (other.kind != self.kind or other.nvec.tolist() != self.nvec.tolist()
                or other.start.tolist() != self.start.tolist() or other.shape != self.shape):
            raise NeoError(f"action space: the agent expects {self.describe()}, the environment has {space}")

    def to_dict(self) -> dict[str, Any]:
        """JSON description."""
        return {"kind": self.kind, "nvec": self.nvec.tolist(), "start": self.start.tolist(), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ActionDecoder":
        """Rebuild from :meth:`to_dict` output."""
        return cls(d["kind"], d["nvec"], d["start"], d["shape"])


# ---------------------------------------------------------------------------
# the whole encoding


class Encoding:
    """How an environment's observations and actions map to a hierarchy's IO ports.

    ``observation`` holds one part per observation port (a ``Tuple`` observation
    has one per element, otherwise there is one); ``tuple_obs`` says whether the
    observation is a tuple. The action ports follow the observation ports.
    """

    def __init__(self, observation: list[Any], action: ActionDecoder, tuple_obs: bool = False,
                 env_id: str | None = None, preset: str | None = None) -> None:
        if not observation:
            raise NeoError("an encoding needs at least one observation port")
        self.observation = list(observation)
        self.action = action
        self.tuple_obs = bool(tuple_obs)
        self.env_id = env_id
        self.preset = preset

    # -- ports -----------------------------------------------------------------
    @property
    def num_obs_ios(self) -> int:
        """Number of observation ports (they come first)."""
        return len(self.observation)

    @property
    def action_ios(self) -> list[int]:
        """Indices of the action ports."""
        return list(range(self.num_obs_ios, self.num_obs_ios + len(self.action.io_sizes)))

    def io_descs(self, up_radius: int = 2, down_radius: int = 2, dendrites: int = 4,
                 value_dendrites: int = 8, history_capacity: int = 512) -> list[IODesc]:
        """The IO descriptors: observation ports (type ``none``), then action ports.

        The defaults are ``IODesc``'s (as decisions D16 uses).
        """
        kw = dict(num_dendrites_per_cell=dendrites, up_radius=up_radius, down_radius=down_radius)
        ios = [IODesc(p.io_size, IOType.none, **kw) for p in self.observation]
        ios += [IODesc(s, IOType.action, value_num_dendrites_per_cell=value_dendrites,
                       history_capacity=history_capacity, **kw) for s in self.action.io_sizes]
        return ios

    # -- data --------------------------------------------------------------------
    def encode_observation(self, obs: Any, learn: bool = True) -> list[np.ndarray]:
        """One CSDR per observation port (image parts step their encoder with ``learn``)."""
        if self.tuple_obs:
            if not isinstance(obs, (tuple, list)) or len(obs) != len(self.observation):
                raise NeoError(f"observation: expected a tuple of {len(self.observation)} values, got {obs!r}")
            return [p.encode(o, learn) for p, o in zip(self.observation, obs)]
        return [self.observation[0].encode(obs, learn)]

    def check_env(self, env: Any) -> None:
        """Refuse an environment whose spaces differ from the ones this encoding was made for."""
        gym = _gym()
        space = env.observation_space
        if self.tuple_obs:
            if not isinstance(space, gym.spaces.Tuple) or len(space.spaces) != len(self.observation):
                raise NeoError(f"observation space: the agent expects a Tuple of {len(self.observation)}, "
                               f"the environment has {space}")
            for i, (p, s) in enumerate(zip(self.observation, space.spaces)):
                p.check_space(s, f"observation element {i}")
        else:
            self.observation[0].check_space(space, "observation space")
        self.action.check_space(env.action_space)

    @property
    def image_parts(self) -> list[ImageEncoderPart]:
        """The observation parts that run an ImageEncoder."""
        return [p for p in self.observation if isinstance(p, ImageEncoderPart)]

    def describe(self) -> str:
        """A short human description."""
        obs = "; ".join(p.describe() for p in self.observation)
        return f"observation {obs}; action {self.action.describe()}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON description stored in model headers."""
        return {"format": ENCODING_FORMAT, "env_id": self.env_id, "preset": self.preset,
                "tuple": self.tuple_obs, "observation": [p.to_dict() for p in self.observation],
                "action": self.action.to_dict()}

    @classmethod
    def from_dict(cls, d: Any) -> "Encoding":
        """Rebuild an encoding from :meth:`to_dict` output, with a clear error if it is not one."""
        if not isinstance(d, dict) or d.get("format") != ENCODING_FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise NeoError(f"not an RL encoding description (format {got!r}, expected {ENCODING_FORMAT!r})")
        try:
            parts = []
            for p in d["observation"]:
                kind = _OBS_KINDS.get(p.get("kind"))
                if kind is None:
                    raise NeoError(f"unknown observation kind {p.get('kind')!r}")
                parts.append(kind.from_dict(p))
            return cls(parts, ActionDecoder.from_dict(d["action"]), bool(d.get("tuple", False)),
                       d.get("env_id"), d.get("preset"))
        except NeoError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as e:
            # ValueError/OverflowError: float("words"), int(10**400) from a hostile header (found by fuzzing).
            raise NeoError(f"invalid RL encoding description: {type(e).__name__}: {e}") from None


def _obs_part(space: Any, bins: int, squash: str, scale: float, image: bool,
              image_hidden: Sequence[int] | None, image_radius: int, where: str) -> Any:
    gym = _gym()
    s = gym.spaces
    if image and is_image_space(space):
        return ImageEncoderPart.for_space(space, image_hidden, image_radius)
    if isinstance(space, s.Box):
        if space.dtype.kind not in "fiub":
            raise NeoError(f"{where}: a Box of dtype {space.dtype} cannot be binned")
        return BoxEncoder.for_space(space, bins, squash, scale)
    if isinstance(space, s.Discrete):
        return DiscreteEncoder(int(space.n), int(space.start))
    if isinstance(space, (s.MultiDiscrete, s.MultiBinary)):
        return MultiDiscreteEncoder.for_space(space)
    raise NeoError(f"unsupported {where} {space}: supported are Box (numbers or uint8 images), Discrete, "
                   "MultiDiscrete, MultiBinary, and a Tuple of these")


def encoding_for_env(env: Any, *, preset: str | None = None, bins: int = DEFAULT_BINS, squash: str = "auto",
                     squash_scale: float = DEFAULT_SQUASH_SCALE, image: bool = True,
                     image_hidden: Sequence[int] | None = None, image_radius: int = 4) -> Encoding:
    """The :class:`Encoding` of ``env``'s spaces (the spaces are only read, never changed).

    ``squash="auto"`` bins values with finite declared bounds linearly and squashes
    the rest with ``sigmoid(squash_scale * x)``; ``squash="all"`` squashes every value.
    ``preset="d16"`` is decisions D16's manual-example encoding: ``squash="all"``,
    scale 3, 32 bins (for CartPole a 2x2x32 observation port and a 1x1x2 action
    port); it cannot be combined with other encoding options. ``image=False`` bins
    ``uint8`` image boxes like any other box instead of using the ImageEncoder.
    """
    if squash not in ("auto", "all"):
        raise NeoError(f"squash must be 'auto' or 'all', got {squash!r}")
    if preset is not None:
        if preset != "d16":
            raise NeoError(f"unknown encoding preset {preset!r} (known: d16)")
        if (bins, squash, squash_scale) != (DEFAULT_BINS, "auto", DEFAULT_SQUASH_SCALE):
            raise NeoError("preset 'd16' fixes bins (32), squash ('all') and the scale (3): leave them out")
        squash, squash_scale = "all", 3.0
    gym = _gym()
    ospace = env.observation_space
    if isinstance(ospace, gym.spaces.Tuple):
        if not ospace.spaces:
            raise NeoError("an empty Tuple observation space has nothing to encode")
        parts = [_obs_part(s, bins, squash, squash_scale, image, image_hidden, image_radius,
                           f"observation element {i}") for i, s in enumerate(ospace.spaces)]
        tuple_obs = True
    else:
        parts = [_obs_part(ospace, bins, squash, squash_scale, image, image_hidden, image_radius,
                           "observation space")]
        tuple_obs = False
    action = ActionDecoder.for_space(env.action_space)
    spec = getattr(env, "spec", None)
    env_id = getattr(spec, "id", None) if spec is not None else None
    return Encoding(parts, action, tuple_obs, env_id, preset)


__all__ = ["ENCODING_FORMAT", "DEFAULT_BINS", "DEFAULT_SQUASH_SCALE", "MAX_LINEAR_RANGE", "grid_for", "BoxEncoder",
           "DiscreteEncoder", "MultiDiscreteEncoder", "ImageEncoderPart", "ActionDecoder", "Encoding",
           "encoding_for_env", "is_image_space"]
