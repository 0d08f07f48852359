# cython: language_level=3
"""Helpers shared by both extensions: constants, the field geometry of spec §3,
raw data pointers, and how a kernel spreads its columns over threads."""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE
from cython.parallel cimport prange
from libc.math cimport ceilf
from libc.stdlib cimport malloc

cdef extern from *:
    """
    #define NEO_EPS 1e-6f
    #define NEO_NEG -999999.0f
    """
    # The reference's division floor and "below any activation" start value.
    const float EPS "NEO_EPS"
    const float NEG "NEO_NEG"


cdef struct VisLayer:
    # One visible (input) layer as a hidden layer of size hw x hh sees it.
    int w, h, z, r, d     # size, column size (channels for images), radius, 2r+1
    float sx, sy          # visible / hidden, float32 (forward projection, spec §3)
    float rsx, rsy        # hidden / visible (reverse projection, for backward gathers)
    int rrx, rry          # reverse search radii


cdef struct Field:
    int lx, ly            # unclamped lower corner
    int x0, y0, x1, y1    # inclusive clamped bounds
    int count


cdef inline VisLayer* make_vls(list descs, int hw, int hh) except NULL:
    """The geometry of ``descs`` = [(w, h, z, radius), ...] (malloc'ed: the caller frees it)."""
    cdef int n = len(descs)
    cdef VisLayer* v = <VisLayer*>malloc(sizeof(VisLayer) * (n if n > 0 else 1))
    if v == NULL:
        raise MemoryError()
    cdef int i
    for i in range(n):
        w, h, z, r = descs[i]
        v[i].w = w
        v[i].h = h
        v[i].z = z
        v[i].r = r
        v[i].d = 2 * r + 1
        v[i].sx = <float>v[i].w / <float>hw
        v[i].sy = <float>v[i].h / <float>hh
        v[i].rsx = <float>hw / <float>v[i].w
        v[i].rsy = <float>hh / <float>v[i].h
        v[i].rrx = <int>ceilf(v[i].rsx * <float>v[i].d * <float>0.5)
        v[i].rry = <int>ceilf(v[i].rsy * <float>v[i].d * <float>0.5)
    return v


cdef inline void get_field(const VisLayer* vl, int hx, int hy, Field* f) noexcept nogil:
    # The forward field of hidden column (hx, hy) on a visible layer (spec §3).
    cdef int cx = <int>((<float>hx + <float>0.5) * vl.sx)
    cdef int cy = <int>((<float>hy + <float>0.5) * vl.sy)
    f.lx = cx - vl.r
    f.ly = cy - vl.r
    f.x0 = f.lx if f.lx > 0 else 0
    f.y0 = f.ly if f.ly > 0 else 0
    f.x1 = cx + vl.r if cx + vl.r < vl.w - 1 else vl.w - 1
    f.y1 = cy + vl.r if cy + vl.r < vl.h - 1 else vl.h - 1
    f.count = (f.x1 - f.x0 + 1) * (f.y1 - f.y0 + 1)


cdef inline void* ptr_of(object arr) except NULL:
    # Arrays are created by the extensions (or copied by the façade), C-contiguous
    # and owned by a living object; this only exposes their data. The buffer
    # protocol costs a tenth of a memoryview over a reshaped view; a non-contiguous
    # or read-only array raises instead of handing out a temporary's pointer or one
    # the kernels must not write through.
    cdef Py_buffer buf
    PyObject_GetBuffer(arr, &buf, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
    cdef void* p = buf.buf
    PyBuffer_Release(&buf)
    return p


cdef inline void** ptr_list(list arrays) except NULL:
    """The data pointers of ``arrays`` (malloc'ed: the caller frees it)."""
    cdef int n = len(arrays)
    cdef void** p = <void**>malloc(sizeof(void*) * (n if n > 0 else 1))
    if p == NULL:
        raise MemoryError()
    cdef int i
    for i in range(n):
        p[i] = ptr_of(arrays[i])
    return p


cdef inline int threads_for(int nt, long work, long par_work, int cols) noexcept nogil:
    # Below ``par_work`` inner-loop operations a kernel runs on one thread: an
    # OpenMP region costs more than it saves, and stalls on a busy machine.
    if nt <= 1 or work < par_work or cols < 2:
        return 1
    return nt if nt < cols else cols


# A kernel's per-column work: ``call`` points to the kernel's arguments (a struct
# that starts with the component), ``j`` is the column.
ctypedef void (*col_fn)(void* call, int j) noexcept nogil


cdef inline void for_cols(col_fn fn, void* call, int cols, int nt) noexcept nogil:
    # fn(call, j) for every column j: in order on this thread when nt == 1 (an
    # OpenMP region would cost more than it saves), else on nt threads, statically
    # scheduled. A column writes only its own outputs, so results never depend on nt.
    cdef int j
    if nt == 1:
        for j in range(cols):
            fn(call, j)
    else:
        for j in prange(cols, num_threads=nt, schedule='static'):
            fn(call, j)
