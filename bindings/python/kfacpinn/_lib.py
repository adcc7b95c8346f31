"""Loading libkfacpinn and declaring the C signatures (ctypes)."""
import ctypes
import os
import pathlib

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

c_double_p = ctypes.POINTER(ctypes.c_double)
c_int64_p = ctypes.POINTER(ctypes.c_int64)
handle = ctypes.c_void_p
handle_p = ctypes.POINTER(ctypes.c_void_p)
status = ctypes.c_int32
# kfp_train_callback: (record, count, user_data) -> nonzero stops.
train_callback = ctypes.CFUNCTYPE(ctypes.c_int32, c_double_p, ctypes.c_int64, ctypes.c_void_p)

_SIGNATURES = {
    "kfp_version_string": (ctypes.c_char_p, []),
    "kfp_version_number": (ctypes.c_int32, []),
    "kfp_status_string": (ctypes.c_char_p, [ctypes.c_int32]),
    "kfp_last_error": (ctypes.c_char_p, []),
    "kfp_set_num_threads": (status, [ctypes.c_int32]),
    "kfp_get_num_threads": (ctypes.c_int32, []),
    "kfp_net_create": (status, [c_int64_p, ctypes.c_int64, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_uint64, handle_p]),
    "kfp_net_free": (None, [handle]),
    "kfp_net_num_params": (status, [handle, c_int64_p]),
    "kfp_net_input_dim": (status, [handle, c_int64_p]),
    "kfp_net_widths": (status, [handle, c_int64_p, ctypes.c_int64, c_int64_p]),
    "kfp_net_get_params": (status, [handle, c_double_p, ctypes.c_int64]),
    "kfp_net_set_params": (status, [handle, c_double_p, ctypes.c_int64]),
    "kfp_net_eval": (status, [handle, c_double_p, ctypes.c_int64, ctypes.c_int64, c_double_p]),
    "kfp_net_derivatives": (status, [handle, c_double_p, ctypes.c_int64, ctypes.c_int64, c_double_p,
                                     c_double_p, c_double_p, c_double_p]),
    "kfp_operator_create_poisson": (status, [ctypes.c_int64, handle_p]),
    "kfp_operator_create_heat": (status, [ctypes.c_int64, ctypes.c_double, handle_p]),
    "kfp_operator_create_log_fokker_planck": (status, [ctypes.c_int64, handle_p]),
    "kfp_operator_create_linear": (status, [ctypes.c_int64, c_double_p, c_double_p, c_double_p,
                                            ctypes.c_double, c_double_p, handle_p]),
    "kfp_operator_free": (None, [handle]),
    "kfp_operator_dim": (status, [handle, c_int64_p]),
    "kfp_operator_residual": (status, [handle, handle, c_double_p, ctypes.c_int64, ctypes.c_int64,
                                       c_double_p, c_double_p]),
    "kfp_batch_create": (status, [c_double_p, c_double_p, ctypes.c_int64, c_double_p, c_double_p,
                                  ctypes.c_int64, ctypes.c_int64, handle_p]),
    "kfp_batch_free": (None, [handle]),
    "kfp_batch_sizes": (status, [handle, c_int64_p, c_int64_p, c_int64_p]),
    "kfp_loss": (status, [handle, handle, handle, c_double_p, c_double_p, c_double_p]),
    "kfp_loss_and_gradient": (status, [handle, handle, handle, c_double_p, c_double_p, ctypes.c_int64]),
    "kfp_optimizer_create_kfac": (status, [handle, handle, handle_p]),
    "kfp_optimizer_create_sgd": (status, [handle, handle, handle_p]),
    "kfp_optimizer_create_adam": (status, [handle, handle, handle_p]),
    "kfp_optimizer_create_lbfgs": (status, [handle, handle, handle_p]),
    "kfp_optimizer_create_engd": (status, [handle, handle, handle_p]),
    "kfp_optimizer_create_hessian_free": (status, [handle, handle, handle_p]),
    "kfp_optimizer_free": (None, [handle]),
    "kfp_optimizer_set_double": (status, [handle, ctypes.c_int32, ctypes.c_double]),
    "kfp_optimizer_set_int": (status, [handle, ctypes.c_int32, ctypes.c_int64]),
    "kfp_optimizer_set_string": (status, [handle, ctypes.c_int32, ctypes.c_char_p]),
    "kfp_optimizer_get_double": (status, [handle, ctypes.c_int32, c_double_p]),
    "kfp_optimizer_get_int": (status, [handle, ctypes.c_int32, c_int64_p]),
    "kfp_optimizer_step": (status, [handle, handle, handle, c_double_p, ctypes.c_int64]),
    "kfp_batch_data": (status, [handle, c_double_p, c_double_p, c_double_p, c_double_p]),
    "kfp_problem_create": (status, [ctypes.c_char_p, handle_p]),
    "kfp_problem_free": (None, [handle]),
    "kfp_problem_dim": (status, [handle, c_int64_p]),
    "kfp_problem_operator": (status, [handle, handle_p]),
    "kfp_problem_network_widths": (status, [handle, ctypes.c_char_p, c_int64_p, ctypes.c_int64, c_int64_p]),
    "kfp_problem_sample": (status, [handle, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64, ctypes.c_char_p, handle_p]),
    "kfp_problem_exact": (status, [handle, c_double_p, ctypes.c_int64, ctypes.c_int64, c_double_p]),
    "kfp_problem_errors": (status, [handle, handle, ctypes.c_int64, ctypes.c_uint64, c_double_p, c_double_p]),
    "kfp_train": (status, [handle, handle, handle, ctypes.c_int64, ctypes.c_double, ctypes.c_int64, ctypes.c_int64,
                           ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64, ctypes.c_char_p, train_callback,
                           ctypes.c_void_p, c_int64_p]),
}

for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes
