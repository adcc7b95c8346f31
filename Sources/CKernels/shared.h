/* Inline helpers that kernels of several passes share. */
#ifndef KERNELS_SHARED_H
#define KERNELS_SHARED_H

#include <stdint.h>
#include <string.h>

#include "dispatch.h"

/* tanh x branch-free (see kernels.h), so that the loops below vectorise. */
static inline __attribute__((always_inline)) double tanh_expm1(double x) {
    const double y = 2 * (x > 20 ? 20 : (x < -20 ? -20 : x));
    /* k = round(y / ln 2) by the 1.5·2^52 shift: t's low mantissa bits hold k. */
    const double shift = 0x1.8p52;
    const double t = y * 1.4426950408889634 + shift;
    const double k = t - shift;
    /* r = y − k ln 2, ln 2 split in a high part (exact products with k) and a low part. */
    const double r = (y - k * 0.6931471803691238) - k * 1.9082149292705877e-10;
    int64_t tbits, shiftbits;
    memcpy(&tbits, &t, 8);
    memcpy(&shiftbits, &shift, 8);
    const int64_t scalebits = (tbits - shiftbits + 1023) << 52;
    double scale; /* 2^k */
    memcpy(&scale, &scalebits, 8);
    /* expm1(r) = r + r²/2! + … + r¹³/13!, Horner form. */
    double p = 1.0 / 6227020800;
    p = p * r + 1.0 / 479001600;
    p = p * r + 1.0 / 39916800;
    p = p * r + 1.0 / 3628800;
    p = p * r + 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1;
    p *= r;
    /* For k = 0 this is p itself, so small arguments keep full relative accuracy. */
    const double e = scale * p + (scale - 1);
    const double result = e / (e + 2);
    return x != x ? x : result;
}

/* z_k = b + Σ_i w_i x[i·stride + k], k < n: a unit's first-layer value (in this order everywhere). */
ALWAYS_INLINE void first_layer_row(long n, long d, const double *restrict x, long stride, const double *restrict w,
                                   double b, double *restrict z) {
    for (long k = 0; k < n; k++) z[k] = b;
    for (long i = 0; i < d; i++) {
        const double *restrict xi = x + i * stride;
        const double wi = w[i];
        for (long k = 0; k < n; k++) z[k] += wi * xi[k];
    }
}

/* Eight partial sums folded in a fixed order. */
ALWAYS_INLINE double fold8(const double *acc) {
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* Q = Σ_im C_im J_i J_m of one unit over n samples (J_i = z + (1 + i)·stride) into q. */
ALWAYS_INLINE void quadratic(long n, long d, const double *restrict z, long stride, const double *restrict c,
                             int diagonal, double *restrict q) {
    for (long k = 0; k < n; k++) q[k] = 0;
    for (long i = 0; i < d; i++) {
        const double *restrict ji = z + (1 + i) * stride;
        if (diagonal) {
            const double ci = c[i];
            for (long k = 0; k < n; k++) q[k] += ci * ji[k] * ji[k];
        } else {
            for (long m = 0; m < d; m++) {
                const double cim = c[i * d + m];
                if (cim == 0) continue;
                const double *restrict jm = z + (1 + m) * stride;
                for (long k = 0; k < n; k++) q[k] += cim * ji[k] * jm[k];
            }
        }
    }
}

/* The one-pass kernels handle samples in blocks of FUSED_BLOCK, so that σ', σ'', Q of a block
 * stay in cache. */
#define FUSED_BLOCK 256

#endif
