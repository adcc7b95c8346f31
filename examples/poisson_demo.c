/*
 * Poisson in 2-d through the C ABI: build a 2 -> 64 -> 1 tanh network, evaluate
 * u and its Laplacian on a few points, then the PINN loss of -Laplace(u) = f with
 * f = 2 pi^2 sin(pi x) sin(pi y) and u = 0 on the boundary, and its gradient.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

enum { N_INTERIOR = 900, N_BOUNDARY = 120 };

int main(void) {
    const double pi = 3.14159265358979323846;
    const int64_t widths[] = {2, 64, 1};
    kfp_net *net = NULL;
    CHECK(kfp_net_create(widths, 3, "tanh", NULL, 1, &net));
    int64_t num_params = 0;
    CHECK(kfp_net_num_params(net, &num_params));
    printf("kfacpinn %s, network 2-64-1 with %lld parameters\n", kfp_version_string(), (long long)num_params);

    /* u and Laplace(u) at three points. */
    const double x[] = {0.25, 0.25, 0.5, 0.5, 0.9, 0.1};
    double u[3], grad[6], lap[3];
    CHECK(kfp_net_derivatives(net, x, 3, 2, NULL, u, grad, lap));
    for (int k = 0; k < 3; k++)
        printf("  x = (%.2f, %.2f): u = %+.6f  grad u = (%+.6f, %+.6f)  lap u = %+.6f\n", x[2 * k],
               x[2 * k + 1], u[k], grad[2 * k], grad[2 * k + 1], lap[k]);

    /* A grid of interior points and points on the four edges. */
    static double xi[2 * N_INTERIOR], fi[N_INTERIOR], xb[2 * N_BOUNDARY], gb[N_BOUNDARY];
    for (int k = 0; k < N_INTERIOR; k++) {
        double a = (k % 30 + 0.5) / 30.0, b = (k / 30 + 0.5) / 30.0;
        xi[2 * k] = a;
        xi[2 * k + 1] = b;
        fi[k] = 2 * pi * pi * sin(pi * a) * sin(pi * b);
    }
    for (int k = 0; k < N_BOUNDARY; k++) {
        double t = (k / 4 + 0.5) / (N_BOUNDARY / 4);
        int side = k % 4;
        xb[2 * k] = side == 0 ? 0.0 : side == 1 ? 1.0 : t;
        xb[2 * k + 1] = side == 2 ? 0.0 : side == 3 ? 1.0 : t;
        gb[k] = 0.0;
    }
    kfp_operator *op = NULL;
    kfp_batch *batch = NULL;
    CHECK(kfp_operator_create_poisson(2, &op));
    CHECK(kfp_batch_create(xi, fi, N_INTERIOR, xb, gb, N_BOUNDARY, 2, &batch));
    double loss, loss_interior, loss_boundary;
    CHECK(kfp_loss(net, op, batch, &loss, &loss_interior, &loss_boundary));
    double *g = malloc((size_t)num_params * sizeof *g);
    if (!g) return 1;
    CHECK(kfp_loss_and_gradient(net, op, batch, &loss, g, num_params));
    double norm = 0;
    for (int64_t i = 0; i < num_params; i++) norm += g[i] * g[i];
    printf("Poisson loss %.6e (interior %.6e, boundary %.6e), |grad| = %.6e\n", loss, loss_interior,
           loss_boundary, sqrt(norm));

    free(g);
    kfp_batch_free(batch);
    kfp_operator_free(op);
    kfp_net_free(net);
    return 0;
}
