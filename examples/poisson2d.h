/*
 * The 2-d Poisson problem of the examples: -Laplace(u) = 2 pi^2 sin(pi x) sin(pi y) on
 * [0,1]^2, u = 0 on the boundary, exact solution sin(pi x) sin(pi y); 900 interior and
 * 120 boundary points, the L2 (RMS) error on 9000 fresh points; and CHECK(), which
 * prints the library's message and exits when a call fails.
 */
#ifndef KFACPINN_EXAMPLES_POISSON2D_H
#define KFACPINN_EXAMPLES_POISSON2D_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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

/* Training points and evaluation points with their exact values. */
typedef struct {
    double xi[2 * N_INTERIOR], fi[N_INTERIOR], xb[2 * N_BOUNDARY], gb[N_BOUNDARY];
    double xe[2 * N_EVAL], ue[N_EVAL], u[N_EVAL];
} poisson2d;

static void poisson2d_sample(poisson2d *p) {
    for (int k = 0; k < N_INTERIOR; k++) {
        p->xi[2 * k] = uniform();
        p->xi[2 * k + 1] = uniform();
        p->fi[k] = 2 * PI * PI * exact(p->xi[2 * k], p->xi[2 * k + 1]);
    }
    for (int k = 0; k < N_BOUNDARY; k++) {
        /* Uniform in the square, then one random coordinate set to 0 or 1. */
        p->xb[2 * k] = uniform();
        p->xb[2 * k + 1] = uniform();
        p->xb[2 * k + (uniform() < 0.5 ? 0 : 1)] = uniform() < 0.5 ? 0.0 : 1.0;
        p->gb[k] = 0.0;
    }
    for (int k = 0; k < N_EVAL; k++) {
        p->xe[2 * k] = uniform();
        p->xe[2 * k + 1] = uniform();
        p->ue[k] = exact(p->xe[2 * k], p->xe[2 * k + 1]);
    }
}

static kfp_batch *poisson2d_batch(const poisson2d *p) {
    kfp_batch *batch = NULL;
    CHECK(kfp_batch_create(p->xi, p->fi, N_INTERIOR, p->xb, p->gb, N_BOUNDARY, 2, &batch));
    return batch;
}

static double poisson2d_l2_error(kfp_net *net, poisson2d *p) {
    CHECK(kfp_net_eval(net, p->xe, N_EVAL, 2, p->u));
    double sum = 0;
    for (int k = 0; k < N_EVAL; k++) sum += (p->u[k] - p->ue[k]) * (p->u[k] - p->ue[k]);
    return sqrt(sum / N_EVAL);
}

#endif
