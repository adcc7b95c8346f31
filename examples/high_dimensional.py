"""A 200-dimensional heat equation of your own, trained with KFAC* in randomized Taylor mode.

    d_t u - Laplace_x u = 0 on (t, x) in [0,1] x [0,1]^200,
    u* = exp(-t) mean_i sin(x_i):  u(0, x) = mean_i sin(x_i),  u = u* on the faces of the cube.

The Laplacian is estimated from 16 Rademacher probes per point, drawn anew every step, so the
Taylor pass carries 1 + 1 + 16 + 1 columns per point (value, the exact d_t u, the probes, the
summed second-order column) instead of 1 + 201 + 1.

    python3 examples/high_dimensional.py [steps]
"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bindings" / "python"))
import kfacpinn as kp  # noqa: E402

D_SPACE = 200


def exact(x):
    return np.exp(-x[:, 0]) * np.sin(x[:, 1:]).mean(axis=1)


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    op = kp.Operator.heat(D_SPACE, kappa=1.0).randomized(probes=16, seed=0)
    faces = [f"x{i}{side}" for i in range(1, D_SPACE + 1) for side in "-+"]
    problem = kp.Problem.custom(
        D_SPACE + 1, op, source=0.0, domain=kp.Box([0.0] * (D_SPACE + 1), [1.0] * (D_SPACE + 1)),
        conditions=[kp.InitialCondition(exact), kp.DirichletCondition(faces, exact)],
        exact=exact, n_interior=200, n_boundary=100)
    net = kp.MLP([D_SPACE + 1, 128, 128, 1], seed=0)
    log = kp.train(net, problem, kp.KFAC(net, problem.operator, step="auto"), steps=steps, resample_every=1,
                   log_every=max(1, steps // 4), progress=False)
    for step, loss, error in zip(log["step"], log["loss"], log["relative_l2_error"]):
        print(f"step {int(step):5d}  loss {loss:.3e}  relative L2 error {error:.3e}")


if __name__ == "__main__":
    main()
