"""Tests of the Python binding against independent numpy computations."""
import numpy as np
import pytest

import kfacpinn as kp


def reference_forward(widths, theta, x):
    """Plain numpy forward pass from the documented layout (W row-major, then b, per layer)."""
    z, offset = x, 0
    for l in range(len(widths) - 1):
        hin, hout = widths[l], widths[l + 1]
        W = theta[offset:offset + hin * hout].reshape(hout, hin)
        b = theta[offset + hin * hout:offset + (hin + 1) * hout]
        offset += (hin + 1) * hout
        z = z @ W.T + b
        if l < len(widths) - 2:
            z = np.tanh(z)
    return z[:, 0]


def test_version():
    assert kp.__version__ == kp._lib.lib.kfp_version_string().decode()
    assert kp.__version__.count(".") == 2


def test_layout_and_seed():
    widths = [2, 64, 64, 48, 48, 1]
    net = kp.MLP(widths, activation="tanh", seed=1)
    assert net.num_params == 9873
    assert net.widths == widths and net.input_dim == 2
    x = np.random.default_rng(0).uniform(size=(7, 2))
    theta = net.get_params()
    np.testing.assert_allclose(net(x), reference_forward(widths, theta, x), rtol=0, atol=1e-13)
    assert np.array_equal(kp.MLP(widths, seed=1).get_params(), theta)
    assert not np.array_equal(kp.MLP(widths, seed=2).get_params(), theta)
    other = kp.MLP(widths, seed=2)
    other.set_params(theta)
    assert np.array_equal(other.get_params(), theta)


@pytest.mark.parametrize("d,widths", [(2, [2, 16, 16, 1]), (5, [5, 20, 10, 1]), (100, [100, 16, 1])])
def test_derivatives_match_finite_differences(d, widths):
    net = kp.MLP(widths, seed=3)
    x = np.random.default_rng(1).uniform(-1, 1, size=(3, d))
    u, grad, lap = net.derivatives(x)
    h1, h2 = 1e-5, 1e-3
    eye = np.eye(d)
    fd_grad = np.stack([(net(x + h1 * eye[i]) - net(x - h1 * eye[i])) / (2 * h1) for i in range(d)], axis=1)
    fd_lap = sum((net(x + h2 * eye[i]) - 2 * u + net(x - h2 * eye[i])) / h2**2 for i in range(d))
    assert np.max(np.abs(grad - fd_grad)) < 1e-8, np.max(np.abs(grad - fd_grad))
    assert np.max(np.abs(lap - fd_lap)) < 1e-5, np.max(np.abs(lap - fd_lap))


def test_general_coefficients():
    d = 3
    net = kp.MLP([d, 12, 12, 1], seed=4)
    x = np.random.default_rng(2).uniform(size=(4, d))
    A = np.random.default_rng(3).normal(size=(d, d))
    C = A + A.T
    _, _, t = net.derivatives(x, coefficients=C)
    h = 1e-5
    hess = np.stack([(net.derivatives(x + h * e)[1] - net.derivatives(x - h * e)[1]) / (2 * h) for e in np.eye(d)], axis=2)
    expected = np.einsum("ij,nij->n", C, hess)
    assert np.max(np.abs(t - expected)) < 1e-7, np.max(np.abs(t - expected))


def make_batch(d, n=6, m=4, seed=0):
    rng = np.random.default_rng(seed)
    return kp.Batch(rng.uniform(size=(n, d)), rng.normal(size=n), rng.uniform(size=(m, d)), rng.normal(size=m))


