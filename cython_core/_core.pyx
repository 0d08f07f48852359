# cython: language_level=3
"""Compiled kernels of neocli: encoder, decoder and actor of spec §5–§7.

Layout conventions (spec §1): columns are x-major (``col = x*H + y``), cells are
``col*Z + z``. Each component keeps its arrays as numpy arrays (for serialization
and lifetime) plus raw pointers into them (for the nogil kernels); loads always copy
*into* the existing arrays so the pointers stay valid.

Nothing here validates user input: the Python façade has already checked every
shape, dtype and index range before a kernel runs (bounds checks are off).
"""
from libc.math cimport expf, logf, tanhf, sqrtf, ceilf, powf, log2
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy
from libc.stdint cimport uint8_t, int8_t, int32_t, uint32_t, uint64_t

from _kernel cimport EPS, NEG, VisLayer, Field, get_field, make_vls, ptr_list, ptr_of, threads_for, for_cols
from _rng cimport pcg_next, pcg_seed, pcg_randf, column_stream, sround
from _omp cimport NEO_OPENMP_ENABLED, neo_omp_max_threads

import numpy as np

# Below this many inner-loop operations a kernel runs on one thread: an OpenMP
# region costs more than it saves, and on a loaded machine a region whose second
# thread is descheduled stalls the whole step (measured in benchmarks/).
cdef long PAR_WORK = 4000


def seed_state(uint64_t seed):
    """The generator state a user-facing seed maps to (a PCG seeding step).

    Raw small states such as 0 or 1 give poor first draws; seeds given on the
    command line go through this first.
    """
    return pcg_seed(seed)


def set_parallel_threshold(long work):
    """Set the per-kernel work below which a kernel runs on one thread (tuning aid)."""
    global PAR_WORK
    PAR_WORK = work


def get_parallel_threshold():
    """The per-kernel work below which a kernel runs on one thread."""
    return PAR_WORK

OPENMP_ENABLED = bool(NEO_OPENMP_ENABLED)


