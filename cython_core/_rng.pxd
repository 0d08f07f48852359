# cython: language_level=3
"""PCG32 (XSH-RR) helpers shared by every kernel (spec §4).

Each kernel derives a private stream per column from one serial base draw, so the
results never depend on how columns are spread over threads.
"""
from libc.stdint cimport uint32_t, uint64_t, int32_t

cdef extern from *:
    """
    #define NEO_PCG_MULT 6364136223846793005ULL
    #define NEO_PCG_INC 1442695040888963407ULL
    """
    const uint64_t NEO_PCG_MULT
    const uint64_t NEO_PCG_INC


cdef inline uint32_t pcg_next(uint64_t* state) noexcept nogil:
    cdef uint64_t old = state[0]
    cdef uint32_t rot = <uint32_t>(old >> 59)
    state[0] = old * NEO_PCG_MULT + NEO_PCG_INC
    cdef uint32_t v = <uint32_t>((old ^ (old >> 18)) >> 27)
    return (v >> rot) | (v << ((32 - rot) & 31))


cdef inline uint64_t pcg_seed(uint64_t seed) noexcept nogil:
    return (seed + NEO_PCG_INC) * NEO_PCG_MULT + NEO_PCG_INC


cdef inline uint64_t column_stream(uint32_t base, int col) noexcept nogil:
    # The 32-bit wrap of base + col*12345 is part of the reference's stream layout.
    return pcg_seed(<uint64_t>(<uint32_t>(base + <uint32_t>col * <uint32_t>12345)))


cdef inline float pcg_randf(uint64_t* state) noexcept nogil:
    return <float>(pcg_next(state) % 16777215u) / <float>16777215.0


cdef inline int32_t sround(float v, uint64_t* state) noexcept nogil:
    # Always consumes one draw, even when v is integral: the stream layout depends on it.
    cdef int32_t i = <int32_t>v
    cdef float rem = v - <float>i
    if rem < <float>0.0:
        rem = -rem
    if pcg_randf(state) < rem:
        if v > <float>0.0:
            return i + 1
        return i - 1
    return i
