"""Run under `mpirun -np 2`: two ranks with half the points each take the steps of one process
with all the points (docs/math.md §13), for every optimizer that trains data-parallel, with a
fixed batch and with a new batch every step; and a failure on one rank (a non-finite value,
memory) ends the call on both with the same status. Prints one line per check on rank 0 and
exits non-zero on a failure."""
import resource
import sys

import numpy as np
from mpi4py import MPI

import kfacpinn as kp

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
comm = kp.MPIComm(world)
STEPS, N, M = 20, 48, 24
OPTIMIZERS = {
    "SGD": lambda net, op: kp.SGD(net, op, lr=0.01, momentum=0.9),
    "Adam": lambda net, op: kp.Adam(net, op, lr=0.01),
    "LBFGS": lambda net, op: kp.LBFGS(net, op),
    "KFAC": lambda net, op: kp.KFAC(net, op, damping=1e-6, ema=0.9),
    "KFAC*": lambda net, op: kp.KFAC(net, op, damping=1e-6, ema=0.9, step="auto"),
    # The Gauss-Newton solves amplify the sums' rounding (a sum over two halves is not the sum in
    # one pass) by the condition number of G + λI: their damping keeps it moderate here. With
    # λ = 1e-6, ENGD's parameters differ by about 1e-7 after 20 steps, Hessian-free's (30 CG
    # iterations, λ from 1) by 1e-2: rounding amplified, the steps alike (docs/parallel.md).
    "ENGD": lambda net, op: kp.ENGD(net, op, damping=1e-1),
    "ENGD per_layer": lambda net, op: kp.ENGD(net, op, damping=1e-1, variant="per_layer", ema=0.5),
    "ENGD diagonal": lambda net, op: kp.ENGD(net, op, damping=1e-3, variant="diagonal"),
    "HessianFree": lambda net, op: kp.HessianFree(net, op, damping=100.0, max_cg_iterations=5),
}
failures = []


def report(name, ok, detail):
    if rank == 0:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if not ok:
        failures.append(name)


def run(make, problem, parallel, resample, points_scale=1):
    prob = kp.Problem(problem)
    net = kp.MLP(prob.network_widths("small"), seed=3)
    opt = make(net, prob.operator)
    if parallel:
        opt.set_communicator(comm)
    n, m = N * points_scale, M * points_scale
    log = kp.train(net, prob, opt, steps=STEPS, n_interior=n, n_boundary=m, resample_every=resample, seed=5,
                   log_every=STEPS, progress=False)
    return net.get_params(), log


for problem in ["poisson2d_sin", "heat1d"]:
    for name, make in OPTIMIZERS.items():
        for resample in [0, 1]:
            label = f"{name}, {problem}, {'a new batch every step' if resample else 'fixed batch'}"
            theta, log = run(make, problem, True, resample)
            reference, ref_log = run(make, problem, False, resample, points_scale=size)
            difference = np.max(np.abs(theta - reference)) / np.max(np.abs(reference))
            gathered = world.allgather(theta)
            identical = all(np.array_equal(gathered[0], t) for t in gathered)
            ok = difference <= 1e-12 and identical and np.isclose(log["loss"][-1], ref_log["loss"][-1], rtol=1e-10)
            report(label, ok, f"max |θ_P − θ_1| / max |θ_1| = {difference:.1e} after {STEPS} steps, ranks identical: {identical}, "
                              f"final loss {log['loss'][-1]:.6e} vs {ref_log['loss'][-1]:.6e}")


def status_of(call):
    try:
        call()
        return kp.OK
    except kp.Error as error:
        return error.status


# A non-finite source on rank 1 only: both ranks end the step with the same status.
prob = kp.Problem.custom(2, kp.Operator.poisson(2), lambda x: np.full(len(x), np.nan if rank == 1 else 1.0),
                         kp.Box([0, 0], [1, 1]), conditions=[kp.DirichletCondition("all", 0.0)])
net = kp.MLP([2, 8, 1], seed=1)
opt = kp.KFAC(net, prob.operator)
opt.set_communicator(comm)
statuses = world.allgather(status_of(lambda: kp.train(net, prob, opt, steps=3, n_interior=16, n_boundary=8, progress=False)))
report("a non-finite source on one rank", statuses[0] != kp.OK and len(set(statuses)) == 1, f"statuses {statuses}")

# Rank 1 cannot have the memory of ENGD's Jacobian rows (3500 x 10065 values, 282 MB, under an
# address-space limit 150 MB above its present size): both ranks end with OUT_OF_MEMORY.
prob = kp.Problem("poisson5d_cos")
net = kp.MLP(prob.network_widths("medium"), seed=0)
opt = kp.ENGD(net, prob.operator, variant="diagonal")
opt.set_communicator(comm)
limit = resource.getrlimit(resource.RLIMIT_AS)
if rank == 1:
    size_now = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size_now + (150 << 20), limit[1]))
status = status_of(lambda: kp.train(net, prob, opt, steps=2, n_interior=3000, n_boundary=500, progress=False))
resource.setrlimit(resource.RLIMIT_AS, limit)
statuses = world.allgather(status)
report("out of memory on one rank", statuses == [kp._abi.ERROR_OUT_OF_MEMORY] * size, f"statuses {statuses}")

# Different options on the ranks: set_communicator refuses on both.
net = kp.MLP([2, 8, 1], seed=1)
opt = kp.KFAC(net, kp.Operator.poisson(2), damping=1e-6 if rank == 0 else 1e-5)
statuses = world.allgather(status_of(lambda: opt.set_communicator(comm)))
report("different options on the ranks", statuses == [kp._abi.ERROR_COMMUNICATION] * size, f"statuses {statuses}")

# Different parameters: refused as well.
net = kp.MLP([2, 8, 1], seed=rank)
opt = kp.KFAC(net, kp.Operator.poisson(2))
statuses = world.allgather(status_of(lambda: opt.set_communicator(comm)))
report("different parameters on the ranks", statuses == [kp._abi.ERROR_COMMUNICATION] * size, f"statuses {statuses}")

# SPRING and Woodbury ENGD refuse clearly.
net = kp.MLP([2, 8, 1], seed=1)
for name, make in {"SPRING": lambda: kp.SPRING(net, kp.Operator.poisson(2)),
                   "ENGD woodbury": lambda: kp.ENGD(net, kp.Operator.poisson(2), variant="woodbury")}.items():
    opt = make()
    statuses = world.allgather(status_of(lambda: opt.set_communicator(comm)))
    report(f"{name} refuses", statuses == [kp.INVALID_ARGUMENT] * size, f"statuses {statuses}")

comm.close()
sys.exit(1 if failures else 0)