def omp_max_threads():
    """The OpenMP default team size (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return neo_omp_max_threads()


# ---------------------------------------------------------------------------
# random numbers

cdef class Rng:
    """A PCG32 stream (spec §4). The module keeps one as the process-wide state."""
    cdef public uint64_t state

    def __init__(self, uint64_t state=2454684463487790647ULL):
        self.state = state

    def next(self):
        """One 32-bit draw."""
        return pcg_next(&self.state)

    def randf(self):
        """One float in [0, 1) (spec §4 randf)."""
        return pcg_randf(&self.state)

    def draw_mod(self, Py_ssize_t n, uint32_t m):
        """``n`` sequential draws reduced ``mod m``, as an int32 array (merge random)."""
        out = np.empty(n, dtype=np.int32)
        cdef int32_t[::1] o = out
        cdef Py_ssize_t i
        for i in range(n):
            o[i] = <int32_t>(pcg_next(&self.state) % m)
        return out


GLOBAL_RNG = Rng()


# ---------------------------------------------------------------------------
# arithmetic as the reference does it (the field geometry is in _kernel.pxd)

cdef inline float fmax_ref(float l, float r) noexcept nogil:
    # The reference's branch-free max; kept so comparisons tie exactly as it does.
    return <float>(l > r) * (l - r) + r


cdef inline float fmin_ref(float l, float r) noexcept nogil:
    return <float>(l < r) * (l - r) + r


cdef inline float softplus_cut(float u) noexcept nogil:
    if u < <float>4.0:
        return logf(<float>1.0 + expf(u))
    return u


cdef inline float sigmoid(float u) noexcept nogil:
    return <float>0.5 * tanhf(u * <float>0.5) + <float>0.5


cdef inline void softmax_inplace(float* y, int n) noexcept nogil:
    """Max-shifted softmax with an epsilon floor and reciprocal multiply (spec §6.2)."""
    cdef int k
    cdef float m = NEG
    for k in range(n):
        if y[k] > m:
            m = y[k]
    cdef float s = <float>0.0
    for k in range(n):
        y[k] = expf(y[k] - m)
        s = s + y[k]
    cdef float inv = <float>1.0 / (s if s > EPS else EPS)
    for k in range(n):
        y[k] = y[k] * inv


# ---------------------------------------------------------------------------
# encoder (spec §5)

cdef class Encoder:
    """Two-channel fuzzy-ART sparse coder of one layer (spec §5).

    Python-visible arrays: ``weights_a``/``weights_b`` (uint8, one per visible layer,
    flat ``[col][vc][ox][oy][hc]``), ``totals_a``/``totals_b`` (int32 per hidden
    cell), ``committed`` (uint8 per hidden cell), ``hidden_cis`` (int32 per column).
    """
    cdef readonly int hw, hh, hz, nv
    cdef readonly list vis_descs, weights_a, weights_b, totals_a, totals_b
    cdef readonly object hidden_cis, committed, importance
    cdef object _comparison, _learn_flag, _isa, _isb, _fs
    cdef VisLayer* vls
    cdef uint8_t** wa
    cdef uint8_t** wb
    cdef int32_t** ta
    cdef int32_t** tb
    cdef float* imp
    cdef int32_t* cis
    cdef uint8_t* comm
    cdef float* comparison
    cdef uint8_t* learn_flag
    cdef int32_t* isa
    cdef int32_t* isb
    cdef float* fs

    def __init__(self, hidden_size, list vis_descs, Rng rng=None):
        """Build the encoder; with ``rng`` draw the initial weights (spec §5.2)."""
        self.hw, self.hh, self.hz = [int(x) for x in hidden_size]
        self.vis_descs = [tuple(int(x) for x in d) for d in vis_descs]
        self.nv = len(self.vis_descs)
        cdef int cols = self.hw * self.hh
        cdef int cells = cols * self.hz
        self.vls = make_vls(self.vis_descs, self.hw, self.hh)
        self.weights_a = []
        self.weights_b = []
        self.totals_a = []
        self.totals_b = []
        for (w, h, z, r) in self.vis_descs:
            d = 2 * r + 1
            n = cells * z * d * d
            self.weights_a.append(np.zeros(n, dtype=np.uint8))
            self.weights_b.append(np.zeros(n, dtype=np.uint8))
            self.totals_a.append(np.zeros(cells, dtype=np.int32))
            self.totals_b.append(np.zeros(cells, dtype=np.int32))
        self.hidden_cis = np.zeros(cols, dtype=np.int32)
        self.committed = np.zeros(cells, dtype=np.uint8)
        self.importance = np.ones(max(self.nv, 1), dtype=np.float32)
        self._comparison = np.zeros(cols, dtype=np.float32)
        self._learn_flag = np.zeros(cols, dtype=np.uint8)
        self._isa = np.zeros(cells, dtype=np.int32)
        self._isb = np.zeros(cells, dtype=np.int32)
        self._fs = np.zeros(cells * 4, dtype=np.float32)
        self.wa = <uint8_t**>ptr_list(self.weights_a)
        self.wb = <uint8_t**>ptr_list(self.weights_b)
        self.ta = <int32_t**>ptr_list(self.totals_a)
        self.tb = <int32_t**>ptr_list(self.totals_b)
        self.imp = <float*>ptr_of(self.importance)
        self.cis = <int32_t*>ptr_of(self.hidden_cis)
        self.comm = <uint8_t*>ptr_of(self.committed)
        self.comparison = <float*>ptr_of(self._comparison)
        self.learn_flag = <uint8_t*>ptr_of(self._learn_flag)
        self.isa = <int32_t*>ptr_of(self._isa)
        self.isb = <int32_t*>ptr_of(self._isb)
        self.fs = <float*>ptr_of(self._fs)
        cdef Py_ssize_t i, n_
        cdef int v
        cdef uint8_t* a
        cdef uint8_t* b
        if rng is not None:
            for v in range(self.nv):
                a = self.wa[v]
                b = self.wb[v]
                n_ = self.weights_a[v].shape[0]
                for i in range(n_):
                    a[i] = <uint8_t>(255 - pcg_next(&rng.state) % 8)
                    b[i] = <uint8_t>(255 - pcg_next(&rng.state) % 8)
            self.recompute_totals()

    def __dealloc__(self):
        free(self.vls)
        free(self.wa)
        free(self.wb)
        free(self.ta)
        free(self.tb)

    def recompute_totals(self):
        """Recompute TA/TB as in-field sums of the weights (spec §5.1)."""
        cdef int j, v, ix, iy, c, k, base
        cdef Field f
        cdef int Zh = self.hz
        cdef VisLayer* vl
        cdef int32_t* ta
        cdef int32_t* tb
        for v in range(self.nv):
            vl = &self.vls[v]
            ta = self.ta[v]
            tb = self.tb[v]
            memset(ta, 0, sizeof(int32_t) * self.hw * self.hh * Zh)
            memset(tb, 0, sizeof(int32_t) * self.hw * self.hh * Zh)
            for j in range(self.hw * self.hh):
                get_field(vl, j // self.hh, j % self.hh, &f)
                for ix in range(f.x0, f.x1 + 1):
                    for iy in range(f.y0, f.y1 + 1):
                        for c in range(vl.z):
                            base = Zh * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * (c + vl.z * j)))
                            for k in range(Zh):
                                ta[j * Zh + k] += self.wa[v][base + k]
                                tb[j * Zh + k] += self.wb[v][base + k]

    def derive_committed(self):
        """Mark a cell committed iff any of its weights fell below 248 (spec §9.2)."""
        cells = self.hw * self.hh * self.hz
        comm = np.zeros(cells, dtype=bool)
        for v, (w, h, z, r) in enumerate(self.vis_descs):
            d = 2 * r + 1
            shape = (self.hw * self.hh, z * d * d, self.hz)
            a = self.weights_a[v].reshape(shape)
            b = self.weights_b[v].reshape(shape)
            low = (a.min(axis=1) < 248) | (b.min(axis=1) < 248)
            comm |= low.reshape(-1)
        self.committed[:] = comm

    cdef void activate_col(self, int j, int32_t** ins, float choice, float vigilance) noexcept nogil:
        cdef int Zh = self.hz
        cdef int hx = j // self.hh
        cdef int hy = j % self.hh
        cdef int32_t* isa = self.isa + j * Zh
        cdef int32_t* isb = self.isb + j * Zh
        cdef float* SA = self.fs + 4 * j * Zh
        cdef float* SB = SA + Zh
        cdef float* TA = SB + Zh
        cdef float* TB = TA + Zh
        cdef int v, ix, iy, k, base, cell0 = j * Zh
        cdef float N = <float>0.0, Nbar = <float>0.0, imp, w
        cdef Field f
        cdef VisLayer* vl
        cdef const uint8_t* a
        cdef const uint8_t* b
        cdef const int32_t* inp
        for k in range(Zh):
            SA[k] = <float>0.0
            SB[k] = <float>0.0
            TA[k] = <float>0.0
            TB[k] = <float>0.0
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, hx, hy, &f)
            a = self.wa[v]
            b = self.wb[v]
            inp = ins[v]
            for k in range(Zh):
                isa[k] = 0
                isb[k] = 0
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    base = Zh * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * (inp[ix * vl.h + iy] + vl.z * j)))
                    for k in range(Zh):
                        isa[k] += a[base + k]
                        isb[k] += b[base + k]
            imp = self.imp[v]
            N = N + imp * <float>f.count
            Nbar = Nbar + imp * <float>f.count * <float>(vl.z - 1)
            w = imp * (<float>1.0 / <float>255.0)
            for k in range(Zh):
                SA[k] = SA[k] + <float>isa[k] * w
                SB[k] = SB[k] + <float>isb[k] * w
                TA[k] = TA[k] + <float>self.ta[v][cell0 + k] * w
                TB[k] = TB[k] + <float>self.tb[v][cell0 + k] * w
        cdef int winner = -1, overall = 0
        cdef float best = <float>0.0, obest = <float>0.0, mA, mB, aA, aB, match, act, overall_act = <float>0.0
        for k in range(Zh):
            mA = SA[k] / N
            mB = (TB[k] - SB[k]) / Nbar
            aA = mA / (choice + TA[k])
            aB = mB / (choice + TB[k])
            match = fmax_ref(mA, mB)
            act = fmin_ref(aA, aB)
            if k == 0:
                overall_act = act
            if (self.comm[cell0 + k] == 0 or match >= vigilance) and act > best:
                best = act
                winner = k
            if act > obest:
                obest = act
                overall = k
                overall_act = act
        if winner >= 0:
            self.cis[j] = winner
            self.comparison[j] = overall_act
            self.learn_flag[j] = 1
        else:
            self.cis[j] = overall
            self.comparison[j] = <float>0.0
            self.learn_flag[j] = 0

    cdef void learn_col(self, int j, int32_t** ins, float lr, float active_ratio, int l_radius) noexcept nogil:
        if self.learn_flag[j] == 0:
            return
        cdef int hx = j // self.hh
        cdef int hy = j % self.hh
        cdef int dx, dy, qx, qy, higher = 0, total = 1
        cdef float mine = self.comparison[j]
        for dx in range(-l_radius, l_radius + 1):
            for dy in range(-l_radius, l_radius + 1):
                if dx == 0 and dy == 0:
                    continue
                qx = hx + dx
                qy = hy + dy
                if qx >= 0 and qy >= 0 and qx < self.hw and qy < self.hh:
                    total += 1
                    if self.comparison[qx * self.hh + qy] >= mine:
                        higher += 1
        if <float>higher / <float>total > active_ratio:
            return
        cdef int Zh = self.hz
        cdef int k = self.cis[j]
        cdef int cell = j * Zh + k
        cdef float rate = lr if self.comm[cell] else <float>1.0
        cdef int v, ix, iy, c, idx, act_c, old, nw
        cdef Field f
        cdef VisLayer* vl
        cdef uint8_t* a
        cdef uint8_t* b
        cdef int32_t dta, dtb
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, hx, hy, &f)
            a = self.wa[v]
            b = self.wb[v]
            dta = 0
            dtb = 0
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    act_c = ins[v][ix * vl.h + iy]
                    for c in range(vl.z):
                        idx = k + Zh * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * (c + vl.z * j)))
                        if c == act_c:
                            old = b[idx]
                            nw = old - <int>ceilf(rate * <float>old)
                            if nw < 0:
                                nw = 0
                            b[idx] = <uint8_t>nw
                            dtb += nw - old
                        else:
                            old = a[idx]
                            nw = old - <int>ceilf(rate * <float>old)
                            if nw < 0:
                                nw = 0
                            a[idx] = <uint8_t>nw
                            dta += nw - old
            self.ta[v][cell] += dta
            self.tb[v][cell] += dtb
        self.comm[cell] = 1

    cdef long work(self) noexcept nogil:
        cdef long w = 0
        cdef int v
        for v in range(self.nv):
            w += <long>self.vls[v].d * self.vls[v].d * self.hz
        return w * self.hw * self.hh

    cdef void step_c(self, int32_t** ins, bint learn, float choice, float vigilance, float lr,
                     float active_ratio, int l_radius, int nt) noexcept nogil:
        cdef int cols = self.hw * self.hh
        cdef EncoderCall c = EncoderCall(enc=<void*>self, ins=ins, choice=choice, vigilance=vigilance, lr=lr,
                                         active_ratio=active_ratio, l_radius=l_radius)
        nt = threads_for(nt, self.work(), PAR_WORK, cols)
        for_cols(encoder_activate, &c, cols, nt)
        if learn:
            for_cols(encoder_learn, &c, cols, nt)


cdef struct EncoderCall:
    void* enc
    int32_t** ins
    float choice, vigilance, lr, active_ratio
    int l_radius


cdef void encoder_activate(void* call, int j) noexcept nogil:
    cdef EncoderCall* c = <EncoderCall*>call
    (<Encoder>c.enc).activate_col(j, c.ins, c.choice, c.vigilance)


cdef void encoder_learn(void* call, int j) noexcept nogil:
    cdef EncoderCall* c = <EncoderCall*>call
    (<Encoder>c.enc).learn_col(j, c.ins, c.lr, c.active_ratio, c.l_radius)


# ---------------------------------------------------------------------------
# decoder (spec §6)

cdef class Decoder:
    """Softmax predictor over one output CSDR from 1 or 2 context CSDRs (spec §6).

    Arrays: ``weights`` (int8 per visible layer, flat ``[col][vc][ox][oy][k][i]``),
    ``pred_cis`` (int32 per column), ``probs`` (float32 per cell), ``dend``
    (float32 per cell and dendrite).
    """
    cdef readonly int ow, oh, oz, nd, nv
    cdef readonly list vis_descs, weights
    cdef readonly object pred_cis, probs, dend
    cdef object _isum, _delta
    cdef VisLayer* vls
    cdef int8_t** w
    cdef int32_t* cis
    cdef float* pr
    cdef float* dd
    cdef int32_t* isum
    cdef int32_t* delta

    def __init__(self, output_size, int num_dendrites, list vis_descs, Rng rng=None):
        """Build the decoder; with ``rng`` draw the initial weights (spec §6.1)."""
        self.ow, self.oh, self.oz = [int(x) for x in output_size]
        self.nd = num_dendrites
        self.vis_descs = [tuple(int(x) for x in d) for d in vis_descs]
        self.nv = len(self.vis_descs)
        cdef int cols = self.ow * self.oh
        cdef int cells = cols * self.oz
        self.vls = make_vls(self.vis_descs, self.ow, self.oh)
        self.weights = []
        for (w, h, z, r) in self.vis_descs:
            d = 2 * r + 1
            self.weights.append(np.zeros(cells * self.nd * z * d * d, dtype=np.int8))
        self.pred_cis = np.zeros(cols, dtype=np.int32)
        self.probs = np.zeros(cells, dtype=np.float32)
        self.dend = np.zeros(cells * self.nd, dtype=np.float32)
        self._isum = np.zeros(cells * self.nd, dtype=np.int32)
        self._delta = np.zeros(cells * self.nd, dtype=np.int32)
        self.w = <int8_t**>ptr_list(self.weights)
        self.cis = <int32_t*>ptr_of(self.pred_cis)
        self.pr = <float*>ptr_of(self.probs)
        self.dd = <float*>ptr_of(self.dend)
        self.isum = <int32_t*>ptr_of(self._isum)
        self.delta = <int32_t*>ptr_of(self._delta)
        cdef Py_ssize_t i, n_
        cdef int v
        cdef int8_t* wp
        if rng is not None:
            for v in range(self.nv):
                wp = self.w[v]
                n_ = self.weights[v].shape[0]
                for i in range(n_):
                    wp[i] = <int8_t>(<int>(pcg_next(&rng.state) % 9) - 4)

    def __dealloc__(self):
        free(self.vls)
        free(self.w)

    cdef void activate_col(self, int j, int32_t** ins, float scale) noexcept nogil:
        cdef int ZD = self.oz * self.nd
        cdef int D = self.nd
        cdef int32_t* s = self.isum + j * ZD
        cdef int v, ix, iy, q, k, i, n = 0, base, half = D // 2
        cdef Field f
        cdef VisLayer* vl
        cdef const int8_t* wp
        for q in range(ZD):
            s[q] = 0
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, j // self.oh, j % self.oh, &f)
            n += f.count
            wp = self.w[v]
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    base = ZD * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * (ins[v][ix * vl.h + iy] + vl.z * j)))
                    for q in range(ZD):
                        s[q] += wp[base + q]
        cdef float g = sqrtf(<float>1.0 / <float>n) / <float>127.0 * scale
        cdef float dscale = sqrtf(<float>1.0 / <float>D)
        cdef float acc, u, best = NEG
        cdef int besti = 0
        cdef float* y = self.pr + j * self.oz
        cdef float* dend = self.dd + j * ZD
        for k in range(self.oz):
            acc = <float>0.0
            for i in range(D):
                u = g * <float>s[k * D + i]
                dend[k * D + i] = sigmoid(u)
                if i < half:
                    acc = acc - softplus_cut(u)
                else:
                    acc = acc + softplus_cut(u)
            y[k] = dscale * acc
            if y[k] > best:
                best = y[k]
                besti = k
        self.cis[j] = besti
        softmax_inplace(y, self.oz)

    cdef void learn_col(self, int j, int32_t** ins, const int32_t* target, float lr, uint32_t base_draw) noexcept nogil:
        cdef int ZD = self.oz * self.nd
        cdef int D = self.nd
        cdef int32_t* dl = self.delta + j * ZD
        cdef const float* probs = self.pr + j * self.oz
        cdef const float* dend = self.dd + j * ZD
        cdef uint64_t st = column_stream(base_draw, j)
        cdef int k, i, half = D // 2, t = target[j]
        cdef float e, lr127 = lr * <float>127.0
        for k in range(self.oz):
            e = lr127 * ((<float>1.0 if k == t else <float>0.0) - probs[k])
            for i in range(D):
                if i < half:
                    dl[k * D + i] = sround(-e * dend[k * D + i], &st)
                else:
                    dl[k * D + i] = sround(e * dend[k * D + i], &st)
        cdef int v, ix, iy, q, base, nw
        cdef Field f
        cdef VisLayer* vl
        cdef int8_t* wp
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, j // self.oh, j % self.oh, &f)
            wp = self.w[v]
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    base = ZD * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * (ins[v][ix * vl.h + iy] + vl.z * j)))
                    for q in range(ZD):
                        nw = wp[base + q] + dl[q]
                        if nw > 127:
                            nw = 127
                        elif nw < -127:
                            nw = -127
                        wp[base + q] = <int8_t>nw

    cdef long work(self) noexcept nogil:
        cdef long w = 0
        cdef int v
        for v in range(self.nv):
            w += <long>self.vls[v].d * self.vls[v].d
        return w * self.ow * self.oh * self.oz * self.nd

    cdef void activate_c(self, int32_t** ins, float scale, int nt) noexcept nogil:
        cdef int cols = self.ow * self.oh
        cdef DecoderCall c = DecoderCall(dec=<void*>self, ins=ins, target=NULL, scale=scale, lr=0, base_draw=0)
        for_cols(decoder_activate, &c, cols, threads_for(nt, self.work(), PAR_WORK, cols))

    cdef void learn_c(self, int32_t** ins, const int32_t* target, float lr, uint64_t* rng, int nt) noexcept nogil:
        cdef int cols = self.ow * self.oh
        cdef DecoderCall c = DecoderCall(dec=<void*>self, ins=ins, target=target, scale=0, lr=lr,
                                         base_draw=pcg_next(rng))
        for_cols(decoder_learn, &c, cols, threads_for(nt, self.work(), PAR_WORK, cols))

    def clear_state(self):
        """Zero predictions and probs; ``dend`` is kept (spec §6.4)."""
        self.pred_cis[:] = 0
        self.probs[:] = 0.0


cdef struct DecoderCall:
    void* dec
    int32_t** ins
    const int32_t* target
    float scale, lr
    uint32_t base_draw


cdef void decoder_activate(void* call, int j) noexcept nogil:
    cdef DecoderCall* c = <DecoderCall*>call
    (<Decoder>c.dec).activate_col(j, c.ins, c.scale)


cdef void decoder_learn(void* call, int j) noexcept nogil:
    cdef DecoderCall* c = <DecoderCall*>call
    (<Decoder>c.dec).learn_col(j, c.ins, c.target, c.lr, c.base_draw)


# ---------------------------------------------------------------------------
# actor (spec §7)

cdef struct ActorParamsC:
    float vlr, plr, smoothing, delay_rate, policy_clip, discount, td_scale_decay
    int min_steps, history_iters


cdef class Actor:
    """Per-column actor-critic with a replay ring (spec §7).

    Arrays: ``value_weights``/``policy_weights``/``policy_delayed`` (float32 per
    visible layer), ``action_cis``, ``values``, ``probs``, ``td_scale``, ``meta``
    (int32 ``[history_size, start]``) and ``ring`` (int32 words, ``C`` samples of
    ``[inputs per visible layer, target, values (f32 bits), reward (f32 bits)]``).
    """
    cdef readonly int ow, oh, oz, vd, pd, nv, cap, in_cols, sample_words
    cdef readonly list vis_descs, value_weights, policy_weights, policy_delayed
    cdef readonly object action_cis, values, probs, td_scale, meta, ring
    cdef object _scratch
    cdef VisLayer* vls
    cdef float** vw
    cdef float** pw
    cdef float** pwd
    cdef int32_t* cis
    cdef float* vals
    cdef float* pr
    cdef float* tds
    cdef int32_t* mt
    cdef int32_t* rg
    cdef float* scr
    cdef int scr_stride

    def __init__(self, output_size, int value_dendrites, int policy_dendrites, int capacity,
                 list vis_descs, Rng rng=None):
        """Build the actor; with ``rng`` draw the initial weights (spec §7.1)."""
        self.ow, self.oh, self.oz = [int(x) for x in output_size]
        self.vd = value_dendrites
        self.pd = policy_dendrites
        self.cap = capacity
        self.vis_descs = [tuple(int(x) for x in d) for d in vis_descs]
        self.nv = len(self.vis_descs)
        cdef int cols = self.ow * self.oh
        cdef int cells = cols * self.oz
        self.vls = make_vls(self.vis_descs, self.ow, self.oh)
        self.in_cols = self.vis_descs[0][0] * self.vis_descs[0][1]
        self.value_weights = []
        self.policy_weights = []
        self.policy_delayed = []
        for (w, h, z, r) in self.vis_descs:
            d = 2 * r + 1
            self.value_weights.append(np.zeros(cols * self.vd * z * d * d, dtype=np.float32))
            self.policy_weights.append(np.zeros(cells * self.pd * z * d * d, dtype=np.float32))
        self.action_cis = np.zeros(cols, dtype=np.int32)
        self.values = np.zeros(cols, dtype=np.float32)
        self.probs = np.zeros(cells, dtype=np.float32)
        self.td_scale = np.zeros(cols, dtype=np.float32)
        self.meta = np.zeros(2, dtype=np.int32)
        self.sample_words = self.nv * self.in_cols + 2 * cols + 1
        self.ring = np.zeros(self.cap * self.sample_words, dtype=np.int32)
        # per column: V (vd), P (oz*pd), Pd (oz*pd), pi (oz), pid (oz)
        self.scr_stride = self.vd + 2 * self.oz * self.pd + 2 * self.oz
        self._scratch = np.zeros(cols * self.scr_stride, dtype=np.float32)
        cdef Py_ssize_t i, n_
        cdef float* p
        if rng is not None:
            for v in range(self.nv):
                for arr in (self.value_weights[v], self.policy_weights[v]):
                    p = <float*>ptr_of(arr)
                    n_ = arr.shape[0]
                    for i in range(n_):
                        p[i] = -<float>0.01 + (<float>0.01 - -<float>0.01) * pcg_randf(&rng.state)
        for v in range(self.nv):
            self.policy_delayed.append(self.policy_weights[v].copy())
        self.vw = <float**>ptr_list(self.value_weights)
        self.pw = <float**>ptr_list(self.policy_weights)
        self.pwd = <float**>ptr_list(self.policy_delayed)
        self.cis = <int32_t*>ptr_of(self.action_cis)
        self.vals = <float*>ptr_of(self.values)
        self.pr = <float*>ptr_of(self.probs)
        self.tds = <float*>ptr_of(self.td_scale)
        self.mt = <int32_t*>ptr_of(self.meta)
        self.rg = <int32_t*>ptr_of(self.ring)
        self.scr = <float*>ptr_of(self._scratch)

    def __dealloc__(self):
        free(self.vls)
        free(self.vw)
        free(self.pw)
        free(self.pwd)

    def reset_delayed(self):
        """Set the delayed policy equal to the policy (after a weights load or merge)."""
        for v in range(self.nv):
            self.policy_delayed[v][:] = self.policy_weights[v]

    def clear_state(self):
        """Zero actions, values and the history size (spec §7.4)."""
        self.action_cis[:] = 0
        self.values[:] = 0.0
        self.meta[0] = 0

    cdef inline int32_t* sample(self, int i) noexcept nogil:
        # H[i]: i steps older than the newest sample.
        return self.rg + ((self.mt[1] + i) % self.cap) * self.sample_words

    cdef float value_sums(self, int j, int32_t** ins, float* V) noexcept nogil:
        """Fill V with float sums over the field; return g = sqrt(1/n)."""
        cdef int v, ix, iy, i, base, n = 0
        cdef Field f
        cdef VisLayer* vl
        cdef const float* w
        for i in range(self.vd):
            V[i] = <float>0.0
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, j // self.oh, j % self.oh, &f)
            n += f.count
            w = self.vw[v]
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    base = self.vd * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * (ins[v][ix * vl.h + iy] + vl.z * j)))
                    for i in range(self.vd):
                        V[i] = V[i] + w[base + i]
        return sqrtf(<float>1.0 / <float>n)

    cdef void policy_sums(self, int j, int32_t** ins, float** weights, float* P) noexcept nogil:
        cdef int ZD = self.oz * self.pd
        cdef int v, ix, iy, q, base
        cdef Field f
        cdef VisLayer* vl
        cdef const float* w
        for q in range(ZD):
            P[q] = <float>0.0
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, j // self.oh, j % self.oh, &f)
            w = weights[v]
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    base = ZD * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * (ins[v][ix * vl.h + iy] + vl.z * j)))
                    for q in range(ZD):
                        P[q] = P[q] + w[base + q]

    cdef float value_of(self, float g, const float* V) noexcept nogil:
        cdef int i, half = self.vd // 2
        cdef float acc = <float>0.0
        for i in range(self.vd):
            if i < half:
                acc = acc - softplus_cut(g * V[i])
            else:
                acc = acc + softplus_cut(g * V[i])
        return sqrtf(<float>1.0 / <float>self.vd) * acc

    cdef void policy_of(self, float g, const float* P, float* out) noexcept nogil:
        cdef int k, i, half = self.pd // 2
        cdef float acc
        cdef float ps = sqrtf(<float>1.0 / <float>self.pd)
        for k in range(self.oz):
            acc = <float>0.0
            for i in range(self.pd):
                if i < half:
                    acc = acc - softplus_cut(g * P[k * self.pd + i])
                else:
                    acc = acc + softplus_cut(g * P[k * self.pd + i])
            out[k] = ps * acc
        softmax_inplace(out, self.oz)

    cdef void forward_col(self, int j, int32_t** ins, uint32_t base_draw) noexcept nogil:
        cdef float* V = self.scr + j * self.scr_stride
        cdef float* P = V + self.vd
        cdef float* probs = self.pr + j * self.oz
        cdef float g = self.value_sums(j, ins, V)
        self.vals[j] = self.value_of(g, V)
        self.policy_sums(j, ins, self.pw, P)
        self.policy_of(g, P, probs)
        cdef uint64_t st = column_stream(base_draw, j)
        cdef float u = pcg_randf(&st)
        cdef float cum = <float>0.0
        cdef int k, sel = 0
        for k in range(self.oz):
            cum = cum + probs[k]
            if cum >= u:
                sel = k
                break
        self.cis[j] = sel

    cdef void learn_col(self, int j, int t, float mimic, ActorParamsC* p) noexcept nogil:
        cdef int cols = self.ow * self.oh
        cdef int ZD = self.oz * self.pd
        cdef int in_words = self.nv * self.in_cols
        cdef int32_t* s_t = self.sample(t)
        cdef int astar = self.sample(t - 1)[in_words + j]
        cdef float G = self.vals[j]
        cdef float one_m = <float>1.0 - p.smoothing
        cdef int tau
        cdef int32_t* sa
        cdef int32_t* sb
        for tau in range(1, t + 1):
            sa = self.sample(tau)
            sb = self.sample(tau - 1)
            G = p.smoothing * (<float*>(sa + in_words + cols))[j] + one_m * ((<float*>(sb + in_words + 2 * cols))[0] + p.discount * G)
        cdef int32_t* ins[8]
        cdef int v
        for v in range(self.nv):
            ins[v] = s_t + v * self.in_cols
        cdef float* V = self.scr + j * self.scr_stride
        cdef float* P = V + self.vd
        cdef float* Pd = P + ZD
        cdef float* pi = Pd + ZD
        cdef float* pid = pi + self.oz
        cdef float g = self.value_sums(j, ins, V)
        cdef float vhat = self.value_of(g, V)
        self.policy_sums(j, ins, self.pw, P)
        self.policy_sums(j, ins, self.pwd, Pd)
        self.policy_of(g, P, pi)
        self.policy_of(g, Pd, pid)
        cdef int k, i
        cdef float* probs = self.pr + j * self.oz
        for k in range(self.oz):
            probs[k] = pi[k]
        cdef float delta = G - vhat
        cdef float absd = delta if delta >= <float>0.0 else -delta
        self.tds[j] = fmax_ref(self.tds[j] * p.td_scale_decay, absd)
        cdef float ntd = delta / fmax_ref(EPS, self.tds[j])
        cdef float ratio = pi[astar] / fmax_ref(EPS, pid[astar])
        cdef bint clipped = (ratio < <float>1.0 - p.policy_clip and delta < <float>0.0) or (ratio > <float>1.0 + p.policy_clip and delta > <float>0.0)
        cdef float beta = p.plr * ntd * (<float>0.0 if clipped else <float>1.0) + mimic
        # Reuse V as the per-dendrite value step and P as the per-(cell, dendrite) policy step.
        cdef int vhalf = self.vd // 2, phalf = self.pd // 2
        cdef float vstep = p.vlr * delta
        for i in range(self.vd):
            if i < vhalf:
                V[i] = -vstep * sigmoid(g * V[i])
            else:
                V[i] = vstep * sigmoid(g * V[i])
        cdef float e
        for k in range(self.oz):
            e = beta * ((<float>1.0 if k == astar else <float>0.0) - pi[k])
            for i in range(self.pd):
                if i < phalf:
                    P[k * self.pd + i] = -e * sigmoid(g * P[k * self.pd + i])
                else:
                    P[k * self.pd + i] = e * sigmoid(g * P[k * self.pd + i])
        cdef int ix, iy, q, vbase, pbase, vc
        cdef Field f
        cdef VisLayer* vl
        cdef float* vwp
        cdef float* pwp
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, j // self.oh, j % self.oh, &f)
            vwp = self.vw[v]
            pwp = self.pw[v]
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    vc = ins[v][ix * vl.h + iy]
                    vbase = self.vd * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * (vc + vl.z * j)))
                    pbase = ZD * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * (vc + vl.z * j)))
                    for i in range(self.vd):
                        vwp[vbase + i] = vwp[vbase + i] + V[i]
                    for q in range(ZD):
                        pwp[pbase + q] = pwp[pbase + q] + P[q]

    cdef long work(self) noexcept nogil:
        cdef long w = 0
        cdef int v
        for v in range(self.nv):
            w += <long>self.vls[v].d * self.vls[v].d
        return w * self.ow * self.oh * (self.vd + self.oz * self.pd)

    cdef void step_c(self, int32_t** ins, const int32_t* target_prev, bint learn, float reward,
                     float mimic, ActorParamsC* p, uint64_t* rng, int nt) noexcept nogil:
        cdef int v, it, cols = self.ow * self.oh
        cdef ActorCall c = ActorCall(act=<void*>self, ins=ins, base_draw=pcg_next(rng), t=0, mimic=mimic, p=p)
        nt = threads_for(nt, self.work(), PAR_WORK, cols)
        for_cols(actor_forward, &c, cols, nt)
        # push the new sample (newest first)
        self.mt[1] = (self.mt[1] + self.cap - 1) % self.cap
        cdef int32_t* s = self.sample(0)
        for v in range(self.nv):
            memcpy(s + v * self.in_cols, ins[v], sizeof(int32_t) * self.in_cols)
        cdef int in_words = self.nv * self.in_cols
        memcpy(s + in_words, target_prev, sizeof(int32_t) * cols)
        memcpy(s + in_words + cols, self.vals, sizeof(float) * cols)
        (<float*>(s + in_words + 2 * cols))[0] = reward
        if self.mt[0] < self.cap:
            self.mt[0] += 1
        if not learn or self.mt[0] <= p.min_steps:
            return
        for it in range(p.history_iters):
            c.t = p.min_steps + <int>(pcg_next(rng) % <uint32_t>(self.mt[0] - p.min_steps))
            for_cols(actor_learn, &c, cols, nt)
        cdef Py_ssize_t i, n_
        cdef float* a
        cdef float* b
        cdef VisLayer* vl
        for v in range(self.nv):
            vl = &self.vls[v]
            n_ = <Py_ssize_t>cols * self.oz * self.pd * vl.z * vl.d * vl.d
            a = self.pwd[v]
            b = self.pw[v]
            if mimic != <float>0.0:
                memcpy(a, b, sizeof(float) * n_)
            else:
                for i in range(n_):
                    a[i] = a[i] + p.delay_rate * (b[i] - a[i])


cdef struct ActorCall:
    void* act
    int32_t** ins
    uint32_t base_draw
    int t                 # the replayed sample's age
    float mimic
    ActorParamsC* p


cdef void actor_forward(void* call, int j) noexcept nogil:
    cdef ActorCall* c = <ActorCall*>call
    (<Actor>c.act).forward_col(j, c.ins, c.base_draw)


cdef void actor_learn(void* call, int j) noexcept nogil:
    cdef ActorCall* c = <ActorCall*>call
    (<Actor>c.act).learn_col(j, c.t, c.mimic, c.p)


# ---------------------------------------------------------------------------
# the hierarchy loop (spec §8.2), so that a step costs almost nothing in Python

cdef class Core:
    """Owns the components of one hierarchy and runs its step (spec §8).

    ``encoders[l]``; ``decoders[l]`` is a list (the prediction decoders at l = 0,
    else one decoder); ``actors`` the action-port actors; ``rng`` the hierarchy's
    own stream (decisions D2).
    """
    cdef readonly list encoders, decoders, actors
    cdef readonly tuple prev_hidden, prev_feedback  # tuples: their data pointers are cached
    cdef readonly list dec_io, act_io, recurrent
    cdef readonly Rng rng
    cdef readonly int num_layers, num_io
    cdef int32_t** ptrs
    cdef int max_ptrs
    cdef int32_t** ph    # prev_hidden[l]'s data (the arrays live as long as this object)
    cdef int32_t** pf    # prev_feedback[l]'s data
    cdef int32_t** pin   # this step's input arrays' data, set once per step

    def __init__(self, list encoders, list decoders, list actors, list dec_io, list act_io,
                 list recurrent, Rng rng):
        self.encoders = encoders
        self.decoders = decoders
        self.actors = actors
        self.dec_io = dec_io
        self.act_io = act_io
        self.recurrent = recurrent
        self.rng = rng
        self.num_layers = len(encoders)
        self.num_io = len(encoders[0].vis_descs) - (1 if recurrent[0] else 0)
        self.prev_hidden = tuple(np.zeros_like(e.hidden_cis) for e in encoders)
        self.prev_feedback = tuple(np.zeros_like(e.hidden_cis) for e in encoders[:len(encoders) - 1])  # no negative index: wraparound is off
        self.max_ptrs = self.num_io + 2
        self.ptrs = <int32_t**>malloc(sizeof(int32_t*) * self.max_ptrs)
        if self.ptrs == NULL:
            raise MemoryError()
        self.ph = <int32_t**>ptr_list(list(self.prev_hidden))
        self.pf = <int32_t**>ptr_list(list(self.prev_feedback))
        self.pin = <int32_t**>malloc(sizeof(int32_t*) * (self.num_io if self.num_io > 0 else 1))
        if self.pin == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.ptrs)
        free(self.ph)
        free(self.pf)
        free(self.pin)

    def clear_state(self):
        """Spec §8.3: clear encoders, decoders and actors; weights are untouched."""
        for e in self.encoders:
            e.hidden_cis[:] = 0
        for ds in self.decoders:
            for d in ds:
                d.clear_state()
        for a in self.actors:
            a.clear_state()

    def step(self, list inputs, bint learn, float reward, float mimic, params, int nt):
        """One time step; ``inputs`` are validated contiguous int32 arrays (spec §8.2).

        The phases, in the reference's order: bookkeeping (this step's input
        pointers, the previous hidden and feedback CSDRs); the up pass (the
        encoders, bottom to top); then the down pass, top to bottom: each layer's
        decoders learn from the previous step's context (with anticipation, also
        from this step's), then predict; at the bottom the actors step. Each phase
        reads its Python parameters into C values with the GIL and runs its
        kernels without it (other Python threads go on; the façade's lock keeps
        them off this hierarchy).
        """
        cdef int l
        layer_params = params.layers
        io_params = params.ios
        self.begin_step(inputs, io_params)
        for l in range(self.num_layers):
            self.encode(l, learn, layer_params[l], nt)
        for l in range(self.num_layers - 1, -1, -1):
            if learn:
                self.learn_decoders(l, params.anticipation, layer_params, io_params, nt)
            self.predict(l, layer_params, io_params, nt)
        self.step_actors(learn, reward, mimic, io_params, nt)

    # ------------------------------------------------------------ the phases of a step

    cdef int begin_step(self, list inputs, io_params) except -1:
        """Bookkeeping: bind the inputs, set their importances, remember the context.

        Every layer's hidden CSDR (and the prediction fed back from above) is copied
        before any encoder runs: encoder ``l`` changes only layer ``l``'s CSDR and
        no decoder runs before the down pass, so this is what each layer had at the
        end of the previous step.
        """
        cdef int l, i, L = self.num_layers
        cdef Encoder enc = <Encoder>self.encoders[0]
        for i in range(self.num_io):  # each input's data pointer once per step
            self.pin[i] = <int32_t*>ptr_of(inputs[i])
            enc.imp[i] = <float>io_params[i].importance
        for l in range(L):
            enc = <Encoder>self.encoders[l]
            memcpy(self.ph[l], enc.cis, sizeof(int32_t) * enc.hw * enc.hh)
            if l < L - 1:
                memcpy(self.pf[l], (<Decoder>self.decoders[l + 1][0]).cis, sizeof(int32_t) * enc.hw * enc.hh)
        return 0

    cdef int encode(self, int l, bint learn, lp, int nt) except -1:
        """Up pass of layer ``l``: its encoder codes the IOs (or the layer below) and,
        if recurrent, its own previous CSDR."""
        cdef Encoder enc = <Encoder>self.encoders[l]
        cdef int32_t** p = self.ptrs
        cdef int i, n
        if l == 0:
            for i in range(self.num_io):
                p[i] = self.pin[i]
            n = self.num_io
        else:
            p[0] = (<Encoder>self.encoders[l - 1]).cis
            n = 1
        if self.recurrent[l]:
            p[n] = self.ph[l]
            enc.imp[n] = <float>lp.recurrent_importance
        ep = lp.encoder
        # A radius past the grid's extent reaches no further columns: clamping
        # keeps results identical and the loop bounds far from int overflow.
        cdef int c_radius = min(int(ep.l_radius), max(enc.hw, enc.hh))
        cdef float choice = ep.choice, vigilance = ep.vigilance, lr = ep.lr, active_ratio = ep.active_ratio
        with nogil:
            enc.step_c(p, learn, choice, vigilance, lr, active_ratio, c_radius, nt)
        return 0

    cdef int32_t* target_of(self, int l, int i) except NULL:
        # What decoder i of layer l predicts: its IO's input at l = 0, else layer l-1's CSDR.
        if l == 0:
            return self.pin[<int>self.dec_io[i]]
        return (<Encoder>self.encoders[l - 1]).cis

    cdef object decoder_params(self, int l, int i, layer_params, io_params):
        return io_params[self.dec_io[i]].decoder if l == 0 else layer_params[l].decoder

    cdef int learn_decoders(self, int l, bint anticipation, layer_params, io_params, int nt) except -1:
        """Learning in the down pass of layer ``l``: each decoder learns to predict
        its target from the previous step's context, then (anticipation, below the
        top layer) from this step's hidden CSDR with the previous feedback."""
        cdef int i, L = self.num_layers
        cdef int32_t** p = self.ptrs
        cdef Decoder dec
        cdef int32_t* target
        cdef float lr, scale
        cdef uint64_t* rs = &self.rng.state
        decs = self.decoders[l]
        p[0] = self.ph[l]
        if l < L - 1:
            p[1] = self.pf[l]
        for i in range(len(decs)):
            dec = <Decoder>decs[i]
            target = self.target_of(l, i)
            lr = self.decoder_params(l, i, layer_params, io_params).lr
            with nogil:
                dec.learn_c(p, target, lr, rs, nt)
        if not anticipation or l == L - 1:
            return 0
        p[1] = (<Encoder>self.encoders[l]).cis
        for i in range(len(decs)):
            dec = <Decoder>decs[i]
            target = self.target_of(l, i)
            dp = self.decoder_params(l, i, layer_params, io_params)
            scale, lr = dp.scale, dp.lr
            with nogil:
                dec.activate_c(p, scale, nt)
                dec.learn_c(p, target, lr, rs, nt)
        return 0

    cdef int predict(self, int l, layer_params, io_params, int nt) except -1:
        """Down pass of layer ``l``: its decoders predict from its hidden CSDR and the
        feedback from above. Leaves ``ptrs`` set to that context (the actors' too)."""
        cdef int i
        cdef int32_t** p = self.ptrs
        cdef Decoder dec
        cdef float scale
        decs = self.decoders[l]
        p[0] = (<Encoder>self.encoders[l]).cis
        if l < self.num_layers - 1:
            p[1] = (<Decoder>self.decoders[l + 1][0]).cis
        for i in range(len(decs)):
            dec = <Decoder>decs[i]
            scale = self.decoder_params(l, i, layer_params, io_params).scale
            with nogil:
                dec.activate_c(p, scale, nt)
        return 0

    cdef int step_actors(self, bint learn, float reward, float mimic, io_params, int nt) except -1:
        """Down pass at the bottom, after ``predict(0)``: each actor picks its next
        action from layer 0's context and learns from its history (spec §7)."""
        cdef int i
        cdef Actor act
        cdef ActorParamsC ap
        cdef int32_t* taken
        cdef uint64_t* rs = &self.rng.state
        for i in range(len(self.actors)):
            act = <Actor>self.actors[i]
            a = io_params[self.act_io[i]].actor
            ap.vlr = a.vlr
            ap.plr = a.plr
            ap.smoothing = a.smoothing
            ap.delay_rate = a.delay_rate
            ap.policy_clip = a.policy_clip
            ap.discount = a.discount
            ap.td_scale_decay = a.td_scale_decay
            ap.min_steps = a.min_steps
            ap.history_iters = a.history_iters
            taken = self.pin[<int>self.act_io[i]]
            with nogil:
                act.step_c(self.ptrs, taken, learn, reward, mimic, &ap, rs, nt)
        return 0


