/*
 * An inverse problem from C: the built-in heat1d_inverse (d_t u = kappa d_xx u on [0,1]^2 with
 * kappa unknown, true 0.25, trained through log kappa from 1; 200 observations of the solution),
 * heat1d_inverse_noisy (the observations with 1% Gaussian noise) or poisson2d_reaction_inverse
 * (-Laplace u + c u = f with c unknown, true 2, trained from 0). Network 2 -> 64 -> 1, KFAC*,
 * the problem's default batch sizes, a new batch every step. Prints the recovered coefficient
 * and the relative L2 error of u as training goes.
 *
 *     inverse_problem [problem (heat1d_inverse)] [steps (5000)]
 */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

/* kfp_train's callback: the record's fixed columns, then the trainable coefficient. */
static int32_t report(const double *record, int64_t count, void *user_data) {
    const char *name = user_data;
    printf("%6lld  %12.4e  %12.4e  %s = %.6f\n", (long long)record[KFP_LOG_STEP], record[KFP_LOG_LOSS],
           record[KFP_LOG_RELATIVE_L2_ERROR], name, count > KFP_LOG_COUNT ? record[KFP_LOG_COUNT] : 0.0);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    const char *problem_name = argc > 1 ? argv[1] : "heat1d_inverse";
    long long steps = argc > 2 ? atoll(argv[2]) : 5000;
    if (argc > 3 || steps < 1 || steps > 1000000000LL) {
        fprintf(stderr, "usage: %s [heat1d_inverse | heat1d_inverse_noisy | poisson2d_reaction_inverse] [steps (1..1e9)]\n", argv[0]);
        return 2;
    }
    kfp_problem *problem = NULL;
    kfp_operator *op = NULL;
    kfp_net *net = NULL;
    kfp_optimizer *opt = NULL;
    int64_t widths[8], num_widths = 0, count = 0;
    CHECK(kfp_problem_create(problem_name, &problem));
    CHECK(kfp_problem_operator(problem, &op));
    CHECK(kfp_operator_coefficients(op, NULL, 0, &count));
    if (count != 1) {
        fprintf(stderr, "%s has %lld trainable coefficients, this example shows one\n", problem_name, (long long)count);
        return 2;
    }
    const char *name = NULL;
    double start = 0, value = 0;
    CHECK(kfp_operator_coefficient_info(op, 0, &name, NULL));
    CHECK(kfp_operator_coefficients(op, &start, 1, &count));
    CHECK(kfp_problem_network_widths(problem, "small", widths, 8, &num_widths));
    CHECK(kfp_net_create(widths, num_widths, "tanh", NULL, 0, &net));
    CHECK(kfp_optimizer_create_kfac(net, op, &opt));
    CHECK(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "auto"));
    printf("KFAC* on %s: %s from %g\n%6s  %12s  %12s  coefficient\n", problem_name, name, start, "step", "loss", "rel. L2");
    kfp_train_options train;
    CHECK(kfp_train_default_options(&train));
    train.steps = steps;
    train.log_every = steps >= 10 ? steps / 10 : 1;
    train.resample_every = 1;
    train.callback = report;
    train.user_data = (void *)name;
    CHECK(kfp_train(opt, net, problem, &train, NULL));
    CHECK(kfp_operator_coefficients(op, &value, 1, &count));
    printf("%s = %.6f after %lld steps\n", name, value, steps);
    kfp_optimizer_free(opt);
    kfp_net_free(net);
    kfp_operator_free(op);
    kfp_problem_free(problem);
    return 0;
}
