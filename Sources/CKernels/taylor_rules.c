/* The Taylor-mode rules of the separate passes (activation, forward Laplacian, its reverse and its tangent) and the linear layers around them. */
#include "shared.h"

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

ALWAYS_INLINE void first_layer_values_body(long h, long n, long d, const double *restrict w, const double *restrict b,
                                           const double *restrict x, double *restrict out) {
    for (long j = 0; j < h; j++) first_layer_row(n, d, x, n, w + j * d, b[j], out + j * n);
}
KERNEL(first_layer_values, (long h, long n, long d, const double *w, const double *b, const double *x, double *out),
       (h, n, d, w, b, x, out))

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
