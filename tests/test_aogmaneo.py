"""pyaogmaneo's own model format: reading it, continuing exactly, writing it back.

Oracle tests save models with pyaogmaneo 2.14.4 and load them here (and the other
way round); the robustness tests mutate files in that format (written by our
exporter, which the oracle tests show to be byte-identical to pyaogmaneo's save up
to the slots pyaogmaneo leaves uninitialised) and need no oracle.
"""
from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import neocli as neo
import neocli.cli.checkpoint  # noqa: F401  (registers the commands on the shared app)
import neocli.cli.eval  # noqa: F401
import neocli.cli.generate  # noqa: F401
import neocli.cli.inspect  # noqa: F401
from neocli import aogmaneo, ohr
from neocli.cli.app import app

from oracle import masked_state

# (size, io type: 0 none / 1 prediction / 2 action, kwargs), (hidden size, kwargs)
SHAPES = {
    "1-layer, one prediction IO": (
        [((3, 3, 8), 1, dict(up_radius=1, down_radius=1))],
        [((4, 4, 8), dict(up_radius=1, down_radius=1))],
    ),
    "2 layers, none + prediction + action": (
        [((2, 3, 5), 0, dict(up_radius=1)),
         ((3, 2, 4), 1, dict(up_radius=1, down_radius=1, num_dendrites_per_cell=3)),
         ((2, 2, 3), 2, dict(up_radius=1, down_radius=1, num_dendrites_per_cell=2,
                             value_num_dendrites_per_cell=5, history_capacity=7))],
        [((3, 3, 5), dict(up_radius=1, down_radius=1, recurrent_radius=1, num_dendrites_per_cell=2)),
         ((2, 2, 4), dict(up_radius=1, down_radius=1, recurrent_radius=-1, num_dendrites_per_cell=3))],
    ),
    "3 layers, two predictions + action + none": (
        [((2, 2, 6), 1, dict(up_radius=1, down_radius=0)),
         ((1, 1, 4), 2, dict(up_radius=0, down_radius=1, history_capacity=9)),
         ((3, 1, 3), 0, dict(up_radius=2)),
         ((1, 2, 5), 1, dict(up_radius=1, down_radius=2, num_dendrites_per_cell=2))],
        [((3, 2, 6), dict(recurrent_radius=-1)),
         ((2, 2, 5), dict(up_radius=1, down_radius=1, recurrent_radius=0)),
         ((2, 1, 4), dict(up_radius=2, down_radius=1, recurrent_radius=1, num_dendrites_per_cell=5))],
    ),
}
IDS = list(SHAPES)


def build(mod, shape, seed):
    """``mod.Hierarchy`` of ``shape`` built from global state ``seed``."""
    ios, layers = SHAPES[shape]
    types = [mod.none, mod.prediction, mod.action]
    mod.set_global_state(seed)
    return mod.Hierarchy([mod.IODesc(s, types[t], **k) for s, t, k in ios],
                         [mod.LayerDesc(s, **k) for s, k in layers])


def inputs_for(shape, rng):
    """One step's input CSDRs (actions random too) and a reward."""
    ios, _ = SHAPES[shape]
    xs = [rng.integers(0, s[2], s[0] * s[1]).astype(np.int32) for s, _, _ in ios]
    return xs, float(rng.random())


def drive(models, shape, rng, steps):
    """Step every model on the same inputs; all must predict the same at every step."""
    ios, _ = SHAPES[shape]
    for t in range(steps):
        xs, reward = inputs_for(shape, rng)
        for m in models:
            m.step(xs, True, reward)
        for i, (_, typ, _) in enumerate(ios):
            if typ == 0:
                continue
            want = models[0].get_prediction_cis(i)
            for m in models[1:]:
                np.testing.assert_array_equal(m.get_prediction_cis(i), want, err_msg=f"step {t}: IO {i}")
        for l in range(models[0].get_num_layers()):
            for m in models[1:]:
                np.testing.assert_array_equal(m.get_hidden_cis(l), models[0].get_hidden_cis(l),
                                              err_msg=f"step {t}: layer {l}")


def assert_same_model(ref, ours):
    """Weights identical; state identical (actor samples past the history size masked:
    pyaogmaneo leaves them uninitialised)."""
    np.testing.assert_array_equal(np.asarray(ref.serialize_weights_to_buffer()), ours.serialize_weights_to_buffer())
    np.testing.assert_array_equal(masked_state(ours, ref.serialize_state_to_buffer()),
                                  masked_state(ours, ours.serialize_state_to_buffer()))


