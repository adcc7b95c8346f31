"""The paper's comparison (Dangel, Müller, Zeinhofer 2024) on this machine, through the binding.

For poisson2d_sin (small D = 257, medium D = 9873) and heat4d (small D = 449, medium D = 10065)
it trains with SGD, Adam, L-BFGS, ENGD, Hessian-free, KFAC and KFAC* under one wall-clock budget
per run, after a small seeded random search per optimizer (the experiments.md settings are the
first candidate; each candidate gets a fraction of the budget; the lowest final L2 error wins).
It writes every run's log as CSV, the figures (L2 error over time and over steps, log scale,
one line per optimizer) as PNG, and a markdown table of final errors next to the paper's.
A smaller run of poisson5d_cos, poisson10d_pairs, poisson100d_sq and logfp9d with KFAC* and
Adam shows that those work end to end.

The sample-space comparison (Guzman-Cordero, Dangel, Goldshlager, Zeinhofer 2025) trains
poisson5d_cos with the medium network (D = 10065) on 3000 interior and 500 boundary points drawn
anew every step, with SPRING, Woodbury ENGD and KFAC* for the same number of steps, each after
the same seeded search (candidates train for a fraction of the steps) with common random numbers:
one stream per hyper-parameter, so that SPRING's and Woodbury ENGD's k-th candidates share their
damping. --sample-space-optimizers runs some of them, e.g. one per process and core on one --out;
the table and figure take all three once their files are there.

    python3 experiments/reproduce.py [--budget 60] [--trials 3] [--threads 2] [--out experiments/results]
                                     [--cases poisson2d_sin:small,...] [--optimizers KFAC,Adam,...]
                                     [--extra-budget 30] [--no-extra] [--sample-space-steps 500]
                                     [--sample-space-optimizers SPRING,ENGD-Woodbury,KFAC*]

Needs numpy and matplotlib (pip install matplotlib) and a built library (swift build -c release).
"""
import argparse
import csv
import json
import math
import pathlib
import platform
import random
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
import kfacpinn as kp  # noqa: E402

OPTIMIZERS = ["SGD", "Adam", "LBFGS", "ENGD", "HessianFree", "KFAC", "KFAC*", "SPRING"]
CASES = ["poisson2d_sin:small", "poisson2d_sin:medium", "heat4d:small", "heat4d:medium"]
EXTRA = ["poisson5d_cos:small", "poisson10d_pairs:big", "poisson100d_sq:huge", "logfp9d:big"]
# The sample-space comparison: problem, network, batch sizes, optimizers (all equal steps).
SAMPLE_SPACE = ("poisson5d_cos", "medium", 3000, 500, ["SPRING", "ENGD-Woodbury", "KFAC*"])
# Batches: the paper's sizes; heat4d and the high-dimensional problems draw a new batch every step.
RESAMPLE = {"poisson2d_sin": 0, "heat1d": 0}
SIZES = {"poisson100d_sq": (100, 50)}
# Final L2 errors of the paper (experiments.md), by (problem, D).
PAPER = {
    ("poisson2d_sin", 257): {"ENGD": 6.2e-8, "HessianFree": 3.2e-7, "KFAC": 3.4e-7, "KFAC*": 2.0e-7, "Adam": 9.4e-5,
                             "SGD": 3.6e-5, "LBFGS": 1.8e-4},
    ("poisson2d_sin", 9873): {"ENGD": 0.30, "HessianFree": 1.3e-6, "KFAC": 7.0e-6, "KFAC*": 7.9e-7, "Adam": 2.1e-4},
    ("heat4d", 449): {"ENGD": 7.6e-7, "HessianFree": 1.4e-5, "KFAC": 1.7e-4, "KFAC*": 5.9e-5, "Adam": 1.1e-3},
    ("heat4d", 10065): {"ENGD": 1.9e-3, "HessianFree": 1.1e-5, "KFAC": 5.8e-5, "KFAC*": 9.8e-6},
    ("poisson5d_cos", 116865): {"HessianFree": 1.7e-4, "KFAC": 3.6e-4, "KFAC*": 9.5e-5},
    ("poisson10d_pairs", 118145): {"HessianFree": 4.0e-5, "KFAC": 9.0e-5, "KFAC*": 4.7e-5, "LBFGS": 4.4e-4},
    ("poisson100d_sq", 1325057): {"HessianFree": 1.3e-2, "KFAC": 1.6e-2, "KFAC*": 4.3e-3, "Adam": 1.7e-2,
                                  "SGD": 2.35e-2, "LBFGS": 1.35e-2},
    ("logfp9d", 118145): {"HessianFree": 2.45e-2, "KFAC": 0.42, "KFAC*": 2.6e-2, "Adam": 0.18, "SGD": 0.52,
                          "LBFGS": 5.0e-2},
}
# The experiments.md settings (the first candidate of every search).
START = {
    "KFAC": {"damping": 1e-10, "ema": 0.45, "momentum": 0.51},
    "KFAC*": {"damping": 1.2e-10, "ema": 0.93},
    "ENGD": {"damping": 1e-10, "ema": 0.3},
    "Adam": {"lr": 1.7e-3},
    "SGD": {"lr": 0.018, "momentum": 0.99},
    "HessianFree": {"damping": 500.0},
    "LBFGS": {"lr": 0.5, "history": 150},
    "SPRING": {"damping": 1e-3, "momentum": 0.99},
    "ENGD-Woodbury": {"damping": 1e-6},
}


