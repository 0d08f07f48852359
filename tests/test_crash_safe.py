"""Crash-safe writes (issue 4): SIGKILL at every step of a write, and a full disk.

A forked child writes a model (``save_to_file``) or trains with checkpoints
(``neocli train --checkpoint-dir``) with every file-system step of
``ohr.atomic_write`` instrumented: the child stops after each step — temporary
file created, each of many chunks of the data written, fsync, chmod, rename,
directory fsync, old checkpoint removed — and waits for the parent, which lets
it go on or kills it with SIGKILL right there. Every kill point is tried. After
each kill the target holds either the old model or the new one, byte-for-byte
in its arrays and with every checksum valid, and the temporary file the killed
writer left behind is removed by the next write into that directory.

``RLIMIT_FSIZE`` (with SIGXFSZ ignored, so ``write`` fails with EFBIG) stands in
for a full disk: the previous model stays intact, the library raises
``OhrError`` (a ``NeoError``) whose cause is the ``OSError``, the CLI prints
``error: cannot write model to ...`` and exits 1.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neocli as neo
import neocli.cli.train  # noqa: F401  (registers the command)
from neocli import ohr
from neocli.cli.app import app
from conftest import NEOCLI, ohr_sections as arrays_of, small_hierarchy, subprocess_env

TEXT = ("the cat sat on the mat. the dog sat on the log.\n" * 5).encode()
CLI_SMALL = ["--layers", "1", "--hidden", "2x2x8", "--quiet", "--threads", "1", "--byte-layout", "byte"]
CHUNKS = 24  # pieces each model write is cut into, each a kill point

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL")
resource = pytest.importorskip("resource")  # POSIX only, like os.fork


# --------------------------------------------------------------------------
# the stepping harness (child side)


class _Stepper:
    """Reports each step to the parent and waits for its go-ahead (or a SIGKILL)."""

    def __init__(self, report_fd: int, go_fd: int):
        self.report_fd, self.go_fd = report_fd, go_fd

    def point(self, label: str) -> None:
        os.write(self.report_fd, label.encode() + b"\n")
        if os.read(self.go_fd, 1) != b"g":
            os._exit(3)


class _ChunkedFile:
    """A file object whose single ``write`` is done in CHUNKS steps."""

    def __init__(self, f, step: _Stepper):
        self.f, self.step = f, step

    def write(self, data):
        view = memoryview(data).cast("B")
        bounds = np.linspace(0, len(view), CHUNKS + 1).astype(int)
        for k in range(CHUNKS):
            self.f.write(view[bounds[k]:bounds[k + 1]])
            self.f.flush()  # on disk (in the page cache) now, so a kill leaves a partial file
            self.step.point(f"write chunk {k}")
        return len(view)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)


def _instrument(step: _Stepper) -> None:
    """Wrap every file-system call ``atomic_write`` (and checkpoint rotation) makes."""
    import tempfile

    orig = {name: getattr(os, name) for name in ("fdopen", "fsync", "fchmod", "replace", "remove")}
    orig_mkstemp = tempfile.mkstemp

    def mkstemp(*a, **kw):
        res = orig_mkstemp(*a, **kw)
        step.point("temp file created")
        return res

    def fdopen(fd, *a, **kw):
        return _ChunkedFile(orig["fdopen"](fd, *a, **kw), step)

    def fsync(fd):
        step.point("before fsync")
        orig["fsync"](fd)
        step.point("after fsync")

    def fchmod(fd, mode):
        orig["fchmod"](fd, mode)
        step.point("after chmod")

    def replace(src, dst):
        step.point("before rename")
        orig["replace"](src, dst)
        step.point("after rename")

    def remove(path):
        step.point("before remove")
        orig["remove"](path)
        step.point("after remove")

    tempfile.mkstemp = mkstemp
    os.fdopen, os.fsync, os.fchmod, os.replace, os.remove = fdopen, fsync, fchmod, replace, remove


def run_stepped(action, kill_at: int | None) -> list[str]:
    """Run ``action`` in a forked, instrumented child; SIGKILL it at step ``kill_at``.

    Returns the labels of the steps reached (the last one is where it died, or
    ``"done"`` when it finished).
    """
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(report_r)
            os.close(go_w)
            step = _Stepper(report_w, go_r)
            _instrument(step)
            action()
            os.write(report_w, b"done\n")
        except BaseException:  # noqa: BLE001 - report anything to the parent via the exit code
            import traceback

            traceback.print_exc()
            code = 2
        finally:
            os._exit(code)
    os.close(report_w)
    os.close(go_r)
    labels = []
    with os.fdopen(report_r, "rb") as reports:
        for line in reports:
            label = line.decode().strip()
            labels.append(label)
            if label == "done":
                break
            if len(labels) - 1 == kill_at:
                os.kill(pid, signal.SIGKILL)
                break
            os.write(go_w, b"g")
    os.close(go_w)
    _, status = os.waitpid(pid, 0)  # reaped: its pid is no longer alive for the orphan sweep
    if kill_at is None or labels[-1] == "done":
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child failed: {labels[-3:]}"
    else:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return labels


def all_kill_points(action, check, reset) -> list[str]:
    """Run ``action`` once to list its steps, then once per step, killed there.

    ``check(labels)`` runs after each kill, before the next run (whose own write
    would sweep the orphan being checked for); ``reset()`` restores the starting
    files after the full run and after each check. Returns the steps of a full run.
    """
    steps = run_stepped(action, None)
    assert steps[-1] == "done"
    reset()
    for k in range(len(steps) - 1):
        labels = run_stepped(action, k)
        assert labels == steps[:k + 1]  # the same path every time: the kill point is exact
        check(labels)
        reset()
    return steps


def temp_files(directory) -> list[str]:
    """Temporary files of atomic_write left in ``directory``."""
    return sorted(f for f in os.listdir(directory) if f.endswith(".tmp"))


# --------------------------------------------------------------------------
# SIGKILL during save_to_file


def test_sigkill_during_save_to_file(tmp_path):
    """At every step of the write the path holds the old or the new model, intact; orphans are swept."""
    path = tmp_path / "model.ohr"
    old = small_hierarchy(1, hidden=(4, 4, 16), radius=1, steps=5)
    new = small_hierarchy(2, hidden=(4, 4, 16), radius=1, steps=9)
    old.save_to_file(str(path))
    old_arrays = arrays_of(path)
    new.save_to_file(str(tmp_path / "reference.ohr"))
    new_arrays = arrays_of(tmp_path / "reference.ohr")
    assert old_arrays != new_arrays

    seen = {"old": 0, "new": 0}

    def check(labels):
        got = arrays_of(path)
        assert got in (old_arrays, new_arrays), labels[-1]
        seen["old" if got == old_arrays else "new"] += 1
        assert neo.Hierarchy(file_name=str(path)).get_num_layers() == 1
        # Killed after the temp file existed and before the rename: exactly one orphan.
        orphans = 1 if "temp file created" in labels and "after rename" not in labels else 0
        assert len(temp_files(tmp_path)) == orphans, labels[-1]
        old.save_to_file(str(tmp_path / "other.ohr"))  # the next write into the directory sweeps it
        assert temp_files(tmp_path) == []

    def reset():
        old.save_to_file(str(path))
        assert arrays_of(path) == old_arrays

    steps = all_kill_points(lambda: new.save_to_file(str(path)), check, reset)
    n = len(steps) - 1
    assert n >= CHUNKS + 6, steps
    # The switch from old to new happens exactly at the rename.
    rename = steps.index("after rename")
    assert seen == {"old": rename, "new": n - rename}, (seen, steps)


def test_orphans_of_live_writers_are_kept(tmp_path):
    """The sweep removes only temp files whose writer is dead; a live writer's file survives."""
    live = tmp_path / f".other.ohr.ohr-{os.getppid()}-abcdefgh.tmp"  # our parent process: alive
    dead_pid = _dead_pid()
    dead = tmp_path / f".other.ohr.ohr-{dead_pid}-abcdefgh.tmp"
    unrelated = tmp_path / ".notes.txt.1234.tmp"
    for f in (live, dead, unrelated):
        f.write_bytes(b"partial")
    ohr.atomic_write(tmp_path / "model.ohr", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, unrelated.name, "model.ohr"])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------