def unused_index_bytes(h) -> set[int]:
    """Byte offsets of the IO index-map slots pyaogmaneo leaves uninitialised."""
    n = h.get_num_io()
    types = [int(h.get_io_type(i)) for i in range(n)]
    base = 20 + 17 * n  # magic + 4 counts, IO sizes and types
    used = set(range(types.count(1))) | {n + k for k in range(types.count(2))}
    return {base + 4 * s + b for s in range(2 * n) if s not in used for b in range(4)}


def reference_buffer(ref, file_bytes):
    """pyaogmaneo's ``serialize_to_buffer()`` bytes of ``ref``, whose file is ``file_bytes``.

    Its serialize_to_buffer writes the anticipation byte one past the end of the
    get_size()+4 bytes it allocates: when glibc's chunk has no slack there (request
    + 8 a multiple of 16) that byte lands on the allocator's metadata and the
    process aborts later. Then the buffer is taken as the file minus that byte,
    which is what it is whenever it can be called safely (checked here).
    """
    n = ref.get_size() + 4
    if (n + 8) % 16 == 0:
        return np.frombuffer(file_bytes[:-1], dtype=np.uint8)
    buf = np.asarray(ref.serialize_to_buffer())
    assert bytes(buf) == file_bytes[:-1]
    return buf


def trained_neo(shape="2 layers, none + prediction + action", steps=15, seed=7):
    h = build(neo, shape, seed)
    drive([h], shape, np.random.default_rng(seed), steps)
    return h


# --------------------------------------------------------------------------
# oracle: pyaogmaneo -> neocli


@pytest.mark.oracle
@pytest.mark.parametrize("shape", IDS)
def test_reference_save_loads_and_continues_exactly(shape, tmp_path):
    import pyaogmaneo as pa

    ref = build(pa, shape, 1234)
    drive([ref], shape, np.random.default_rng(1), 30)
    path = str(tmp_path / "model.ohr")  # pyaogmaneo users name them .ohr too
    ref.save_to_file(path)
    with open(path, "rb") as f:
        buf = reference_buffer(ref, f.read())  # the file adds the anticipation byte
    # The process-wide stream is not in the file: give neocli's loaded models the
    # reference's current global state, which is where their own streams start.
    s = pa.get_global_state()
    neo.set_global_state(s)
    from_file = neo.Hierarchy(file_name=path)
    from_buffer = neo.Hierarchy(buffer=buf)
    assert neo.get_global_state() == s  # loading draws nothing
    for h in (from_file, from_buffer):
        assert h.get_rng_state() == s
        # Not masked: the loaded actor history holds pyaogmaneo's bytes exactly.
        np.testing.assert_array_equal(h.serialize_state_to_buffer(), np.asarray(ref.serialize_state_to_buffer()))
        np.testing.assert_array_equal(h.serialize_weights_to_buffer(), np.asarray(ref.serialize_weights_to_buffer()))
        assert h.params.anticipation is True
    drive([ref, from_file, from_buffer], shape, np.random.default_rng(2), 100)
    for h in (from_file, from_buffer):
        assert_same_model(ref, h)


