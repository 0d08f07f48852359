# cython: language_level=3
"""Kernel of neocli.predictive: one factor's calibrated distribution and its online update.

p_i = (1 - w) * exp(beta * lj_i) / Z + w * (count_i + alpha) / (total + alpha * n), where
lj_i is the sum of the log activations of symbol i's columns and Z runs over the symbols
seen so far (all of them before the first count). Everything is in double precision,
in a fixed order, so results are deterministic.
"""
from libc.math cimport exp, log, fmax

cdef double TINY = 1e-30


def factor_score(const float[::1] acts, const Py_ssize_t[:, ::1] idx, double[::1] counts,
                 unsigned char[::1] seen, Py_ssize_t nseen, double total, double log_beta,
                 double mix_logit, Py_ssize_t k, bint learn, double alpha, double lr_beta,
                 double lr_mix, double lb_lo, double lb_hi, double ml_lo, double ml_hi,
                 double[::1] la, double[::1] lj, double[::1] out):
    """Probability of symbol ``k`` (or -1: none), and the updated (log_beta, mix_logit).

    ``la`` (length of ``acts``) and ``lj`` (length n) are scratch; ``out`` (length n, or empty) receives the whole
    distribution. With ``learn``, one gradient step on -log p_k is taken (the caller
    updates the counts)."""
    cdef Py_ssize_t n = idx.shape[0], ncol = idx.shape[1], i, c
    cdef double beta = exp(log_beta)
    cdef double w = 1.0 / (1.0 + exp(-mix_logit))
    cdef bint restrict = 0 < nseen < n
    cdef double s, smax = -1e308, z = 0.0, zl = 0.0, q_k = 0.0, o_k = 0.0, p_k = 0.0, v
    cdef double onorm = 1.0 / (total + alpha * n)
    for i in range(acts.shape[0]):
        la[i] = log(fmax(<double>acts[i], TINY))
    for i in range(n):
        s = 0.0
        for c in range(ncol):
            s += la[idx[i, c]]
        lj[i] = s
        if (not restrict or seen[i]) and beta * s > smax:
            smax = beta * s
    for i in range(n):
        if restrict and not seen[i]:
            continue
        v = exp(beta * lj[i] - smax)
        z += v
        zl += v * lj[i]
    if out.shape[0] == n:
        for i in range(n):
            v = 0.0 if (restrict and not seen[i]) else exp(beta * lj[i] - smax) / z
            out[i] = (1.0 - w) * v + w * (counts[i] + alpha) * onorm
    if k < 0:
        return 0.0, log_beta, mix_logit
    if not (restrict and not seen[k]):
        q_k = exp(beta * lj[k] - smax) / z
    o_k = (counts[k] + alpha) * onorm
    p_k = (1.0 - w) * q_k + w * o_k
    if learn and p_k > 0.0:
        # d(-log p)/d logit(w) = -(o - q) w (1 - w) / p
        mix_logit -= lr_mix * (-(o_k - q_k) * w * (1.0 - w) / p_k)
        # d q_k / d beta = q_k (lj_k - E_q[lj]), through log beta
        if q_k > 0.0:
            log_beta -= lr_beta * (-(1.0 - w) * q_k * (lj[k] - zl / z) * beta / p_k)
        mix_logit = ml_lo if mix_logit < ml_lo else (ml_hi if mix_logit > ml_hi else mix_logit)
        log_beta = lb_lo if log_beta < lb_lo else (lb_hi if log_beta > lb_hi else log_beta)
    return p_k, log_beta, mix_logit
