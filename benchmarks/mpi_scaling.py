"""Data-parallel step time on MPI: step and communication time for 1 and 2 processes (weak
scaling: the problem's batch per process), the values summed per step, and the step time these
figures predict for more processes on a network of given latency and bandwidth.

    python3 benchmarks/mpi_scaling.py [--steps 5] [--out benchmarks/results/mpi_scaling.md]

runs itself under `mpirun -np 1` and `-np 2` (one thread per process), then writes the table.
The communicator is the MPI one (libkfacpinn_mpi.so) wrapped in a ctypes communicator that times
each call and records its size; the predicted communication time of a sum of n values over P
processes is that of the shim's algorithm (docs/parallel.md):

    n·P > 4096:  2(P − 1) α + 2 (P − 1)/P · 8n / β    (alltoallv, then allgatherv)
    otherwise:   ⌈log₂ P⌉ α + (P − 1) · 8n / β         (one allgather)

with α the latency and β the bandwidth per process; the computation per process stays that of
the 2-process run (same points per process).
"""
import argparse
import ctypes
import json
import math
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))

CASES = [  # (problem, network, optimizer, options)
    ("poisson5d_cos", "big", "KFAC", dict(damping=1e-6, ema=0.93)),
    ("poisson5d_cos", "big", "KFAC*", dict(damping=1e-6, ema=0.93, step="auto")),
    ("poisson5d_cos", "big", "Adam", dict(lr=1e-3)),
    ("poisson5d_cos", "big", "ENGD diagonal", dict(damping=1e-6, variant="diagonal")),
    ("poisson5d_cos", "big", "Hessian-free", dict(damping=1.0, max_cg_iterations=20)),
    ("poisson100d_sq", "huge", "KFAC", dict(damping=1e-6, ema=0.93)),
    ("poisson100d_sq", "huge", "KFAC*", dict(damping=1e-6, ema=0.93, step="auto")),
]
NETWORKS = {"fast Ethernet (10 Gb/s, 20 µs)": (20e-6, 1.25e9), "InfiniBand (100 Gb/s, 2 µs)": (2e-6, 12.5e9)}


def worker(steps, out):
    """Under mpirun: every case, timed; rank 0 writes the JSON results."""
    from mpi4py import MPI
    import kfacpinn as kp
    from kfacpinn import _abi

    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    kp.set_num_threads(1)
    mpi = kp.MPIComm(world)
    inner = mpi._comm
    record = {"seconds": 0.0, "calls": []}

    # A communicator that forwards to the MPI one, timing each call.
    def allreduce(_context, buffer, count):
        start = time.perf_counter()
        status = inner.allreduce_sum(inner.context, buffer, count)
        record["seconds"] += time.perf_counter() - start
        record["calls"].append(("sum", count))
        return status

    def allgather(_context, send, count, receive):
        start = time.perf_counter()
        status = inner.allgather(inner.context, send, count, receive)
        record["seconds"] += time.perf_counter() - start
        record["calls"].append(("gather", count))
        return status

    timed = _abi.Communicator(size=ctypes.sizeof(_abi.Communicator), context=None, rank=rank, num_ranks=size,
                              allreduce_sum=_abi.allreduce_sum_function(allreduce),
                              allgather=_abi.allgather_function(allgather))
    results = []
    makers = {"KFAC": kp.KFAC, "KFAC*": kp.KFAC, "Adam": kp.Adam, "ENGD diagonal": kp.ENGD, "Hessian-free": kp.HessianFree}
    for problem, network, name, options in CASES:
        prob = kp.Problem(problem)
        net = kp.MLP(prob.network_widths(network), seed=0)
        opt = makers[name](net, prob.operator, **options)
        if size > 1:
            opt.set_communicator(mpi)   # the setup check
            kp._check(kp.lib.kfp_optimizer_set_communicator(opt.handle, ctypes.byref(timed)))
        # Warm-up steps, then the timed ones (a new batch every step, the problem's batch per process).
        kp.train(net, prob, opt, steps=2, resample_every=1, log_every=10**6, progress=False)
        record["seconds"], record["calls"] = 0.0, []
        log = kp.train(net, prob, opt, steps=steps, resample_every=1, log_every=10**6, seed=1, progress=False)
        step = log["seconds"][-1] / steps
        communication = world.allreduce(record["seconds"], op=MPI.MAX) / steps
        calls = [(kind, int(count)) for kind, count in record["calls"]]
        opt.set_communicator(None)
        results.append(dict(problem=problem, network=network, optimizer=name, parameters=net.num_params, processes=size,
                            step=step, communication=communication, calls_per_step=len(calls) / steps,
                            values_per_step=sum(c for _, c in calls) / steps, calls=calls, steps=steps))
        if rank == 0:
            print(f"{name} {problem} {network} P={size}: {step:.3f} s/step, communication {communication:.4f} s/step, "
                  f"{results[-1]['values_per_step']:.0f} values summed per step", flush=True)
    mpi.close()
    if rank == 0:
        pathlib.Path(out).write_text(json.dumps(results))


def predicted_communication(calls, steps, P, alpha, beta):
    """Seconds per step of the recorded calls on P processes."""
    total = 0.0
    for kind, n in calls:
        if kind == "sum" and n * P > 4096:
            total += 2 * (P - 1) * alpha + 2 * (P - 1) / P * 8 * n / beta
        else:
            total += math.ceil(math.log2(P)) * alpha + (P - 1) * 8 * n / beta
    return total / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mpi_scaling.md"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.steps, args.worker)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = {}
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python"), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for P in (1, 2):
        path = out.with_suffix(f".P{P}.json")
        subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(P), sys.executable, __file__,
                        "--steps", str(args.steps), "--worker", str(path)], env=env, check=True)
        runs[P] = json.loads(path.read_text())
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = [f"One thread per process, {cpu}; {args.steps} timed steps after 2, a new batch every step, the "
             "problem's batch per process (weak scaling). Communication: time inside the communicator's calls "
             "(slowest process), values: summed over the processes per step.", "",
             "| problem | network (D) | optimizer | P = 1 s/step | P = 2 s/step | communication | sums per step | values per step | bytes sent per process per step (P = 2) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for one, two in zip(runs[1], runs[2]):
        sent = 8 * two["values_per_step"]   # P = 2: each call sends the other process 8n bytes (either algorithm)
        lines.append(f"| {two['problem']} | {two['network']} ({two['parameters']}) | {two['optimizer']} | {one['step']:.3f} | "
                     f"{two['step']:.3f} | {two['communication']:.4f} s | {two['calls_per_step']:.0f} | "
                     f"{two['values_per_step']:.3g} | {sent / 1e6:.2f} MB |")
    for label, (alpha, beta) in NETWORKS.items():
        lines += ["", f"Predicted s/step on {label} (computation of the P = 2 run, communication by the model above):", "",
                  "| problem | network | optimizer | P = 2 measured | P = 8 | P = 64 | P = 512 |", "|---|---|---|---|---|---|---|"]
        for two in runs[2]:
            compute = two["step"] - two["communication"]
            predicted = [compute + predicted_communication(two["calls"], two["steps"], P, alpha, beta) for P in (8, 64, 512)]
            lines.append(f"| {two['problem']} | {two['network']} | {two['optimizer']} | {two['step']:.3f} | "
                         + " | ".join(f"{t:.3f}" for t in predicted) + " |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
