"""Property tests (hypothesis) for what ``Hierarchy.step`` accepts (issue 4).

Every input either works — and then gives exactly the result of the canonical
form, a contiguous int32 array per IO — or raises the documented error
(``NeoError`` for a wrong value, count or shape, ``TypeError`` for a wrong type)
before anything changes. Covered: Python lists, tuples, nested lists, every
integer dtype in both byte orders, strided, reversed, Fortran-ordered and
read-only arrays, ``array.array``, memoryviews, bare ints and 0-d arrays for
one-column ports; out-of-range and huge values, wrong counts and shapes,
floats (NaN/inf included), bools, strings, objects, ragged lists; rewards and
mimic values of every kind; wrong numbers of IOs.
"""
from __future__ import annotations

import array
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import neocli as neo
from neocli import NeoError

P, A, N = neo.prediction, neo.action, neo.none
# Three ports: a 2-D prediction port, a one-column input-only port, an action port.
IOS = [((2, 2, 5), P), ((1, 1, 3), N), ((1, 2, 4), A)]
SIZES = [s for s, _ in IOS]
F32_MAX = float(np.finfo(np.float32).max)

SETTINGS = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _build() -> bytes:
    state = neo.get_global_state()
    neo.set_global_state(77)
    try:
        h = neo.Hierarchy([neo.IODesc(s, t, up_radius=1, down_radius=1, history_capacity=8) for s, t in IOS],
                          [neo.LayerDesc((3, 3, 6), up_radius=1, down_radius=1)])
    finally:
        neo.set_global_state(state)
    h.params.ios[2].actor.min_steps = 1
    h.params.ios[2].actor.history_iters = 2
    rs = np.random.RandomState(0)
    for _ in range(6):
        h.step([rs.randint(0, z, size=w * hh) for w, hh, z in SIZES], True, float(rs.uniform(-1, 1)))
    return h.serialize_to_buffer().tobytes()


BASE = _build()


def fresh() -> neo.Hierarchy:
    """The same warmed-up hierarchy every time."""
    return neo.Hierarchy(buffer=BASE)


def snapshot(h: neo.Hierarchy) -> tuple:
    """Everything a step can change: state, weights, the hierarchy's RNG, actor probabilities."""
    return (h.serialize_state_to_buffer().tobytes(), h.serialize_weights_to_buffer().tobytes(),
            h.get_rng_state(), h.get_prediction_acts(2).tobytes())


def canonical(values: list[list[int]]) -> list[np.ndarray]:
    """The reference form of the inputs: one contiguous int32 array per IO."""
    return [np.array(v, dtype=np.int32) for v in values]


def csdrs():
    """Valid cell indices for every IO."""
    return st.tuples(*[st.lists(st.integers(0, z - 1), min_size=w * hh, max_size=w * hh) for w, hh, z in SIZES])


# --------------------------------------------------------------------------
# valid inputs in every accepted form


INT_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
              ">i2", ">i4", ">u4", ">i8", "<i4", "=i8"]


def _strided(a: np.ndarray) -> np.ndarray:
    big = np.zeros(a.size * 3, dtype=a.dtype)
    big[::3] = a
    view = big[::3]
    assert not view.flags.c_contiguous or a.size <= 1
    return view


FORMS = {
    "list": lambda v, w, h: list(v),
    "tuple": lambda v, w, h: tuple(v),
    "list of numpy ints": lambda v, w, h: [np.int64(x) for x in v],
    "strided": lambda v, w, h: _strided(np.array(v, dtype=np.int32)),
    "strided int64": lambda v, w, h: _strided(np.array(v, dtype=np.int64)),
    "reversed view": lambda v, w, h: np.array(v[::-1], dtype=np.int32)[::-1],
    "read-only": lambda v, w, h: _readonly(np.array(v, dtype=np.int32)),
    "read-only strided uint8": lambda v, w, h: _readonly(_strided(np.array(v, dtype=np.uint8))),
    "frombuffer of bytes": lambda v, w, h: np.frombuffer(np.array(v, dtype=np.int32).tobytes(), dtype=np.int32),
    "2-D (W, H)": lambda v, w, h: np.array(v, dtype=np.int32).reshape(w, h),
    "2-D Fortran order": lambda v, w, h: np.asfortranarray(np.array(v, dtype=np.int16).reshape(w, h)),
    "2-D list of lists": lambda v, w, h: np.array(v).reshape(w, h).tolist(),
    "array.array": lambda v, w, h: array.array("i", v),
    "array.array of bytes": lambda v, w, h: array.array("B", v),
    "memoryview": lambda v, w, h: memoryview(np.array(v, dtype=np.int32)),
}
ONE_COLUMN_FORMS = {
    "bare int": lambda v, w, h: v[0],
    "numpy scalar": lambda v, w, h: np.uint16(v[0]),
    "0-d array": lambda v, w, h: np.array(v[0], dtype=np.int64),
}


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _forms_for(i: int):
    names = sorted(FORMS) + [f"dtype {d}" for d in INT_DTYPES]
    if SIZES[i][0] * SIZES[i][1] == 1:
        names += sorted(ONE_COLUMN_FORMS)
    return st.sampled_from(names)


