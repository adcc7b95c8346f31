"""Data-parallel training on MPI from Python: every rank trains the same network on its own
points; kfacpinn sums loss, gradient, Kronecker factors and line-search losses over the ranks, so
all take the identical KFAC* step (docs/parallel.md).

    mpirun -np 2 python3 examples/mpi_train.py [steps] [interior points per rank]

Needs mpi4py and libkfacpinn_mpi.so (scripts/build-mpi.sh).
"""
import sys

import numpy as np
from mpi4py import MPI

import kfacpinn as kp

world = MPI.COMM_WORLD
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 500
interior = int(sys.argv[2]) if len(sys.argv) > 2 else 500

prob = kp.Problem("poisson5d_cos")
net = kp.MLP([5, 64, 64, 1], seed=0)             # the same seed on every rank
opt = kp.KFAC(net, prob.operator, damping=1e-6, ema=0.93, step="auto", damping_rule="adaptive")
with kp.MPIComm(world) as comm:
    opt.set_communicator(comm)
    log = kp.train(net, prob, opt, steps=steps, n_interior=interior, n_boundary=interior // 5, resample_every=1,
                   log_every=max(1, steps // 5), progress=False)
    opt.set_communicator(None)
same = world.allreduce(int(not np.array_equal(world.bcast(net.get_params(), root=0), net.get_params())), op=MPI.SUM) == 0
if world.Get_rank() == 0:
    print(f"KFAC* on poisson5d_cos, {world.Get_size()} rank(s) x {interior} interior points per step")
    for step, seconds, error in zip(log["step"], log["seconds"], log["relative_l2_error"]):
        print(f"{step:6d}  {seconds:8.2f} s  rel. L2 {error:.3e}")
    print(f"parameters identical on all ranks: {'yes' if same else 'no'}")
