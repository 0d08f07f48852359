# cython: language_level=3
"""Helpers shared by both extensions: thread counts and raw data pointers."""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE


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


cdef inline int threads_for(int nt, long work, long par_work, int cols) noexcept nogil:
    # Below ``par_work`` inner-loop operations a kernel runs on one thread: an
    # OpenMP region costs more than it saves, and stalls on a busy machine.
    if nt <= 1 or work < par_work or cols < 2:
        return 1
    return nt if nt < cols else cols