# SIGKILL during a CLI checkpoint


def _train_args(data, out, ckpt_dir, seed):
    return ["train", str(data), "-o", str(out), "--checkpoint-dir", str(ckpt_dir), "--checkpoint-every", "100",
            "--keep", "1", "--seed", str(seed), *CLI_SMALL]


def _cli(args) -> None:
    app(args, standalone_mode=False)


@pytest.mark.slow  # ~100 forked CLI runs: about 3 minutes on 2 cores (CI runs it with -m slow)
def test_sigkill_during_cli_checkpoints(tmp_path):
    """Killed anywhere in ``neocli train`` with checkpoints: every model file present is complete and valid."""
    data = tmp_path / "data.txt"
    data.write_bytes(TEXT)
    out, ckpt = tmp_path / "out.ohr", tmp_path / "ckpt"
    ckpt.mkdir()
    # References: the old model at -o, and what an uninterrupted run writes (all its checkpoints kept).
    old_dir, ref_dir, ref_out = tmp_path / "old-ckpt", tmp_path / "ref-ckpt", tmp_path / "ref.ohr"
    old_dir.mkdir()
    ref_dir.mkdir()
    _cli(_train_args(data, out, old_dir, 5))
    old_arrays = arrays_of(out)
    ref_args = _train_args(data, ref_out, ref_dir, 6)
    k = ref_args.index("--keep")
    _cli(ref_args[:k] + ref_args[k + 2:])
    new_arrays = arrays_of(ref_out)
    assert old_arrays != new_arrays
    # Checkpoint names carry the run id, which differs between runs: compare by epoch and step.
    ref_ckpts = {re.sub(r"^ckpt-[0-9a-f]{8}-", "", name): arrays_of(ref_dir / name) for name in os.listdir(ref_dir)}
    assert len(ref_ckpts) == 2, ref_ckpts.keys()

    def train():
        _cli(_train_args(data, out, ckpt, 6))

    def check(labels):
        assert arrays_of(out) in (old_arrays, new_arrays), labels[-1]
        for name in os.listdir(ckpt):
            if name.endswith(".ohr"):
                # Same name, same arrays as in the uninterrupted run (checkpoints are deterministic).
                assert arrays_of(ckpt / name) == ref_ckpts[re.sub(r"^ckpt-[0-9a-f]{8}-", "", name)], \
                    (name, labels[-1])
                assert neo.Hierarchy(file_name=str(ckpt / name)).get_num_layers() == 1
        # One orphan if it died inside a write (temp file created, not yet renamed).
        in_write = labels.count("temp file created") > labels.count("after rename")
        assert len(temp_files(tmp_path) + temp_files(ckpt)) == in_write, labels[-1]
        # The next write into each directory (a resumed run's checkpoint or model) sweeps the orphan.
        ohr.atomic_write(out, out.read_bytes())
        ohr.atomic_write(ckpt / "next.ohr", out.read_bytes())
        assert temp_files(tmp_path) == [] and temp_files(ckpt) == []

    def reset():
        for f in os.listdir(ckpt):
            os.remove(ckpt / f)
        ohr.atomic_write(out, old_bytes)

    old_bytes = out.read_bytes()
    steps = all_kill_points(train, check, reset)
    assert steps.count("after rename") == 3, steps  # two checkpoints and the final model
    assert steps.count("after remove") == 1, steps  # --keep 1 rotates the first checkpoint out
    assert len(steps) - 1 >= 3 * CHUNKS


