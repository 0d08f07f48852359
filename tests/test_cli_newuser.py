"""Defects a new user met, driven as that user did: resume hints that can be pasted and
carry the run's options, quoted command suggestions, readers that close the pipe early,
wording, and a dry run that checks memory before it builds the model.

The pipes are real (subprocesses whose stdout a test reads a little of, then closes):
the outputs are made larger than a pipe's buffer so the writer always meets the closed
pipe rather than finishing into the buffer.
"""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import neocli.cli
from neocli import aogmaneo, memory, ohr, training
from neocli.cli.app import app
from conftest import NEOCLI, small_hierarchy, subprocess_env

neocli.cli.register()  # every command on the shared app

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("the cat sat on the mat. the dog sat on the log.\n" * 6).encode()


def run(*args):
    """The CLI in-process; stdout and stderr apart."""
    return CliRunner().invoke(app, [a if isinstance(a, str) else os.fsdecode(a) for a in args],
                              catch_exceptions=False)


def _hint(stderr: str) -> tuple[str, str]:
    """(the line before the resume command, the command line) of an interrupt message."""
    lines = stderr.splitlines()
    i = next(i for i, line in enumerate(lines) if "continue with" in line)
    return lines[i], lines[i + 1]


# --------------------------------------------------------------------------- resume hints

def test_train_resume_hint_is_one_pasteable_line_with_the_runs_options(tmp_path, monkeypatch):
    (tmp_path / "v.txt").write_bytes(TEXT)
    ck = str(tmp_path / "c dir")
    path = os.path.join(ck, "ckpt-1234abcd-e0001-s0000006028.ohr")

    def interrupted(*a, **kw):
        raise training.Interrupted(path, 1, 6028, output="sint.ohr", data=["-"])

    monkeypatch.setattr(training, "train", interrupted)
    monkeypatch.chdir(tmp_path)
    r = run("train", "-", "-o", "sint.ohr", "--checkpoint-dir", ck, "--checkpoint-every", "500", "--keep", "2",
            "--valid", "v.txt", "--valid-every", "100", "--patience", "3", "--threads", "1", "--epochs", "3",
            "--hidden", "3x3x8", "--seed", "7", "-q")
    assert r.exit_code == 130, r.stderr
    note, line = _hint(r.stderr)
    assert note.endswith("continue with the same data on stdin:"), note
    # The whole line is the command: no note after it to break the paste.
    assert shlex.split(line) == ["neocli", "train", "-", "--resume", path, "-o", "sint.ohr", "--epochs", "3",
                                 "--checkpoint-dir", ck, "--checkpoint-every", "500", "--keep", "2",
                                 "--valid", "v.txt", "--valid-every", "100", "--patience", "3",
                                 "--threads", "1", "--quiet"]
    assert subprocess.run(["bash", "-n", "-c", line]).returncode == 0


def test_rl_train_resume_hint_carries_checkpoints_threads_and_plot(tmp_path, monkeypatch):
    from neocli import rl

    ck = str(tmp_path / "c dir")
    path = os.path.join(ck, "ckpt.ohr")

    def interrupted(*a, **kw):
        raise training.Interrupted(path, 3, 90, output="a b.ohr", env="CartPole-v1")

    monkeypatch.setattr(rl, "train_agent", interrupted)
    r = run("rl", "train", "--env", "CartPole-v1", "-o", str(tmp_path / "a b.ohr"), "--checkpoint-dir", ck,
            "--checkpoint-every", "5", "--keep", "1", "--threads", "1", "--episodes", "50", "--quiet")
    assert r.exit_code == 130, r.stderr
    _, line = _hint(r.stderr)
    assert shlex.split(line) == ["neocli", "rl", "train", "--env", "CartPole-v1", "--resume", path, "-o", "a b.ohr",
                                 "--checkpoint-dir", ck, "--checkpoint-every", "5", "--keep", "1",
                                 "--threads", "1", "--quiet"]


def test_import_suggestions_quote_the_path(tmp_path):
    old = tmp_path / "pa model.ohr"
    aogmaneo.export_file(small_hierarchy(seed=1), old)
    want = f"neocli checkpoint import-aogmaneo {shlex.quote(str(old))} -o NEW.ohr"
    r = run("inspect", old)
    assert r.exit_code == 0 and r.stdout.count(want) == 1, r.stdout
    line = next(x for x in r.stdout.splitlines() if "import-aogmaneo" in x)
    assert line.endswith(want)  # the command ends the line: nothing glued after it
    assert shlex.split(line.split(": ", 1)[1])[3] == str(old)
    r = run("generate", old)
    assert r.exit_code == 1 and r.stderr.rstrip().endswith(want), r.stderr


# --------------------------------------------------------------------------- closed pipes

