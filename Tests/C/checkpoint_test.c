/*
 * Checkpoints: exact resume and safe loading.
 * - For every optimizer (KFAC, KFAC*, SGD, Adam, L-BFGS, ENGD, Hessian-free), with a fixed batch
 *   and with a new batch every step: kfp_train for N steps with a checkpoint in a child process,
 *   then a fresh network and optimizer resuming to N + M steps in this process, equal bit for bit
 *   (parameters and every logged value but the time) to N + M steps in one go.
 * - kfp_net_save / kfp_optimizer_save after N steps, loaded into new handles, M more steps equal
 *   N + M steps (file and memory forms).
 * - Every truncation and every single-bit flip of a network checkpoint is KFP_ERROR_CORRUPT; a
 *   network's checkpoint loaded as an optimizer's, or an optimizer's bound to another network
 *   shape or operator, is KFP_ERROR_CORRUPT naming what differs.
 * Ends with the line "N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfacpinn.h"

static int passed, failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL: %s (%s)\n", what, kfp_last_error());
    }
}

#define MAX_RECORDS 16
#define MAX_PARAMS 4096

/* A training run's log and final parameters. */
typedef struct run_result {
    double records[MAX_RECORDS][KFP_LOG_COUNT];
    int count;
    double params[MAX_PARAMS];
    int64_t num_params, steps;
    kfp_status status;
} run_result;

static int collect(const double *values, int64_t count, void *user_data) {
    run_result *r = user_data;
    if (r->count < MAX_RECORDS && count == KFP_LOG_COUNT) memcpy(r->records[r->count++], values, sizeof(double) * KFP_LOG_COUNT);
    return 0;
}

typedef struct optimizer_case {
    const char *name, *step_rule, *variant;
    int64_t inverse_period;
} optimizer_case;

static const optimizer_case CASES[] = {
    {"kfac", NULL, NULL, 0}, {"kfac", "auto", NULL, 0}, {"kfac", NULL, NULL, 3}, {"sgd", NULL, NULL, 0},
    {"adam", NULL, NULL, 0}, {"lbfgs", NULL, NULL, 0}, {"engd", NULL, NULL, 0}, {"engd", NULL, "diagonal", 0},
    {"engd", NULL, "per_layer", 0}, {"hessian_free", NULL, NULL, 0},
};

static kfp_status create_optimizer(const optimizer_case *c, kfp_net *net, kfp_operator *op, kfp_optimizer **opt) {
    kfp_status s;
    if (strcmp(c->name, "kfac") == 0) s = kfp_optimizer_create_kfac(net, op, opt);
    else if (strcmp(c->name, "sgd") == 0) s = kfp_optimizer_create_sgd(net, op, opt);
    else if (strcmp(c->name, "adam") == 0) s = kfp_optimizer_create_adam(net, op, opt);
    else if (strcmp(c->name, "lbfgs") == 0) s = kfp_optimizer_create_lbfgs(net, op, opt);
    else if (strcmp(c->name, "engd") == 0) s = kfp_optimizer_create_engd(net, op, opt);
    else s = kfp_optimizer_create_hessian_free(net, op, opt);
    if (s == KFP_OK && c->step_rule) s = kfp_optimizer_set_string(*opt, KFP_OPT_STEP_RULE, c->step_rule);
    if (s == KFP_OK && c->variant) s = kfp_optimizer_set_string(*opt, KFP_OPT_VARIANT, c->variant);
    if (s == KFP_OK && c->inverse_period) s = kfp_optimizer_set_int(*opt, KFP_OPT_INVERSE_PERIOD, c->inverse_period);
    return s;
}

/* "kfac step_rule=auto", "engd variant=diagonal", ... */
static const char *case_name(const optimizer_case *c) {
    static char name[96];
    snprintf(name, sizeof name, "%s%s%s%s%s", c->name, c->step_rule ? " step_rule=" : "", c->step_rule ? c->step_rule : "",
             c->variant ? " variant=" : "", c->variant ? c->variant : "");
    if (c->inverse_period) snprintf(name + strlen(name), sizeof name - strlen(name), " inverse_period=%d", (int)c->inverse_period);
    return name;
}

