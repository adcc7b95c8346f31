"""The baseline optimizers through the Python binding."""
import numpy as np
import pytest

import kfacpinn as kp
from test_kfac import poisson_batch

BASELINES = {
    "SGD": dict(lr=0.01, momentum=0.9),
    "Adam": dict(lr=0.01),
    "LBFGS": dict(lr=0.5, history=20),
    "ENGD": dict(damping=1e-8),
    "HessianFree": dict(damping=1.0, max_cg_iterations=100),
}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_lowers_the_loss(name):
    net = kp.MLP([2, 16, 1], seed=1)
    opt = getattr(kp, name)(net, kp.Operator.poisson(2), **BASELINES[name])
    batch = poisson_batch()
    stats = [opt.step(batch) for _ in range(60)]
    assert set(stats[0]) == {"loss", "loss_interior", "loss_boundary", "step_size", "momentum", "update_norm",
                             "accepted", "damping"}
    assert stats[-1]["loss"] < 0.5 * stats[0]["loss"], (name, stats[0]["loss"], stats[-1]["loss"])


def test_adam_first_step_by_hand():
    net = kp.MLP([2, 8, 1], seed=2)
    op = kp.Operator.poisson(2)
    batch = poisson_batch(50, 20)
    theta = net.get_params()
    _, g = kp.loss_and_gradient(net, op, batch)
    kp.Adam(net, op, lr=0.1, beta1=0.5, beta2=0.75, epsilon=1e-3).step(batch)
    # t = 1: m̂ = g, v̂ = g², θ ← θ − lr g / (|g| + ε).
    expected = theta - 0.1 * g / (np.abs(g) + 1e-3)
    np.testing.assert_allclose(net.get_params(), expected, rtol=0, atol=1e-15)


def test_engd_variants_agree_on_a_small_problem():
    # With moderate damping the full and the sample-space (Woodbury) forms are the same matrix identity.
    steps = {}
    for variant in ("full", "woodbury"):
        net = kp.MLP([2, 6, 1], seed=3)
        theta = net.get_params()
        kp.ENGD(net, kp.Operator.poisson(2), damping=1e-3, variant=variant, step=1.0).step(poisson_batch(30, 10))
        steps[variant] = net.get_params() - theta
    np.testing.assert_allclose(steps["woodbury"], steps["full"], rtol=1e-8, atol=1e-10)


def test_baseline_options_are_validated():
    net = kp.MLP([2, 8, 1], seed=4)
    op = kp.Operator.poisson(2)
    for cls, kwargs, message in [(kp.SGD, {"lr": -1.0}, "learning rate"), (kp.SGD, {"momentum": 1.0}, "momentum"),
                                 (kp.Adam, {"beta1": 1.0}, "beta1"), (kp.Adam, {"epsilon": 0.0}, "epsilon"),
                                 (kp.LBFGS, {"history": 0}, "history"), (kp.LBFGS, {"max_evaluations": 2.5}, "integer"),
                                 (kp.ENGD, {"variant": "dense"}, "variant"), (kp.ENGD, {"damping": float("nan")}, "damping"),
                                 (kp.ENGD, {"variant": "woodbury", "ema": 0.5}, "woodbury"),
                                 (kp.HessianFree, {"max_cg_iterations": 0}, "max_cg_iterations")]:
        with pytest.raises(kp.Error, match=message):
            cls(net, op, **kwargs)
    opt = kp.LBFGS(net, op, history=7)
    assert opt.get("history") == 7 and opt.get("learning_rate") == 1.0


def test_engd_size_limit_is_a_clear_error():
    net = kp.MLP([2, 16, 16, 1], seed=5)
    opt = kp.ENGD(net, kp.Operator.poisson(2), max_parameters=300)
    theta = net.get_params()
    with pytest.raises(kp.Error, match="337 × 337 Gramian"):
        opt.step(poisson_batch(20, 5))
    assert np.array_equal(net.get_params(), theta)


def test_spring_options_step_and_checkpoint():
    prob = kp.Problem("poisson2d_sin")
    net = kp.MLP([2, 8, 1], seed=1)
    opt = kp.SPRING(net, prob.operator, step=0.5, norm_constraint=1e-4)
    assert (opt.get("momentum"), opt.get("damping"), opt.get("step_rule"), opt.get("learning_rate")) == (0.99, 1e-3, "fixed", 0.5)
    batch = prob.sample(n_interior=40, n_boundary=12, seed=2)
    before = net.get_params()
    opt.step(batch)
    assert np.linalg.norm(net.get_params() - before) == pytest.approx(1e-2, rel=1e-10)   # capped at sqrt(1e-4)
    # A checkpoint continues bit for bit.
    twin = kp.MLP([2, 8, 1], seed=1)
    twin.set_params(net.get_params())
    loaded = kp._optimizer_from_bytes(opt.to_bytes(), twin, prob.operator)
    assert isinstance(loaded, kp.SPRING)
    for _ in range(3):
        opt.step(batch)
        loaded.step(batch)
    np.testing.assert_array_equal(net.get_params(), twin.get_params())
    with pytest.raises(kp.InputError, match="momentum"):
        kp.SPRING(net, prob.operator, momentum=1.0)


def test_nystrom_variants():
    prob = kp.Problem("poisson2d_sin")
    batch = prob.sample(n_interior=30, n_boundary=10, seed=3)
    exact, sketched = kp.MLP([2, 8, 1], seed=2), kp.MLP([2, 8, 1], seed=2)
    kp.SPRING(exact, prob.operator, step=1.0, norm_constraint=1e30).step(batch)
    kp.SPRING(sketched, prob.operator, step=1.0, norm_constraint=1e30, variant="nystrom", rank=40).step(batch)
    np.testing.assert_allclose(sketched.get_params(), exact.get_params(), rtol=1e-6)   # k = M: the exact kernel (of rank <= 33 here)
    engd = kp.ENGD(kp.MLP([2, 8, 1], seed=2), prob.operator, variant="nystrom", rank=41)
    with pytest.raises(kp.InputError, match="rank 41"):
        engd.step(batch)
