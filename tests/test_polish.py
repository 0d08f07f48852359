"""Reviewer defects: evaluate on a train() result, the record of continued learning, resuming a
complete run, pyaogmaneo files given to train, data-parallel option checks, rl eval without
--env, library messages that name parameters (not flags)."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

import neocli as neo
from neocli import aogmaneo, training
from neocli.cli.app import app
from neocli.errors import NeoError, ParameterError


def run(*args, input=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text("the cat sat on the mat. " * 30)
    v = tmp_path / "v.txt"
    v.write_text("the mat sat on the cat. " * 5)
    return str(p), str(v)


def small(epochs=1, **kw):
    return training.TrainOptions(architecture=training.Architecture(hidden="4x4x8"),
                                 schedule=training.Schedule(epochs=epochs), **kw)


def test_evaluate_accepts_a_training_result_and_uses_its_calibration(data):
    d, v = data
    r = training.train([d], small())
    got = training.evaluate(r, [v]).to_dict()
    want = training.evaluate(training.TrainedModel(r.model, r.codec, {}, r.predictive), [v]).to_dict()
    assert got["bits_per_symbol"] == want["bits_per_symbol"] and got["symbols"] == want["symbols"]
    # A fresh (uncalibrated) distribution scores differently: the result's own one was used.
    fresh = training.evaluate(training.TrainedModel(r.model, r.codec, {}), [v]).to_dict()
    assert fresh["bits_per_symbol"] != got["bits_per_symbol"]


def test_evaluate_refuses_a_bare_hierarchy_naming_the_parameter(data):
    d, v = data
    r = training.train([d], small())
    with pytest.raises(TypeError, match="model is a bare Hierarchy.*no codec"):
        training.evaluate(r.model, [v])
    with pytest.raises(TypeError, match="model must be"):
        training.evaluate(42, [v])


def test_model_and_hierarchy_alias_each_other(data, tmp_path):
    d, _ = data
    out = str(tmp_path / "m.ohr")
    r = training.train([d], small(), output=out)
    assert r.hierarchy is r.model
    m = training.load_model(out)
    assert m.model is m.hierarchy
    with pytest.raises(AttributeError):
        m.model = None
    with pytest.raises(AttributeError):
        r.hierarchy = None


def test_eval_learn_save_records_the_continued_learning(data, tmp_path):
    d, v = data
    m, out = str(tmp_path / "m.ohr"), str(tmp_path / "out.ohr")
    assert run("train", d, "-o", m, "--hidden", "4x4x8", "-q").exit_code == 0
    before = training.load_model(m).record
    r = run("eval", m, v, "--learn", "--save", out, "--json")
    assert r.exit_code == 0, r.output
    import json
    symbols = json.loads(r.stdout)["symbols"]
    after = training.load_model(out).record
    assert after["steps"] == before["steps"] + symbols
    assert after["data_files"] == before["data_files"] + [v]
    assert after["learned"][-1]["steps"] == symbols and after["learned"][-1]["data_files"] == [v]
    assert after["updated_utc"] >= before["updated_utc"]


def test_evaluate_learn_updates_the_record_for_save_model(data, tmp_path):
    d, v = data
    r = training.train([d], small())
    steps = r.record["steps"]
    m = training.evaluate(r, [v], learn=True)
    assert r.record["steps"] == steps + m.symbols and r.record["data_files"][-1] == v
    training.evaluate(r, [v])  # learning off: the record stays
    assert r.record["steps"] == steps + m.symbols


def test_resume_of_a_complete_run_with_the_same_epochs_is_an_error(data, tmp_path):
    d, _ = data
    m = str(tmp_path / "m.ohr")
    training.train([d], small(epochs=2), output=m)
    with pytest.raises(ParameterError, match="already complete.*raise epochs") as e:
        training.train([d], small(epochs=2), output=m, resume=m)
    assert e.value.parameter == "epochs"
    r = run("train", d, "-o", m, "--hidden", "4x4x8", "--epochs", "2", "--resume", m)
    assert r.exit_code == 1 and "--epochs" in r.stderr and "already complete" in r.stderr
    assert "saved" not in r.stderr
    r = run("train", d, "-o", m, "--hidden", "4x4x8", "--epochs", "3", "--resume", m, "-q")
    assert r.exit_code == 0, r.output
    assert training.load_model(m).record["epoch"] == 3


@pytest.mark.parametrize("flag", ["--resume", "--init"])
def test_train_from_a_pyaogmaneo_file_gives_the_import_hint(data, tmp_path, flag):
    d, _ = data
    ref = str(tmp_path / "ref.ohr")
    h = neo.Hierarchy([neo.IODesc((2, 2, 16), neo.prediction)], [neo.LayerDesc((3, 3, 8))])
    aogmaneo.export_file(h, ref)
    assert aogmaneo.is_aogmaneo_file(ref)
    r = run("train", d, "-o", str(tmp_path / "m.ohr"), flag, ref)
    assert r.exit_code == 1
    assert "pyaogmaneo's own format" in r.stderr and "import-aogmaneo" in r.stderr


def test_rl_eval_defaults_to_the_agents_env_and_names_agent(tmp_path):
    import json

    agent = tmp_path / "a.ohr"
    r = run("rl", "train", "--env", "CartPole-v1", "-o", agent, "--episodes", 2, "--hidden", "3x3x8", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("rl", "eval", agent, "--episodes", 2, "--seed", 3, "--json")
    assert r.exit_code == 0, r.stderr
    implicit = json.loads(r.stdout)
    assert implicit["env"] == "CartPole-v1"
    explicit = json.loads(run("rl", "eval", agent, "--env", "CartPole-v1", "--episodes", 2, "--seed", 3,
                              "--json").stdout)
    assert implicit["returns"] == explicit["returns"]
    r = run("rl", "eval", agent, "--env", "Acrobot-v1")
    assert r.exit_code == 1 and "error: AGENT:" in r.stderr and "does not fit" in r.stderr
    r = run("rl", "eval", tmp_path / "missing.ohr")
    assert r.exit_code != 0 and "agent file" in r.stderr


@pytest.mark.parametrize("extra,flag", [
    (["--valid", "V"], "--valid"), (["--valid", "V", "--patience", "2"], "--valid"),
    (["--dry-run"], "--dry-run"), (["-o", "-"], "-o -"), (["--checkpoint-dir", "ck"], "--checkpoint-dir"),
 (["--force"], "--force"), (["--threads", "1"], "--threads"),
])
def test_data_parallel_refuses_options_it_would_ignore(data, tmp_path, extra, flag):
    d, v = data
    extra = [v if x == "V" else x for x in extra]
    out = [] if "-o" in extra else ["-o", str(tmp_path / "m.ohr")]
    r = run("train", d, *out, "--workers", "2", *extra)
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    # (--patience and --valid-every need --valid: the option record refuses them alone.)
    assert f"{flag} is not supported with --workers" in r.stderr, r.stderr
    assert not (tmp_path / "m.ohr").exists()


def test_data_parallel_and_eval_many_take_explicit_arguments():
    import inspect

    from neocli.cli import distributed as d, eval as e, train as t  # noqa: F401 (t: the train command)
    for f in (d.train_data_parallel, d.eval_many):
        assert "args" not in inspect.signature(f).parameters
    for mod in (t, e, d):
        assert "locals()" not in inspect.getsource(mod)
    # train-many and sweep declare train's own flags (one declaration, one default).
    assert d.Layers is t.Layers and d.Hidden is t.Hidden and d._options is t.build_options


@pytest.mark.parametrize("extra,flag", [(["--learn"], "--learn"), (["--no-decompress"], "--no-decompress"),
                                        (["--threads", "1"], "--threads")])
def test_eval_many_refuses_options_it_would_ignore(data, tmp_path, extra, flag):
    d, v = data
    m = str(tmp_path / "m.ohr")
    training.train([d], small(), output=m)
    r = run("eval", m, v, "--workers", "1", *extra)
    assert r.exit_code == 2 and f"{flag} is not supported with --workers" in r.stderr


def test_library_messages_name_parameters_and_the_cli_names_flags(tmp_path):
    import ast
    import re
    from pathlib import Path

    from neocli import compression
    # No library string names a CLI flag (docstrings and comments aside).
    root = Path(neo.__file__).parent
    offenders = []
    for path in [*root.glob("*.py"), *(root / "rl").glob("*.py")]:
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
                if re.search(r"(^|[\s(])--[a-z]", n.value):
                    offenders.append(f"{path.name}:{n.lineno}: {n.value!r}")
    assert not offenders, offenders
    # The library spells parameters; the CLI spells the same message with flags.
    p = tmp_path / "c.txt"
    p.write_text("abcdef")
    with pytest.raises(NeoError, match=r"raise max_vocab \(or use the bytes codec\)"):
        training.fit_codec([str(p)], training.CodecOptions(kind="chars", max_vocab=3))
    r = run("train", p, "-o", tmp_path / "m.ohr", "--codec", "chars", "--max-vocab", "3")
    assert r.exit_code == 1 and "raise --max-vocab" in r.stderr and "max_vocab" not in r.stderr
    fake = tmp_path / "plain.gz"
    fake.write_bytes(b"just text\n")
    with pytest.raises(NeoError, match="with decompress=False$"):
        compression.open_input(fake)
    r = run("train", fake, "-o", tmp_path / "m.ohr")
    assert r.exit_code == 1 and r.stderr.rstrip().endswith("with --no-decompress")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok \xff\xfe bad")
    r = run("train", bad, "-o", tmp_path / "m.ohr", "--codec", "chars")
    assert r.exit_code == 1 and "give the right --encoding, or use the bytes codec" in r.stderr


def test_design_map_names_every_module_and_only_existing_ones():
    import re
    from pathlib import Path

    root = Path(neo.__file__).parent.parent
    text = (root / "docs" / "DESIGN.md").read_text()
    files = [p for d in ("neocli", "neocli/cli", "neocli/rl") for p in (root / d).glob("*.py")]
    files += [p for p in (root / "cython_core").iterdir() if p.suffix in (".pyx", ".pxd", ".h")]
    missing = [str(p.relative_to(root)) for p in files
               if p.name != "__init__.py" or p.parent.name == "neocli"
               if p.name not in text and str(p.relative_to(root)) not in text]
    assert not missing, missing
    for path in re.findall(r"`(neocli/[\w/]+\.py|cython_core/\w+\.\w+)`", text):
        assert (root / path).exists(), f"docs/DESIGN.md names {path}, which does not exist"
    assert "being added" not in text
