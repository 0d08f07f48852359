"""neocli.distributed on a real Dask LocalCluster (2 worker processes, one per module).

Everything is compared with in-process (serial) runs: results must never depend on
where a task ran, on how many workers there were, or on a worker dying mid-run.
"""
from __future__ import annotations

import os
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
    a.write_bytes(NOVEL[:1200])
    b.write_bytes(NOVEL[9000:9800])
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
    assert stream.steps == 2000
    assert list(np.nonzero(stream.clear)[0]) == [0, 1200]  # each file start
    p = tmp_path / "p.txt"
    p.write_bytes(b"ab\n\ncd\n")
    st = D.encode_stream([p], make_codec("bytes"), "blank")
    assert st.steps == 7 and list(np.nonzero(st.clear)[0]) == [0, 3]  # the blank line starts a new context
    assert not D.encode_stream([p], make_codec("bytes"), "none").clear.any()


def test_one_shard_is_plain_sequential_training(stream, engine):
    init = _init_model()
    ref = _sections(_sequential(init, stream, epochs=2))
    r = D.train_data_parallel(stream, init, shards=1, sync_every=400, epochs=2, engine=engine)
    assert r.rounds == 10  # 4000 steps in rounds of 400: the model crossed engines 10 times
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
