"""``neocli train``: stream data through a hierarchy and save the model."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Annotated, Any, Optional

import typer
from tqdm import tqdm

from .. import Hierarchy, IODesc, LayerDesc, prediction, set_global_state, set_num_threads
from ..codecs import CODEC_KINDS, RESET, make_codec
from ._common import Interrupt, Score, fmt_metrics, load_model, parse_meta, parse_sizes, rotate_checkpoints, utc_now
from ._data import HashingReader, check_writable, open_sources
from .app import CliError, UsageError, app, command, echo_err

# Defaults chosen by measurement on datasets/ (see README "Choosing the defaults").
DEFAULT_HIDDEN = "5x5x32"
DEFAULT_LAYERS = 2
ARCH_DEFAULTS = {"up_radius": 2, "down_radius": 2, "recurrent_radius": 0, "dendrites": 4}


def _parse_every(text: str | None) -> tuple[int, int]:
    """``--checkpoint-every``: ``N`` steps, or ``Ne`` epochs. Returns (steps, epochs)."""
    if text is None:
        return 0, 0
    t = text.strip().lower()
    try:
        if t.endswith("e"):
            n = int(t[:-1])
            if n < 1:
                raise ValueError
            return 0, n
        n = int(t)
        if n < 1:
            raise ValueError
        return n, 0
    except ValueError:
        raise UsageError(f"--checkpoint-every expects a number of steps (e.g. 5000) or epochs (e.g. 1e), got {text!r}") from None


def _parse_range(text: str) -> tuple[float, float]:
    """``--csv-range LO:HI``."""
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise UsageError(f"--csv-range expects LO:HI, e.g. 0:200, got {text!r}") from None
    if not lo < hi:
        raise UsageError(f"--csv-range needs LO < HI, got {text!r}")
    return lo, hi


def _resume_conflicts(h: Hierarchy, cdc, arch_given: dict[str, Any],
                      codec_given: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Options given to a ``--resume`` run that disagree with the model, as
    ``{option: (model's value, asked value)}``. Values are compared as resolved
    (``--hidden 5x5x32`` equals a model trained with the default), not as typed."""
    out: dict[str, tuple[Any, Any]] = {}
    sizes = [tuple(h.get_hidden_size(l)) for l in range(h.get_num_layers())]
    fmt = ",".join("x".join(map(str, sz)) for sz in sizes)
    if "hidden" in arch_given:
        asked = parse_sizes(arch_given["hidden"], arch_given.get("layers", len(sizes) if "," not in arch_given["hidden"] else None))
        if asked != sizes:
            out["--hidden"] = (fmt, arch_given["hidden"])
    if "layers" in arch_given and arch_given["layers"] != len(sizes):
        out["--layers"] = (len(sizes), arch_given["layers"])
    io, l0 = h._io_descs[0], h._layer_descs[0]
    model_arch = {"up_radius": io.up_radius, "down_radius": io.down_radius,
                  "recurrent_radius": l0.recurrent_radius, "dendrites": io.num_dendrites_per_cell}
    for k, v in model_arch.items():
        if k in arch_given and arch_given[k] != v:
            out["--" + k.replace("_", "-")] = (v, arch_given[k])
    model_codec = {"codec": cdc.kind, "byte_layout": getattr(cdc, "layout", None),
                   "bins": getattr(cdc, "bins", None), "max_vocab": getattr(cdc, "max_vocab", None),
                   "csv_header": getattr(cdc, "header", None)}
    for k, v in model_codec.items():
        if k in codec_given and codec_given[k] != v:
            out["--" + k.replace("_", "-")] = (v, codec_given[k])
    if "csv_columns" in codec_given:
        asked = [c.strip() for c in codec_given["csv_columns"].split(",") if c.strip()]
        use = getattr(cdc, "use", None)
        names = getattr(cdc, "columns", [])
        if use is None or not (asked == names or asked == [str(i + 1) for i in use]):
            out["--csv-columns"] = (",".join(names) if use is not None else "all", codec_given["csv_columns"])
    if "csv_range" in codec_given:
        lo, hi = _parse_range(codec_given["csv_range"])
        lows, highs = getattr(cdc, "lows", []), getattr(cdc, "highs", [])
        if not lows or any(a != lo for a in lows) or any(b != hi for b in highs):
            out["--csv-range"] = ("learned from the data" if lows else None, codec_given["csv_range"])
    return out


