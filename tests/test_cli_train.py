"""CLI tests for train, generate and eval: happy paths, errors, pipelines, resume."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import neocli as neo
from neocli import ohr
from neocli.cli.app import app
import neocli.cli.train  # noqa: F401  (registers the command)
import neocli.cli.generate  # noqa: F401
import neocli.cli.eval  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("the cat sat on the mat. the dog sat on the log. a bird sat on the wire.\n" * 6).encode()
SMALL = ["--hidden", "3x3x16", "--layers", "2", "--quiet"]


def run(*args, input=None):
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_bytes(TEXT)
    return p


def sections(path):
    _, secs = ohr.read_file(path)
    return {k: {n: a.tobytes() for n, a in v.items()} for k, v in secs.items()}


def test_train_generate_eval_roundtrip(tmp_path, text):
    model = tmp_path / "m.ohr"
    r = run("train", text, "-o", model, "--epochs", "3", *SMALL, "--json", "--meta", "who=test")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["epochs"] == 3 and len(summary["metrics"]) == 3
    assert summary["metrics"][-1]["accuracy"] > summary["metrics"][0]["accuracy"]
    header = ohr.read_header(model)
    assert header["codec"]["kind"] == "bytes" and header["user"] == {"who": "test"}
    assert header["training"]["complete"] and header["training"]["steps"] == 3 * len(TEXT)
    h = neo.Hierarchy(file_name=str(model))
    assert h.get_io_size(0) == (1, 1, 256) and h.get_num_layers() == 2   # the default byte layout: one 256-cell column

    r = run("generate", model, "--prompt", "the cat", "--length", "40")
    assert r.exit_code == 0 and len(r.stdout_bytes) == 40
    r2 = run("generate", model, "--prompt", "the cat", "--length", "40")
    assert r2.stdout_bytes == r.stdout_bytes  # argmax is deterministic
    s1 = run("generate", model, "--prompt", "the", "--length", "60", "--temperature", "1", "--seed", "3").stdout_bytes
    s2 = run("generate", model, "--prompt", "the", "--length", "60", "--temperature", "1", "--seed", "3").stdout_bytes
    assert s1 == s2 and len(s1) == 60

    r = run("eval", model, text, "--json")
    assert r.exit_code == 0
    ev = json.loads(r.stdout)
    assert ev["symbols"] == len(TEXT) and ev["scored"] == len(TEXT) - 1
    assert 0.0 <= ev["accuracy"] <= 1.0 and ev["bits_per_symbol"] > 0
    # eval learns nothing: the model file is unchanged and a second eval agrees
    assert json.loads(run("eval", model, text, "--json").stdout)["accuracy"] == ev["accuracy"]


def test_metrics_follow_the_calibrated_distribution(tmp_path):
    """Accuracy and bits/symbol computed by hand from the library match the CLI's: bits
    are -log2 of the model's calibrated distribution (neocli.predictive, restored from
    the header and frozen while eval scores), accuracy is the exact hit of every column."""
    from neocli.codecs import BytesCodec
    from neocli.predictive import Predictive
    data = tmp_path / "d.txt"
    data.write_bytes(b"abcabcabd" * 5)
    model = tmp_path / "m.ohr"
    assert run("train", data, "-o", model, *SMALL, "--byte-layout", "nibbles", "--seed", "4").exit_code == 0
    got = json.loads(run("eval", model, data, "--json").stdout)
    h = neo.Hierarchy(file_name=str(model))
    pred = Predictive(BytesCodec("nibbles"), ohr.read_header(model)["predictive"])
    h.clear_state()
    correct = scored = 0
    bits = 0.0
    for i, b in enumerate(data.read_bytes()):
        cis = np.array([b >> 4, b & 15], dtype=np.int32)
        if i:
            correct += np.array_equal(h.get_prediction_cis(0), cis)
            bits += pred.bits(h.get_prediction_acts(0), cis)
            scored += 1
        h.step([cis], False)
    assert got["accuracy"] == pytest.approx(correct / scored)
    assert got["bits_per_symbol"] == pytest.approx(bits / scored)
    assert got["bits_per_byte"] == pytest.approx(bits / len(data.read_bytes()))
    assert got["perplexity"] == pytest.approx(2 ** (bits / scored))


@pytest.mark.parametrize("codec,content,extra", [
    ("chars", "héllo wörld, héllo wörld\n" * 4, []),
    ("words", "the cat sat on the mat\nthe dog sat on the log\n" * 4, []),
    ("tokens", "1 2 3 4 5\n1 2 3 4 6\n" * 4, []),
    ("csv", "a,b\n" + "".join(f"{i % 7},{(i * 3) % 5}\n" for i in range(60)), ["--bins", "8"]),
    ("bytes", "abcdefgh" * 10, ["--byte-layout", "byte"]),
])
def test_every_codec_trains_and_generates(tmp_path, codec, content, extra):
    data = tmp_path / "d.txt"
    data.write_text(content, encoding="utf-8")
    model = tmp_path / "m.ohr"
    r = run("train", data, "-o", model, "--codec", codec, *extra, "--epochs", "2", *SMALL)
    assert r.exit_code == 0, r.stderr
    prompt = {"chars": "hé", "words": "the cat", "tokens": "1 2", "csv": "1,2\n2,3\n", "bytes": "abc"}[codec]
    r = run("generate", model, "--prompt", prompt, "--length", "10")
    assert r.exit_code == 0, r.stderr
    out = r.stdout_bytes.decode("utf-8")
    if codec == "csv":
        rows = out.strip().splitlines()
        assert len(rows) == 10 and all(len(row.split(",")) == 2 for row in rows)
        assert all(-1 <= float(v) <= 8 for row in rows for v in row.split(","))
    elif codec == "tokens":
        assert len(out.split()) == 10 and all(0 <= int(x) <= 6 for x in out.split())
    elif codec == "words":
        assert len(out.split()) == 10
    else:
        assert len(out) == 10
    assert json.loads(run("eval", model, data, "--json").stdout)["accuracy"] is not None


def test_stdin_streaming_and_shell_pipeline(tmp_path):
    model = tmp_path / "m.ohr"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = f"{shlex.quote(sys.executable)} -m neocli"  # quoted: a venv path may hold a space
    cmd = (f"cat text.txt | {cli} train - -o m.ohr --hidden 3x3x16 --quiet && "
           f"{cli} generate m.ohr --length 50 | wc -c")
    (tmp_path / "text.txt").write_bytes(TEXT)
    r = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "50"
    assert ohr.read_header(model)["training"]["data_sha256"] is not None
    # a closed pipe ends generation cleanly
    r = subprocess.run(f"{cli} generate m.ohr --length 100000 | head -c 10", shell=True, cwd=tmp_path, env=env,
                       capture_output=True, timeout=120)
    assert r.returncode == 0 and len(r.stdout) == 10 and b"Traceback" not in r.stderr and b"Broken" not in r.stderr


def test_stdin_spooled_for_several_epochs_matches_file(tmp_path, text):
    a, b = tmp_path / "a.ohr", tmp_path / "b.ohr"
    assert run("train", text, "-o", a, "--epochs", "2", *SMALL).exit_code == 0
    assert run("train", "-", "-o", b, "--epochs", "2", *SMALL, input=TEXT).exit_code == 0
    assert sections(a)["weights"] == sections(b)["weights"]


def test_resume_equals_uninterrupted(tmp_path, text):
    full = tmp_path / "full.ohr"
    ck = tmp_path / "ck"
    r = run("train", text, "-o", full, "--epochs", "2", *SMALL, "--checkpoint-dir", ck, "--checkpoint-every", "150")
    assert r.exit_code == 0, r.stderr
    ckpts = sorted(ck.glob("*.ohr"))
    assert len(ckpts) >= 4
    mid = ckpts[len(ckpts) // 2]  # somewhere inside an epoch
    assert ohr.read_header(mid)["training"]["position"] > 0
    resumed = tmp_path / "resumed.ohr"
    r = run("train", text, "-o", resumed, "--epochs", "2", "--quiet", "--resume", mid)
    assert r.exit_code == 0, r.stderr
    assert sections(resumed) == sections(full)
    t_full, t_res = ohr.read_header(full)["training"], ohr.read_header(resumed)["training"]
    for m_full, m_res in zip(t_full["metrics"], t_res["metrics"]):
        assert m_full["accuracy"] == m_res["accuracy"] and m_full["bits_per_symbol"] == pytest.approx(m_res["bits_per_symbol"])


def test_keep_rotates_checkpoints(tmp_path, text):
    ck = tmp_path / "ck"
    r = run("train", text, "-o", tmp_path / "m.ohr", *SMALL, "--checkpoint-dir", ck, "--checkpoint-every", "50",
            "--keep", "2")
    assert r.exit_code == 0
    assert len(list(ck.glob("*.ohr"))) == 2


def test_init_takes_weights_only(tmp_path, text):
    a = tmp_path / "a.ohr"
    assert run("train", text, "-o", a, *SMALL).exit_code == 0
    b = tmp_path / "b.ohr"
    r = run("train", text, "-o", b, "--init", a, "--epochs", "1", *SMALL)
    assert r.exit_code == 0, r.stderr
    m_a = json.loads(run("eval", a, text, "--json").stdout)["accuracy"]
    m_b = ohr.read_header(b)["training"]["metrics"][0]["accuracy"]
    assert m_b >= m_a - 0.05  # it starts from what a learned


def test_reset_on_blank_clears_between_paragraphs(tmp_path):
    data = tmp_path / "p.txt"
    data.write_text("abc\n\nabc\n\nabc\n")
    m1, m2 = tmp_path / "1.ohr", tmp_path / "2.ohr"
    assert run("train", data, "-o", m1, *SMALL, "--reset-on", "blank", "--json").exit_code == 0
    assert run("train", data, "-o", m2, *SMALL, "--reset-on", "none", "--json").exit_code == 0
    s1 = ohr.read_header(m1)["training"]["metrics"][0]["scored"]
    s2 = ohr.read_header(m2)["training"]["metrics"][0]["scored"]
    assert s1 == s2 - 2  # two more sequence starts are not scored


# ---------------------------------------------------------------- errors


def assert_user_error(r, phrase, code=1):
    """A clean failure: ``error: ...`` naming the problem, no traceback; exit 1 for
    bad data/models, 2 for bad option values (usage errors)."""
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert "error:" in r.stderr and phrase in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_error_missing_and_directory_and_empty(tmp_path):
    assert_user_error(run("train", tmp_path / "nope.txt", "-o", tmp_path / "m.ohr"), "does not exist")
    assert_user_error(run("train", tmp_path, "-o", tmp_path / "m.ohr"), "is a directory")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert_user_error(run("train", empty, "-o", tmp_path / "m.ohr"), "empty")
    assert not (tmp_path / "m.ohr").exists()


def test_error_unreadable_file(tmp_path, text, monkeypatch):
    # Tests run as root in CI, where chmod cannot make a file unreadable: fake the check.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(text) else real_access(p, mode))
    assert_user_error(run("train", text, "-o", tmp_path / "m.ohr"), "not readable")


def test_error_invalid_utf8(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello \xff\xfe world")
    for codec in ("chars", "words"):
        assert_user_error(run("train", bad, "-o", tmp_path / "m.ohr", "--codec", codec), "invalid UTF-8")


def test_error_non_numeric_csv_names_line_and_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,x\n")
    assert_user_error(run("train", bad, "-o", tmp_path / "m.ohr", "--codec", "csv"), "line 3, column 2")


def test_error_not_an_ohr_and_corrupt_and_newer(tmp_path, text):
    junk = tmp_path / "junk.ohr"
    junk.write_bytes(b"hello world, not a model")
    assert_user_error(run("generate", junk), "not an .ohr file")
    model = tmp_path / "m.ohr"
    assert run("train", text, "-o", model, *SMALL).exit_code == 0
    raw = bytearray(model.read_bytes())
    (tmp_path / "trunc.ohr").write_bytes(bytes(raw[: len(raw) // 2]))
    r = run("generate", tmp_path / "trunc.ohr")
    assert r.exit_code == 1 and "error:" in r.stderr and "Traceback" not in r.stderr
    flipped = bytearray(raw)
    flipped[-100] ^= 0xFF
    (tmp_path / "flip.ohr").write_bytes(bytes(flipped))
    assert_user_error(run("eval", tmp_path / "flip.ohr", text), "checksum mismatch")
    newer = bytearray(raw)
    newer[8:12] = (99).to_bytes(4, "little")
    (tmp_path / "new.ohr").write_bytes(bytes(newer))
    assert_user_error(run("generate", tmp_path / "new.ohr"), "newer")


def test_error_unwritable_output_fails_before_training(tmp_path, text):
    r = run("train", text, "-o", tmp_path / "no" / "such" / "dir" / "m.ohr")
    assert_user_error(r, "does not exist")
    assert "epoch" not in r.stderr


def test_error_prompt_with_unknown_symbols(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text("abcabc" * 10)
    model = tmp_path / "m.ohr"
    assert run("train", data, "-o", model, "--codec", "chars", *SMALL).exit_code == 0
    assert_user_error(run("generate", model, "--prompt", "abz"), "'z' is not in the model's vocabulary")


def test_error_resume_with_different_architecture_or_data(tmp_path, text):
    model = tmp_path / "m.ohr"
    assert run("train", text, "-o", model, *SMALL).exit_code == 0
    assert_user_error(run("train", text, "-o", tmp_path / "r.ohr", "--resume", model, "--hidden", "4x4x16"),
                      "hidden")
    other = tmp_path / "other.txt"
    other.write_bytes(TEXT + b"!")
    assert_user_error(run("train", other, "-o", tmp_path / "r.ohr", "--resume", model), "data differs")


def test_failed_write_keeps_previous_model(tmp_path, text, monkeypatch):
    model = tmp_path / "m.ohr"
    assert run("train", text, "-o", model, *SMALL).exit_code == 0
    before = model.read_bytes()

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    r = run("train", text, "-o", model, *SMALL, "--seed", "9")
    assert_user_error(r, "No space left")
    monkeypatch.undo()
    assert model.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_csv_given_range_and_header_option(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("".join(f"{i % 5},{i % 3}\n" for i in range(40)))
    model = tmp_path / "m.ohr"
    r = run("train", data, "-o", model, "--codec", "csv", "--bins", "10", "--csv-range", "0:10", "--no-csv-header", *SMALL)
    assert r.exit_code == 0, r.stderr
    codec = ohr.read_header(model)["codec"]
    assert codec["lows"] == [0.0, 0.0] and codec["highs"] == [10.0, 10.0] and codec["header"] is False
    assert_user_error(run("train", data, "-o", model, "--codec", "csv", "--csv-range", "5:1"), "LO < HI", code=2)
    assert_user_error(run("train", data, "-o", model, "--csv-range", "0:1"), "csv only", code=2)


def _eval_metrics(model, data):
    r = run("eval", model, data, "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    return {k: v for k, v in out.items() if k not in ("symbols_per_s", "data")}


def test_csv_model_trained_with_a_header_finds_its_columns_by_name(tmp_path):
    # The columns are matched by the header's names, not their positions: a file with the
    # columns in another order scores the same column; one without them is an error.
    rows = [(1900 + i, (i * 7) % 20, i % 3) for i in range(60)]
    data, swapped, other = tmp_path / "d.csv", tmp_path / "swapped.csv", tmp_path / "other.csv"
    data.write_text("year,value,noise\n" + "".join(f"{y},{v},{n}\n" for y, v, n in rows))
    swapped.write_text("noise,value,year\n" + "".join(f"{n},{v},{y}\n" for y, v, n in rows))
    other.write_text("a,b\n" + "".join(f"{v},{y}\n" for y, v, n in rows))
    model = tmp_path / "m.ohr"
    assert run("train", data, "-o", model, "--codec", "csv", "--csv-columns", "value", *SMALL).exit_code == 0
    codec = ohr.read_header(model)["codec"]
    assert codec["use"] == [1] and codec["columns"] == ["value"] and codec["by_name"] is True
    assert _eval_metrics(model, swapped) == _eval_metrics(model, data)
    assert_user_error(run("eval", model, other), "no column named 'value'")
    assert "this file's header: a, b" in run("eval", model, other).stderr
    # generate's prompt file: a header in another order picks the same column.
    plain = run("generate", model, "--prompt", "year,value,noise\n1990,3,0\n1991,10,1\n", "--length", "4")
    moved = run("generate", model, "--prompt", "noise,year,value\n0,1990,3\n1,1991,10\n", "--length", "4")
    assert plain.exit_code == 0 and moved.stdout == plain.stdout, moved.stderr
    assert_user_error(run("generate", model, "--prompt", "a,b\n1,2\n", "--length", "2"), "no column named 'value'")
    # --init learns from the swapped file exactly as from the original.
    for src, out in ((data, "i1.ohr"), (swapped, "i2.ohr")):
        r = run("train", src, "-o", tmp_path / out, "--init", model, "--quiet")
        assert r.exit_code == 0, r.stderr
    assert sections(tmp_path / "i1.ohr")["weights"] == sections(tmp_path / "i2.ohr")["weights"]
    # All columns, no --csv-columns: the same by name.
    full = tmp_path / "full.ohr"
    assert run("train", data, "-o", full, "--codec", "csv", *SMALL).exit_code == 0
    assert ohr.read_header(full)["codec"]["columns"] == ["year", "value", "noise"]
    assert _eval_metrics(full, swapped) == _eval_metrics(full, data)


def test_csv_model_trained_without_a_header_goes_by_position(tmp_path):
    data, swapped = tmp_path / "d.csv", tmp_path / "s.csv"
    data.write_text("".join(f"{i % 5},{(i * 3) % 11}\n" for i in range(60)))
    swapped.write_text("".join(f"{(i * 3) % 11},{i % 5}\n" for i in range(60)))
    model = tmp_path / "m.ohr"
    assert run("train", data, "-o", model, "--codec", "csv", "--csv-columns", "2", *SMALL).exit_code == 0
    assert "by_name" not in ohr.read_header(model)["codec"]
    same = _eval_metrics(model, data)
    # A header row naming the columns in another order changes nothing: no names, no matching.
    headed = tmp_path / "h.csv"
    headed.write_text("b,a\n" + data.read_text())
    # (bits per byte aside: the header row's bytes are in the file but not scored)
    assert _eval_metrics(model, headed) == {**same, "bits_per_byte": _eval_metrics(model, headed)["bits_per_byte"]}
    # Position 2 of the swapped file is the other column: different numbers, as before.
    assert _eval_metrics(model, swapped) != same


def test_csv_model_trained_with_csv_header_reads_a_headerless_file_by_position(tmp_path):
    # --csv-header stores header true: a later file whose first row is all numbers has no
    # header row, and is read by position (README "CSV columns are found by name").
    body = "".join(f"{i % 5},{(i * 3) % 11}\n" for i in range(60))
    data, bare = tmp_path / "d.csv", tmp_path / "bare.csv"
    data.write_text("a,b\n" + body)
    bare.write_text(body)
    model = tmp_path / "m.ohr"
    assert run("train", data, "-o", model, "--codec", "csv", "--csv-header", *SMALL).exit_code == 0
    codec = ohr.read_header(model)["codec"]
    assert codec["header"] is True and codec["by_name"] is True
    got, want = _eval_metrics(model, bare), _eval_metrics(model, data)
    assert got["symbols"] == 60 and got.pop("bits_per_byte") != want.pop("bits_per_byte")  # the header's bytes
    assert got == want
    # A header of other names is still matched by name (and refused).
    other = tmp_path / "o.csv"
    other.write_text("x,y\n" + body)
    assert_user_error(run("eval", model, other), "no column named 'a'")


def test_eval_of_undecodable_csv_is_a_clean_error(tmp_path):
    # The first line is decoded too: bad bytes there, or a gzip file read undecompressed.
    import gzip
    data = tmp_path / "d.csv"
    data.write_text("a,b\n" + "".join(f"{i % 5},{i % 3}\n" for i in range(40)))
    model = tmp_path / "m.ohr"
    assert run("train", data, "-o", model, "--codec", "csv", *SMALL).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\xff\xfe\n1,2\n")
    gz = tmp_path / "x.csv.gz"
    gz.write_bytes(gzip.compress(data.read_bytes()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in ([str(bad)], ["--no-decompress", str(gz)]):
        r = subprocess.run([sys.executable, "-m", "neocli", "eval", str(model), *args], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 1, (args, r.stderr)
        assert "error:" in r.stderr and "invalid UTF-8" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert run("eval", model, gz).exit_code == 0   # decompressed by its extension, it is fine


def test_csv_range_with_an_infinite_span_is_a_usage_error(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("value\n" + "".join(f"{i % 5}\n" for i in range(20)))
    r = run("train", data, "-o", tmp_path / "m.ohr", "--codec", "csv", "--csv-range=-1e308:1e308", *SMALL)
    assert_user_error(r, "--csv-range", code=2)
    assert "span" in r.stderr and not (tmp_path / "m.ohr").exists()
    # Wide but finite still trains, and generates finite numbers.
    r = run("train", data, "-o", tmp_path / "m.ohr", "--codec", "csv", "--csv-range=-1e307:1e307", *SMALL)
    assert r.exit_code == 0, r.stderr
    g = run("generate", tmp_path / "m.ohr", "--prompt", "1\n2\n", "--length", "3")
    assert g.exit_code == 0 and all(np.isfinite(float(v)) for v in g.stdout.split()), g.stdout
    wide = tmp_path / "w.csv"
    wide.write_text("value\n-1e308\n1e308\n")
    assert_user_error(run("train", wide, "-o", tmp_path / "x.ohr", "--codec", "csv", *SMALL), "--csv-range")
    import neocli.cli.detect  # noqa: F401  (registers the command)
    r = run("detect", data, "--columns", "value", "--csv-range=-1e308:1e308")
    assert_user_error(r, "--csv-range", code=2)
    assert "span" in r.stderr and r.stdout == ""


def test_generate_small_seeds_give_different_samples(tmp_path, text):
    # Seeds go through a seeding step: raw generator states 0..4 would all start
    # with near-zero draws and so pick the same first cells.
    model = tmp_path / "m.ohr"
    assert run("train", text, "-o", model, *SMALL).exit_code == 0
    firsts = {run("generate", model, "--prompt", "the", "--length", "3", "--temperature", "3",
                  "--seed", s).stdout_bytes for s in range(5)}
    assert len(firsts) > 1


@pytest.mark.parametrize("args, phrase", [
    (["--length", "-1"], "--length"),
    (["--temperature", "-0.5"], "--temperature"),
    (["--prompt", "a", "--prompt-file", "x"], "not both"),
    (["--seed", "-3"], "--seed"),
])
def test_generate_bad_option_values_are_usage_errors(tmp_path, text, args, phrase):
    model = tmp_path / "m.ohr"
    assert run("train", text, "-o", model, *SMALL).exit_code == 0
    r = run("generate", model, *args)
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    assert phrase in r.stderr and "Traceback" not in r.stderr


def test_resume_compares_resolved_options_not_spellings(tmp_path, text):
    model = tmp_path / "m.ohr"
    assert run("train", text, "-o", model, "--quiet").exit_code == 0  # default 1 x 8x8x32
    r = run("train", text, "-o", tmp_path / "r.ohr", "--quiet", "--resume", model, "--epochs", "2",
            "--hidden", "8x8x32", "--layers", "1", "--codec", "bytes", "--up-radius", "2")
    assert r.exit_code == 0, r.stderr
    assert_user_error(run("train", text, "-o", tmp_path / "r.ohr", "--resume", model, "--layers", "3"), "--layers")
    assert_user_error(run("train", text, "-o", tmp_path / "r.ohr", "--resume", model, "--byte-layout", "nibbles"),
                      "--byte-layout")


def test_resume_compares_an_explicit_seed_zero_included(tmp_path, text):
    # --seed 0 is the default's value, yet given it is compared with the model's seed like
    # any option; not given, the model's seed is used; an equal one is accepted.
    model = tmp_path / "m.ohr"
    assert run("train", text, "-o", model, *SMALL, "--seed", "7").exit_code == 0
    for seed in ("0", "8"):
        assert_user_error(run("train", text, "-o", tmp_path / "r.ohr", "--resume", model, "--epochs", "2",
                              "--seed", seed), f"--seed={seed}")
        assert not (tmp_path / "r.ohr").exists()
    for given in ([], ["--seed", "7"], ["-s", "7"]):
        r = run("train", text, "-o", tmp_path / "r.ohr", "--resume", model, "--epochs", "2", "--quiet", *given)
        assert r.exit_code == 0, (given, r.stderr)
        assert ohr.read_header(tmp_path / "r.ohr")["training"]["seed"] == 7
    # Without --resume, no --seed still means 0, and it is what the record says.
    assert run("train", text, "-o", tmp_path / "z.ohr", *SMALL).exit_code == 0
    assert run("train", text, "-o", tmp_path / "z0.ohr", *SMALL, "--seed", "0").exit_code == 0
    assert ohr.read_header(tmp_path / "z.ohr")["training"]["seed"] == 0
    assert bytes(neo.Hierarchy(file_name=str(tmp_path / "z.ohr")).serialize_weights_to_buffer()) == \
        bytes(neo.Hierarchy(file_name=str(tmp_path / "z0.ohr")).serialize_weights_to_buffer())


def test_init_takes_codec_and_architecture_from_the_model(tmp_path, text):
    a = tmp_path / "a.ohr"
    assert run("train", text, "-o", a, "--codec", "chars", "--hidden", "3x3x16", "--layers", "1", "--quiet").exit_code == 0
    b = tmp_path / "b.ohr"
    r = run("train", text, "-o", b, "--init", a, "--quiet")  # no codec or size options needed
    assert r.exit_code == 0, r.stderr
    assert ohr.read_header(b)["codec"] == ohr.read_header(a)["codec"]
    hb = neo.Hierarchy(file_name=str(b))
    assert hb.get_num_layers() == 1 and hb.get_hidden_size(0) == (3, 3, 16)
    assert_user_error(run("train", text, "-o", tmp_path / "c.ohr", "--init", a, "--hidden", "4x4x16"), "--hidden")
    assert_user_error(run("train", text, "-o", tmp_path / "c.ohr", "--init", a, "--codec", "bytes"), "--codec")


def test_resume_of_a_streamed_stdin_run_checks_the_data_it_had_read(tmp_path):
    ck = tmp_path / "ck"
    r = run("train", "-", "-o", tmp_path / "m.ohr", *SMALL, "--checkpoint-dir", ck, "--checkpoint-every", "100",
            input=TEXT)
    assert r.exit_code == 0, r.stderr
    mid = sorted(ck.glob("*.ohr"))[0]
    t = ohr.read_header(mid)["training"]
    assert t["data_sha256"] is None and t["data_prefix"]["bytes"] > 0
    other = TEXT.replace(b"cat", b"cow")
    r = run("train", "-", "-o", tmp_path / "x.ohr", "--quiet", "--resume", mid, input=other)
    assert r.exit_code == 1 and "data differs" in r.stderr
    r = run("train", "-", "-o", tmp_path / "y.ohr", "--quiet", "--resume", mid, input=TEXT)
    assert r.exit_code == 0, r.stderr
    assert sections(tmp_path / "y.ohr") == sections(tmp_path / "m.ohr")


def test_csv_columns_selects_what_is_modelled(tmp_path):
    data = tmp_path / "d.csv"
    rows = ["year,value,noise"] + [f"{1900 + i},{(i * 7) % 20},{i % 3}" for i in range(60)]
    data.write_text("\n".join(rows) + "\n")
    model = tmp_path / "m.ohr"
    r = run("train", data, "-o", model, "--codec", "csv", "--csv-columns", "value", "--bins", "20", *SMALL)
    assert r.exit_code == 0, r.stderr
    codec = ohr.read_header(model)["codec"]
    assert codec["use"] == [1] and codec["columns"] == ["value"] and codec["lows"] == [0.0]
    assert neo.Hierarchy(file_name=str(model)).get_io_size(0) == (1, 1, 20)
    full = run("generate", model, "--prompt", "1990,3,0\n1991,10,1\n", "--length", "4")
    assert full.exit_code == 0, full.stderr
    assert len(full.stdout.strip().splitlines()) == 4 and all("," not in l for l in full.stdout.splitlines())
    only = run("generate", model, "--prompt", "3\n10\n", "--length", "4")
    assert only.exit_code == 0 and only.stdout == full.stdout  # same values, either row form
    r = run("train", data, "-o", tmp_path / "n.ohr", "--codec", "csv", "--csv-columns", "3,1", *SMALL)
    assert r.exit_code == 0 and ohr.read_header(tmp_path / "n.ohr")["codec"]["use"] == [2, 0]
    assert_user_error(run("train", data, "-o", tmp_path / "x.ohr", "--codec", "csv", "--csv-columns", "speed"),
                      "no column named 'speed'")
    assert_user_error(run("train", data, "-o", tmp_path / "x.ohr", "--codec", "csv", "--csv-columns", "9"),
                      "column 9 does not exist")


@pytest.mark.parametrize("args, phrase", [
    (["--codec", "json"], "--codec must be one of"),
    (["--byte-layout", "bits"], "--byte-layout must be nibbles or byte"),
    (["--codec", "csv", "--bins", "0"], "--bins must be >= 2"),
    (["--codec", "words", "--max-vocab", "0"], "--max-vocab must be >= 2"),
    (["--codec", "chars", "--max-vocab", "-5"], "--max-vocab must be >= 1"),
])
def test_bad_codec_option_values_are_usage_errors_before_training(tmp_path, text, args, phrase):
    model = tmp_path / "m.ohr"
    assert_user_error(run("train", text, "-o", model, *args), phrase, code=2)
    assert not model.exists()


def test_version_and_clear_messages_for_common_mistakes(tmp_path, text):
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"neocli {neo.__version__}"
    model = tmp_path / "m.ohr"
    assert run("train", text, "-o", model, *SMALL).exit_code == 0
    assert_user_error(run("generate", model, "--prompt-file", tmp_path / "nope.txt"), "prompt file")
    assert_user_error(run("train", "-o", tmp_path / "r.ohr", "--resume", model), "give it again", code=2)
    e = neo.ImageEncoder((2, 2, 4), [neo.ImageVisibleLayerDesc((4, 4, 1), 1)])
    e.save_to_file(str(tmp_path / "img.ohr"))
    assert_user_error(run("generate", tmp_path / "img.ohr"), "is an image encoder")
