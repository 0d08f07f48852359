"""Models pickle as their ``.ohr`` bytes and continue bit-exactly (process pools, Dask).

Both classes share one base (``neocli._model._Model``): the same checks run for a
Hierarchy with an actor (its own random stream drives the action sampling and the
replay) and for an ImageEncoder learning its reconstruction (a random stream too).
"""
import copy
import pickle
import re

import numpy as np
import pytest

import neocli as neo


def _hierarchy():
    neo.set_global_state(77)
    return neo.Hierarchy(
        [neo.IODesc((2, 2, 8)), neo.IODesc((1, 1, 3), neo.action, history_capacity=16)],
        [neo.LayerDesc((3, 3, 8)), neo.LayerDesc((2, 2, 6))])


def _hierarchy_step(h, rng):
    h.step([rng.integers(0, 8, 4, dtype=np.int32), [int(rng.integers(0, 3))]],
           learn_enabled=True, reward=float(rng.normal()))
    return (h.get_prediction_cis(0).tobytes() + h.get_prediction_cis(1).tobytes()
            + h.get_prediction_acts(0).tobytes())


def _encoder():
    neo.set_global_state(78)
    return neo.ImageEncoder((3, 3, 6), [neo.ImageVisibleLayerDesc((6, 6, 2), 1)])


def _encoder_step(e, rng):
    e.step([rng.integers(0, 256, 72).astype(np.uint8)], learn_enabled=True, learn_recon=True)
    e.reconstruct(e.get_hidden_cis())
    return e.get_hidden_cis().tobytes() + e.get_reconstruction(0).tobytes()


MODELS = [pytest.param(_hierarchy, _hierarchy_step, id="Hierarchy"),
          pytest.param(_encoder, _encoder_step, id="ImageEncoder")]


def _file_bytes(m):
    """The model's .ohr bytes without the header's ``created_utc`` (whole seconds: two
    serializations may fall on either side of a second) and the header's CRC over it
    (bytes 12-16 of the prefix); every section and its CRC is compared."""
    b = bytearray(m.serialize_to_buffer())
    b[12:16] = bytes(4)
    return re.sub(rb'"created_utc":"[^"]*"', b'"created_utc":""', bytes(b), count=1)


def _everything(m):
    return (_file_bytes(m), bytes(m.serialize_weights_to_buffer()),
            bytes(m.serialize_state_to_buffer()), m.get_rng_state(), m.params.to_dict())


@pytest.mark.parametrize("make, step", MODELS)
@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_a_copy_continues_bit_exactly(make, step, how):
    m = make()
    rng = np.random.default_rng(5)
    for _ in range(7):  # pickled at step k = 7, with history and learned weights
        step(m, rng)
    if how == "pickle":
        twin = pickle.loads(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL))
    else:
        twin = getattr(copy, how)(m)
    assert type(twin) is type(m) and twin is not m
    assert _everything(twin) == _everything(m)
    state = rng.bit_generator.state
    ours = [step(m, rng) for _ in range(50)]
    rng.bit_generator.state = state
    theirs = [step(twin, rng) for _ in range(50)]
    assert ours == theirs
    assert _everything(twin) == _everything(m)
    assert len(set(ours)) > 1  # the 50 steps really moved (the test could fail)


@pytest.mark.parametrize("make, step", MODELS)
def test_a_copy_is_independent(make, step):
    m = make()
    rng = np.random.default_rng(6)
    step(m, rng)
    twin = pickle.loads(pickle.dumps(m))
    before = _everything(twin)
    for _ in range(3):
        step(m, rng)
    assert _everything(twin) == before != _everything(m)


@pytest.mark.parametrize("make, step", MODELS)
def test_pickle_keeps_params_and_a_deployable_copy_still_works(make, step):
    m = make()
    if isinstance(m, neo.Hierarchy):
        m.params.layers[0].encoder.lr = 0.25
    else:
        m.params.lr = 0.25
    twin = pickle.loads(pickle.dumps(m))
    assert twin.params.to_dict() == m.params.to_dict()
    step(twin, np.random.default_rng(7))  # the lock and thread tuner were rebuilt
