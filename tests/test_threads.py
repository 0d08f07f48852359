"""The thread tuner: picks the faster of 1 and n threads by measurement (decisions D9)."""
import numpy as np

import neocli as neo
from neocli._threads import ThreadTuner


def test_tuner_tries_both_then_keeps_the_faster_and_keeps_exploring():
    t = ThreadTuner(base_interval=8)
    first = []
    for _ in range(6):  # three steps of each to start with
        nt = t.choose(True, 2)
        first.append(nt)
        t.record(True, nt, 0.001 if nt == 1 else 0.0015)
    assert sorted(first) == [1, 1, 1, 2, 2, 2]
    picks = []
    for _ in range(400):
        nt = t.choose(True, 2)
        picks.append(nt)
        t.record(True, nt, 0.001 if nt == 1 else 0.0015)
    # mostly the fast one, still exploring the other (every 500 * 0.5 = 250 steps)
    assert picks.count(1) > 380 and picks.count(2) >= 5


def test_tuner_follows_a_change_in_load():
    t = ThreadTuner(base_interval=4)
    for _ in range(40):
        nt = t.choose(False, 2)
        t.record(False, nt, 0.001 if nt == 1 else 0.010)   # loaded: 1 thread is faster
    picks = []
    for _ in range(8000):
        nt = t.choose(False, 2)
        picks.append(nt)
        t.record(False, nt, 0.004 if nt == 1 else 0.002)   # idle: 2 threads are faster
    # 1 thread while loaded; back to 2 once an exploration sees the change
    assert picks[:40].count(1) > 35 and picks[-100:].count(2) > 85


def test_tuner_is_off_at_one_thread():
    assert ThreadTuner().choose(True, 1) == 1


def test_results_do_not_depend_on_the_tuner():
    """A 2-thread run (tuner switching between 1 and 2) equals a 1-thread run byte for byte."""
    outs = []
    for n in (1, 2):
        neo.set_num_threads(n)
        neo.set_global_state(5)
        h = neo.Hierarchy([neo.IODesc((4, 4, 16), neo.prediction)],
                          [neo.LayerDesc((8, 8, 32)), neo.LayerDesc((8, 8, 32))])
        h._tuner.base_interval = 1  # switch often
        rng = np.random.default_rng(0)
        for t in range(25):
            h.step([rng.integers(0, 16, 16)])
        outs.append((h.serialize_weights_to_buffer(), h.serialize_state_to_buffer()))
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1])


def test_a_stray_stall_costs_at_most_a_few_seconds():
    t = ThreadTuner(base_interval=8)
    times = {2: iter([0.040, 0.0013, 0.0013]), 1: iter([0.002, 0.002, 0.002])}
    for _ in range(6):
        nt = t.choose(True, 2)
        t.record(True, nt, next(times[nt]))
    assert t.choose(True, 2) == 2  # the 40 ms first step (thread start-up) was ignored
    picks, clock = [], 0.0
    for i in range(10000):
        nt = t.choose(True, 2)
        picks.append((clock, nt))
        dt = (0.0013 if nt == 2 else 0.002) + (0.2 if (nt == 2 and i == 100) else 0.0)
        t.record(True, nt, dt)
        clock += dt
    # after the stall it may sit on 1 thread, but tries 2 again within MAX_GAP seconds
    late = [nt for c, nt in picks if c > 0.3 + ThreadTuner.MAX_GAP]
    assert late and late.count(2) > 0.9 * len(late)
