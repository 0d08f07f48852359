"""Writes tests/data/detector_dc4c4d8.ohr, a detector saved by the code of commit dc4c4d8
(windows of 1000 rows, no fitted tails), and prints the rows that code gives after
loading it (copied into tests/test_streaming.py,
test_a_detector_saved_by_dc4c4d8_continues_exactly_as_it_would_have).

The stream is heavy-tailed (|Student-t| with 2 degrees, 1,600 rows, past the 1,000
deviations a tail fit needs), so today's fitted tails would change its scores if they
were wrongly switched on for an old file.

Run from a checkout of dc4c4d8 with its extensions built:
    cd OLD_CHECKOUT && PYTHONPATH=$PWD OMP_NUM_THREADS=1 python PATH/TO/make_detector_dc4c4d8.py OUT.ohr
"""
import random
import sys

from neocli import streaming as st

rnd = random.Random(3)


def noise():
    # |t| with 2 degrees of freedom: a normal over the root of a chi-square(2)/2
    return abs(rnd.gauss(0.0, 1.0) / ((rnd.expovariate(1.0)) ** 0.5))


opts = st.DetectorOptions(layers=1, hidden=(2, 2, 8), radius=1, bins=16)  # a small file
det = st.Detector(["v"], [(0.0, 400.0)], opts, seed=5)
for i in range(1600):
    det.update(round(10.0 + 5.0 * noise(), 4))
det.save(sys.argv[1])
again = st.Detector.load(sys.argv[1])
for x in [12.0, 30.0, 11.0, 90.0, 10.5, 13.0, 160.0, 10.0, 45.0, 11.0]:
    r = again.update(x)
    print((x, r.predicted[0], r.raw_score, r.anomaly_score))
