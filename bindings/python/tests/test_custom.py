"""Problems of your own: domains, conditions and Python functions."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import kfacpinn as kp

ROOT = pathlib.Path(__file__).resolve().parents[3]


def disk_problem():
    exact = lambda x: np.exp(x[:, 0] + x[:, 1])  # noqa: E731
    op = kp.Operator.linear(2, C=-np.eye(2), c=1.0)   # -lap u + u
    return kp.Problem.custom(2, op, source=lambda x: -exact(x), domain=kp.Ball([0, 0], 1),
                             conditions=[kp.RobinCondition("boundary", lambda x: exact(x) * (1 + x[:, 0] + x[:, 1]), 1, 1)],
                             exact=exact, n_interior=300, n_boundary=60)


def test_ball_points_normals_and_training():
    prob = disk_problem()
    batch = prob.sample(seed=2)
    robin = batch.terms[1]
    assert isinstance(robin, kp.Robin) and robin.x.shape == (60, 2)
    np.testing.assert_allclose(np.linalg.norm(robin.x, axis=1), 1, atol=1e-14)
    np.testing.assert_allclose(robin.normals, robin.x, atol=1e-14)
    assert np.all(np.linalg.norm(batch.terms[0].x, axis=1) < 1)
    net = kp.MLP([2, 16, 1], seed=0)
    log = kp.train(net, prob, kp.KFAC(net, prob.operator, step="auto"), steps=100, log_every=50, progress=False)
    assert log["l2_error"][-1] < 0.1 * log["l2_error"][0]


def test_python_errors_are_reraised_and_shapes_checked():
    box = kp.Box([0, 0], [1, 1])
    failing = kp.Problem.custom(2, kp.Operator.poisson(2), source=lambda x: 1 / 0, domain=box,
                                conditions=[kp.DirichletCondition("all", 0.0)])
    with pytest.raises(ZeroDivisionError):
        failing.sample()
    net = kp.MLP([2, 4, 1])
    with pytest.raises(ZeroDivisionError):
        kp.train(net, failing, kp.Adam(net, failing.operator), steps=2, progress=False)
    wrong = kp.Problem.custom(2, kp.Operator.poisson(2), source=lambda x: np.ones(3), domain=box)
    with pytest.raises(kp.InputError, match=r"returned shape \(3,\)"):
        wrong.sample(n_interior=5)
    nan = kp.Problem.custom(2, kp.Operator.poisson(2), source=0.0, domain=box,
                            conditions=[kp.NeumannCondition("all", lambda x: np.full(len(x), np.inf))])
    with pytest.raises(kp.Error, match="is inf at point 0"):
        nan.sample()


@pytest.mark.parametrize("conditions, message", [
    ([kp.DirichletCondition("x2-", 0.0)], "unknown face 'x2-'"),
    ([kp.DirichletCondition("x0-", 0.0), kp.NeumannCondition(["x1-", "x0-"], 0.0)], "face 'x0-' is given two conditions"),
    ([kp.RobinCondition("all", 0.0, a=0, b=0)], "a = b = 0"),
])
def test_bad_conditions(conditions, message):
    with pytest.raises(kp.InputError, match=message):
        kp.Problem.custom(2, kp.Operator.poisson(2), source=0.0, domain=kp.Box([0, 0], [1, 1]), conditions=conditions)


def test_dimension_mismatch():
    with pytest.raises(kp.InputError, match="domain is 2-dimensional"):
        kp.Problem.custom(3, kp.Operator.poisson(3), source=0.0, domain=kp.Box([0, 0], [1, 1]))
    with pytest.raises(kp.InputError, match="operator is 3-dimensional"):
        kp.Problem.custom(2, kp.Operator.poisson(3), source=0.0, domain=kp.Box([0, 0], [1, 1]))


def test_initial_condition_and_the_example():
    # u_tt = u_xx with u(0, x) = sin pi x, u_t(0, x) = 0: the wave1d problem, as a problem of your own.
    wave = kp.Operator.linear(2, C=np.diag([1.0, -1.0]))
    prob = kp.Problem.custom(2, wave, source=0.0, domain=kp.Box([0, 0], [1, 1]),
                             conditions=[kp.InitialCondition(lambda x: np.sin(np.pi * x[:, 1]), velocity=0.0),
                                         kp.DirichletCondition(["x1-", "x1+"], 0.0)],
                             exact=lambda x: np.sin(np.pi * x[:, 1]) * np.cos(np.pi * x[:, 0]))
    kinds = [type(t).__name__ for t in prob.sample(n_interior=20, n_boundary=40).terms]
    assert kinds == ["Interior", "Dirichlet", "Neumann", "Dirichlet"]
    velocity = prob.sample(n_interior=20, n_boundary=40).terms[2]
    np.testing.assert_array_equal(velocity.normals, np.tile([1.0, 0.0], (len(velocity.values), 1)))
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "own_problem.py"), "300"], capture_output=True,
                         text=True, check=True).stdout
    assert "step   300" in out


def test_condition_point_counts():
    prob = kp.Problem.custom(2, kp.Operator.poisson(2), source=0.0, domain=kp.Box([0, 0], [1, 1]),
                             conditions=[kp.DirichletCondition("x0-", 0.0, n_points=7), kp.NeumannCondition("all", 0.0),
                                         ])
    assert [len(t.values) for t in prob.sample(n_interior=5, n_boundary=40).terms] == [5, 7, 33]
    with pytest.raises(kp.InputError, match="add up to 7, more than the 3"):
        prob.sample(n_interior=5, n_boundary=3)


def test_points_domain_trains_on_the_given_batch():
    rng = np.random.default_rng(1)
    x = rng.random((200, 2))
    theta = rng.random(40) * 2 * np.pi
    xb = 0.5 + 0.5 * np.stack([np.cos(theta), np.sin(theta)], axis=1)   # a circle: any geometry
    normals = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    exact = lambda p: p[:, 0] ** 2 - p[:, 1] ** 2   # noqa: E731  harmonic, -lap u = 0
    grad_n = lambda p, n: 2 * p[:, 0] * n[:, 0] - 2 * p[:, 1] * n[:, 1]  # noqa: E731
    inside = np.linalg.norm(x - 0.5, axis=1) < 0.5
    batch = kp.Batch.from_terms([kp.Interior(x[inside], np.zeros(inside.sum())),
                                 kp.Robin(xb, exact(xb) + grad_n(xb, normals), normals, 1.0, 1.0)])
    prob = kp.Problem.custom(2, kp.Operator.poisson(2), None, kp.Points(batch), exact=exact)
    sampled = prob.sample(seed=5)
    np.testing.assert_array_equal(sampled.terms[1].x, xb)
    net = kp.MLP([2, 16, 1], seed=0)
    log = kp.train(net, prob, kp.KFAC(net, prob.operator, step="auto"), steps=100, log_every=50, progress=False)
    assert log["l2_error"][-1] < 0.1 * log["l2_error"][0]
    with pytest.raises(kp.InputError, match="conditions as terms"):
        kp.Problem.custom(2, kp.Operator.poisson(2), None, kp.Points(batch), conditions=[kp.DirichletCondition("all", 0)])
