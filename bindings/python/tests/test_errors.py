"""The error model: out-of-memory requests raise kp.OutOfMemoryError (the process goes on), malformed
integers are refused, divergence raises kp.DivergenceError and is undone."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kfacpinn as kp

# Runs in a child process under a 4 GiB address-space limit (as `ulimit -v` would set).
OUT_OF_MEMORY = textwrap.dedent("""
    import resource
    import kfacpinn as kp
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    op = kp.Operator.poisson(2)
    batch = kp.Problem("poisson2d_sin").sample(n_interior=100, n_boundary=20)
    cases = {
        "kfac": lambda: kp.KFAC(kp.MLP([2, 100000, 1]), op),
        "sample": lambda: kp.Problem("poisson2d_sin").sample(n_interior=2 * 10**9),
        "engd": lambda: kp.ENGD(kp.MLP([2, 30000, 1]), op, max_parameters=10**9).step(batch),
    }
    for name, case in cases.items():
        try:
            case()
            print(name, "no error")
        except kp.OutOfMemoryError as e:
            assert isinstance(e, MemoryError) and "bytes" in str(e), e
            print(name, "out of memory")
    net = kp.MLP([2, 8, 1], seed=0)
    opt = kp.KFAC(net, op)
    opt.step(batch)
    print("alive")
""")


def test_out_of_memory_is_an_error_not_an_abort():
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(kp.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", OUT_OF_MEMORY], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split("\n")
    for name in ("kfac", "sample", "engd"):
        assert f"{name} out of memory" in lines, run.stdout
    assert "alive" in lines, run.stdout


def test_malformed_integers_are_refused():
    with pytest.raises(kp.InputError, match="integer"):
        kp.MLP([2, 16.7, 1])
    with pytest.raises(kp.InputError, match="integer"):
        kp.MLP([2, 16.0, 1])
    with pytest.raises(kp.InputError, match="2147483647"):
        kp.MLP([2, 2**63, 1])
    with pytest.raises(kp.InputError, match="integer"):
        kp.MLP([2, True, 1])
    with pytest.raises(kp.InputError, match="1024"):
        kp.set_num_threads(2**31 - 1)
    threads = kp.get_num_threads()
    kp.set_num_threads(threads)
    assert kp.get_num_threads() == threads


def test_a_failing_run_keeps_its_history_csv_and_checkpoint(tmp_path):
    # The source turns NaN from the fourth batch on: step 4 fails (its loss is not finite).
    calls = []

    def source(x):
        calls.append(1)
        return np.full(len(x), np.nan if len(calls) > 4 else 1.0)

    op = kp.Operator.poisson(2)
    prob = kp.Problem.custom(2, op, source, kp.Box([0, 0], [1, 1]), [kp.DirichletCondition("all", 0.0)],
                             exact=lambda x: np.zeros(len(x)))
    net = kp.MLP([2, 8, 1], seed=0)
    opt = kp.KFAC(net, op)
    csv, checkpoint = tmp_path / "log.csv", tmp_path / "run.kfp"
    with pytest.raises(kp.Error) as failure:
        kp.train(net, prob, opt, steps=10, n_interior=30, n_boundary=12, resample_every=1, log_every=2,
                 progress=False, csv=csv, checkpoint=checkpoint)
    history = failure.value.history
    assert list(history["step"]) == [0, 1, 2, 3], history["step"]
    rows = open(csv).read().strip().split("\n")
    assert len(rows) == 1 + 4 and rows[-1].startswith("3"), rows
    # The checkpoint holds the state after step 3: the network's parameters now.
    theta = net.get_params()
    resumed_net = kp.MLP([2, 8, 1], seed=0)
    resumed_opt = kp.KFAC(resumed_net, op)
    with pytest.raises(kp.Error):
        kp.train(resumed_net, prob, resumed_opt, steps=10, n_interior=30, n_boundary=12, resample_every=1,
                 log_every=2, progress=False, checkpoint=checkpoint, resume=True)
    assert np.array_equal(resumed_net.get_params(), theta)


def test_steps_report_the_damping_they_used():
    prob = kp.Problem("poisson2d_sin")
    net = kp.MLP([2, 8, 1], seed=0)
    stats = kp.KFAC(net, prob.operator, damping=1e-7).step(prob.sample(n_interior=30, n_boundary=12))
    assert stats["damping"] == 1e-7


def diverging_kfac(net, op, **options):
    """KFAC with a fixed step of 10 and no damping to speak of: the loss grows by orders of magnitude."""
    return kp.KFAC(net, op, step=10.0, damping=1e-14, **options)


def test_divergence_is_reported_and_undone():
    prob = kp.Problem("poisson2d_sin")
    batch = prob.sample(n_interior=60, n_boundary=20, seed=1)
    net = kp.MLP([2, 16, 16, 1], seed=1)
    opt = diverging_kfac(net, prob.operator)
    assert opt.get("divergence_factor") == 1e12 and opt.option_info()["divergence_factor"]["default"] == 1e12
    starts = []
    with pytest.raises(kp.DivergenceError, match="back before the previous step"):
        for _ in range(50):
            starts.append(opt.step(batch)["loss"])
    assert isinstance(kp.DivergenceError("x"), ArithmeticError)
    # Back at the parameters the last successful step started from; they are finite.
    assert np.isfinite(net.get_params()).all()
    assert kp.loss(net, prob.operator, batch) == starts[-1], (starts, kp.loss(net, prob.operator, batch))
    # The factor is an option: infinity lets the loss grow until it is not finite.
    with pytest.raises(kp.InputError, match="greater than 1"):
        opt.set("divergence_factor", 0.5)
    opt.set("divergence_factor", float("inf"))
    assert opt.get("divergence_factor") == float("inf")


def test_a_diverging_run_keeps_its_history_and_the_run_before_the_undone_step(tmp_path):
    prob = kp.Problem("poisson2d_sin")
    settings = dict(steps=50, n_interior=60, n_boundary=20, log_every=1, progress=False)
    csv, checkpoint = tmp_path / "log.csv", tmp_path / "run.kfp"
    net = kp.MLP([2, 16, 16, 1], seed=1)
    with pytest.raises(kp.DivergenceError) as failure:
        kp.train(net, prob, diverging_kfac(net, prob.operator), csv=csv, checkpoint=checkpoint, **settings)
    history = failure.value.history
    steps = list(history["step"])
    assert steps == list(range(len(steps))) and 2 <= len(steps) < 50, steps
    assert len(open(csv).read().strip().split("\n")) == 1 + len(steps)
    theta = net.get_params()
    # The checkpoint holds the run before the undone step: resumed, it takes that step again and
    # diverges in the same way, ending at the same parameters.
    resumed = kp.MLP([2, 16, 16, 1], seed=1)
    with pytest.raises(kp.DivergenceError) as again:
        kp.train(resumed, prob, diverging_kfac(resumed, prob.operator), checkpoint=checkpoint, resume=True, **settings)
    assert np.array_equal(resumed.get_params(), theta)
    assert list(again.value.history["step"])[-1] == steps[-1]
