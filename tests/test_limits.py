"""Limits that protect the nogil kernels: array sizes, loop bounds, input copies,
degenerate sampling. Each is a case that once could crash or misbehave."""
from __future__ import annotations

import numpy as np
import pytest

import neocli as neo


def _small(**io_kw):
    return [neo.IODesc((2, 2, 8), neo.prediction, **io_kw)], [neo.LayerDesc((3, 3, 8))]


@pytest.mark.parametrize("io_kw, layer_kw, what", [
    ({"num_dendrites_per_cell": 2**21}, {}, "decoder"),
    ({"up_radius": 40000}, {}, "encoder weights"),
    ({"down_radius": 30000}, {}, "decoder"),
    ({}, {"hidden_size": (50000, 50000, 8)}, "hidden_size"),
    ({}, {"recurrent_radius": 30000}, "recurrent"),
])
def test_descriptors_past_the_int32_array_limit_are_refused_before_allocation(io_kw, layer_kw, what):
    ios = [neo.IODesc((2, 2, 8), neo.prediction, **io_kw)]
    layers = [neo.LayerDesc(**{"hidden_size": (3, 3, 8), **layer_kw})]
    with pytest.raises(neo.NeoError, match=what):
        neo.Hierarchy(ios, layers)


@pytest.mark.parametrize("io_kw, what", [
    ({"history_capacity": 2**28}, "history"),
    ({"value_num_dendrites_per_cell": 2**30}, "value"),
    ({"num_dendrites_per_cell": 2**28}, "policy"),
])
def test_actor_descriptors_past_the_limit_are_refused(io_kw, what):
    ios = [neo.IODesc((2, 2, 8), neo.none), neo.IODesc((1, 1, 4), neo.action, **io_kw)]
    with pytest.raises(neo.NeoError, match=what):
        neo.Hierarchy(ios, [neo.LayerDesc((3, 3, 8))])


def test_sizes_just_under_the_limit_are_not_refused_by_the_check():
    # 3*3*8 hidden cells * 25 area * 8 input cells = 14,400 weights: well inside.
    neo.Hierarchy(*_small())
    from neocli.hierarchy import _check_array_sizes

    ios, layers = _small(num_dendrites_per_cell=2**31 // (2 * 2 * 8 * 25 * 8) - 1)
    _check_array_sizes(ios, layers)  # no error: the product is just under 2**31
    ios, layers = _small(num_dendrites_per_cell=2**31 // (2 * 2 * 8 * 25 * 8) + 1)
    with pytest.raises(neo.NeoError):
        _check_array_sizes(ios, layers)


def _run(h, seq):
    out = []
    for x in seq:
        h.step([x])
        out.append(h.get_prediction_cis(0).copy())
    return np.array(out)


def test_huge_l_radius_behaves_like_one_covering_the_grid():
    rng = np.random.default_rng(3)
    seq = [rng.integers(0, 8, 4) for _ in range(30)]
    results = []
    for radius in (6, 2**31 - 1):
        neo.set_global_state(7)
        h = neo.Hierarchy(*_small())
        h.params.layers[0].encoder.l_radius = radius
        results.append((_run(h, seq), h.serialize_weights_to_buffer().tobytes()))
    assert np.array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_read_only_and_strided_inputs_step_like_a_contiguous_copy():
    rng = np.random.default_rng(4)
    seq = [rng.integers(0, 8, 4).astype(np.int32) for _ in range(20)]
    neo.set_global_state(11)
    a = neo.Hierarchy(*_small())
    neo.set_global_state(11)
    b = neo.Hierarchy(*_small())
    for x in seq:
        ro = x.copy()
        ro.flags.writeable = False
        strided = np.repeat(x, 2)[::2]
        assert not strided.flags.c_contiguous
        a.step([ro])
        b.step([strided])
        assert np.array_equal(a.get_prediction_cis(0), b.get_prediction_cis(0))
    assert a.serialize_to_buffer().tobytes() == b.serialize_to_buffer().tobytes()


def test_step_does_not_keep_or_alter_the_callers_array():
    h = neo.Hierarchy(*_small())
    x = np.array([1, 2, 3, 4], dtype=np.int32)
    h.step([x])
    assert x.tolist() == [1, 2, 3, 4]


def test_sampling_at_a_temperature_that_underflows_gives_the_most_likely_cell():
    neo.set_global_state(5)
    h = neo.Hierarchy(*_small())
    for x in ([1, 2, 3, 4], [5, 6, 7, 0]) * 20:
        h.step([x])
    probs = h.get_prediction_acts(0).reshape(4, 8)
    got = h.sample_prediction(0, 1e-30)
    assert got.tolist() == probs.argmax(axis=1).tolist()


def test_sample_prediction_temperature_must_be_a_number():
    h = neo.Hierarchy(*_small())
    with pytest.raises(TypeError, match="temperature"):
        h.sample_prediction(0, "hot")


def test_actor_state_round_trip_is_byte_exact_after_clear_state():
    neo.set_global_state(9)
    ios = [neo.IODesc((2, 2, 8), neo.none), neo.IODesc((1, 1, 4), neo.action, history_capacity=16)]
    h = neo.Hierarchy(ios, [neo.LayerDesc((3, 3, 8))])
    rng = np.random.default_rng(1)
    for t in range(40):
        h.step([rng.integers(0, 8, 4), [int(t % 4)]], True, float(rng.random()))
    h.clear_state()
    h.step([[1, 2, 3, 4], [0]], True, 1.0)  # history now holds 1 of 16 slots
    s1 = h.serialize_state_to_buffer().tobytes()
    g = copy_of(h)
    g.set_state_from_buffer(s1)
    assert g.serialize_state_to_buffer().tobytes() == s1


def copy_of(h):
    return neo.Hierarchy(buffer=h.serialize_to_buffer())


def test_buffers_may_be_any_buffer_protocol_object():
    import array

    h = neo.Hierarchy(*_small())
    h.step([[1, 2, 3, 4]])
    full = array.array("B", h.serialize_to_buffer().tobytes())
    g = neo.Hierarchy(buffer=full)
    g.set_state_from_buffer(array.array("B", h.serialize_state_to_buffer().tobytes()))
    g.set_weights_from_buffer(memoryview(h.serialize_weights_to_buffer().tobytes())[::1])
    assert g.serialize_to_buffer().tobytes() == h.serialize_to_buffer().tobytes()
    with pytest.raises(TypeError, match="state buffer"):
        g.set_state_from_buffer("not bytes")


def test_history_iters_has_one_limit_for_the_api_and_for_files():
    ios = [neo.IODesc((2, 2, 8), neo.none), neo.IODesc((1, 1, 4), neo.action)]
    h = neo.Hierarchy(ios, [neo.LayerDesc((3, 3, 8))])
    h.params.ios[1].actor.history_iters = 2**29
    with pytest.raises(neo.NeoError, match="history_iters"):
        h.step([[0, 1, 2, 3], [0]])
    h.params.ios[1].actor.history_iters = 16
    h.step([[0, 1, 2, 3], [0]])  # nothing was changed by the refused step