def make_form(name: str, values: list[int], i: int):
    """``values`` of IO ``i`` in the accepted form ``name``."""
    w, h, _ = SIZES[i]
    if name.startswith("dtype "):
        return np.array(values, dtype=np.dtype(name[6:]))
    return {**FORMS, **ONE_COLUMN_FORMS}[name](values, w, h)


@settings(SETTINGS, max_examples=300)
@given(csdrs(), st.tuples(*[_forms_for(i) for i in range(len(IOS))]), st.sampled_from(["list", "tuple"]),
       st.booleans(), st.floats(-10, 10))
def test_every_accepted_form_gives_the_canonical_result(values, forms, container, learn, reward):
    """Any accepted form of valid inputs steps exactly as contiguous int32 arrays do."""
    inputs = [make_form(f, list(v), i) for i, (f, v) in enumerate(zip(forms, values))]
    copies = [np.array(x, copy=True) if not isinstance(x, (int, np.integer)) else x for x in inputs]
    ref, got = fresh(), fresh()
    ref.step(canonical(values), learn, reward)
    got.step(list(inputs) if container == "list" else tuple(inputs), learn, reward)
    assert snapshot(got) == snapshot(ref)
    for x, c in zip(inputs, copies):  # the caller's inputs are never written to
        assert np.array_equal(np.asarray(x), np.asarray(c))


@SETTINGS
@given(csdrs(), st.integers(0, len(IOS) - 1), st.integers(-100, 100))
def test_inputs_are_copied(values, i, junk):
    """Changing an input array after ``step`` changes nothing (the hierarchy keeps no reference)."""
    arrays = canonical(values)
    h, ref = fresh(), fresh()
    h.step(arrays)
    ref.step(canonical(values))
    arrays[i][...] = junk
    h.step(canonical(values))
    ref.step(canonical(values))
    assert snapshot(h) == snapshot(ref)


def test_stacked_rows_of_one_ndarray():
    """pyaogmaneo accepts a stacked 2-D array of rows when every IO has the same column count."""
    ios = [neo.IODesc((1, 2, 4), P, up_radius=1, down_radius=1), neo.IODesc((1, 2, 3), N, up_radius=1)]
    h1 = neo.Hierarchy(ios, [neo.LayerDesc((2, 2, 4), up_radius=1, down_radius=1)])
    h2 = neo.Hierarchy(buffer=h1.serialize_to_buffer())
    h1.step(np.array([[0, 3], [2, 1]]))
    h2.step([np.array([0, 3], dtype=np.int32), np.array([2, 1], dtype=np.int32)])
    assert h1.serialize_state_to_buffer().tobytes() == h2.serialize_state_to_buffer().tobytes()


# --------------------------------------------------------------------------
# invalid inputs: the documented error, nothing changed