@pytest.mark.oracle
def test_reference_params_and_anticipation_are_read(tmp_path):
    import pyaogmaneo as pa

    shape = "2 layers, none + prediction + action"
    ref = build(pa, shape, 5)
    c = [1.0]

    def nxt():
        c[0] += 1.0
        return c[0] / 64

    for lp in ref.params.layers:
        for k in ("choice", "vigilance", "lr", "active_ratio"):
            setattr(lp.encoder, k, nxt())
        lp.encoder.l_radius = 3
        lp.decoder.scale, lp.decoder.lr, lp.recurrent_importance = nxt(), nxt(), nxt()
    for ip in ref.params.ios:
        ip.decoder.scale, ip.decoder.lr = nxt(), nxt()
        for k in ("vlr", "plr", "smoothing", "delay_rate", "policy_clip", "discount", "td_scale_decay"):
            setattr(ip.actor, k, nxt())
        ip.actor.min_steps, ip.actor.history_iters = 3, 5
        ip.importance = nxt()
    ref.params.anticipation = False
    drive([ref], shape, np.random.default_rng(0), 3)  # pyaogmaneo saves the params of the last step
    path = str(tmp_path / "p.bin")
    ref.save_to_file(path)
    h = neo.Hierarchy(file_name=path)
    back = pa.Hierarchy(file_name=path)
    assert h.params.anticipation is False
    for l, (a, b) in enumerate(zip(h.params.layers, back.params.layers)):
        for k in ("choice", "vigilance", "lr", "active_ratio", "l_radius"):
            assert getattr(a.encoder, k) == getattr(b.encoder, k), (l, k)
        assert (a.decoder.scale, a.decoder.lr, a.recurrent_importance) == (
            b.decoder.scale, b.decoder.lr, b.recurrent_importance)
    for i, (a, b) in enumerate(zip(h.params.ios, back.params.ios)):
        for k in ("vlr", "plr", "smoothing", "delay_rate", "policy_clip", "discount", "td_scale_decay",
                  "min_steps", "history_iters"):
            assert getattr(a.actor, k) == getattr(b.actor, k), (i, k)
        assert (a.decoder.scale, a.decoder.lr, a.importance) == (b.decoder.scale, b.decoder.lr, b.importance)
    # The buffer lacks the anticipation byte: the hierarchy default (on) is read.
    with open(path, "rb") as f:
        buf = reference_buffer(ref, f.read())
    assert neo.Hierarchy(buffer=buf).params.anticipation is True
    # And back: our export carries the params to pyaogmaneo.
    out = str(tmp_path / "p2.bin")
    aogmaneo.export_file(h, out)
    again = pa.Hierarchy(file_name=out)
    assert again.params.anticipation is False
    assert again.params.ios[2].actor.history_iters == 5
    assert again.params.layers[1].encoder.lr == h.params.layers[1].encoder.lr


# --------------------------------------------------------------------------
# oracle: neocli -> pyaogmaneo


@pytest.mark.oracle
@pytest.mark.parametrize("shape", IDS)
def test_export_matches_reference_save_and_loads_there(shape, tmp_path):
    import pyaogmaneo as pa

    ref = build(pa, shape, 99)
    ours = build(neo, shape, 99)
    drive([ref, ours], shape, np.random.default_rng(3), 40)
    path = str(tmp_path / "ref.bin")
    ref.save_to_file(path)
    with open(path, "rb") as f:
        want = f.read()
    got = aogmaneo.hierarchy_to_bytes(ours, "file")
    assert len(got) == len(want)
    diff = {i for i, (a, b) in enumerate(zip(got, want)) if a != b}
    assert diff <= unused_index_bytes(ours), sorted(diff - unused_index_bytes(ours))[:10]
    assert aogmaneo.hierarchy_to_bytes(ours, "buffer") == got[:-1]

    out = str(tmp_path / "ours.ohr")
    aogmaneo.export_file(ours, out)
    loaded = [pa.Hierarchy(file_name=out), pa.Hierarchy(buffer=np.frombuffer(got, dtype=np.uint8))]
    for h in loaded:
        assert_same_model(h, ours)
    # pyaogmaneo continues from the export as neocli does (its global stream set to ours).
    pa.set_global_state(ours.get_rng_state())
    drive([ours, loaded[0]], shape, np.random.default_rng(4), 30)
    assert_same_model(loaded[0], ours)


# --------------------------------------------------------------------------
# oracle: ImageEncoder


def build_image(mod, seed):
    mod.set_global_state(seed)
    e = mod.ImageEncoder((3, 3, 6), [mod.ImageVisibleLayerDesc((7, 6, 3), 2), mod.ImageVisibleLayerDesc((4, 4, 1), 1)])
    e.params.falloff, e.params.lr, e.params.scale, e.params.rr, e.params.n_radius = 0.7, 0.05, 3.0, 0.04, 2
    return e


def drive_images(encoders, rng, steps):
    for t in range(steps):
        xs = [rng.integers(0, 256, 7 * 6 * 3).astype(np.uint8), rng.integers(0, 256, 16).astype(np.uint8)]
        for e in encoders:
            e.step(xs, True, True)  # reconstruction learning draws random numbers
        for e in encoders[1:]:
            np.testing.assert_array_equal(e.get_hidden_cis(), encoders[0].get_hidden_cis(), err_msg=f"step {t}")


