#include "kernels.h"
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#define KERNELS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define KERNELS_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#else
#define KERNELS_TARGET_AVX2
#define KERNELS_TARGET_AVX512
#endif

int kernels_best_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return KERNELS_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return KERNELS_ISA_AVX2;
#endif
    return KERNELS_ISA_BASELINE;
}

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

static inline __attribute__((always_inline)) void tanh_rules(long n, const double *restrict v, double *restrict value,
                                                             double *restrict d1, double *restrict d2, double *restrict d3) {
    for (long k = 0; k < n; k++) {
        const double t = tanh_expm1(v[k]), s1 = 1 - t * t;
        value[k] = t;
        d1[k] = s1;
        d2[k] = -2 * t * s1;
        d3[k] = -2 * s1 * (1 - 3 * t * t);
    }
}

static void tanh_rules_baseline(long n, const double *v, double *value, double *d1, double *d2, double *d3) {
    tanh_rules(n, v, value, d1, d2, d3);
}
KERNELS_TARGET_AVX2 static void tanh_rules_avx2(long n, const double *v, double *value, double *d1, double *d2, double *d3) {
    tanh_rules(n, v, value, d1, d2, d3);
}
KERNELS_TARGET_AVX512 static void tanh_rules_avx512(long n, const double *v, double *value, double *d1, double *d2, double *d3) {
    tanh_rules(n, v, value, d1, d2, d3);
}

void kernels_tanh_rules(int isa, long n, const double *v, double *value, double *d1, double *d2, double *d3) {
    switch (isa) {
    case KERNELS_ISA_AVX512: tanh_rules_avx512(n, v, value, d1, d2, d3); break;
    case KERNELS_ISA_AVX2: tanh_rules_avx2(n, v, value, d1, d2, d3); break;
    default: tanh_rules_baseline(n, v, value, d1, d2, d3); break;
    }
}
