"""Helpers that drive neocli and pyaogmaneo side by side and diff every observable."""
from __future__ import annotations

import numpy as np

import neocli as neo


def build_pair(ios, layers, seed):
    """Build the same hierarchy in both libraries from the same global state.

    ``ios``: list of (size, io_type_int, kwargs); ``layers``: list of (hidden_size, kwargs).
    """
    import pyaogmaneo as pa

    out = []
    for mod in (pa, neo):
        types = [mod.none, mod.prediction, mod.action]
        mod.set_global_state(seed)
        h = mod.Hierarchy([mod.IODesc(s, types[t], **k) for s, t, k in ios],
                          [mod.LayerDesc(s, **k) for s, k in layers])
        out.append(h)
    return out


def masked_state(ours: neo.Hierarchy, buf: np.ndarray) -> np.ndarray:
    """Zero the actor ring samples past history_size: pyaogmaneo leaves garbage there."""
    buf = np.array(buf, dtype=np.uint8, copy=True)
    pos = 0
    for name, arr in ours._section_arrays()["state"]:
        if name.endswith(".meta"):
            size = int(buf[pos:pos + 4].view(np.int32)[0])
        if name.endswith(".ring"):
            cap = arr.shape[0]
            per = arr.nbytes // cap
            buf[pos + size * per:pos + arr.nbytes] = 0
        pos += arr.nbytes
    return buf


def compare(ref, ours, ios, step, probs_tol=1e-6, weights_tol=None):
    """Assert every observable matches; ``weights_tol`` compares float actor weights loosely."""
    for l in range(ref.get_num_layers()):
        np.testing.assert_array_equal(ref.get_hidden_cis(l), ours.get_hidden_cis(l),
                                      err_msg=f"step {step}: layer {l} hidden cis")
        if l > 0:
            np.testing.assert_array_equal(ref.get_layer_prediction_cis(l), ours.get_layer_prediction_cis(l),
                                          err_msg=f"step {step}: layer {l} prediction")
    for i, (s, t, _) in enumerate(ios):
        if t == 0:
            continue
        np.testing.assert_array_equal(ref.get_prediction_cis(i), ours.get_prediction_cis(i),
                                      err_msg=f"step {step}: IO {i} prediction cis")
        if t == 2 and step < 0:
            continue  # the reference's actor probs are uninitialised before the first step
        np.testing.assert_allclose(ref.get_prediction_acts(i), ours.get_prediction_acts(i), rtol=0,
                                   atol=probs_tol, err_msg=f"step {step}: IO {i} probs")
    wr, wo = ref.serialize_weights_to_buffer(), ours.serialize_weights_to_buffer()
    assert len(wr) == len(wo)
    if weights_tol is None:
        np.testing.assert_array_equal(wr, wo, err_msg=f"step {step}: weights")
    else:
        _compare_weights_loosely(ours, wr, wo, weights_tol, step)
    sr = masked_state(ours, ref.serialize_state_to_buffer())
    so = masked_state(ours, ours.serialize_state_to_buffer())
    if weights_tol is None:
        np.testing.assert_array_equal(sr, so, err_msg=f"step {step}: state")


def _compare_weights_loosely(ours, wr, wo, tol, step):
    pos = 0
    for name, arr in ours._section_arrays()["weights"]:
        a, b = wr[pos:pos + arr.nbytes], wo[pos:pos + arr.nbytes]
        if arr.dtype == np.float32:
            np.testing.assert_allclose(a.view(np.float32), b.view(np.float32), rtol=0, atol=tol,
                                       err_msg=f"step {step}: {name}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"step {step}: {name}")
        pos += arr.nbytes


def random_inputs(rng, ios):
    """One random CSDR per IO."""
    return [rng.integers(0, s[2], s[0] * s[1]).astype(np.int32) for s, t, k in ios]


def run_pair(ios, layers, seed, steps, mimic=0.0, learn_every=1, weights_tol=None, probs_tol=1e-6):
    """Step both libraries on the same random inputs and rewards, diffing every step."""
    ref, ours = build_pair(ios, layers, seed)
    compare(ref, ours, ios, -1)
    rng = np.random.default_rng(seed)
    for t in range(steps):
        inputs = random_inputs(rng, ios)
        reward = float(rng.normal())
        learn = (t % learn_every) == 0
        ref.step(inputs, learn, reward, mimic)
        ours.step(inputs, learn, reward, mimic)
        compare(ref, ours, ios, t, probs_tol=probs_tol, weights_tol=weights_tol)
    return ref, ours
