"""Randomized Taylor mode: Operator.randomized, the poisson1000d_sq built-in, training and resume."""
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

import kfacpinn as kp


def test_randomized_operator_api():
    op = kp.Operator.poisson(20)
    assert op.estimator == {"kind": "exact"}
    assert op.randomized(probes=8, seed=3, distribution="gaussian") is op
    assert op.estimator == {"kind": "randomized", "probes": 8, "seed": 3, "distribution": "gaussian"}
    assert "randomized(probes=8" in repr(op)
    again = pickle.loads(pickle.dumps(op))
    assert again.estimator == op.estimator
    assert op.exact().estimator == {"kind": "exact"}
    with pytest.raises(kp.InputError, match="at least 1"):
        op.randomized(probes=0)
    with pytest.raises(kp.InputError, match="distribution"):
        op.randomized(probes=4, distribution="uniform")
    with pytest.raises(kp.InputError, match="indefinite"):
        kp.Operator.linear(2, C=np.diag([1.0, -1.0])).randomized(probes=4)
    assert op.estimator == {"kind": "exact"}
    # Fixed once an optimizer is created on the operator.
    op.randomized(probes=4)
    opt = kp.KFAC(kp.MLP([20, 8, 1]), op)
    with pytest.raises(kp.InputError, match="in use"):
        op.exact()
    assert op.estimator["kind"] == "randomized"
    del opt


def test_poisson1000d_trains_with_randomized_taylor_mode():
    prob = kp.Problem("poisson1000d_sq")
    assert prob.operator.estimator == {"kind": "randomized", "probes": 16, "seed": 0, "distribution": "rademacher"}
    net = kp.MLP([1000, 32, 1], seed=0)
    opt = kp.KFAC(net, prob.operator, damping=1e-10, ema=0.93, step="auto", damping_rule="fixed")
    log = kp.train(net, prob, opt, steps=20, resample_every=1, log_every=10, progress=False)
    assert log["relative_l2_error"][-1] < 0.5 * log["relative_l2_error"][0], log["relative_l2_error"]


def test_randomized_training_resumes_exactly(tmp_path):
    prob = kp.Problem("poisson5d_cos")
    prob.operator.randomized(probes=2, seed=4)

    def run(steps, **kw):
        net = kp.MLP(prob.network_widths("small"), seed=1)
        opt = kp.KFAC(net, prob.operator)
        log = kp.train(net, prob, opt, steps=steps, n_interior=50, n_boundary=20, resample_every=0, log_every=2,
                       progress=False, **kw)
        return log, net.get_params()

    whole, theta = run(6)
    path = str(tmp_path / "run.kfp")
    run(3, checkpoint=path)
    log, resumed = run(6, checkpoint=path, resume=True)
    assert np.array_equal(resumed, theta), np.max(np.abs(resumed - theta))
    assert np.array_equal(log["loss"], whole["loss"])


def test_high_dimensional_example_trains():
    example = pathlib.Path(__file__).resolve().parents[3] / "examples" / "high_dimensional.py"
    out = subprocess.run([sys.executable, str(example), "60"], capture_output=True, text=True, check=True).stdout
    errors = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("step")]
    assert len(errors) == 6 and errors[-1] < 0.3 * errors[0], out   # steps 0, 1, 15, 30, 45, 60
