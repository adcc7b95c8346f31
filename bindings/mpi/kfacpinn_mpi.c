/* libkfacpinn_mpi.so: a kfp_communicator over MPI (include/kfacpinn_mpi.h).
 *
 * The sum of a buffer over P ranks adds the ranks' values in rank order, so that every rank gets
 * the bitwise identical result, whatever reduction algorithm the MPI library would choose:
 *   - short buffers (count * P <= SHORT_VALUES): one MPI_Allgather, then each rank adds the P
 *     copies in rank order;
 *   - longer ones: the buffer is cut into P blocks; rank r receives block r of every rank
 *     (MPI_Alltoallv), adds them in rank order and the summed blocks are gathered back
 *     (MPI_Allgatherv). Each rank sends and receives 2 (P - 1)/P of the buffer, as a ring
 *     allreduce does.
 * Buffers are processed in segments of at most SEGMENT values (MPI counts are int). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kfacpinn_mpi.h"

enum { SHORT_VALUES = 4096, SEGMENT = 1 << 26 };

typedef struct {
    MPI_Comm comm;
    int rank, size;
    double *scratch;          /* received copies: P blocks, or P short buffers */
    int64_t capacity;         /* values of scratch */
    int *counts, *displs;     /* per rank: block sizes and offsets (values) */
} mpi_context;

static int reserve(mpi_context *c, int64_t values) {
    if (values <= c->capacity) return 0;
    double *p = realloc(c->scratch, (size_t)values * sizeof(double));
    if (!p) return 1;
    c->scratch = p;
    c->capacity = values;
    return 0;
}

/* Sums buffer[0..n) (n <= SEGMENT) over the ranks, in rank order. */
static int sum_segment(mpi_context *c, double *buffer, int n) {
    const int P = c->size;
    if ((int64_t)n * P <= SHORT_VALUES) {
        if (reserve(c, (int64_t)n * P)) return 1;
        if (MPI_Allgather(buffer, n, MPI_DOUBLE, c->scratch, n, MPI_DOUBLE, c->comm) != MPI_SUCCESS) return 2;
        for (int i = 0; i < n; i++) {
            double s = c->scratch[i];
            for (int r = 1; r < P; r++) s += c->scratch[(int64_t)r * n + i];
            buffer[i] = s;
        }
        return 0;
    }
    /* Block r: values [r n / P, (r + 1) n / P). */
    for (int r = 0; r < P; r++) {
        int64_t lo = (int64_t)r * n / P, hi = (int64_t)(r + 1) * n / P;
        c->displs[r] = (int)lo;
        c->counts[r] = (int)(hi - lo);
    }
    const int mine = c->counts[c->rank], at = c->displs[c->rank];
    if (reserve(c, (int64_t)mine * P)) return 1;
    /* Rank r's copy of my block lands at scratch[r * mine]. */
    int *recv_counts = malloc(2 * (size_t)P * sizeof(int));
    if (!recv_counts) return 1;
    int *recv_displs = recv_counts + P;
    for (int r = 0; r < P; r++) {
        recv_counts[r] = mine;
        recv_displs[r] = r * mine;
    }
    int status = MPI_Alltoallv(buffer, c->counts, c->displs, MPI_DOUBLE, c->scratch, recv_counts, recv_displs,
                               MPI_DOUBLE, c->comm);
    free(recv_counts);
    if (status != MPI_SUCCESS) return 2;
    for (int i = 0; i < mine; i++) {
        double s = c->scratch[i];
        for (int r = 1; r < P; r++) s += c->scratch[(int64_t)r * mine + i];
        buffer[at + i] = s;
    }
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buffer, c->counts, c->displs, MPI_DOUBLE, c->comm) != MPI_SUCCESS)
        return 2;
    return 0;
}

static int32_t allreduce_sum(void *context, double *buffer, int64_t count) {
    mpi_context *c = context;
    if (count < 0 || (count > 0 && !buffer)) return 3;
    for (int64_t k = 0; k < count; k += SEGMENT) {
        int n = (int)(count - k < SEGMENT ? count - k : SEGMENT);
        int status = sum_segment(c, buffer + k, n);
        if (status) return status;
    }
    return 0;
}

static int32_t allgather(void *context, const double *send, int64_t count, double *receive) {
    mpi_context *c = context;
    if (count < 0 || count > INT_MAX / c->size || (count > 0 && (!send || !receive))) return 3;
    return MPI_Allgather(send, (int)count, MPI_DOUBLE, receive, (int)count, MPI_DOUBLE, c->comm) == MPI_SUCCESS ? 0 : 2;
}

kfp_status kfp_comm_from_mpi(MPI_Comm comm, kfp_communicator *out) {
    if (!out) return KFP_ERROR_NULL_POINTER;
    memset(out, 0, sizeof *out);
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized || comm == MPI_COMM_NULL) return KFP_ERROR_INVALID_ARGUMENT;
    mpi_context *c = calloc(1, sizeof *c);
    if (!c) return KFP_ERROR_OUT_OF_MEMORY;
    if (MPI_Comm_dup(comm, &c->comm) != MPI_SUCCESS) {
        free(c);
        return KFP_ERROR_COMMUNICATION;
    }
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    c->counts = malloc(2 * (size_t)c->size * sizeof(int));
    if (!c->counts) {
        MPI_Comm_free(&c->comm);
        free(c);
        return KFP_ERROR_OUT_OF_MEMORY;
    }
    c->displs = c->counts + c->size;
    out->size = sizeof *out;
    out->context = c;
    out->rank = c->rank;
    out->num_ranks = c->size;
    out->allreduce_sum = allreduce_sum;
    out->allgather = allgather;
    return KFP_OK;
}

kfp_status kfp_comm_from_mpi_fortran(int64_t fortran_handle, kfp_communicator *out) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        if (out) memset(out, 0, sizeof *out);
        return out ? KFP_ERROR_INVALID_ARGUMENT : KFP_ERROR_NULL_POINTER;
    }
    return kfp_comm_from_mpi(MPI_Comm_f2c((MPI_Fint)fortran_handle), out);
}

void kfp_comm_free_mpi(kfp_communicator *comm) {
    if (!comm || !comm->context) return;
    mpi_context *c = comm->context;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&c->comm);
    free(c->scratch);
    free(c->counts);
    free(c);
    memset(comm, 0, sizeof *comm);
}
