/* One-pass tanh kernels: activation and Taylor rule of a unit in one sweep over its samples
 * (blocks of FUSED_BLOCK); a pass that keeps slopes writes σ', σ'', σ''' to their rows instead. */
#include "shared.h"

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
