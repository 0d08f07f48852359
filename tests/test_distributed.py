"""neocli.distributed on a real Dask LocalCluster (2 worker processes, one per module).

Everything is compared with in-process (serial) runs: results must never depend on
where a task ran, on how many workers there were, or on a worker dying mid-run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neocli as neo
from neocli import distributed as D
from neocli.codecs import make_codec

distributed = pytest.importorskip("distributed", reason="the dask extra (pip install 'neocli[dask]') is not installed")
import cloudpickle  # noqa: E402  (installed with distributed)

# Workers import neocli from PYTHONPATH but not this test module: ship its helpers by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[1]
NOVEL = (ROOT / "datasets" / "pride_and_prejudice_vol1.txt").read_bytes()


@pytest.fixture(scope="module")
def engine():
    eng = D.DaskEngine(workers=2)
    yield eng
    eng.close()


def _init_model(io_size=(1, 2, 16), hidden=(3, 3, 16), layers=2, seed=0) -> bytes:
    neo.set_global_state(seed)
    h = neo.Hierarchy([neo.IODesc(io_size, neo.prediction)], [neo.LayerDesc(hidden) for _ in range(layers)])
    return bytes(h.serialize_to_buffer())


def _sections(model: bytes) -> tuple[bytes, bytes, int]:
    """Weights, state and RNG position: everything but the header's timestamps."""
    h = neo.Hierarchy(buffer=model)
    return h.serialize_weights_to_buffer().tobytes(), h.serialize_state_to_buffer().tobytes(), h.get_rng_state()


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    d = tmp_path_factory.mktemp("dp")
    a, b = d / "a.txt", d / "b.txt"
    a.write_bytes(NOVEL[:700])
    b.write_bytes(NOVEL[9000:9500])
    return D.encode_stream([a, b], make_codec("bytes"), "file")


def _sequential(init: bytes, st: D.EncodedStream, epochs: int) -> bytes:
    h = neo.Hierarchy(buffer=init)
    for _ in range(epochs):
        for j in range(st.steps):
            if st.clear[j]:
                h.clear_state()
            h.step([st.cis[j]], True)
        if st.clear[st.steps]:
            h.clear_state()
    return bytes(h.serialize_to_buffer())


def test_encode_stream_marks_the_clears_of_plain_training(stream, tmp_path):
    assert stream.steps == 1200
    assert list(np.nonzero(stream.clear)[0]) == [0, 700]  # each file start
    p = tmp_path / "p.txt"
    p.write_bytes(b"ab\n\ncd\n")
    st = D.encode_stream([p], make_codec("bytes"), "blank")
    assert st.steps == 7 and list(np.nonzero(st.clear)[0]) == [0, 3]  # the blank line starts a new context
    assert not D.encode_stream([p], make_codec("bytes"), "none").clear.any()


def test_one_shard_is_plain_sequential_training(stream, engine):
    init = _init_model()
    ref = _sections(_sequential(init, stream, epochs=2))
    r = D.train_data_parallel(stream, init, shards=1, sync_every=300, epochs=2, engine=engine)
    assert r.rounds == 8  # 2400 steps in rounds of 300: the model crossed engines 8 times
    assert _sections(r.model) == ref


def test_data_parallel_does_not_depend_on_the_engine(stream, engine):
    init = _init_model()
    for rounding, seed in (("even", 0), ("stochastic", 5)):
        serial = D.train_data_parallel(stream, init, 2, 300, rounding=rounding, seed=seed)
        dask = D.train_data_parallel(stream, init, 2, 300, engine=engine, rounding=rounding, seed=seed)
        assert _sections(serial.model) == _sections(dask.model), rounding
    other = D.train_data_parallel(stream, init, 2, 300, rounding="stochastic", seed=6)
    assert _sections(other.model)[0] != _sections(dask.model)[0]


class _DieOnce:
    """A task function that kills its worker process the first time any worker runs it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, *args):
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return D.train_span(*args)
        os.close(fd)
        os._exit(1)


class _KillingEngine:
    """Runs the second round of a data-parallel run with a task that kills its worker."""

    def __init__(self, inner: D.DaskEngine, marker: str) -> None:
        self.inner, self.marker, self.calls = inner, marker, 0

    def map(self, fn, args, keys, progress=None):
        self.calls += 1
        return self.inner.map(_DieOnce(self.marker) if self.calls == 2 else fn, args, keys, progress)


def test_a_worker_dying_mid_run_changes_nothing(stream, engine, tmp_path):
    init = _init_model()
    want = D.train_data_parallel(stream, init, 2, 300)
    marker = tmp_path / "died"
    eng = _KillingEngine(engine, str(marker))
    got = D.train_data_parallel(stream, init, 2, 300, engine=eng)
    assert marker.exists()  # a worker really died in round 2
    assert _sections(got.model) == _sections(want.model)


# --------------------------------------------------------------------------- the commands
from typer.testing import CliRunner  # noqa: E402

from neocli import training  # noqa: E402
from neocli.cli.app import app  # noqa: E402
import neocli.cli  # noqa: E402

neocli.cli.register()  # every command on the shared app

SMALL = ["--hidden", "3x3x16", "--quiet"]


def cli(*args):
    """Run the CLI in-process; stdout and stderr apart."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    out = {}
    for name, (lo, hi) in {"a": (0, 1200), "b": (3000, 3600), "c": (7000, 7900), "valid": (12000, 13000)}.items():
        out[name] = d / f"{name}.txt"
        out[name].write_bytes(NOVEL[lo:hi])
    out["empty"] = d / "empty.txt"
    out["empty"].write_bytes(b"")
    return out


def test_train_many_equals_serial_runs_and_failures_lose_nothing(files, engine, tmp_path):
    opts = [*SMALL, "--epochs", "2", "--layers", "1"]
    inputs = [files["a"], files["empty"], tmp_path / "missing.txt", files["b"], files["c"]]
    r = cli("train-many", *inputs, "--out-dir", tmp_path / "out", "--scheduler", engine.client.scheduler.address, *opts)
    assert r.exit_code == 1
    assert "empty.txt: the data is empty" in r.stderr and "missing.txt: No such file" in r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a.ohr", "b.ohr", "c.ohr"]
    for name in ("a", "b", "c"):
        assert cli("train", files[name], "-o", tmp_path / f"{name}.ohr", *opts).exit_code == 0
        want = _sections((tmp_path / f"{name}.ohr").read_bytes())
        assert _sections((tmp_path / "out" / f"{name}.ohr").read_bytes()) == want, name


def test_train_many_in_process_matches_the_cluster(files, engine):
    opts = training.TrainOptions(architecture=training.Architecture(hidden="3x3x16", layers=1))
    serial = D.train_many([files["a"], files["b"]], opts)
    dask = D.train_many([files["a"], files["b"]], opts, engine)
    assert [_sections(o.value) for o in serial] == [_sections(o.value) for o in dask]


def test_train_with_one_worker_equals_plain_train(files, engine, tmp_path):
    """--workers 1: one shard, here on the module's cluster (a LocalCluster as --workers starts)."""
    data = [files["b"], files["a"]]
    assert cli("train", *data, "-o", tmp_path / "plain.ohr", *SMALL, "--epochs", "2").exit_code == 0
    r = cli("train", *data, "-o", tmp_path / "dp.ohr", *SMALL, "--epochs", "2", "--workers", 1, "--sync-every", 1200,
            "--scheduler", engine.client.scheduler.address)
    assert r.exit_code == 0, r.stderr
    assert _sections((tmp_path / "dp.ohr").read_bytes()) == _sections((tmp_path / "plain.ohr").read_bytes())
    header = training.load_model(tmp_path / "dp.ohr").header
    assert header["training"]["data_parallel"]["shards"] == 1 and header["training"]["steps"] == 3600


def test_data_parallel_reads_compressed_files_as_plain_train_does(files, engine, tmp_path):
    """Decompressed by extension (a chars vocabulary fitted on the decompressed text too),
    and --no-decompress accepted: the raw bytes, as plain train reads them."""
    import bz2
    import gzip

    a, b = tmp_path / "a.txt.gz", tmp_path / "b.txt.bz2"
    a.write_bytes(gzip.compress(Path(files["a"]).read_bytes()))
    b.write_bytes(bz2.compress(Path(files["b"]).read_bytes()))
    where = ("--scheduler", engine.client.scheduler.address)
    for codec in ("bytes", "chars"):
        assert cli("train", files["a"], files["b"], "-o", tmp_path / "plain.ohr", *SMALL, "--codec", codec).exit_code == 0
        r = cli("train", a, b, "-o", tmp_path / "dp.ohr", *SMALL, "--codec", codec, "--workers", 1, *where)
        assert r.exit_code == 0, r.stderr
        assert _sections((tmp_path / "dp.ohr").read_bytes()) == _sections((tmp_path / "plain.ohr").read_bytes())
        assert training.load_model(tmp_path / "dp.ohr").codec.to_dict() == \
            training.load_model(tmp_path / "plain.ohr").codec.to_dict()
    assert cli("train", a, "-o", tmp_path / "raw.ohr", *SMALL, "--no-decompress").exit_code == 0
    r = cli("train", a, "-o", tmp_path / "dpraw.ohr", *SMALL, "--no-decompress", "--workers", 1, *where)
    assert r.exit_code == 0, r.stderr
    assert _sections((tmp_path / "dpraw.ohr").read_bytes()) == _sections((tmp_path / "raw.ohr").read_bytes())
    assert training.load_model(tmp_path / "dpraw.ohr").record["steps"] == a.stat().st_size


def test_sweep_rows_equal_separate_train_and_eval(files, engine, tmp_path):
    r = cli("sweep", files["a"], "--valid", files["valid"], "--grid", "layers=1,2", "--grid", "byte-layout=nibbles",
            "--hidden", "3x3x16", "--scheduler", engine.client.scheduler.address, "--json", "--quiet")
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["options"] for row in sorted(rows, key=lambda x: x["options"]["layers"])] == \
        [{"layers": "1", "byte-layout": "nibbles"}, {"layers": "2", "byte-layout": "nibbles"}]
    assert rows[0]["bits_per_symbol"] <= rows[1]["bits_per_symbol"]  # best first
    for row in rows:
        m = tmp_path / f"m{row['options']['layers']}.ohr"
        assert cli("train", files["a"], "-o", m, "--hidden", "3x3x16", "--layers", row["options"]["layers"],
                   "--byte-layout", "nibbles", "--quiet").exit_code == 0
        ev = json.loads(cli("eval", m, files["valid"], "--json").stdout)
        assert row["bits_per_symbol"] == ev["bits_per_symbol"]


def test_a_vocabulary_codec_is_fitted_once_across_shards(files, engine, tmp_path):
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    first.write_text("abcabc abc " * 40)
    second.write_text("xyz xyzzy " * 40)
    data = [first, second]
    whole = training.fit_codec(data, training.CodecOptions(kind="chars"))
    assert D.fit_codec([D.Source.read(p) for p in data], training.CodecOptions(kind="chars")).to_dict() == whole.to_dict()
    alone = training.fit_codec([first], training.CodecOptions(kind="chars"))
    assert alone.to_dict() != whole.to_dict()  # what a per-shard fit would give the first shard
    r = cli("train", *data, "-o", tmp_path / "dp.ohr", "--codec", "chars", *SMALL, "--workers", 2,
            "--sync-every", 200, "--scheduler", engine.client.scheduler.address)
    assert r.exit_code == 0, r.stderr
    assert training.load_model(tmp_path / "dp.ohr").codec.to_dict() == whole.to_dict()


@pytest.mark.parametrize("args,phrase", [
    (["train-many", "x.txt", "--out-dir", "o", "--workers", 2, "--scheduler", "tcp://127.0.0.1:1"], "cannot be used together"),
    (["train", "x.txt", "-o", "m.ohr", "--sync-every", 100], "need --workers K"),
    (["train", "x.txt", "-o", "m.ohr", "--workers", 2, "--merge", "median"], "--merge must be"),
    (["train", "x.txt", "-o", "m.ohr", "--workers", 2, "--resume", "m.ohr"], "--resume is not supported"),
    (["sweep", "x.txt", "--valid", "y.txt", "--grid", "colour=red,blue"], "grid key 'colour'"),
    (["sweep", "x.txt", "--valid", "y.txt", "--grid", "layers"], "KEY=V1,V2"),
])
def test_usage_errors(args, phrase, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli(*args)
    assert r.exit_code == 2 and phrase in r.stderr and "Traceback" not in r.stderr


def _bits(model: bytes, codec, valid) -> float:
    return training.evaluate(training.TrainedModel(neo.Hierarchy(buffer=model), codec), [valid]).bits_per_symbol


@pytest.mark.slow
def test_two_shards_synced_every_5000_steps_beat_one_shard_alone(engine, tmp_path):
    """On 40 kB: K=2 (20 kB each, averaged every 5,000 steps) against a model that saw one 20 kB shard."""
    train, half, valid = tmp_path / "train.txt", tmp_path / "half.txt", tmp_path / "valid.txt"
    train.write_bytes(NOVEL[:40000])
    half.write_bytes(NOVEL[20000:40000])
    valid.write_bytes(NOVEL[40000:50000])
    opts = training.TrainOptions(architecture=training.Architecture(layers=1))
    codec = training.fit_codec([train], opts.codec)
    init = bytes(training.build_model(codec, opts).serialize_to_buffer())
    two = D.train_data_parallel(D.encode_stream([train], codec), init, 2, 5000, engine=engine)
    assert two.rounds == 4
    alone = D.train_data_parallel(D.encode_stream([half], codec), init, 1, 20000, engine=engine)
    b2, b1 = _bits(two.model, codec, valid), _bits(alone.model, codec, valid)
    # Measured at the defaults (1 x 8x8x32, one byte column, calibrated bits): 3.467 against 3.491;
    # deterministic, so any regression of the averaging shows here.
    assert b2 < b1, (b2, b1)


def test_eval_many_files_equals_one_eval_per_file(files, engine, tmp_path):
    m = tmp_path / "m.ohr"
    assert cli("train", files["a"], "-o", m, *SMALL, "--layers", "1").exit_code == 0
    r = cli("eval", m, files["b"], files["c"], tmp_path / "missing.txt", "--json",
            "--scheduler", engine.client.scheduler.address)
    assert r.exit_code == 1
    rows = json.loads(r.stdout)["files"]
    assert "No such file" in rows[2]["error"]
    for row, name in zip(rows, ("b", "c")):
        one = json.loads(cli("eval", m, files[name], "--json").stdout)
        assert {k: row[k] for k in ("bits_per_symbol", "accuracy", "symbols")} == \
            {k: one[k] for k in ("bits_per_symbol", "accuracy", "symbols")}


def test_the_base_install_does_not_import_dask():
    code = ("import sys, neocli, neocli.distributed, neocli.merging, neocli.cli; neocli.cli.register(); "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def test_without_dask_workers_say_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(neo.NeoError, match=r"pip install 'neocli\[dask\]'"):
        D.open_engine(workers=2)
    (tmp_path / "a.txt").write_bytes(b"abc")
    r = cli("train-many", tmp_path / "a.txt", "--out-dir", tmp_path / "o", "--workers", 2)
    assert r.exit_code == 1 and "neocli[dask]" in r.stderr


# --------------------------------------------------------------------------- many streams: detect and score
@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    """Three timestamped two-column metric streams (one with a spike), one with a bad row."""
    d = tmp_path_factory.mktemp("metrics")
    rng = np.random.default_rng(7)
    out = {}
    for k in range(3):
        lines = ["time,cpu,mem"]
        for i in range(240):
            cpu = 50 + 10 * np.sin(i / 15 + k) + rng.normal() + (45 if k == 1 and i == 200 else 0)
            lines.append(f"2024-03-0{1 + i // 96}T{i // 4 % 24:02d}:{i % 4 * 15:02d}:00,{cpu:.3f},{20 + k + rng.normal():.3f}")
        out[f"s{k}"] = d / f"s{k}.csv"
        out[f"s{k}"].write_text("\n".join(lines) + "\n")
    out["bad"] = d / "bad.csv"
    out["bad"].write_text("time,cpu,mem\n2024-03-01T00:00:00,1,2\n2024-03-01T00:15:00,oops,3\n")
    return out


DETECT = ["--columns", "cpu,mem", "--time-column", "time", "--on-bad-row", "error", "--quiet"]


def test_detect_many_equals_one_detect_per_file_and_failures_lose_nothing(metrics, engine, tmp_path):
    inputs = [metrics["s0"], metrics["bad"], tmp_path / "missing.csv", metrics["s1"], metrics["s2"]]
    r = cli("detect", *inputs, "--out-dir", tmp_path / "out", "--scheduler", engine.client.scheduler.address,
            *DETECT[:-1])
    assert r.exit_code == 1
    assert "bad.csv: line 3: 'oops' is not a number" in r.stderr and "missing.csv: No such file" in r.stderr
    assert "3 output(s) written" in r.stderr and "2 failed" in r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["s0.csv", "s1.csv", "s2.csv"]
    for name in ("s0", "s1", "s2"):
        one = tmp_path / f"{name}-alone.csv"
        assert cli("detect", metrics[name], "-o", one, *DETECT).exit_code == 0
        assert (tmp_path / "out" / f"{name}.csv").read_bytes() == one.read_bytes(), name
    rows = (tmp_path / "out" / "s1.csv").read_text().splitlines()
    assert len(rows) == 241 and rows[0].endswith("raw_score,anomaly_score")


def test_score_many_equals_one_score_per_file(files, engine, tmp_path):
    m = tmp_path / "m.ohr"
    assert cli("train", files["a"], "-o", m, *SMALL, "--layers", "1").exit_code == 0
    opts = ["--learn", "--format", "jsonl", "--per", "line"]
    r = cli("score", m, files["b"], tmp_path / "missing.txt", files["c"], "--out-dir", tmp_path / "out",
            "--scheduler", engine.client.scheduler.address, *opts)
    assert r.exit_code == 1 and "missing.txt: No such file" in r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["b.jsonl", "c.jsonl"]
    for name in ("b", "c"):
        one = tmp_path / f"{name}-alone.jsonl"
        assert cli("score", m, files[name], "-o", one, *opts).exit_code == 0
        assert (tmp_path / "out" / f"{name}.jsonl").read_bytes() == one.read_bytes(), name
    # Each file starts from the saved model: learning on b does not carry over to c.
    together = cli("score", m, files["b"], files["c"], *opts).stdout
    assert together != (tmp_path / "out" / "b.jsonl").read_text() + (tmp_path / "out" / "c.jsonl").read_text()


def test_many_streams_serial_engine_equals_the_cluster(metrics, files, engine, tmp_path):
    job = D.DetectJob(("cpu", "mem"), "time", seed=3)
    seen = []
    serial = D.detect_many([metrics["s0"], metrics["s1"]], job, progress=lambda d, t, o: seen.append((d, t, o.ok)))
    dask = D.detect_many([metrics["s0"], metrics["s1"]], job, engine)
    assert seen == [(1, 2, True), (2, 2, True)]
    assert [o.value for o in serial] == [o.value for o in dask] and serial[0].value["rows"] == 240
    m = tmp_path / "m.ohr"
    assert cli("train", files["a"], "-o", m, *SMALL, "--layers", "1").exit_code == 0
    sjob = D.ScoreJob(m.read_bytes(), per="record", fmt="csv", learn=False)
    assert [o.value for o in D.score_many([files["b"], files["c"]], sjob)] == \
        [o.value for o in D.score_many([files["b"], files["c"]], sjob, engine)]


@pytest.mark.parametrize("args,phrase", [
    (["detect", "a.csv", "b.csv", "--columns", "x"], "need --out-dir"),
    (["detect", "a.csv", "--columns", "x", "--workers", 2], "need --out-dir"),
    (["detect", "a.csv", "b.csv", "--columns", "x", "-d", "o", "-o", "x.csv"], "--output cannot be combined"),
    (["detect", "a.csv", "b.csv", "--columns", "x", "-d", "o", "--save", "d.ohr"], "--save keeps one model"),
    (["detect", "a.csv", "b.csv", "--columns", "x", "-d", "o", "--model", "d.ohr"], "--model continues one"),
    (["detect", "a.csv", "-", "--columns", "x", "-d", "o"], "not stdin"),
    (["detect", "x/a.csv", "y/a.csv", "--columns", "x", "-d", "o"], "several files would write a.csv"),
    (["detect", "a.csv", "--columns", "x", "-d", "o", "--workers", 2, "--scheduler", "tcp://127.0.0.1:1"],
     "cannot be used together"),
    (["score", "m.ohr", "a.txt", "--workers", 2], "need --out-dir"),
    (["score", "m.ohr", "a.txt", "-d", "o", "-o", "x.tsv"], "--output cannot be combined"),
    (["score", "m.ohr", "a.txt", "-d", "o", "--save", "n.ohr"], "--save keeps one model"),
])
def test_many_streams_usage_errors(args, phrase, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli(*args)
    assert r.exit_code == 2 and phrase in r.stderr and "Traceback" not in r.stderr


def test_many_streams_write_each_output_as_it_completes(metrics, tmp_path):
    """An interrupted run keeps the files already finished, and a failed write costs only its file."""
    out = tmp_path / "out"

    def stop_after_first(done, total, outcome):
        assert sorted(os.listdir(out)) == ["s0.csv"]  # written before the callback hears of it
        raise KeyboardInterrupt

    job = D.DetectJob(("cpu", "mem"), "time")
    with pytest.raises(KeyboardInterrupt):
        D.detect_many([metrics["s0"], metrics["s1"]], job, out_dir=out, progress=stop_after_first)
    assert sorted(os.listdir(out)) == ["s0.csv"]
    (tmp_path / "out2" / "s1.csv").mkdir(parents=True)  # s1's output cannot be written
    outs = D.detect_many([metrics["s0"], metrics["s1"]], job, out_dir=tmp_path / "out2")
    assert outs[0].ok and not outs[1].ok and "s1.csv" in outs[1].error
    assert (tmp_path / "out2" / "s0.csv").read_bytes() == (out / "s0.csv").read_bytes()


def test_data_parallel_stream_finds_csv_columns_by_name(tmp_path):
    from neocli import training
    from neocli.errors import NeoError

    rows = [(1900 + i, (i * 7) % 20) for i in range(40)]
    data, swapped, other = tmp_path / "d.csv", tmp_path / "s.csv", tmp_path / "o.csv"
    data.write_text("year,value\n" + "".join(f"{y},{v}\n" for y, v in rows))
    swapped.write_text("value,year\n" + "".join(f"{v},{y}\n" for y, v in rows))
    other.write_text("a,b\n1,2\n")
    codec = training.fit_codec([str(data)], training.CodecOptions(kind="csv", csv_columns=("value",)))
    a, b = D.encode_stream([str(data)], codec), D.encode_stream([str(swapped)], codec)
    assert np.array_equal(a.cis, b.cis) and np.array_equal(a.clear, b.clear)
    with pytest.raises(NeoError, match="no column named 'value'"):
        D.encode_stream([str(other)], codec)
