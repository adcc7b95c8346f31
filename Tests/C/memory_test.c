/*
 * Memory exhaustion is an error, not an abort: each request too large for memory runs in a
 * child process whose address space is limited to 4 GiB (ulimit -v); the call must return
 * KFP_ERROR_OUT_OF_MEMORY with a message naming the bytes, and the child must go on to train a
 * small network afterwards. Ends with the line "N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfacpinn.h"

static int passed, failed;

/* Exit codes of a child: the status of the big request, or one of these. */
enum { CHILD_SETUP_FAILED = 90, CHILD_AFTERWARDS_FAILED = 91 };

/* One step of KFAC on a small network: the library still works after the failure. */
static int small_run_works(void) {
    kfp_problem *problem = NULL;
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_optimizer *opt = NULL;
    kfp_batch *batch = NULL;
    int64_t widths[] = {2, 16, 1};
    double stats[8];
    int ok = kfp_problem_create("poisson2d_sin", &problem) == KFP_OK && kfp_net_create(widths, 3, NULL, NULL, 0, &net) == KFP_OK &&
             kfp_problem_operator(problem, &op) == KFP_OK && kfp_optimizer_create_kfac(net, op, &opt) == KFP_OK &&
             kfp_problem_sample(problem, 50, 10, 0, NULL, &batch) == KFP_OK &&
             kfp_optimizer_step(opt, net, batch, stats, 8) == KFP_OK;
    kfp_batch_free(batch);
    kfp_optimizer_free(opt);
    kfp_operator_free(op);
    kfp_net_free(net);
    kfp_problem_free(problem);
    return ok;
}

/* KFAC's Kronecker factors for a hidden width of 100000 (80 GB per factor). */
static kfp_status kfac_on_wide_network(void) {
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_optimizer *opt = NULL;
    int64_t widths[] = {2, 100000, 1};
    if (kfp_net_create(widths, 3, NULL, NULL, 0, &net) != KFP_OK || kfp_operator_create_poisson(2, &op) != KFP_OK) exit(CHILD_SETUP_FAILED);
    kfp_status s = kfp_optimizer_create_kfac(net, op, &opt);
    if (s == KFP_OK || opt != NULL) exit(CHILD_SETUP_FAILED);
    kfp_operator_free(op);
    kfp_net_free(net);
    return s;
}

/* A batch of 2e9 interior points (32 GB of coordinates). */
static kfp_status huge_batch(void) {
    kfp_problem *problem = NULL;
    kfp_batch *batch = NULL;
    if (kfp_problem_create("poisson2d_sin", &problem) != KFP_OK) exit(CHILD_SETUP_FAILED);
    kfp_status s = kfp_problem_sample(problem, 2000000000, 100, 0, NULL, &batch);
    kfp_problem_free(problem);
    return s;
}

/* ENGD's full Gramian of a 2-30000-1 network (D = 120001: 115 GB) with max_parameters 1e9. */
static kfp_status engd_full_gramian(void) {
    kfp_problem *problem = NULL;
    kfp_net *net = NULL;
    kfp_operator *op = NULL;
    kfp_optimizer *opt = NULL;
    kfp_batch *batch = NULL;
    int64_t widths[] = {2, 30000, 1};
    double stats[8];
    if (kfp_problem_create("poisson2d_sin", &problem) != KFP_OK || kfp_net_create(widths, 3, NULL, NULL, 0, &net) != KFP_OK ||
        kfp_problem_operator(problem, &op) != KFP_OK || kfp_optimizer_create_engd(net, op, &opt) != KFP_OK ||
        kfp_optimizer_set_int(opt, KFP_OPT_MAX_PARAMETERS, 1000000000) != KFP_OK ||
        kfp_problem_sample(problem, 100, 20, 0, NULL, &batch) != KFP_OK)
        exit(CHILD_SETUP_FAILED);
    kfp_status s = kfp_optimizer_step(opt, net, batch, stats, 8);
    kfp_batch_free(batch);
    kfp_optimizer_free(opt);
    kfp_operator_free(op);
    kfp_net_free(net);
    kfp_problem_free(problem);
    return s;
}

/* Runs `request` in a child limited to 4 GiB of address space; expects the out-of-memory status,
 * a message with "bytes", and a working library afterwards. */
static void expect_out_of_memory(const char *name, kfp_status (*request)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit limit = {4ULL << 30, 4ULL << 30};
        if (setrlimit(RLIMIT_AS, &limit) != 0) _exit(CHILD_SETUP_FAILED);
        kfp_status s = request();
        printf("  %s: status %d (%s): %s\n", name, s, kfp_status_string(s), kfp_last_error());
        if (s == KFP_ERROR_OUT_OF_MEMORY && strstr(kfp_last_error(), "bytes") == NULL) _exit(CHILD_SETUP_FAILED);
        if (!small_run_works()) _exit(CHILD_AFTERWARDS_FAILED);
        fflush(stdout);
        _exit(s);
    }
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == KFP_ERROR_OUT_OF_MEMORY) {
        passed++;
    } else {
        failed++;
        if (WIFSIGNALED(wstatus))
            printf("FAIL %s: the child was killed by signal %d\n", name, WTERMSIG(wstatus));
        else
            printf("FAIL %s: the child exited with %d, expected %d (out of memory)\n", name, WEXITSTATUS(wstatus),
                   KFP_ERROR_OUT_OF_MEMORY);
    }
}

int main(void) {
    expect_out_of_memory("KFAC on 2-100000-1", kfac_on_wide_network);
    expect_out_of_memory("a batch of 2e9 points", huge_batch);
    expect_out_of_memory("ENGD full on 2-30000-1", engd_full_gramian);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
