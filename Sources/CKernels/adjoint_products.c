/* Sums over the kept adjoints of a reverse pass: row sums (bias gradients) and J v per sample. */
#include "shared.h"

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
