"""Where the loss spikes of the randomized poisson100d_sq run come from: the exact interior loss
against its 16-probe estimate on the same fresh batches, along that run.

Trains the `random100` run of randomized.py (KFAC*, adaptive damping from 1e-6 and at least 1e-6,
ema 0.93, huge network, 16 Rademacher probes, 100 interior and 50 boundary points drawn anew every
step) for `--steps` steps, keeps the network every 50 steps from step 400 on, and evaluates each
kept network on `--batches` fresh batches (seeds 10000, 10001, ...): the interior loss with the
exact forward Laplacian and with the estimate, and the relative L2 error.

    python3 experiments/residual_spikes.py [--steps 1000] [--batches 6] [--threads 1]

Prints a markdown table and writes it to residual_spikes.md in --out (default experiments/results).
"""
import argparse
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "experiments"))
import kfacpinn as kp  # noqa: E402
from randomized import kfac_star  # noqa: E402
from reproduce import cpu  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    kp.set_num_threads(args.threads)
    exact, estimated = kp.Problem("poisson100d_sq"), kp.Problem("poisson100d_sq")
    exact.operator.exact()
    estimated.operator.randomized(probes=16, seed=0)
    net = kp.MLP(estimated.network_widths("huge"), seed=0)
    opt = kfac_star(net, estimated.operator, damping=1e-6, min_damping=1e-6)
    kept = pathlib.Path(tempfile.mkdtemp(prefix="residual_spikes_"))
    steps = []

    def keep(record):
        step = int(record["step"])
        if step >= 400 and step % 50 == 0:
            net.save(str(kept / f"{step}.bin"))
            steps.append(step)
        return True

    try:
        kp.train(net, estimated, opt, steps=args.steps, resample_every=1, log_every=10, seed=0, callback=keep,
                 progress=False)
    except kp.Error as error:   # the kept networks up to the failing step are still evaluated
        print(f"training stopped: {error}", flush=True)
    lines = [f"poisson100d_sq, huge network, KFAC* with 16 probes, 100 + 50 points anew every step, {args.threads} "
             f"thread(s), {cpu()}. Interior loss of the kept network on {args.batches} fresh batches of 100 points: "
             "exact, and the 16-probe estimate (which includes the estimator's variance).", "",
             "| step | relative L2 | exact interior loss per batch | estimated |", "|---|---|---|---|"]
    for step in steps:
        path = kept / f"{step}.bin"
        trained = kp.MLP.load(str(path))
        batches = [exact.sample(seed=10000 + k) for k in range(args.batches)]
        true = [kp.loss(trained, exact.operator, b, terms=True)[1] for b in batches]
        guess = [kp.loss(trained, estimated.operator, b, terms=True)[1] for b in batches]
        lines.append(f"| {step} | {exact.relative_l2_error(trained):.3f} | " + ", ".join(f"{v:.3g}" for v in true)
                     + " | " + ", ".join(f"{v:.3g}" for v in guess) + " |")
        print(lines[-1], flush=True)
        path.unlink()
    kept.rmdir()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "residual_spikes.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
