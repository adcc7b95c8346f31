/*
 * Data-parallel training on MPI: every rank trains the same network on its own points, and the
 * library sums loss, gradient, Kronecker factors and line-search losses over the ranks, so that
 * all take the identical KFAC* step (docs/parallel.md). poisson5d_cos, network 5-64-64-1 (tanh),
 * a new batch every step; the batch sizes are per rank (weak scaling).
 *
 *     mpirun -np 2 mpi_train [steps (500)] [interior points per rank (500)] [boundary points per rank (100)]
 *
 * Build: scripts/build-mpi.sh examples/mpi_train.c mpi_train (mpicc, libkfacpinn_mpi, libkfacpinn).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpi.h>

#include "check.h"
#include "kfacpinn_mpi.h"

/* kfp_train's callback on rank 0: one line per log record. */
static int32_t report(const double *record, int64_t count, void *user_data) {
    (void)count;
    (void)user_data;
    printf("%6lld  %8.2f  %12.4e  %12.4e\n", (long long)record[KFP_LOG_STEP], record[KFP_LOG_SECONDS],
           record[KFP_LOG_LOSS], record[KFP_LOG_RELATIVE_L2_ERROR]);
    fflush(stdout);
    return 0;
}

static int64_t count_argument(int argc, char **argv, int k, int64_t fallback) {
    if (argc <= k) return fallback;
    char *end = NULL;
    long long v = strtoll(argv[k], &end, 10);
    return end != argv[k] && *end == '\0' && v >= 1 && v <= 100000000LL ? (int64_t)v : 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int64_t steps = count_argument(argc, argv, 1, 500), interior = count_argument(argc, argv, 2, 500),
            boundary = count_argument(argc, argv, 3, 100);
    if (argc > 4 || !steps || !interior || !boundary) {
        if (rank == 0) fprintf(stderr, "usage: %s [steps] [interior points per rank] [boundary points per rank]\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    kfp_communicator comm;
    CHECK(kfp_comm_from_mpi(MPI_COMM_WORLD, &comm));

    /* The same network (same seed), operator and optimizer on every rank. */
    kfp_problem *problem = NULL;
    kfp_operator *op = NULL;
    kfp_net *net = NULL;
    kfp_optimizer *opt = NULL;
    const int64_t widths[] = {5, 64, 64, 1};
    CHECK(kfp_problem_create("poisson5d_cos", &problem));
    CHECK(kfp_problem_operator(problem, &op));
    CHECK(kfp_net_create(widths, 4, "tanh", NULL, 0, &net));
    CHECK(kfp_optimizer_create_kfac(net, op, &opt));
    CHECK(kfp_optimizer_set_string(opt, KFP_OPT_STEP_RULE, "auto"));
    CHECK(kfp_optimizer_set_double(opt, KFP_OPT_DAMPING, 1e-6));
    CHECK(kfp_optimizer_set_string(opt, KFP_OPT_DAMPING_RULE, "adaptive"));
    CHECK(kfp_optimizer_set_double(opt, KFP_OPT_EMA, 0.93));
    CHECK(kfp_optimizer_set_communicator(opt, &comm));

    kfp_train_options options;
    CHECK(kfp_train_default_options(&options));
    options.steps = steps;
    options.num_interior = interior;
    options.num_boundary = boundary;
    options.resample_every = 1;
    options.log_every = steps >= 10 ? steps / 5 : 1;
    options.callback = rank == 0 ? report : NULL;   /* every rank may log; rank 0 prints */
    if (rank == 0) {
        printf("KFAC* on poisson5d_cos, %d rank(s) x (%lld + %lld) points per step\n", size, (long long)interior,
               (long long)boundary);
        printf("%6s  %8s  %12s  %12s\n", "step", "time [s]", "loss", "rel. L2");
    }
    CHECK(kfp_train(opt, net, problem, &options, NULL));

    /* Every rank holds the same parameters. */
    int64_t count = 0;
    CHECK(kfp_net_num_params(net, &count));
    double *mine = malloc((size_t)count * sizeof(double)), *first = malloc((size_t)count * sizeof(double));
    if (!mine || !first) MPI_Abort(MPI_COMM_WORLD, 1);
    CHECK(kfp_net_get_params(net, mine, count));
    for (int64_t i = 0; i < count; i++) first[i] = mine[i];
    MPI_Bcast(first, (int)count, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    int differs = 0, any = 0;
    for (int64_t i = 0; i < count; i++) differs |= mine[i] != first[i];
    MPI_Allreduce(&differs, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    if (rank == 0) printf("parameters identical on all %d ranks: %s\n", size, any ? "no" : "yes");
    free(mine);
    free(first);

    CHECK(kfp_optimizer_set_communicator(opt, NULL));
    kfp_optimizer_free(opt);
    kfp_net_free(net);
    kfp_operator_free(op);
    kfp_problem_free(problem);
    kfp_comm_free_mpi(&comm);
    MPI_Finalize();
    return any ? 1 : 0;
}