def _bad_value(i: int):
    """(input, expected exception) for IO ``i``: every way to be wrong."""
    w, h, z = SIZES[i]
    cols = w * h
    ok = st.lists(st.integers(0, z - 1), min_size=cols, max_size=cols)

    def with_value(bad_val, dtype):
        return ok.flatmap(lambda v: st.integers(0, cols - 1).map(
            lambda k: np.array(v[:k] + [bad_val] + v[k + 1:], dtype=dtype)))

    out_of_range = st.one_of(
        *[with_value(val, dt).map(lambda a: (a, NeoError)) for val, dt in
          [(-1, "int32"), (z, "int32"), (2**31 - 1, "int32"), (-2**31, "int32"), (2**40, "int64"),
           (-2**63, "int64"), (2**63, "uint64"), (2**64 - 1, "uint64"), (255, "uint8"), (-128, "int8"),
           (z, ">i4"), (-1, ">i8")]],
        ok.flatmap(lambda v: st.sampled_from([-1, z, 10**6, 2**31, 2**62]).map(
            lambda bad: (v[:-1] + [bad], NeoError))),
    )
    wrong_count = st.one_of(
        st.integers(1, 3 * cols + 2).filter(lambda n: n != cols).flatmap(
            lambda n: st.lists(st.integers(0, z - 1), min_size=n, max_size=n).map(
                lambda v: (np.array(v, dtype=np.int32), NeoError))),
        st.just((np.zeros(0, dtype=np.int32), NeoError)),
    )
    wrong_shape = st.sampled_from([(1, 1, cols), (cols, 1, 1), (2, cols), (cols, 2)]).filter(
        lambda s: s != (w, h)).map(lambda s: (np.zeros(s, dtype=np.int32), NeoError))
    wrong_type = st.one_of(
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=cols, max_size=cols).map(
            lambda v: (np.array(v), TypeError)),
        st.lists(st.floats(0, z - 1), min_size=cols, max_size=cols).map(lambda v: (v, TypeError)),
        st.sampled_from([np.float32, np.float16, np.complex64, bool, object, "U3", "S2", "datetime64[s]"]).map(
            lambda dt: (np.zeros(cols, dtype=dt), TypeError)),
        st.sampled_from([None, True, np.bool_(False), "0" * cols, b"\x00" * cols, 1.0, {0: 0}, object(),
                         [None] * cols, [[0, 1], [0]], [2**64] * cols, [-2**63 - 1] * cols]).map(
            lambda v: (v, TypeError)),
    )
    cases = [out_of_range, wrong_count, wrong_shape, wrong_type]
    if cols > 1:
        cases.append(st.integers(0, z - 1).map(lambda v: (v, NeoError)))  # a bare int, many columns
    return st.one_of(*cases)


@settings(SETTINGS, max_examples=500)
@given(csdrs(), st.integers(0, len(IOS) - 1).flatmap(lambda i: st.tuples(st.just(i), _bad_value(i))))
def test_bad_inputs_raise_the_documented_error_and_change_nothing(values, case):
    """A wrong value/count/shape is a NeoError, a wrong type a TypeError; both name the IO."""
    i, (bad, expected) = case
    inputs = canonical(values)
    inputs[i] = bad
    h = fresh()
    before = snapshot(h)
    with pytest.raises((NeoError, TypeError)) as err:
        h.step(inputs)
    assert isinstance(err.value, expected), f"{type(err.value).__name__}: {err.value}"
    if expected is TypeError:  # NeoError is a ValueError, never a TypeError
        assert not isinstance(err.value, NeoError), err.value
    assert f"IO {i}" in str(err.value)
    assert snapshot(h) == before
    h.step(canonical(values))  # and the hierarchy still works


def test_empty_list_is_a_count_error():
    """``[]`` for a 4-column port is a wrong count, not a float input."""
    with pytest.raises(NeoError, match="expected 4 columns"):
        fresh().step([[], 1, [0, 1]])


@SETTINGS
@given(st.one_of(st.integers(0, 2), st.integers(4, 8)), csdrs())
def test_wrong_number_of_ios(n, values):
    """One CSDR per IO, no more, no fewer: NeoError."""
    inputs = (canonical(values) * 3)[:n]
    with pytest.raises(NeoError, match=f"expected 3, got {n}"):
        fresh().step(inputs)


@pytest.mark.parametrize("container", [None, 5, "abc", b"ab", {0: 1, 1: 1, 2: 1}, {1, 2, 3}, iter([1, 2, 3])])
def test_input_container_types(container):
    """input_cis must be a list/tuple (or a stacked array): anything else is a TypeError."""
    with pytest.raises(TypeError, match="input_cis"):
        fresh().step(container)


# --------------------------------------------------------------------------
# reward and mimic


def _numbers():
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(width=32, allow_nan=True, allow_infinity=True).map(np.float32),
        st.floats(width=16).map(np.float16),
        st.integers(-10**6, 10**6),
        st.integers(-10**6, 10**6).map(np.int64),
    )


@settings(SETTINGS, max_examples=300)
@given(csdrs(), _numbers(), st.sampled_from(["reward", "mimic"]))
def test_reward_and_mimic_values(values, x, which):
    """Non-finite is a NeoError with nothing changed; finite values within float32 step and stay in range."""
    assume(not (math.isfinite(x) and abs(float(x)) > F32_MAX))  # refused: test_reward_beyond_float32_is_refused
    h = fresh()
    before = snapshot(h)
    kw = {which: x}
    if not math.isfinite(x):
        with pytest.raises(NeoError, match=f"{which} must be finite"):
            h.step(canonical(values), True, **kw)
        assert snapshot(h) == before
        return
    for _ in range(3):
        h.step(canonical(values), True, **kw)
    for i, (w, hh, z) in enumerate(SIZES):
        if i != 1:
            p = h.get_prediction_cis(i)
            assert p.shape == (w * hh,) and p.min() >= 0 and p.max() < z
    if abs(float(x)) <= 1e6:
        # Moderate rewards and imitation weights keep every float finite.
        assert all(np.isfinite(a).all() for _, a in h._section_arrays()["weights"] if a.dtype == np.float32)