@pytest.mark.oracle
def test_image_encoder_both_ways(tmp_path):
    import pyaogmaneo as pa

    ref = build_image(pa, 21)
    drive_images([ref], np.random.default_rng(5), 20)
    path = str(tmp_path / "enc.bin")
    ref.save_to_file(path)
    buf = ref.serialize_to_buffer()
    assert os.path.getsize(path) == len(buf)  # no trailing byte for an ImageEncoder
    s = pa.get_global_state()
    neo.set_global_state(s)
    loaded = [neo.ImageEncoder(file_name=path), neo.ImageEncoder(buffer=buf)]
    for e in loaded:
        assert e.get_rng_state() == s
        assert e.params.n_radius == 2 and e.params.falloff == ref.params.falloff
        np.testing.assert_array_equal(e.serialize_weights_to_buffer(), np.asarray(ref.serialize_weights_to_buffer()))
        np.testing.assert_array_equal(e.serialize_state_to_buffer(), np.asarray(ref.serialize_state_to_buffer()))
    drive_images([ref] + loaded, np.random.default_rng(6), 100)  # resources decide how much each step learns
    for e in loaded:
        np.testing.assert_array_equal(e.serialize_weights_to_buffer(), np.asarray(ref.serialize_weights_to_buffer()))
        cis = ref.get_hidden_cis()
        ref.reconstruct(cis)
        e.reconstruct(cis)
        for v in range(2):
            np.testing.assert_array_equal(e.get_reconstruction(v), ref.get_reconstruction(v))

    # neocli -> pyaogmaneo: byte-identical but for the padding ints pyaogmaneo leaves unset.
    ref2, ours = build_image(pa, 22), build_image(neo, 22)
    drive_images([ref2, ours], np.random.default_rng(7), 15)
    p2 = str(tmp_path / "enc2.bin")
    ref2.save_to_file(p2)
    with open(p2, "rb") as f:
        want = f.read()
    got = aogmaneo.image_encoder_to_bytes(ours)
    pads = {16, 17, 18, 19} | {296 + 12 + b for b in range(4)} | {296 + 20 + 2 * 4050 + 12 + b for b in range(4)}
    assert len(got) == len(want)
    assert {i for i, (a, b) in enumerate(zip(got, want)) if a != b} <= pads
    back = pa.ImageEncoder(buffer=np.frombuffer(got, dtype=np.uint8))
    np.testing.assert_array_equal(np.asarray(back.serialize_weights_to_buffer()), ours.serialize_weights_to_buffer())
    np.testing.assert_array_equal(np.asarray(back.serialize_state_to_buffer()), ours.serialize_state_to_buffer())


# --------------------------------------------------------------------------
# without the oracle: round trips, the RNG rule, the CLI


def test_round_trip_keeps_weights_state_params():
    h = trained_neo()
    h.params.layers[0].encoder.lr = 0.25
    data = aogmaneo.hierarchy_to_bytes(h)
    assert aogmaneo.is_aogmaneo(data) and aogmaneo.kind_of(data) == "hierarchy"
    assert not aogmaneo.is_aogmaneo(h.serialize_to_buffer())
    neo.set_global_state(42)
    back = aogmaneo.read_hierarchy(data)
    assert back.get_rng_state() == 42 and neo.get_global_state() == 42
    np.testing.assert_array_equal(back.serialize_weights_to_buffer(), h.serialize_weights_to_buffer())
    np.testing.assert_array_equal(back.serialize_state_to_buffer(), h.serialize_state_to_buffer())
    assert back.params == h.params
    # Exporting what was read gives the same bytes again.
    assert aogmaneo.hierarchy_to_bytes(back) == data
    assert aogmaneo.from_ohr(h.serialize_to_buffer(), "buffer") == data[:-1]
    assert aogmaneo.to_ohr(data, rng_state=5)[:8] == ohr.MAGIC
    # The continuation matches once the random streams agree (delayed policies
    # restart from the policies on both sides after a reload).
    h2 = neo.Hierarchy(buffer=h.serialize_to_buffer())
    h2.set_weights_from_buffer(h2.serialize_weights_to_buffer())  # resets the delayed policies
    h2.set_rng_state(42)
    drive([h2, back], "2 layers, none + prediction + action", np.random.default_rng(9), 25)


def test_unknown_kinds_and_wrong_class():
    h = trained_neo()
    data = aogmaneo.hierarchy_to_bytes(h)
    with pytest.raises(neo.NeoError, match="holds a Hierarchy, not an ImageEncoder"):
        neo.ImageEncoder(buffer=data)
    e = neo.ImageEncoder((2, 2, 4), [neo.ImageVisibleLayerDesc((4, 4, 1), 1)])
    with pytest.raises(neo.NeoError, match="holds an ImageEncoder, not a Hierarchy"):
        neo.Hierarchy(buffer=aogmaneo.image_encoder_to_bytes(e))
    with pytest.raises(neo.NeoError, match="needs a Hierarchy"):
        aogmaneo.hierarchy_to_bytes(e)
    with pytest.raises(neo.NeoError, match="kind must be"):
        aogmaneo.hierarchy_to_bytes(h, kind="disk")
    with pytest.raises(ohr.OhrError, match="pyaogmaneo's own format"):
        ohr.decode(data)


