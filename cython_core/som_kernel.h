/* The ImageEncoder's inner loops (cython_core/_image.pyx calls them), in C so
   that ``restrict`` tells the compiler the byte weights never alias the float
   arrays: it then vectorises over cells. Each cell's arithmetic is the same
   operations in the same order as a plain loop, so results stay bit-exact.
   Compiled into neocli._image only (static functions, included once). */
#ifndef NEO_SOM_KERNEL_H
#define NEO_SOM_KERNEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>
/* A learning delta beyond +-255 saturates the byte anyway; clamping the float
   to this before converting keeps absurd params out of undefined float-to-int
   conversion (SOM and reconstruction learning alike). */
#define NEO_DELTA_CAP 512.0f
/* dot[k] += centred * w_k over a run of n cells, w_k = byte * (2/255) - 1. */
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
/* nrm[k] += w_k * w_k over a run of n cells. */
static inline void neo_img_sqnorm(float* __restrict nrm, const unsigned char* __restrict w, int n,
                                  float two255) {
    for (int k = 0; k < n; k++) {
        float wk = (float)w[k] * two255 - 1.0f;
        nrm[k] = nrm[k] + wk * wk;
    }
}

#endif /* NEO_SOM_KERNEL_H */
