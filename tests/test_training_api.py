"""neocli.training as a library: validated option records, train/evaluate from Python, the CLI
as a thin shell over them (byte-identical models), interrupts, and ``eval --learn``."""
from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from typer.testing import CliRunner

import neocli as neo
from neocli import ohr, training
from neocli.cli.app import app
from neocli.errors import NeoError, OptionError

TEXT = ("the cat sat on the mat. the dog sat on the log. a bird sat on the wire.\n" * 6).encode()
SMALL = training.Architecture(hidden="3x3x16", layers=2)
SMALL_FLAGS = ["--hidden", "3x3x16", "--layers", "2", "--quiet"]


def run(*args, input=None):
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


def sections(path):
    _, secs = ohr.read_file(path)
    return {k: {n: a.tobytes() for n, a in v.items()} for k, v in secs.items()}


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_bytes(TEXT)
    return p


# ------------------------------------------------------------------ option records


@pytest.mark.parametrize("build, field", [
    (lambda: training.Schedule(epochs=0), "epochs"),
    (lambda: training.Schedule(reset_on="never"), "reset_on"),
    (lambda: training.Architecture(hidden="5x5"), "hidden"),
    (lambda: training.Architecture(hidden="0x5x32"), "hidden"),
    (lambda: training.Architecture(hidden="3x3x8,4x4x8", layers=3), "layers"),
    (lambda: training.Architecture(up_radius=-1), "up_radius"),
    (lambda: training.Architecture(recurrent_radius=-2), "recurrent_radius"),
    (lambda: training.Architecture(dendrites=True), "dendrites"),
    (lambda: training.CodecOptions(kind="morse"), "kind"),
    (lambda: training.CodecOptions(kind="bytes", bins=8), "bins"),
    (lambda: training.CodecOptions(kind="csv", csv_range=(float("-inf"), 5)), "csv_range"),
    (lambda: training.CodecOptions(kind="csv", csv_range="nan:1"), "csv_range"),
    (lambda: training.CodecOptions(kind="csv", csv_range="5:1"), "csv_range"),
    (lambda: training.CodecOptions(kind="words", max_vocab=1), "max_vocab"),
    (lambda: training.CodecOptions(kind="csv", csv_columns=" , "), "csv_columns"),
    (lambda: training.CheckpointPolicy(keep=2), "directory"),
    (lambda: training.CheckpointPolicy(directory="d", every_steps=-1), "every_steps"),
    (lambda: training.TrainOptions(seed=-1), "seed"),
    (lambda: training.TrainOptions(seed=2**64), "seed"),
    (lambda: training.TrainOptions(threads=0), "threads"),
    (lambda: training.TrainOptions(schedule="2 epochs"), "schedule"),
])
def test_bad_option_values_name_the_field(build, field):
    with pytest.raises(OptionError) as info:
        build()
    assert info.value.field == field and str(info.value).startswith(field + " ")
    assert "--" not in str(info.value)  # library messages name fields, never CLI flags
    assert isinstance(info.value, NeoError)


def test_records_normalise_what_they_accept():
    a = training.Architecture(hidden="3x3x16,4x4x8")
    assert a.hidden == ((3, 3, 16), (4, 4, 8)) and a.sizes() == [(3, 3, 16), (4, 4, 8)]
    assert training.Architecture(hidden=(3, 3, 16), layers=3).sizes() == [(3, 3, 16)] * 3
    assert training.Architecture().sizes() == [training.DEFAULT_HIDDEN] * training.DEFAULT_LAYERS
    c = training.CodecOptions(kind="csv", csv_range="0:10", csv_columns="a, b")
    assert c.csv_range == (0.0, 10.0) and c.csv_columns == ("a", "b")
    assert training.parse_every("2e") == (0, 2) and training.parse_every("150") == (150, 0)
    with pytest.raises(Exception):
        training.Schedule().epochs = 3  # frozen


