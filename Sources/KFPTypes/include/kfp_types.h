/* The structs of the C interface (include/kfacpinn.h copies this section). */
#ifndef KFP_TYPES_H
#define KFP_TYPES_H

#include <stdint.h>

/* Receives one training-log record (values indexed by KFP_LOG_*, `count` of them) and the
 * caller's user_data; return nonzero to stop training. */
typedef int32_t (*kfp_train_callback)(const double *record, int64_t count, void *user_data);

/* A scalar function of points (a source, a condition's values, an exact solution): writes
 * out[k] = f(x_k) for the num_points points of x (row-major num_points x dim). user_data is the
 * pointer given with the function. It may be called from any thread the library uses, one call
 * at a time per problem. A NaN or infinite value is reported as an error naming the point. */
typedef void (*kfp_point_function)(void *user_data, const double *x, int64_t num_points, int64_t dim, double *out);

/* Settings of kfp_train. Fill with kfp_train_default_options, then change fields; `size` must
 * stay what that function wrote (fields added in later versions come after the last one). */
typedef struct kfp_train_options {
    int64_t size;               /* sizeof(kfp_train_options), written by kfp_train_default_options */
    int64_t steps;              /* steps to take, >= 1 (default 1000) */
    double seconds;             /* training-time budget in seconds; <= 0 for none (default 0) */
    int64_t num_interior;       /* interior points per batch; 0 for the problem's default (default 0) */
    int64_t num_boundary;       /* condition points per batch; -1 for the problem's default (default -1) */
    const char *sampler;        /* "uniform" or "sobol"; NULL for uniform (default NULL) */
    int64_t resample_every;     /* a new batch every this many steps; 0 for one fixed batch (default 0) */
    int64_t log_every;          /* log after steps 0, 1, every this many steps and the last, >= 1 (default 100) */
    uint64_t seed;              /* seed of the batches: seed, seed + 1, ... (default 0) */
    const char *csv_path;       /* file for the log as CSV, or NULL (default NULL) */
    kfp_train_callback callback; /* receives every log record, or NULL (default NULL) */
    void *user_data;            /* passed to the callback (default NULL) */
    const char *checkpoint_path; /* file of the run's checkpoint, or NULL for none (default NULL) */
    int64_t checkpoint_every;   /* write it every this many steps; 0 for only at the end and after a failure (default 0) */
    int32_t resume;             /* 1: continue the run in checkpoint_path if the file exists (default 0) */
} kfp_train_options;

/* Type of an optimizer option's value. */
typedef enum kfp_option_type {
    KFP_OPTION_DOUBLE = 0,      /* kfp_optimizer_set_double / kfp_optimizer_get_double */
    KFP_OPTION_INT = 1,         /* kfp_optimizer_set_int / kfp_optimizer_get_int */
    KFP_OPTION_STRING = 2       /* kfp_optimizer_set_string / kfp_optimizer_get_string */
} kfp_option_type;

/* What an optimizer accepts for one option (kfp_optimizer_option_info). The strings are static. */
typedef struct kfp_option_info {
    int64_t size;               /* sizeof(kfp_option_info), set by the caller */
    int32_t key;                /* the kfp_option key */
    int32_t type;               /* its kfp_option_type */
    const char *name;           /* the key's name, e.g. "damping" (Python's keyword) */
    const char *description;    /* one line: meaning and range */
    double minimum;             /* numeric options: the range's lower end */
    double maximum;             /* numeric options: the range's upper end (may be infinite) */
    int32_t minimum_exclusive;  /* 1 if the lower end itself is not allowed */
    int32_t maximum_exclusive;  /* 1 if the upper end itself is not allowed */
    double default_double;      /* the optimizer's default of a KFP_OPTION_DOUBLE option */
    int64_t default_int;        /* the optimizer's default of a KFP_OPTION_INT option */
    const char *default_string; /* the optimizer's default of a KFP_OPTION_STRING option, else "" */
    const char *choices;        /* KFP_OPTION_STRING: the allowed values, comma-separated, else "" */
} kfp_option_info;

/* Sums buffer[0..count) over all ranks of a data-parallel run, in place, on every rank, and
 * returns 0 on success (a field of kfp_communicator). */
typedef int32_t (*kfp_allreduce_sum_function)(void *context, double *buffer, int64_t count);

/* Gathers count values of every rank, receive[r*count .. (r+1)*count) <- rank r's send, on
 * every rank, and returns 0 on success (a field of kfp_communicator). */
typedef int32_t (*kfp_allgather_function)(void *context, const double *send, int64_t count, double *receive);

/* The processes of a data-parallel run as the library sees them (kfp_optimizer_set_communicator,
 * docs/parallel.md). The library copies the struct, and `context` must stay valid while an
 * optimizer uses it. Every rank must receive the bitwise identical result of each call (a fixed
 * order of the additions), and every rank makes the same calls in the same order.
 * libkfacpinn_mpi.so (kfacpinn_mpi.h) fills one from an MPI communicator, and any other transport
 * plugs in the same way. */
typedef struct kfp_communicator {
    int64_t size;               /* sizeof(kfp_communicator) */
    void *context;              /* passed to the functions */
    int32_t rank;               /* this process, 0 <= rank < num_ranks */
    int32_t num_ranks;          /* the run's processes, >= 1 */
    kfp_allreduce_sum_function allreduce_sum; /* may be NULL for one process */
    kfp_allgather_function allgather;         /* may be NULL for one process */
} kfp_communicator;

#endif
