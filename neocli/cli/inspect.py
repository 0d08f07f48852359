"""``neocli inspect MODEL.ohr``: describe a model from its header alone.

Only the 24-byte prefix and the JSON header are read (the header CRC is checked,
decisions D6), so inspecting a 1 GB model is instant; ``neocli checkpoint verify``
checks the arrays. The report is the command's data and goes to stdout.

The header is treated as untrusted: every key except the ones the reader itself
validates may be missing or of the wrong JSON type, and the report then says so
instead of failing.
"""
from __future__ import annotations

import json
import math
import os
import sys
from typing import Annotated, Any

import typer

from .. import aogmaneo, checkpoints
from ..errors import NeoError
from ..codecs import codec_from_dict
from ..params import IOParams, LayerParams
from ._common import load_header
from .app import app, command
from .migrate import import_command

__all__ = [
    "inspect",
    "load_header",
    "section_summary",
    "human_bytes",
    "training_of",
    "last_metrics",
    "render_report",
]


# --------------------------------------------------------------------------
# helpers shared with ``checkpoint``


def section_summary(header: dict[str, Any]) -> dict[str, dict[str, int]]:
    """``{section: {"arrays": n, "bytes": total}}`` for the sections present in ``header``."""
    out: dict[str, dict[str, int]] = {}
    for name, entries in header.get("sections", {}).items():
        out[name] = {"arrays": len(entries), "bytes": sum(e["nbytes"] for e in entries)}
    return out


def human_bytes(n: Any) -> str:
    """``n`` bytes in binary units (``"82.4 KiB"``); ``"?"`` for a value that is not a size."""
    if not _is_int(n) or n < 0:
        return "?"
    if n < 1024:
        return f"{n} B"
    if n >= 1024**6:
        # float(n) overflows for the absurd sizes a corrupt header can claim (found by fuzzing).
        return f"{n // 1024**5:,} PiB"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024.0
        if value < 1024.0 or unit == "PiB":
            return f"{value:.1f} {unit}"
    return f"{n} B"  # pragma: no cover - unreachable


def training_of(header: dict[str, Any]) -> dict[str, Any]:
    """The header's ``training`` object, or ``{}`` when absent or not an object."""
    t = header.get("training")
    return t if isinstance(t, dict) else {}


def last_metrics(training: dict[str, Any]) -> dict[str, Any]:
    """The last entry of ``training["metrics"]`` (``{}`` when there is none)."""
    metrics = training.get("metrics")
    if isinstance(metrics, list) and metrics and isinstance(metrics[-1], dict):
        return metrics[-1]
    return {}


def _is_int(x: Any) -> bool:
    return type(x) is int


def _is_num(x: Any) -> bool:
    # Not math.isfinite(x) on ints: a header int of 400 digits overflows it (found by fuzzing),
    # and the float formats used on these values need a float-sized number anyway.
    if type(x) is int:
        return abs(x) <= sys.float_info.max
    return type(x) is float and math.isfinite(x)


def _fmt_int(x: Any) -> str:
    return f"{x:,}" if _is_int(x) else ("?" if x is None else str(x))


def _fmt_float(x: Any, spec: str) -> str:
    return format(x, spec) if _is_num(x) else "n/a"


def _fmt_size3(x: Any) -> str:
    if isinstance(x, list) and x and all(_is_int(d) for d in x):
        return "x".join(str(d) for d in x)
    return "?"


def _bytes_line(n: Any) -> str:
    if not _is_int(n):
        return "?"
    return f"{n:,} bytes" if n < 1024 else f"{n:,} bytes ({human_bytes(n)})"


# --------------------------------------------------------------------------
# the report


def _image_encoder_lines(arch: dict[str, Any]) -> list[str]:
    lines = [f"  image encoder, hidden {_fmt_size3(arch.get('hidden_size'))}"]
    descs = arch.get("visible_layer_descs")
    for v, d in enumerate(descs if isinstance(descs, list) else []):
        if not isinstance(d, dict):
            lines.append(f"  visible {v}  (invalid)")
            continue
        lines.append(f"  visible {v:<3} {_fmt_size3(d.get('size')):<10} (width x height x channels), radius {d.get('radius', '?')}")
    return lines