def test_codec_fields_are_checked_against_the_codec_before_any_data_is_read(tmp_path):
    opts = training.TrainOptions(codec=training.CodecOptions(csv_range="0:1"))  # default kind: bytes
    with pytest.raises(OptionError) as info:
        training.train([tmp_path / "does-not-exist.txt"], opts)
    assert info.value.field == "csv_range"


# ------------------------------------------------------------------ train / evaluate


def test_library_train_equals_cli_train(tmp_path, text):
    opts = training.TrainOptions(architecture=SMALL, schedule=training.Schedule(epochs=2), seed=7, meta={"k": "v"})
    seen = []
    result = training.train([text], opts, output=tmp_path / "lib.ohr", progress=seen.append)
    assert run("train", text, "-o", tmp_path / "cli.ohr", "--epochs", 2, "--seed", 7, "-m", "k=v",
               *SMALL_FLAGS).exit_code == 0
    assert sections(tmp_path / "lib.ohr") == sections(tmp_path / "cli.ohr")
    assert [m["epoch"] for m in result.metrics] == [1, 2] and result.record["complete"]
    assert result.model.get_num_layers() == 2 and result.codec.kind == "bytes"
    ends = [p for p in seen if p.metrics is not None]
    assert [(p.epoch, p.epochs, p.symbols) for p in ends] == [(1, 2, len(TEXT)), (2, 2, len(TEXT))]
    assert all(p.total == len(TEXT) for p in seen)
    assert ohr.read_header(tmp_path / "lib.ohr")["user"] == {"k": "v"}


def test_train_without_output_writes_nothing_and_returns_the_model(tmp_path, text):
    result = training.train([str(text)], training.TrainOptions(architecture=SMALL))
    assert result.output is None and not list(tmp_path.glob("*.ohr"))
    assert result.model.get_hidden_size(0) == (3, 3, 16)


def test_fit_build_save_load_roundtrip(tmp_path, text):
    codec = training.fit_codec([text], training.CodecOptions(kind="chars"))
    assert codec.kind == "chars" and codec.io_size[2] >= 2
    h = training.build_model(codec, training.TrainOptions(architecture=SMALL, seed=3))
    training.save_model(tmp_path / "m.ohr", h, codec, meta={"note": "x"})
    m = training.load_model(tmp_path / "m.ohr")
    assert m.codec.to_dict() == codec.to_dict() and m.header["user"] == {"note": "x"} and m.record == {}
    assert np.array_equal(m.hierarchy.serialize_weights_to_buffer(), h.serialize_weights_to_buffer())


def test_evaluate_learning_off_leaves_the_model_unchanged(tmp_path, text):
    training.train([text], training.TrainOptions(architecture=SMALL), output=tmp_path / "m.ohr")
    m = training.load_model(tmp_path / "m.ohr")
    before = np.asarray(m.hierarchy.serialize_weights_to_buffer()).tobytes()
    metrics = training.evaluate(m, [text])
    assert np.asarray(m.hierarchy.serialize_weights_to_buffer()).tobytes() == before
    assert metrics.symbols == len(TEXT) and metrics.scored == len(TEXT) - 1
    assert 0 <= metrics.accuracy <= 1 and metrics.bits_per_symbol > 0
    assert metrics.to_dict()["bits_per_symbol"] == metrics.bits_per_symbol
    # The CLI reports the same numbers.
    cli = json.loads(run("eval", tmp_path / "m.ohr", text, "--json").stdout)
    assert cli["accuracy"] == metrics.accuracy and cli["bits_per_symbol"] == pytest.approx(metrics.bits_per_symbol)
    assert cli["learn"] is False


