"""An inverse problem of your own in Python: the diffusivity of a heat equation from noisy
measurements, trained with KFAC*.

    d_t u - kappa d_xx u = 0 on (t, x) in [0,1]^2,  u(0, x) = sin(pi x),  u = 0 at x = 0 and 1,
    true kappa = 0.1 (unknown: trained through log kappa from 1), 300 measurements of
    u* = exp(-kappa pi^2 t) sin(pi x) at random (t, x) with 1% Gaussian noise.

    python3 examples/inverse_heat.py [steps]
"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bindings" / "python"))
import kfacpinn as kp  # noqa: E402

KAPPA = 0.1


def exact(x):
    return np.exp(-KAPPA * np.pi ** 2 * x[:, 0]) * np.sin(np.pi * x[:, 1])


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rng = np.random.default_rng(1)
    # The measurements: the data a user brings.
    x_data = rng.random((300, 2))
    y_data = exact(x_data)
    y_data += 0.01 * np.sqrt(np.mean(y_data ** 2)) * rng.standard_normal(len(y_data))

    op = kp.Operator.heat(1, kappa=kp.Trainable(1.0, positive=True))
    problem = kp.Problem.custom(
        2, op, source=lambda x: np.zeros(len(x)), domain=kp.Box([0, 0], [1, 1]),
        conditions=[kp.InitialCondition(lambda x: np.sin(np.pi * x[:, 1])),
                    kp.DirichletCondition(["x1-", "x1+"], lambda x: np.zeros(len(x)))],
        exact=exact, n_interior=900, n_boundary=120)
    problem.set_observations(x_data, y_data, weight=10)
    net = kp.MLP([2, 64, 1], seed=0)
    log = kp.train(net, problem, kp.KFAC(net, op, step="auto"), steps=steps, resample_every=1,
                   log_every=max(1, steps // 6), progress=False)
    for step, loss, error, kappa in zip(log["step"], log["loss"], log["relative_l2_error"], log["coef_kappa"]):
        print(f"step {int(step):5d}  loss {loss:.3e}  relative L2 error {error:.3e}  kappa {kappa:.6f}")
    kappa = op.coefficients["kappa"]
    print(f"kappa = {kappa:.6f} (true {KAPPA}, relative error {abs(kappa - KAPPA) / KAPPA:.1e})")


if __name__ == "__main__":
    main()
