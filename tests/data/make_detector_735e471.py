"""Writes tests/data/detector_735e471.ohr, a detector saved by the code of commit 735e471
(calibrated tails with bins up to 40, alert tail 1.5e-3, no routine-event check), and
prints the rows that code gives after loading it (copied into tests/test_streaming.py,
test_a_detector_saved_by_735e471_continues_exactly_as_it_would_have).

The stream is timestamped (5-minute steps over 3 days) and spiky (deviations far beyond
40 sd), with a spike at 03:15 every day, so today's routine-event check and wider bins
would change its scores if they were wrongly switched on for an old file.

Run from a checkout of 735e471 with its extensions built:
    cd OLD_CHECKOUT && PYTHONPATH=$PWD OMP_NUM_THREADS=1 python PATH/TO/make_detector_735e471.py OUT.ohr
"""
import random
import sys

from neocli import streaming as st

rnd = random.Random(11)
opts = st.DetectorOptions(layers=1, hidden=(2, 2, 8), radius=1, bins=16)  # a small file
det = st.Detector(["v"], [(0.0, 100.0)], opts, seed=5)
t0 = 1_400_000_000 - 1_400_000_000 % 86400
for i in range(3 * 288):
    x = 0.0 if rnd.random() < 0.9 else round(rnd.uniform(1, 3), 3)
    if i % 288 == 39:  # 03:15 every day
        x = 60.0
    det.update(x, str(t0 + 300 * i))
det.save(sys.argv[1])
again = st.Detector.load(sys.argv[1])
for k, x in enumerate([0.0, 2.0, 0.0, 60.0, 0.0, 0.0, 95.0, 0.0, 1.5, 0.0]):
    i = 3 * 288 + 36 + k  # 03:00 on the fourth day onwards
    r = again.update(x, str(t0 + 300 * i))
    print((x, t0 + 300 * i, r.predicted[0], r.raw_score, r.anomaly_score))