def test_eval_learn_equals_continuing_train_on_the_same_data(tmp_path, text):
    m = tmp_path / "m.ohr"
    assert run("train", text, "-o", m, *SMALL_FLAGS).exit_code == 0
    r = run("eval", m, text, "--learn", "--save", tmp_path / "learned.ohr", "--json")
    assert r.exit_code == 0, r.stderr
    learned = json.loads(r.stdout)
    assert learned["learn"] is True and learned["bits_per_symbol"] > 0
    r = run("train", text, "-o", tmp_path / "continued.ohr", "--resume", m, "--epochs", 2, "--quiet")
    assert r.exit_code == 0, r.stderr
    a, b = sections(tmp_path / "learned.ohr"), sections(tmp_path / "continued.ohr")
    assert a["weights"] == b["weights"] and a["state"] == b["state"]
    second = ohr.read_header(tmp_path / "continued.ohr")["training"]["metrics"][1]
    assert learned["accuracy"] == second["accuracy"] and learned["scored"] == second["scored"]
    assert learned["bits_per_symbol"] == pytest.approx(second["bits_per_symbol"], rel=1e-12)
    # Learning on scores differently from learning off on the same data.
    frozen = json.loads(run("eval", m, text, "--json").stdout)
    assert frozen["bits_per_symbol"] != learned["bits_per_symbol"]


def test_eval_save_needs_learn(tmp_path, text):
    m = tmp_path / "m.ohr"
    assert run("train", text, "-o", m, *SMALL_FLAGS).exit_code == 0
    r = run("eval", m, text, "--save", tmp_path / "x.ohr")
    assert r.exit_code == 2 and "--save applies with --learn only" in r.stderr
    assert not (tmp_path / "x.ohr").exists()


