"""Inverse problems: trainable operator coefficients (kp.Trainable) with observation data."""
import pickle

import numpy as np
import pytest

import kfacpinn as kp


def test_trainable_coefficients_are_listed_and_set():
    op = kp.Operator.heat(1, kappa=kp.Trainable(1.0, positive=True))
    assert op.coefficients == {"kappa": 1.0}
    lin = kp.Operator.linear(2, C=-np.eye(2), beta=[kp.Trainable(0.5), 0.0], c=kp.Trainable(0.1),
                             kappa=kp.Trainable(2.0, positive=True, frozen=True))
    assert lin.coefficients == {"kappa": 2.0, "c": 0.1, "beta_0": 0.5}
    assert [(t.positive, t.frozen) for t in lin.trainable.values()] == [(True, True), (False, False), (False, False)]
    lin.coefficients = {"kappa": 3.0, "c": -1.0, "beta_0": 0.25}
    assert lin.coefficients == pytest.approx({"kappa": 3.0, "c": -1.0, "beta_0": 0.25}, rel=1e-15)
    again = pickle.loads(pickle.dumps(lin))
    assert again.coefficients == lin.coefficients
    assert [(t.positive, t.frozen) for t in again.trainable.values()] == [(True, True), (False, False), (False, False)]


def test_gradient_includes_the_trained_coefficients():
    rng = np.random.default_rng(0)
    op = kp.Operator.heat(1, kappa=kp.Trainable(0.5, positive=True))
    net = kp.MLP([2, 6, 1], seed=1)
    batch = kp.Batch.from_terms([kp.Interior(rng.random((20, 2)), rng.random(20)),
                                 kp.Observation(rng.random((5, 2)), rng.random(5))])
    value, grad = kp.loss_and_gradient(net, op, batch)
    assert grad.shape == (net.num_params + 1,)
    # d L / d log kappa by central differences.
    h = 1e-6
    op.coefficients = {"kappa": 0.5 * np.exp(h)}
    plus = kp.loss(net, op, batch)
    op.coefficients = {"kappa": 0.5 * np.exp(-h)}
    minus = kp.loss(net, op, batch)
    assert grad[-1] == pytest.approx((plus - minus) / (2 * h), rel=1e-6)


def test_heat1d_inverse_recovers_kappa_and_logs_it(tmp_path):
    prob = kp.Problem("heat1d_inverse")
    net = kp.MLP(prob.network_widths("small"), seed=0)
    opt = kp.ENGD(net, prob.operator, damping=1e-6)
    csv = tmp_path / "log.csv"
    history = kp.train(net, prob, opt, steps=60, log_every=20, resample_every=1, csv=csv, progress=False)
    kappa = prob.operator.coefficients["kappa"]
    assert abs(kappa - 0.25) / 0.25 < 1e-3, kappa
    assert history["coef_kappa"][0] == 1.0 and history["coef_kappa"][-1] == kappa
    assert csv.read_text().splitlines()[0].endswith(",coef_kappa")


def test_checkpoint_keeps_the_coefficients(tmp_path):
    def run(steps, resume):
        prob = kp.Problem("heat1d_inverse")
        net = kp.MLP([2, 10, 1], seed=3)
        opt = kp.KFAC(net, prob.operator, step="auto")
        kp.train(net, prob, opt, steps=steps, n_interior=80, n_boundary=30, resample_every=1, log_every=3,
                 checkpoint=tmp_path / "run.kfp", resume=resume, progress=False)
        return net.get_params(), prob.operator.coefficients["kappa"]
    straight = run(6, False)
    (tmp_path / "run.kfp").unlink()
    run(3, False)
    resumed = run(6, True)
    np.testing.assert_array_equal(resumed[0], straight[0])
    assert resumed[1] == straight[1]


def test_bad_coefficient_input_changes_nothing():
    op = kp.Operator.heat(1)
    with pytest.raises(kp.InputError, match="kappa, c, beta_0, beta_1, constant, source_scale"):
        op.set_trainable("diffusivity", 1.0)
    with pytest.raises(kp.InputError, match="beta_0 to beta_1"):
        op.set_trainable("beta_2", 1.0)
    with pytest.raises(kp.Error, match="initial value"):
        op.set_trainable("kappa", float("nan"))
    with pytest.raises(kp.InputError, match="must be > 0"):
        op.set_trainable("kappa", -1.0, positive=True)
    assert op.coefficients == {}
    op.set_trainable("kappa", 1.0)
    opt = kp.KFAC(kp.MLP([2, 4, 1]), op)
    with pytest.raises(kp.InputError, match="in use by an optimizer"):
        op.set_trainable("c", 0.0)
    with pytest.raises(kp.InputError):
        op.coefficients = {"kappa": 1.0, "c": 2.0}
    assert op.coefficients == {"kappa": 1.0}
    del opt
    with pytest.raises(kp.Error, match="observations y"):
        kp.Batch.from_terms([kp.Interior(np.full((1, 2), 0.5), [0.0]), kp.Observation(np.zeros((1, 2)), [float("nan")])])


def test_observations_of_your_own_problem():
    op = kp.Operator.poisson(1, kappa=kp.Trainable(1.0, positive=True))
    problem = kp.Problem.custom(1, op, source=lambda x: np.full(len(x), 2.0), domain=kp.Box([0], [1]),
                                conditions=[kp.DirichletCondition("all", lambda x: np.zeros(len(x)))],
                                n_interior=50, n_boundary=2)
    x = np.linspace(0.1, 0.9, 9)[:, None]
    problem.set_observations(x, (x * (1 - x))[:, 0], weight=10)   # u = x(1 - x) solves -u'' = 2
    terms = problem.sample(seed=0).terms
    assert isinstance(terms[-1], kp.Observation) and terms[-1].weight == 10 and len(terms[-1].values) == 9
    with pytest.raises(kp.Error, match="observed values has a non-finite value"):
        problem.set_observations(x, np.full(9, np.nan))
    with pytest.raises(kp.InputError, match="built in"):
        kp.Problem("heat1d").set_observations(np.zeros((1, 2)), [0.0])
    assert len(problem.sample(seed=0).terms[-1].values) == 9    # unchanged after the failures


def test_inverse_example_runs():
    import pathlib
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, str(root / "examples" / "inverse_heat.py"), "200"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "kappa = " in out.stdout.splitlines()[-1]
