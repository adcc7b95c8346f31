"""Loading libkfacpinn and declaring the C signatures (ctypes)."""
import ctypes
import os
import pathlib

from . import _abi

_HERE = pathlib.Path(__file__).resolve().parent


def _candidates():
    env = os.environ.get("KFACPINN_LIBRARY")
    if env:
        yield pathlib.Path(env)
        return
    yield _HERE / "libkfacpinn.so"
    # The package build folder of a source checkout: bindings/python/kfacpinn -> repository root.
    root = _HERE.parent.parent.parent
    yield root / ".build" / "release" / "libkfacpinn.so"
    yield root / ".build" / "debug" / "libkfacpinn.so"


def _load():
    tried = []
    for path in _candidates():
        tried.append(str(path))
        if path.exists():
            return ctypes.CDLL(str(path))
    raise ImportError(
        "libkfacpinn.so not found (tried: " + ", ".join(tried) + "); build it with "
        "`swift build -c release` or set KFACPINN_LIBRARY to its path")


lib = _load()


def mpi_lib():
    """libkfacpinn_mpi.so (a kfp_communicator over MPI): KFACPINN_MPI_LIBRARY, else next to
    libkfacpinn.so. Import mpi4py's MPI first (it loads and initialises MPI)."""
    global _mpi
    if _mpi is None:
        path = os.environ.get("KFACPINN_MPI_LIBRARY") or str(pathlib.Path(lib._name).resolve().parent / "libkfacpinn_mpi.so")
        if not pathlib.Path(path).exists():
            raise ImportError(f"{path} not found: build it with scripts/build-mpi.sh (OpenMPI: scripts/setup.sh --mpi)")
        m = ctypes.CDLL(path)
        m.kfp_comm_from_mpi_fortran.restype = ctypes.c_int32
        m.kfp_comm_from_mpi_fortran.argtypes = [ctypes.c_int64, ctypes.POINTER(_abi.Communicator)]
        m.kfp_comm_free_mpi.restype = None
        m.kfp_comm_free_mpi.argtypes = [ctypes.POINTER(_abi.Communicator)]
        _mpi = m
    return _mpi


_mpi = None

c_double_p = ctypes.POINTER(ctypes.c_double)
c_int64_p = ctypes.POINTER(ctypes.c_int64)

for _name, (_restype, _argtypes) in _abi.SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes
