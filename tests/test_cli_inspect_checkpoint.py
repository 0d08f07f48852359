"""CLI tests for ``neocli inspect`` and ``neocli checkpoint ...``.

Models are built with the library directly in ``tmp_path``; commands run through
``typer.testing.CliRunner`` (stdout and stderr are separate), plus real
subprocesses for the console entry and a binary pipe.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import neocli as neo
import neocli.cli.checkpoint  # noqa: F401  (registers the commands on the shared app)
import neocli.cli.inspect  # noqa: F401
from neocli import ohr
from neocli.cli.app import app

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY = "import neocli.cli.inspect, neocli.cli.checkpoint; from neocli.cli.app import app; app()"

runner = CliRunner()


# --------------------------------------------------------------------------
# helpers


def run(*args, input=None):
    """Invoke the shared app with string arguments."""
    return runner.invoke(app, [str(a) for a in args], input=input)


def assert_ok(result):
    """Exit 0, no exception escaped, no traceback anywhere."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr


def assert_error(result, *fragments):
    """Exit 1 with an ``error: ...`` line on stderr mentioning every fragment, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "error:" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for frag in fragments:
        assert frag in result.stderr, (frag, result.stderr)


def training(epoch=1, steps=100, complete=False, position=0, metrics=None):
    """A training record shaped like the one ``neocli train`` writes."""
    if metrics is None:
        metrics = [{"epoch": k + 1, "accuracy": 0.25 + 0.1 * k, "bits_per_symbol": 3.5 - k,
                    "symbols_per_s": 1234.5, "symbols": 1000} for k in range(epoch)]
    return {"epoch": epoch, "epochs": 3, "steps": steps, "position": position, "complete": complete,
            "seed": 7, "data_sha256": "0123456789abcdef" * 4, "data_files": ["tiny.txt"],
            "metrics": metrics, "started_utc": "2024-01-01T00:00:00Z", "updated_utc": "2024-01-01T00:01:00Z",
            "options": {"codec": "bytes"}}


CODEC = {"kind": "bytes", "layout": "nibbles"}


def build(steps=5, hidden=(3, 3, 8)):
    """A small stepped hierarchy with one 2-column prediction IO."""
    h = neo.Hierarchy([neo.IODesc((1, 2, 16), neo.prediction)], [neo.LayerDesc(hidden)])
    for i in range(steps):
        h.step([[i % 16, (3 * i + 1) % 16]])
    return h


def make_model(path, steps=5, hidden=(3, 3, 8), train=None, include_state=True, **extra):
    """Build, step and save a model with codec/training/user metadata; return the hierarchy."""
    h = build(steps, hidden)
    meta = {"codec": CODEC, "training": train if train is not None else training(), "user": {"note": "x"}, **extra}
    h.save_to_file(str(path), meta=meta, include_state=include_state)
    return h


def state_of(path):
    """The raw state and weights bytes of the model at ``path``."""
    h = neo.Hierarchy(file_name=str(path))
    return bytes(h.serialize_state_to_buffer()), bytes(h.serialize_weights_to_buffer())


def data_offset(path):
    """Where the array region of an .ohr file starts."""
    with open(path, "rb") as f:
        prefix = f.read(24)
    return 24 + struct.unpack("<Q", prefix[16:24])[0]


@pytest.fixture
def model(tmp_path):
    """(path, hierarchy) of a trained-looking model."""
    p = tmp_path / "model.ohr"
    h = make_model(p)
    return p, h


# --------------------------------------------------------------------------
# inspect


def test_inspect_report(model):
    path, h = model
    r = run("inspect", path)
    assert_ok(r)
    out = r.stdout
    assert r.stderr == ""
    assert f"{h.get_weights_size():,} bytes" in out
    assert f"{h.get_state_size():,} bytes" in out
    assert f"{h.get_size():,} bytes" in out
    assert "state section  present" in out
    assert "prediction" in out and "1x2x16" in out and "3x3x8" in out
    assert "bytes (1, 2, 16)" in out  # codec describe()
    assert "1 of 3 completed" in out and "resumable at epoch 2" in out
    assert "0123456789abcdef…" in out and "tiny.txt" in out
    assert "0.2500" in out and "3.500" in out  # the metrics table
    assert "note  x" in out
    assert "vigilance 0.9" in out and "decoder lr 0.1" in out and "anticipation  on" in out


def test_inspect_json_matches_library_sizes(model):
    path, h = model
    r = run("inspect", path, "--json")
    assert_ok(r)
    obj = json.loads(r.stdout)
    assert set(obj) == {"file", "header", "sections"}
    assert obj["file"] == str(path)
    hd = obj["header"]
    assert "sections" not in hd
    assert hd["sizes"] == {"state": h.get_state_size(), "weights": h.get_weights_size(),
                           "persistent": h.get_size() - h.get_state_size() - h.get_weights_size(),
                           "total": h.get_size()}
    assert hd["codec"] == CODEC and hd["user"] == {"note": "x"} and hd["training"]["steps"] == 100
    assert obj["sections"]["state"]["bytes"] == h.get_state_size()
    assert obj["sections"]["weights"]["bytes"] == h.get_weights_size()
    assert sum(s["bytes"] for s in obj["sections"].values()) == h.get_size()
    assert all(s["arrays"] > 0 for s in obj["sections"].values())


def test_inspect_reads_only_the_header(model, monkeypatch):
    path, _ = model
    # Garbage over the whole array region: the header (and its CRC) is intact.
    start = data_offset(path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(b"\xff" * (size - start))

    def boom(*a, **k):
        raise AssertionError("inspect must not read the arrays")

    monkeypatch.setattr(ohr, "read_file", boom)
    monkeypatch.setattr(ohr, "decode", boom)
    assert_ok(run("inspect", path))
    assert_ok(run("inspect", path, "--json"))
    monkeypatch.undo()
    assert_error(run("checkpoint", "verify", path), "checksum mismatch")


def test_inspect_stateless_and_odd_header(tmp_path):
    p = tmp_path / "odd.ohr"
    h = build()
    h.save_to_file(str(p), meta={"codec": {"kind": "nope"}, "training": [1, 2], "user": "plain"},
                   include_state=False)
    r = run("inspect", p)
    assert_ok(r)
    assert "invalid codec" in r.stdout
    assert "absent" in r.stdout
    assert "(invalid: not an object)" in r.stdout
    obj = json.loads(run("inspect", p, "--json").stdout)
    assert "state" not in obj["sections"]
    # A model saved by the library alone: no codec, no training.
    p2 = tmp_path / "plain.ohr"
    build().save_to_file(str(p2))
    r = run("inspect", p2)
    assert_ok(r)
    assert "none (not trained with the neocli CLI)" in r.stdout
    # Metrics with nulls (an epoch with nothing scored) and a complete run.
    p3 = tmp_path / "nulls.ohr"
    make_model(p3, train=training(epoch=1, complete=True, metrics=[
        {"epoch": 1, "accuracy": None, "bits_per_symbol": None, "symbols_per_s": None, "symbols": 0}]))
    r = run("inspect", p3)
    assert_ok(r)
    assert "status     complete" in r.stdout and "n/a" in r.stdout


# --------------------------------------------------------------------------
# errors shared by every command that reads a model


def _corrupt_variants(tmp_path, good):
    data = good.read_bytes()
    variants = {}
    variants["missing"] = (tmp_path / "nope.ohr", "No such file")
    variants["directory"] = (tmp_path, "directory")
    notohr = tmp_path / "notes.ohr"
    notohr.write_text("just some text\n")
    variants["not-ohr"] = (notohr, "not an .ohr file")
    trunc = tmp_path / "trunc.ohr"
    trunc.write_bytes(data[: len(data) // 2])
    variants["truncated"] = (trunc, "truncated")
    newer = tmp_path / "newer.ohr"
    newer.write_bytes(data[:8] + struct.pack("<I", ohr.FORMAT_VERSION + 1) + data[12:])
    variants["newer"] = (newer, "newer")
    badhdr = tmp_path / "badhdr.ohr"
    b = bytearray(data)
    b[30] ^= 0x01  # inside the JSON header
    badhdr.write_bytes(bytes(b))
    variants["header-crc"] = (badhdr, "checksum")
    return variants


VARIANTS = ["missing", "directory", "not-ohr", "truncated", "newer", "header-crc"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("cmd", ["inspect", "verify", "strip-state", "export-state", "export-weights",
                                 "import-state", "import-weights", "merge"])
def test_bad_model_files(tmp_path, model, cmd, variant):
    good, _ = model
    bad, fragment = _corrupt_variants(tmp_path, good)[variant]
    out = tmp_path / "out.bin"
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\0" * 16)
    args = {
        "inspect": ["inspect", bad],
        "verify": ["checkpoint", "verify", bad],
        "strip-state": ["checkpoint", "strip-state", bad, "-o", out],
        "export-state": ["checkpoint", "export-state", bad, "-o", out],
        "export-weights": ["checkpoint", "export-weights", bad, "-o", out],
        "import-state": ["checkpoint", "import-state", bad, blob, "-o", out],
        "import-weights": ["checkpoint", "import-weights", bad, blob, "-o", out],
        "merge": ["checkpoint", "merge", good, bad, "-o", out],
    }[cmd]
    r = run(*args)
    assert_error(r, fragment)
    assert not out.exists()
    assert r.stdout == ""


def test_inspect_newer_version_message(tmp_path, model):
    good, _ = model
    bad, _ = _corrupt_variants(tmp_path, good)["newer"]
    r = run("inspect", bad)
    assert_error(r, "newer neocli", "format version 2")


# --------------------------------------------------------------------------
# checkpoint list


def _checkpoints(d, specs):
    """Write models named by ``specs`` = [(name, epoch, steps, mtime)]; return {name: path}."""
    paths = {}
    for name, epoch, steps, mtime in specs:
        p = d / name
        make_model(p, steps=2, train=training(epoch=epoch, steps=steps, complete=False))
        os.utime(p, (mtime, mtime))
        paths[name] = p
    return paths


def test_list_sorted_with_errors(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    # mtimes deliberately disagree with the counters: the header wins.
    _checkpoints(d, [("b.ohr", 2, 200, 1000), ("a.ohr", 1, 100, 3000), ("c.ohr", 2, 250, 500),
                     ("tie2.ohr", 3, 300, 2000), ("tie1.ohr", 3, 300, 1500)])
    (d / "broken.ohr").write_bytes(b"garbage")
    (d / "readme.txt").write_text("not listed")
    (d / "sub.ohr").mkdir()
    r = run("checkpoint", "list", d)
    assert_ok(r)
    lines = r.stdout.strip().splitlines()
    assert lines[0].split() == ["FILE", "EPOCH", "STEPS", "ACCURACY", "BITS/SYM", "COMPLETE", "SIZE"]
    names = [ln.split()[0] for ln in lines[1:]]
    assert names == ["a.ohr", "b.ohr", "c.ohr", "tie1.ohr", "tie2.ohr", "broken.ohr", "sub.ohr"]
    row_b = lines[2].split()
    # 2 of 3 epochs completed, unfinished: EPOCH is the one a resume continues (3), with
    # the last metrics entry (of epoch 2).
    assert row_b[1:6] == ["3", "200", "0.3500", "2.500", "no"]
    assert "error:" in lines[6] and "error:" in lines[7]
    assert "readme" not in r.stdout

    r = run("checkpoint", "list", d, "--json")
    assert_ok(r)
    items = json.loads(r.stdout)
    assert [os.path.basename(i["file"]) for i in items] == names
    # "epoch" is epochs completed, as before 1-based EPOCH existed; "resume_epoch" is the column.
    assert items[0]["epoch"] == 1 and items[0]["resume_epoch"] == 2 and items[0]["epochs_completed"] == 1
    assert items[0]["steps"] == 100 and items[0]["accuracy"] == 0.25
    assert items[0]["bytes"] == os.path.getsize(d / "a.ohr")
    assert "error" in items[5] and "epoch" not in items[5]


def test_list_empty_and_missing(tmp_path):
    r = run("checkpoint", "list", tmp_path)
    assert_ok(r)
    assert r.stdout == "" and "no .ohr files" in r.stderr
    r = run("checkpoint", "list", tmp_path, "--json")
    assert_ok(r)
    assert json.loads(r.stdout) == []
    assert_error(run("checkpoint", "list", tmp_path / "missing"), "does not exist")
    f = tmp_path / "file.ohr"
    f.write_text("x")
    assert_error(run("checkpoint", "list", f), "not a directory")


# --------------------------------------------------------------------------
# checkpoint verify


def test_verify_ok_and_corrupted(tmp_path):
    a, b = tmp_path / "a.ohr", tmp_path / "b.ohr"
    ha = make_model(a)
    make_model(b)
    r = run("checkpoint", "verify", a, b)
    assert_ok(r)
    lines = r.stdout.strip().splitlines()
    n_arrays = sum(len(v) for v in ohr.read_header(a)["sections"].values())
    assert lines[0] == f"OK {a} ({n_arrays} arrays, {ha.get_size():,} bytes)"
    assert lines[1].startswith(f"OK {b} ")

    # One flipped byte in the weights: header still fine, verify fails, the others are still checked.
    data = bytearray(b.read_bytes())
    data[data_offset(b) + ha.get_state_size() + 200] ^= 0x40
    b.write_bytes(bytes(data))
    assert_ok(run("inspect", b))
    r = run("checkpoint", "verify", b, a)
    assert_error(r, str(b), "checksum mismatch")
    assert r.stdout.strip() == f"OK {a} ({n_arrays} arrays, {ha.get_size():,} bytes)"


def test_verify_structure_mismatch(tmp_path):
    # Valid CRCs everywhere, but the arrays belong to a different architecture.
    a, b = tmp_path / "a.ohr", tmp_path / "b.ohr"
    make_model(a, hidden=(3, 3, 8))
    make_model(b, hidden=(2, 2, 8))
    header_a = ohr.read_header(a)
    _, arrays_b = ohr.read_file(b)
    meta = {k: v for k, v in header_a.items() if k != "sections"}
    frank = tmp_path / "frank.ohr"
    ohr.atomic_write(frank, ohr.encode(meta, {s: list(v.items()) for s, v in arrays_b.items()}))
    ohr.read_file(frank, verify=True)  # every CRC is fine
    assert_error(run("checkpoint", "verify", frank), "frank.ohr", "architecture needs")

    # A header whose architecture cannot be built: inspect still reports, verify refuses.
    meta["architecture"]["io_descs"][0]["size"] = [1, -2, 16]
    odd = tmp_path / "odd.ohr"
    ohr.atomic_write(odd, ohr.encode(meta, {s: list(v.items()) for s, v in arrays_b.items()}))
    r = run("inspect", odd)
    assert_ok(r)
    assert "1x-2x16" in r.stdout
    assert_error(run("checkpoint", "verify", odd), "odd.ohr", "size must be >= 1")


# --------------------------------------------------------------------------
# checkpoint prune


def test_list_name_messages_and_inspect_agree_on_the_epoch(tmp_path):
    # A real run: checkpoints inside epoch 1 are named e0001, those inside epoch 2 e0002,
    # and the list, its JSON, inspect and the library's listing all say the same
    # 1-based epoch (the one a resume continues); the finished model shows its last epoch.
    import neocli.cli.train  # noqa: F401  (registers the command)
    from neocli import checkpoints

    data = tmp_path / "d.txt"
    data.write_bytes(b"the cat sat on the mat. " * 25)  # 600 bytes
    d = tmp_path / "ck"
    r = run("train", data, "-o", tmp_path / "m.ohr", "--hidden", "3x3x8", "--epochs", 2, "-q",
            "--checkpoint-dir", d, "--checkpoint-every", 250)
    assert_ok(r)
    names = sorted(os.listdir(d))
    by_name = {n: checkpoints.parse_checkpoint_name(n)[1] for n in names}
    assert sorted(set(by_name.values())) == [1, 2], names
    (d / "m.ohr").write_bytes((tmp_path / "m.ohr").read_bytes())

    r = run("checkpoint", "list", d)
    assert_ok(r)
    rows = {ln.split()[0]: ln.split()[1] for ln in r.stdout.strip().splitlines()[1:]}
    assert {n: int(rows[n]) for n in names} == by_name
    assert rows["m.ohr"] == "2"
    r = run("checkpoint", "list", d, "--json")
    items = {os.path.basename(i["file"]): i for i in json.loads(r.stdout)}
    assert {n: items[n]["resume_epoch"] for n in names} == by_name
    assert {n: items[n]["epoch"] for n in names} == {n: e - 1 for n, e in by_name.items()}
    assert {n: items[n]["epochs_completed"] for n in names} == {n: e - 1 for n, e in by_name.items()}
    assert items["m.ohr"]["epoch"] == items["m.ohr"]["resume_epoch"] == 2   # finished: its last epoch
    for n in names:
        r = run("inspect", d / n)
        assert_ok(r)
        assert f"resumable at epoch {by_name[n]}," in r.stdout, r.stdout
        assert checkpoints.list_checkpoints(str(d))[names.index(n)].progress == by_name[n]


def test_prune_keeps_newest_incomplete_checkpoints_only(tmp_path):
    # Only checkpoint-named files of an incomplete run are candidates: the finished model
    # (e.g. an -o model kept next to the checkpoints), other names and unreadable files stay.
    d = tmp_path / "ckpt"
    d.mkdir()
    _checkpoints(d, [("ckpt-e0001-s0000000100.ohr", 1, 100, 5000), ("ckpt-e0002-s0000000200.ohr", 2, 200, 4000),
                     ("ckpt-e0003-s0000000300.ohr", 3, 300, 1000), ("ckpt-e0000-s0000000050.ohr", 0, 50, 9000),
                     ("resume-point.ohr", 0, 10, 100)])
    make_model(d / "final.ohr", steps=2, train=training(epoch=1, steps=10, complete=True))
    (d / "junk.ohr").write_bytes(b"\x89OHR junk")
    (d / "keepme.txt").write_text("x")
    before = sorted(os.listdir(d))

    r = run("checkpoint", "prune", d, "--keep", 2, "--dry-run")
    assert_ok(r)
    assert sorted(os.listdir(d)) == before
    assert "would delete" in r.stderr

    r = run("checkpoint", "prune", d, "-k", 2)
    assert_ok(r)
    assert r.stdout == ""
    assert sorted(os.listdir(d)) == ["ckpt-e0002-s0000000200.ohr", "ckpt-e0003-s0000000300.ohr", "final.ohr",
                                     "junk.ohr", "keepme.txt", "resume-point.ohr"]
    for name in ("ckpt-e0000-s0000000050.ohr", "ckpt-e0001-s0000000100.ohr"):
        assert f"deleted {d / name}" in r.stderr

    r = run("checkpoint", "prune", d, "--keep", 1)
    assert_ok(r)
    assert sorted(os.listdir(d)) == ["ckpt-e0003-s0000000300.ohr", "final.ohr", "junk.ohr", "keepme.txt",
                                     "resume-point.ohr"]


def test_prune_usage_errors(tmp_path):
    r = run("checkpoint", "prune", tmp_path, "--keep", 0)
    assert r.exit_code == 2 and "Traceback" not in r.stdout + r.stderr
    r = run("checkpoint", "prune", tmp_path)
    assert r.exit_code == 2
    assert_error(run("checkpoint", "prune", tmp_path / "missing", "--keep", 1), "missing", "No such file")


# --------------------------------------------------------------------------
# strip-state


def test_strip_state(model, tmp_path):
    path, h = model
    out = tmp_path / "deploy.ohr"
    r = run("checkpoint", "strip-state", path, "-o", out)
    assert_ok(r)
    assert r.stdout == ""
    hd = ohr.read_header(out)
    assert set(hd["sections"]) == {"weights", "persistent"}
    assert hd["codec"] == CODEC and hd["user"] == {"note": "x"} and hd["training"] == training()
    assert os.path.getsize(out) < os.path.getsize(path)
    loaded = neo.Hierarchy(file_name=str(out))
    assert bytes(loaded.serialize_weights_to_buffer()) == bytes(h.serialize_weights_to_buffer())
    assert loaded.get_rng_state() == h.get_rng_state()
    fresh = build(0)
    fresh.clear_state()
    assert np.array_equal(loaded.get_hidden_cis(0), np.zeros_like(fresh.get_hidden_cis(0)))
    assert_ok(run("checkpoint", "verify", out))

    # In place: OUT == FILE.
    r = run("checkpoint", "strip-state", path, "-o", path)
    assert_ok(r)
    assert "state" not in ohr.read_header(path)["sections"]
    assert state_of(path)[1] == bytes(h.serialize_weights_to_buffer())
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


# --------------------------------------------------------------------------
# export / import


def test_export_round_trips(model, tmp_path):
    path, h = model
    st, wt = tmp_path / "s.bin", tmp_path / "w.bin"
    assert_ok(run("checkpoint", "export-state", path, "-o", st))
    assert_ok(run("checkpoint", "export-weights", path, "-o", wt))
    assert st.read_bytes() == bytes(h.serialize_state_to_buffer())
    assert wt.read_bytes() == bytes(h.serialize_weights_to_buffer())
    assert len(st.read_bytes()) == h.get_state_size()

    r = run("checkpoint", "export-weights", path, "-o", "-")
    assert_ok(r)
    assert r.stdout_bytes == wt.read_bytes()
    r = run("checkpoint", "export-state", path, "-o", "-")
    assert_ok(r)
    assert r.stdout_bytes == st.read_bytes()


def test_import_weights_and_state(tmp_path):
    a, b = tmp_path / "a.ohr", tmp_path / "b.ohr"
    ha = make_model(a, steps=4)
    hb = make_model(b, steps=9, train=training(epoch=2, steps=900))
    assert bytes(ha.serialize_weights_to_buffer()) != bytes(hb.serialize_weights_to_buffer())
    wb, sb = tmp_path / "wb.bin", tmp_path / "sb.bin"
    assert_ok(run("checkpoint", "export-weights", b, "-o", wb))
    assert_ok(run("checkpoint", "export-state", b, "-o", sb))

    out = tmp_path / "a_with_b_weights.ohr"
    r = run("checkpoint", "import-weights", a, wb, "-o", out)
    assert_ok(r)
    state, weights = state_of(out)
    assert weights == wb.read_bytes()
    assert state == bytes(ha.serialize_state_to_buffer())
    hd = ohr.read_header(out)
    assert hd["training"] == training() and hd["codec"] == CODEC and hd["user"] == {"note": "x"}
    # Byte-exact round trip through the CLI again.
    again = tmp_path / "again.bin"
    assert_ok(run("checkpoint", "export-weights", out, "-o", again))
    assert again.read_bytes() == wb.read_bytes()

    # State from stdin, written in place.
    r = run("checkpoint", "import-state", out, "-", "-o", out, input=sb.read_bytes())
    assert_ok(r)
    assert state_of(out) == (sb.read_bytes(), wb.read_bytes())


@pytest.mark.parametrize("what", ["state", "weights"])
def test_import_wrong_size(model, tmp_path, what):
    path, h = model
    bad = tmp_path / "bad.bin"
    good = bytes(h.serialize_state_to_buffer() if what == "state" else h.serialize_weights_to_buffer())
    bad.write_bytes(good[:-4])
    out = tmp_path / "out.ohr"
    r = run("checkpoint", f"import-{what}", path, bad, "-o", out)
    assert_error(r, f"{what} buffer has {len(good) - 4} bytes", "different structure")
    assert not out.exists()
    # An existing output stays intact.
    out.write_bytes(b"previous")
    r = run("checkpoint", f"import-{what}", path, "-", "-o", out, input=good + b"xx")
    assert_error(r, "stdin")
    assert out.read_bytes() == b"previous"
    # Missing buffer file.
    assert_error(run("checkpoint", f"import-{what}", path, tmp_path / "nope.bin", "-o", out), "nope.bin")
    assert out.read_bytes() == b"previous"


def test_import_state_out_of_range(model, tmp_path):
    path, h = model
    state = bytearray(h.serialize_state_to_buffer())
    state[0:4] = struct.pack("<i", 99)  # l0.enc.hidden_cis[0], column size 8
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(state))
    out = tmp_path / "out.ohr"
    assert_error(run("checkpoint", "import-state", path, bad, "-o", out), "outside")
    assert not out.exists()


# --------------------------------------------------------------------------
# merge


def _weights(h):
    return bytes(h.serialize_weights_to_buffer())


@pytest.mark.parametrize("mode", ["average", "random"])
def test_merge_matches_library(tmp_path, mode):
    a, b, c = tmp_path / "a.ohr", tmp_path / "b.ohr", tmp_path / "c.ohr"
    make_model(a, steps=6)
    make_model(b, steps=11)
    make_model(c, steps=3, user={"note": "other"})
    out = tmp_path / "merged.ohr"
    r = run("checkpoint", "merge", a, b, c, "-o", out, "--mode", mode, "--seed", 123)
    assert_ok(r)
    assert r.stdout == ""

    srcs = [neo.Hierarchy(file_name=str(p)) for p in (a, b, c)]
    expect = neo.Hierarchy(file_name=str(a))
    if mode == "random":
        expect.set_rng_state(neo._core.seed_state(123))
    expect.merge(srcs, neo.merge_random if mode == "random" else neo.merge_average)
    got = neo.Hierarchy(file_name=str(out))
    assert _weights(got) == _weights(expect)
    assert _weights(got) != _weights(srcs[0])
    assert bytes(got.serialize_state_to_buffer()) == bytes(srcs[0].serialize_state_to_buffer())
    hd = ohr.read_header(out)
    assert hd["user"] == {"note": "x"} and hd["codec"] == CODEC
    assert hd["training"]["merged_from"] == ["a.ohr", "b.ohr", "c.ohr"]
    assert hd["training"]["mode"] == mode
    assert hd["training"]["steps"] == training()["steps"]  # the first model's record, extended
    if mode == "average":
        assert "ignored" in r.stderr  # --seed only matters for random


def test_merge_random_seed_is_deterministic(tmp_path):
    a, b = tmp_path / "a.ohr", tmp_path / "b.ohr"
    make_model(a, steps=6)
    make_model(b, steps=11)
    outs = []
    for name, seed in (("m1.ohr", 5), ("m2.ohr", 5), ("m3.ohr", 6)):
        assert_ok(run("checkpoint", "merge", a, b, "-o", tmp_path / name, "-m", "random", "-s", seed))
        outs.append(state_of(tmp_path / name)[1])
    assert outs[0] == outs[1] != outs[2]


def test_merge_errors(tmp_path):
    a, b = tmp_path / "a.ohr", tmp_path / "b.ohr"
    make_model(a, hidden=(3, 3, 8))
    make_model(b, hidden=(4, 4, 8))
    out = tmp_path / "m.ohr"
    r = run("checkpoint", "merge", a, b, "-o", out)
    assert_error(r, "structures differ", "hidden_size")
    assert not out.exists()
    r = run("checkpoint", "merge", a, "-o", out)
    assert r.exit_code == 2 and "Traceback" not in r.stdout + r.stderr
    r = run("checkpoint", "merge", a, a, "-o", out, "--mode", "median")
    assert r.exit_code == 2
    assert not out.exists()


# --------------------------------------------------------------------------
# outputs that cannot be written


@pytest.mark.parametrize("cmd", ["strip-state", "export-state", "export-weights", "import-weights", "merge"])
def test_unwritable_output(model, tmp_path, cmd):
    path, h = model
    wb = tmp_path / "w.bin"
    wb.write_bytes(bytes(h.serialize_weights_to_buffer()))

    def args(out):
        return {
            "strip-state": ["checkpoint", "strip-state", path, "-o", out],
            "export-state": ["checkpoint", "export-state", path, "-o", out],
            "export-weights": ["checkpoint", "export-weights", path, "-o", out],
            "import-weights": ["checkpoint", "import-weights", path, wb, "-o", out],
            "merge": ["checkpoint", "merge", path, path, "-o", out],
        }[cmd]

    missing = tmp_path / "no" / "such" / "dir" / "out.ohr"
    assert_error(run(*args(missing)), "does not exist")
    assert_error(run(*args(tmp_path)), "is a directory")
    if os.geteuid() != 0:  # root ignores directory permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert_error(run(*args(ro / "out.ohr")), "not writable")
            assert os.listdir(ro) == []
        finally:
            ro.chmod(0o700)


def test_unwritable_output_at_write_time(model, tmp_path, monkeypatch):
    # The early check passes but the write itself fails: clean error, old output intact.
    path, _ = model
    out = tmp_path / "out.ohr"
    out.write_bytes(b"old")

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    r = run("checkpoint", "strip-state", path, "-o", out)
    assert_error(r, "No space left on device")
    assert out.read_bytes() == b"old"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


# --------------------------------------------------------------------------
# real processes


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_subprocess_inspect(model):
    path, h = model
    p = subprocess.run([sys.executable, "-c", ENTRY, "inspect", str(path)], env=_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert f"{h.get_weights_size():,} bytes" in p.stdout
    assert f"{h.get_size():,} bytes" in p.stdout
    assert p.stderr == ""
    p = subprocess.run([sys.executable, "-c", ENTRY, "inspect", str(path) + ".missing"], env=_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr and p.stdout == ""


def test_subprocess_binary_pipe(tmp_path):
    # export-weights -o - | import-weights FILE - -o OUT, through a real OS pipe.
    a, b = tmp_path / "a.ohr", tmp_path / "b.ohr"
    make_model(a, steps=3)
    hb = make_model(b, steps=8)
    out = tmp_path / "out.ohr"
    producer = subprocess.Popen([sys.executable, "-c", ENTRY, "checkpoint", "export-weights", str(b), "-o", "-"],
                                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    consumer = subprocess.run([sys.executable, "-c", ENTRY, "checkpoint", "import-weights", str(a), "-",
                               "-o", str(out)], env=_env(), stdin=producer.stdout, capture_output=True,
                              timeout=60)
    producer.stdout.close()
    assert producer.wait(timeout=60) == 0
    assert consumer.returncode == 0, consumer.stderr
    assert state_of(out)[1] == bytes(hb.serialize_weights_to_buffer())


def test_inspect_and_verify_an_image_encoder_file(tmp_path):
    neo.set_global_state(2)
    e = neo.ImageEncoder((3, 3, 6), [neo.ImageVisibleLayerDesc((7, 6, 3), 2)])
    path = tmp_path / "img.ohr"
    e.save_to_file(str(path))
    r = run("inspect", path)
    assert r.exit_code == 0, r.stderr
    assert "image encoder, hidden 3x3x6" in r.stdout and "7x6x3" in r.stdout and "radius 2" in r.stdout
    assert "falloff 0.9" in r.stdout and "image encoder: its inputs are images" in r.stdout
    assert f"total          {e.get_size():,} bytes" in r.stdout
    r = run("checkpoint", "verify", path)
    assert r.exit_code == 0 and r.stdout.startswith("OK"), r.stderr


def test_merge_refuses_other_codecs_and_unions_the_bytes_seen(tmp_path):
    a, b, c = tmp_path / "a.ohr", tmp_path / "b.ohr", tmp_path / "c.ohr"
    h = build(5, (3, 3, 8))
    h.save_to_file(str(a), meta={"codec": {**CODEC, "seen": f"{1 << ord('a'):064x}"}, "training": training()})
    h.save_to_file(str(b), meta={"codec": {**CODEC, "seen": f"{1 << ord('b'):064x}"}, "training": training()})
    h.save_to_file(str(c), meta={"codec": {"kind": "bytes", "layout": "byte"}, "training": training()})
    out = tmp_path / "m.ohr"
    assert_error(run("checkpoint", "merge", a, c, "-o", out), "encode their data differently")
    assert not out.exists()
    assert_ok(run("checkpoint", "merge", a, b, "-o", out))
    assert int(ohr.read_header(out)["codec"]["seen"], 16) == (1 << ord("a")) | (1 << ord("b"))


def test_merge_accepts_a_model_from_before_columns_were_matched_by_name(tmp_path):
    # A CSV model written before the codec recorded "by_name" encodes its data the same
    # way as one written after: merging them is allowed.
    data = tmp_path / "h.csv"
    data.write_text("v\n" + "".join(f"{(i * 7) % 10}\n" for i in range(120)))
    new = tmp_path / "new.ohr"
    r = run("train", data, "--codec", "csv", "--csv-range", "0:10", "--hidden", "3x3x8", "--layers", "1",
            "-o", new, "--quiet")
    assert r.exit_code == 0, r.stderr
    from neocli import ohr
    meta, sections = ohr.decode(new.read_bytes())
    assert meta["codec"].pop("by_name") is True
    old = tmp_path / "old.ohr"
    old.write_bytes(ohr.encode(meta, sections))
    out = tmp_path / "m.ohr"
    r = run("checkpoint", "merge", new, old, "-o", out)
    assert r.exit_code == 0, r.stderr
    assert out.exists()
