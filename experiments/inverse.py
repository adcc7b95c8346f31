"""Inverse problems: the built-in problems with an unknown coefficient, per optimizer.

heat1d_inverse (kappa unknown, true 0.25, start 1, trained through log kappa; 200 exact
observations), heat1d_inverse_noisy (the same with 1% Gaussian noise on the observations) and
poisson2d_reaction_inverse (c unknown in -Laplace u + c u = f, true 2, start 0). Every run trains
a fresh network of the problem's `--size` default widths (seed 0) on the problem's default
batch sizes, a new uniform batch every step, for the optimizer's step budget, and reports the
recovered coefficient, its relative error, the relative L2 error of u and the wall time.

    python3 experiments/inverse.py [--size small] [--threads 2] [--scale 1.0]
                                   [--problems heat1d_inverse,...] [--optimizers KFAC*,ENGD,...]

`--scale` multiplies every step budget. Prints a markdown table (docs/experiments.md).
"""
import argparse
import pathlib
import platform
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
import kfacpinn as kp  # noqa: E402

PROBLEMS = ["heat1d_inverse", "heat1d_inverse_noisy", "poisson2d_reaction_inverse"]
TRUTH = {"heat1d_inverse": ("kappa", 0.25), "heat1d_inverse_noisy": ("kappa", 0.25),
         "poisson2d_reaction_inverse": ("c", 2.0)}
# Optimizer: (constructor, steps). Settings are the library's defaults except the first-order
# learning rates and SGD's momentum, KFAC*'s step rule and ENGD's damping (at the default 1e-10 its
# directions on heat1d_inverse are long and the line search takes steps of 2e-6 to 6e-5).
OPTIMIZERS = {
    "KFAC*": (lambda net, op: kp.KFAC(net, op, step="auto"), 5000),
    "KFAC": (lambda net, op: kp.KFAC(net, op), 5000),
    "ENGD": (lambda net, op: kp.ENGD(net, op, damping=1e-6), 500),
    "HessianFree": (lambda net, op: kp.HessianFree(net, op), 500),
    "SPRING": (lambda net, op: kp.SPRING(net, op), 500),
    "LBFGS": (lambda net, op: kp.LBFGS(net, op), 5000),
    "Adam": (lambda net, op: kp.Adam(net, op, lr=1e-3), 20000),
    "SGD": (lambda net, op: kp.SGD(net, op, lr=1e-3, momentum=0.9), 20000),
}


def run(problem_name, optimizer, size, scale):
    prob = kp.Problem(problem_name)
    net = kp.MLP(prob.network_widths(size), seed=0)
    make, steps = OPTIMIZERS[optimizer]
    opt = make(net, prob.operator)
    steps = max(1, int(steps * scale))
    start = time.perf_counter()
    status = "ok"
    try:
        kp.train(net, prob, opt, steps=steps, resample_every=1, log_every=steps, progress=False)
    except kp.Error as error:
        status = type(error).__name__
    seconds = time.perf_counter() - start
    name, truth = TRUTH[problem_name]
    value = prob.operator.coefficients[name]
    return {"value": value, "error": abs(value - truth) / abs(truth), "l2": prob.relative_l2_error(net),
            "seconds": seconds, "steps": steps, "status": status}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    args = parser.parse_args()
    kp.set_num_threads(args.threads)
    print(f"kfacpinn {kp.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"{args.size} network\n")
    print("| problem | optimizer | steps | coefficient | rel. error | rel. L2 of u | time (s) |")
    print("|---|---|---|---|---|---|---|")
    for problem in args.problems.split(","):
        for optimizer in args.optimizers.split(","):
            r = run(problem, optimizer, args.size, args.scale)
            name = TRUTH[problem][0]
            note = "" if r["status"] == "ok" else f" ({r['status']})"
            print(f"| {problem} | {optimizer}{note} | {r['steps']} | {name} = {r['value']:.6g} | {r['error']:.1e} | "
                  f"{r['l2']:.1e} | {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
