/*
 * Train a PINN for -Laplace(u) = 2 pi^2 sin(pi x) sin(pi y) on [0,1]^2, u = 0 on the
 * boundary (exact solution sin(pi x) sin(pi y)), with KFAC through the C ABI:
 * network 2 -> 64 -> 1 (tanh), 900 interior and 120 boundary points, grid line
 * search and momentum. Prints the L2 (RMS) error on 9000 fresh points.
 *
 *     train_poisson_kfac [steps (3000)] [print every (250)] [auto]
 *
 * With "auto" the step size and momentum come from KFAC*'s quadratic model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfacpinn.h"

#define CHECK(call)                                                                            \
    do {                                                                                       \
        kfp_status status_ = (call);                                                           \
        if (status_ != KFP_OK) {                                                               \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, kfp_status_string(status_),         \
                    kfp_last_error());                                                         \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

enum { N_INTERIOR = 900, N_BOUNDARY = 120, N_EVAL = 9000 };
static const double PI = 3.14159265358979323846;

/* xorshift64*: a small deterministic generator for the sample points. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static double uniform(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

static double exact(double x, double y) { return sin(PI * x) * sin(PI * y); }

static double l2_error(kfp_net *net, const double *x, const double *u_exact, double *u) {
    CHECK(kfp_net_eval(net, x, N_EVAL, 2, u));
    double sum = 0;
    for (int k = 0; k < N_EVAL; k++) sum += (u[k] - u_exact[k]) * (u[k] - u_exact[k]);
    return sqrt(sum / N_EVAL);
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 3000;
    int every = argc > 2 ? atoi(argv[2]) : 250;
    int automatic = argc > 3 && strcmp(argv[3], "auto") == 0;
    if (steps < 1 || every < 1) {
        fprintf(stderr, "usage: %s [steps] [print every] [auto]\n", argv[0]);
        return 2;
    }

    static double xi[2 * N_INTERIOR], fi[N_INTERIOR], xb[2 * N_BOUNDARY], gb[N_BOUNDARY];
    static double xe[2 * N_EVAL], ue[N_EVAL], u[N_EVAL];
    for (int k = 0; k < N_INTERIOR; k++) {
        xi[2 * k] = uniform();
        xi[2 * k + 1] = uniform();
        fi[k] = 2 * PI * PI * exact(xi[2 * k], xi[2 * k + 1]);
    }
    for (int k = 0; k < N_BOUNDARY; k++) {
        /* Uniform in the square, then one random coordinate set to 0 or 1. */
        xb[2 * k] = uniform();
        xb[2 * k + 1] = uniform();
        xb[2 * k + (uniform() < 0.5 ? 0 : 1)] = uniform() < 0.5 ? 0.0 : 1.0;
        gb[k] = 0.0;
    }
    for (int k = 0; k < N_EVAL; k++) {
        xe[2 * k] = uniform();
        xe[2 * k + 1] = uniform();
        ue[k] = exact(xe[2 * k], xe[2 * k + 1]);
    }

    const int64_t widths[] = {2, 64, 1};
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_batch *batch = NULL;
    kfp_optimizer *opt = NULL;
    CHECK(kfp_net_create(widths, 3, "tanh", NULL, 0, &net));
    CHECK(kfp_operator_create_poisson(2, &op));
    CHECK(kfp_batch_create(xi, fi, N_INTERIOR, xb, gb, N_BOUNDARY, 2, &batch));
    CHECK(kfp_optimizer_create_kfac(net, op, &opt));
    if (automatic) {
        CHECK(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "auto"));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 1.2e-10));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_EMA, 0.93));
    } else {
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 1e-10));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_EMA, 0.45));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_MOMENTUM, 0.51));
    }

    printf("%s on 2-d Poisson, network 2-64-1 (257 parameters), %d interior / %d boundary points\n",
           automatic ? "KFAC*" : "KFAC", N_INTERIOR, N_BOUNDARY);
    printf("%6s  %12s  %12s  %10s\n", "step", "loss", "L2 error", "step size");
    printf("%6d  %12s  %12.4e  %10s\n", 0, "", l2_error(net, xe, ue, u), "");
    double stats[KFP_STAT_COUNT];
    for (int step = 1; step <= steps; step++) {
        CHECK(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT));
        if (step % every == 0 || step == steps)
            printf("%6d  %12.4e  %12.4e  %10.3e\n", step, stats[KFP_STAT_LOSS], l2_error(net, xe, ue, u),
                   stats[KFP_STAT_STEP_SIZE]);
    }
    kfp_optimizer_free(opt);
    kfp_batch_free(batch);
    kfp_operator_free(op);
    kfp_net_free(net);
    return 0;
}
