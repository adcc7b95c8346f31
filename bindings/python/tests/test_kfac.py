"""KFAC through the Python binding."""
import pathlib

import numpy as np
import pytest

import kfacpinn as kp


def poisson_batch(n=200, m=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 2))
    f = 2 * np.pi**2 * np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])
    xb = rng.uniform(size=(m, 2))
    xb[np.arange(m), rng.integers(0, 2, m)] = rng.integers(0, 2, m)
    return kp.Batch(x, f, xb, np.zeros(m))


@pytest.mark.parametrize("step", ["line_search", "auto", 0.05])
def test_kfac_lowers_the_loss(step):
    net = kp.MLP([2, 16, 1], seed=1)
    opt = kp.KFAC(net, kp.Operator.poisson(2), damping=1e-8, ema=0.9, step=step)
    batch = poisson_batch()
    stats = [opt.step(batch) for _ in range(80)]
    assert set(stats[0]) == {"loss", "loss_interior", "loss_boundary", "step_size", "momentum", "update_norm",
                             "accepted", "damping"}
    assert stats[0]["loss"] == pytest.approx(kp.loss(net.__class__([2, 16, 1], seed=1), opt.op, batch), rel=1e-14)
    assert stats[-1]["loss"] < 2e-2 * stats[0]["loss"], (stats[0]["loss"], stats[-1]["loss"])
    # Every step moves, except KFAC* steps that its adaptive damping refuses (they do not move).
    refused = [s for s in stats if not s["accepted"]]
    assert step == "auto" or not refused
    assert len(refused) < 10 and all(s["update_norm"] == 0 and s["step_size"] == 0 for s in refused), refused


def test_options_round_trip_and_validation():
    net = kp.MLP([2, 8, 1], seed=2)
    op = kp.Operator.poisson(2)
    opt = kp.KFAC(net, op, damping=1e-6, ema=0.5, momentum=0.3, factor_period=2, inverse_period=4, min_damping=1e-9)
    assert (opt.get("damping"), opt.get("ema"), opt.get("momentum"), opt.get("min_damping")) == (1e-6, 0.5, 0.3, 1e-9)
    assert (opt.get("factor_period"), opt.get("inverse_period")) == (2, 4)
    for kwargs, message in [({"damping": 0.0}, "damping"), ({"damping": -1e-3}, "damping"),
                            ({"damping": float("nan")}, "damping"), ({"ema": 1.0}, "ema"), ({"ema": -0.5}, "ema"),
                            ({"step": "newton"}, "step rule"), ({"step": -1.0}, "learning rate"),
                            ({"inverse_period": 0}, "inverse_period"), ({"approximation": "diag"}, "approximation"),
                            ({"factor_init": "random"}, "initialisation"), ({"min_damping": 0.0}, "min_damping"),
                            ({"min_damping": float("inf")}, "min_damping")]:
        with pytest.raises(kp.Error, match=message):
            kp.KFAC(net, op, **kwargs)


def test_kfac_star_adapts_its_damping_unless_fixed():
    prob = kp.Problem("poisson2d_sin")
    batch = prob.sample(n_interior=60, n_boundary=20, seed=2)
    adaptive = kp.KFAC(kp.MLP([2, 8, 1], seed=3), prob.operator, step="auto", damping=1e-6)
    fixed = kp.KFAC(kp.MLP([2, 8, 1], seed=3), prob.operator, step="auto", damping=1e-6, damping_rule="fixed")
    assert adaptive.get("damping_rule") == "adaptive" and fixed.get("damping_rule") == "fixed"
    for _ in range(5):
        adaptive.step(batch)
        fixed.step(batch)
    assert adaptive.get("damping") != 1e-6 and fixed.get("damping") == 1e-6
    with pytest.raises(kp.InputError, match="unknown damping rule 'lm'"):
        kp.KFAC(kp.MLP([2, 8, 1]), prob.operator, damping_rule="lm")


def test_bad_steps_raise_and_change_nothing():
    net = kp.MLP([2, 8, 1], seed=3)
    opt = kp.KFAC(net, kp.Operator.poisson(2))
    batch = poisson_batch(50, 20)
    opt.step(batch)
    theta = net.get_params()
    with pytest.raises(kp.Error, match="3-dimensional"):
        opt.step(kp.Batch(np.random.rand(4, 3), np.ones(4)))
    with pytest.raises(kp.Error, match="not finite"):
        opt.step(kp.Batch(np.random.rand(4, 2), np.full(4, 1e200)))
    other = kp.MLP([2, 8, 1], seed=3)
    opt.net = other
    with pytest.raises(kp.Error, match="not the network"):
        opt.step(batch)
    opt.net = net
    assert np.array_equal(net.get_params(), theta)
    with pytest.raises(kp.Error, match="dimensional"):
        kp.KFAC(net, kp.Operator.poisson(3))
    opt.close()
    with pytest.raises(kp.Error, match="closed"):
        opt.step(batch)


def test_steps_in_a_forked_child_after_threaded_steps():
    # The library's worker threads do not exist in a fork's child: its jobs run inline there,
    # with the same numbers as the parent's threaded steps.
    import ast
    import os
    problem = kp.Problem("poisson2d_sin")
    batch = problem.sample(900, 120, seed=1)

    def losses():
        net = kp.MLP(problem.network_widths("small"), seed=0)
        opt = kp.KFAC(net, problem.operator, step="auto")
        return [opt.step(batch)["loss"] for _ in range(6)]

    threads = kp.get_num_threads()
    kp.set_num_threads(2)
    try:
        parent = losses()   # with a worker thread
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.close(read)
                os.write(write, repr(losses()).encode())
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        data = b""
        while chunk := os.read(read, 4096):
            data += chunk
        os.close(read)
        _, status = os.waitpid(pid, 0)
    finally:
        kp.set_num_threads(threads)
    assert status == 0, "the forked child failed"
    child = ast.literal_eval(data.decode())
    assert child == parent, f"child {child} vs parent {parent}"


def test_option_names_are_the_c_keys():
    net = kp.MLP([2, 8, 1], seed=1)
    opt = kp.KFAC(net, kp.Operator.poisson(2), factor_period=3, step="auto")
    options = opt.options()
    # The keywords are the C names: KFP_OPT_<NAME> in include/kfacpinn.h.
    header = (pathlib.Path(__file__).resolve().parents[3] / "include" / "kfacpinn.h").read_text()
    for name in options:
        assert f"KFP_OPT_{name.upper()} = " in header, name
    assert options["factor_period"] == 3 and options["step_rule"] == "auto" and options["damping"] == 1e-10
    info = opt.option_info()
    assert info["ema"]["default"] == 0.95 and info["ema"]["maximum_exclusive"] and not info["ema"]["minimum_exclusive"]
    assert info["approximation"]["choices"] == ["expand", "reduce"]
    assert set(info) == set(options)
    with pytest.raises(kp.InputError, match="has no option 'T_kfac'"):
        opt.set("T_kfac", 2)
    with pytest.raises(kp.InputError, match="takes a string"):
        opt.set("step_rule", 1)
