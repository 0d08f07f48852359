"""CLI: --param, --dry-run, validation with early stopping, eval --learn, generation controls."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import neocli as neo
from neocli import ohr, training
from neocli.cli.app import app
import neocli.cli.train  # noqa: F401  (registers the command)
import neocli.cli.generate  # noqa: F401
import neocli.cli.eval  # noqa: F401

TEXT = ("the cat sat on the mat. the dog sat on the log. a bird sat on the wire.\n" * 6).encode()
SMALL = ["--hidden", "3x3x16", "--quiet"]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_bytes(TEXT)
    return p


def test_param_is_applied_stored_and_validated(tmp_path, text):
    m = tmp_path / "m.ohr"
    r = run("train", text, "-o", m, *SMALL, "--param", "ios.decoder.scale=2", "--param", "layers.encoder.lr=0.25")
    assert r.exit_code == 0, r.stderr
    h = neo.Hierarchy(file_name=str(m))
    assert h.params.ios[0].decoder.scale == 2.0 and h.params.layers[0].encoder.lr == 0.25
    assert ohr.read_header(m)["training"]["options"]["params"] == {"ios.decoder.scale": 2.0,
                                                                  "layers.encoder.lr": 0.25}
    # Without --param the training default is set (not pyaogmaneo's 8).
    run("train", text, "-o", tmp_path / "d.ohr", *SMALL)
    assert neo.Hierarchy(file_name=str(tmp_path / "d.ohr")).params.ios[0].decoder.scale == \
        training.DEFAULT_PARAMS["ios.decoder.scale"]
    for bad in ("layers.encoder.lr=2", "nope=1", "layers.encoder.lr"):
        r = run("train", text, "-o", tmp_path / "x.ohr", *SMALL, "--param", bad)
        assert r.exit_code == 2 and "--param" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.ohr").exists()


def test_dry_run_reports_and_writes_nothing(tmp_path, text):
    m = tmp_path / "m.ohr"
    r = run("train", text, "-o", m, "--dry-run", "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["layers"] == [list(training.DEFAULT_HIDDEN)] * training.DEFAULT_LAYERS
    assert d["io_size"] == [1, 1, 256] and d["weights_bytes"] > 0 and d["expected_symbols_per_s"] > 0
    assert d["data_bytes"] == len(TEXT) and d["expected_seconds"] > 0
    assert not m.exists()
    r = run("train", text, "-o", m, "--dry-run", *SMALL)
    assert r.exit_code == 0 and "symbols/s" in r.stdout and "weights" in r.stdout and not m.exists()


def test_dry_run_speed_is_not_ruled_by_first_time_costs_or_one_stall(tmp_path, text, monkeypatch):
    # On a virtual clock: a step takes 1 ms, the first one 50 ms more (threads starting,
    # first touches), and one step early on stalls for 300 ms (a trial of the thread tuner
    # descheduled under load). A real run of minutes amortises both; the probe must too,
    # within 30 % of the steady 1,000 symbols/s (a window of 300 steps read half that).
    import types

    clock = [0.0]
    steps = [0]
    real_step = neo.Hierarchy.step

    def step(self, *args, **kwargs):
        real_step(self, *args, **kwargs)
        clock[0] += 0.001 + (0.05 if steps[0] == 0 else 0.0) + (0.3 if steps[0] == 250 else 0.0)
        steps[0] += 1

    monkeypatch.setattr(neo.Hierarchy, "step", step)
    monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    opts = training.TrainOptions(architecture=training.Architecture(hidden="2x2x8"))
    d = training.dry_run([text], opts)
    assert steps[0] > 250  # the stall happened
    assert d["expected_symbols_per_s"] == pytest.approx(1000, rel=0.3)
    assert d["probe_seconds"] >= training.PROBE_SECONDS and d["probe_steps"] >= 50


def test_early_stopping_keeps_the_best_model(tmp_path, text):
    valid = tmp_path / "valid.txt"
    valid.write_bytes(b"zq xv kj wz qx zv jq xk " * 8)   # unlike the training text: gets worse
    m = tmp_path / "m.ohr"
    r = run("train", text, "-o", m, *SMALL, "--epochs", "6", "--valid", valid, "--valid-every", "150",
            "--patience", "2", "--json")
    assert r.exit_code == 0, r.stderr
    t = ohr.read_header(m)["training"]
    vals = t["validation"]
    best = min(vals, key=lambda v: v["bits_per_symbol"])
    assert t["best"] == best
    assert t["steps"] == best["steps"]                    # -o holds the best model, not the last
    # the best model scores on the validation data what the run measured
    ev = json.loads(run("eval", m, valid, "--json").stdout)
    assert ev["bits_per_symbol"] == pytest.approx(best["bits_per_symbol"], rel=1e-9)
    if "stopped_early" in t:
        assert len(vals) < 6 * len(TEXT) // 150 + 6
        after = [v for v in vals if v["steps"] > best["steps"]]
        assert len(after) == 2                            # patience 2: two validations without a new best
    assert len(t["metrics"]) >= 1


@pytest.mark.parametrize("every, cut", [("150", False), ("100", True)])   # stopped at an epoch's end / inside one
def test_early_stopping_says_so_and_the_record_describes_the_model_kept(tmp_path, text, every, cut):
    valid = tmp_path / "valid.txt"
    valid.write_bytes(b"zq xv kj wz qx zv jq xk " * 8)
    m = tmp_path / "m.ohr"
    args = ("train", text, "-o", m, *SMALL[:-1], "--epochs", "6", "--valid", valid, "--valid-every", every,
            "--patience", "2")
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    t = ohr.read_header(m)["training"]
    stop, best, ran = t["stopped_early"], t["best"], t["run"]
    assert stop["validations_without_improvement"] == 2 and stop["steps"] == ran["steps"] > best["steps"]
    assert f"stopped early at step {stop['steps']} (epoch {stop['epoch']} of 6): 2 validations without " \
           "improvement" in r.stderr
    assert f"the best model, step {best['steps']}, validation bits/symbol {best['bits_per_symbol']:.3f} " \
           f"(training ran to step {stop['steps']})" in r.stderr
    assert f"weights, {stop['steps']} steps)" not in r.stderr   # the old message named the last step
    # The record is the kept model's: its steps, and metrics rows that add up to them.
    assert t["steps"] == best["steps"] and t["complete"] is True
    assert sum(row["symbols"] for row in t["metrics"]) == best["steps"]
    assert t["epoch"] == best["steps"] // len(TEXT)           # epochs completed by the kept model
    assert sum(row["symbols"] for row in ran["metrics"]) == stop["steps"]
    assert ran["epochs_completed"] == stop["steps"] // len(TEXT)
    assert ran["metrics"][-1].get("partial", False) is (stop["steps"] % len(TEXT) != 0) is cut
    shown = run("inspect", m).stdout
    assert f"stopped early at step {stop['steps']:,}, after 2 validations without improvement" in shown
    assert f"at step {best['steps']:,}); training ran on to step {stop['steps']:,}" in shown
    j = json.loads(run(*args, "--json", "--force").stdout)
    assert j["steps"] == best["steps"] and j["stopped_early"] == stop and j["run"]["steps"] == stop["steps"]


def test_valid_options_need_valid(tmp_path, text):
    r = run("train", text, "-o", tmp_path / "m.ohr", *SMALL, "--patience", "2")
    assert r.exit_code == 2 and "--valid" in r.stderr


def test_eval_learn_equals_continuing_training(tmp_path, text):
    """Scoring with --learn from a model is the same computation as training on that data
    from that model: same weights, same calibration, same bits."""
    first = tmp_path / "first.txt"
    first.write_bytes(TEXT[:200])
    a = tmp_path / "a.ohr"
    assert run("train", first, "-o", a, *SMALL).exit_code == 0
    learned = tmp_path / "learned.ohr"
    ev = json.loads(run("eval", a, text, "--learn", "--save", learned, "--json").stdout)
    # The same continuation through the library's training loop on the same hierarchy.
    model = training.load_model(a)
    h, codec = model.hierarchy, model.codec
    pred = training.predictive_of(model)
    metrics = training.Metrics()
    h.clear_state()
    for i, b in enumerate(TEXT):
        cis = codec.encode(b)
        if i:
            metrics.add(h, cis, pred, learn=True)
        else:
            pred.observe(cis)
        h.step([cis], True)
    assert ev["bits_per_symbol"] == pytest.approx(metrics.bits_per_symbol, rel=1e-12)
    saved = training.load_model(learned)
    assert bytes(saved.hierarchy.serialize_weights_to_buffer()) == bytes(h.serialize_weights_to_buffer())
    assert saved.header["predictive"] == pred.to_dict()


def test_eval_prints_perplexity_and_bits_per_byte(tmp_path):
    data = tmp_path / "w.txt"
    data.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 5)
    m = tmp_path / "m.ohr"
    assert run("train", data, "-o", m, "--codec", "words", *SMALL).exit_code == 0
    ev = json.loads(run("eval", m, data, "--json").stdout)
    assert ev["perplexity"] == pytest.approx(2 ** ev["bits_per_symbol"])
    assert ev["bits_per_byte"] == pytest.approx(ev["bits_per_symbol"] * ev["scored"] / data.stat().st_size)
    line = run("eval", m, data).stdout
    assert "perplexity" in line and "bits/byte" in line


def test_generate_controls(tmp_path, text):
    m = tmp_path / "m.ohr"
    assert run("train", text, "-o", m, *SMALL, "--epochs", "2").exit_code == 0
    two = run("generate", m, "--prompt", "the", "-n", "30", "-T", "1", "--seed", "2", "--num-samples", "2",
              "--separator", "\\n==\\n")
    assert two.exit_code == 0, two.stderr
    parts = two.stdout_bytes.split(b"\n==\n")
    assert len(parts) == 3 and parts[2] == b"" and all(len(p) == 30 for p in parts[:2])
    assert parts[0] != parts[1]                     # two draws, not one repeated
    greedy = run("generate", m, "--prompt", "the", "-n", "40").stdout_bytes
    assert run("generate", m, "--prompt", "the", "-n", "40", "--top-k", "1", "-T", "1").stdout_bytes == greedy
    stop = greedy[5:7]
    cut = run("generate", m, "--prompt", "the", "-n", "40", "--stop", stop.decode()).stdout_bytes
    assert cut == greedy[:greedy.find(stop) + len(stop)]
    allowed = set(TEXT)
    out = run("generate", m, "-n", "200", "-T", "1.5", "--top-p", "0.9", "--repetition-penalty", "1.5",
              "--seed", "1").stdout_bytes
    assert set(out) <= allowed
    for bad in (["--top-p", "0"], ["--top-k", "-1"], ["--repetition-penalty", "0.5"], ["--num-samples", "0"]):
        r = run("generate", m, "-n", "5", *bad)
        assert r.exit_code == 2 and "Traceback" not in r.stderr


def test_resume_from_a_checkpoint_continues_the_calibration_exactly(tmp_path, text):
    opts = training.TrainOptions(architecture=training.Architecture(hidden="3x3x16"),
                                 checkpoints=training.CheckpointPolicy(directory=str(tmp_path / "ck"),
                                                                       every_steps=200))
    full = training.train([str(text)], opts, output=str(tmp_path / "full.ohr"))
    ckpt = sorted((tmp_path / "ck").glob("ckpt-*.ohr"))[0]
    resumed = training.train([str(text)], training.TrainOptions(architecture=training.Architecture(hidden="3x3x16")),
                             output=str(tmp_path / "res.ohr"), resume=str(ckpt))
    a, b = ohr.read_header(tmp_path / "full.ohr"), ohr.read_header(tmp_path / "res.ohr")
    assert a["predictive"] == b["predictive"] and a["predictive"]["factors"][0]["ids"]
    assert full.metrics[0]["bits_per_symbol"] == pytest.approx(resumed.metrics[0]["bits_per_symbol"], rel=1e-12)


def _arrays(path):
    _, secs = ohr.read_file(path)
    return {(k, n): a.tobytes() for k, v in secs.items() if k in ("state", "weights") for n, a in v.items()}


def test_early_stopped_best_model_is_a_mid_epoch_model_that_resumes_exactly(tmp_path, text):
    # The best model kept inside epoch 1 is recorded as what it is: 0 epochs completed, its
    # position in epoch 1 and the partial metrics (the record a checkpoint at that step has),
    # so --resume continues from there, exactly as from that checkpoint.
    import os
    from neocli import checkpoints
    from neocli.cli import register
    register("checkpoint", "inspect")
    valid = tmp_path / "valid.txt"
    valid.write_bytes(b"zq xv kj wz qx zv jq xk " * 8)
    d = tmp_path / "models"
    d.mkdir()
    m = d / "es.ohr"
    r = run("train", text, "-o", m, *SMALL, "--epochs", "6", "--valid", valid, "--valid-every", "100",
            "--patience", "2")
    assert r.exit_code == 0, r.stderr
    t = ohr.read_header(m)["training"]
    best = t["best"]
    assert t["steps"] == best["steps"] < len(TEXT) and best["epoch"] == 1 and t["complete"] is True
    assert t["epoch"] == 0 and t["position"] > best["steps"] and t["metrics"][-1]["partial"] is True
    assert t["metrics"][-1]["symbols"] == best["steps"]
    # EPOCH in checkpoint list is the epoch it was kept in, as inspect's metrics row "1*".
    assert checkpoints.epoch_of(t) == 1
    rows = {ln.split()[0]: ln.split()[1] for ln in run("checkpoint", "list", d).stdout.splitlines()[1:]}
    assert rows["es.ohr"] == "1"
    assert "    1*" in run("inspect", m).stdout
    # A run without validation checkpointed at the same step holds the same model and position.
    ck, full = tmp_path / "ck", tmp_path / "full.ohr"
    r = run("train", text, "-o", full, *SMALL, "--epochs", "3", "--checkpoint-dir", ck,
            "--checkpoint-every", best["steps"])
    assert r.exit_code == 0, r.stderr
    at = ck / next(n for n in os.listdir(ck) if n.endswith(f"-s{best['steps']:010d}.ohr"))
    assert ohr.read_header(at)["training"]["position"] == t["position"] and _arrays(at) == _arrays(m)
    # Resumed for 3 epochs: where it was, to 3 whole epochs, the weights of the plain run.
    res = tmp_path / "res.ohr"
    r = run("train", text, "-o", res, "--resume", m, "--epochs", "3", "--quiet")
    assert r.exit_code == 0, r.stderr
    rt = ohr.read_header(res)["training"]
    assert rt["steps"] == 3 * len(TEXT) and rt["epoch"] == 3 and rt["position"] == 0
    assert [(row["epoch"], row["symbols"], row.get("partial")) for row in rt["metrics"]] == \
        [(e, len(TEXT), None) for e in (1, 2, 3)]
    assert _arrays(res) == _arrays(full)
    # The previous run's outcome is history, not this model's description.
    assert not {"run", "stopped_early", "best"} & set(rt)
    assert rt["history"][0]["stopped_early"] == t["stopped_early"] and rt["history"][0]["best"] == best
    shown = run("inspect", res).stdout
    assert "stopped early" not in shown and "training ran on" not in shown and "1*" not in shown
    assert checkpoints.epoch_of(rt) == 3
    # Such a model from before kept models recorded their position cannot be continued
    # exactly: refused, with the way to start from its weights.
    header, secs = ohr.read_file(str(m))
    del header["training"]["partial"]
    header["training"]["position"] = 0
    old = tmp_path / "old.ohr"
    old.write_bytes(ohr.encode(header, secs))
    r = run("train", text, "-o", tmp_path / "x.ohr", "--resume", old, "--epochs", "3")
    assert r.exit_code == 1 and "--resume: " in r.stderr and "kept inside epoch 1" in r.stderr, r.stderr
    assert "with --init" in r.stderr and not (tmp_path / "x.ohr").exists()


def test_best_model_kept_at_an_epoch_end_counts_that_epoch(tmp_path, text):
    # Validation after each epoch (no --valid-every): the model kept after epoch k has
    # completed k epochs, with k whole metrics rows.
    valid = tmp_path / "valid.txt"
    valid.write_bytes(b"zq xv kj wz qx zv jq xk " * 8)
    m = tmp_path / "m.ohr"
    r = run("train", text, "-o", m, *SMALL, "--epochs", "4", "--valid", valid, "--patience", "2")
    assert r.exit_code == 0, r.stderr
    t = ohr.read_header(m)["training"]
    best = t["best"]
    assert best["steps"] < max(v["steps"] for v in t["validation"])   # the best is not the last model
    assert t["steps"] == best["steps"] == best["epoch"] * len(TEXT)
    assert t["epoch"] == best["epoch"] and t.get("position", 0) == 0 and "partial" not in t
    assert [row["epoch"] for row in t["metrics"]] == list(range(1, best["epoch"] + 1))
    assert not any(row.get("partial") for row in t["metrics"])


def test_early_stop_on_an_open_pipe_does_not_wait_for_more_input(tmp_path):
    # Stopping early must not read on to learn whether the epoch was cut short: on a live
    # stdin that read waits for data that may never come. The data sent ends exactly at the
    # step the run stops at, and stdin stays open.
    import os
    import subprocess
    import sys
    from pathlib import Path
    data = tmp_path / "d.txt"
    data.write_bytes(TEXT * 20)
    valid = tmp_path / "valid.txt"
    valid.write_bytes(b"zq xv kj wz qx zv jq xk " * 8)
    opts = [*SMALL, "--valid", valid, "--valid-every", "100", "--patience", "1"]
    assert run("train", data, "-o", tmp_path / "f.ohr", *opts).exit_code == 0
    stop = ohr.read_header(tmp_path / "f.ohr")["training"]["stopped_early"]["steps"]
    assert stop < len(TEXT * 20)
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "p.ohr"
    p = subprocess.Popen([sys.executable, "-m", "neocli", "train", "-", "-o", str(out), *map(str, opts)],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        p.stdin.write((TEXT * 20)[:stop])
        p.stdin.flush()
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("train kept waiting on stdin after stopping early") from None
        err = p.stderr.read().decode()
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
        p.stderr.close()
    t = ohr.read_header(out)["training"]
    assert t["stopped_early"]["steps"] == stop
    # Its end not seen, the streamed epoch counts as cut short.
    assert t["run"]["metrics"][-1]["partial"] is True and t["run"]["epochs_completed"] == 0
