/* Parameter-vector sweeps of the optimizers (D values), each one pass with eight partial sums. */
#include "shared.h"

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
