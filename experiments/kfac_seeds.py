"""KFAC (grid line search) on poisson2d_sin, D = 257, over several seeds: the L2 error per step count.

Each seed draws its own network initialisation and its own fixed batch of 900 interior and 120
boundary points (the built-in sampler); every run is single-threaded, so two runs share the two
cores. Prints, per seed, the L2 (RMS) error every `--every` steps, and how many seeds reached
`--target` within `--steps` steps.

    python3 experiments/kfac_seeds.py [--seeds 0-8] [--steps 3000] [--every 500] [--target 1e-5]
                                      [--damping 1e-14] [--ema 0.3] [--momentum 0.51] [--jobs 2]

Needs numpy and a built library (swift build -c release).
"""
import argparse
import concurrent.futures
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
import kfacpinn as kp  # noqa: E402


def run(seed, args):
    """Trains one seed; returns {step: L2 error} at the logged steps."""
    kp.set_num_threads(1)
    problem = kp.Problem("poisson2d_sin")
    net = kp.MLP(problem.network_widths("small"), seed=seed)
    opt = kp.KFAC(net, problem.operator, damping=args.damping, ema=args.ema, momentum=args.momentum)
    log = kp.train(net, problem, opt, steps=args.steps, log_every=args.every, seed=seed, progress=False)
    return dict(zip(log["step"].astype(int).tolist(), log["l2_error"].tolist()))


def seed_list(text):
    seeds = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds += list(range(int(first), int(last or first) + 1))
    return seeds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=seed_list, default=seed_list("0-8"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--target", type=float, default=1e-5)
    parser.add_argument("--damping", type=float, default=1e-14)
    parser.add_argument("--ema", type=float, default=0.3)
    parser.add_argument("--momentum", type=float, default=0.51)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    print(f"KFAC on poisson2d_sin (D = 257, 900/120): damping {args.damping:g}, ema {args.ema:g}, "
          f"momentum {args.momentum:g}; L2 error at the logged steps")
    reached = 0
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {seed: pool.submit(run, seed, args) for seed in args.seeds}
        for seed, future in futures.items():
            errors = future.result()
            shown = "  ".join(f"{step}: {error:.2e}" for step, error in errors.items() if step > 1)
            hit = next((step for step, error in errors.items() if error <= args.target), None)
            reached += hit is not None
            print(f"seed {seed}: {shown}  " + (f"≤ {args.target:g} at step {hit}" if hit else "target not reached"),
                  flush=True)
    print(f"{reached} of {len(args.seeds)} seeds reached L2 ≤ {args.target:g} within {args.steps} steps")


if __name__ == "__main__":
    main()
