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

/* One kernel body, compiled three times (baseline, AVX2+FMA, AVX-512) and dispatched by `isa`. */
#define KERNEL(name, params, args)                                               \
    static void name##_baseline params { name##_body args; }                     \
    KERNELS_TARGET_AVX2 static void name##_avx2 params { name##_body args; }     \
    KERNELS_TARGET_AVX512 static void name##_avx512 params { name##_body args; } \
    void kernels_##name(int isa, KERNEL_UNPAREN params) {                        \
        switch (isa) {                                                           \
        case KERNELS_ISA_AVX512: name##_avx512 args; break;                      \
        case KERNELS_ISA_AVX2: name##_avx2 args; break;                          \
        default: name##_baseline args; break;                                    \
        }                                                                        \
    }
#define KERNEL_UNPAREN(...) __VA_ARGS__
#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE void tanh_rules_body(long n, const double *restrict v, double *restrict value,
                                   double *restrict d1, double *restrict d2, double *restrict d3) {
    for (long k = 0; k < n; k++) {
        const double t = tanh_expm1(v[k]), s1 = 1 - t * t;
        value[k] = t;
        d1[k] = s1;
        d2[k] = -2 * t * s1;
        d3[k] = -2 * s1 * (1 - 3 * t * t);
    }
}
KERNEL(tanh_rules, (long n, const double *v, double *value, double *d1, double *d2, double *d3),
       (n, v, value, d1, d2, d3))

ALWAYS_INLINE void row_combination_body(long h, long n, const double *restrict w, const double *restrict rows,
                                        long ld, double *restrict out) {
    for (long c = 0; c < n; c++) out[c] = 0;
    long j = 0;
    for (; j + 4 <= h; j += 4) {
        const double *restrict r0 = rows + j * ld, *restrict r1 = r0 + ld, *restrict r2 = r1 + ld, *restrict r3 = r2 + ld;
        const double w0 = w[j], w1 = w[j + 1], w2 = w[j + 2], w3 = w[j + 3];
        for (long c = 0; c < n; c++) out[c] += (w0 * r0[c] + w1 * r1[c]) + (w2 * r2[c] + w3 * r3[c]);
    }
    for (; j < h; j++) {
        const double *restrict r = rows + j * ld;
        const double wj = w[j];
        for (long c = 0; c < n; c++) out[c] += wj * r[c];
    }
}
KERNEL(row_combination, (long h, long n, const double *w, const double *rows, long ld, double *out),
       (h, n, w, rows, ld, out))

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

ALWAYS_INLINE void first_layer_values_body(long h, long n, long d, const double *restrict w, const double *restrict b,
                                           const double *restrict x, double *restrict out) {
    for (long j = 0; j < h; j++) first_layer_row(n, d, x, n, w + j * d, b[j], out + j * n);
}
KERNEL(first_layer_values, (long h, long n, long d, const double *w, const double *b, const double *x, double *out),
       (h, n, d, w, b, x, out))

