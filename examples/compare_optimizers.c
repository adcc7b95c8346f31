/*
 * The 2-d Poisson problem of poisson2d.h trained twice from the same initial network
 * (2 -> 64 -> 1, tanh) and the same points, with two optimizers of the library, each
 * with the settings below; prints both L2 (RMS) errors every few steps.
 *
 *     compare_optimizers [steps (300)] [print every (50)] [first (engd)] [second (adam)]
 *
 * Optimizers: kfac, kfac_auto, sgd, adam, lbfgs, engd, hessian_free.
 */
#include <string.h>

#include "poisson2d.h"

/* Creates the optimizer `name` for net and op with settings that suit this problem. */
static kfp_optimizer *create(const char *name, kfp_net *net, kfp_operator *op) {
    kfp_optimizer *opt = NULL;
    if (strcmp(name, "kfac") == 0 || strcmp(name, "kfac_auto") == 0) {
        CHECK(kfp_optimizer_create_kfac(net, op, &opt));
        if (strcmp(name, "kfac_auto") == 0) {
            CHECK(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "auto"));
            CHECK(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 1.2e-10));
            CHECK(kfp_optimizer_set_double(opt, KFP_OPT_EMA, 0.93));
        } else {
            CHECK(kfp_optimizer_set_double(opt, KFP_OPT_EMA, 0.45));
            CHECK(kfp_optimizer_set_double(opt, KFP_OPT_MOMENTUM, 0.51));
        }
    } else if (strcmp(name, "sgd") == 0) {
        CHECK(kfp_optimizer_create_sgd(net, op, &opt));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_LEARNING_RATE, 0.018));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_MOMENTUM, 0.99));
    } else if (strcmp(name, "adam") == 0) {
        CHECK(kfp_optimizer_create_adam(net, op, &opt));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_LEARNING_RATE, 1.7e-3));
    } else if (strcmp(name, "lbfgs") == 0) {
        CHECK(kfp_optimizer_create_lbfgs(net, op, &opt));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_LEARNING_RATE, 0.5));
        CHECK(kfp_optimizer_set_int(opt, KFP_OPT_HISTORY, 150));
    } else if (strcmp(name, "engd") == 0) {
        CHECK(kfp_optimizer_create_engd(net, op, &opt));
    } else if (strcmp(name, "hessian_free") == 0) {
        CHECK(kfp_optimizer_create_hessian_free(net, op, &opt));
    } else {
        fprintf(stderr, "unknown optimizer '%s' (kfac, kfac_auto, sgd, adam, lbfgs, engd, hessian_free)\n", name);
        exit(2);
    }
    return opt;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 300;
    int every = argc > 2 ? atoi(argv[2]) : 50;
    const char *names[2] = {argc > 3 ? argv[3] : "engd", argc > 4 ? argv[4] : "adam"};
    if (steps < 1 || every < 1) {
        fprintf(stderr, "usage: %s [steps] [print every] [first] [second]\n", argv[0]);
        return 2;
    }
    static poisson2d problem;
    poisson2d_sample(&problem);
    const int64_t widths[] = {2, 64, 1};
    kfp_operator *op = NULL;
    kfp_batch *batch = poisson2d_batch(&problem);
    kfp_net *nets[2] = {NULL, NULL};
    kfp_optimizer *opts[2];
    CHECK(kfp_operator_create_poisson(2, &op));
    for (int i = 0; i < 2; i++) {
        CHECK(kfp_net_create(widths, 3, "tanh", NULL, 0, &nets[i]));
        opts[i] = create(names[i], nets[i], op);
    }
    printf("2-d Poisson, network 2-64-1, %d interior / %d boundary points: L2 (RMS) error\n", N_INTERIOR, N_BOUNDARY);
    printf("%6s  %14s  %14s\n", "step", names[0], names[1]);
    double stats[KFP_STAT_COUNT];
    for (int step = 1; step <= steps; step++) {
        for (int i = 0; i < 2; i++) CHECK(kfp_optimizer_step(opts[i], nets[i], batch, stats, KFP_STAT_COUNT));
        if (step % every == 0 || step == steps)
            printf("%6d  %14.4e  %14.4e\n", step, poisson2d_l2_error(nets[0], &problem),
                   poisson2d_l2_error(nets[1], &problem));
    }
    for (int i = 0; i < 2; i++) {
        kfp_optimizer_free(opts[i]);
        kfp_net_free(nets[i]);
    }
    kfp_batch_free(batch);
    kfp_operator_free(op);
    return 0;
}