def _check_resume_data(sources, t: dict[str, Any]) -> None:
    """Refuse to resume on data other than the run's own (decisions D13).

    A run that streamed stdin only knows the hash of what it had read when it
    stopped, so that prefix is compared instead of the whole data.
    """
    want = t.get("data_sha256")
    if want:
        got = sources.sha256()
        if got != want:
            raise CliError("--resume: the data differs from the data the model was trained on "
                           f"(sha256 {got[:12]}… vs {want[:12]}…)")
        return
    prefix = t.get("data_prefix")
    if not isinstance(prefix, dict) or not isinstance(prefix.get("bytes"), int) or not isinstance(prefix.get("sha256"), str):
        raise CliError("--resume: the model records no hash of its training data, so the data cannot be checked")
    got, n = sources.prefix_sha256(prefix["bytes"])
    if n < prefix["bytes"] or got != prefix["sha256"]:
        raise CliError("--resume: the data differs from the data the model was trained on "
                       f"(its first {prefix['bytes']} bytes do not match)")


class _CountingDigest:
    """A sha256 that also counts the bytes it has seen (for a streamed stdin)."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.n = 0

    def update(self, data: bytes) -> None:
        """Hash and count ``data``."""
        self.h.update(data)
        self.n += len(data)

    def hexdigest(self) -> str:
        """The hash of everything seen so far."""
        return self.h.hexdigest()


def _architecture(sizes, io_size, up, down, rec, dend) -> tuple[list[IODesc], list[LayerDesc]]:
    ios = [IODesc(io_size, prediction, num_dendrites_per_cell=dend, up_radius=up, down_radius=down)]
    layers = [LayerDesc(s, num_dendrites_per_cell=dend, up_radius=up, recurrent_radius=rec, down_radius=down)
              for s in sizes]
    return ios, layers


class _Trainer:
    """The training loop with its bookkeeping, checkpoints and resume position."""

    def __init__(self, h: Hierarchy, codec, sources, opts: dict[str, Any], training: dict[str, Any]):
        self.h = h
        self.codec = codec
        self.sources = sources
        self.opts = opts
        self.t = training
        self.interrupt: Interrupt | None = None

    # -- persistence -------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """The header keys of a model or checkpoint written now."""
        self.t["updated_utc"] = utc_now()
        return {"codec": self.codec.to_dict(), "training": self.t, "user": self.opts["user"]}

    def save(self, path: str) -> None:
        """Write the model (state, weights, RNG, counters) atomically."""
        self.h.save_to_file(path, meta=self.meta())

    def checkpoint(self) -> str | None:
        """Write a checkpoint into the checkpoint directory and rotate old ones."""
        d = self.opts["checkpoint_dir"]
        if not d:
            return None
        name = f"ckpt-e{self.t['epoch']:04d}-s{self.t['steps']:010d}.ohr"
        path = os.path.join(d, name)
        self.save(path)
        rotate_checkpoints(d, self.opts["keep"])
        return path

    # -- the loop ------------------------------------------------------------
    def run(self) -> None:
        """Train for the remaining epochs; on Ctrl-C save a checkpoint and exit 130."""
        every_steps, every_epochs = self.opts["every"]
        quiet = self.opts["quiet"]
        with Interrupt() as self.interrupt:
            while self.t["epoch"] < self.t["epochs"]:
                score = Score.from_dict(self.t.get("partial"))
                skip = int(self.t.get("position", 0))
                event = 0
                start = time.perf_counter() - score.seconds
                bar = tqdm(desc=f"epoch {self.t['epoch'] + 1}/{self.t['epochs']}", unit="sym", file=sys.stderr,
                           disable=True if quiet else None, mininterval=0.5, leave=False,
                           initial=score.symbols, total=self._symbols_per_epoch())
                pending = 0
                digest = _CountingDigest() if self.sources.streamed else None
                self._digest = digest
                try:
                    for src in self.sources.items:
                        stream = src.open()
                        if digest is not None and src.path is None:
                            stream = HashingReader(stream, digest)
                        try:
                            events = self.codec.symbols(stream, self.opts["reset_on"] == "blank", where=src.name)
                            # A file boundary is an event, so a resume position is exact.
                            for sym in _with_boundary(events):
                                event += 1
                                if event <= skip:
                                    continue
                                if self.interrupt.flag:
                                    self._interrupted(score, event - 1, start)
                                if sym is _BOUNDARY:
                                    if self.opts["reset_on"] != "none":
                                        self.h.clear_state()
                                        self.t["fresh"] = True
                                    continue
                                if sym is RESET:
                                    self.h.clear_state()
                                    self.t["fresh"] = True
                                    continue
                                cis = self.codec.encode(sym)
                                if not self.t["fresh"]:
                                    score.add(self.h, self.codec, cis)
                                self.h.step([cis], True)
                                self.t["fresh"] = False
                                self.t["steps"] += 1
                                score.symbols += 1
                                pending += 1
                                if pending >= 256:
                                    bar.update(pending)
                                    pending = 0
                                if every_steps and self.t["steps"] % every_steps == 0:
                                    self._mid_epoch_checkpoint(score, event, start)
                        finally:
                            if src.path is not None:
                                stream.close()
                finally:
                    bar.update(pending)
                    bar.close()
                score.seconds = time.perf_counter() - start
                if score.symbols == 0 and self.t["epoch"] == 0:
                    raise CliError("the data is empty: nothing to train on")
                summary = {"epoch": self.t["epoch"] + 1, **score.summary()}
                self.t["metrics"].append(summary)
                self.t["epoch"] += 1
                self.t["position"] = 0
                self.t.pop("partial", None)
                if digest is not None:
                    self.t["data_sha256"] = digest.hexdigest()
                    self.t.pop("data_prefix", None)
                if not quiet:
                    echo_err(f"epoch {summary['epoch']}/{self.t['epochs']}: {fmt_metrics(summary)}")
                if every_epochs and self.t["epoch"] % every_epochs == 0 and self.t["epoch"] < self.t["epochs"]:
                    self.checkpoint()

    def _symbols_per_epoch(self) -> int | None:
        """The bar's total when it is known without reading the data: one symbol per
        byte of the files for the bytes codec; None (a count without an ETA) otherwise."""
        if self.codec.kind != "bytes" or self.sources.streamed:
            return None
        return sum(os.path.getsize(p) for p in self.sources.paths())

    def _record_prefix(self) -> None:
        d = getattr(self, "_digest", None)
        if d is not None:
            self.t["data_prefix"] = {"bytes": d.n, "sha256": d.hexdigest()}

    def _mid_epoch_checkpoint(self, score: Score, event: int, start: float) -> None:
        self._record_prefix()
        score.seconds = time.perf_counter() - start
        self.t["position"] = event
        self.t["partial"] = score.to_dict()
        self.checkpoint()
        self.t["position"] = 0
        self.t.pop("partial", None)

    def _interrupted(self, score: Score, event: int, start: float) -> None:
        self._record_prefix()
        score.seconds = time.perf_counter() - start
        self.t["position"] = event
        self.t["partial"] = score.to_dict()
        path = self.checkpoint() or self.opts["output"]
        if path == self.opts["output"]:
            self.save(path)
        echo_err(f"interrupted: checkpoint written to '{path}' (epoch {self.t['epoch'] + 1}, "
                 f"{self.t['steps']} steps); continue with --resume {path}")
        raise typer.Exit(130)


_BOUNDARY = object()


def _with_boundary(events):
    yield _BOUNDARY
    yield from events


@app.command("train")
@command
def train(
    output: Annotated[str, typer.Option("--output", "-o", help="Model file to write (.ohr).", show_default=False)],
    data: Annotated[Optional[list[str]], typer.Argument(help="Data files, or - for stdin (none with --env).", show_default=False)] = None,
    codec: Annotated[Optional[str], typer.Option("--codec", "-c", help="bytes | chars | words | tokens | csv (default bytes).")] = None,
    byte_layout: Annotated[Optional[str], typer.Option("--byte-layout", help="bytes codec: nibbles (two 16-cell columns) or byte (one 256-cell column).")] = None,
    bins: Annotated[Optional[int], typer.Option("--bins", help="csv codec: cells (bins) per numeric column.")] = None,
    max_vocab: Annotated[Optional[int], typer.Option("--max-vocab", help="chars/words codec: largest vocabulary kept.")] = None,
    csv_range: Annotated[Optional[str], typer.Option("--csv-range", help="csv codec: LO:HI value range for every column (default: learned from the data).")] = None,
    csv_header: Annotated[Optional[bool], typer.Option("--csv-header/--no-csv-header", help="csv codec: the first row is (not) a header (default: detected).")] = None,
    csv_columns: Annotated[Optional[str], typer.Option("--csv-columns", help="csv codec: the columns to model, by header name or 1-based number, comma-separated (default: all).")] = None,
    epochs: Annotated[int, typer.Option("--epochs", "-e", help="Passes over the data.")] = 1,
    layers: Annotated[Optional[int], typer.Option("--layers", "-l", help="Number of layers (default 2).")] = None,
    hidden: Annotated[Optional[str], typer.Option("--hidden", help="Layer size WxHxZ, or one size per layer: A,B,C (default 5x5x32).")] = None,
    up_radius: Annotated[Optional[int], typer.Option("--up-radius", help="Encoder field radius (default 2).")] = None,
    down_radius: Annotated[Optional[int], typer.Option("--down-radius", help="Decoder field radius (default 2).")] = None,
    recurrent_radius: Annotated[Optional[int], typer.Option("--recurrent-radius", help="Recurrent radius; -1 disables recurrence (default 0).")] = None,
    dendrites: Annotated[Optional[int], typer.Option("--dendrites", help="Dendrites per decoder cell (default 4).")] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the initial weights.")] = 0,
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", help="Maximum threads (default: OMP_NUM_THREADS or all cores).")] = None,
    meta: Annotated[Optional[list[str]], typer.Option("--meta", "-m", help="KEY=VALUE stored in the model header (repeatable).")] = None,
    checkpoint_dir: Annotated[Optional[str], typer.Option("--checkpoint-dir", help="Directory for checkpoints.")] = None,
    checkpoint_every: Annotated[Optional[str], typer.Option("--checkpoint-every", help="Checkpoint every N steps, or every Ne epochs (e.g. 2e).")] = None,
    keep: Annotated[Optional[int], typer.Option("--keep", help="Keep only the N newest checkpoints.")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue a model or checkpoint: state, weights, RNG, epoch and position.")] = None,
    init: Annotated[Optional[str], typer.Option("--init", help="Start from a model's weights only (fresh state).")] = None,
    reset_on: Annotated[str, typer.Option("--reset-on", help="clear_state() at: file | blank (blank lines) | none.")] = "file",
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary to stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or per-epoch lines.")] = False,
    env: Annotated[Optional[str], typer.Option("--env", help="Train an agent in this gymnasium environment (e.g. CartPole-v1) instead of on DATA.")] = None,
    episodes: Annotated[Optional[int], typer.Option("--episodes", help="--env: episodes to train, in total (default 100).")] = None,
    protocol: Annotated[Optional[str], typer.Option("--protocol", help="--env: default, or d16 (the manual-example CartPole setup of decisions D16).")] = None,
    termination_reward: Annotated[Optional[float], typer.Option("--termination-reward", help="--env: reward added when an episode terminates (not on truncation), e.g. -10 (default 0).")] = None,
    reward_scale: Annotated[Optional[float], typer.Option("--reward-scale", help="--env: factor on the environment's reward (default 1; 0 ignores it).")] = None,
    obs_scale: Annotated[Optional[float], typer.Option("--obs-scale", help="--env: s in sigmoid(s*x) for observation values without finite bounds (default 1).")] = None,
    min_steps: Annotated[Optional[int], typer.Option("--min-steps", help="--env: actor min_steps (default 1 when the state is cleared every episode, else 16).")] = None,
    plot: Annotated[Optional[str], typer.Option("--plot", help="--env: write the learning curve (returns and their 20-episode average) to this PNG.")] = None,
) -> None:
    """Train a model on DATA (files or - for stdin), or an agent with --env, and write it to -o MODEL.ohr."""
    if env is not None:
        from .rl import train_env  # reinforcement learning lives in cli/rl.py

        return train_env(dict(locals()))
    from .rl import reject_rl_options

    reject_rl_options(dict(locals()), "train")
    if not data:
        if resume:
            raise UsageError("missing DATA: --resume continues on the same data, so give it again "
                             "(the model records its sha256 and checks it)")
        raise UsageError("missing DATA: give data files (or - for stdin), or --env ID to train an agent")
    if reset_on not in ("file", "blank", "none"):
        raise UsageError(f"--reset-on must be file, blank or none, got {reset_on!r}")
    if epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {epochs}")
    if keep is not None and keep < 1:
        raise UsageError(f"--keep must be >= 1, got {keep}")
    if resume and init:
        raise UsageError("--resume and --init cannot be used together")
    every = _parse_every(checkpoint_every)
    if (every != (0, 0) or keep) and not checkpoint_dir:
        raise UsageError("--checkpoint-every and --keep need --checkpoint-dir")
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        set_num_threads(threads)
    check_writable(output)
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)
        if not os.access(checkpoint_dir, os.W_OK | os.X_OK):
            raise CliError(f"checkpoint directory '{checkpoint_dir}' is not writable")
    arch_given = {k: v for k, v in {"up_radius": up_radius, "down_radius": down_radius,
                                    "recurrent_radius": recurrent_radius, "dendrites": dendrites,
                                    "layers": layers, "hidden": hidden}.items() if v is not None}
    codec_given = {k: v for k, v in {"codec": codec, "byte_layout": byte_layout, "bins": bins,
                                     "max_vocab": max_vocab, "csv_range": csv_range,
                                     "csv_header": csv_header, "csv_columns": csv_columns}.items() if v is not None}
    user = parse_meta(meta)

    if resume:
        h, header, cdc = load_model(resume)
        t = header.get("training")
        if not isinstance(t, dict) or "options" not in t:
            raise CliError(f"'{resume}' has no training record to resume from")
        for k, (had, asked) in _resume_conflicts(h, cdc, arch_given, codec_given).items():
            raise CliError(f"--resume: the model was trained with {k}={had}, but this run asks for {k}={asked}")
        if int(t.get("epochs", 0)) != epochs and t.get("complete"):
            t["epochs"] = epochs  # extend a finished run with more epochs
        elif int(t.get("epochs", 0)) != epochs:
            raise CliError(f"--resume: the interrupted run was for {t.get('epochs')} epochs, not {epochs}")
        t["complete"] = False
        sources = open_sources(data, need_multiple_passes=True)
        try:
            _check_resume_data(sources, t)
        except CliError:
            sources.close()
            raise
        user = {**header.get("user", {}), **user}
    elif init:
        # Start from another model's weights: its codec and architecture come with
        # them; options given must agree (compared as resolved values).
        src, _, cdc = load_model(init)
        for k, (had, asked) in _resume_conflicts(src, cdc, arch_given, codec_given).items():
            raise CliError(f"--init: '{init}' was trained with {k}={had}, but this run asks for {k}={asked}")
        sources = open_sources(data, need_multiple_passes=epochs > 1)
        set_global_state(seed)
        h = Hierarchy(src._io_descs, src._layer_descs)
        h.set_weights_from_buffer(src.serialize_weights_to_buffer())
    else:
        kind = codec or "bytes"
        if kind not in CODEC_KINDS:
            raise UsageError(f"--codec must be one of {', '.join(CODEC_KINDS)}, got {kind!r}")
        if byte_layout is not None and byte_layout not in ("nibbles", "byte"):
            raise UsageError(f"--byte-layout must be nibbles or byte, got {byte_layout!r}")
        if bins is not None and bins < 2:
            raise UsageError(f"--bins must be >= 2, got {bins}")
        if max_vocab is not None and max_vocab < (2 if kind == "words" else 1):
            raise UsageError(f"--max-vocab must be >= {2 if kind == 'words' else 1} for --codec {kind}, got {max_vocab}")
        opts: dict[str, Any] = {}
        if byte_layout is not None:
            if kind != "bytes":
                raise UsageError("--byte-layout applies to --codec bytes only")
            opts["layout"] = byte_layout
        if bins is not None:
            if kind != "csv":
                raise UsageError("--bins applies to --codec csv only")
            opts["bins"] = bins
        if max_vocab is not None:
            if kind not in ("chars", "words"):
                raise UsageError("--max-vocab applies to --codec chars or words only")
            opts["max_vocab"] = max_vocab
        if (csv_range is not None or csv_header is not None or csv_columns is not None) and kind != "csv":
            raise UsageError("--csv-range, --csv-header and --csv-columns apply to --codec csv only")
        if csv_columns is not None:
            opts["select"] = [c for c in csv_columns.split(",") if c.strip()]
            if not opts["select"]:
                raise UsageError("--csv-columns is empty")
        if csv_header is not None:
            opts["header"] = csv_header
        cdc = make_codec(kind, **opts)
        if csv_range is not None:
            cdc.set_range(*_parse_range(csv_range))
        sources = open_sources(data, need_multiple_passes=epochs > 1 or cdc.needs_fit)
        if cdc.needs_fit:
            cdc.fit(sources.paths())
        arch = {"layers": layers, "hidden": hidden or DEFAULT_HIDDEN,
                **{k: arch_given.get(k, v) for k, v in ARCH_DEFAULTS.items()}}
        sizes = parse_sizes(arch["hidden"], layers if layers is not None else (None if hidden and "," in hidden else DEFAULT_LAYERS))
        ios, lds = _architecture(sizes, cdc.io_size, arch["up_radius"], arch["down_radius"],
                                 arch["recurrent_radius"], arch["dendrites"])
        set_global_state(seed)
        h = Hierarchy(ios, lds)
    if not resume:
        t = {
            "epoch": 0, "epochs": epochs, "steps": 0, "position": 0, "fresh": True, "complete": False,
            "seed": seed, "data_sha256": sources.sha256(), "data_files": [s.name for s in sources.items],
            "metrics": [], "started_utc": utc_now(), "updated_utc": utc_now(),
            "options": {"codec": cdc.kind, **codec_given, **arch_given, "reset_on": reset_on,
                        **({"init": os.path.basename(init)} if init else {})},
        }
    trainer = _Trainer(h, cdc, sources, {"output": output, "checkpoint_dir": checkpoint_dir, "keep": keep,
                                         "every": every, "quiet": quiet, "reset_on": t["options"].get("reset_on", reset_on),
                                         "user": user}, t)
    try:
        trainer.run()
        t["complete"] = True
        t["finished_utc"] = utc_now()
        trainer.save(output)
    finally:
        sources.close()
    if not quiet:
        echo_err(f"saved '{output}' ({h.get_weights_size()} bytes of weights, {t['steps']} steps)")
    if json_out:
        print(json.dumps({"model": output, "epochs": t["epoch"], "steps": t["steps"], "metrics": t["metrics"],
                          "sizes": {"state": h.get_state_size(), "weights": h.get_weights_size(),
                                    "total": h.get_size()},
                          "codec": cdc.describe(), "seed": t["seed"]}, indent=2))
