# cython: language_level=3
"""OpenMP availability shim: builds without -fopenmp still compile (style guide)."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define NEO_OPENMP_ENABLED 1
    static int neo_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define NEO_OPENMP_ENABLED 0
    static int neo_omp_max_threads(void) { return 1; }
    #endif
    """
    const bint NEO_OPENMP_ENABLED
    int neo_omp_max_threads() noexcept nogil