def _read_then_close(args, amount, tmp_path, line=False):
    """Start the CLI, read ``amount`` bytes (or one line) of its stdout, close it, wait."""
    p = subprocess.Popen([*NEOCLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=subprocess_env(), cwd=tmp_path)
    got = p.stdout.readline() if line else p.stdout.read(amount)
    p.stdout.close()
    err = p.stderr.read().decode("utf-8", "replace")
    p.wait(timeout=120)
    return p.returncode, got, err


def test_model_to_a_pipe_closed_early_is_an_error(tmp_path):
    (tmp_path / "small.txt").write_bytes(TEXT * 4)
    # A 4x4x8 byte model is about 2 MB, far beyond a pipe's buffer.
    rc, got, err = _read_then_close(["train", "small.txt", "-o", "-", "--hidden", "4x4x8", "-q"], 100, tmp_path)
    assert len(got) == 100
    assert rc == 1, (rc, err)
    assert "error: output closed early (broken pipe)" in err and "incomplete" in err, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


@pytest.fixture(scope="module")
def sun(tmp_path_factory):
    """A CSV model of the sunspots and a copy of the data 20 times as long (300 kB)."""
    d = tmp_path_factory.mktemp("sun")
    lines = (ROOT / "datasets" / "sunspots.csv").read_text().splitlines(keepends=True)
    (d / "long.csv").write_text(lines[0] + "".join(lines[1:]) * 20)
    r = subprocess.run([*NEOCLI, "train", str(ROOT / "datasets" / "sunspots.csv"), "--codec", "csv",
                        "--csv-columns", "SUNACTIVITY", "-o", str(d / "sun.ohr"), "--hidden", "4x4x16", "-q"],
                       env=subprocess_env(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return d


@pytest.mark.parametrize("args", [
    ("score", "sun.ohr", "long.csv", "--per", "record"),
    ("detect", "long.csv", "--columns", "2", "-q"),
    ("generate", "sun.ohr", "--length", "20000"),
], ids=["score", "detect", "generate"])
def test_rows_to_a_pipe_closed_early_exit_quietly(sun, args):
    rc, got, err = _read_then_close(list(args), 0, sun, line=True)
    assert got.strip(), err
    assert rc == 0 and err == "", (rc, err)


# --------------------------------------------------------------------------- wording

def test_table_outputs_are_not_called_models(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("t,v\n" + "".join(f"{i},{i % 7}\n" for i in range(30)))
    r = run("detect", data, "--columns", "v", "-o", tmp_path / "nodir" / "out.csv")
    assert r.exit_code == 1 and "cannot write output to" in r.stderr and "model" not in r.stderr, r.stderr
    r = run("detect", data, "--columns", "v", "--save", tmp_path / "nodir" / "m.ohr")
    assert r.exit_code == 1 and "cannot write model to" in r.stderr, r.stderr
    assert run("train", data, "--codec", "csv", "-o", tmp_path / "m.ohr", "--hidden", "2x2x8", "-q").exit_code == 0
    r = run("score", tmp_path / "m.ohr", data, "-o", tmp_path / "nodir" / "out.tsv")
    assert r.exit_code == 1 and "cannot write output to" in r.stderr, r.stderr


def test_counts_are_singular_for_one_and_serial_runs_say_where(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("t,v\n1,1\n2,x\n3,3\n")
    b.write_text("t,v\n1,1\n2,2\n")
    r = run("detect", a, "--columns", "v")
    assert r.exit_code == 0 and "skipped 1 bad row " in r.stderr and "2 rows in" in r.stderr, r.stderr
    r = run("detect", a, b, "--columns", "v", "--out-dir", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    assert "running in this process" in r.stderr and "skipped 1 bad row " in r.stderr, r.stderr


def test_inspect_shows_the_io_decoder_scale_and_changed_params(tmp_path):
    (tmp_path / "d.txt").write_bytes(TEXT)
    m = tmp_path / "m.ohr"
    assert run("train", tmp_path / "d.txt", "-o", m, "--hidden", "2x2x8", "-q",
               "--param", "layers.encoder.active_ratio=0.25").exit_code == 0
    out = run("inspect", m).stdout
    io_line = next(x for x in out.splitlines() if x.startswith("  io 0 ") and "decoder" in x)
    assert "scale 4" in io_line, out
    layer_line = next(x for x in out.splitlines() if x.startswith("  layer 0 ") and "encoder lr" in x)
    assert "encoder.active_ratio 0.25" in layer_line and "choice" not in layer_line, out


def test_empty_prompt_is_refused_as_the_readme_says(tmp_path):
    (tmp_path / "d.txt").write_bytes(TEXT)
    assert run("train", tmp_path / "d.txt", "-o", tmp_path / "m.ohr", "--hidden", "2x2x8", "-q").exit_code == 0
    r = run("generate", tmp_path / "m.ohr", "--prompt", "")
    assert r.exit_code == 1 and r.stderr.strip() == "error: the prompt is empty", r.stderr
    assert "`error: the prompt is empty`" in (ROOT / "README.md").read_text()


# --------------------------------------------------------------------------- dry run

def test_dry_run_checks_memory_before_building_and_obeys_force(tmp_path, monkeypatch):
    (tmp_path / "d.txt").write_bytes(TEXT)
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)
    built = []
    real = training.Hierarchy

    def counting(*a, **kw):
        built.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(training, "Hierarchy", counting)
    r = run("train", tmp_path / "d.txt", "-o", tmp_path / "m.ohr", "--hidden", "8x8x32", "--dry-run")
    assert r.exit_code == 1 and "memory" in r.stderr and "--force" in r.stderr, r.stderr
    assert built == []
    r = run("train", tmp_path / "d.txt", "-o", tmp_path / "m.ohr", "--hidden", "8x8x32", "--dry-run", "--force",
            "--json")
    assert r.exit_code == 0, r.stderr
    assert built and '"weights_bytes"' in r.stdout and not (tmp_path / "m.ohr").exists()
