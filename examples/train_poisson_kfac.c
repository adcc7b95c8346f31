/*
 * The main job: a PINN for the built-in problem poisson2d_sin (-Laplace(u) = 2 pi^2 sin(pi x)
 * sin(pi y) on [0,1]^2, u = 0 on the boundary), network 2 -> 64 -> 1 (tanh), 900 interior and
 * 120 boundary points (one fixed batch), trained with KFAC (grid line search, momentum)
 * through kfp_train. Prints the L2 (RMS) error on 9000 fresh points every few hundred steps;
 * on a terminal, a progress bar runs in between.
 *
 *     train_poisson_kfac [steps (3000)] [print every (250)] [auto]
 *
 * With "auto" the step size and momentum come from KFAC*'s quadratic model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

typedef struct {
    int64_t steps, every;
    int terminal;
} progress;

/* kfp_train's callback: a table line every `every` steps, a progress bar on a terminal. */
static int32_t report(const double *record, int64_t count, void *user_data) {
    const progress *p = user_data;
    (void)count;
    int64_t step = (int64_t)record[KFP_LOG_STEP];
    if (step % p->every == 0 || step == p->steps) {
        if (p->terminal) fprintf(stderr, "\r%60s\r", "");
        printf("%6lld  %8.1f  %12.4e  %12.4e  %10.3e\n", (long long)step, record[KFP_LOG_SECONDS],
               record[KFP_LOG_LOSS], record[KFP_LOG_L2_ERROR], record[KFP_LOG_STEP_SIZE]);
        fflush(stdout);
    } else if (p->terminal) {
        int filled = (int)(40 * step / p->steps);
        fprintf(stderr, "\r[%.*s%*s] %lld/%lld  L2 %.3e", filled, "########################################",
                40 - filled, "", (long long)step, (long long)p->steps, record[KFP_LOG_L2_ERROR]);
    }
    return 0;
}

/* Parses a whole decimal integer >= 1 (and at most 10^9); 0 on anything else. */
static int64_t positive_count(const char *text) {
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    return end != text && *end == '\0' && v >= 1 && v <= 1000000000LL ? (int64_t)v : 0;
}

int main(int argc, char **argv) {
    progress p = {3000, 250, isatty(STDERR_FILENO)};
    int automatic = 0, valid = argc <= 4;
    if (valid && argc > 1) valid = (p.steps = positive_count(argv[1])) > 0;
    if (valid && argc > 2) valid = (p.every = positive_count(argv[2])) > 0;
    if (valid && argc > 3) valid = automatic = strcmp(argv[3], "auto") == 0;
    if (!valid) {
        fprintf(stderr, "usage: %s [steps (1..1e9)] [print every (1..1e9)] [auto]\n", argv[0]);
        return 2;
    }
    kfp_problem *problem = NULL;
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_optimizer *opt = NULL;
    int64_t widths[8], num_widths = 0, taken = 0;
    CHECK(kfp_problem_create("poisson2d_sin", &problem));
    CHECK(kfp_problem_network_widths(problem, "small", widths, 8, &num_widths));
    CHECK(kfp_net_create(widths, num_widths, "tanh", NULL, 0, &net));
    CHECK(kfp_problem_operator(problem, &op));
    CHECK(kfp_optimizer_create_kfac(net, op, &opt));
    if (automatic) {
        CHECK(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "auto"));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 1.2e-10));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_EMA, 0.93));
    } else {
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 1e-14));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_EMA, 0.3));
        CHECK(kfp_optimizer_set_double(opt, KFP_OPT_MOMENTUM, 0.51));
    }
    printf("%s on poisson2d_sin, network 2-64-1 (257 parameters), 900 interior / 120 boundary points\n",
           automatic ? "KFAC*" : "KFAC");
    printf("%6s  %8s  %12s  %12s  %10s\n", "step", "time [s]", "loss", "L2 error", "step size");
    /* Records every 10 steps for the progress bar (the table shows every `every`); one fixed batch of
     * the problem's default size; seed 0. */
    kfp_train_options train;
    CHECK(kfp_train_default_options(&train));
    train.steps = p.steps;
    train.log_every = p.every % 10 == 0 ? 10 : p.every;
    train.callback = report;
    train.user_data = &p;
    CHECK(kfp_train(opt, net, problem, &train, &taken));
    if (p.terminal) fprintf(stderr, "\r%60s\r", "");
    kfp_optimizer_free(opt);
    kfp_operator_free(op);
    kfp_net_free(net);
    kfp_problem_free(problem);
    return taken == p.steps ? 0 : 1;
}