def candidate(name, draw):
    """A random point of the search space of optimizer `name`, from `draw` (SharedStream or
    CommonStreams)."""
    u, log = draw.uniform, lambda parameter, lo, hi: 10 ** draw.uniform(parameter, lo, hi)
    return {
        "KFAC": lambda: {"damping": log("damping", -12, -8), "ema": u("ema", 0.3, 0.99), "momentum": u("momentum", 0, 0.9)},
        "KFAC*": lambda: {"damping": log("damping", -12, -8), "ema": u("ema", 0.5, 0.99)},
        "ENGD": lambda: {"damping": log("damping", -12, -6), "ema": u("ema", 0, 0.9)},
        "Adam": lambda: {"lr": log("lr", -4, -2)},
        "SGD": lambda: {"lr": log("lr", -3, -1), "momentum": u("momentum", 0.5, 0.99)},
        "HessianFree": lambda: {"damping": log("damping", -2, 3)},
        "LBFGS": lambda: {"lr": log("lr", -1.5, 0), "history": draw.choice("history", [50, 150, 300])},
        "SPRING": lambda: {"damping": log("damping", -10, -2), "momentum": u("momentum", 0, 0.99)},
        "ENGD-Woodbury": lambda: {"damping": log("damping", -10, -2)},
    }[name]()


class SharedStream:
    """Draws for `candidate` from one generator, whatever the parameter: each draw takes the
    generator's next number."""
    def __init__(self, rng):
        self.rng = rng

    def uniform(self, parameter, lo, hi):
        return self.rng.uniform(lo, hi)

    def choice(self, parameter, options):
        return self.rng.choice(options)


class CommonStreams:
    """Draws for `candidate` with one generator per hyper-parameter name, seeded by `seed` and the
    name (common random numbers): the k-th candidates of two optimizers that search a parameter
    over the same range get the same value (SPRING's and Woodbury ENGD's dampings), and a
    parameter one of them lacks (SPRING's momentum) changes no other draw."""
    def __init__(self, seed):
        self.seed, self.streams = seed, {}

    def uniform(self, parameter, lo, hi):
        return self.stream(parameter).uniform(lo, hi)

    def choice(self, parameter, options):
        return self.stream(parameter).choice(options)

    def stream(self, parameter):
        return self.streams.setdefault(parameter, random.Random(f"{self.seed}:{parameter}"))


def make_optimizer(name, net, op, h):
    if name == "KFAC":
        return kp.KFAC(net, op, damping=h["damping"], ema=h["ema"], momentum=h["momentum"])
    if name == "KFAC*":
        return kp.KFAC(net, op, damping=h["damping"], ema=h["ema"], step="auto", damping_rule="fixed")
    if name == "ENGD":
        return kp.ENGD(net, op, damping=h["damping"], ema=h["ema"], max_parameters=20000)
    if name == "Adam":
        return kp.Adam(net, op, lr=h["lr"])
    if name == "SGD":
        return kp.SGD(net, op, lr=h["lr"], momentum=h["momentum"])
    if name == "ENGD-Woodbury":
        return kp.ENGD(net, op, damping=h["damping"], variant="woodbury")
    if name == "SPRING":
        return kp.SPRING(net, op, damping=h["damping"], momentum=h["momentum"])
    if name == "HessianFree":
        return kp.HessianFree(net, op, damping=h["damping"])
    return kp.LBFGS(net, op, lr=h["lr"], history=h["history"])


