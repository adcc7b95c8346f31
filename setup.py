"""Builds the shared libraries into the kfacpinn package (configuration: pyproject.toml).

`build_py` builds libkfacpinn.so with the Swift runtime linked in (`swift build -c release
--product kfacpinn -Xswiftc -static-stdlib`, in .build-dist: the wheel needs no Swift toolchain,
only OpenBLAS and LAPACKE) and copies it into the package, and libkfacpinn_mpi.so (bindings/mpi)
when OpenMPI's mpicc is there; the distribution counts as binary, so a wheel is tagged for this
platform. The version is the library's (Sources/KFACPINN/Version.swift).
"""
import pathlib
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = pathlib.Path(__file__).resolve().parent


def version():
    text = (ROOT / "Sources" / "KFACPINN" / "Version.swift").read_text()
    return ".".join(re.search(rf"static let {k} = (\d+)", text).group(1) for k in ("major", "minor", "patch"))


class BuildWithLibraries(build_py):
    def run(self):
        super().run()
        subprocess.run(["swift", "build", "-c", "release", "--product", "kfacpinn", "-Xswiftc", "-static-stdlib",
                        "--scratch-path", ".build-dist"], cwd=ROOT, check=True)
        target = pathlib.Path(self.build_lib) / "kfacpinn"
        target.mkdir(parents=True, exist_ok=True)
        library = ROOT / ".build-dist" / "release" / "libkfacpinn.so"
        shutil.copy2(library, target / "libkfacpinn.so")
        if shutil.which("mpicc"):
            subprocess.run([str(ROOT / "scripts" / "build-mpi.sh"), "--lib", str(library.parent),
                            "--output", str(target / "libkfacpinn_mpi.so")], check=True)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(version=version(), cmdclass={"build_py": BuildWithLibraries}, distclass=BinaryDistribution)
