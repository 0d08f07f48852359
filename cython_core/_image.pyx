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
from libc.math cimport sqrtf, powf, fabsf
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint8_t, int32_t, uint32_t, uint64_t

from _kernel cimport EPS, NEG, VisLayer, Field, get_field, make_vls, ptr_list, ptr_of, threads_for, for_cols
from _rng cimport pcg_next, column_stream, sround

import numpy as np

cdef extern from "som_kernel.h":
    void neo_img_dot(float* dot, const uint8_t* w, int n, float centred, float two255) noexcept nogil
    void neo_img_sqnorm(float* nrm, const uint8_t* w, int n, float two255) noexcept nogil
    float NEO_DELTA_CAP
    void neo_img_learn_group(uint8_t* fw, const uint8_t* inp, int x0, int x1, int y0, int y1,
                             int lx, int ly, int vh, int vc, int d, int Zh, int j, int kb, int nk,
                             const float* r255, float mu, float inv255, float two255,
                             float* acc) noexcept nogil

# A cell whose |rate * 255| is below this cannot move a weight: |target - w| <= 2,
# so |x| <= 0.4 and the SOM update rounds to 0 (the +0.5 power-of-two case needs
# x >= 0.49999994). Resources decay geometrically, so after early training most
# cells are there, many of them subnormal floats, whose arithmetic is slow: the
# update of such cells is skipped, with the same result.
cdef float SOM_NOOP = 0.2


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
    cdef VisLayer* vls
    cdef uint8_t** fw
    cdef uint8_t** rw
    cdef uint8_t** rec
    cdef int32_t** rsum
    cdef const uint8_t** ins
    cdef int32_t* cis
    cdef float* res
    cdef float* nrm
    cdef float* scr

    def __dealloc__(self):
        free(self.vls)
        free(self.fw)
        free(self.rw)
        free(self.rec)
        free(self.rsum)
        free(self.ins)

    def __init__(self, hidden_size, list vis_descs):
        """Allocate an encoder of ``hidden_size`` over ``vis_descs`` = [(w, h, c, radius), ...].

        Forward weights start at 0 (the façade fills them from the generator, then
        calls ``refresh_norms``); reconstruction weights at 128, resources at 0.5
        (spec §10.1).
        """
        self.hw, self.hh, self.hz = [int(x) for x in hidden_size]
        self.vis_descs = [tuple(int(x) for x in d) for d in vis_descs]
        self.nv = len(self.vis_descs)
        self.vls = make_vls(self.vis_descs, self.hw, self.hh)
        self.ins = <const uint8_t**>malloc(sizeof(uint8_t*) * (self.nv if self.nv > 0 else 1))
        if self.ins == NULL:
            raise MemoryError()
        cdef int cols = self.hw * self.hh
        cdef int cells = cols * self.hz
        self.forward_weights = []
        self.recon_weights = []
        self.reconstructions = []
        self._rsums = []
        for (w, h, c, r) in self.vis_descs:
            size = cells * c * (2 * r + 1) ** 2
            self.forward_weights.append(np.zeros(size, dtype=np.uint8))
            self.recon_weights.append(np.full(size, 128, dtype=np.uint8))
            self.reconstructions.append(np.zeros(w * h * c, dtype=np.uint8))
            # Per visible pixel: the gathered reconstruction sum, then its delta.
            self._rsums.append(np.zeros(w * h * c, dtype=np.int32))
        self.fw = <uint8_t**>ptr_list(self.forward_weights)
        self.rw = <uint8_t**>ptr_list(self.recon_weights)
        self.rec = <uint8_t**>ptr_list(self.reconstructions)
        self.rsum = <int32_t**>ptr_list(self._rsums)
        self.hidden_cis = np.zeros(cols, dtype=np.int32)
        self.resources = np.full(cells, 0.5, dtype=np.float32)
        self.norms = np.zeros(cells, dtype=np.float32)
        # Per hidden column: Zh dot products.
        self._scratch = np.zeros(cells, dtype=np.float32)
        self.cis = <int32_t*>ptr_of(self.hidden_cis)
        self.res = <float*>ptr_of(self.resources)
        self.nrm = <float*>ptr_of(self.norms)
        self.scr = <float*>ptr_of(self._scratch)

    # ------------------------------------------------------------ forward + SOM learning

    cdef void norms_col(self, int j) noexcept nogil:
        """Squared norms of column ``j``'s cells, summed over (v, ix, iy, c) in order."""
        cdef int Zh = self.hz
        cdef float* out = self.nrm + j * Zh
        cdef float two255 = <float>2.0 / <float>255.0
        cdef int v, ix, iy, c, k
        cdef Field f
        cdef VisLayer* vl
        for k in range(Zh):
            out[k] = <float>0.0
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, j // self.hh, j % self.hh, &f)
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    for c in range(vl.z):
                        neo_img_sqnorm(out, self.fw[v] + Zh * (c + vl.z * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * j))),
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
        cdef VisLayer* vl
        cdef const uint8_t* inp
        # mean pixel over the whole receptive field (all visible layers, all channels)
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, hx, hy, &f)
            inp = self.ins[v]
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    pix = vl.z * (ix * vl.h + iy)
                    for c in range(vl.z):
                        total = total + <float>inp[pix + c] * inv255
            count += f.count * vl.z
        mu = total / <float>count
        for k in range(Zh):
            dot[k] = <float>0.0
        for v in range(self.nv):
            vl = &self.vls[v]
            get_field(vl, hx, hy, &f)
            inp = self.ins[v]
            for ix in range(f.x0, f.x1 + 1):
                for iy in range(f.y0, f.y1 + 1):
                    pix = vl.z * (ix * vl.h + iy)
                    for c in range(vl.z):
                        neo_img_dot(dot, self.fw[v] + Zh * (c + vl.z * ((iy - f.ly) + vl.d * ((ix - f.lx) + vl.d * j))),
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
                                        vl.h, vl.z, vl.d, Zh, j, kb, nk, r255, mu, inv255, two255, acc)
            for q in range(nk):
                self.res[j * Zh + kb + q] = self.res[j * Zh + kb + q] - lr * rate[q]
                if live:
                    # A skipped cell's weights, and so its cached norm, are unchanged.
                    self.nrm[j * Zh + kb + q] = acc[q]

    cdef long forward_work(self) noexcept nogil:
        cdef long w = 0
        cdef int v
        for v in range(self.nv):
            w += <long>self.vls[v].d * self.vls[v].d * self.vls[v].z
        return w * self.hw * self.hh * self.hz

    # ------------------------------------------------------------ reconstruction

    cdef int gather(self, int v, int vcol, const int32_t* cis, int32_t* sums, bint apply) noexcept nogil:
        """Spec §10.2 reverse gather for one visible column, all channels at once.

        Without ``apply``: ``sums[c]`` = sum of the contributing reconstruction
        bytes of channel c; returns the number of contributing hidden columns.
        With ``apply``: adds ``sums[c]`` (a delta) to each of those entries, clamped.
        """
        cdef VisLayer* vl = &self.vls[v]
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
            for c in range(vl.z):
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
                idx = vl.z * ((vy - cy + vl.r) + vl.d * ((vx - cx + vl.r) + vl.d * (hc * self.hz + cis[hc])))
                count += 1
                if apply:
                    for c in range(vl.z):
                        nw = rwp[idx + c] + sums[c]
                        if nw < 0:
                            nw = 0
                        elif nw > 255:
                            nw = 255
                        rwp[idx + c] = <uint8_t>nw
                else:
                    for c in range(vl.z):
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
        cdef VisLayer* vl = &self.vls[v]
        cdef int32_t* sums = self.rsum[v] + vcol * vl.z
        cdef uint64_t st = column_stream(base_draw, vcol)
        cdef int c, count = self.gather(v, vcol, self.cis, sums, False)
        cdef float x, inv255 = <float>1.0 / <float>255.0
        # One stochastic rounding per channel, in channel order (the stream layout).
        for c in range(vl.z):
            x = rr * (<float>self.ins[v][vcol * vl.z + c] * inv255 - self.predict(sums[c], count, scale)) * <float>255.0
            # (written so that a NaN, impossible with finite params, also ends up clamped)
            x = x if x < NEO_DELTA_CAP else NEO_DELTA_CAP
            x = x if x > -NEO_DELTA_CAP else -NEO_DELTA_CAP
            sums[c] = sround(x, &st)
        self.gather(v, vcol, self.cis, sums, True)

    cdef void reconstruct_col(self, int v, int vcol, const int32_t* cis, float scale) noexcept nogil:
        cdef VisLayer* vl = &self.vls[v]
        cdef int32_t* sums = self.rsum[v] + vcol * vl.z
        cdef int c, count = self.gather(v, vcol, cis, sums, False)
        for c in range(vl.z):
            self.rec[v][vcol * vl.z + c] = <uint8_t>(self.predict(sums[c], count, scale) * <float>255.0 + <float>0.5)

    cdef long recon_work(self, int v) noexcept nogil:
        cdef VisLayer* vl = &self.vls[v]
        return <long>vl.w * vl.h * vl.z * (2 * vl.rrx + 1) * (2 * vl.rry + 1)

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
        cdef int v, cols = self.hw * self.hh, vcols
        # A radius past the cell axis reaches no further cells: clamping keeps the
        # results identical and winner +- n_radius far from int overflow.
        cdef ImageCall c = ImageCall(k=<void*>self, learn=learn, falloff=falloff, lr=lr, scale=scale, rr=rr,
                                     n_radius=n_radius if n_radius < self.hz else self.hz, v=0, base_draw=0,
                                     cis=NULL)
        for v in range(self.nv):
            view = inputs[v]
            self.ins[v] = &view[0]
        # ``inputs`` keeps the arrays alive for the whole call.
        with nogil:
            for_cols(image_forward, &c, cols, threads_for(nt, self.forward_work(), par_work, cols))
            if learn and learn_recon:
                for v in range(self.nv):
                    c.v = v
                    c.base_draw = pcg_next(&rng_state)
                    vcols = self.vls[v].w * self.vls[v].h
                    for_cols(image_recon_learn, &c, vcols, threads_for(nt, self.recon_work(v), par_work, vcols))
        return rng_state

    def reconstruct(self, const int32_t[::1] cis,  # IN: validated hidden CSDR (cells in [0, Zh))
                    float scale, int nt, long par_work):
        """Write every visible layer's reconstruction of ``cis`` (spec §10.3)."""
        cdef int v, vcols
        cdef ImageCall c = ImageCall(k=<void*>self, learn=False, falloff=0, lr=0, scale=scale, rr=0, n_radius=0,
                                     v=0, base_draw=0, cis=&cis[0])
        with nogil:
            for v in range(self.nv):
                c.v = v
                vcols = self.vls[v].w * self.vls[v].h
                for_cols(image_reconstruct, &c, vcols, threads_for(nt, self.recon_work(v), par_work, vcols))


cdef struct ImageCall:
    void* k
    bint learn
    float falloff, lr, scale, rr
    int n_radius
    int v                 # the visible layer (reconstruction)
    uint32_t base_draw
    const int32_t* cis


cdef void image_forward(void* call, int j) noexcept nogil:
    cdef ImageCall* c = <ImageCall*>call
    (<ImageKernel>c.k).forward_col(j, c.learn, c.falloff, c.lr, c.n_radius)


cdef void image_recon_learn(void* call, int j) noexcept nogil:
    cdef ImageCall* c = <ImageCall*>call
    (<ImageKernel>c.k).recon_learn_col(c.v, j, c.base_draw, c.scale, c.rr)


cdef void image_reconstruct(void* call, int j) noexcept nogil:
    cdef ImageCall* c = <ImageCall*>call
    (<ImageKernel>c.k).reconstruct_col(c.v, j, c.cis, c.scale)
