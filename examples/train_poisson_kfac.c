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
#include <string.h>

#include "poisson2d.h"

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 3000;
    int every = argc > 2 ? atoi(argv[2]) : 250;
    int automatic = argc > 3 && strcmp(argv[3], "auto") == 0;
    if (steps < 1 || every < 1) {
        fprintf(stderr, "usage: %s [steps] [print every] [auto]\n", argv[0]);
        return 2;
    }

    static poisson2d problem;
    poisson2d_sample(&problem);

    const int64_t widths[] = {2, 64, 1};
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_batch *batch = poisson2d_batch(&problem);
    kfp_optimizer *opt = NULL;
    CHECK(kfp_net_create(widths, 3, "tanh", NULL, 0, &net));
    CHECK(kfp_operator_create_poisson(2, &op));
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
    printf("%6d  %12s  %12.4e  %10s\n", 0, "", poisson2d_l2_error(net, &problem), "");
    double stats[KFP_STAT_COUNT];
    for (int step = 1; step <= steps; step++) {
        CHECK(kfp_optimizer_step(opt, net, batch, stats, KFP_STAT_COUNT));
        if (step % every == 0 || step == steps)
            printf("%6d  %12.4e  %12.4e  %10.3e\n", step, stats[KFP_STAT_LOSS], poisson2d_l2_error(net, &problem),
                   stats[KFP_STAT_STEP_SIZE]);
    }
    kfp_optimizer_free(opt);
    kfp_batch_free(batch);
    kfp_operator_free(op);
    kfp_net_free(net);
    return 0;
}
