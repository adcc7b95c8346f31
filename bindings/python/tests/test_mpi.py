"""Data-parallel training on two MPI processes (tests/mpi/equivalence.py under mpirun)."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def mpirun(script, *args, ranks=2, timeout=900):
    """Runs `script` on `ranks` processes; a hang fails the test at `timeout` seconds."""
    assert shutil.which("mpirun"), "mpirun not found: scripts/setup.sh installs OpenMPI"
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), OMPI_MCA_rmaps_base_oversubscribe="1")
    command = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(ranks), sys.executable, str(script), *args]
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"{' '.join(command)} did not finish in {timeout} s (a rank waits for another):\n{expired.stdout}")


def test_two_ranks_take_the_steps_of_one_process_with_all_points():
    run = mpirun(HERE / "mpi" / "equivalence.py")
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("ok  ") >= 42, run.stdout


def test_the_example_trains_on_two_ranks():
    run = mpirun(HERE.parent.parent.parent / "examples" / "mpi_train.py", "30", "100")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "parameters identical on all ranks: yes" in run.stdout, run.stdout


def test_set_communicator_takes_an_mpi_communicator_or_none():
    import kfacpinn as kp
    net = kp.MLP([2, 8, 1], seed=1)
    opt = kp.KFAC(net, kp.Operator.poisson(2))
    with pytest.raises(kp.InputError, match="MPIComm"):
        opt.set_communicator(42)
    opt.set_communicator(None)
    assert opt.rank == (0, 1)