def _architecture_lines(header: dict[str, Any]) -> list[str]:
    arch = header.get("architecture")
    if not isinstance(arch, dict):
        return ["  (missing or invalid)"]
    if header.get("kind") == "image_encoder":
        return _image_encoder_lines(arch)
    lines = []
    ios = arch.get("io_descs")
    for i, d in enumerate(ios if isinstance(ios, list) else []):
        if not isinstance(d, dict):
            lines.append(f"  io {i}     (invalid)")
            continue
        kind = d.get("io_type", "?")
        parts = [f"up radius {d.get('up_radius', '?')}"]
        if kind in ("prediction", "action"):
            parts.append(f"down radius {d.get('down_radius', '?')}")
            parts.append(f"dendrites {d.get('num_dendrites_per_cell', '?')}")
        if kind == "action":
            parts.append(f"value dendrites {d.get('value_num_dendrites_per_cell', '?')}")
            parts.append(f"history {d.get('history_capacity', '?')}")
        lines.append(f"  io {i:<5} {str(kind):<10} {_fmt_size3(d.get('size')):<10} {', '.join(parts)}")
    layers = arch.get("layer_descs")
    for l, d in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(d, dict):
            lines.append(f"  layer {l}  (invalid)")
            continue
        rec = d.get("recurrent_radius")
        parts = []
        if l == 0:
            # Layer 0's up/down radii and dendrites are unused: each IO carries its own.
            parts.append("radii per IO")
        else:
            parts.append(f"up radius {d.get('up_radius', '?')}")
            parts.append(f"down radius {d.get('down_radius', '?')}")
            parts.append(f"dendrites {d.get('num_dendrites_per_cell', '?')}")
        if _is_int(rec) and rec < 0:
            parts.append("no recurrence")
        else:
            parts.append(f"recurrent radius {rec if rec is not None else '?'}")
        lines.append(f"  layer {l:<2} {'':<10} {_fmt_size3(d.get('hidden_size')):<10} {', '.join(parts)}")
    return lines or ["  (empty)"]


