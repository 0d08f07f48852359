"""Writes tests/data/detector_8c818af.ohr, a detector saved by the code of commit 8c818af
(before the level checks and the calibrated tails), and prints the rows that code gives
after loading it (copied into tests/test_streaming.py,
test_a_detector_saved_by_8c818af_continues_exactly_as_it_would_have).

Run from a checkout of 8c818af with its extensions built:
    cd OLD_CHECKOUT && PYTHONPATH=$PWD OMP_NUM_THREADS=1 python PATH/TO/make_detector_8c818af.py OUT.ohr
"""
import random
import sys

from neocli import streaming as st

rnd = random.Random(7)
opts = st.DetectorOptions(layers=1, hidden=(2, 2, 8), radius=1, bins=16, calendar=False)  # a small file
det = st.Detector(["v"], [(70.0, 130.0)], opts, seed=3)
for _ in range(400):
    det.update(round(rnd.gauss(100, 5), 3))
det.save(sys.argv[1])
again = st.Detector.load(sys.argv[1])
for x in [112.0, 100.0, 98.5, 101.0, 131.0, 100.0, 99.0, 102.0, 97.0, 100.5, 100.0, 101.0]:
    r = again.update(x)
    print(repr(x), repr(r.predicted[0]), repr(r.raw_score), repr(r.anomaly_score))