@pytest.mark.parametrize("bad", [None, True, np.bool_(True), "1.0", [1.0], 1j, object()])
@pytest.mark.parametrize("which", ["reward", "mimic"])
def test_reward_and_mimic_types(bad, which):
    """A reward or mimic that is not a real number is a TypeError."""
    with pytest.raises(TypeError, match=which):
        fresh().step(canonical([[0] * 4, [0], [0, 0]]), True, **{which: bad})


@pytest.mark.parametrize("x", [1e39, -1e300, 10**400], ids=["1e39", "-1e300", "10**400"])
@pytest.mark.parametrize("which", ["reward", "mimic"])
def test_reward_beyond_float32_is_refused(x, which):
    """A value the kernels' float32 cannot hold must be refused, like NaN and inf."""
    h = fresh()
    before = snapshot(h)
    with pytest.raises(NeoError):
        h.step(canonical([[0] * 4, [0], [0, 0]]), True, **{which: x})
    assert snapshot(h) == before


@pytest.mark.parametrize("flag", [True, False, np.bool_(True), 1, 0])
def test_learn_enabled_bool_like(flag):
    """bool, numpy bool and 0/1 select learning exactly as True/False do."""
    a, b = fresh(), fresh()
    a.step(canonical([[0, 1, 2, 3], [1], [0, 3]]), flag)
    b.step(canonical([[0, 1, 2, 3], [1], [0, 3]]), bool(flag))
    assert snapshot(a) == snapshot(b)


def test_learn_enabled_array_is_a_type_error():
    """An array is not a flag."""
    with pytest.raises(TypeError):
        fresh().step(canonical([[0, 1, 2, 3], [1], [0, 3]]), np.array([1, 2]))


# --------------------------------------------------------------------------
# random small architectures


@st.composite
def architectures(draw):
    """A small valid hierarchy description with random sizes, radii and IO types."""
    n_io = draw(st.integers(1, 3))
    ios = []
    for k in range(n_io):
        size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(2, 6)))
        kind = draw(st.sampled_from([P, N, A])) if k else draw(st.sampled_from([P, A]))
        ios.append(neo.IODesc(size, kind, num_dendrites_per_cell=draw(st.integers(1, 3)),
                              value_num_dendrites_per_cell=draw(st.integers(1, 3)),
                              up_radius=draw(st.integers(0, 2)), down_radius=draw(st.integers(0, 2)),
                              history_capacity=draw(st.integers(2, 6))))
    layers = [neo.LayerDesc((draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(2, 5))),
                            num_dendrites_per_cell=draw(st.integers(1, 3)), up_radius=draw(st.integers(0, 2)),
                            recurrent_radius=draw(st.integers(-1, 1)), down_radius=draw(st.integers(0, 2)))
              for _ in range(draw(st.integers(1, 3)))]
    return ios, layers


@settings(SETTINGS, max_examples=100)
@given(architectures(), st.integers(0, 2**32 - 1), st.floats(-2, 2))
def test_random_architectures_step_in_range(arch, seed, reward):
    """Any small valid architecture steps on random valid inputs, keeps outputs in range and round-trips."""
    ios, layers = arch
    h = neo.Hierarchy(ios, layers)
    for i, d in enumerate(ios):
        if d.io_type == A:
            h.params.ios[i].actor.min_steps = 1
    rs = np.random.RandomState(seed % 2**32)
    for _ in range(5):
        h.step([rs.randint(0, d.size[2], size=d.size[0] * d.size[1]) for d in ios], True, reward)
    for i, d in enumerate(ios):
        if d.io_type != N:
            p = h.get_prediction_cis(i)
            assert p.shape == (d.size[0] * d.size[1],) and p.min() >= 0 and p.max() < d.size[2]
    for l, ld in enumerate(layers):
        hc = h.get_hidden_cis(l)
        assert hc.min() >= 0 and hc.max() < ld.hidden_size[2]
    again = neo.Hierarchy(buffer=h.serialize_to_buffer())
    assert snapshot_generic(again) == snapshot_generic(h)


def snapshot_generic(h: neo.Hierarchy) -> tuple:
    """State, weights and RNG position of any hierarchy."""
    return (h.serialize_state_to_buffer().tobytes(), h.serialize_weights_to_buffer().tobytes(), h.get_rng_state())