@pytest.mark.parametrize("make_op", [
    lambda: kp.Operator.poisson(3),
    lambda: kp.Operator.heat(2, kappa=0.25),
    lambda: kp.Operator.linear(3, C=[[1, 0.2, 0], [0.2, 0.5, 0.1], [0, 0.1, 2]], beta=[0.3, 0, -1], c=-2.0),
    lambda: kp.Operator.log_fokker_planck(2),
])
def test_loss_gradient_matches_finite_differences(make_op):
    op = make_op()
    net = kp.MLP([op.dim, 6, 5, 1], seed=5)
    batch = make_batch(op.dim)
    value, grad = kp.loss_and_gradient(net, op, batch)
    assert value == pytest.approx(kp.loss(net, op, batch), rel=1e-15)
    theta, h = net.get_params(), 1e-6
    fd = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        net.set_params(theta + e)
        lp = kp.loss(net, op, batch)
        net.set_params(theta - e)
        lm = kp.loss(net, op, batch)
        fd[i] = (lp - lm) / (2 * h)
    net.set_params(theta)
    rel = np.max(np.abs(grad - fd) / np.maximum(1, np.abs(fd)))
    assert rel < 1e-7, rel


def test_heat_residual():
    op = kp.Operator.heat(1, kappa=0.25)
    net = kp.MLP([2, 10, 1], seed=6)
    x = np.random.default_rng(4).uniform(size=(5, 2))
    f = np.zeros(5)
    _, grad, _ = net.derivatives(x)
    _, _, uxx = net.derivatives(x, coefficients=[[0, 0], [0, 1]])
    np.testing.assert_allclose(op.residual(net, x, f), grad[:, 0] - 0.25 * uxx, rtol=0, atol=1e-14)
    total, interior, boundary = kp.loss(net, op, kp.Batch(x, f), terms=True)
    assert boundary == 0 and total == interior == pytest.approx(0.5 * np.mean((grad[:, 0] - 0.25 * uxx) ** 2))


def test_bad_input_raises_error_and_changes_nothing():
    net = kp.MLP([2, 8, 1], seed=1)
    op = kp.Operator.poisson(2)
    theta = net.get_params()
    x = np.random.default_rng(5).uniform(size=(4, 2))
    with pytest.raises(kp.Error, match="3 columns, the network expects 2"):
        net(np.ones((4, 3)))
    with pytest.raises(kp.Error, match="non-finite"):
        net(np.array([[0.1, np.nan]]))
    with pytest.raises(kp.Error, match="num_points"):
        net(np.empty((0, 2)))
    with pytest.raises(kp.Error, match=r"widths\[1\] is 0"):
        kp.MLP([2, 0, 1])
    with pytest.raises(kp.Error, match="unknown activation 'relu'"):
        kp.MLP([2, 4, 1], activation="relu")
    with pytest.raises(ValueError):
        kp.MLP([2, 4, 1], activation="relu")
    with pytest.raises(kp.Error, match="dtype"):
        net(np.array([["a", "b"]]))
    with pytest.raises(kp.Error, match="non-finite"):
        kp.Batch(x, [1.0, np.nan, 0, 0])
    with pytest.raises(kp.Error, match="shape"):
        kp.Batch(x, np.ones(3))
    with pytest.raises(kp.Error, match="non-finite"):
        net.set_params(np.full(theta.size, np.inf))
    with pytest.raises(kp.Error, match="parameter"):
        net.set_params(theta[:-1])
    assert np.array_equal(net.get_params(), theta)
    with pytest.raises(kp.Error, match="3-dimensional"):
        kp.loss(net, kp.Operator.poisson(3), kp.Batch(x, np.ones(4)))
    with pytest.raises(kp.Error, match="not a kfp_net"):
        kp.loss(op, op, kp.Batch(x, np.ones(4)))
    with pytest.raises(kp.Error, match="kappa"):
        kp.Operator.heat(1, kappa=-1)
    with pytest.raises(kp.Error, match="not symmetric"):
        kp.Operator.linear(2, C=[[1, 2], [0, 1]])
    closed = kp.MLP([2, 4, 1])
    closed.close()
    with pytest.raises(kp.Error, match="closed"):
        closed(x)
    with kp.MLP([2, 4, 1]) as scoped:
        assert scoped.num_params == 17
    with pytest.raises(kp.Error):
        scoped.get_params()
    with pytest.raises(kp.Error, match="num_threads"):
        kp.set_num_threads(0)
