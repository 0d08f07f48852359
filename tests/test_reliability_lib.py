"""Library side of issue 13 (no lost data, no silent surprises): output targets,
streamed saving, memory estimates, merge messages and sampling at tiny temperatures."""
from __future__ import annotations

import io
import os
import random
import socket
import stat
import threading
import tracemalloc
import warnings

import numpy as np
import pytest

import neocli as neo
from neocli import NeoError, ohr
from neocli.memory import available_memory, check_memory, estimate_model_bytes
from neocli.ohr import OhrError


def small_model(seed: int = 0) -> neo.Hierarchy:
    neo.set_global_state(seed)
    return neo.Hierarchy([neo.IODesc((2, 2, 8), neo.prediction)], [neo.LayerDesc((3, 3, 8))] * 2)


# --------------------------------------------------------------------------- item 1: -o targets

def test_symlink_is_written_through(tmp_path):
    target = tmp_path / "real" / "model.ohr"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "link.ohr"
    link.symlink_to(target)
    h = small_model()
    meta = {"created_utc": "2026-01-01T00:00:00Z"}
    h.save_to_file(str(link), meta=meta)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == bytes(h.serialize_to_buffer(meta))
    # no temporary file left next to the link or the target
    assert sorted(os.listdir(tmp_path)) == ["link.ohr", "real"]
    assert os.listdir(target.parent) == ["model.ohr"]


def test_symlink_chain_and_dangling_link(tmp_path):
    target = tmp_path / "t.ohr"
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(target)  # dangling until written: created like `echo > link`
    ohr.atomic_write(tmp_path / "a", b"data")
    assert target.read_bytes() == b"data"
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


@pytest.mark.parametrize("kind", ["chardev", "dir", "socket", "fifo"])
def test_special_targets_refused_before_writing(tmp_path, kind):
    if kind == "chardev":
        path = "/dev/null"
        before = os.stat(path)
    elif kind == "dir":
        path = str(tmp_path / "d")
        os.mkdir(path)
    elif kind == "fifo":
        path = str(tmp_path / "f")
        os.mkfifo(path)
    else:
        path = str(tmp_path / "s")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
    what = {"chardev": "character device", "dir": "directory", "socket": "socket", "fifo": "FIFO"}[kind]
    with pytest.raises(OhrError, match=f"'{path}': it is a {what}"):
        ohr.check_output_path(path)
    if kind != "fifo":
        with pytest.raises(OhrError, match=what):
            small_model().save_to_file(path)
        with pytest.raises(OhrError, match=what):
            ohr.atomic_write(path, b"x")
    if kind == "chardev":
        after = os.stat(path)
        assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    else:
        assert not stat.S_ISREG(os.lstat(path).st_mode)
        assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)]


def test_symlink_to_device_refused(tmp_path):
    link = tmp_path / "null.ohr"
    link.symlink_to("/dev/null")
    with pytest.raises(OhrError, match="character device"):
        ohr.check_output_path(link)
    with pytest.raises(OhrError, match="character device"):
        small_model().save_to_file(str(link))
    assert link.is_symlink() and os.readlink(link) == "/dev/null"


