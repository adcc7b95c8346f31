"""A problem of your own in Python, trained with KFAC*: Poisson on the unit square with a
Dirichlet, a Neumann and a Robin side, functions given as vectorised numpy callables.

    -lap u = f on [0,1]^2,  u* = sin(pi x) sin(pi y) + y
    u = u* on x = 0 and x = 1;  du/dn = -du*/dy on y = 0;  u + du/dn = u* + du*/dy on y = 1

    python3 examples/own_problem.py [steps]
"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bindings" / "python"))
import kfacpinn as kp  # noqa: E402


def exact(x):
    return np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]) + x[:, 1]


def dudy(x):
    return np.pi * np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1]) + 1


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    problem = kp.Problem.custom(
        2, kp.Operator.poisson(2),
        source=lambda x: 2 * np.pi ** 2 * np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]),
        domain=kp.Box([0, 0], [1, 1]),
        conditions=[kp.DirichletCondition(["x0-", "x0+"], exact),
                    kp.NeumannCondition("x1-", lambda x: -dudy(x)),
                    kp.RobinCondition("x1+", lambda x: exact(x) + dudy(x), a=1, b=1)],
        exact=exact, n_interior=900, n_boundary=120)
    net = kp.MLP([2, 64, 1], seed=0)
    log = kp.train(net, problem, kp.KFAC(net, problem.operator, step="auto"), steps=steps,
                   log_every=max(1, steps // 4), progress=False)
    for step, loss, error in zip(log["step"], log["loss"], log["l2_error"]):
        print(f"step {int(step):5d}  loss {loss:.3e}  L2 error {error:.3e}")


if __name__ == "__main__":
    main()