def run(problem, size, name, h, seconds=None, csv=None, log_every=10, steps=10**9, batch=None):
    """One training run for `seconds` or `steps`, on `batch` = (N_interior, N_boundary) points;
    returns its log ({column: array}) or None if it failed."""
    prob = kp.Problem(problem)
    net = kp.MLP(prob.network_widths(size), seed=0)
    n, m = batch or SIZES.get(problem, (None, None))
    try:
        opt = make_optimizer(name, net, prob.operator, h)
        return kp.train(net, prob, opt, steps=steps, seconds=seconds, n_interior=n, n_boundary=m,
                        resample_every=RESAMPLE.get(problem, 1), log_every=log_every, seed=0, csv=csv,
                        progress=False)
    except kp.Error as error:
        print(f"    {name} {h}: {error}")
        return None


def read_log(path):
    """A training log written by kp.train(csv=...): {column: list of floats}."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0]} if rows else {}


def final_error(log):
    return log["l2_error"][-1] if log is not None and math.isfinite(log["l2_error"][-1]) else math.inf


def cpu():
    """The processor's model name (Linux), else the machine type."""
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def fmt(h):
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in h.items())


def plot(case, logs, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, log in logs.items():
        if log is None:
            continue
        for ax, x in zip(axes, ("seconds", "step")):
            ax.loglog(log[x][1:], log["l2_error"][1:], label=name)
    for ax, label in zip(axes, ("time [s]", "step")):
        ax.set_xlabel(label)
        ax.set_ylabel("L2 error")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title(case)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def search(name, draw, trials, score):
    """The seeded search: START[name], then trials - 1 random candidates (`candidate` from `draw`);
    returns the candidate of lowest score(h) and the scores [(score, h)]."""
    cands = [START[name]] + [candidate(name, draw) for _ in range(max(trials - 1, 0))]
    scored = [(score(h), h) for h in cands]
    return min(scored, key=lambda s: s[0])[1], scored


def sample_space(args, out):
    """SPRING, Woodbury ENGD and KFAC* (those of --sample-space-optimizers) for the same number of
    steps on SAMPLE_SPACE: per optimizer its search, then its run; each writes its log (CSV) and
    its search (JSON), so that the optimizers can run in separate processes on one --out. Then the
    figure and sample_space.md from the files of all three that are there."""
    problem, size, n, m, names = SAMPLE_SPACE
    D = kp.MLP(kp.Problem(problem).network_widths(size)).num_params
    steps = args.sample_space_steps
    trial_steps = max(1, int(args.trial_fraction * steps))
    print(f"{problem}, {size} network (D = {D}), {n} + {m} points resampled every step, {steps} steps")
    chosen = [name for name in args.sample_space_optimizers.split(",") if name]
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise SystemExit(f"--sample-space-optimizers: {', '.join(unknown)} not among {', '.join(names)}")
    searches = {}
    for name in chosen:  # all searches first, so that the timed runs follow one another
        searches[name] = search(name, CommonStreams(0), args.trials, lambda h: final_error(
            run(problem, size, name, h, steps=trial_steps, batch=(n, m), log_every=trial_steps)))
        print(f"  search {name}: " + ", ".join(f"{e:.1e} ({fmt(h)})" for e, h in searches[name][1]), flush=True)
    tag = lambda name: out / f"{problem}_D{D}_{name.replace('*', 'star')}_steps"
    for name, (best, scored) in searches.items():
        path = tag(name)
        path.with_suffix(".csv").unlink(missing_ok=True)
        log = run(problem, size, name, best, steps=steps, batch=(n, m), csv=str(path.with_suffix(".csv")))
        path.with_suffix(".json").write_text(json.dumps(
            {"setting": best, "search": [[e, h] for e, h in scored], "threads": args.threads, "failed": log is None}) + "\n")
        print(f"  {name}: L2 {final_error(log):.2e} at step {steps}", flush=True)
    logs, lines = {}, []
    for name in names:
        path = tag(name)
        if not path.with_suffix(".json").exists():
            continue
        record = json.loads(path.with_suffix(".json").read_text())
        scores = ", ".join(f"{e:.1e}" for e, _ in record["search"])
        if record["failed"]:
            lines.append(f"| {name} | {fmt(record['setting'])} | failed | | | | | {scores} |")
            continue
        log = logs[name] = read_log(path.with_suffix(".csv"))
        at = lambda k: log["l2_error"][log["step"].index(k)] if k in log["step"] else math.nan
        last, seconds = int(log["step"][-1]), log["seconds"][-1]
        lines.append(f"| {name} | {fmt(record['setting'])} | {at(last // 5):.2e} | {at(last // 2):.2e} | "
                     f"{final_error(log):.2e} | {min(log['l2_error']):.2e} | {seconds:.0f} s ({seconds / last:.3f} s/step, "
                     f"{record['threads']} thread(s)) | {scores} |")
    plot(f"{problem}, D = {D}, {n} + {m} points, {steps} steps", logs, out / f"{problem}_D{D}_steps.png")
    head = [f"{problem}, {size} network (D = {D}), {n} interior + {m} boundary points drawn anew every step, "
            f"{steps} steps; search: {args.trials} candidates of {trial_steps} steps (their final L2 errors), "
            f"common random numbers; {cpu()}.", "",
            f"| optimizer | setting | L2 at step {steps // 5} | L2 at step {steps // 2} | L2 at step {steps} "
            f"| lowest L2 | time | search |", "|---|---|---|---|---|---|---|---|"]
    (out / "sample_space.md").write_text("\n".join(head + lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of training per final run")
    parser.add_argument("--trials", type=int, default=3, help="search candidates per optimizer (incl. the start)")
    parser.add_argument("--trial-fraction", type=float, default=0.25, help="budget share of a search candidate")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--extra-budget", type=float, default=30.0)
    parser.add_argument("--no-extra", action="store_true")
    parser.add_argument("--sample-space-steps", type=int, default=500, help="steps of the SPRING comparison (0: none)")
    parser.add_argument("--sample-space-optimizers", default=",".join(SAMPLE_SPACE[4]),
                        help="the optimizers of the SPRING comparison to run here (the table takes all found in --out)")
    args = parser.parse_args()
    kp.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    rows, settings = [], {}
    for case in filter(None, args.cases.split(",")):
        problem, size = case.split(":")
        D = kp.MLP(kp.Problem(problem).network_widths(size)).num_params
        print(f"{problem}, {size} network (D = {D}), budget {args.budget:g} s per run")
        logs = {}
        for name in args.optimizers.split(","):
            best, scored = search(name, SharedStream(rng), args.trials,
                                  lambda h: final_error(run(problem, size, name, h, args.trial_fraction * args.budget)))
            tag = f"{problem}_D{D}_{name.replace('*', 'star')}"
            logs[name] = run(problem, size, name, best, args.budget, csv=str(out / f"{tag}.csv"))
            err = final_error(logs[name])
            steps = int(logs[name]["step"][-1]) if logs[name] is not None else 0
            print(f"  {name:12} L2 {err:.2e} after {steps} steps   ({fmt(best)}; search: "
                  + ", ".join(f"{e:.1e}" for e, _ in scored) + ")")
            rows.append((problem, D, name, err, steps, PAPER.get((problem, D), {}).get(name)))
            settings[f"{problem} D={D} {name}"] = best
        plot(f"{problem}, D = {D}, {args.budget:g} s per run", logs, out / f"{problem}_D{D}.png")
    if not args.no_extra:
        for case in EXTRA:
            problem, size = case.split(":")
            D = kp.MLP(kp.Problem(problem).network_widths(size)).num_params
            print(f"{problem}, {size} network (D = {D}), {args.extra_budget:g} s, no search")
            for name in ("KFAC*", "Adam"):
                log = run(problem, size, name, START[name], args.extra_budget, log_every=5,
                          csv=str(out / f"{problem}_D{D}_{name.replace('*', 'star')}.csv"))
                err, steps = final_error(log), int(log["step"][-1]) if log is not None else 0
                print(f"  {name:12} L2 {err:.2e} after {steps} steps")
                rows.append((problem, D, name, err, steps, PAPER.get((problem, D), {}).get(name)))
    if args.sample_space_steps > 0:
        sample_space(args, out)
    if not rows:
        return
    lines = [f"Budget {args.budget:g} s per run ({args.extra_budget:g} s for the last four problems), "
             f"{args.threads} thread(s), {cpu()}; paper: 1000–10000 s on a GPU.",
             "", "| problem | D | optimizer | L2 error here | steps | L2 error, paper |", "|---|---|---|---|---|---|"]
    for problem, D, name, err, steps, paper in rows:
        lines.append(f"| {problem} | {D} | {name} | {err:.2e} | {steps} | {'–' if paper is None else f'{paper:.1e}'} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    (out / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