def test_fifo_streamed_when_allowed(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    assert ohr.check_output_path(path, allow_fifo=True) == "fifo"
    got = []
    reader = threading.Thread(target=lambda: got.append(open(path, "rb").read()), daemon=True)
    reader.start()
    h = small_model()
    h.save_to_file(str(path), meta={"created_utc": "2026-01-01T00:00:00Z"})
    reader.join(10)
    assert got and got[0] == bytes(h.serialize_to_buffer({"created_utc": "2026-01-01T00:00:00Z"}))
    assert stat.S_ISFIFO(os.lstat(path).st_mode)


def test_check_output_path_reasons(tmp_path):
    assert ohr.check_output_path(tmp_path / "new.ohr") == "new"
    (tmp_path / "old.ohr").write_bytes(b"x")
    assert ohr.check_output_path(str(tmp_path / "old.ohr")) == "file"
    with pytest.raises(OhrError, match="directory '.*nope' does not exist"):
        ohr.check_output_path(tmp_path / "nope" / "m.ohr")
    with pytest.raises(OhrError, match="empty"):
        ohr.check_output_path("")
    # a name that is not valid UTF-8 works as bytes
    raw = os.fsencode(str(tmp_path)) + b"/m\xff.ohr"
    assert ohr.check_output_path(raw) == "new"
    ohr.atomic_write(raw, b"abc")
    assert open(raw, "rb").read() == b"abc"
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(OhrError, match="not writable"):
            ohr.check_output_path(ro / "m.ohr")


def test_write_stream_matches_encode():
    h = small_model(3)
    meta = {"created_utc": "2026-01-01T00:00:00Z", "user": {"k": "v"}}
    buf = io.BytesIO()
    h.save_to_file(buf, meta=meta)
    assert buf.getvalue() == bytes(h.serialize_to_buffer(meta))
    buf2 = io.BytesIO()
    h.save_to_file(buf2, meta=meta, include_state=False)
    assert buf2.getvalue() == bytes(h.serialize_to_buffer(meta, include_state=False))
    assert neo.Hierarchy(buffer=buf.getvalue()).get_size() == h.get_size()


def test_image_encoder_streams_too(tmp_path):
    enc = neo.ImageEncoder((3, 3, 8), [neo.ImageVisibleLayerDesc((4, 4, 3), 1)])
    meta = {"created_utc": "2026-01-01T00:00:00Z"}
    buf = io.BytesIO()
    enc.save_to_file(buf, meta=meta)
    assert buf.getvalue() == bytes(enc.serialize_to_buffer(meta))
    link = tmp_path / "l.ohr"
    link.symlink_to(tmp_path / "t.ohr")
    enc.save_to_file(str(link), meta=meta)
    assert (tmp_path / "t.ohr").read_bytes() == buf.getvalue() and link.is_symlink()


# --------------------------------------------------------------------------- item 6: memory

def _random_arch(rng: random.Random):
    types = [neo.prediction, neo.none, neo.action]
    ios = [neo.IODesc((rng.randint(1, 5), rng.randint(1, 5), rng.randint(2, 17)), rng.choice(types),
                      up_radius=rng.randint(0, 3), down_radius=rng.randint(0, 3),
                      num_dendrites_per_cell=rng.randint(1, 5), value_num_dendrites_per_cell=rng.randint(1, 5),
                      history_capacity=rng.randint(2, 40))
           for _ in range(rng.randint(1, 3))]
    layers = [neo.LayerDesc((rng.randint(1, 6), rng.randint(1, 6), rng.randint(2, 20)), up_radius=rng.randint(0, 3),
                            recurrent_radius=rng.randint(-1, 2), down_radius=rng.randint(0, 3),
                            num_dendrites_per_cell=rng.randint(1, 5))
              for _ in range(rng.randint(1, 3))]
    return ios, layers


@pytest.mark.parametrize("seed", range(12))
def test_estimate_matches_built_model(seed):
    rng = random.Random(seed)
    ios, layers = _random_arch(rng)
    if seed < 3:  # make sure action and input-only ports are covered
        ios[0].io_type = [neo.action, neo.none, neo.prediction][seed]
        ios.append(neo.IODesc((2, 1, 4), neo.prediction))
    est = estimate_model_bytes(ios, layers)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        h = neo.Hierarchy(ios, layers)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert est["state"] == h.get_state_size()
    assert est["weights"] == h.get_weights_size()
    assert est["persistent"] == h.get_size() - h.get_state_size() - h.get_weights_size()
    assert est["total"] == h.get_size()
    # every numpy array of the model is traced; the rest is Python object overhead
    assert est["resident"] <= grown <= est["resident"] + 64 * 1024, (est, grown)
    assert est["peak"] >= est["resident"]


def test_estimate_refuses_what_the_constructor_refuses():
    with pytest.raises(NeoError, match="limit is"):
        estimate_model_bytes([neo.IODesc((5, 5, 16))], [neo.LayerDesc((2000, 2000, 128), up_radius=20)])


def test_check_memory():
    ios, layers = [neo.IODesc((1, 2, 16))], [neo.LayerDesc((200, 200, 128))]
    est = estimate_model_bytes(ios, layers)
    assert est["weights"] > 4 * 2**30  # the "--hidden 200x200x128 takes 5.5 GB"
    with pytest.raises(NeoError, match=r"needs about .* GiB .* more than the 1\.0 GiB available.*--force") as info:
        check_memory(ios, layers, available=2**30, override="--force")
    assert len(str(info.value)) < 300
    assert check_memory(ios, layers, available=2**30, force=True) == est
    assert check_memory(ios, layers, available=est["peak"]) == est
    avail = available_memory()
    assert avail is None or avail > 0


def test_saving_streams_sections(tmp_path):
    """Saving used to build the whole file in memory (peak = 2x the model); now ~ one array."""
    neo.set_global_state(1)
    h = neo.Hierarchy([neo.IODesc((4, 4, 16))], [neo.LayerDesc((8, 8, 32), up_radius=3)] * 2)
    size = h.get_size()
    assert size > 4 * 2**20
    tracemalloc.start()
    try:
        h.save_to_file(str(tmp_path / "m.ohr"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size // 10, (peak, size)
    assert neo.Hierarchy(file_name=str(tmp_path / "m.ohr")).get_size() == size


# --------------------------------------------------------------------------- item 20: merge messages

def test_merge_error_is_a_short_summary():
    neo.set_global_state(0)
    a = neo.Hierarchy([neo.IODesc((2, 2, 8))] * 3, [neo.LayerDesc((3, 3, 8))] * 2)
    b = neo.Hierarchy([neo.IODesc((2, 2, 8), up_radius=1, down_radius=1, num_dendrites_per_cell=2)] * 3,
                      [neo.LayerDesc((3, 3, 4), up_radius=1)] * 2)
    with pytest.raises(NeoError, match=r"structure differs .*down_radius: 2 vs 1.*and \d+ more differences") as info:
        a.merge([b], neo.merge_average)
    assert len(str(info.value)) < 250, str(info.value)


def test_describe_differences_of_large_codecs_stays_short():
    from neocli.structdiff import describe_differences

    words = {"kind": "words", "vocab": ["<unk>"] + [f"word{i}" for i in range(8191)], "max_vocab": 8192}
    other = {"kind": "words", "vocab": ["<unk>"] + [f"mot{i}" for i in range(7999)], "max_vocab": 8000}
    text = describe_differences(words, other, path="codec")
    assert len(text) < 250, text
    assert text.startswith("codec.max_vocab: 8192 vs 8000; codec.vocab: 8192 vs 8000 entries")
    assert text.endswith("and 7998 more differences")
    assert describe_differences(words, dict(words)) == ""
    huge = describe_differences(list(range(100_000)), list(range(1, 100_001)))
    assert "9997+ more" in huge and len(huge) < 250


# --------------------------------------------------------------------------- items 2 and 10: checkpoints

def _ckpt(directory, run_id, epoch, steps, complete=False, name=None):
    from neocli.checkpoints import checkpoint_name

    training = {"epoch": epoch, "epochs": 9, "steps": steps, "complete": complete}
    if run_id is not None:
        training["run_id"] = run_id
    name = name or (checkpoint_name(run_id, epoch, steps) if run_id else f"ckpt-e{epoch:04d}-s{steps:010d}.ohr")
    path = directory / name
    ohr.atomic_write(path, ohr.encode({"training": training}, {"weights": [("w", np.zeros(3, np.uint8))]}))
    return path


def test_checkpoint_names():
    from neocli.checkpoints import checkpoint_name, new_run_id, parse_checkpoint_name, run_id_of

    rid = new_run_id()
    assert len(rid) == 8 and rid != new_run_id()
    name = checkpoint_name(rid, 3, 1234)
    assert name == f"ckpt-{rid}-e0003-s0000001234.ohr"
    assert parse_checkpoint_name(name) == (rid, 3, 1234)
    assert parse_checkpoint_name("ckpt-e0003-s0000001234.ohr") == (None, 3, 1234)  # earlier versions
    assert parse_checkpoint_name(checkpoint_name(rid, 12, 5, width=6)) == (rid, 12, 5)
    assert parse_checkpoint_name("model.ohr") is None
    assert run_id_of({"training": {"run_id": rid}}) == rid and run_id_of({"training": {}}) is None
    with pytest.raises(NeoError, match="run_id"):
        checkpoint_name("../x", 1, 1)


def test_rotation_touches_only_this_runs_checkpoints(tmp_path):
    from neocli.checkpoints import rotate

    a, b = "aaaa0001", "bbbb0002"
    others = [_ckpt(tmp_path, b, e, e * 100) for e in (5, 6, 7)]
    legacy = _ckpt(tmp_path, None, 9, 900)
    finished = tmp_path / "model.ohr"
    finished.write_bytes(_ckpt(tmp_path, a, 9, 9999, complete=True, name="model.ohr").read_bytes())
    mine = [_ckpt(tmp_path, a, e, e * 100) for e in (1, 2, 3)]
    deleted = rotate(str(tmp_path), a, keep=1, just_written=str(mine[-1]))
    assert sorted(deleted) == sorted(str(p) for p in mine[:2])
    assert all(p.exists() for p in others + [legacy, finished, mine[-1]])


def test_rotation_never_deletes_the_checkpoint_just_written(tmp_path):
    """A run resumed from epoch 3 writes epoch 4 while its abandoned epoch 10 is still there:
    sorting by name deleted the new one."""
    from neocli.checkpoints import rotate

    rid = "cafe0003"
    _ckpt(tmp_path, rid, 10, 1000)
    _ckpt(tmp_path, rid, 3, 300)
    new = _ckpt(tmp_path, rid, 4, 400)
    rotate(str(tmp_path), rid, keep=2, just_written=str(new))
    assert sorted(os.listdir(tmp_path)) == sorted([new.name, f"ckpt-{rid}-e0010-s0000001000.ohr"])
    rotate(str(tmp_path), rid, keep=1, just_written=str(new))
    assert os.listdir(tmp_path) == [new.name]
    assert rotate(str(tmp_path), rid, keep=1) == []  # the newest is never deleted


def test_rotation_leaves_legacy_named_files_of_other_runs(tmp_path):
    """Sorting every ckpt-e*-s*.ohr by name (the CLI's rotate_checkpoints) deleted these."""
    from neocli.checkpoints import rotate

    run_a = [_ckpt(tmp_path, None, 7, 700), _ckpt(tmp_path, None, 8, 800)]  # another run, legacy names
    rid = "dddd0004"
    mine = _ckpt(tmp_path, rid, 1, 100)
    rotate(str(tmp_path), rid, keep=1, just_written=str(mine))
    assert all(p.exists() for p in run_a + [mine])


def test_prune_deletes_only_incomplete_checkpoints_of_its_series(tmp_path):
    from neocli.checkpoints import list_checkpoints, prune

    a, b = "aaaa0001", "bbbb0002"
    a_ck = [_ckpt(tmp_path, a, e, e * 10) for e in (1, 2, 3, 4)]
    b_ck = [_ckpt(tmp_path, b, e, e * 10) for e in (1, 2)]
    done = _ckpt(tmp_path, a, 5, 50, complete=True)                     # a finished model named like a checkpoint
    final = _ckpt(tmp_path, a, 4, 40, complete=True, name="final.ohr")
    interrupted = _ckpt(tmp_path, a, 2, 20, complete=False, name="model.ohr")  # the -o resume point
    junk = tmp_path / "ckpt-aaaa0001-e0000-s0000000000.ohr"
    junk.write_bytes(b"not a model")
    dry = prune(str(tmp_path), keep=1, run_id=a, dry_run=True)
    assert sorted(dry.deleted) == sorted(str(p) for p in a_ck[:3])
    assert all(p.exists() for p in a_ck)
    res = prune(str(tmp_path), keep=1, run_id=a)
    assert sorted(res.deleted) == sorted(str(p) for p in a_ck[:3])
    assert all(p.exists() for p in [a_ck[-1], done, final, interrupted, junk] + b_ck)
    res = prune(str(tmp_path), keep=1)  # every series on its own
    assert res.deleted == [str(b_ck[0])]
    left = {c.name for c in list_checkpoints(str(tmp_path))}
    assert left == {a_ck[-1].name, b_ck[-1].name, done.name, "final.ohr", "model.ohr", junk.name}
    with pytest.raises(NeoError, match="keep"):
        prune(str(tmp_path), keep=0)


# --------------------------------------------------------------------------- item 23: tiny sizes

def test_tiny_hidden_sizes_work_or_are_refused_naming_the_parameter():
    with pytest.raises(NeoError, match=r"layer 0 hidden_size \(1, 1, 1\).*column size >= 2"):
        neo.Hierarchy([neo.IODesc((1, 2, 16))], [neo.LayerDesc((1, 1, 1))] * 2)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow anywhere
        for layers in ([neo.LayerDesc((1, 1, 2))] * 2, [neo.LayerDesc((1, 1, 2))], [neo.LayerDesc((1, 1, 2))] * 3):
            ios = [neo.IODesc((1, 2, 16)), neo.IODesc((1, 1, 2), neo.action, history_capacity=2)]
            h = neo.Hierarchy(ios, layers)
            for _ in range(40):
                h.step([rng.integers(0, 16, 2, dtype=np.int32), rng.integers(0, 2, 1, dtype=np.int32)], True, 0.5)
            assert 0 <= h.get_prediction_cis(0).min() and h.get_prediction_cis(0).max() < 16
            for t in (5e-324, 1e-30, 1.0):
                s = h.sample_prediction(0, t)
                assert ((0 <= s) & (s < 16)).all()
            h2 = neo.Hierarchy(buffer=h.serialize_to_buffer())
            assert bytes(h2.serialize_weights_to_buffer()) == bytes(h.serialize_weights_to_buffer())


# --------------------------------------------------------------------------- item 7 (library part): bytes paths

def test_models_save_and_load_under_names_that_are_not_utf8(tmp_path):
    name = os.fsencode(str(tmp_path)) + b"/mod\xe9le.ohr"  # latin-1 "modèle": invalid UTF-8
    h = small_model(5)
    h.save_to_file(name)
    assert neo.Hierarchy(file_name=name).get_size() == h.get_size()
    enc = neo.ImageEncoder((3, 3, 8), [neo.ImageVisibleLayerDesc((4, 4, 3), 1)])
    enc.save_to_file(name + b".img")
    assert neo.ImageEncoder(file_name=name + b".img").get_size() == enc.get_size()
    with pytest.raises(OhrError) as info:
        ohr.read_header(name + b".missing")
    msg = str(info.value)
    msg.encode("utf-8")  # printable: no lone surrogates
    assert "mod\\xe9le.ohr.missing" in msg


# --------------------------------------------------------------------------- items 3 and 9 (library part)

def test_output_that_is_an_input_is_refused(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("abc")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.txt").symlink_to(data)
    os.link(data, tmp_path / "hard.txt")
    for out in (data, tmp_path / "sub" / ".." / "data.txt", tmp_path / "link.txt", tmp_path / "hard.txt"):
        with pytest.raises(OhrError, match="it is the input file"):
            ohr.check_output_path(out, inputs=[str(data), "-"])
    assert ohr.check_output_path(tmp_path / "m.ohr", inputs=[data, "-"]) == "new"
    assert data.read_text() == "abc"


def test_incomplete_training_detects_an_interrupted_model(tmp_path):
    from neocli.checkpoints import incomplete_training

    part = _ckpt(tmp_path, "abcd0001", 2, 20, complete=False, name="model.ohr")
    done = _ckpt(tmp_path, "abcd0001", 3, 30, complete=True, name="done.ohr")
    (tmp_path / "junk.ohr").write_bytes(b"junk")
    assert incomplete_training(str(part))["epoch"] == 2
    for p in (done, tmp_path / "junk.ohr", tmp_path / "missing.ohr", tmp_path):
        assert incomplete_training(str(p)) is None
