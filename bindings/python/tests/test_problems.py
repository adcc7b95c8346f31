"""Built-in problems and the training driver through the Python binding."""
import csv

import numpy as np
import pytest

import kfacpinn as kp

NAMES = ["poisson2d_sin", "poisson5d_cos", "poisson10d_pairs", "poisson100d_sq", "heat1d", "heat4d", "logfp9d"]


@pytest.mark.parametrize("name", NAMES)
def test_samples_lie_in_the_domain_and_carry_the_exact_data(name):
    prob = kp.Problem(name)
    batch = prob.sample(200, 100, seed=3)
    d = prob.dim
    assert batch.x_interior.shape == (200, d) and batch.x_boundary.shape == (100, d)
    lo = np.array([0.0] + [-5.0] * 9) if name == "logfp9d" else np.zeros(d)
    hi = np.array([1.0] + [5.0] * 9) if name == "logfp9d" else np.ones(d)
    assert np.all(batch.x_interior > lo) and np.all(batch.x_interior < hi)
    on_face = (batch.x_boundary == lo) | (batch.x_boundary == hi)
    assert np.all(on_face.sum(axis=1) == 1)
    if name.startswith("heat"):
        assert on_face[:, 0].sum() == 50 and np.all(batch.x_boundary[on_face[:, 0], 0] == 0)
    if name == "logfp9d":
        assert np.all(batch.x_boundary[:, 0] == 0)
    np.testing.assert_array_equal(batch.g_boundary, prob.exact(batch.x_boundary))
    again = prob.sample(200, 100, seed=3)
    np.testing.assert_array_equal(again.x_interior, batch.x_interior)
    assert not np.array_equal(prob.sample(200, 100, seed=4).x_interior, batch.x_interior)


def test_exact_solution_of_poisson2d_and_errors():
    prob = kp.Problem("poisson2d_sin")
    x = np.random.default_rng(0).uniform(size=(50, 2))
    np.testing.assert_allclose(prob.exact(x), np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]), rtol=0, atol=1e-15)
    net = kp.MLP(prob.network_widths("small"), seed=1)
    assert net.num_params == 257 and prob.network_widths("big") == [2, 256, 256, 128, 128, 1]
    l2, rel = prob.errors(net, n_eval=400, seed=2)
    assert l2 > 0 and rel > 0 and prob.l2_error(net, 400, 2) == l2
    # Δu* through the binding's Taylor mode is not available for u*, so check −Δu* = f by differences.
    batch = prob.sample(5, 0, seed=1)
    h, y = 1e-4, batch.x_interior
    lap = sum((prob.exact(y + h * e) - 2 * prob.exact(y) + prob.exact(y - h * e)) / h**2 for e in np.eye(2))
    np.testing.assert_allclose(-lap, batch.f_interior, rtol=1e-6)
    with pytest.raises(kp.Error, match="unknown problem"):
        kp.Problem("poisson3d")
    with pytest.raises(kp.Error, match="no huge network"):
        prob.network_widths("huge")


def test_train_logs_columns_csv_and_callback(tmp_path):
    prob = kp.Problem("heat1d")
    net = kp.MLP([2, 16, 1], seed=3)
    opt = kp.KFAC(net, prob.operator)
    seen = []
    path = tmp_path / "log.csv"
    history = kp.train(net, prob, opt, steps=20, n_interior=100, n_boundary=40, resample_every=5, log_every=10,
                       csv=path, callback=seen.append, progress=False)
    assert list(history) == kp.LOG_COLUMNS
    assert list(history["step"]) == [0, 1, 10, 20] and [r["step"] for r in seen] == [0, 1, 10, 20]
    assert history["l2_error"][-1] < history["l2_error"][0]
    with open(path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == kp.LOG_COLUMNS and len(rows) == 5
    assert float(rows[-1][5]) == pytest.approx(history["l2_error"][-1], rel=1e-12)
    # The callback stops training; its exceptions come back to the caller.
    history = kp.train(net, prob, opt, steps=50, log_every=1, n_interior=50, n_boundary=10,
                       callback=lambda r: r["step"] < 3, progress=False)
    assert history["step"][-1] == 3

    def boom(_):
        raise RuntimeError("from the callback")
    with pytest.raises(RuntimeError, match="from the callback"):
        kp.train(net, prob, opt, steps=5, n_interior=50, n_boundary=10, callback=boom, progress=False)
    with pytest.raises(kp.Error, match="steps"):
        kp.train(net, prob, opt, steps=0, progress=False)


@pytest.mark.parametrize("name", NAMES)
def test_every_problem_trains_end_to_end(name):
    prob = kp.Problem(name)
    hidden = [16, 16] if prob.dim > 20 else [16]
    net = kp.MLP([prob.dim] + hidden + [1], seed=1)
    history = kp.train(net, prob, kp.KFAC(net, prob.operator), steps=5, n_interior=40, n_boundary=20, log_every=5,
                       progress=False)
    assert history["loss"][-1] < history["loss"][0] and np.all(np.isfinite(history["l2_error"]))


def test_sobol_sampler_is_stratified_and_seeded():
    prob = kp.Problem("poisson5d_cos")
    batch = prob.sample(256, 32, seed=2, sampler="sobol")
    for j in range(5):
        counts = np.bincount((batch.x_interior[:, j] * 256).astype(int), minlength=256)
        assert np.all(counts == 1)
    assert not np.array_equal(prob.sample(256, 32, seed=3, sampler="sobol").x_interior, batch.x_interior)
    np.testing.assert_array_equal(prob.sample(256, 32, seed=2, sampler="sobol").x_interior, batch.x_interior)
    with pytest.raises(kp.Error, match="unknown sampler"):
        prob.sample(10, 2, sampler="halton")