# --------------------------------------------------------------------------
# a full disk: RLIMIT_FSIZE


def _limit_fsize(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_file_size_limit_library(tmp_path):
    """save_to_file past the limit: OhrError caused by EFBIG, old model intact, no temp file."""
    path = tmp_path / "model.ohr"
    small = small_hierarchy(1, hidden=(2, 2, 8), radius=1, steps=3)
    small.save_to_file(str(path))
    before = path.read_bytes()
    script = textwrap.dedent("""
        import errno, sys
        import numpy as np
        import neocli as neo
        from neocli import NeoError
        neo.set_global_state(3)
        h = neo.Hierarchy([neo.IODesc((2, 2, 8), neo.prediction, up_radius=1, down_radius=1)],
                          [neo.LayerDesc((8, 8, 32), up_radius=1, down_radius=1)])
        try:
            h.save_to_file(sys.argv[1])
        except NeoError as e:
            assert isinstance(e.__cause__, OSError) and e.__cause__.errno == errno.EFBIG, repr(e.__cause__)
            print("refused:", e)
        else:
            print("written")
    """)
    r = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=subprocess_env(),
                       preexec_fn=_limit_fsize(len(before) + 4096), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("refused: cannot write model to") and "File too large" in r.stdout, r.stdout
    assert path.read_bytes() == before
    assert temp_files(tmp_path) == []


def test_file_size_limit_cli(tmp_path):
    """``neocli train`` past the limit: ``error: cannot write model ...``, exit 1, no traceback, old model intact."""
    data = tmp_path / "data.txt"
    data.write_bytes(TEXT)
    out = tmp_path / "out.ohr"
    base = [*NEOCLI, "train", str(data), "-o", str(out), "--quiet", "--threads", "1"]
    r = subprocess.run(base + ["--layers", "1", "--hidden", "2x2x8"], capture_output=True, text=True,
                       env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    before = out.read_bytes()
    r = subprocess.run(base + ["--layers", "1", "--hidden", "6x6x32"], capture_output=True, text=True,
                       env=subprocess_env(), preexec_fn=_limit_fsize(len(before) + 4096), timeout=300)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert f"error: cannot write model to '{out}'" in r.stderr and "File too large" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert out.read_bytes() == before
    assert temp_files(tmp_path) == []
