"""Robustness sweep: every built-in problem of the paper x KFAC, KFAC* and ENGD (where the Gramian
fits max_parameters) with default options, on Sobol points drawn afresh every step, for a given
number of steps. Prints one line per run: the steps that succeeded, the first error if any, the
final loss (at the last step's start) and relative L2 error, in how many steps the damping was
above its initial value (retries after failed factorisations; KFAC*'s adaptive damping), and the
wall time.

    PYTHONPATH=bindings/python python3 benchmarks/robustness_sweep.py [--steps 300] [--only NAME ...]
"""
import argparse
import time

import numpy as np

import kfacpinn as kp

PROBLEMS = ["poisson2d_sin", "poisson5d_cos", "poisson10d_pairs", "poisson100d_sq", "heat1d", "heat4d", "logfp9d"]


def smallest_network(prob):
    for size in ["small", "medium", "big", "huge"]:
        try:
            return size, prob.network_widths(size)
        except kp.Error:
            continue
    raise RuntimeError(f"{prob} has no default network")


def optimizers(net, op):
    yield "KFAC", lambda: kp.KFAC(net, op)
    yield "KFAC*", lambda: kp.KFAC(net, op, step="auto")
    yield "ENGD", lambda: kp.ENGD(net, op)


def run(name, optimizer_name, steps, seed):
    prob = kp.Problem(name)
    size, widths = smallest_network(prob)
    net = kp.MLP(widths, seed=seed)
    make = dict(optimizers(net, prob.operator))[optimizer_name]
    opt = make()
    if optimizer_name == "ENGD" and net.num_params > opt.get("max_parameters"):
        return dict(problem=name, net=size, D=net.num_params, optimizer=optimizer_name,
                    skipped=f"D = {net.num_params} > max_parameters = {opt.get('max_parameters')}")
    base_damping = opt.get("damping")
    raised, error, done, last = 0, None, 0, None
    start = time.perf_counter()
    for k in range(steps):
        batch = prob.sample(sampler="sobol", seed=seed + k)
        try:
            last = opt.step(batch)
        except kp.Error as e:
            error = f"{type(e).__name__}: {e}"
            break
        finally:
            batch.close()
        raised += last["damping"] > base_damping
        done += 1
    seconds = time.perf_counter() - start
    _, relative = prob.errors(net)
    return dict(problem=name, net=size, D=net.num_params, optimizer=optimizer_name, steps=done, error=error,
                loss=last["loss"] if last else float("nan"), relative_l2=relative, raised=raised, seconds=seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=PROBLEMS)
    parser.add_argument("--optimizers", nargs="*", default=["KFAC", "KFAC*", "ENGD"])
    args = parser.parse_args()
    print(f"{'problem':18} {'net':6} {'D':>8} {'optimizer':9} {'steps':>5} {'loss':>10} {'rel. L2':>9} "
          f"{'λ>λ0':>6} {'s':>7}  error")
    failures = 0
    for name in args.only:
        for optimizer_name in args.optimizers:
            r = run(name, optimizer_name, args.steps, args.seed)
            if "skipped" in r:
                print(f"{name:18} {r['net']:6} {r['D']:8d} {optimizer_name:9} skipped: {r['skipped'][:80]}", flush=True)
                continue
            failures += r["error"] is not None
            print(f"{name:18} {r['net']:6} {r['D']:8d} {optimizer_name:9} {r['steps']:5d} {r['loss']:10.3e} "
                  f"{r['relative_l2']:9.2e} {r['raised']:6d} {r['seconds']:7.1f}  {r['error'] or ''}", flush=True)
    print(f"{failures} run(s) failed")


if __name__ == "__main__":
    main()
