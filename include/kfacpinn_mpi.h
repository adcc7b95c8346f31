/*
 * kfacpinn_mpi.h - a kfp_communicator over MPI (libkfacpinn_mpi.so), for data-parallel
 * training with libkfacpinn (docs/parallel.md).
 *
 *     MPI_Init(&argc, &argv);
 *     kfp_communicator comm;
 *     kfp_comm_from_mpi(MPI_COMM_WORLD, &comm);
 *     kfp_optimizer_set_communicator(opt, &comm);   // on every rank
 *     kfp_train(opt, net, problem, &options, NULL); // each rank trains on its part of the points
 *     kfp_optimizer_set_communicator(opt, NULL);
 *     kfp_comm_free_mpi(&comm);
 *     MPI_Finalize();
 *
 * Build: mpicc prog.c -lkfacpinn_mpi -lkfacpinn. The sums add the ranks' values in rank order
 * (a reduce-scatter and an allgather over blocks of the buffer, or one allgather for short
 * buffers), so every rank gets the bitwise identical sum and a run is reproducible.
 */
#ifndef KFACPINN_MPI_H
#define KFACPINN_MPI_H

#include <stdint.h>
#include <mpi.h>
#include "kfacpinn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills *out with a communicator over the processes of `comm`. Collective over `comm`: it is
 * duplicated (MPI_Comm_dup), so the library's messages never mix with the caller's. MPI must be
 * initialised. Free it with kfp_comm_free_mpi (collective) before MPI_Finalize, after the last
 * optimizer using it is freed or detached.
 * @return KFP_OK; KFP_ERROR_NULL_POINTER (out); KFP_ERROR_INVALID_ARGUMENT (MPI not initialised,
 *         MPI_COMM_NULL); KFP_ERROR_COMMUNICATION (an MPI call failed); KFP_ERROR_OUT_OF_MEMORY.
 *         On failure *out is zeroed. */
kfp_status kfp_comm_from_mpi(MPI_Comm comm, kfp_communicator *out);

/* kfp_comm_from_mpi for a communicator given by its Fortran handle (MPI_Comm_c2f; mpi4py:
 * comm.py2f()), for bindings that have no MPI types. */
kfp_status kfp_comm_from_mpi_fortran(int64_t fortran_handle, kfp_communicator *out);

/* Frees the duplicated communicator and the work space of a communicator from kfp_comm_from_mpi
 * (collective) and zeroes *comm. NULL or a zeroed communicator is a no-op. */
void kfp_comm_free_mpi(kfp_communicator *comm);

#ifdef __cplusplus
}
#endif

#endif /* KFACPINN_MPI_H */
