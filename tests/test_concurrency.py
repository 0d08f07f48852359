"""Concurrency (issue 4): processes racing for one output path, hierarchies stepping in threads.

* Two ``neocli train`` processes writing the same model and the same checkpoint
  names at once: every file is, afterwards, one of the two complete models
  (arrays identical to that run's solo output, every checksum valid), and no
  temporary file is left.
* Two hierarchies stepping in two Python threads at once (the kernels release
  the GIL): every step's outputs and the final bytes equal those of sequential
  runs, at one and at two OpenMP threads per kernel.
* Threads of one process saving to one path while another thread reads it:
  every read sees a complete model.
* One hierarchy (or image encoder) used from a second thread while a step runs:
  NeoError, nothing changed.
"""
from __future__ import annotations

import os
import re
import subprocess
import threading

import numpy as np
import pytest

import neocli as neo
import neocli.cli.train  # noqa: F401  (registers the command)
from neocli import ohr
from neocli.cli.app import app
from conftest import NEOCLI, ohr_sections as arrays_of, small_hierarchy, subprocess_env

TEXT = ("it is a truth universally acknowledged, that a single man in possession of a good fortune, "
        "must be in want of a wife.\n" * 12).encode()


def series_name(name: str) -> str:
    """A checkpoint name without its run id (which differs between otherwise identical runs)."""
    return re.sub(r"^ckpt-[0-9a-f]{8}-", "ckpt-", name)


def _train_args(data, out, ckpt, run):
    return ["train", str(data), "-o", str(out), "--checkpoint-dir", str(ckpt), "--checkpoint-every", "200",
            "--seed", str(run), "--meta", f"run={run}", "--layers", "1", "--hidden", "4x4x16", "--quiet",
            "--threads", "1"]


