"""Checkpoints from Python: save and load, pickling, exact resume of kp.train in a new process, and
damaged or mismatched files refused with kp.CorruptError."""
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kfacpinn as kp

OPTIMIZERS = {
    "kfac": lambda net, op: kp.KFAC(net, op),
    "kfac*": lambda net, op: kp.KFAC(net, op, step="auto"),
    "sgd": lambda net, op: kp.SGD(net, op, lr=1e-2, momentum=0.9),
    "adam": lambda net, op: kp.Adam(net, op),
    "lbfgs": lambda net, op: kp.LBFGS(net, op),
    "engd": lambda net, op: kp.ENGD(net, op),
    "hessian_free": lambda net, op: kp.HessianFree(net, op),
}

# The first part of a run, in a separate interpreter: 4 steps with a checkpoint.
FIRST_PART = textwrap.dedent("""
    import sys
    import kfacpinn as kp
    sys.path.insert(0, sys.argv[4])
    from test_checkpoint import OPTIMIZERS, run
    run(sys.argv[1], int(sys.argv[2]), 4, checkpoint=sys.argv[3])
""")


def run(name, resample_every, steps, checkpoint=None, resume=False):
    prob = kp.Problem("poisson2d_sin")
    net = kp.MLP([2, 12, 12, 1], seed=3)
    opt = OPTIMIZERS[name](net, prob.operator)
    log = kp.train(net, prob, opt, steps=steps, n_interior=60, n_boundary=20, resample_every=resample_every,
                   log_every=3, progress=False, checkpoint=checkpoint, checkpoint_every=2 if checkpoint else 0,
                   resume=resume)
    return log, net.get_params()


def environment():
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(kp.__file__)))
    return dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))


@pytest.mark.parametrize("resample_every", [0, 1])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_in_a_new_process_is_exact(tmp_path, name, resample_every):
    whole_log, whole_theta = run(name, resample_every, 7)
    path = str(tmp_path / "run.kfp")
    first = subprocess.run([sys.executable, "-c", FIRST_PART, name, str(resample_every), path,
                            os.path.dirname(os.path.abspath(__file__))], capture_output=True, text=True, env=environment())
    assert first.returncode == 0, first.stderr
    log, theta = run(name, resample_every, 7, checkpoint=path, resume=True)
    assert np.array_equal(theta, whole_theta), np.max(np.abs(theta - whole_theta))
    for column in kp.LOG_COLUMNS:
        if column != "seconds":
            assert np.array_equal(log[column], whole_log[column], equal_nan=True), column


def test_save_load_and_pickle_continue_exactly(tmp_path):
    prob = kp.Problem("poisson2d_sin")
    batches = [prob.sample(n_interior=40, n_boundary=12, seed=k) for k in range(6)]
    reference = kp.MLP([2, 10, 1], seed=5)
    reference_opt = kp.KFAC(reference, prob.operator, momentum=0.5, step=0.1)
    for b in batches:
        reference_opt.step(b)
    net = kp.MLP([2, 10, 1], seed=5)
    opt = kp.KFAC(net, prob.operator, momentum=0.5, step=0.1)
    for b in batches[:3]:
        opt.step(b)
    net.save(tmp_path / "net.kfp")
    opt.save(tmp_path / "opt.kfp")
    loaded = kp.MLP.load(tmp_path / "net.kfp")
    assert loaded.widths == [2, 10, 1] and loaded.activation == "tanh"
    loaded_opt = kp.load_optimizer(tmp_path / "opt.kfp", loaded, prob.operator)
    assert isinstance(loaded_opt, kp.KFAC) and loaded_opt.get("momentum") == 0.5
    net2, opt2 = pickle.loads(pickle.dumps((net, opt)))
    for b in batches[3:]:
        loaded_opt.step(b)
        opt2.step(b)
    assert np.array_equal(loaded.get_params(), reference.get_params())
    assert np.array_equal(net2.get_params(), reference.get_params())


def test_damaged_or_mismatched_checkpoints_are_refused(tmp_path):
    net = kp.MLP([2, 6, 1], seed=1)
    op = kp.Operator.poisson(2)
    opt = kp.Adam(net, op)
    data = net.to_bytes()
    for n in (0, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(kp.CorruptError):
            kp.MLP.from_bytes(data[:n])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 4
    with pytest.raises(kp.CorruptError, match="checksum"):
        kp.MLP.from_bytes(bytes(flipped))
    opt.save(tmp_path / "opt.kfp")
    with pytest.raises(kp.CorruptError, match="widths"):
        kp.load_optimizer(tmp_path / "opt.kfp", kp.MLP([2, 7, 1]), op)
    with pytest.raises(kp.CorruptError, match="operator"):
        kp.load_optimizer(tmp_path / "opt.kfp", net, kp.Operator.heat(1))
    with pytest.raises(kp.CorruptError, match="an optimizer"):
        net.save(tmp_path / "net.kfp")
        kp.load_optimizer(tmp_path / "net.kfp", net, op)
    with pytest.raises(kp.FileError):
        kp.MLP.load(tmp_path / "missing.kfp")
    prob = kp.Problem("poisson2d_sin")
    kp.train(net, prob, opt, steps=2, n_interior=20, n_boundary=8, progress=False, checkpoint=tmp_path / "run.kfp")
    with pytest.raises(kp.InputError, match="resample_every"):
        kp.train(net, prob, opt, steps=4, n_interior=20, n_boundary=8, resample_every=1, progress=False,
                 checkpoint=tmp_path / "run.kfp", resume=True)