def test_export_import_files(tmp_path):
    h = trained_neo()
    e = neo.ImageEncoder((2, 2, 4), [neo.ImageVisibleLayerDesc((4, 4, 1), 1)])
    e.step([np.arange(16, dtype=np.uint8) * 9])
    for model, name in ((h, "h.bin"), (e, "e.bin")):
        path = tmp_path / name
        aogmaneo.export_file(model, path)
        back = aogmaneo.import_file(path)
        assert type(back) is type(model)
        np.testing.assert_array_equal(back.serialize_weights_to_buffer(), model.serialize_weights_to_buffer())
        assert aogmaneo.load_model(str(path)).get_weights_size() == model.get_weights_size()
    with pytest.raises(neo.NeoError, match="not a pyaogmaneo model"):
        aogmaneo.import_file(_write(tmp_path / "x", b"hello"))


def _write(path, data):
    path.write_bytes(data)
    return path


runner = CliRunner()


def _cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_import_inspect_export(tmp_path):
    h = trained_neo()
    old = tmp_path / "old.ohr"
    aogmaneo.export_file(h, old)
    r = _cli("inspect", old)
    assert r.exit_code == 0, r.stderr
    assert "pyaogmaneo-2.14.4 version file" in r.stdout and "import-aogmaneo" in r.stdout
    assert "action     2x2x3" in r.stdout

    new = tmp_path / "new.ohr"
    r = _cli("checkpoint", "import-aogmaneo", old, "-o", new, "--rng-state", "77")
    assert r.exit_code == 0, r.stderr
    header = ohr.read_header(new)
    prov = header["provenance"]
    assert prov["imported_from"] == "pyaogmaneo-2.14.4 file" and prov["source"] == "old.ohr"
    assert prov["rng_state"] == 77 and len(prov["source_sha256"]) == 64
    r = _cli("inspect", new)
    assert r.exit_code == 0 and "provenance" in r.stdout and "old.ohr" in r.stdout
    loaded = neo.Hierarchy(file_name=new)
    assert loaded.get_rng_state() == 77
    np.testing.assert_array_equal(loaded.serialize_weights_to_buffer(), h.serialize_weights_to_buffer())

    back = tmp_path / "back.bin"
    r = _cli("checkpoint", "export-aogmaneo", new, "-o", back)
    assert r.exit_code == 0, r.stderr
    assert back.read_bytes() == old.read_bytes()
    r = _cli("checkpoint", "export-aogmaneo", new, "-o", tmp_path / "buf.bin", "--buffer")
    assert r.exit_code == 0 and (tmp_path / "buf.bin").read_bytes() == old.read_bytes()[:-1]
    r = _cli("checkpoint", "verify", old)
    assert r.exit_code == 0 and "pyaogmaneo's format" in r.stdout

    for cmd in (("generate", old), ("eval", old, old)):
        r = _cli(*cmd)
        assert r.exit_code == 1 and "pyaogmaneo's own format" in r.stderr and "import-aogmaneo" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    r = _cli("checkpoint", "import-aogmaneo", new, "-o", tmp_path / "x.ohr")
    assert r.exit_code == 1 and "not a pyaogmaneo model file" in r.stderr
    bad = _write(tmp_path / "bad.bin", old.read_bytes()[:100])
    for cmd in (("inspect", bad), ("checkpoint", "import-aogmaneo", bad, "-o", tmp_path / "y.ohr")):
        r = _cli(*cmd)
        assert r.exit_code == 1 and "truncated or corrupt" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------------------
# robustness: every corruption is a NeoError


def _small_hierarchy_bytes():
    neo.set_global_state(3)
    h = neo.Hierarchy([neo.IODesc((2, 1, 3), neo.prediction, up_radius=0, down_radius=0),
                       neo.IODesc((1, 1, 2), neo.action, up_radius=0, down_radius=0, history_capacity=2,
                                  num_dendrites_per_cell=1, value_num_dendrites_per_cell=1)],
                      [neo.LayerDesc((1, 1, 3), up_radius=0, down_radius=0, recurrent_radius=0)])
    for t in range(4):
        h.step([np.array([t % 3, (t + 1) % 3], np.int32), np.array([t % 2], np.int32)], True, 0.5)
    return aogmaneo.hierarchy_to_bytes(h)