/* Eight partial sums folded in a fixed order. */
ALWAYS_INLINE double fold8(const double *acc) {
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

ALWAYS_INLINE void row_sums_body(long h, long n, const double *restrict rows, long ld, double *restrict out) {
    for (long j = 0; j < h; j++) {
        const double *restrict r = rows + j * ld;
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        long k = 0;
        for (; k + 8 <= n; k += 8)
            for (int c = 0; c < 8; c++) acc[c] += r[k + c];
        double tail = 0;
        for (; k < n; k++) tail += r[k];
        out[j] = fold8(acc) + tail;
    }
}
KERNEL(row_sums, (long h, long n, const double *rows, long ld, double *out), (h, n, rows, ld, out))

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

ALWAYS_INLINE void taylor_rule_body(long n, long d, const double *restrict z, const double *restrict c, int diagonal,
                                    const double *restrict s1, const double *restrict s2, double *restrict out,
                                    double *restrict q) {
    quadratic(n, d, z, n, c, diagonal, q);
    for (long i = 0; i < d; i++) {
        const double *restrict ji = z + (1 + i) * n;
        double *restrict oi = out + (1 + i) * n;
        for (long k = 0; k < n; k++) oi[k] = s1[k] * ji[k];
    }
    const double *restrict t = z + (d + 1) * n;
    double *restrict ot = out + (d + 1) * n;
    for (long k = 0; k < n; k++) ot[k] = s1[k] * t[k] + s2[k] * q[k];
}
KERNEL(taylor_rule, (long n, long d, const double *z, const double *c, int diagonal, const double *s1,
                     const double *s2, double *out, double *q),
       (n, d, z, c, diagonal, s1, s2, out, q))

ALWAYS_INLINE void taylor_first_rule_body(long n, long d, const double *restrict w, double q,
                                          const double *restrict s1, const double *restrict s2, double *restrict out) {
    for (long i = 0; i < d; i++) {
        double *restrict oi = out + (1 + i) * n;
        const double wi = w[i];
        for (long k = 0; k < n; k++) oi[k] = s1[k] * wi;
    }
    double *restrict ot = out + (d + 1) * n;
    for (long k = 0; k < n; k++) ot[k] = s2[k] * q;
}
KERNEL(taylor_first_rule, (long n, long d, const double *w, double q, const double *s1, const double *s2, double *out),
       (n, d, w, q, s1, s2, out))

/* Q = Σ_im C_im J_i J_m and the blocks (CJ)_i = Σ_m C_im J_m of one unit (J_i = z + (1 + i)·n). */
ALWAYS_INLINE void quadratic_and_apply(long n, long d, const double *restrict z, const double *restrict c, int diagonal,
                                       double *restrict cj, double *restrict q) {
    for (long k = 0; k < n; k++) q[k] = 0;
    for (long i = 0; i < d; i++) {
        const double *restrict ji = z + (1 + i) * n;
        double *restrict ci = cj + i * n;
        if (diagonal) {
            const double cii = c[i];
            for (long k = 0; k < n; k++) ci[k] = cii * ji[k];
        } else {
            for (long k = 0; k < n; k++) ci[k] = 0;
            for (long m = 0; m < d; m++) {
                const double cim = c[i * d + m];
                if (cim == 0) continue;
                const double *restrict jm = z + (1 + m) * n;
                for (long k = 0; k < n; k++) ci[k] += cim * jm[k];
            }
        }
        for (long k = 0; k < n; k++) q[k] += ji[k] * ci[k];
    }
}

ALWAYS_INLINE void taylor_rule_adjoint_body(long n, long d, const double *restrict z, const double *restrict c,
                                            int diagonal, const double *restrict s1, const double *restrict s2,
                                            const double *restrict s3, const double *restrict u, double scale,
                                            double *restrict o, double *restrict work) {
    double *restrict cj = work, *restrict q = work + d * n, *restrict jj = work + (d + 1) * n;
    quadratic_and_apply(n, d, z, c, diagonal, cj, q);
    const double *restrict tbar = u + (d + 1) * n;
    double *restrict ot = o + (d + 1) * n;
    for (long k = 0; k < n; k++) ot[k] = scale * (s1[k] * tbar[k]);
    for (long k = 0; k < n; k++) jj[k] = 0;
    for (long i = 0; i < d; i++) {
        const double *restrict ji = z + (1 + i) * n, *restrict ci = cj + i * n, *restrict ui = u + (1 + i) * n;
        double *restrict oi = o + (1 + i) * n;
        for (long k = 0; k < n; k++) {
            jj[k] += ji[k] * ui[k];
            oi[k] = scale * (s1[k] * ui[k] + 2 * s2[k] * tbar[k] * ci[k]);
        }
    }
    const double *restrict t = z + (d + 1) * n;
    for (long k = 0; k < n; k++) o[k] = scale * (s1[k] * u[k] + s2[k] * jj[k] + (s2[k] * t[k] + s3[k] * q[k]) * tbar[k]);
}
KERNEL(taylor_rule_adjoint, (long n, long d, const double *z, const double *c, int diagonal, const double *s1,
                             const double *s2, const double *s3, const double *u, double scale, double *o, double *work),
       (n, d, z, c, diagonal, s1, s2, s3, u, scale, o, work))

ALWAYS_INLINE void taylor_first_rule_adjoint_body(long n, long d, const double *restrict w, const double *restrict cw,
                                                  double q, const double *restrict s1, const double *restrict s2,
                                                  const double *restrict s3, const double *restrict u, double scale,
                                                  double *restrict o, double *restrict jj) {
    const double *restrict tbar = u + (d + 1) * n;
    double *restrict ot = o + (d + 1) * n;
    for (long k = 0; k < n; k++) ot[k] = scale * (s1[k] * tbar[k]);
    for (long k = 0; k < n; k++) jj[k] = 0;
    for (long i = 0; i < d; i++) {
        const double *restrict ui = u + (1 + i) * n;
        double *restrict oi = o + (1 + i) * n;
        const double wi = w[i], c2 = 2 * cw[i];
        for (long k = 0; k < n; k++) {
            jj[k] += wi * ui[k];
            oi[k] = scale * (s1[k] * ui[k] + c2 * s2[k] * tbar[k]);
        }
    }
    for (long k = 0; k < n; k++) o[k] = scale * (s1[k] * u[k] + s2[k] * jj[k] + s3[k] * q * tbar[k]);
}
KERNEL(taylor_first_rule_adjoint, (long n, long d, const double *w, const double *cw, double q, const double *s1,
                                   const double *s2, const double *s3, const double *u, double scale, double *o,
                                   double *jj),
       (n, d, w, cw, q, s1, s2, s3, u, scale, o, jj))

ALWAYS_INLINE void taylor_rule_tangent_body(long n, long d, const double *restrict z, const double *restrict c,
                                            int diagonal, const double *restrict s1, const double *restrict s2,
                                            const double *restrict s3, const double *restrict t, double *restrict o,
                                            double *restrict work) {
    double *restrict cj = work, *restrict q = work + d * n, *restrict qdot = work + (d + 1) * n;
    quadratic_and_apply(n, d, z, c, diagonal, cj, q);
    for (long k = 0; k < n; k++) o[k] = s1[k] * t[k];
    for (long k = 0; k < n; k++) qdot[k] = 0;
    for (long i = 0; i < d; i++) {
        const double *restrict ji = z + (1 + i) * n, *restrict jd = t + (1 + i) * n, *restrict ci = cj + i * n;
        double *restrict oi = o + (1 + i) * n;
        for (long k = 0; k < n; k++) {
            qdot[k] += 2 * ci[k] * jd[k];
            oi[k] = s2[k] * t[k] * ji[k] + s1[k] * jd[k];
        }
    }
    const double *restrict pt = z + (d + 1) * n, *restrict td = t + (d + 1) * n;
    double *restrict ot = o + (d + 1) * n;
    for (long k = 0; k < n; k++) ot[k] = s2[k] * t[k] * pt[k] + s1[k] * td[k] + s3[k] * t[k] * q[k] + s2[k] * qdot[k];
}
KERNEL(taylor_rule_tangent, (long n, long d, const double *z, const double *c, int diagonal, const double *s1,
                             const double *s2, const double *s3, const double *t, double *o, double *work),
       (n, d, z, c, diagonal, s1, s2, s3, t, o, work))

ALWAYS_INLINE void taylor_first_rule_tangent_body(long n, long d, const double *restrict w, const double *restrict dw,
                                                  double q, double qdot, const double *restrict s1,
                                                  const double *restrict s2, const double *restrict s3,
                                                  const double *restrict vdot, double *restrict o) {
    for (long i = 0; i < d; i++) {
        double *restrict oi = o + (1 + i) * n;
        const double wi = w[i], dwi = dw[i];
        for (long k = 0; k < n; k++) oi[k] = s2[k] * vdot[k] * wi + s1[k] * dwi;
    }
    double *restrict ot = o + (d + 1) * n;
    for (long k = 0; k < n; k++) ot[k] = s3[k] * vdot[k] * q + s2[k] * qdot;
}
KERNEL(taylor_first_rule_tangent, (long n, long d, const double *w, const double *dw, double q, double qdot,
                                   const double *s1, const double *s2, const double *s3, const double *vdot, double *o),
       (n, d, w, dw, q, qdot, s1, s2, s3, vdot, o))

/* One-pass tanh kernels: activation and Taylor rule of a unit in one sweep over its samples.
 * Samples are handled in blocks of FUSED_BLOCK so that σ', σ'', Q of a block stay in cache;
 * a pass that keeps slopes writes σ', σ'', σ''' to their rows instead. */
#define FUSED_BLOCK 256

/* tanh and the forward-Laplacian rule of one hidden unit; see kernels.h. */
ALWAYS_INLINE void tanh_taylor_rule_body(long n, long d, const double *restrict z, double b, const double *restrict c,
                                         int diagonal, int taylor, double *restrict out, double *restrict slopes,
                                         long slope_stride) {
    double b1[FUSED_BLOCK], b2[FUSED_BLOCK], q[FUSED_BLOCK];
    for (long k0 = 0; k0 < n; k0 += FUSED_BLOCK) {
        const long len = n - k0 < FUSED_BLOCK ? n - k0 : FUSED_BLOCK;
        double *restrict s1 = slopes ? slopes + k0 : b1, *restrict s2 = slopes ? slopes + slope_stride + k0 : b2;
        if (slopes) {
            double *restrict s3 = slopes + 2 * slope_stride + k0;
            for (long k = 0; k < len; k++) {
                const double th = tanh_expm1(z[k0 + k] + b), sk = 1 - th * th;
                out[k0 + k] = th;
                s1[k] = sk;
                s2[k] = -2 * th * sk;
                s3[k] = -2 * sk * (1 - 3 * th * th);
            }
        } else {
            for (long k = 0; k < len; k++) {
                const double th = tanh_expm1(z[k0 + k] + b), sk = 1 - th * th;
                out[k0 + k] = th;
                s1[k] = sk;
                s2[k] = -2 * th * sk;
            }
        }
        if (!taylor) continue;
        quadratic(len, d, z + k0, n, c, diagonal, q);
        for (long i = 0; i < d; i++) {
            const double *restrict ji = z + (1 + i) * n + k0;
            double *restrict oi = out + (1 + i) * n + k0;
            for (long k = 0; k < len; k++) oi[k] = s1[k] * ji[k];
        }
        const double *restrict t = z + (d + 1) * n + k0;
        double *restrict ot = out + (d + 1) * n + k0;
        for (long k = 0; k < len; k++) ot[k] = s1[k] * t[k] + s2[k] * q[k];
    }
}
KERNEL(tanh_taylor_rule, (long n, long d, const double *z, double b, const double *c, int diagonal, int taylor,
                          double *out, double *slopes, long slope_stride),
       (n, d, z, b, c, diagonal, taylor, out, slopes, slope_stride))

ALWAYS_INLINE void tanh_first_rule_body(long n, long d, const double *restrict x, double b, const double *restrict w,
                                        double q, int taylor, double *restrict out, double *restrict slopes,
                                        long slope_stride) {
    double b1[FUSED_BLOCK], z[FUSED_BLOCK];
    for (long k0 = 0; k0 < n; k0 += FUSED_BLOCK) {
        const long len = n - k0 < FUSED_BLOCK ? n - k0 : FUSED_BLOCK;
        first_layer_row(len, d, x + k0, n, w, b, z);
        double *restrict s1 = slopes ? slopes + k0 : b1;
        if (slopes) {
            double *restrict s2 = slopes + slope_stride + k0, *restrict s3 = s2 + slope_stride;
            for (long k = 0; k < len; k++) {
                const double th = tanh_expm1(z[k]), sk = 1 - th * th;
                out[k0 + k] = th;
                s1[k] = sk;
                s2[k] = -2 * th * sk;
                s3[k] = -2 * sk * (1 - 3 * th * th);
            }
            if (taylor) {
                double *restrict ot = out + (d + 1) * n + k0;
                for (long k = 0; k < len; k++) ot[k] = s2[k] * q;
            }
        } else if (!taylor) {
            for (long k = 0; k < len; k++) out[k0 + k] = tanh_expm1(z[k]);
            continue;
        } else {
            double *restrict ot = out + (d + 1) * n + k0;
            for (long k = 0; k < len; k++) {
                const double th = tanh_expm1(z[k]), sk = 1 - th * th;
                out[k0 + k] = th;
                s1[k] = sk;
                ot[k] = (-2 * th * sk) * q;
            }
        }
        if (!taylor) continue;
        for (long i = 0; i < d; i++) {
            double *restrict oi = out + (1 + i) * n + k0;
            const double wi = w[i];
            for (long k = 0; k < len; k++) oi[k] = s1[k] * wi;
        }
    }
}
KERNEL(tanh_first_rule, (long n, long d, const double *x, double b, const double *w, double q, int taylor, double *out,
                         double *slopes, long slope_stride),
       (n, d, x, b, w, q, taylor, out, slopes, slope_stride))

/* The last hidden layer (tanh) fused with a one-output layer; see kernels.h. */
ALWAYS_INLINE void tanh_first_output_body(long h, long m, long d, const double *restrict x, long stride,
                                          const double *restrict b, const double *restrict w,
                                          const double *restrict q, const double *restrict a, int taylor,
                                          int gradient, double *restrict out) {
    const long blocks = taylor ? d + 2 : 1;
    for (long c = 0; c < blocks; c++)
        for (long k = 0; k < m; k++) out[c * stride + k] = 0;
    double s1[FUSED_BLOCK], z[FUSED_BLOCK];
    for (long j = 0; j < h; j++) {
        const double bj = b[j], aj = a[j], aq = taylor ? aj * q[j] : 0;
        for (long k0 = 0; k0 < m; k0 += FUSED_BLOCK) {
            const long len = m - k0 < FUSED_BLOCK ? m - k0 : FUSED_BLOCK;
            first_layer_row(len, d, x + k0, stride, w + j * d, bj, z);
            double *restrict u = out + k0, *restrict t = out + (d + 1) * stride + k0;
            if (!taylor) {
                for (long k = 0; k < len; k++) u[k] += aj * tanh_expm1(z[k]);
                continue;
            }
            for (long k = 0; k < len; k++) {
                const double th = tanh_expm1(z[k]), sk = 1 - th * th;
                u[k] += aj * th;
                t[k] += aq * (-2 * th * sk);
                s1[k] = sk;
            }
            for (long i = 0; i < (gradient ? d : 0); i++) {
                const double awi = aj * w[j * d + i];
                double *restrict ji = out + (1 + i) * stride + k0;
                for (long k = 0; k < len; k++) ji[k] += awi * s1[k];
            }
        }
    }
}
KERNEL(tanh_first_output, (long h, long m, long d, const double *x, long stride, const double *b, const double *w,
                           const double *q, const double *a, int taylor, int gradient, double *out),
       (h, m, d, x, stride, b, w, q, a, taylor, gradient, out))

ALWAYS_INLINE void tanh_output_body(long h, long m, long d, const double *restrict z, long stride, long ld,
                                    const double *restrict b, const double *restrict c, int diagonal, int taylor,
                                    int gradient, const double *restrict a, double *restrict out) {
    const long blocks = taylor ? d + 2 : 1;
    for (long col = 0; col < blocks; col++)
        for (long k = 0; k < m; k++) out[col * stride + k] = 0;
    double s1[FUSED_BLOCK], s2[FUSED_BLOCK], q[FUSED_BLOCK];
    for (long j = 0; j < h; j++) {
        const double *restrict zj = z + j * ld;
        const double bj = b[j], aj = a[j];
        if (!taylor) {
            for (long k = 0; k < m; k++) out[k] += aj * tanh_expm1(zj[k] + bj);
            continue;
        }
        for (long k0 = 0; k0 < m; k0 += FUSED_BLOCK) {
            const long len = m - k0 < FUSED_BLOCK ? m - k0 : FUSED_BLOCK;
            double *restrict u = out + k0;
            for (long k = 0; k < len; k++) {
                const double th = tanh_expm1(zj[k0 + k] + bj), sk = 1 - th * th;
                u[k] += aj * th;
                s1[k] = aj * sk;
                s2[k] = aj * (-2 * th * sk);
            }
            quadratic(len, d, zj + k0, stride, c, diagonal, q);
            for (long i = 0; i < (gradient ? d : 0); i++) {
                const double *restrict ji = zj + (1 + i) * stride + k0;
                double *restrict oi = out + (1 + i) * stride + k0;
                for (long k = 0; k < len; k++) oi[k] += s1[k] * ji[k];
            }
            const double *restrict tj = zj + (d + 1) * stride + k0;
            double *restrict ot = out + (d + 1) * stride + k0;
            for (long k = 0; k < len; k++) ot[k] += s1[k] * tj[k] + s2[k] * q[k];
        }
    }
}
KERNEL(tanh_output, (long h, long m, long d, const double *z, long stride, long ld, const double *b, const double *c,
                     int diagonal, int taylor, int gradient, const double *a, double *out),
       (h, m, d, z, stride, ld, b, c, diagonal, taylor, gradient, a, out))

/* Products of the kept adjoints with a layer's output change, folded per sample; see kernels.h. */
ALWAYS_INLINE void adjoint_products_body(long h, long n, long s, const double *restrict g, const double *restrict p,
                                         const double *restrict bias, double *restrict out) {
    const long ld = s * n;
    for (long j = 0; j < h; j++) {
        const double *restrict gj = g + j * ld, *restrict pj = p + j * ld;
        const double bj = bias[j];
        for (long k = 0; k < n; k++) out[k] += gj[k] * (pj[k] + bj);
        for (long c = 1; c < s; c++)
            for (long k = 0; k < n; k++) out[k] += gj[c * n + k] * pj[c * n + k];
    }
}
KERNEL(adjoint_products, (long h, long n, long s, const double *g, const double *p, const double *bias, double *out),
       (h, n, s, g, p, bias, out))

ALWAYS_INLINE void first_adjoint_products_body(long h, long n, long d, long s, const double *restrict g,
                                               const double *restrict w, const double *restrict b,
                                               const double *restrict x, double *restrict out) {
    const long ld = s * n;
    double z[FUSED_BLOCK];
    for (long j = 0; j < h; j++) {
        const double *restrict gj = g + j * ld;
        for (long k0 = 0; k0 < n; k0 += FUSED_BLOCK) {
            const long len = n - k0 < FUSED_BLOCK ? n - k0 : FUSED_BLOCK;
            first_layer_row(len, d, x + k0, n, w + j * d, b[j], z);
            for (long k = 0; k < len; k++) out[k0 + k] += gj[k0 + k] * z[k];
            if (s == 1) continue;
            for (long i = 0; i < d; i++) {
                const double wi = w[j * d + i];
                const double *restrict gi = gj + (1 + i) * n + k0;
                for (long k = 0; k < len; k++) out[k0 + k] += gi[k] * wi;
            }
        }
    }
}
KERNEL(first_adjoint_products, (long h, long n, long d, long s, const double *g, const double *w, const double *b,
                                const double *x, double *out),
       (h, n, d, s, g, w, b, x, out))

ALWAYS_INLINE void first_nonfinite_body(long n, const double *restrict x, long *restrict index) {
    *index = -1;
    for (long k0 = 0; k0 < n; k0 += 256) {
        const long len = n - k0 < 256 ? n - k0 : 256;
        const double *restrict xb = x + k0;
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        long k = 0;
        for (; k + 8 <= len; k += 8)
            for (int c = 0; c < 8; c++) acc[c] += xb[k + c] - xb[k + c];
        for (; k < len; k++) acc[0] += xb[k] - xb[k];
        if (fold8(acc) == 0) continue;
        for (k = 0; k < len; k++)
            if (xb[k] - xb[k] != 0) { *index = k0 + k; return; }
    }
}
KERNEL(first_nonfinite, (long n, const double *x, long *index), (n, x, index))

ALWAYS_INLINE void model_products_body(long n, const double *restrict g, const double *restrict a,
                                       const double *restrict b, double *restrict out) {
    double aa[8] = {0}, ga[8] = {0}, ab[8] = {0}, bb[8] = {0}, gb[8] = {0};
    long k = 0;
    for (; k + 8 <= n; k += 8)
        for (int c = 0; c < 8; c++) {
            const double ak = a[k + c], bk = b[k + c], gk = g[k + c];
            aa[c] += ak * ak;
            ga[c] += gk * ak;
            ab[c] += ak * bk;
            bb[c] += bk * bk;
            gb[c] += gk * bk;
        }
    for (; k < n; k++) {
        aa[0] += a[k] * a[k];
        ga[0] += g[k] * a[k];
        ab[0] += a[k] * b[k];
        bb[0] += b[k] * b[k];
        gb[0] += g[k] * b[k];
    }
    out[0] = fold8(aa);
    out[1] = fold8(ga);
    out[2] = fold8(ab);
    out[3] = fold8(bb);
    out[4] = fold8(gb);
}
KERNEL(model_products, (long n, const double *g, const double *a, const double *b, double *out), (n, g, a, b, out))

ALWAYS_INLINE void apply_update_body(long n, double alpha, const double *restrict a, double mu, const double *restrict b,
                                     double *restrict theta, double *restrict theta0, double *restrict c,
                                     double *restrict out) {
    double squares[8] = {0}, finite[8] = {0};
    long k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++) {
            const double ck = alpha * a[k + j] + mu * b[k + j], t = theta[k + j], next = t + ck;
            c[k + j] = ck;
            theta0[k + j] = t;
            theta[k + j] = next;
            squares[j] += ck * ck;
            finite[j] += next - next;
        }
    for (; k < n; k++) {
        const double ck = alpha * a[k] + mu * b[k], t = theta[k], next = t + ck;
        c[k] = ck;
        theta0[k] = t;
        theta[k] = next;
        squares[0] += ck * ck;
        finite[0] += next - next;
    }
    out[0] = fold8(squares);
    out[1] = fold8(finite);
}
KERNEL(apply_update, (long n, double alpha, const double *a, double mu, const double *b, double *theta, double *theta0,
                      double *c, double *out),
       (n, alpha, a, mu, b, theta, theta0, c, out))
