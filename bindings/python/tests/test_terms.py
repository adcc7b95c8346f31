"""Batches built from loss terms (kp.Interior, kp.Dirichlet, kp.Observation)."""
import numpy as np
import pytest

import kfacpinn as kp


def terms(seed=0):
    rng = np.random.default_rng(seed)
    return [kp.Interior(rng.random((7, 2)), rng.random(7), weight=2.0),
            kp.Dirichlet(rng.random((3, 2)), rng.random(3), weight=0.5),
            kp.Observation(rng.random((4, 2)), rng.random(4), weight=3.0)]


def test_loss_of_terms_matches_its_definition():
    net, op = kp.MLP([2, 8, 1], seed=2), kp.Operator.poisson(2)
    ts = terms()
    batch = kp.Batch.from_terms(ts)
    assert [type(t) for t in batch.terms] == [kp.Interior, kp.Dirichlet, kp.Observation]
    np.testing.assert_array_equal(batch.terms[2].values, ts[2].values)
    # Σ_t w_t/(2N_t) Σ r², residuals from the operator and the network directly.
    residuals = [op.residual(net, ts[0].x, ts[0].values), net(ts[1].x) - ts[1].values, net(ts[2].x) - ts[2].values]
    parts = [t.weight / (2 * len(r)) * np.sum(r ** 2) for t, r in zip(ts, residuals)]
    total, interior, other = kp.loss(net, op, batch, terms=True)
    assert total == pytest.approx(sum(parts), rel=1e-14)
    assert interior == pytest.approx(parts[0], rel=1e-14) and other == pytest.approx(parts[1] + parts[2], rel=1e-14)


def test_two_terms_equal_the_plain_batch_bit_for_bit():
    rng = np.random.default_rng(3)
    x, f, xb, g = rng.random((9, 2)), rng.random(9), rng.random((4, 2)), rng.random(4)
    net, op = kp.MLP([2, 6, 1], seed=1), kp.Operator.poisson(2)
    plain, built = kp.Batch(x, f, xb, g), kp.Batch.from_terms([kp.Interior(x, f), kp.Dirichlet(xb, g)])
    assert kp.loss_and_gradient(net, op, plain)[0] == kp.loss_and_gradient(net, op, built)[0]
    np.testing.assert_array_equal(kp.loss_and_gradient(net, op, plain)[1], kp.loss_and_gradient(net, op, built)[1])


@pytest.mark.parametrize("make", [lambda n, o: kp.KFAC(n, o), lambda n, o: kp.KFAC(n, o, step="auto"),
                                  lambda n, o: kp.SGD(n, o, lr=1e-2), lambda n, o: kp.Adam(n, o, lr=1e-2),
                                  lambda n, o: kp.LBFGS(n, o), lambda n, o: kp.ENGD(n, o),
                                  lambda n, o: kp.ENGD(n, o, variant="woodbury"), lambda n, o: kp.HessianFree(n, o)])
def test_every_optimizer_lowers_a_loss_of_terms(make):
    net, op = kp.MLP([2, 8, 1], seed=4), kp.Operator.poisson(2)
    batch = kp.Batch.from_terms(terms(1))
    opt = make(net, op)
    first = opt.step(batch)["loss"]
    for _ in range(15):
        last = opt.step(batch)["loss"]
    assert last < first


def test_bad_terms_are_clear_errors():
    x = np.random.rand(3, 2)
    with pytest.raises(kp.InputError, match=r"term 1 \(observation\) observations y"):
        kp.Batch.from_terms([kp.Interior(x, np.ones(3)), kp.Observation(x, [1.0, np.nan, 2.0])])
    with pytest.raises(kp.InputError, match="weight must be finite and non-negative"):
        kp.Batch.from_terms([kp.Interior(x, np.ones(3)), kp.Dirichlet(x, np.ones(3), weight=-1)])
    with pytest.raises(kp.InputError, match="3-dimensional points"):
        kp.Batch.from_terms([kp.Interior(x, np.ones(3)), kp.Dirichlet(np.ones((2, 3)), np.ones(2))])
    with pytest.raises(kp.InputError, match="shape"):
        kp.Interior(x, np.ones(4))
    with pytest.raises(kp.InputError, match="non-empty list"):
        kp.Batch.from_terms([])
    only_data = kp.Batch.from_terms([kp.Observation(x, np.ones(3))])
    with pytest.raises(kp.InputError, match="no interior point"):
        kp.loss(kp.MLP([2, 4, 1]), kp.Operator.poisson(2), only_data)


def unit(rng, n, d=2):
    v = rng.standard_normal((n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_neumann_and_robin_terms_match_their_definition():
    rng = np.random.default_rng(5)
    net, op = kp.MLP([2, 8, 1], seed=2), kp.Operator.poisson(2)
    xi, xn, xr = rng.random((6, 2)), rng.random((3, 2)), rng.random((4, 2))
    nn, nr = unit(rng, 3), unit(rng, 4)
    g_n, g_r, a, b = rng.random(3), rng.random(4), rng.random(4) + 0.5, rng.random(4)
    batch = kp.Batch.from_terms([kp.Interior(xi, np.ones(6)), kp.Neumann(xn, g_n, nn, weight=2.0),
                                 kp.Robin(xr, g_r, nr, a, b)])
    np.testing.assert_array_equal(batch.terms[2].normals, nr)
    np.testing.assert_array_equal(batch.terms[2].b, b)
    # ∂u/∂n from the Taylor-mode gradient, independently of the directional pass.
    u_n, grad_n, _ = net.derivatives(xn)
    u_r, grad_r, _ = net.derivatives(xr)
    r_n = np.sum(grad_n * nn, axis=1) - g_n
    r_r = a * u_r + b * np.sum(grad_r * nr, axis=1) - g_r
    expected = 2.0 / 6 * np.sum(r_n ** 2) + 1.0 / 8 * np.sum(r_r ** 2)
    total, interior, other = kp.loss(net, op, batch, terms=True)
    assert other == pytest.approx(expected, rel=1e-13)
    opt = kp.KFAC(net, op, step="auto")
    first = opt.step(batch)["loss"]
    for _ in range(10):
        last = opt.step(batch)["loss"]
    assert last < first


def test_bad_conditions_are_clear_errors():
    x = np.random.rand(2, 2)
    interior = kp.Interior(x, np.ones(2))
    with pytest.raises(kp.InputError, match=r"term 1 \(neumann\): the normal of point 1 has length"):
        kp.Batch.from_terms([interior, kp.Neumann(x, np.zeros(2), [[1.0, 0.0], [0.5, 0.5]])])
    with pytest.raises(kp.InputError, match="a = b = 0 at point 0"):
        kp.Batch.from_terms([interior, kp.Robin(x, np.zeros(2), [[1.0, 0.0], [0.0, 1.0]], 0.0, [0.0, 1.0])])
    with pytest.raises(kp.InputError, match="shape"):
        kp.Neumann(x, np.zeros(2), [[1.0, 0.0]])