# ---------------------------------------------------------------------------
# small helpers for the Python façade

def score_columns(const int32_t[::1] pred, const float[::1] probs, const int32_t[::1] actual,
                  int z, double floor):
    """(every column predicted, -log2 of the probability of ``actual`` summed over
    columns with each probability floored at ``floor``): decisions D14's metrics of
    one step, in one call. ``actual`` is validated by the caller."""
    cdef Py_ssize_t j, n = actual.shape[0]
    cdef bint hit = True
    cdef double bits = 0.0, q
    for j in range(n):
        if pred[j] != actual[j]:
            hit = False
        q = probs[j * z + actual[j]]
        bits -= log2(q if q > floor else floor)
    return hit, bits


def first_out_of_range(const int32_t[::1] cis, int32_t z):
    """Index of the first entry outside ``[0, z)``, or -1 (input validation)."""
    cdef Py_ssize_t i
    for i in range(cis.shape[0]):
        if cis[i] < 0 or cis[i] >= z:
            return i
    return -1


def sample_columns(const float[::1] probs, int cols, int z, float temperature, Rng rng):
    """Spec §8.4 sample_prediction: one draw per column from ``rng``.

    A column where rounding leaves no candidate gets ``z - 1`` (the reference
    leaves it unset, quirk Q8); a column where every ``p**(1/T)`` underflows to 0
    (very low temperature) gets its most likely cell.
    """
    out = np.empty(cols, dtype=np.int32)
    cdef int32_t[::1] o = out
    cdef int j, k
    cdef float inv_t = <float>1.0 / temperature
    cdef float total, cusp, cum
    for j in range(cols):
        total = <float>0.0
        for k in range(z):
            total = total + powf(probs[j * z + k], inv_t)
        cusp = pcg_randf(&rng.state) * total
        if not total > <float>0.0:
            # Every p**(1/T) underflowed (a very low temperature): the limit of the
            # distribution is the most likely cell, not cell 0.
            o[j] = 0
            for k in range(1, z):
                if probs[j * z + k] > probs[j * z + o[j]]:
                    o[j] = k
            continue
        o[j] = z - 1
        cum = <float>0.0
        for k in range(z):
            cum = cum + powf(probs[j * z + k], inv_t)
            if cum >= cusp:
                o[j] = k
                break
    return out
