"""neocli.merging: the weight average used to synchronise data-parallel copies."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import neocli as neo
from neocli import NeoError
from neocli.merging import WeightArray, average_hierarchies, average_weights, weights_layout

TEXT = b"It is a truth universally acknowledged, that a single man in possession of a good fortune, " * 8


def _trained(seed: int, data: bytes, action: bool = False) -> neo.Hierarchy:
    neo.set_global_state(seed)
    ios = [neo.IODesc((1, 2, 16), neo.prediction)]
    if action:
        ios.append(neo.IODesc((1, 1, 4), neo.action))
    h = neo.Hierarchy(ios, [neo.LayerDesc((3, 3, 16)), neo.LayerDesc((2, 2, 8))])
    for i, b in enumerate(data):
        inputs = [np.array([b >> 4, b & 15], dtype=np.int32)]
        if action:
            inputs.append(np.array([i % 4], dtype=np.int32))
        h.step(inputs, True, reward=float(b % 3) - 1.0)
    return h


@pytest.fixture(scope="module")
def models():
    return _trained(1, TEXT[:400], action=True), _trained(1, TEXT[300:700], action=True)


def test_layout_describes_the_weights_buffer(models):
    h = models[0]
    layout = weights_layout(h)
    buf = h.serialize_weights_to_buffer()
    assert sum(a.nbytes for a in layout) == buf.size == h.get_weights_size()
    assert [a.offset for a in layout] == list(np.cumsum([0] + [a.nbytes for a in layout[:-1]]))
    kinds = {a.name.split(".")[1][:3]: a.dtype for a in layout}
    assert kinds["enc"] == np.uint8 and kinds["dec"] == np.int8
    assert any(a.dtype == np.float32 and a.name.startswith("act") for a in layout)
    # the same layout comes from the .ohr bytes
    assert weights_layout(bytes(h.serialize_to_buffer())) == layout


@pytest.mark.parametrize("rounding,seed", [("even", None), ("stochastic", 7)])
@pytest.mark.parametrize("n,factors", [(2, None), (3, [1.0, 2.0, 5.0]), (4, [0.1, 0.0, 3.0, 1.0])])
def test_average_of_identical_models_is_the_identity(models, rounding, seed, n, factors):
    h = models[0]
    buf = h.serialize_weights_to_buffer()
    out = average_weights([buf] * n, weights_layout(h), factors, rounding, seed)
    assert out.tobytes() == buf.tobytes()


def test_pyaogmaneo_merge_is_not_the_identity_but_ours_is(models):
    """Why this module exists: merge_average moves bytes of identical models."""
    h = models[0]
    before = h.serialize_weights_to_buffer()
    theirs = copy.deepcopy(h)
    theirs.merge([h, copy.deepcopy(h)], neo.merge_average)
    assert (theirs.serialize_weights_to_buffer() != before).any()
    ours = copy.deepcopy(h)
    average_hierarchies(ours, [h, copy.deepcopy(h)])
    assert ours.serialize_weights_to_buffer().tobytes() == before.tobytes()
    assert ours.serialize_state_to_buffer().tobytes() == h.serialize_state_to_buffer().tobytes()


def test_average_of_two_models_is_the_elementwise_mean(models):
    a, b = models
    layout = weights_layout(a)
    wa, wb = a.serialize_weights_to_buffer(), b.serialize_weights_to_buffer()
    assert (wa != wb).any()
    out = average_weights([wa, wb], layout)
    for arr in layout:
        sl = slice(arr.offset, arr.offset + arr.nbytes)
        x, y, m = (v[sl].view(arr.dtype).astype(np.float64) for v in (wa, wb, out))
        mean = (x + y) / 2
        if arr.dtype.kind == "f":
            np.testing.assert_allclose(m, mean, rtol=1e-6, atol=1e-7)
        else:
            assert np.array_equal(m, np.rint(mean)), arr.name  # half to even
    stoch = average_weights([wa, wb], layout, rounding="stochastic", seed=3)
    for arr in layout:
        if arr.dtype.kind != "f":
            sl = slice(arr.offset, arr.offset + arr.nbytes)
            x, y, m = (v[sl].view(arr.dtype).astype(np.float64) for v in (wa, wb, stoch))
            assert np.all(np.abs(m - (x + y) / 2) <= 0.5), arr.name


def test_rounding_half_to_even_and_weights():
    layout = [WeightArray("u", np.dtype(np.uint8), 0, 4), WeightArray("i", np.dtype(np.int8), 4, 4)]
    a = np.array([1, 2, 255, 0, 1, 2, -128, 127], dtype=np.int16).astype(np.uint8)
    b = np.array([2, 3, 254, 9, 2, 3, -127, 126], dtype=np.int16).astype(np.uint8)
    out = average_weights([a, b], layout)
    assert list(out[:4]) == [2, 2, 254, 4]  # 1.5 -> 2, 2.5 -> 2, 254.5 -> 254, 4.5 -> 4
    assert list(out[4:].view(np.int8)) == [2, 2, -128, 126]  # -127.5 -> -128, 126.5 -> 126
    three = average_weights([a, b], layout, weights=[1, 3])
    assert list(three[:4]) == [2, 3, 254, 7]  # 1.75, 2.75, 254.25, 6.75


def test_stochastic_rounding_reproduces_and_is_unbiased():
    layout = [WeightArray("u", np.dtype(np.uint8), 0, 20000)]
    a = np.full(20000, 10, dtype=np.uint8)
    b = np.full(20000, 11, dtype=np.uint8)
    x = average_weights([a, b], layout, [3, 1], "stochastic", seed=42)  # mean 10.25
    y = average_weights([a, b], layout, [3, 1], "stochastic", seed=42)
    z = average_weights([a, b], layout, [3, 1], "stochastic", seed=43)
    assert x.tobytes() == y.tobytes()
    assert x.tobytes() != z.tobytes()
    assert set(np.unique(x)) == {10, 11}
    assert abs(x.mean() - 10.25) < 0.02


def test_errors_name_the_parameter(models):
    h = models[0]
    layout = weights_layout(h)
    buf = h.serialize_weights_to_buffer()
    with pytest.raises(NeoError, match="seed"):
        average_weights([buf, buf], layout, rounding="stochastic")
    with pytest.raises(NeoError, match="rounding"):
        average_weights([buf], layout, rounding="up")
    with pytest.raises(NeoError, match="weights"):
        average_weights([buf, buf], layout, weights=[1, -1])
    with pytest.raises(NeoError, match="weights"):
        average_weights([buf, buf], layout, weights=[0, 0])
    with pytest.raises(NeoError, match=r"buffers\[1\]"):
        average_weights([buf, buf[:-1]], layout)
    with pytest.raises(NeoError, match="buffers"):
        average_weights([], layout)
