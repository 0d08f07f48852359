"""Learning-speed checks of spec §14.3 (statistical bounds, not exact numbers)."""
import numpy as np
import pytest

import neocli as neo

RAND16_A4 = [0, 3, 2, 1, 1, 3, 0, 2, 0, 0, 2, 3, 2, 3, 2, 3]
AMBIGUOUS = [0, 1, 2, 3, 0, 1, 4, 5]


def first_all_correct(seq, steps, seed, layers=1, recurrent_radius=0, anticipation=True):
    """K: the first step from which every next-symbol prediction is correct (None if never)."""
    neo.set_global_state(seed)
    h = neo.Hierarchy([neo.IODesc((1, 1, 16), neo.prediction)],
                      [neo.LayerDesc(recurrent_radius=recurrent_radius) for _ in range(layers)])
    h.params.anticipation = anticipation
    correct = []
    for t in range(steps):
        h.step([seq[t % len(seq)]])
        correct.append(int(h.get_prediction_cis(0)[0]) == seq[(t + 1) % len(seq)])
    wrong = [t for t, c in enumerate(correct) if not c]
    k = wrong[-1] + 1 if wrong else 0
    return (k if k < steps else None), float(np.mean(correct[-len(seq) * 10:]))


@pytest.mark.parametrize("n", [4, 8, 16])
@pytest.mark.parametrize("layers", [1, 2])
def test_cycles_learned_on_first_sight(n, layers):
    for seed in range(3):
        k, _ = first_all_correct(list(range(n)), 300, seed, layers)
        assert k is not None and k <= n + 1, (n, layers, seed, k)


@pytest.mark.parametrize("layers", [1, 2])
def test_ambiguous_sequence_needs_context(layers):
    for seed in range(4):
        k, acc = first_all_correct(AMBIGUOUS, 1000, seed, layers)
        assert k is not None and k <= 80 and acc == 1.0, (seed, k)


def test_without_recurrence_ambiguity_stays():
    _, acc = first_all_correct(AMBIGUOUS, 1500, 0, 1, recurrent_radius=-1)
    assert acc < 0.9


@pytest.mark.parametrize("layers,bound", [(1, 500), (2, 300)])
def test_rand16_a4(layers, bound):
    for seed in range(3):
        k, acc = first_all_correct(RAND16_A4, 1500, seed, layers)
        assert k is not None and k <= bound and acc == 1.0, (seed, k)


def _bandit_hierarchy(seed):
    neo.set_global_state(seed)
    return neo.Hierarchy([neo.IODesc((1, 1, 4), neo.none), neo.IODesc((1, 1, 4), neo.action, history_capacity=64)],
                         [neo.LayerDesc((4, 4, 16))])


def test_imitation_reaches_teacher():
    h = _bandit_hierarchy(1)
    rng = np.random.default_rng(1)
    prev_obs = 0
    hits = []
    for t in range(1000):
        obs = int(rng.integers(0, 4))
        h.step([obs, (prev_obs + 1) % 4], True, 0.0, 1.0)
        hits.append(int(h.get_prediction_cis(1)[0]) == (obs + 1) % 4)
        prev_obs = obs
    assert np.mean(hits[500:]) >= 0.95


def test_rl_contextual_bandit_beats_chance():
    h = _bandit_hierarchy(2)
    rng = np.random.default_rng(2)
    obs, action, reward = int(rng.integers(0, 4)), 0, 0.0
    hits = []
    for t in range(5000):
        h.step([obs, action], True, reward)
        new_action = int(h.get_prediction_cis(1)[0])
        hit = new_action == (obs + 1) % 4
        hits.append(hit)
        reward = 1.0 if hit else 0.0
        action = new_action
        obs = int(rng.integers(0, 4))
    assert np.mean(hits[-500:]) > 0.38
