"""Randomized Taylor mode against the exact second-order term, L2 error over wall-clock time.

poisson100d_sq (huge network, D = 1325057) with KFAC* (its adaptive damping from 1e-6, never below
`--min-damping`: with a fixed damping of 1.2e-10 or 1e-6 the exact run diverged within 50 steps;
with the adaptive damping free to fall to 1e-14, the d = 1000 run diverged after 700 steps): the
exact forward Laplacian (102 Taylor columns per point) and the randomized estimate from s
Rademacher probes (s + 2 columns), and poisson1000d_sq (randomized, the problem's 16 probes; the
exact pass would carry 1002 columns) on the `--size-1000d` network. Every run trains a fresh
network (seed 0) on the problems' batch sizes (100 interior, 50 boundary points; `random100wide`:
500 interior points, a randomized step then costs about what an exact step on 100 points does;
`exact100wide`: the same points, exact), a new batch every step, for `--minutes` of training time,
and writes its log as CSV, a figure (L2 error against time and against steps) and a markdown table.
`--plot-only` redraws the figures from the CSVs of all runs found in `--out`.

    python3 experiments/randomized.py [--minutes 30] [--probes 16] [--threads 2] [--size-1000d big]
                                      [--damping 1e-6] [--min-damping 1e-6]
                                      [--runs exact100,random100,random100wide,exact100wide,random1000] [--plot-only]
                                      [--out experiments/results]

`--runs` picks a subset (the table then goes to randomized_<runs>.md), so that runs with one
thread each can share the machine's cores.

Needs numpy, matplotlib and a built library (swift build -c release).
"""
import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "experiments"))
import kfacpinn as kp  # noqa: E402
from reproduce import cpu, plot, read_log  # noqa: E402


def kfac_star(net, op, damping, min_damping):
    """The optimizer of every run here: KFAC* with adaptive damping from `damping`, never below
    `min_damping`, ema 0.93."""
    return kp.KFAC(net, op, damping=damping, ema=0.93, step="auto", min_damping=min_damping)


def run(problem, size, probes, interior, seconds, log_csv, damping, min_damping):
    """KFAC* (adaptive damping) on `problem`; probes None: exact, 0: the problem's own estimator."""
    prob = kp.Problem(problem)
    if probes is None:
        prob.operator.exact()
    elif probes > 0:
        prob.operator.randomized(probes=probes, seed=0)
    net = kp.MLP(prob.network_widths(size), seed=0)
    opt = kfac_star(net, prob.operator, damping, min_damping)
    try:
        log = kp.train(net, prob, opt, steps=10**9, seconds=seconds, n_interior=interior, resample_every=1, log_every=10,
                       seed=0, csv=log_csv, progress=False)
        stop = ""
    except kp.Error as error:   # the log up to the last good step, and why the run stopped
        log, stop = error.history, f"stopped: {type(error).__name__}"
        print(f"{problem}: {error}", flush=True)
    return log, net.num_params, stop


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time per run")
    parser.add_argument("--probes", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size-1000d", default="big")
    parser.add_argument("--damping", type=float, default=1e-6, help="KFAC*'s initial damping")
    parser.add_argument("--min-damping", type=float, default=1e-6, help="lower bound of KFAC*'s adaptive damping")
    parser.add_argument("--runs", default="exact100,random100,random100wide,exact100wide,random1000", help="comma-separated subset of the runs")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figures from the CSVs in --out")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    kp.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = 60 * args.minutes
    # name: (problem, network, probes (None: exact, 0: the problem's estimator), label, interior points)
    all_runs = {"exact100": ("poisson100d_sq", "huge", None, "exact, 100 points", 100),
                "random100": ("poisson100d_sq", "huge", args.probes, f"s = {args.probes}, 100 points", 100),
                "random100wide": ("poisson100d_sq", "huge", args.probes, f"s = {args.probes}, 500 points", 500),
                "exact100wide": ("poisson100d_sq", "huge", None, "exact, 500 points", 500),
                "random1000": ("poisson1000d_sq", args.size_1000d, 0, "s = 16", 100)}

    def csv_path(problem, size, probes, interior):
        points = "" if interior == 100 else f"_{interior}points"
        return out / f"{problem}_{size}_{'exact' if probes is None else 'randomized'}{points}.csv"

    if args.plot_only:
        logs = {}
        for problem, size, probes, label, interior in all_runs.values():
            path = csv_path(problem, size, probes, interior)
            if path.exists():
                logs.setdefault(problem, {})[label] = read_log(path)
        for problem, by_label in logs.items():
            plot(f"{problem}, KFAC*, {args.minutes:g} min", by_label, out / f"{problem}_randomized.png")
        return
    names = [name for name in args.runs.split(",") if name]
    unknown = [name for name in names if name not in all_runs]
    if unknown or not names:
        parser.error(f"--runs takes names from {', '.join(all_runs)}, got {args.runs!r}")
    runs = [all_runs[name] for name in names]
    suffix = "" if names == list(all_runs) else "_" + "_".join(names)
    lines = [f"KFAC* (adaptive damping from {args.damping:g}, at least {args.min_damping:g}, ema 0.93), {args.minutes:g} min of training per run, "
             f"100 interior (the wide runs: 500) + 50 boundary points drawn anew every step, {args.threads} thread(s), {cpu()}.", "",
             "| problem | D | second-order term | steps | s/step | rel. L2 at 1/4 time | rel. L2 at the end | lowest rel. L2 |",
             "|---|---|---|---|---|---|---|---|"]
    logs = {}
    for problem, size, probes, label, interior in runs:
        path = csv_path(problem, size, probes, interior)
        log, D, stop = run(problem, size, probes, interior, seconds, str(path), args.damping, args.min_damping)
        logs.setdefault(problem, {})[label] = log
        steps, t = int(log["step"][-1]), log["seconds"]
        quarter = log["relative_l2_error"][min(range(len(t)), key=lambda i: abs(t[i] - seconds / 4))]
        lines.append(f"| {problem} | {D} | {label} | {steps}{' (' + stop + ')' if stop else ''} | {t[-1] / max(steps, 1):.3f} | "
                     f"{quarter:.2e} | {log['relative_l2_error'][-1]:.2e} | {min(log['relative_l2_error']):.2e} |")
        print(lines[-1], flush=True)
    for problem, by_label in logs.items():
        plot(f"{problem}, KFAC*, {args.minutes:g} min", by_label, out / f"{problem}_randomized{suffix}.png")
    (out / f"randomized{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
