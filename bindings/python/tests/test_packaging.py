"""The binding's version checks (the install paths themselves: scripts/check-install.sh)."""
import os
import pathlib
import shutil
import subprocess
import sys

import kfacpinn as kp
from kfacpinn import _abi


def test_the_version_is_the_librarys():
    assert kp.__version__ == _abi.VERSION
    assert kp.__version__.split(".")[0] == str(_abi.VERSION_MAJOR)


def test_a_library_of_another_major_version_is_refused(tmp_path):
    package = tmp_path / "kfacpinn"
    shutil.copytree(pathlib.Path(kp.__file__).parent, package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    abi = package / "_abi.py"
    abi.write_text(abi.read_text().replace(f"VERSION_MAJOR = {_abi.VERSION_MAJOR}\n", "VERSION_MAJOR = 99\n"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path), KFACPINN_LIBRARY=kp._lib.lib._name)
    run = subprocess.run([sys.executable, "-c", "import kfacpinn"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode != 0
    assert f"libkfacpinn {kp.__version__} found, this binding needs ABI version 99.x" in run.stderr, run.stderr
