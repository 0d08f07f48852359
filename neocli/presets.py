"""Model presets: architectures and learning parameters chosen on held-out bits per byte,
and ``--param NAME=VALUE`` overrides of a hierarchy's learning parameters.

``Hierarchy`` itself keeps pyaogmaneo's defaults (the bit-exact drop-in); these are
the defaults of the command line and of ``neocli.training`` (README, "Choosing the
defaults").
"""
from __future__ import annotations

import math
from typing import Any

from . import Hierarchy, IODesc, LayerDesc, prediction, set_global_state
from ._errors import NeoError

__all__ = ["DEFAULTS", "resolve", "build_hierarchy", "parse_param", "apply_params", "PARAM_NAMES",
           "parse_hidden"]

# The training defaults (``neocli.training``'s DEFAULT_* constants, which a test keeps
# in step with this dict), chosen on held-out bits/byte (README, "Choosing the defaults").
DEFAULTS: dict[str, Any] = {
    "byte_layout": "byte",
    "hidden": "8x8x32",
    "layers": 1,
    "up_radius": 2,
    "down_radius": 4,
    "recurrent_radius": 0,
    "dendrites": 4,
    "epochs": 1,
    "params": {"ios.decoder.scale": 4.0},
    "seed": 0,
}


def parse_hidden(text: str, layers: int | None) -> list[tuple[int, int, int]]:
    """``WxHxZ`` (repeated ``layers`` times) or ``A,B,C`` (one per layer)."""
    try:
        parts = [tuple(int(v) for v in p.lower().split("x")) for p in str(text).split(",")]
    except ValueError:
        raise NeoError(f"hidden must be WxHxZ or a comma-separated list of them, got {text!r}") from None
    if any(len(p) != 3 or min(p) < 1 for p in parts):
        raise NeoError(f"hidden must be WxHxZ with positive sizes, got {text!r}")
    if len(parts) == 1 and layers is not None:
        if layers < 1:
            raise NeoError(f"layers must be >= 1, got {layers}")
        parts = parts * layers
    elif layers is not None and layers != len(parts):
        raise NeoError(f"layers is {layers} but hidden lists {len(parts)} sizes")
    return parts  # type: ignore[return-value]


def resolve(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """``cfg`` with every missing key taken from ``DEFAULTS`` (unknown keys are an error)."""
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise NeoError(f"unknown model options: {', '.join(sorted(unknown))}")
    out = {**DEFAULTS, **cfg}
    out["params"] = {**DEFAULTS["params"], **cfg.get("params", {})}
    return out


def build_hierarchy(codec, cfg: dict[str, Any] | None = None) -> Hierarchy:
    """A fresh hierarchy for ``codec`` from a preset (seeded by ``cfg['seed']``), with
    its ``params`` overrides applied."""
    cfg = resolve(cfg)
    sizes = parse_hidden(cfg["hidden"], cfg["layers"] if "," not in str(cfg["hidden"]) else None)
    ios = [IODesc(codec.io_size, prediction, num_dendrites_per_cell=cfg["dendrites"],
                  up_radius=cfg["up_radius"], down_radius=cfg["down_radius"])]
    lds = [LayerDesc(s, num_dendrites_per_cell=cfg["dendrites"], up_radius=cfg["up_radius"],
                     recurrent_radius=cfg["recurrent_radius"], down_radius=cfg["down_radius"]) for s in sizes]
    set_global_state(int(cfg["seed"]))
    h = Hierarchy(ios, lds)
    apply_params(h, cfg["params"])
    return h


# name -> (kind, lower bound, upper bound); "layers.X" applies to every layer,
# "layers.N.X" to layer N, and the same for "ios".
_LAYER = {
    "encoder.choice": ("f", 0.0, math.inf), "encoder.vigilance": ("f", 0.0, 1.0),
    "encoder.lr": ("f", 0.0, 1.0), "encoder.active_ratio": ("f", 0.0, 1.0),
    "encoder.l_radius": ("i", 0, 64), "decoder.scale": ("f", 0.0, 1e6),
    "decoder.lr": ("f", 0.0, 10.0), "recurrent_importance": ("f", 0.0, 1e6),
}
_IO = {"decoder.scale": ("f", 0.0, 1e6), "decoder.lr": ("f", 0.0, 10.0), "importance": ("f", 0.0, 1e6)}
PARAM_NAMES = sorted([f"layers.{k}" for k in _LAYER] + [f"ios.{k}" for k in _IO] + ["anticipation"])


def parse_param(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, value), validated against ``PARAM_NAMES``; the name may
    carry a layer or IO index (``layers.0.encoder.lr=0.3``)."""
    if "=" not in text:
        raise NeoError(f"param must be NAME=VALUE, got {text!r}")
    name, _, raw = text.partition("=")
    name = name.strip()
    kind, lo, hi = _lookup(name)
    try:
        if kind == "b":
            if raw.strip().lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return name, raw.strip().lower() in ("true", "1")
        value: Any = int(raw) if kind == "i" else float(raw)
    except ValueError:
        raise NeoError(f"param {name}: {raw!r} is not a valid "
                       f"{'integer' if kind == 'i' else 'number' if kind == 'f' else 'boolean'}") from None
    if not (lo <= value <= hi) or (kind == "f" and not math.isfinite(value)):
        raise NeoError(f"param {name} must be in [{lo}, {hi}], got {raw.strip()}")
    return name, value


def _lookup(name: str) -> tuple[str, float, float]:
    if name == "anticipation":
        return "b", 0, 1
    parts = name.split(".")
    if parts and parts[0] in ("layers", "ios"):
        rest = parts[1:]
        if rest and rest[0].isdigit():
            rest = rest[1:]
        table = _LAYER if parts[0] == "layers" else _IO
        key = ".".join(rest)
        if key in table:
            return table[key]
    raise NeoError(f"unknown param {name!r}; known: {', '.join(PARAM_NAMES)} "
                   "(layers.N.… / ios.N.… for one layer or IO)")


def apply_params(h: Hierarchy, params: dict[str, Any]) -> None:
    """Set ``{name: value}`` (``parse_param`` names) on ``h.params``."""
    for name, value in sorted((params or {}).items()):
        name, value = parse_param(f"{name}={value}")
        if name == "anticipation":
            h.params.anticipation = value
            continue
        parts = name.split(".")
        group = h.params.layers if parts[0] == "layers" else h.params.ios
        if parts[1].isdigit():
            i = int(parts[1])
            if i >= len(group):
                raise NeoError(f"param {name}: the model has {len(group)} {parts[0]}")
            targets, path = [group[i]], parts[2:]
        else:
            targets, path = list(group), parts[1:]
        for t in targets:
            obj = t
            for p in path[:-1]:
                obj = getattr(obj, p)
            setattr(obj, path[-1], value)
