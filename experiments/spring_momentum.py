"""SPRING's momentum on the sample-space comparison of reproduce.py (poisson5d_cos, medium network,
3000 + 500 points drawn anew every step): SPRING at given (damping, momentum) settings for a
number of steps, on the batches and initial network of `reproduce.py --sample-space-steps`, and
its L2 error per step next to Woodbury ENGD's log from that comparison.

    python3 experiments/spring_momentum.py [--steps 125] [--settings 1.7e-7,0.3 1.7e-7,0.6 ...]
                                           [--threads 1] [--engd experiments/results/poisson5d_cos_D10065_ENGD-Woodbury_steps.csv]
                                           [--woodbury DAMPING]

With --woodbury, Woodbury ENGD is trained here at that damping for the same steps (its log then
replaces --engd's).

Writes spring_momentum.md and a CSV per setting to --out (default experiments/results).
"""
import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "experiments"))
import kfacpinn as kp  # noqa: E402
from reproduce import SAMPLE_SPACE, cpu, read_log, run  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=125)
    parser.add_argument("--settings", nargs="*", default=["1.7e-7,0.3", "1.7e-7,0.6"], help="damping,momentum pairs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--engd", default=str(ROOT / "experiments" / "results" / "poisson5d_cos_D10065_ENGD-Woodbury_steps.csv"))
    parser.add_argument("--woodbury", type=float, help="train Woodbury ENGD at this damping instead of reading --engd")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    kp.set_num_threads(args.threads)
    problem, size, n, m, _ = SAMPLE_SPACE
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    marks = sorted({k for k in (25, 50, 100, 125, 250, 500, 1000, args.steps) if k <= args.steps})
    if args.woodbury is None:
        log = read_log(args.engd)
        engd_setting, engd_time = "its log (--engd)", ""
    else:
        tag = f"{problem}_ENGD-Woodbury_damping{args.woodbury:g}_{args.steps}steps"
        log = run(problem, size, "ENGD-Woodbury", {"damping": args.woodbury}, steps=args.steps, batch=(n, m),
                  csv=str(out / f"{tag}.csv"))
        if log is None:
            sys.exit("Woodbury ENGD failed")
        engd_setting, engd_time = f"damping={args.woodbury:g}", f"{log['seconds'][-1] / args.steps:.2f}"
    engd = dict(zip(map(int, log["step"]), log["l2_error"]))
    lines = [f"{problem}, {size} network, {n} + {m} points drawn anew every step, {args.threads} thread(s), {cpu()}; "
             f"L2 error at steps {', '.join(map(str, marks))}.", "",
             "| optimizer | setting | " + " | ".join(f"step {k}" for k in marks) + " | s/step |",
             "|---|---|" + "---|" * len(marks) + "---|",
             f"| Woodbury ENGD | {engd_setting} | " + " | ".join(f"{engd.get(k, float('nan')):.2e}" for k in marks) + f" | {engd_time} |"]
    for setting in args.settings:
        damping, momentum = map(float, setting.split(","))
        tag = f"{problem}_SPRING_damping{damping:g}_momentum{momentum:g}_{args.steps}steps"
        log = run(problem, size, "SPRING", {"damping": damping, "momentum": momentum}, steps=args.steps, batch=(n, m),
                  csv=str(out / f"{tag}.csv"))
        if log is None:
            lines.append(f"| SPRING | damping={damping:g}, momentum={momentum:g} | failed |")
            continue
        steps = list(log["step"])
        lines.append(f"| SPRING | damping={damping:g}, momentum={momentum:g} | "
                     + " | ".join(f"{log['l2_error'][steps.index(k)]:.2e}" if k in steps else "" for k in marks)
                     + f" | {log['seconds'][-1] / args.steps:.2f} |")
        print(lines[-1], flush=True)
    (out / "spring_momentum.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
