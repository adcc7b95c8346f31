/* A problem of your own, defined by C functions and trained with KFAC* through kfp_train:
 *
 *     -lap u + u = f on the unit disk,  u + du/dn = g on its circle,  u* = exp(x + y),
 *
 * so f = -u* and g = u* (1 + x + y) (the outward normal at x is x).
 *
 *     own_problem [steps]        (default 1000)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kfacpinn.h"

static void exact(void *user_data, const double *x, int64_t num_points, int64_t dim, double *out) {
    (void)user_data;
    for (int64_t k = 0; k < num_points; k++) out[k] = exp(x[k * dim] + x[k * dim + 1]);
}

static void source(void *user_data, const double *x, int64_t num_points, int64_t dim, double *out) {
    exact(user_data, x, num_points, dim, out);
    for (int64_t k = 0; k < num_points; k++) out[k] = -out[k];
}

static void robin_value(void *user_data, const double *x, int64_t num_points, int64_t dim, double *out) {
    exact(user_data, x, num_points, dim, out);
    for (int64_t k = 0; k < num_points; k++) out[k] *= 1 + x[k * dim] + x[k * dim + 1];
}

static int32_t report(const double *record, int64_t count, void *user_data) {
    (void)count; (void)user_data;
    printf("%6.0f  %8.2f  %12.4e  %12.4e\n", record[KFP_LOG_STEP], record[KFP_LOG_SECONDS], record[KFP_LOG_LOSS],
           record[KFP_LOG_L2_ERROR]);
    return 0;
}

int main(int argc, char **argv) {
    int64_t steps = argc > 1 ? atoll(argv[1]) : 1000;
    const double C[] = {-1, 0, 0, -1}, center[] = {0, 0};   /* -lap u: C = -I; + u: c = 1 */
    const int64_t widths[] = {2, 64, 1};
    kfp_operator *op = NULL;
    kfp_problem *problem = NULL;
    kfp_net *net = NULL;
    kfp_optimizer *opt = NULL;
    kfp_train_options train;
    int failed = kfp_operator_create_linear(2, C, NULL, NULL, 1.0, NULL, &op) != KFP_OK
        || kfp_problem_create_ball(op, center, 1.0, 2, source, NULL, &problem) != KFP_OK
        || kfp_problem_add_condition(problem, "boundary", KFP_TERM_ROBIN, robin_value, NULL, 1.0, 1.0) != KFP_OK
        || kfp_problem_set_exact(problem, exact, NULL) != KFP_OK
        || kfp_problem_set_sizes(problem, 900, 120) != KFP_OK
        || kfp_net_create(widths, 3, "tanh", NULL, 0, &net) != KFP_OK
        || kfp_optimizer_create_kfac(net, op, &opt) != KFP_OK
        || kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "auto") != KFP_OK
        || kfp_train_default_options(&train) != KFP_OK;
    if (!failed) {
        train.steps = steps;
        train.log_every = steps >= 4 ? steps / 4 : 1;
        train.callback = report;
        printf("-lap u + u = f on the unit disk, Robin u + du/dn = g; 2-64-1 network, KFAC*\n");
        printf("%6s  %8s  %12s  %12s\n", "step", "time [s]", "loss", "L2 error");
        failed = kfp_train(opt, net, problem, &train, NULL) != KFP_OK;
    }
    if (failed) fprintf(stderr, "kfacpinn: %s\n", kfp_last_error());
    kfp_optimizer_free(opt);
    kfp_net_free(net);
    kfp_problem_free(problem);
    kfp_operator_free(op);
    return failed;
}