def test_two_processes_train_to_the_same_path(tmp_path):
    """Both finish; the output and every shared checkpoint name hold one run's complete model."""
    data = tmp_path / "data.txt"
    data.write_bytes(TEXT)
    refs = {}
    for run in (1, 2):  # each run alone: what its files must contain
        d = tmp_path / f"ref{run}"
        d.mkdir()
        app(_train_args(data, d / "out.ohr", d, run), standalone_mode=False)
        refs[run] = {series_name(name): arrays_of(d / name) for name in os.listdir(d) if name.endswith(".ohr")}
    assert refs[1]["out.ohr"] != refs[2]["out.ohr"]
    ckpt_names = sorted(n for n in refs[1] if n.startswith("ckpt-"))
    assert len(ckpt_names) >= 3 and ckpt_names == sorted(n for n in refs[2] if n.startswith("ckpt-"))

    shared, out = tmp_path / "shared", tmp_path / "shared" / "out.ohr"
    shared.mkdir()
    env = subprocess_env()
    procs = [subprocess.Popen([*NEOCLI, *_train_args(data, out, shared, run)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for run in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()

    winner = int(ohr.read_header(out)["user"]["run"])
    assert arrays_of(out) == refs[winner]["out.ohr"]
    assert neo.Hierarchy(file_name=str(out)).get_num_layers() == 1
    # Each run names its checkpoints with its own run id: both series are there, complete.
    shared_ckpts = [n for n in os.listdir(shared) if n.startswith("ckpt-")]
    assert len(shared_ckpts) == 2 * len(ckpt_names)
    for name in shared_ckpts:
        got = arrays_of(shared / name)
        run = int(ohr.read_header(shared / name)["user"]["run"])
        assert got == refs[run][series_name(name)], name  # the header and the arrays come from the same run
    assert not [f for f in os.listdir(shared) if f.endswith(".tmp")]


# --------------------------------------------------------------------------
# threads


def _hierarchies():
    """An actor hierarchy and a two-layer prediction hierarchy, big enough to keep kernels busy."""
    neo.set_global_state(101)
    a = neo.Hierarchy([neo.IODesc((4, 4, 16), neo.none), neo.IODesc((2, 2, 4), neo.action, history_capacity=32)],
                      [neo.LayerDesc((6, 6, 32)), neo.LayerDesc((4, 4, 16))])
    a.params.ios[1].actor.min_steps = 4
    neo.set_global_state(202)
    b = neo.Hierarchy([neo.IODesc((5, 5, 16), neo.prediction)], [neo.LayerDesc((6, 6, 32)), neo.LayerDesc((5, 5, 32))])
    return a.serialize_to_buffer(), b.serialize_to_buffer()


def _drive(h: neo.Hierarchy, seed: int, steps: int, start: threading.Barrier | None) -> list[bytes]:
    """Step ``h`` on a seeded input stream; return every step's outputs as bytes."""
    rs = np.random.RandomState(seed)
    sizes = [h.get_io_size(i) for i in range(h.get_num_io())]
    out = []
    if start is not None:
        start.wait()
    for t in range(steps):
        inputs = [rs.randint(0, z, size=w * hh) for w, hh, z in sizes]
        h.step(inputs, True, float(rs.uniform(-1, 1)))
        rec = [h.get_hidden_cis(h.get_num_layers() - 1)]
        for i in range(len(sizes)):
            if h.get_io_type(i) != neo.none:
                rec += [h.get_prediction_cis(i), h.get_prediction_acts(i), h.sample_prediction(i, 0.7)]
        out.append(b"".join(np.ascontiguousarray(r).tobytes() for r in rec))
    out.append(h.serialize_state_to_buffer().tobytes() + h.serialize_weights_to_buffer().tobytes())
    return out


@pytest.mark.parametrize("threads", [1, 2])
def test_two_hierarchies_in_two_threads(threads):
    """Stepping concurrently gives, step by step, exactly the sequential results."""
    blobs = _hierarchies()
    neo.set_num_threads(threads)
    steps = 40
    sequential = [_drive(neo.Hierarchy(buffer=b), seed, steps, None) for seed, b in enumerate(blobs)]
    for _ in range(2):
        hs = [neo.Hierarchy(buffer=b) for b in blobs]
        start = threading.Barrier(len(hs))
        results: list = [None] * len(hs)
        errors: list = []

        def worker(k):
            try:
                results[k] = _drive(hs[k], k, steps, start)
            except BaseException as e:  # noqa: BLE001 - surfaced below
                errors.append(e)

        workers = [threading.Thread(target=worker, args=(k,)) for k in range(len(hs))]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=600)
        assert not errors, errors
        for k in range(len(hs)):
            assert len(results[k]) == steps + 1
            for t, (got, want) in enumerate(zip(results[k], sequential[k])):
                assert got == want, f"hierarchy {k} differs at step {t}"


def test_threads_saving_one_path_while_another_reads(tmp_path):
    """Concurrent writers in one process never break each other's temp files; readers see whole models."""
    path = tmp_path / "m.ohr"
    models = []
    for seed in range(3):
        models.append(small_hierarchy(seed + 1))
    models[0].save_to_file(str(path))
    expected = [arrays_of(m.serialize_to_buffer()) for m in models]
    stop = threading.Event()
    errors: list = []
    reads = [0]

    def writer(k):
        try:
            for _ in range(30):
                models[k].save_to_file(str(path))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def reader():
        try:
            while not stop.is_set():
                assert arrays_of(path) in expected
                reads[0] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    r = threading.Thread(target=reader)
    r.start()
    ws = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for w in ws:
        w.start()
    for w in ws:
        w.join(timeout=300)
    stop.set()
    r.join(timeout=60)
    assert not errors, errors
    assert reads[0] > 0
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def _held_elsewhere(obj):
    """Hold ``obj``'s lock in another thread (as a running step does) until released."""
    got, release = threading.Event(), threading.Event()

    def hold():
        with obj._lock:
            got.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    got.wait(10)
    return release, t


def test_one_hierarchy_from_two_threads_is_refused_not_mixed():
    """While a step runs in one thread (kernels without the GIL), any other use of the
    same hierarchy from another thread raises NeoError instead of mixing its arrays."""
    neo.set_num_threads(1)
    h = small_hierarchy(3)
    x = np.zeros(4, dtype=np.int32)
    h.step([x])
    before = (h.serialize_state_to_buffer().tobytes(), h.serialize_weights_to_buffer().tobytes())
    release, t = _held_elsewhere(h)
    try:
        calls = [lambda: h.step([x]), h.clear_state, h.serialize_to_buffer, h.serialize_state_to_buffer,
                 h.serialize_weights_to_buffer, lambda: h.set_state_from_buffer(before[0]),
                 lambda: h.set_weights_from_buffer(before[1]), lambda: h.sample_prediction(0, 1.0),
                 lambda: h.merge([h, h], neo.merge_average), lambda: __import__("copy").deepcopy(h),
                 lambda: h.get_prediction_cis(0), lambda: h.get_prediction_acts(0), lambda: h.get_hidden_cis(0),
                 lambda: h.get_layer_prediction_cis(0), h.get_rng_state, lambda: h.set_rng_state(7)]
        for call in calls:
            with pytest.raises(neo.NeoError, match="in use by another thread"):
                call()
    finally:
        release.set()
        t.join()
    # nothing happened, and it is usable again once the other thread is done
    assert (h.serialize_state_to_buffer().tobytes(), h.serialize_weights_to_buffer().tobytes()) == before
    h.step([x])


def test_one_image_encoder_from_two_threads_is_refused():
    neo.set_global_state(3)
    e = neo.ImageEncoder((2, 2, 4), [neo.ImageVisibleLayerDesc((4, 4, 1), 1)])
    img = np.zeros(16, dtype=np.uint8)
    release, t = _held_elsewhere(e)
    try:
        for call in (lambda: e.step([img]), lambda: e.reconstruct(np.zeros(4, np.int32)),
                     e.serialize_weights_to_buffer):
            with pytest.raises(neo.NeoError, match="ImageEncoder is in use by another thread"):
                call()
    finally:
        release.set()
        t.join()
    e.step([img])


def test_merging_from_a_hierarchy_busy_in_another_thread_is_refused():
    neo.set_global_state(3)
    descs = ([neo.IODesc((2, 2, 8), neo.prediction)], [neo.LayerDesc((3, 3, 8))])
    a, b = neo.Hierarchy(*descs), neo.Hierarchy(*descs)
    before = a.serialize_weights_to_buffer().tobytes()
    release, t = _held_elsewhere(b)
    try:
        with pytest.raises(neo.NeoError, match="in use by another thread"):
            a.merge([a, b], neo.merge_average)
    finally:
        release.set()
        t.join()
    assert a.serialize_weights_to_buffer().tobytes() == before
    a.merge([a, b], neo.merge_average)  # and fine once b is free
    assert not b._lock._is_owned() and not a._lock._is_owned()


class _Recorder:
    """Stands in for a hierarchy's kernel object: notes each step's input, in the order
    the steps really ran (it is called while the hierarchy's lock is held)."""

    def __init__(self, core, log):
        self._core, self._log = core, log

    def step(self, inputs, *args):
        self._log.append(inputs[0].copy())
        return self._core.step(inputs, *args)

    def __getattr__(self, name):
        return getattr(self._core, name)


def test_two_threads_stepping_one_hierarchy_give_a_sequential_result():
    """The real race: two threads step one hierarchy. Calls either run or raise the
    NeoError, and the result equals running the steps that ran one after another
    (without the lock, the two threads' kernels would interleave)."""
    neo.set_num_threads(1)
    descs = ([neo.IODesc((8, 8, 16), neo.prediction)], [neo.LayerDesc((8, 8, 32))] * 2)
    neo.set_global_state(4)
    h = neo.Hierarchy(*descs)
    ran = []
    h._c = _Recorder(h._c, ran)
    rng = np.random.default_rng(0)
    xs = [rng.integers(0, 16, 64) for _ in range(40)]
    errors = []

    def worker():
        for x in xs:
            try:
                h.step([x])
            except neo.NeoError as e:
                if "in use by another thread" not in str(e):
                    errors.append(e)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == [] and len(ran) >= 1
    neo.set_global_state(4)
    g = neo.Hierarchy(*descs)
    for x in ran:
        g.step([x])
    assert h.serialize_state_to_buffer().tobytes() == g.serialize_state_to_buffer().tobytes()
    assert h.serialize_weights_to_buffer().tobytes() == g.serialize_weights_to_buffer().tobytes()
