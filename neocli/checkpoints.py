"""Checkpoint files of training runs: names, listing, rotation and pruning.

Every training run has a *run id* (``new_run_id()``, 8 hex digits), stored in its
header's training record (``training["run_id"]``) and in its checkpoint names::

    ckpt-<runid>-e<EEEE>-s<SSSSSSSSSS>.ohr     (epoch or episode, total steps)

A resumed run keeps its run id, so its checkpoints stay one series. Names of
earlier versions (``ckpt-e<EEEE>-s<SSSSSSSSSS>.ohr``, no run id) are still
listed; their series is the legacy one (run id ``None``).

What may be deleted, and by whom:

* ``rotate(directory, run_id, keep)`` (after each checkpoint a run writes) deletes
  only checkpoints whose header names *this* run id, never the one just written,
  and keeps the ``keep`` newest of the run. Other runs' files, finished models and
  files it cannot read are never touched, so several runs can share a directory.
* ``prune(directory, keep, run_id=None)`` (``neocli checkpoint prune``) deletes
  only *incomplete* checkpoints (checkpoint-named files whose header says
  ``complete: false``) of the series it prunes (one run, or each series on its
  own when ``run_id`` is None), keeping the ``keep`` newest of each. Finished
  models, files with other names (an interrupted ``-o`` model is the resume
  point) and unreadable files are never deleted.
"""
from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from . import ohr
from ._errors import NeoError

__all__ = ["Checkpoint", "new_run_id", "run_id_of", "checkpoint_name", "parse_checkpoint_name",
           "epoch_of", "list_checkpoints", "rotate", "prune", "incomplete_training"]

_RUN_ID = re.compile(r"^[0-9a-f]{8}$")
_NAME = re.compile(r"^ckpt-(?:(?P<run>[0-9a-f]{8})-)?e(?P<progress>\d+)-s(?P<steps>\d+)\.ohr$")


def new_run_id() -> str:
    """A fresh run id: 8 random lowercase hex digits (one in 4 billion to collide)."""
    return secrets.token_hex(4)


def run_id_of(header: Any) -> str | None:
    """The run id in a model header's training record, or None (older models, other files)."""
    t = header.get("training") if isinstance(header, dict) else None
    rid = t.get("run_id") if isinstance(t, dict) else None
    return rid if isinstance(rid, str) and _RUN_ID.match(rid) else None