def test_sigint_writes_a_checkpoint_raises_interrupted_and_resume_is_exact(tmp_path, text):
    ck = tmp_path / "ck"
    opts = training.TrainOptions(architecture=SMALL, schedule=training.Schedule(epochs=2),
                                 checkpoints=training.CheckpointPolicy(directory=str(ck)))
    fired = []

    def interrupt_once(p):
        if p.epoch == 2 and p.symbols >= 256 and not fired:
            fired.append(p.symbols)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(training.Interrupted) as info:
        training.train([text], opts, output=tmp_path / "m.ohr", progress=interrupt_once)
    e = info.value
    assert e.path and os.path.dirname(e.path) == str(ck) and e.epoch == 2 and e.signum == signal.SIGINT
    assert "resume=" in e.resume_hint and not (tmp_path / "m.ohr").exists()
    t = ohr.read_header(e.path)["training"]
    assert not t["complete"] and t["epoch"] == 1 and t["position"] > 0
    training.train([text], opts, output=tmp_path / "resumed.ohr", resume=e.path)
    training.train([text], opts, output=tmp_path / "full.ohr")
    assert sections(tmp_path / "resumed.ohr") == sections(tmp_path / "full.ohr")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_rotation_keeps_the_newest(tmp_path, text):
    ck = tmp_path / "ck"
    opts = training.TrainOptions(architecture=SMALL, checkpoints=training.CheckpointPolicy(
        directory=str(ck), every_steps=50, keep=2))
    training.train([text], opts)
    names = sorted(p.name for p in ck.iterdir())
    steps = [int(n.split("-s")[1][:-4]) for n in names]
    assert len(names) == 2 and steps == [len(TEXT) // 50 * 50 - 50, len(TEXT) // 50 * 50]


def test_resume_conflicts_name_the_field_and_the_cli_maps_it_to_a_flag(tmp_path, text):
    training.train([text], training.TrainOptions(architecture=SMALL), output=tmp_path / "m.ohr")
    opts = training.TrainOptions(architecture=training.Architecture(hidden="4x4x16"))
    with pytest.raises(neo.NeoError) as info:
        training.train([text], opts, resume=tmp_path / "m.ohr")
    assert info.value.field == "hidden" and "hidden=3x3x16" in str(info.value)
    r = run("train", text, "-o", tmp_path / "r.ohr", "--resume", tmp_path / "m.ohr", "--hidden", "4x4x16")
    assert r.exit_code == 1 and "--resume: " in r.stderr and "--hidden=3x3x16" in r.stderr


def test_generate_from_python_matches_the_cli(tmp_path, text):
    from neocli.generation import generate

    training.train([text], training.TrainOptions(architecture=SMALL), output=tmp_path / "m.ohr")
    out = b"".join(generate(training.load_model(tmp_path / "m.ohr"), b"the c", 30, temperature=1.0, seed=5))
    r = run("generate", tmp_path / "m.ohr", "--prompt", "the c", "-n", 30, "-T", 1, "-s", 5)
    assert r.exit_code == 0 and r.stdout_bytes == out and len(out) == 30


def test_cli_errors_map_to_exit_codes_and_bugs_surface(tmp_path, text, monkeypatch):
    # Option values: usage errors (2) before any data is read.
    for args, phrase in ((["--csv-range", "-inf:5", "--codec", "csv"], "--csv-range needs finite"),
                         (["--seed", "-1"], "--seed must be >= 0"),
                         (["--seed", str(2**64)], "--seed must be <="),
                         (["--hidden", "5x5"], "--hidden expects WxHxZ")):
        r = run("train", tmp_path / "missing.txt", "-o", tmp_path / "m.ohr", *args)
        assert r.exit_code == 2 and phrase in r.stderr and "does not exist" not in r.stderr, r.stderr
    r = run("train", "-h")
    assert r.exit_code == 0 and "WxHxZ" in r.stdout and "LO:HI" in r.stdout and "--env" not in r.stdout

    # A ValueError from our own code is a bug: it is not turned into a user error.
    def broken(*a, **k):
        raise ValueError("a bug in neocli")

    monkeypatch.setattr(training, "train", broken)
    with pytest.raises(ValueError, match="a bug in neocli"):
        run("train", text, "-o", tmp_path / "m.ohr", "--quiet")


def test_readme_python_training_snippet_runs(tmp_path, monkeypatch, capsys):
    """The README's "Training and evaluating from Python" example runs as printed."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    section = readme.split("### Training and evaluating from Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    code = code.replace("datasets/", os.path.join(root, "datasets") + os.sep)
    exec(compile(code, "README.md (training)", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[0]) for line in lines[:5]] == [1, 2, 3, 4, 5]
    frozen_acc, frozen_bits, online_bits = (float(x) for x in lines[5].split())
    assert 0 < frozen_acc <= 1 and frozen_bits > 0 and online_bits > 0
    assert training.load_model(tmp_path / "sun-more.ohr").record["complete"]


@pytest.mark.parametrize("kind", ["bytes", "chars"])
def test_interrupted_evaluate_gives_bits_per_byte_of_what_it_scored(tmp_path, kind):
    # Stopped after 512 of ~130 kB: bits/byte is over the bytes scored (for the bytes codec,
    # the symbols read), not the file's size nor the 64 kB chunk the codec read ahead.
    text = (b"the cat sat on the mat. the dog sat on the log. a bird sat on the wire.\n" * 1800)
    data = tmp_path / "d.txt"
    data.write_bytes(text)
    opts = training.TrainOptions(codec=training.CodecOptions(kind=kind),
                                 architecture=training.Architecture(hidden="3x3x16"))
    small = tmp_path / "s.txt"
    small.write_bytes(text[:400])
    training.train([str(small)], opts, output=str(tmp_path / "m.ohr"))

    def stop(p):
        if p.symbols >= 512:
            raise KeyboardInterrupt

    with pytest.raises(training.EvalInterrupted) as e:
        training.evaluate(str(tmp_path / "m.ohr"), [str(data)], progress=stop)
    m = e.value.metrics
    assert m.symbols == 512 and m.bits > 0
    if kind == "bytes":
        assert m.bits_per_byte == pytest.approx(m.bits / 512) == pytest.approx(m.bits_per_symbol * m.scored / 512)
    else:   # read-ahead leaves the bytes behind 512 characters unknown: no figure rather than a wrong one
        assert m.bits_per_byte is None and "bits_per_byte" not in m.to_dict()
    whole = training.evaluate(str(tmp_path / "m.ohr"), [str(small)])
    assert whole.bits_per_byte == pytest.approx(whole.bits / 400)   # uninterrupted: the whole data
