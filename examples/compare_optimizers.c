/*
 * The built-in problem poisson2d_sin trained twice from the same initial network
 * (2 -> 64 -> 1, tanh) on the same 900/120 points, with two optimizers of the library,
 * each with the settings below; prints both L2 (RMS) errors every few steps.
 *
 *     compare_optimizers [steps (300)] [print every (50)] [first (engd)] [second (adam)]
 *
 * Optimizers: kfac, kfac_auto, sgd, adam, lbfgs, engd, hessian_free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* L2 (RMS) error on 9000 fresh points (seed 1). */
static double l2_error(kfp_problem *problem, kfp_net *net) {
    double l2 = 0;
    CHECK(kfp_problem_errors(problem, net, 9000, 1, &l2, NULL));
    return l2;
}

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
    const int64_t widths[] = {2, 64, 1};
    kfp_problem *problem = NULL;
    kfp_operator *op = NULL;
    kfp_batch *batch = NULL;
    kfp_net *nets[2] = {NULL, NULL};
    kfp_optimizer *opts[2];
    CHECK(kfp_problem_create("poisson2d_sin", &problem));
    CHECK(kfp_problem_sample(problem, 900, 120, 0, NULL, &batch));
    CHECK(kfp_problem_operator(problem, &op));
    for (int i = 0; i < 2; i++) {
        CHECK(kfp_net_create(widths, 3, "tanh", NULL, 0, &nets[i]));
        opts[i] = create(names[i], nets[i], op);
    }
    printf("poisson2d_sin, network 2-64-1, 900 interior / 120 boundary points: L2 (RMS) error\n");
    printf("%6s  %14s  %14s\n", "step", names[0], names[1]);
    double stats[KFP_STAT_COUNT];
    for (int step = 1; step <= steps; step++) {
        for (int i = 0; i < 2; i++) CHECK(kfp_optimizer_step(opts[i], nets[i], batch, stats, KFP_STAT_COUNT));
        if (step % every == 0 || step == steps)
            printf("%6d  %14.4e  %14.4e\n", step, l2_error(problem, nets[0]), l2_error(problem, nets[1]));
    }
    for (int i = 0; i < 2; i++) {
        kfp_optimizer_free(opts[i]);
        kfp_net_free(nets[i]);
    }
    kfp_batch_free(batch);
    kfp_operator_free(op);
    kfp_problem_free(problem);
    return 0;
}