def _small_image_bytes():
    neo.set_global_state(3)
    e = neo.ImageEncoder((1, 2, 3), [neo.ImageVisibleLayerDesc((2, 2, 1), 0)])
    e.step([np.array([0, 50, 100, 250], np.uint8)], True, True)
    return aogmaneo.image_encoder_to_bytes(e)


def _load_or_error(data, cls):
    """Either a NeoError, or a model that steps and re-exports to bytes that load the same."""
    try:
        m = cls(buffer=data)
    except neo.NeoError:
        return None
    to_bytes = aogmaneo.hierarchy_to_bytes if cls is neo.Hierarchy else aogmaneo.image_encoder_to_bytes
    again = to_bytes(m)
    assert to_bytes(cls(buffer=again)) == again
    sizes = ([m.get_io_size(i) for i in range(m.get_num_io())] if cls is neo.Hierarchy
             else [m.get_visible_size(v) for v in range(m.get_num_visible_layers())])
    if sum(w * h * z for w, h, z in sizes) > 10**6:
        return m  # a valid model over a large input (its width and height have no bytes): too slow to step here
    if cls is neo.Hierarchy:
        m.step([np.zeros(np.prod(m.get_io_size(i)[:2]), np.int32) for i in range(m.get_num_io())], True, 0.0)
    else:
        m.step([np.zeros(np.prod(m.get_visible_size(v)), np.uint8) for v in range(m.get_num_visible_layers())],
               True, True)
    return m


def _loads(data, cls):
    """Whether ``data`` loads; anything but a NeoError fails the test."""
    try:
        cls(buffer=data)
    except neo.NeoError:
        return False
    return True


def test_truncation_at_every_length():
    for data, cls in ((_small_hierarchy_bytes(), neo.Hierarchy), (_small_image_bytes(), neo.ImageEncoder)):
        assert _load_or_error(data, cls) is not None
        for n in range(len(data)):
            if cls is neo.Hierarchy and n == len(data) - 1:
                # The file minus its anticipation byte is pyaogmaneo's buffer: valid.
                assert cls(buffer=data[:n]).params.anticipation is True
                continue
            with pytest.raises(neo.NeoError):
                cls(buffer=data[:n])
        with pytest.raises(neo.NeoError, match="follow"):
            cls(buffer=data + b"\0\0")


def _put(data, offset, value):
    b = bytearray(data)
    b[offset:offset + 4] = int(value).to_bytes(4, "little", signed=value < 0)
    return bytes(b)


@pytest.mark.parametrize("value", [-1, 2**31 - 1])
def test_huge_and_negative_counts_refused_before_allocating(value):
    data = _small_hierarchy_bytes()
    # The int32 words of the structure (counts, sizes, dendrites, radii, visible
    # layer counts, the actor history): every word before the params that holds a
    # small non-negative int (CSDR state words come along, which is fine).
    end = len(data) - 1 - 32 - 2 * 48
    offsets = [off for off in range(4, end - 3, 4) if 0 <= int.from_bytes(data[off:off + 4], "little") <= 64]
    assert len(offsets) > 30
    tracemalloc.start()
    try:
        for off in offsets:
            mutated = _put(data, off, value)
            if mutated == data:
                continue
            _loads(mutated, neo.Hierarchy)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak


def test_image_encoder_huge_fields():
    data = _small_image_bytes()
    tracemalloc.start()
    try:
        for off in range(4, len(data) - 3, 4):
            for value in (-1, 2**31 - 1, 2**20):
                _loads(_put(data, off, value), neo.ImageEncoder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak


def _flip_and_load(data, sources):
    which = data.draw(st.sampled_from(sorted(sources)))
    raw, cls = sources[which]()
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    _load_or_error(bytes(b), cls)


SMALL = {"hierarchy": lambda: (_small_hierarchy_bytes(), neo.Hierarchy),
         "image": lambda: (_small_image_bytes(), neo.ImageEncoder)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_byte_flips(data):
    _flip_and_load(data, SMALL)


def _larger_hierarchy_bytes():
    return aogmaneo.hierarchy_to_bytes(trained_neo("3 layers, two predictions + action + none", steps=5))


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_byte_flips_long(data):
    _flip_and_load(data, {**SMALL, "3 layers": lambda: (_larger_hierarchy_bytes(), neo.Hierarchy)})
