"""Neumann, Robin and initial-velocity conditions trained to accuracy: the built-in problems
poisson2d_mixed (Dirichlet, Neumann and Robin faces), wave1d (initial value and velocity,
Dirichlet walls) and disk_robin (Robin on the unit circle), small network (one hidden layer of 64), one fixed batch of the problem's
default size, with KFAC*, KFAC, ENGD and Adam for the same number of steps. Prints the L2 error
at a few steps and the time, and writes the table to --out (markdown).

    python3 experiments/conditions.py [--problems poisson2d_mixed:2000,wave1d:5000] [--out FILE]

Needs a built library (swift build -c release).
"""
import argparse
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
import kfacpinn as kp  # noqa: E402

OPTIMIZERS = {
    # damping 1e-10, ema 0.95 (the defaults), fixed damping as in the paper
    "KFAC*": lambda net, op: kp.KFAC(net, op, step="auto", damping_rule="fixed"),
    "KFAC": lambda net, op: kp.KFAC(net, op, damping=1e-14, ema=0.3, momentum=0.51),
    "ENGD": lambda net, op: kp.ENGD(net, op, damping=1e-10, ema=0.3),
    "Adam": lambda net, op: kp.Adam(net, op, lr=1.7e-3),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default="poisson2d_mixed:2000,wave1d:5000,disk_robin:2000")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = ["| problem | optimizer | steps | L2 error | relative L2 | seconds |", "|---|---|---|---|---|---|"]
    for item in args.problems.split(","):
        name, steps = item.split(":")
        steps = int(steps)
        for opt_name in args.optimizers.split(","):
            prob = kp.Problem(name)
            net = kp.MLP(prob.network_widths("small"), seed=0)
            opt = OPTIMIZERS[opt_name](net, prob.operator)
            start = time.perf_counter()
            log = kp.train(net, prob, opt, steps=steps, log_every=max(1, steps // 4), progress=False)
            seconds = time.perf_counter() - start
            trace = ", ".join(f"{int(s)}: {e:.2e}" for s, e in zip(log["step"], log["l2_error"]))
            print(f"{name} {opt_name}: {trace}  ({seconds:.1f} s)", flush=True)
            rows.append(f"| {name} | {opt_name} | {int(log['step'][-1])} | {log['l2_error'][-1]:.2e} | "
                        f"{log['relative_l2_error'][-1]:.2e} | {seconds:.1f} |")
    table = "\n".join(rows)
    print(table)
    if args.out:
        pathlib.Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