def checkpoint_name(run_id: str, progress: int, steps: int, width: int = 4) -> str:
    """``ckpt-<run_id>-e<progress>-s<steps>.ohr``; ``progress`` is the epoch (or the
    episode for RL agents, ``width=6``), zero-padded to ``width`` digits, ``steps`` to 10."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise NeoError(f"run_id must be 8 lowercase hex digits, got {run_id!r}")
    if progress < 0 or steps < 0:
        raise NeoError(f"checkpoint counters must be >= 0, got epoch {progress} and steps {steps}")
    return f"ckpt-{run_id}-e{progress:0{width}d}-s{steps:010d}.ohr"


def parse_checkpoint_name(name: str) -> tuple[str | None, int, int] | None:
    """``(run_id or None, progress, steps)`` of a checkpoint file name, or None for other names."""
    m = _NAME.match(name)
    if m is None:
        return None
    return m.group("run"), int(m.group("progress")), int(m.group("steps"))


def epoch_of(training: Any) -> int | None:
    """The 1-based epoch a training record stands at, as names, listings, messages and
    ``inspect`` show it: the epoch a resume continues for an unfinished run, the last
    epoch for a finished one (the one it stopped in for a model kept mid-epoch, whose
    record has a ``position``). None when the record has no epoch counter.

    The record itself counts *completed* epochs (``training["epoch"]``, 0 while the
    first epoch runs); this is the one place that turns that count into what users see.
    """
    if not isinstance(training, dict):
        return None
    done, epochs = _int(training.get("epoch")), _int(training.get("epochs"))
    if done is None:
        return None
    if training.get("complete") is True:
        # A finished run's last epoch; a model kept inside an epoch (early stopping's best)
        # is in the epoch after those it completed.
        return done + 1 if _int(training.get("position")) else done
    return min(done + 1, epochs) if epochs else done + 1


def incomplete_training(path: Any) -> dict[str, Any] | None:
    """The training record of the model at ``path`` if it is an unfinished run, else None.

    An interrupted run leaves its model (or checkpoint) with ``complete: false``;
    starting a fresh run over it would silently throw that work away, so the CLI
    refuses without ``--resume`` or ``--force``. None when there is no such file,
    it cannot be read as a model, or its run completed.
    """
    try:
        if not os.path.isfile(path):
            return None
        header = ohr.read_header(path)
    except (NeoError, OSError):
        return None
    t = header.get("training")
    if isinstance(t, dict) and t.get("complete") is False:
        return t
    return None


@dataclass
class Checkpoint:
    """One ``*.ohr`` file of a directory, as far as its name and header tell."""

    path: str
    name: str
    mtime: float
    is_checkpoint: bool            # named like a checkpoint (ckpt-...)
    run_id: str | None = None      # from the header (the name's run id must agree)
    progress: int | None = None    # epoch (``epoch_of``: 1-based, as in the name), or episode for RL agents
    steps: int | None = None
    complete: bool | None = None   # training.complete from the header
    error: str | None = None       # why the header could not be read
    header: dict[str, Any] | None = field(default=None, repr=False)

    def sort_key(self) -> tuple:
        """Oldest first: progress, steps, then modification time and name."""
        return (-1 if self.progress is None else self.progress, -1 if self.steps is None else self.steps,
                self.mtime, self.name)


def _int(x: Any) -> int | None:
    return x if type(x) is int and x >= 0 else None


def _read(directory: str, name: str) -> Checkpoint | None:
    path = os.path.join(directory, name)
    try:
        st = os.stat(path)
    except OSError:
        return None  # vanished (another run rotated it) or a dangling link
    if not os.path.isfile(path):
        return None
    parsed = parse_checkpoint_name(name)
    c = Checkpoint(path, name, st.st_mtime, parsed is not None)
    try:
        c.header = ohr.read_header(path)
    except (NeoError, OSError) as e:
        c.error = str(e)
        if parsed is not None:
            _, c.progress, c.steps = parsed
        return c
    t = c.header.get("training")
    t = t if isinstance(t, dict) else {}
    c.run_id = run_id_of(c.header)
    c.progress = epoch_of(t) if epoch_of(t) is not None else _int(t.get("episode"))
    c.steps = _int(t.get("steps"))
    c.complete = t.get("complete") if isinstance(t.get("complete"), bool) else None
    if parsed is not None:
        name_run, progress, steps = parsed
        if name_run is not None and name_run != c.run_id:
            # A renamed or foreign file: its name claims a run its header does not confirm.
            c.is_checkpoint = False
        if c.progress is None:
            c.progress, c.steps = progress, steps
    return c


def list_checkpoints(directory: str) -> list[Checkpoint]:
    """Every regular ``*.ohr`` file directly in ``directory``, oldest first (``Checkpoint.sort_key``).

    Headers are read (cheap: not the arrays); unreadable files have ``error`` set
    and no run id. Raises ``NeoError`` when the directory cannot be listed.
    """
    try:
        names = os.listdir(directory)
    except OSError as e:
        raise NeoError(f"cannot list checkpoint directory '{directory}': {e.strerror or e}") from None
    out = [c for c in (_read(directory, n) for n in names if n.endswith(".ohr")) if c is not None]
    return sorted(out, key=Checkpoint.sort_key)


def _remove(paths: list[str], on_error: Callable[[str, OSError], None] | None) -> list[str]:
    done = []
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            continue  # already gone: nothing to report
        except OSError as e:
            if on_error is not None:
                on_error(p, e)
            continue
        done.append(p)
    return done


def rotate(directory: str, run_id: str, keep: int | None, just_written: str | None = None,
           on_error: Callable[[str, OSError], None] | None = None) -> list[str]:
    """Delete this run's checkpoints in ``directory`` beyond the ``keep`` newest; return the deleted paths.

    Only checkpoint-named files whose header carries ``run_id`` are candidates.
    ``just_written`` (the checkpoint the run has just saved) is always kept and
    counts as the newest; so is the newest of the others when ``just_written`` is
    not given. ``keep`` None or 0 keeps everything. Deletion failures are passed
    to ``on_error(path, OSError)`` (default: ignored) and do not stop the others.
    """
    if not keep:
        return []
    if keep < 1:
        raise NeoError(f"keep must be >= 1, got {keep}")
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise NeoError(f"run_id must be 8 lowercase hex digits, got {run_id!r}")
    mine = [c for c in list_checkpoints(directory) if c.is_checkpoint and c.run_id == run_id]
    newest = None
    if just_written is not None:
        newest = next((c for c in mine if os.path.abspath(c.path) == os.path.abspath(just_written)), None)
    if newest is None and mine:
        newest = mine[-1]
    others = [c for c in mine if c is not newest]
    doomed = others[:max(len(others) - (keep - 1), 0)]
    return _remove([c.path for c in doomed], on_error)


@dataclass
class PruneResult:
    """What ``prune`` deleted (or would delete), kept and left alone, as paths."""

    deleted: list[str]
    kept: list[str]
    ignored: list[str]


def prune(directory: str, keep: int, run_id: str | None = None, dry_run: bool = False,
          on_error: Callable[[str, OSError], None] | None = None) -> PruneResult:
    """Delete incomplete checkpoints of a series beyond its ``keep`` newest.

    With ``run_id`` only that run's series is pruned; with None, each series (each
    run id, and the legacy names without one) is pruned on its own. Candidates
    are checkpoint-named files whose readable header says ``complete: false``;
    everything else (finished models, other names, unreadable files, other runs)
    is listed in ``ignored`` and never deleted. ``dry_run`` deletes nothing and
    reports what would go in ``deleted``.
    """
    if type(keep) is not int or keep < 1:
        raise NeoError(f"keep must be an integer >= 1, got {keep!r}")
    if run_id is not None and (not isinstance(run_id, str) or not _RUN_ID.match(run_id)):
        raise NeoError(f"run_id must be 8 lowercase hex digits, got {run_id!r}")
    series: dict[str | None, list[Checkpoint]] = {}
    ignored = []
    for c in list_checkpoints(directory):
        if (c.is_checkpoint and c.error is None and c.complete is False
                and (run_id is None or c.run_id == run_id)):
            series.setdefault(c.run_id, []).append(c)
        else:
            ignored.append(c.path)
    doomed, kept = [], []
    for items in series.values():
        doomed += [c.path for c in items[:max(len(items) - keep, 0)]]
        kept += [c.path for c in items[max(len(items) - keep, 0):]]
    deleted = doomed if dry_run else _remove(doomed, on_error)
    return PruneResult(deleted, kept, ignored)