/* Trains a fresh network (seed 3) on poisson2d_sin to `steps` steps, with the checkpoint options given. */
static void train_run(const optimizer_case *c, int64_t steps, int64_t resample, const char *checkpoint, int resume,
                      run_result *r) {
    kfp_problem *problem = NULL;
    kfp_operator *op = NULL;
    kfp_net *net = NULL;
    kfp_optimizer *opt = NULL;
    int64_t widths[] = {2, 12, 12, 1};
    memset(r, 0, sizeof *r);
    r->status = kfp_problem_create("poisson2d_sin", &problem);
    if (r->status == KFP_OK) r->status = kfp_problem_operator(problem, &op);
    if (r->status == KFP_OK) r->status = kfp_net_create(widths, 4, NULL, NULL, 3, &net);
    if (r->status == KFP_OK) r->status = create_optimizer(c, net, op, &opt);
    if (r->status == KFP_OK) {
        kfp_train_options o;
        kfp_train_default_options(&o);
        o.steps = steps;
        o.num_interior = 60;
        o.num_boundary = 20;
        o.resample_every = resample;
        o.log_every = 3;
        o.callback = collect;
        o.user_data = r;
        o.checkpoint_path = checkpoint;
        o.checkpoint_every = checkpoint ? 2 : 0;
        o.resume = resume;
        r->status = kfp_train(opt, net, problem, &o, &r->steps);
    }
    if (r->status == KFP_OK) r->status = kfp_net_num_params(net, &r->num_params);
    if (r->status == KFP_OK) r->status = kfp_net_get_params(net, r->params, r->num_params);
    kfp_optimizer_free(opt);
    kfp_net_free(net);
    kfp_operator_free(op);
    kfp_problem_free(problem);
}

/* Whether two runs logged the same records (all values but the time) and ended at the same parameters. */
static int same_run(const run_result *a, const run_result *b) {
    if (a->status != KFP_OK || b->status != KFP_OK || a->count != b->count || a->num_params != b->num_params) return 0;
    for (int k = 0; k < a->count; k++)
        for (int j = 0; j < KFP_LOG_COUNT; j++)
            if (j != KFP_LOG_SECONDS && memcmp(&a->records[k][j], &b->records[k][j], sizeof(double)) != 0) return 0;
    return memcmp(a->params, b->params, sizeof(double) * (size_t)a->num_params) == 0;
}

static void test_train_resume(const optimizer_case *c, int64_t resample) {
    char path[64], what[160];
    snprintf(path, sizeof path, "/tmp/kfp_checkpoint_%d.kfp", (int)getpid());
    unlink(path);
    static run_result whole, resumed;
    train_run(c, 7, resample, NULL, 0, &whole);
    pid_t child = fork();
    if (child == 0) {
        static run_result first;
        train_run(c, 4, resample, path, 0, &first);
        _exit(first.status == KFP_OK && first.steps == 4 ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    snprintf(what, sizeof what, "%s, resample_every %d: the first 4 steps in a child process", case_name(c), (int)resample);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, what);
    train_run(c, 7, resample, path, 1, &resumed);
    snprintf(what, sizeof what, "%s, resample_every %d: 4 steps, checkpoint, resume to 7 equals 7 steps", case_name(c), (int)resample);
    check(same_run(&whole, &resumed) && resumed.steps == 7, what);
    unlink(path);
}

/* kfp_net_save/kfp_optimizer_save after 3 steps, load, 3 more steps == 6 steps. */
static void test_save_load(const optimizer_case *c, int memory) {
    kfp_problem *problem = NULL;
    kfp_operator *op = NULL;
    kfp_net *net = NULL, *reference = NULL, *loaded = NULL;
    kfp_optimizer *opt = NULL, *reference_opt = NULL, *loaded_opt = NULL;
    kfp_batch *batches[6] = {0};
    int64_t widths[] = {2, 10, 1};
    char net_path[64], opt_path[64], what[128];
    snprintf(net_path, sizeof net_path, "/tmp/kfp_net_%d.kfp", (int)getpid());
    snprintf(opt_path, sizeof opt_path, "/tmp/kfp_opt_%d.kfp", (int)getpid());
    int ok = kfp_problem_create("poisson2d_sin", &problem) == KFP_OK && kfp_problem_operator(problem, &op) == KFP_OK &&
             kfp_net_create(widths, 3, NULL, NULL, 5, &net) == KFP_OK && kfp_net_create(widths, 3, NULL, NULL, 5, &reference) == KFP_OK &&
             create_optimizer(c, net, op, &opt) == KFP_OK && create_optimizer(c, reference, op, &reference_opt) == KFP_OK;
    for (int k = 0; ok && k < 6; k++) ok = kfp_problem_sample(problem, 40, 12, (uint64_t)k, NULL, &batches[k]) == KFP_OK;
    for (int k = 0; ok && k < 6; k++) ok = kfp_optimizer_step(reference_opt, reference, batches[k], NULL, 0) == KFP_OK;
    for (int k = 0; ok && k < 3; k++) ok = kfp_optimizer_step(opt, net, batches[k], NULL, 0) == KFP_OK;
    if (ok && memory) {
        int64_t net_size = 0, opt_size = 0;
        ok = kfp_net_save_memory(net, NULL, 0, &net_size) == KFP_OK && kfp_optimizer_save_memory(opt, NULL, 0, &opt_size) == KFP_OK;
        char *net_bytes = malloc((size_t)net_size), *opt_bytes = malloc((size_t)opt_size);
        ok = ok && net_bytes && opt_bytes && kfp_net_save_memory(net, net_bytes, net_size, &net_size) == KFP_OK &&
             kfp_optimizer_save_memory(opt, opt_bytes, opt_size, &opt_size) == KFP_OK &&
             kfp_net_load_memory(net_bytes, net_size, &loaded) == KFP_OK &&
             kfp_optimizer_load_memory(opt_bytes, opt_size, loaded, op, &loaded_opt) == KFP_OK;
        free(net_bytes);
        free(opt_bytes);
    } else if (ok) {
        ok = kfp_net_save(net, net_path) == KFP_OK && kfp_optimizer_save(opt, opt_path) == KFP_OK &&
             kfp_net_load(net_path, &loaded) == KFP_OK && kfp_optimizer_load(opt_path, loaded, op, &loaded_opt) == KFP_OK;
    }
    for (int k = 3; ok && k < 6; k++) ok = kfp_optimizer_step(loaded_opt, loaded, batches[k], NULL, 0) == KFP_OK;
    double a[512], b[512];
    int64_t n = 0;
    ok = ok && kfp_net_num_params(reference, &n) == KFP_OK && n <= 512 && kfp_net_get_params(reference, a, n) == KFP_OK &&
         kfp_net_get_params(loaded, b, n) == KFP_OK && memcmp(a, b, sizeof(double) * (size_t)n) == 0;
    snprintf(what, sizeof what, "%s: save after 3 steps (%s), load, 3 more equals 6 steps", case_name(c), memory ? "memory" : "file");
    check(ok, what);
    for (int k = 0; k < 6; k++) kfp_batch_free(batches[k]);
    kfp_optimizer_free(loaded_opt);
    kfp_optimizer_free(reference_opt);
    kfp_optimizer_free(opt);
    kfp_net_free(loaded);
    kfp_net_free(reference);
    kfp_net_free(net);
    kfp_operator_free(op);
    kfp_problem_free(problem);
    unlink(net_path);
    unlink(opt_path);
}

/* Damaged and mismatched checkpoints are refused with KFP_ERROR_CORRUPT, never a crash. */
static void test_damaged(void) {
    kfp_net *net = NULL, *other = NULL, *loaded = NULL;
    kfp_operator *op = NULL, *heat = NULL;
    kfp_optimizer *opt = NULL, *loaded_opt = NULL;
    int64_t widths[] = {2, 6, 1}, wider[] = {2, 7, 1}, size = 0, opt_size = 0;
    int ok = kfp_net_create(widths, 3, NULL, NULL, 1, &net) == KFP_OK && kfp_net_create(wider, 3, NULL, NULL, 1, &other) == KFP_OK &&
             kfp_operator_create_poisson(2, &op) == KFP_OK && kfp_operator_create_heat(1, 0.5, &heat) == KFP_OK &&
             kfp_optimizer_create_kfac(net, op, &opt) == KFP_OK && kfp_net_save_memory(net, NULL, 0, &size) == KFP_OK &&
             kfp_optimizer_save_memory(opt, NULL, 0, &opt_size) == KFP_OK;
    check(ok, "setup of the damaged-checkpoint tests");
    if (!ok) return;
    unsigned char *bytes = malloc((size_t)size), *copy = malloc((size_t)size), *opt_bytes = malloc((size_t)opt_size);
    kfp_net_save_memory(net, bytes, size, &size);
    kfp_optimizer_save_memory(opt, opt_bytes, opt_size, &opt_size);
    int truncations = 0, flips = 0;
    for (int64_t n = 0; n < size; n++) {
        if (kfp_net_load_memory(bytes, n, &loaded) == KFP_ERROR_CORRUPT && loaded == NULL) truncations++;
        kfp_net_free(loaded);
        loaded = NULL;
    }
    check(truncations == size, "every truncation of a network checkpoint is KFP_ERROR_CORRUPT");
    for (int64_t i = 0; i < size; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, bytes, (size_t)size);
            copy[i] ^= (unsigned char)(1u << bit);
            if (kfp_net_load_memory(copy, size, &loaded) == KFP_ERROR_CORRUPT && loaded == NULL) flips++;
            kfp_net_free(loaded);
            loaded = NULL;
        }
    check(flips == 8 * size, "every bit flip of a network checkpoint is KFP_ERROR_CORRUPT");
    check(kfp_optimizer_load_memory(bytes, size, net, op, &loaded_opt) == KFP_ERROR_CORRUPT &&
              strstr(kfp_last_error(), "a network") != NULL,
          "a network checkpoint loaded as an optimizer's: KFP_ERROR_CORRUPT naming the kind");
    check(kfp_optimizer_load_memory(opt_bytes, opt_size, other, op, &loaded_opt) == KFP_ERROR_CORRUPT &&
              strstr(kfp_last_error(), "widths") != NULL,
          "an optimizer checkpoint bound to another network shape: KFP_ERROR_CORRUPT naming the widths");
    check(kfp_optimizer_load_memory(opt_bytes, opt_size, net, heat, &loaded_opt) == KFP_ERROR_CORRUPT &&
              strstr(kfp_last_error(), "operator") != NULL,
          "an optimizer checkpoint bound to another operator: KFP_ERROR_CORRUPT naming the operator");
    check(kfp_net_load("/nonexistent/net.kfp", &loaded) == KFP_ERROR_IO && loaded == NULL, "a missing file: KFP_ERROR_IO");
    check(kfp_net_save_memory(net, copy, size - 1, &opt_size) == KFP_ERROR_INVALID_ARGUMENT && opt_size == size,
          "a buffer one byte short: KFP_ERROR_INVALID_ARGUMENT and the size needed");
    free(bytes);
    free(copy);
    free(opt_bytes);
    kfp_optimizer_free(opt);
    kfp_operator_free(heat);
    kfp_operator_free(op);
    kfp_net_free(other);
    kfp_net_free(net);
}

int main(void) {
    int n = (int)(sizeof CASES / sizeof CASES[0]);
    for (int i = 0; i < n; i++) {
        test_train_resume(&CASES[i], 0);
        test_train_resume(&CASES[i], 1);
        test_save_load(&CASES[i], 0);
        test_save_load(&CASES[i], 1);
    }
    test_damaged();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