def _get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...``, or None where a level is missing or not a dict."""
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def _params_lines(header: dict[str, Any]) -> list[str]:
    p = header.get("params")
    if not isinstance(p, dict):
        return ["  (missing or invalid)"]
    if header.get("kind") == "image_encoder":
        return ["  " + ", ".join(f"{k} {_fmt_float(v, '.6g') if isinstance(v, float) else v}"
                                 for k, v in p.items() if isinstance(v, (int, float)))] if p else ["  (empty)"]
    lines = []
    if "anticipation" in p:
        lines.append(f"  anticipation  {'on' if p['anticipation'] else 'off'}")
    arch = header.get("architecture") if isinstance(header.get("architecture"), dict) else {}
    io_descs = arch.get("io_descs") if isinstance(arch.get("io_descs"), list) else []

    layers = p.get("layers")
    for l, lp in enumerate(layers if isinstance(layers, list) else []):
        parts = [f"encoder lr {_fmt_float(_get(lp, 'encoder', 'lr'), '.6g')}",
                 f"vigilance {_fmt_float(_get(lp, 'encoder', 'vigilance'), '.6g')}"]
        shown = {"encoder.lr", "encoder.vigilance"}
        if l > 0:
            parts.append(f"decoder lr {_fmt_float(_get(lp, 'decoder', 'lr'), '.6g')}, "
                         f"scale {_fmt_float(_get(lp, 'decoder', 'scale'), '.6g')}")
            shown |= {"decoder.lr", "decoder.scale"}
        lines.append(f"  layer {l:<7} {', '.join(parts + _changed(lp, LayerParams().to_dict(), shown))}")
    lines += _io_param_lines(p.get("ios"), io_descs)
    return lines or ["  (empty)"]


def _io_param_lines(ios: Any, io_descs: list[Any]) -> list[str]:
    """One ``params`` line per IO: the rates of its kind, its decoder scale, importance, and
    any other parameter of its kind that differs from a new hierarchy's."""
    lines = []
    for i, ip in enumerate(ios if isinstance(ios, list) else []):
        kind = _get(io_descs[i], "io_type") if i < len(io_descs) else None
        if kind == "action":
            text = (f"actor vlr {_fmt_float(_get(ip, 'actor', 'vlr'), '.6g')}, "
                    f"plr {_fmt_float(_get(ip, 'actor', 'plr'), '.6g')}")
            shown, own = {"actor.vlr", "actor.plr"}, ("actor.", "importance")
        elif kind == "none":
            text, shown, own = "input only", set(), ("importance",)
        else:
            text = (f"decoder lr {_fmt_float(_get(ip, 'decoder', 'lr'), '.6g')}, "
                    f"scale {_fmt_float(_get(ip, 'decoder', 'scale'), '.6g')}")
            shown, own = {"decoder.lr", "decoder.scale"}, ("decoder.", "importance")
        shown.add("importance")
        extra = [x for x in _changed(ip, IOParams().to_dict(), shown) if x.startswith(own)]
        lines.append(f"  io {i:<10} {', '.join([text, *extra])}, "
                     f"importance {_fmt_float(_get(ip, 'importance'), '.6g')}")
    return lines


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested params dict as ``{"encoder.lr": 0.5, ...}`` (the ``--param`` names)."""
    out: dict[str, Any] = {}
    for k, v in (d.items() if isinstance(d, dict) else ()):
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _changed(p: Any, defaults: dict[str, Any], shown: set[str]) -> list[str]:
    """``NAME VALUE`` for each parameter of ``p`` that differs from a new hierarchy's
    (``defaults``) and is not ``shown`` already: a ``--param`` given at training shows."""
    base = _flat(defaults)
    return [f"{k} {_fmt_float(v, '.6g') if isinstance(v, float) else v}" for k, v in _flat(p).items()
            if k not in shown and k in base and v != base[k]]


def _codec_line(header: dict[str, Any]) -> str:
    if "codec" not in header and isinstance(header.get("rl"), dict):
        from ..rl import describe_agent  # RL agents carry an encoding instead of a codec

        return describe_agent(header["rl"])
    if "codec" not in header and header.get("kind") == "image_encoder":
        return "none (an image encoder: its inputs are images)"
    if "codec" not in header:
        return "none (not trained with the neocli CLI)"
    try:
        return codec_from_dict(header["codec"]).describe()
    except (NeoError, TypeError, ValueError) as e:
        return f"invalid codec ({e})"


def _training_lines(header: dict[str, Any]) -> list[str]:
    if "training" not in header:
        return ["  none"]
    t = header["training"]
    if not isinstance(t, dict):
        return ["  (invalid: not an object)"]
    lines = []
    epoch, epochs = t.get("epoch"), t.get("epochs")
    if "epoch" in t or "epochs" in t:
        lines.append(f"  epochs     {_fmt_int(epoch)} of {_fmt_int(epochs)} completed")
    if t.get("complete") is True:
        lines += _complete_lines(t)
    elif t.get("kind") == "rl" and t.get("complete") is False:
        lines.append(f"  status     incomplete: resumable at episode {_fmt_int(t.get('episode'))}")
    elif "complete" in t or "position" in t:
        at = f"epoch {checkpoints.epoch_of(t)}" if _is_int(epoch) else "epoch ?"
        lines.append(f"  status     incomplete: resumable at {at}, position {_fmt_int(t.get('position', 0))}")
    if t.get("kind") == "rl" and isinstance(t.get("returns"), list):
        from ..rl import moving_average

        ma = moving_average([r for r in t["returns"] if _is_num(r)] or [0.0])[-1]
        lines.append(f"  episodes   {_fmt_int(t.get('episode'))} of {_fmt_int(t.get('episodes'))} "
                     f"in {t.get('env')}, last 20-episode average return {ma:.1f}")
    if "steps" in t:
        lines.append(f"  steps      {_fmt_int(t['steps'])}")
    if "seed" in t:
        lines.append(f"  seed       {t['seed']}")
    sha = t.get("data_sha256")
    files = t.get("data_files")
    if sha is not None or files is not None:
        data = f"sha256 {str(sha)[:16]}…" if isinstance(sha, str) and len(sha) > 16 else f"sha256 {sha}"
        if isinstance(files, list) and files:
            data += f"  ({', '.join(str(f) for f in files)})"
        lines.append(f"  data       {data}")
    if isinstance(t.get("merged_from"), list):
        lines.append(f"  merged     from {', '.join(str(f) for f in t['merged_from'])} ({t.get('mode', '?')})")
    for key, label in (("started_utc", "started"), ("updated_utc", "updated"), ("finished_utc", "finished")):
        if key in t:
            lines.append(f"  {label:<10} {t[key]}")
    lines += _metrics_lines(t.get("metrics"))
    return lines or ["  (empty)"]


def _complete_lines(t: dict[str, Any]) -> list[str]:
    """The status of a finished training record: complete, whether it stopped early, and
    which model the file holds when validation kept the best rather than the last."""
    stop, run, best = t.get("stopped_early"), t.get("run"), t.get("best")
    lines = ["  status     complete"]
    if isinstance(stop, dict):
        lines = [f"  status     complete: stopped early at step {_fmt_int(stop.get('steps'))}, after "
                 f"{_fmt_int(stop.get('validations_without_improvement'))} validations without improvement"]
    if isinstance(best, dict) and isinstance(run, dict):   # the file holds the best model, not the last
        lines.append(f"  kept       the best validation ({_fmt_float(best.get('bits_per_symbol'), '.3f')} bits/symbol "
                     f"at step {_fmt_int(best.get('steps'))}); training ran on to step {_fmt_int(run.get('steps'))}, "
                     f"epochs completed: {_fmt_int(run.get('epochs_completed'))}")
    return lines


def _metrics_lines(metrics: Any) -> list[str]:
    """The per-epoch metrics table of a training record."""
    if not isinstance(metrics, list) or not metrics:
        return []
    lines = ["  metrics", f"    {'epoch':>5}  {'accuracy':>8}  {'bits/sym':>8}  {'symbols/s':>10}  {'symbols':>12}"]
    for m in metrics:
        if not isinstance(m, dict):
            lines.append("    (invalid entry)")
            continue
        sps = m.get("symbols_per_s")
        # A partial row: the epoch up to the step of the model kept (the best validation).
        epoch = _fmt_int(m.get("epoch")) + ("*" if m.get("partial") is True else "")
        lines.append(
            f"    {epoch:>5}  {_fmt_float(m.get('accuracy'), '.4f'):>8}  "
            f"{_fmt_float(m.get('bits_per_symbol'), '.3f'):>8}  "
            f"{(f'{sps:,.0f}' if _is_num(sps) else 'n/a'):>10}  {_fmt_int(m.get('symbols')):>12}"
        )
    if any(isinstance(m, dict) and m.get("partial") is True for m in metrics):
        lines.append("    * part of an epoch: up to the step of the model kept")
    return lines


#: Longest user value shown in the report; longer ones are cut, and the report says so.
VALUE_WIDTH = 120


def one_line(v: Any, width: int = VALUE_WIDTH) -> str:
    """A metadata value on one report line: control characters (newlines, tabs, escapes) shown
    escaped as in JSON, and a value longer than ``width`` cut with a note of how much is left."""
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    if any(c < " " or c == "\x7f" for c in text):
        text = json.dumps(text, ensure_ascii=False)[1:-1]
    if len(text) > width:
        text = f"{text[:width]}… [{len(text) - width} more characters; --json shows the whole value]"
    return text


def _user_lines(header: dict[str, Any]) -> list[str]:
    u = header.get("user")
    if not isinstance(u, dict):
        return [f"  {one_line(u)}"]
    width = min(max(len(one_line(k, 24)) for k in u), 24)
    return [f"  {one_line(k, 24):<{width}}  {one_line(v)}" for k, v in u.items()]


def render_report(path: str, header: dict[str, Any]) -> str:
    """The human-readable ``inspect`` report of the model at ``path`` with ``header``."""
    secs = section_summary(header)
    sizes = header.get("sizes") if isinstance(header.get("sizes"), dict) else {}
    try:
        on_disk = os.path.getsize(path)
    except OSError:
        on_disk = None
    out = [
        f"file            {path}",
        f"format          {header.get('format')} version {header.get('format_version')}",
        *([f"                pyaogmaneo's own format, not .ohr; to convert it: {import_command(path)}"]
          if header.get("format") == aogmaneo.FORMAT_NAME else []),
        f"neocli version  {header.get('neocli_version', '?')}",
        f"created         {header.get('created_utc', '?')}",
        "",
        "architecture",
        *_architecture_lines(header),
        "",
        "sizes",
    ]
    for key in ("state", "weights", "persistent", "total"):
        out.append(f"  {key:<14} {_bytes_line(sizes.get(key))}")
    if on_disk is not None:
        out.append(f"  {'on disk':<14} {_bytes_line(on_disk)}")
    if "state" in secs:
        out.append(f"  {'state section':<14} present")
    else:
        out.append(f"  {'state section':<14} absent (the model loads with a cleared state)")
    out += ["", "params", *_params_lines(header), "", f"codec           {_codec_line(header)}", "",
            "training", *_training_lines(header)]
    if isinstance(header.get("provenance"), dict) and header["provenance"]:
        out += ["", "provenance", *_user_lines({"user": header["provenance"]})]
    if header.get("user") not in (None, {}):
        out += ["", "user", *_user_lines(header)]
    return "\n".join(out)


# --------------------------------------------------------------------------
# the command


@app.command("inspect")
@command
def inspect(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model file (.ohr) to describe.", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", "-j", help="Print one JSON object instead of the report.")] = False,
) -> None:
    """Describe a model from its header alone: architecture, sizes, codec, training, metadata.

    Only the header is read (its CRC is checked), so this is instant on large
    models; use 'neocli checkpoint verify' to check the arrays.
    """
    header = load_header(model)
    if json_out:
        obj = {
            "file": model,
            "header": {k: v for k, v in header.items() if k != "sections"},
            "sections": section_summary(header),
        }
        typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))
    else:
        typer.echo(render_report(model, header))
