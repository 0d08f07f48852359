# cython: language_level=3
"""Compiled kernels of the ImageEncoder (spec §10): dense uint8 images -> a CSDR.

Layout conventions (spec §1, §10.1): columns are x-major (``col = x*H + y``),
hidden cells ``col*Zh + k``, image pixels ``col*C + channel``.

* forward weights ``Fw_v``: uint8, flat ``k + Zh*(c + C*(oy + d*(ox + d*col_h)))``,
  read as ``w = byte * (2/255) - 1``;
* reconstruction weights ``Rw_v``: uint8, flat ``c + C*(oy + d*(ox + d*cell_h))``.

As in ``_core``, nothing here validates user input: the façade
(``neocli/image_encoder.py``) has checked every shape, dtype and index first.
Results never depend on the thread count: forward/learn writes only the own
hidden column's weights and resources; reconstruction learning writes only the
entries of its own visible column (each (hidden cell, offset) entry belongs to
exactly one visible column), with a private random stream per visible column.
"""
from cython.parallel cimport prange
from libc.math cimport sqrtf, ceilf, powf, fabsf
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint8_t, int32_t, uint32_t, uint64_t

from _kernel cimport ptr_of, threads_for
from _rng cimport pcg_next, column_stream, sround

import numpy as np

cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    /* A learning delta beyond +-255 saturates the byte anyway; clamping the float
       to this before converting keeps absurd params out of undefined float-to-int
       conversion (SOM and reconstruction learning alike). */
    #define NEO_DELTA_CAP 512.0f
    /* Inner loops over a run of a column's cells, in C so that ``restrict`` tells
       the compiler the byte weights never alias the float arrays: it then
       vectorises over cells. Each cell's arithmetic is unchanged (the same
       operations in the same order), so results stay bit-exact. */
    static inline void neo_img_dot(float* __restrict dot, const unsigned char* __restrict w, int n,
                                   float centred, float two255) {
        for (int k = 0; k < n; k++) {
            float wk = (float)w[k] * two255 - 1.0f;
            dot[k] = dot[k] + centred * wk;
        }
    }
    /* One SOM weight update (spec §10.2): byte += round half away from zero of
       x = r255 * (target - w), clamped to [0, 255], with two corrections
       measured on pyaogmaneo 2.14.4 (README "ImageEncoder",
       tools/som_rounding_probe.py):
       - where the positive sum y = x + 0.5 is one float32 ulp below a power of
         two (0.99999994, 1.9999999, 3.9999998, ...; every mantissa bit set),
         the reference rounds up to that power. Negative sums have no such
         case: the test adds 1 to y's bits and asks for a zero sign bit and a
         zero mantissa, i.e. a carry into the exponent of a positive number;
       - where y is outside the int range (or NaN), which params such as
         lr > 1 reach by driving resources far from [0, 1], the reference's
         conversion yields INT_MIN (x86's "integer indefinite") and the byte
         becomes 0, whatever the sign. In C that conversion is undefined, so y
         is range-checked first and clamped to +-NEO_DELTA_CAP before converting.
       Branch-free: the sign is random, and a branch on it mispredicts half the
       time (a conditional on x > 0 here compiled to one: medium learning fell
       from 3,900 to 2,500 steps/s). */
    static inline int neo_img_som(int old, float target, float r255, float two255) {
        float x = r255 * (target - ((float)old * two255 - 1.0f));
        float y = x + copysignf(0.5f, x);
        int out = !(fabsf(y) < 2147483648.0f);
        y = y < NEO_DELTA_CAP ? y : NEO_DELTA_CAP;
        y = y > -NEO_DELTA_CAP ? y : -NEO_DELTA_CAP;
        uint32_t bits;
        memcpy(&bits, &y, sizeof bits);
        int nw = old + (int)y + (((bits + 1u) & 0x807FFFFFu) == 0u);
        nw = nw < 0 ? 0 : nw;
        nw = nw > 255 ? 255 : nw;
        return out ? 0 : nw;
    }
    /* The SOM update of up to 4 consecutive cells kb..kb+nk-1 of hidden column j
       over one visible layer's field, each cell's new squared norm accumulated
       in acc[] in (ix, iy, c) order: four independent sums in registers rather
       than one dependent chain through memory. */
    static void neo_img_learn_group(unsigned char* fw, const unsigned char* inp,
                                    int x0, int x1, int y0, int y1, int lx, int ly,
                                    int vh, int vc, int d, int Zh, int j, int kb, int nk,
                                    const float* r255, float mu, float inv255, float two255,
                                    float* acc) {
        float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        float r0 = r255[0], r1 = r255[1], r2 = r255[2], r3 = r255[3];
        for (int ix = x0; ix <= x1; ix++) {
            for (int iy = y0; iy <= y1; iy++) {
                int pix = vc * (ix * vh + iy);
                int base = kb + Zh * vc * ((iy - ly) + d * ((ix - lx) + d * j));
                for (int c = 0; c < vc; c++) {
                    unsigned char* w = fw + base + Zh * c;
                    float t = (float)inp[pix + c] * inv255 - mu;
                    int nw = neo_img_som(w[0], t, r0, two255);
                    w[0] = (unsigned char)nw;
                    float wn = (float)nw * two255 - 1.0f;
                    a0 = a0 + wn * wn;
                    if (nk > 1) {
                        nw = neo_img_som(w[1], t, r1, two255);
                        w[1] = (unsigned char)nw;
                        wn = (float)nw * two255 - 1.0f;
                        a1 = a1 + wn * wn;
                    }
                    if (nk > 2) {
                        nw = neo_img_som(w[2], t, r2, two255);
                        w[2] = (unsigned char)nw;
                        wn = (float)nw * two255 - 1.0f;
                        a2 = a2 + wn * wn;
                    }
                    if (nk > 3) {
                        nw = neo_img_som(w[3], t, r3, two255);
                        w[3] = (unsigned char)nw;
                        wn = (float)nw * two255 - 1.0f;
                        a3 = a3 + wn * wn;
                    }
                }
            }
        }
        acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
    }
    static inline void neo_img_sqnorm(float* __restrict nrm, const unsigned char* __restrict w, int n,
                                      float two255) {
        for (int k = 0; k < n; k++) {
            float wk = (float)w[k] * two255 - 1.0f;
            nrm[k] = nrm[k] + wk * wk;
        }
    }
    """
    void neo_img_dot(float* dot, const uint8_t* w, int n, float centred, float two255) noexcept nogil
    void neo_img_sqnorm(float* nrm, const uint8_t* w, int n, float two255) noexcept nogil
    float NEO_DELTA_CAP
    int neo_img_som(int old, float target, float r255, float two255) noexcept nogil
    void neo_img_learn_group(uint8_t* fw, const uint8_t* inp, int x0, int x1, int y0, int y1,
                             int lx, int ly, int vh, int vc, int d, int Zh, int j, int kb, int nk,
                             const float* r255, float mu, float inv255, float two255,
                             float* acc) noexcept nogil

cdef float EPS = 1e-6
cdef float NEG = -999999.0
# A cell whose |rate * 255| is below this cannot move a weight: |target - w| <= 2,
# so |x| <= 0.4 and the SOM update rounds to 0 (the +0.5 power-of-two case needs
# x >= 0.49999994). Resources decay geometrically, so after early training most
# cells are there, many of them subnormal floats, whose arithmetic is slow: the
# update of such cells is skipped, with the same result.
cdef float SOM_NOOP = 0.2


cdef struct ImgLayer:
    int w, h, c, r, d
    float sx, sy          # visible / hidden, float32 (forward projection, spec §3)
    float rsx, rsy        # hidden / visible (reverse projection)
    int rrx, rry          # reverse search radii


cdef struct Field:
    int lx, ly            # unclamped lower corner
    int x0, y0, x1, y1    # inclusive clamped bounds
    int count


cdef inline void get_field(const ImgLayer* vl, int hx, int hy, Field* f) noexcept nogil:
    # Spec §3 forward field (the same geometry as _core's encoders).
    cdef int cx = <int>((<float>hx + <float>0.5) * vl.sx)
    cdef int cy = <int>((<float>hy + <float>0.5) * vl.sy)
    f.lx = cx - vl.r
    f.ly = cy - vl.r
    f.x0 = f.lx if f.lx > 0 else 0
    f.y0 = f.ly if f.ly > 0 else 0
    f.x1 = cx + vl.r if cx + vl.r < vl.w - 1 else vl.w - 1
    f.y1 = cy + vl.r if cy + vl.r < vl.h - 1 else vl.h - 1
    f.count = (f.x1 - f.x0 + 1) * (f.y1 - f.y0 + 1)


def fill_random_bytes(uint8_t[::1] out,  # OUT
                      uint64_t state):
    """Fill ``out`` with ``rand() mod 256`` draws in index order (spec §10.1 init).

    Returns the generator state after the last draw.
    """
    cdef Py_ssize_t i
    with nogil:
        for i in range(out.shape[0]):
            out[i] = <uint8_t>(pcg_next(&state) % 256)
    return state


def draw_mod(Py_ssize_t n, uint32_t m, uint64_t state):
    """``n`` sequential draws reduced ``mod m`` (merge random); returns (int32 array, new state)."""
    out = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] o = out
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            o[i] = <int32_t>(pcg_next(&state) % m)
    return out, state


cdef class ImageKernel:
    """Arrays and kernels of one ImageEncoder (spec §10).

    Python-visible arrays (created here, written only by these kernels or by
    the façade copying validated data in place): ``forward_weights`` and
    ``recon_weights`` (uint8, one per visible layer), ``hidden_cis`` (int32 per
    hidden column), ``resources`` (float32 per hidden cell) and
    ``reconstructions`` (uint8, one image per visible layer).

    Each cell's squared forward-weight norm is cached (``norms``): it changes
    only when that cell learns, and is recomputed in the same summation order
    as a fresh computation, so the cache never changes a result. Whoever writes
    ``forward_weights`` other than through ``step`` calls ``refresh_norms()``.
    """
    cdef readonly int hw, hh, hz, nv
    cdef readonly list vis_descs, forward_weights, recon_weights, reconstructions
    cdef readonly object hidden_cis, resources, norms
    cdef object _scratch, _rsums
    cdef ImgLayer* vls
    cdef uint8_t** fw
    cdef uint8_t** rw
    cdef uint8_t** rec
    cdef int32_t** rsum
    cdef const uint8_t** ins
    cdef int32_t* cis
    cdef float* res
    cdef float* nrm
    cdef float* scr

    def __cinit__(self):
        self.vls = NULL
        self.fw = NULL
        self.rw = NULL
        self.rec = NULL
        self.rsum = NULL
        self.ins = NULL

    def __init__(self, hidden_size, list vis_descs):
        """Allocate an encoder of ``hidden_size`` over ``vis_descs`` = [(w, h, c, radius), ...].

        Forward weights start at 0 (the façade fills them from the generator, then
        calls ``refresh_norms``); reconstruction weights at 128, resources at 0.5
        (spec §10.1).
        """
        self.hw, self.hh, self.hz = [int(x) for x in hidden_size]
        self.vis_descs = [tuple(int(x) for x in d) for d in vis_descs]
        self.nv = len(self.vis_descs)
        cdef int cols = self.hw * self.hh
        cdef int cells = cols * self.hz
        cdef int n = self.nv if self.nv > 0 else 1
        self.vls = <ImgLayer*>malloc(sizeof(ImgLayer) * n)
        self.fw = <uint8_t**>malloc(sizeof(uint8_t*) * n)
        self.rw = <uint8_t**>malloc(sizeof(uint8_t*) * n)
        self.rec = <uint8_t**>malloc(sizeof(uint8_t*) * n)
        self.rsum = <int32_t**>malloc(sizeof(int32_t*) * n)
        self.ins = <const uint8_t**>malloc(sizeof(uint8_t*) * n)
        if (self.vls == NULL or self.fw == NULL or self.rw == NULL or self.rec == NULL
                or self.rsum == NULL or self.ins == NULL):
            raise MemoryError()
        self.forward_weights = []
        self.recon_weights = []
        self.reconstructions = []
        self._rsums = []
        cdef int v
        cdef ImgLayer* vl
        for v in range(self.nv):
            w, h, c, r = self.vis_descs[v]
            vl = &self.vls[v]
            vl.w = w
            vl.h = h
            vl.c = c
            vl.r = r
            vl.d = 2 * r + 1
            vl.sx = <float>vl.w / <float>self.hw
            vl.sy = <float>vl.h / <float>self.hh
            vl.rsx = <float>self.hw / <float>vl.w
            vl.rsy = <float>self.hh / <float>vl.h
            vl.rrx = <int>ceilf(vl.rsx * <float>vl.d * <float>0.5)
            vl.rry = <int>ceilf(vl.rsy * <float>vl.d * <float>0.5)
            size = cells * c * vl.d * vl.d
            self.forward_weights.append(np.zeros(size, dtype=np.uint8))
            self.recon_weights.append(np.full(size, 128, dtype=np.uint8))
            self.reconstructions.append(np.zeros(w * h * c, dtype=np.uint8))
            # Per visible pixel: the gathered reconstruction sum, then its delta.
            self._rsums.append(np.zeros(w * h * c, dtype=np.int32))
            self.fw[v] = <uint8_t*>ptr_of(self.forward_weights[v])
            self.rw[v] = <uint8_t*>ptr_of(self.recon_weights[v])
            self.rec[v] = <uint8_t*>ptr_of(self.reconstructions[v])
            self.rsum[v] = <int32_t*>ptr_of(self._rsums[v])
        self.hidden_cis = np.zeros(cols, dtype=np.int32)
        self.resources = np.full(cells, 0.5, dtype=np.float32)
        self.norms = np.zeros(cells, dtype=np.float32)
        # Per hidden column: Zh dot products.
        self._scratch = np.zeros(cells, dtype=np.float32)
        self.cis = <int32_t*>ptr_of(self.hidden_cis)
        self.res = <float*>ptr_of(self.resources)
        self.nrm = <float*>ptr_of(self.norms)
        self.scr = <float*>ptr_of(self._scratch)

    def __dealloc__(self):
        free(self.vls)
        free(self.fw)
        free(self.rw)
        free(self.rec)
        free(self.rsum)
        free(self.ins)

    # ------------------------------------------------------------ forward + SOM learning

    cdef void norms_col(self, int j) noexcept nogil:
        """Squared norms of column ``j``'s cells, summed over (v, ix, iy, c) in order."""
        cdef int Zh = self.hz
        cdef float* out = self.nrm + j * Zh
        cdef float two255 = <float>2.0 / <float>255.0
        cdef int v, ix, iy, c, k
        cdef Field f
        cdef ImgLayer* vl
        for k in range(Zh):
            out[k] = <float>0.0
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, j // self.hh, j % self.hh, &f)
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    for c in range(vl.c):
                        neo_img_sqnorm(out, self.fw[v] + Zh * (c + vl.c * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * j))),
                                       Zh, two255)

    def refresh_norms(self):
        """Recompute every cell's cached squared norm (after the weights were written directly)."""
        cdef int j
        with nogil:
            for j in range(self.hw * self.hh):
                self.norms_col(j)

    cdef void forward_col(self, int j, bint learn, float falloff, float lr, int n_radius) noexcept nogil:
        cdef int Zh = self.hz
        cdef int hx = j // self.hh
        cdef int hy = j % self.hh
        cdef float* dot = self.scr + j * Zh
        cdef int v, ix, iy, c, k, base, pix, count = 0
        cdef float total = <float>0.0, mu
        cdef float two255 = <float>2.0 / <float>255.0
        cdef float inv255 = <float>1.0 / <float>255.0
        cdef Field f
        cdef ImgLayer* vl
        cdef const uint8_t* inp
        # mean pixel over the whole receptive field (all visible layers, all channels)
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, hx, hy, &f)
            inp = self.ins[v]
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    pix = vl.c * (ix * vl.h + iy)
                    for c in range(vl.c):
                        total = total + <float>inp[pix + c] * inv255
            count += f.count * vl.c
        mu = total / <float>count
        for k in range(Zh):
            dot[k] = <float>0.0
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, hx, hy, &f)
            inp = self.ins[v]
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    pix = vl.c * (ix * vl.h + iy)
                    for c in range(vl.c):
                        neo_img_dot(dot, self.fw[v] + Zh * (c + vl.c * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * j))),
                                    Zh, <float>2.0 * (<float>inp[pix + c] * inv255 - mu), two255)
        cdef int winner = 0
        cdef float best = NEG, act, nr
        for k in range(Zh):
            nr = sqrtf(self.nrm[j * Zh + k])
            act = dot[k] / (nr if nr > EPS else EPS)
            if act > best:
                best = act
                winner = k
        self.cis[j] = winner
        if not learn:
            return
        # SOM update of the winner and its neighbours along the cell axis, up to 4
        # cells at a time, each cell's new squared norm summed in the same
        # (v, ix, iy, c) order as norms_col, so the cache stays exact. Cells below
        # SOM_NOOP take part with a zero rate (their bytes and norms come out
        # unchanged); a group of only such cells is skipped, norms untouched.
        cdef int klo = winner - n_radius if winner - n_radius > 0 else 0
        cdef int khi = winner + n_radius if winner + n_radius < Zh - 1 else Zh - 1
        cdef int kb, nk, q, ad, live
        cdef float rate[4]
        cdef float r255[4]
        cdef float acc[4]
        for kb in range(klo, khi + 1, 4):
            nk = khi + 1 - kb if khi + 1 - kb < 4 else 4
            for q in range(4):
                rate[q] = <float>0.0
                r255[q] = <float>0.0
                acc[q] = <float>0.0
            live = 0
            for q in range(nk):
                ad = kb + q - winner if kb + q >= winner else winner - kb - q
                rate[q] = self.res[j * Zh + kb + q] * powf(falloff, <float>ad)
                r255[q] = rate[q] * <float>255.0
                if fabsf(r255[q]) < SOM_NOOP:
                    r255[q] = <float>0.0  # its updates are all 0 (and now cheap)
                else:
                    live = 1
            if live:
                for v in range(self.nv):
                    vl = &self.vls[v]
                    get_field(vl, hx, hy, &f)
                    neo_img_learn_group(self.fw[v], self.ins[v], f.x0, f.x1, f.y0, f.y1, f.lx, f.ly,
                                        vl.h, vl.c, vl.d, Zh, j, kb, nk, r255, mu, inv255, two255, acc)
            for q in range(nk):
                self.res[j * Zh + kb + q] = self.res[j * Zh + kb + q] - lr * rate[q]
                if live:
                    # A skipped cell's weights, and so its cached norm, are unchanged.
                    self.nrm[j * Zh + kb + q] = acc[q]

    cdef long forward_work(self) noexcept nogil:
        cdef long w = 0
        cdef int v
        for v in range(self.nv):
            w += <long>self.vls[v].d * self.vls[v].d * self.vls[v].c
        return w * self.hw * self.hh * self.hz

    # ------------------------------------------------------------ reconstruction

    cdef int gather(self, int v, int vcol, const int32_t* cis, int32_t* sums, bint apply) noexcept nogil:
        """Spec §10.2 reverse gather for one visible column, all channels at once.

        Without ``apply``: ``sums[c]`` = sum of the contributing reconstruction
        bytes of channel c; returns the number of contributing hidden columns.
        With ``apply``: adds ``sums[c]`` (a delta) to each of those entries, clamped.
        """
        cdef ImgLayer* vl = &self.vls[v]
        cdef int vx = vcol // vl.h
        cdef int vy = vcol % vl.h
        cdef int hcx = <int>((<float>vx + <float>0.5) * vl.rsx)
        cdef int hcy = <int>((<float>vy + <float>0.5) * vl.rsy)
        cdef int x0 = hcx - vl.rrx if hcx - vl.rrx > 0 else 0
        cdef int y0 = hcy - vl.rry if hcy - vl.rry > 0 else 0
        cdef int x1 = hcx + vl.rrx if hcx + vl.rrx < self.hw - 1 else self.hw - 1
        cdef int y1 = hcy + vl.rry if hcy + vl.rry < self.hh - 1 else self.hh - 1
        cdef int hx, hy, cx, cy, hc, idx, c, nw, count = 0
        cdef uint8_t* rwp = self.rw[v]
        if not apply:
            for c in range(vl.c):
                sums[c] = 0
        for hx in range(x0, x1 + 1):
            cx = <int>((<float>hx + <float>0.5) * vl.sx)
            if vx < cx - vl.r or vx > cx + vl.r:
                continue
            for hy in range(y0, y1 + 1):
                cy = <int>((<float>hy + <float>0.5) * vl.sy)
                if vy < cy - vl.r or vy > cy + vl.r:
                    continue
                hc = hx * self.hh + hy
                idx = vl.c * ((vy - cy + vl.r) + vl.d * ((vx - cx + vl.r) + vl.d * (hc * self.hz + cis[hc])))
                count += 1
                if apply:
                    for c in range(vl.c):
                        nw = rwp[idx + c] + sums[c]
                        if nw < 0:
                            nw = 0
                        elif nw > 255:
                            nw = 255
                        rwp[idx + c] = <uint8_t>nw
                else:
                    for c in range(vl.c):
                        sums[c] += rwp[idx + c]
        return count

    cdef inline float predict(self, int total, int count, float scale) noexcept nogil:
        count *= 255
        cdef float s = <float>total / <float>(count if count > 1 else 1)
        cdef float pred = (s - <float>0.5) * <float>2.0 * scale + <float>0.5
        if pred < <float>0.0:
            return <float>0.0
        if pred > <float>1.0:
            return <float>1.0
        return pred

    cdef void recon_learn_col(self, int v, int vcol, uint32_t base_draw, float scale, float rr) noexcept nogil:
        cdef ImgLayer* vl = &self.vls[v]
        cdef int32_t* sums = self.rsum[v] + vcol * vl.c
        cdef uint64_t st = column_stream(base_draw, vcol)
        cdef int c, count = self.gather(v, vcol, self.cis, sums, False)
        cdef float x, inv255 = <float>1.0 / <float>255.0
        # One stochastic rounding per channel, in channel order (the stream layout).
        for c in range(vl.c):
            x = rr * (<float>self.ins[v][vcol * vl.c + c] * inv255 - self.predict(sums[c], count, scale)) * <float>255.0
            # (written so that a NaN, impossible with finite params, also ends up clamped)
            x = x if x < NEO_DELTA_CAP else NEO_DELTA_CAP
            x = x if x > -NEO_DELTA_CAP else -NEO_DELTA_CAP
            sums[c] = sround(x, &st)
        self.gather(v, vcol, self.cis, sums, True)

    cdef void reconstruct_col(self, int v, int vcol, const int32_t* cis, float scale) noexcept nogil:
        cdef ImgLayer* vl = &self.vls[v]
        cdef int32_t* sums = self.rsum[v] + vcol * vl.c
        cdef int c, count = self.gather(v, vcol, cis, sums, False)
        for c in range(vl.c):
            self.rec[v][vcol * vl.c + c] = <uint8_t>(self.predict(sums[c], count, scale) * <float>255.0 + <float>0.5)

    cdef long recon_work(self, int v) noexcept nogil:
        cdef ImgLayer* vl = &self.vls[v]
        return <long>vl.w * vl.h * vl.c * (2 * vl.rrx + 1) * (2 * vl.rry + 1)

    # ------------------------------------------------------------ Python entry points

    def step(self, list inputs,  # IN: one validated C-contiguous uint8 image per visible layer
             bint learn, bint learn_recon, float falloff, float lr, float scale, float rr,
             int n_radius, int nt, long par_work, uint64_t rng_state):
        """Encode the inputs (and learn); returns the random stream's new state.

        Spec §10.2: every hidden column picks its winner and, if ``learn``, runs
        the SOM update; then, if ``learn and learn_recon``, each visible layer
        draws one base from ``rng_state`` and every visible column learns its
        reconstruction weights on a private stream.
        """
        cdef const uint8_t[::1] view
        cdef int v, j, cols = self.hw * self.hh, vcols, ntw
        cdef uint32_t base_draw
        # A radius past the cell axis reaches no further cells: clamping keeps the
        # results identical and winner +- n_radius far from int overflow.
        if n_radius > self.hz:
            n_radius = self.hz
        for v in range(self.nv):
            view = inputs[v]
            self.ins[v] = &view[0]
        # ``inputs`` keeps the arrays alive for the whole call.
        with nogil:
            ntw = threads_for(nt, self.forward_work(), par_work, cols)
            if ntw == 1:
                for j in range(cols):
                    self.forward_col(j, learn, falloff, lr, n_radius)
            else:
                for j in prange(cols, num_threads=ntw, schedule='static'):
                    self.forward_col(j, learn, falloff, lr, n_radius)
            if learn and learn_recon:
                for v in range(self.nv):
                    base_draw = pcg_next(&rng_state)
                    vcols = self.vls[v].w * self.vls[v].h
                    ntw = threads_for(nt, self.recon_work(v), par_work, vcols)
                    if ntw == 1:
                        for j in range(vcols):
                            self.recon_learn_col(v, j, base_draw, scale, rr)
                    else:
                        for j in prange(vcols, num_threads=ntw, schedule='static'):
                            self.recon_learn_col(v, j, base_draw, scale, rr)
        return rng_state

    def reconstruct(self, const int32_t[::1] cis,  # IN: validated hidden CSDR (cells in [0, Zh))
                    float scale, int nt, long par_work):
        """Write every visible layer's reconstruction of ``cis`` (spec §10.3)."""
        cdef int v, j, vcols, ntw
        with nogil:
            for v in range(self.nv):
                vcols = self.vls[v].w * self.vls[v].h
                ntw = threads_for(nt, self.recon_work(v), par_work, vcols)
                if ntw == 1:
                    for j in range(vcols):
                        self.reconstruct_col(v, j, &cis[0], scale)
                else:
                    for j in prange(vcols, num_threads=ntw, schedule='static'):
                        self.reconstruct_col(v, j, &cis[0], scale)
