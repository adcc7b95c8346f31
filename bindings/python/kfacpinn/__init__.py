"""kfacpinn: physics-informed neural networks trained with KFAC.

A thin ctypes binding over libkfacpinn (see include/kfacpinn.h). Arrays are
numpy float64; points are (N, d) row-major; per-point scalars are (N,).
"""
import ctypes
import operator
import sys

import numpy as np

from . import _abi
from ._abi import (OK, ERROR_NULL_POINTER as NULL_POINTER, ERROR_INVALID_ARGUMENT as INVALID_ARGUMENT,
                   ERROR_DIMENSION_MISMATCH as DIMENSION_MISMATCH, ERROR_NUMERICAL as NUMERICAL, LOG_COLUMNS)
from ._lib import lib, c_double_p, c_int64_p

__all__ = ["Error", "InputError", "OutOfMemoryError", "CorruptError", "DivergenceError", "FileError", "MLP", "Operator", "Batch", "Interior", "Dirichlet", "Observation", "Neumann",
           "Robin", "Box", "Ball", "Points", "DirichletCondition", "NeumannCondition", "RobinCondition", "InitialCondition", "loss", "loss_and_gradient", "KFAC", "SGD", "Adam",
           "LBFGS", "ENGD", "HessianFree", "SPRING", "Problem", "Trainable", "train", "load_optimizer", "LOG_COLUMNS",
           "MPIComm", "CommunicationError",
           "set_num_threads", "get_num_threads", "__version__"]

__version__ = lib.kfp_version_string().decode()
if __version__.split(".")[0] != str(_abi.VERSION_MAJOR):
    raise ImportError(f"libkfacpinn {__version__} found, this binding needs ABI version {_abi.VERSION_MAJOR}.x")


class Error(Exception):
    """A kfacpinn call failed; `status` is the kfp_status code, the message the library's detail."""

    def __init__(self, message, status=INVALID_ARGUMENT):
        super().__init__(message)
        self.status = status


class InputError(Error, ValueError):
    """The input was at fault (shape, dtype, NaN, range, closed handle)."""


class OutOfMemoryError(Error, MemoryError):
    """Memory sized by the input could not be allocated; the message names the bytes. Nothing changed."""


class CorruptError(Error, ValueError):
    """A checkpoint is truncated, damaged, of another kind or does not fit the given network/operator."""


class DivergenceError(Error, ArithmeticError):
    """Training diverged (non-finite loss, or growth beyond the divergence factor); the step was undone."""


class FileError(Error, OSError):
    """A file could not be opened, read or written."""


class CommunicationError(Error, RuntimeError):
    """The processes of a data-parallel run could not exchange their sums, or their setups differ."""


_ERRORS = {_abi.ERROR_NUMERICAL: Error, _abi.ERROR_OUT_OF_MEMORY: OutOfMemoryError,
           _abi.ERROR_CORRUPT: CorruptError, _abi.ERROR_DIVERGED: DivergenceError, _abi.ERROR_IO: FileError,
           _abi.ERROR_COMMUNICATION: CommunicationError}


def _check(status):
    if status != OK:
        message = lib.kfp_last_error().decode()
        raise _ERRORS.get(status, InputError)(message, status)


def _integer(value, name, low, high):
    """`value` as a Python int in [low, high]; floats (even 16.0), strings and the like are refused."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise InputError(f"{name} must be an integer, got {value!r}") from None
    if not low <= v <= high:
        raise InputError(f"{name} is {v}; it must be between {low} and {high}")
    return v


def _integers(values, name, low, high):
    """A 1-d sequence of integers, each checked by `_integer`."""
    a = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if a.ndim != 1:
        raise InputError(f"{name} must be a list of integers, got shape {a.shape}")
    return [_integer(v, f"{name}[{i}]", low, high) for i, v in enumerate(a.tolist() if a.dtype.kind in "iu" else a)]


def _ptr(a):
    return a.ctypes.data_as(c_double_p) if a is not None else None


def _array(values, name, shape=None):
    """A C-contiguous float64 copy/view of real numeric input, with an optional shape check."""
    a = np.asarray(values)
    if a.dtype.kind not in "fiu":
        raise InputError(f"{name} must hold real numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    if shape is not None:
        if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
            want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
            raise InputError(f"{name} has shape {a.shape}, expected {want}", DIMENSION_MISMATCH)
    return a


def _points(x, name="x"):
    a = _array(x, name)
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-d array of shape (N, d), got shape {a.shape}", DIMENSION_MISMATCH)
    return a


class _Handle:
    """Owns one library handle; freed by close(), the context manager or the garbage collector."""

    _free = None

    def __init__(self, handle):
        self._handle = handle

    @property
    def handle(self):
        if self._handle is None:
            raise InputError(f"this {type(self).__name__} is closed", NULL_POINTER)
        return self._handle

    def close(self):
        if self._handle is not None:
            type(self)._free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _create(fn, *args):
    out = ctypes.c_void_p()
    _check(fn(*args, ctypes.byref(out)))
    return out


def _path(path):
    return str(path).encode()


def _saved_bytes(fn, handle):
    """The checkpoint bytes a kfp_*_save_memory function writes (size first, then the bytes)."""
    size = ctypes.c_int64()
    _check(fn(handle, None, 0, ctypes.byref(size)))
    buffer = ctypes.create_string_buffer(size.value)
    _check(fn(handle, buffer, size.value, ctypes.byref(size)))
    return buffer.raw[:size.value]


def _static_name(fn, handle):
    name = ctypes.c_char_p()
    _check(fn(handle, ctypes.byref(name)))
    return name.value.decode()


class MLP(_Handle):
    """A tanh (or sigmoid, sin, softplus) multilayer perceptron R^d -> R, float64.

    Parameters are drawn from `seed` as PyTorch's nn.Linear does (uniform in
    +-1/sqrt(h_in)), or Xavier-uniform with initialization="xavier".
    """

    _free = staticmethod(lib.kfp_net_free)

    def __init__(self, widths, activation="tanh", seed=0, initialization="pytorch"):
        w = np.array(_integers(widths, "widths", 1, 2**31 - 1), dtype=np.int64)
        super().__init__(_create(lib.kfp_net_create, w.ctypes.data_as(c_int64_p), len(w),
                                 activation.encode(), initialization.encode(), int(seed)))
        self.activation = activation

    def _int(self, fn):
        v = ctypes.c_int64()
        _check(fn(self.handle, ctypes.byref(v)))
        return v.value

    @property
    def num_params(self):
        return self._int(lib.kfp_net_num_params)

    @property
    def input_dim(self):
        return self._int(lib.kfp_net_input_dim)

    @property
    def widths(self):
        count = ctypes.c_int64()
        _check(lib.kfp_net_widths(self.handle, None, 0, ctypes.byref(count)))
        w = np.zeros(count.value, dtype=np.int64)
        _check(lib.kfp_net_widths(self.handle, w.ctypes.data_as(c_int64_p), count.value, ctypes.byref(count)))
        return [int(v) for v in w]

    def get_params(self):
        """(D,) copy of theta: per layer W row-major (h_out x h_in), then b."""
        theta = np.empty(self.num_params)
        _check(lib.kfp_net_get_params(self.handle, _ptr(theta), theta.size))
        return theta

    def set_params(self, theta):
        """Replaces theta (same layout as torch.nn.utils.parameters_to_vector)."""
        t = _array(theta, "theta", (None,))
        _check(lib.kfp_net_set_params(self.handle, _ptr(t), t.size))

    def __call__(self, x):
        """u(x) for x of shape (N, d); returns (N,)."""
        x = _points(x)
        u = np.empty(x.shape[0])
        _check(lib.kfp_net_eval(self.handle, _ptr(x), x.shape[0], x.shape[1], _ptr(u)))
        return u

    def derivatives(self, x, coefficients=None):
        """(u, grad u, t) in one Taylor-mode pass: (N,), (N, d), (N,) with
        t = sum_ij C_ij d_i d_j u for C = `coefficients` (d, d), the Laplacian by default."""
        x = _points(x)
        n, d = x.shape
        c = None if coefficients is None else _array(coefficients, "coefficients", (d, d))
        u, grad, t = np.empty(n), np.empty((n, d)), np.empty(n)
        _check(lib.kfp_net_derivatives(self.handle, _ptr(x), n, d, _ptr(c), _ptr(u), _ptr(grad), _ptr(t)))
        return u, grad, t

    def save(self, path):
        """Writes a checkpoint (widths, activation, parameters) to `path` (docs/checkpoint-format.md)."""
        _check(lib.kfp_net_save(self.handle, _path(path)))

    @classmethod
    def load(cls, path):
        """The network saved at `path` by `save`; kp.CorruptError if the file is not one."""
        return cls._from_handle(_create(lib.kfp_net_load, _path(path)))

    def to_bytes(self):
        """The checkpoint as bytes (what `save` writes)."""
        return _saved_bytes(lib.kfp_net_save_memory, self.handle)

    @classmethod
    def from_bytes(cls, data):
        data = bytes(data)
        return cls._from_handle(_create(lib.kfp_net_load_memory, data, len(data)))

    @classmethod
    def _from_handle(cls, handle):
        net = cls.__new__(cls)
        _Handle.__init__(net, handle)
        net.activation = _static_name(lib.kfp_net_activation, handle)
        return net

    def __reduce__(self):
        return (MLP.from_bytes, (self.to_bytes(),))

    def __repr__(self):
        if self._handle is None:
            return "MLP(closed)"
        return f"MLP({self.widths}, activation={self.activation!r}, num_params={self.num_params})"


class Trainable:
    """An unknown coefficient of an operator, trained with the network from `value` (an inverse
    problem). positive=True trains it through its logarithm, so it stays positive; frozen=True
    holds it at `value` (listed with the trainable coefficients, not trained)."""

    def __init__(self, value, positive=False, frozen=False):
        self.value, self.positive, self.frozen = float(value), bool(positive), bool(frozen)

    @property
    def flags(self):
        return (_abi.KFP_COEF_POSITIVE if self.positive else 0) | (_abi.KFP_COEF_FROZEN if self.frozen else 0)

    def __repr__(self):
        return f"Trainable({self.value!r}, positive={self.positive}, frozen={self.frozen})"


def _value(v):
    """The start value of a number or a Trainable."""
    return v.value if isinstance(v, Trainable) else float(v)


def _rebuild_operator(recipe, trainables, estimator=None):
    op = recipe[0](*recipe[1])
    for name, value, flags in trainables:
        _check(lib.kfp_operator_set_trainable(op.handle, name.encode(), value, flags))
    if estimator is not None:
        _check(lib.kfp_operator_set_estimator(op.handle, *estimator))
    return op


_ESTIMATORS = {"rademacher": _abi.KFP_ESTIMATOR_RANDOMIZED, "gaussian": _abi.KFP_ESTIMATOR_RANDOMIZED_GAUSSIAN}


class Operator(_Handle):
    """A PDE operator: the interior residual
    r = kappa D_C u + beta.grad u + c u + N(u, grad u) + constant - source_scale f,
    whose scalar coefficients ("kappa", "C_<i>_<j>", "c", "beta_<i>", "constant", "source_scale") can be
    trained with the network (`Trainable`, `set_trainable`, `coefficients`)."""

    _free = staticmethod(lib.kfp_operator_free)

    def __init__(self, handle, name, recipe=None):
        super().__init__(handle)
        self.name = name
        self._recipe = recipe   # (function, args) that makes this operator again, for pickling

    def _with(self, trainables):
        """Marks the Trainable values of {name: value} trainable; returns self."""
        try:
            for name, v in trainables.items():
                if isinstance(v, Trainable):
                    self.set_trainable(name, v.value, v.positive, v.frozen)
        except Exception:
            self.close()
            raise
        return self

    @classmethod
    def poisson(cls, d, kappa=1.0):
        """-kappa Laplace(u) = f in d dimensions; kappa is 1 or a Trainable."""
        if not isinstance(kappa, Trainable) and float(kappa) != 1.0:
            raise InputError("Operator.poisson takes kappa = 1 or a kp.Trainable; use Operator.linear for another fixed factor")
        return cls(_create(lib.kfp_operator_create_poisson, int(d)), "poisson",
                   (Operator.poisson, (int(d),)))._with({"kappa": kappa})

    @classmethod
    def heat(cls, d_space, kappa=0.25):
        """d_t u - kappa Laplace_x(u) = f on inputs (t, x), time first; kappa a number or a Trainable."""
        start = _value(kappa)
        return cls(_create(lib.kfp_operator_create_heat, int(d_space), start), "heat",
                   (Operator.heat, (int(d_space), start)))._with({"kappa": kappa})

    @classmethod
    def log_fokker_planck(cls, d_space):
        """Log-density q of dX = -X/2 dt + sqrt(2) dW on inputs (t, x):
        r = d_t q - d/2 - x.grad_x q / 2 - |grad_x q|^2 - Laplace_x q - f."""
        return cls(_create(lib.kfp_operator_create_log_fokker_planck, int(d_space)), "log_fokker_planck",
                   (Operator.log_fokker_planck, (int(d_space),)))

    def __reduce__(self):
        if self._recipe is None:
            raise TypeError(f"operator {self.name!r} cannot be pickled")
        trainables = [(name, value, flags) for (name, value), flags in zip(self.coefficients.items(), self._flags())]
        kind, probes, seed = self._estimator()
        estimator = None if kind == _abi.KFP_ESTIMATOR_EXACT else (kind, probes, seed)
        return (_rebuild_operator, (self._recipe, trainables, estimator)) if trainables or estimator else self._recipe

    def randomized(self, probes, seed=0, distribution="rademacher"):
        """Randomized Taylor mode (before an optimizer is created on this operator): the
        second-order term from `probes` random directions per point (distribution "rademacher"
        or "gaussian"), drawn fresh every optimizer step from `seed`; the Taylor pass carries
        probes + 2 columns instead of d + 2. Terms with grad u stay exact. Needs C positive or
        negative semi-definite. Returns self."""
        if distribution not in _ESTIMATORS:
            raise InputError(f"distribution must be one of {list(_ESTIMATORS)}, got {distribution!r}")
        _check(lib.kfp_operator_set_estimator(self.handle, _ESTIMATORS[distribution], int(probes), int(seed)))
        return self

    def exact(self):
        """The exact second-order term (the forward Laplacian, the default); returns self."""
        _check(lib.kfp_operator_set_estimator(self.handle, _abi.KFP_ESTIMATOR_EXACT, 0, 0))
        return self

    def _estimator(self):
        kind, probes, seed = ctypes.c_int32(), ctypes.c_int64(), ctypes.c_uint64()
        _check(lib.kfp_operator_estimator(self.handle, ctypes.byref(kind), ctypes.byref(probes), ctypes.byref(seed)))
        return kind.value, probes.value, seed.value

    @property
    def estimator(self):
        """{"kind": "exact"} or {"kind": "randomized", "probes": s, "seed": seed, "distribution": ...}."""
        kind, probes, seed = self._estimator()
        if kind == _abi.KFP_ESTIMATOR_EXACT:
            return {"kind": "exact"}
        distribution = next(name for name, k in _ESTIMATORS.items() if k == kind)
        return {"kind": "randomized", "probes": probes, "seed": seed, "distribution": distribution}

    def set_trainable(self, name, value, positive=False, frozen=False):
        """Marks coefficient `name` trainable from `value` (before an optimizer is created on
        this operator); returns self."""
        t = Trainable(value, positive, frozen)
        _check(lib.kfp_operator_set_trainable(self.handle, str(name).encode(), t.value, t.flags))
        return self

    def _flags(self):
        """The KFP_COEF_* flags of the trainable coefficients, in order."""
        flags = []
        for k in range(len(self.coefficients)):
            name, f = ctypes.c_char_p(), ctypes.c_int64()
            _check(lib.kfp_operator_coefficient_info(self.handle, k, ctypes.byref(name), ctypes.byref(f)))
            flags.append(f.value)
        return flags

    @property
    def trainable(self):
        """{name: kp.Trainable(current value, positive, frozen)} of the trainable coefficients."""
        return {name: Trainable(v, bool(f & _abi.KFP_COEF_POSITIVE), bool(f & _abi.KFP_COEF_FROZEN))
                for (name, v), f in zip(self.coefficients.items(), self._flags())}

    @property
    def coefficients(self):
        """{name: current value} of the trainable coefficients, in the order they were marked."""
        count = ctypes.c_int64()
        _check(lib.kfp_operator_coefficients(self.handle, None, 0, ctypes.byref(count)))
        values = np.empty(count.value)
        _check(lib.kfp_operator_coefficients(self.handle, _ptr(values), count.value, ctypes.byref(count)))
        names = []
        for k in range(count.value):
            name = ctypes.c_char_p()
            _check(lib.kfp_operator_coefficient_info(self.handle, k, ctypes.byref(name), None))
            names.append(name.value.decode())
        return dict(zip(names, values.tolist()))

    @coefficients.setter
    def coefficients(self, values):
        """Sets the trainable coefficients' values from {name: value} (every one of them)."""
        current = self.coefficients
        if set(values) != set(current):
            raise InputError(f"give a value for each trainable coefficient: {list(current)}")
        v = np.array([float(values[name]) for name in current])
        _check(lib.kfp_operator_set_coefficients(self.handle, _ptr(v), len(v)))

    @classmethod
    def linear(cls, d, C=None, beta=None, c=0.0, B=None, c_x=None, kappa=1.0):
        """r = kappa sum C_ij d_i d_j u + (beta + B x).grad u + (c + c_x.x) u - f.
        C defaults to the identity (the Laplacian). c, the entries of beta and kappa (1 or a
        Trainable) may be kp.Trainable values."""
        d = int(d)
        trainables = {"kappa": kappa, "c": c}
        if not isinstance(kappa, Trainable) and float(kappa) != 1.0:
            raise InputError("Operator.linear takes kappa = 1 or a kp.Trainable; scale C for another fixed factor")
        if beta is not None and not isinstance(beta, np.ndarray):
            trainables.update({f"beta_{i}": b for i, b in enumerate(beta)})
            beta = [_value(b) for b in beta]
        C = np.eye(max(d, 1)) if C is None else _array(C, "C", (d, d))
        beta = None if beta is None else _array(beta, "beta", (d,))
        B = None if B is None else _array(B, "B", (d, d))
        c_x = None if c_x is None else _array(c_x, "c_x", (d,))
        return cls(_create(lib.kfp_operator_create_linear, d, _ptr(C), _ptr(beta), _ptr(B), _value(c), _ptr(c_x)),
                   "linear", (Operator.linear, (d, C, beta, _value(c), B, c_x)))._with(trainables)

    @property
    def dim(self):
        v = ctypes.c_int64()
        _check(lib.kfp_operator_dim(self.handle, ctypes.byref(v)))
        return v.value

    def residual(self, net, x, f):
        """(N,) interior residuals r_n = (L u)(x_n) - f_n."""
        x = _points(x)
        f = _array(f, "f", (x.shape[0],))
        r = np.empty(x.shape[0])
        _check(lib.kfp_operator_residual(self.handle, net.handle, _ptr(x), x.shape[0], x.shape[1], _ptr(f), _ptr(r)))
        return r

    def __repr__(self):
        if self._handle is None:
            return "Operator(closed)"
        e = self.estimator
        extra = "" if e["kind"] == "exact" else f".randomized(probes={e['probes']}, seed={e['seed']}, distribution={e['distribution']!r})"
        return f"Operator.{self.name}(dim={self.dim}){extra}"


class _Term:
    """A loss term: points (N, d), their values (N,) and a weight w >= 0; it adds
    w/(2N) sum_n r_n^2 to the loss."""

    kind = None

    def __init__(self, x, values, weight=1.0):
        self.x = _points(x, f"{type(self).__name__} points")
        self.values = _array(values, f"{type(self).__name__} values", (self.x.shape[0],))
        self.weight = float(weight)

    def __repr__(self):
        return f"{type(self).__name__}(n={self.x.shape[0]}, weight={self.weight})"


class Interior(_Term):
    """Interior term: r = (operator applied to u)(x) - f(x); values are f."""
    kind = "interior"


class Dirichlet(_Term):
    """Dirichlet term (boundary or initial values): r = u(x) - g(x); values are g."""
    kind = "dirichlet"


class Observation(_Term):
    """Observation term (measurements): r = u(x) - y; values are y."""
    kind = "observation"


class Neumann(_Term):
    """Neumann term: r = n.grad u(x) - g(x) with a unit vector n per point (normals (N, d));
    values are g. With n = e_t on t = 0 it prescribes an initial velocity."""
    kind = "neumann"

    def __init__(self, x, values, normals, weight=1.0):
        super().__init__(x, values, weight)
        self.normals = _array(normals, "Neumann normals", self.x.shape)


class Robin(_Term):
    """Robin term: r = a u(x) + b n.grad u(x) - g(x); a, b scalars or (N,) arrays, not both 0."""
    kind = "robin"

    def __init__(self, x, values, normals, a, b, weight=1.0):
        super().__init__(x, values, weight)
        n = self.x.shape[0]
        self.normals = _array(normals, "Robin normals", self.x.shape)
        self.a = _array(np.broadcast_to(np.asarray(a, dtype=float), (n,)), "Robin a", (n,))
        self.b = _array(np.broadcast_to(np.asarray(b, dtype=float), (n,)), "Robin b", (n,))


_TERM_CLASSES = {cls.kind: cls for cls in (Interior, Dirichlet, Observation, Neumann, Robin)}


class Batch(_Handle):
    """Training points as loss terms (copied). `Batch(x_interior, f_interior, x_boundary,
    g_boundary)` makes an interior term and a Dirichlet term of weight 1; `Batch.from_terms`
    any list of terms. Attributes: `terms`, and x_interior, f_interior (all interior terms)
    and x_boundary, g_boundary (all other terms), in term order."""

    _free = staticmethod(lib.kfp_batch_free)

    def __init__(self, x_interior, f_interior, x_boundary=None, g_boundary=None):
        xi = _points(x_interior, "x_interior")
        n, d = xi.shape
        fi = _array(f_interior, "f_interior", (n,))
        if x_boundary is None:
            xb, gb = np.empty((0, d)), np.empty(0)
        else:
            xb = _array(x_boundary, "x_boundary", (None, d))
            gb = _array(g_boundary if g_boundary is not None else [], "g_boundary", (xb.shape[0],))
        super().__init__(_create(lib.kfp_batch_create, _ptr(xi), _ptr(fi), n,
                                 _ptr(xb) if xb.size else None, _ptr(gb) if gb.size else None, xb.shape[0], d))
        self._read_back()

    @classmethod
    def from_terms(cls, terms):
        """A batch of the given terms (Interior, Dirichlet, Observation, Neumann, Robin), all of one
        dimension; errors name the term and, for a bad normal or a = b = 0, the point."""
        terms = list(terms)
        if not terms or not all(isinstance(t, _Term) for t in terms):
            raise InputError("from_terms takes a non-empty list of kp.Interior, kp.Dirichlet, kp.Observation, "
                             "kp.Neumann and kp.Robin terms")
        d = terms[0].x.shape[1]
        batch = cls.__new__(cls)
        _Handle.__init__(batch, _create(lib.kfp_batch_create_empty, d))
        try:
            for t in terms:
                if t.x.shape[1] != d:
                    raise InputError(f"{t!r} has {t.x.shape[1]}-dimensional points, the first term {d}",
                                     DIMENSION_MISMATCH)
                n = t.x.shape[0]
                if t.kind == "neumann":
                    _check(lib.kfp_batch_add_neumann(batch.handle, _ptr(t.x), _ptr(t.values), _ptr(t.normals), n, t.weight))
                elif t.kind == "robin":
                    _check(lib.kfp_batch_add_robin(batch.handle, _ptr(t.x), _ptr(t.values), _ptr(t.normals), _ptr(t.a),
                                                   _ptr(t.b), n, t.weight))
                else:
                    _check(lib.kfp_batch_add_term(batch.handle, _abi.TERM_KINDS[t.kind], _ptr(t.x), _ptr(t.values), n,
                                                  t.weight))
        except Exception:
            batch.close()
            raise
        batch._read_back()
        return batch

    @classmethod
    def _from_handle(cls, handle):
        """Wraps a batch handle made by the library."""
        batch = cls.__new__(cls)
        _Handle.__init__(batch, handle)
        batch._read_back()
        return batch

    def _read_back(self):
        """The terms and the interior/other arrays, copied out of the library's batch."""
        count, d = ctypes.c_int64(), ctypes.c_int64()
        _check(lib.kfp_batch_num_terms(self.handle, ctypes.byref(count)))
        _check(lib.kfp_batch_sizes(self.handle, None, None, ctypes.byref(d)))
        self.terms = []
        for i in range(count.value):
            kind, n, weight = ctypes.c_int32(), ctypes.c_int64(), ctypes.c_double()
            _check(lib.kfp_batch_term(self.handle, i, ctypes.byref(kind), ctypes.byref(n), ctypes.byref(weight),
                                      None, None))
            x, values = np.empty((n.value, d.value)), np.empty(n.value)
            _check(lib.kfp_batch_term(self.handle, i, None, None, None, _ptr(x) if n.value else None,
                                      _ptr(values) if n.value else None))
            name = next(k for k, v in _abi.TERM_KINDS.items() if v == kind.value)
            if name in ("neumann", "robin"):
                normals, a, b = np.empty((n.value, d.value)), np.empty(n.value), np.empty(n.value)
                _check(lib.kfp_batch_term_normals(self.handle, i, _ptr(normals) if n.value else None,
                                                  _ptr(a) if n.value else None, _ptr(b) if n.value else None))
                term = Neumann(x, values, normals, weight.value) if name == "neumann" else \
                    Robin(x, values, normals, a, b, weight.value)
            else:
                term = _TERM_CLASSES[name](x, values, weight.value)
            self.terms.append(term)
        interior = [t for t in self.terms if t.kind == "interior"]
        other = [t for t in self.terms if t.kind != "interior"]
        self.x_interior = np.concatenate([t.x for t in interior]) if interior else np.empty((0, d.value))
        self.f_interior = np.concatenate([t.values for t in interior]) if interior else np.empty(0)
        self.x_boundary = np.concatenate([t.x for t in other]) if other else np.empty((0, d.value))
        self.g_boundary = np.concatenate([t.values for t in other]) if other else np.empty(0)

    @property
    def dim(self):
        return self.x_interior.shape[1]

    def __repr__(self):
        return f"Batch(terms={self.terms!r}, dim={self.dim})"


def loss(net, op, batch, terms=False):
    """The PINN loss 1/(2N) sum r_n^2 + 1/(2M) sum (u(x_m) - g_m)^2; with terms=True,
    (loss, loss_interior, loss_boundary)."""
    total, interior, boundary = ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
    _check(lib.kfp_loss(net.handle, op.handle, batch.handle, ctypes.byref(total), ctypes.byref(interior),
                        ctypes.byref(boundary)))
    return (total.value, interior.value, boundary.value) if terms else total.value


def loss_and_gradient(net, op, batch):
    """(loss, gradient) from one Taylor-mode forward and one backward pass: D values, then one
    per trained (not frozen) coefficient of `op` (in its order; in log kappa for a positive one)."""
    trained = sum(1 for t in op.trainable.values() if not t.frozen)
    grad = np.empty(net.num_params + trained)
    value = ctypes.c_double()
    _check(lib.kfp_loss_and_gradient(net.handle, op.handle, batch.handle, ctypes.byref(value), _ptr(grad), grad.size))
    return value.value, grad


class Optimizer(_Handle):
    """Common part of the optimizers: options by their C names and `step(batch)`.

    Every optimizer has divergence_factor (default 1e12): a step whose loss at its start exceeds
    that factor times the best loss so far, or that meets a non-finite value, puts the network
    and the optimizer back before the previous step and raises kp.DivergenceError.
    """

    _free = staticmethod(lib.kfp_optimizer_free)

    def __init__(self, handle, net, op):
        super().__init__(handle)
        self.net, self.op = net, op
        self._info = None
        self._communicator = None

    def set_communicator(self, comm):
        """Makes this optimizer one process of a data-parallel run (docs/parallel.md), e.g.
        `opt.set_communicator(kp.MPIComm(MPI.COMM_WORLD))` on every rank, all with the same
        network (shape and parameters: seed them alike), operator, optimizer options and state;
        None makes it a single process again. Steps and kp.train then sum every quantity over
        the processes, each holding its own points, and all take the identical step. Raises
        kp.CommunicationError on every rank if the setups differ."""
        if comm is not None and not isinstance(comm, MPIComm):
            raise InputError(f"set_communicator takes a kp.MPIComm or None, got {type(comm).__name__}")
        _check(lib.kfp_optimizer_set_communicator(self.handle, None if comm is None else ctypes.byref(comm._comm)))
        self._communicator = comm   # its context must outlive the optimizer's use of it

    @property
    def rank(self):
        """(rank, number of processes) of this optimizer's data-parallel run; (0, 1) alone."""
        rank, ranks = ctypes.c_int32(), ctypes.c_int32()
        _check(lib.kfp_optimizer_rank(self.handle, ctypes.byref(rank), ctypes.byref(ranks)))
        return rank.value, ranks.value

    def _option_info(self):
        """{name: kfp_option_info} of the options this optimizer accepts (from the library)."""
        if self._info is None:
            count = ctypes.c_int64()
            _check(lib.kfp_optimizer_option_count(self.handle, ctypes.byref(count)))
            infos = {}
            for i in range(count.value):
                info = _abi.OptionInfo()
                info.size = ctypes.sizeof(_abi.OptionInfo)
                _check(lib.kfp_optimizer_option_info(self.handle, i, ctypes.byref(info)))
                infos[info.name.decode()] = info
            self._info = infos
        return self._info

    def _lookup(self, name):
        info = self._option_info().get(name)
        if info is None:
            known = ", ".join(self._option_info())
            raise InputError(f"{type(self).__name__} has no option {name!r} (its options: {known})")
        return info

    def set(self, name, value):
        """Sets option `name` (the C key's name, e.g. "damping"); the library checks the value."""
        info = self._lookup(name)
        if info.type == _abi.OPTION_STRING:
            if not isinstance(value, str):
                raise InputError(f"{name} takes a string, got {value!r}")
            _check(lib.kfp_optimizer_set_string(self.handle, info.key, value.encode()))
        elif info.type == _abi.OPTION_INT:
            if isinstance(value, (float, np.floating)) and not float(value).is_integer():
                raise InputError(f"{name} takes an integer, got {value}")
            if isinstance(value, str) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InputError(f"{name} takes an integer, got {value!r}")
            _check(lib.kfp_optimizer_set_int(self.handle, info.key, int(value)))
        else:
            if isinstance(value, str) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InputError(f"{name} takes a number, got {value!r}")
            _check(lib.kfp_optimizer_set_double(self.handle, info.key, float(value)))

    _set = set

    def get(self, name):
        """The current value of option `name`."""
        info = self._lookup(name)
        if info.type == _abi.OPTION_STRING:
            length = ctypes.c_int64()
            _check(lib.kfp_optimizer_get_string(self.handle, info.key, None, 0, ctypes.byref(length)))
            buffer = ctypes.create_string_buffer(length.value + 1)
            _check(lib.kfp_optimizer_get_string(self.handle, info.key, buffer, len(buffer), ctypes.byref(length)))
            return buffer.value.decode()
        if info.type == _abi.OPTION_INT:
            v = ctypes.c_int64()
            _check(lib.kfp_optimizer_get_int(self.handle, info.key, ctypes.byref(v)))
        else:
            v = ctypes.c_double()
            _check(lib.kfp_optimizer_get_double(self.handle, info.key, ctypes.byref(v)))
        return v.value

    def options(self):
        """{name: current value} of every option of this optimizer."""
        return {name: self.get(name) for name in self._option_info()}

    def option_info(self):
        """{name: dict(key, type, description, minimum, maximum, default, choices)} from the library."""
        out = {}
        for name, i in self._option_info().items():
            kind = {_abi.OPTION_DOUBLE: "double", _abi.OPTION_INT: "int", _abi.OPTION_STRING: "string"}[i.type]
            default = {"double": i.default_double, "int": i.default_int, "string": i.default_string.decode()}[kind]
            out[name] = {"key": i.key, "type": kind, "description": i.description.decode(), "minimum": i.minimum,
                         "maximum": i.maximum, "minimum_exclusive": bool(i.minimum_exclusive),
                         "maximum_exclusive": bool(i.maximum_exclusive), "default": default,
                         "choices": [c for c in i.choices.decode().split(",") if c]}
        return out

    def _configure(self, options):
        """Sets `options` (name → value) in order; closes the handle and re-raises on failure."""
        try:
            for name, value in options:
                self._set(name, value)
        except Exception:
            self.close()
            raise

    def save(self, path):
        """Writes a checkpoint of the options and the full state (not the network's parameters:
        save the network too) to `path`; kp.load_optimizer reads it."""
        _check(lib.kfp_optimizer_save(self.handle, _path(path)))

    def to_bytes(self):
        return _saved_bytes(lib.kfp_optimizer_save_memory, self.handle)

    def __reduce__(self):
        return (_optimizer_from_bytes, (self.to_bytes(), self.net, self.op))

    def step(self, batch):
        """One step on `batch`; returns a dict of the step's statistics (loss before the step,
        loss_interior, loss_boundary, step_size, momentum, update_norm, accepted)."""
        stats = np.zeros(len(_abi.STATS))
        _check(lib.kfp_optimizer_step(self.handle, self.net.handle, batch.handle, _ptr(stats), stats.size))
        out = dict(zip(_abi.STATS, stats.tolist()))
        out["accepted"] = bool(out["accepted"])
        return out


class KFAC(Optimizer):
    """KFAC for PINN losses: Kronecker-factored curvature of the interior and boundary terms,
    preconditioning by the exact inverse of their damped Kronecker sum.

    step: "line_search" (grid {2^-30, ..., 1} on heavy-ball momentum), "auto" (KFAC*: step
    size and momentum from the damped quadratic model) or a float (fixed learning rate).
    damping_rule: "adaptive" (KFAC* adapts the damping by Levenberg-Marquardt and skips steps
    that do not lower their batch's loss; never below min_damping) or "fixed" (the paper's KFAC*).
    """

    def __init__(self, net, op, damping=1e-10, ema=0.95, momentum=0.0, step="line_search",
                 factor_period=1, inverse_period=1, factor_init="identity", approximation="expand",
                 damping_rule="adaptive", min_damping=1e-14, divergence_factor=1e12):
        super().__init__(_create(lib.kfp_optimizer_create_kfac, net.handle, op.handle), net, op)
        self._configure(_step_rule(step) + [("damping", damping), ("ema", ema), ("momentum", momentum),
                                            ("factor_period", factor_period), ("inverse_period", inverse_period),
                                            ("factor_init", factor_init), ("approximation", approximation),
                                            ("damping_rule", damping_rule), ("min_damping", min_damping),
                                            ("divergence_factor", divergence_factor)])


def _step_rule(step):
    """Options for step="line_search" | "auto" | a float learning rate."""
    if isinstance(step, str):
        return [("step_rule", step)]
    return [("learning_rate", step), ("step_rule", "fixed")]


class SGD(Optimizer):
    """Gradient descent with heavy-ball (or Nesterov) momentum, PyTorch's convention."""

    def __init__(self, net, op, lr=1e-3, momentum=0.0, nesterov=False, divergence_factor=1e12):
        super().__init__(_create(lib.kfp_optimizer_create_sgd, net.handle, op.handle), net, op)
        self._configure([("learning_rate", lr), ("momentum", momentum), ("nesterov", int(bool(nesterov))),
                         ("divergence_factor", divergence_factor)])


class Adam(Optimizer):
    """Adam with bias correction."""

    def __init__(self, net, op, lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, divergence_factor=1e12):
        super().__init__(_create(lib.kfp_optimizer_create_adam, net.handle, op.handle), net, op)
        self._configure([("learning_rate", lr), ("beta1", beta1), ("beta2", beta2), ("epsilon", epsilon),
                         ("divergence_factor", divergence_factor)])


class LBFGS(Optimizer):
    """L-BFGS with a strong-Wolfe line search; one iteration per step.

    lr: first trial step of the line search; history: stored pairs; max_evaluations:
    loss-and-gradient evaluations per line search.
    """

    def __init__(self, net, op, lr=1.0, history=10, max_evaluations=25, divergence_factor=1e12):
        super().__init__(_create(lib.kfp_optimizer_create_lbfgs, net.handle, op.handle), net, op)
        self._configure([("learning_rate", lr), ("history", history), ("max_evaluations", max_evaluations),
                         ("divergence_factor", divergence_factor)])


class ENGD(Optimizer):
    """Energy natural gradient (dense Gauss-Newton): direction -(G + damping I)^+ grad.

    variant: "full" (D x D Gramian), "per_layer", "diagonal", "woodbury" (sample space,
    (N_interior + N_boundary)^2 system) or "nystrom" (the sample-space kernel from a rank-`rank`
    sketch). step: "line_search" or a float learning rate.
    max_parameters: largest Gramian block formed; larger networks raise kp.Error.
    """

    def __init__(self, net, op, damping=1e-10, ema=0.0, variant="full", step="line_search",
                 max_parameters=16384, rank=100, divergence_factor=1e12):
        super().__init__(_create(lib.kfp_optimizer_create_engd, net.handle, op.handle), net, op)
        self._configure([("max_parameters", max_parameters), ("variant", variant), ("damping", damping),
                         ("ema", ema), ("rank", rank), ("divergence_factor", divergence_factor)] + _step_rule(step))


class HessianFree(Optimizer):
    """Hessian-free (Martens 2010) with the GGN: CG with Martens' stopping rule, backtracking,
    Levenberg-Marquardt damping (initial `damping`), Armijo line search, warm start.
    """

    def __init__(self, net, op, damping=1.0, max_cg_iterations=300, divergence_factor=1e12):
        super().__init__(_create(lib.kfp_optimizer_create_hessian_free, net.handle, op.handle), net, op)
        self._configure([("damping", damping), ("max_cg_iterations", max_cg_iterations),
                         ("divergence_factor", divergence_factor)])


class SPRING(Optimizer):
    """SPRING (Goldshlager, Abrahamsen, Lin 2024): sample-space Gauss-Newton with momentum,
    phi = momentum phi_prev + J^T (J J^T + damping I)^-1 (-r - momentum J phi_prev), theta += eta phi.

    step: "line_search" (grid as KFAC's) or a float learning rate eta, capped so that
    |eta phi| <= sqrt(norm_constraint). variant: "exact" (the N x N kernel J J^T) or "nystrom"
    (its rank-`rank` Nystrom approximation, O(N rank D) per step). Memory: the (N x D) Jacobian
    and the kernel (or the sketch).
    """

    def __init__(self, net, op, damping=1e-3, momentum=0.99, step="line_search", norm_constraint=1e-3,
                 variant="exact", rank=100, divergence_factor=1e12):
        super().__init__(_create(lib.kfp_optimizer_create_spring, net.handle, op.handle), net, op)
        self._configure([("damping", damping), ("momentum", momentum), ("norm_constraint", norm_constraint),
                         ("variant", variant), ("rank", rank), ("divergence_factor", divergence_factor)]
                        + _step_rule(step))


def _optimizer_object(handle, net, op):
    """The Python optimizer of the class the library names for `handle`."""
    kinds = {"kfac": KFAC, "sgd": SGD, "adam": Adam, "lbfgs": LBFGS, "engd": ENGD, "hessian_free": HessianFree,
             "spring": SPRING}
    try:
        cls = kinds[_static_name(lib.kfp_optimizer_kind, handle)]
    except Exception:
        lib.kfp_optimizer_free(handle)
        raise
    opt = cls.__new__(cls)
    Optimizer.__init__(opt, handle, net, op)
    return opt


def load_optimizer(path, net, op):
    """The optimizer saved at `path` by `opt.save`, bound to `net` and `op` (which must have the
    network shape and operator it was saved with, else kp.CorruptError saying what differs)."""
    return _optimizer_object(_create(lib.kfp_optimizer_load, _path(path), net.handle, op.handle), net, op)


def _optimizer_from_bytes(data, net, op):
    data = bytes(data)
    return _optimizer_object(_create(lib.kfp_optimizer_load_memory, data, len(data), net.handle, op.handle), net, op)


def _problem_operator(name):
    return Problem(name).operator


class Box:
    """The box [lower_0, upper_0] x ... x [lower_{d-1}, upper_{d-1}]; faces "x<i>-" and "x<i>+"."""

    def __init__(self, lower, upper):
        self.lower, self.upper = _array(lower, "Box lower", (None,)), _array(upper, "Box upper", (None,))
        if self.lower.shape != self.upper.shape:
            raise InputError(f"Box: {self.lower.size} lower and {self.upper.size} upper bounds", DIMENSION_MISMATCH)

    @property
    def dim(self):
        return self.lower.size


class Ball:
    """The ball |x - center| < radius; its face is "boundary" (normals (x - center)/radius)."""

    def __init__(self, center, radius):
        self.center, self.radius = _array(center, "Ball center", (None,)), float(radius)

    @property
    def dim(self):
        return self.center.size


class Points:
    """Points you supply as a domain: every training batch is `batch` (a kp.Batch, e.g. from
    kp.Batch.from_terms); the errors, given an exact solution, are on its interior points."""

    def __init__(self, batch):
        if not isinstance(batch, Batch):
            raise InputError("kp.Points takes a kp.Batch")
        self.batch = batch

    @property
    def dim(self):
        return self.batch.dim


class _Condition:
    def __init__(self, faces, value, n_points=None):
        self.faces = faces if isinstance(faces, str) else ",".join(faces)
        self.value = value
        self.n_points = n_points


class DirichletCondition(_Condition):
    """u = value on `faces` ("x0-", ["x0-", "x1+"], "all", or a ball's "boundary")."""
    kind = "dirichlet"


class NeumannCondition(_Condition):
    """du/dn = value on `faces` (outward normal)."""
    kind = "neumann"


class RobinCondition(_Condition):
    """a u + b du/dn = value on `faces`; a, b constants, not both 0."""
    kind = "robin"

    def __init__(self, faces, value, a, b, n_points=None):
        super().__init__(faces, value, n_points)
        self.a, self.b = float(a), float(b)


class InitialCondition:
    """u(0, x) = value and, if given, du/dt(0, x) = velocity, on the face t = lower_0 (time first);
    n_points: points per batch of each (default: a share by area)."""

    def __init__(self, value, velocity=None, n_points=None):
        self.value, self.velocity, self.n_points = value, velocity, n_points


class Problem(_Handle):
    """A built-in problem: the paper's "poisson2d_sin", "poisson5d_cos", "poisson10d_pairs",
    "poisson100d_sq", "heat1d", "heat4d", "logfp9d", and "poisson1000d_sq" (randomized Taylor mode),
    "poisson2d_mixed" (Dirichlet, Neumann and Robin faces), "wave1d" (initial value and velocity),
    "disk_robin" (Robin on the unit circle), "heat1d_inverse", "heat1d_inverse_noisy" and
    "poisson2d_reaction_inverse" (an unknown coefficient and observations)."""

    _free = staticmethod(lib.kfp_problem_free)

    def __init__(self, name):
        super().__init__(_create(lib.kfp_problem_create, str(name).encode()))
        self._setup(name)

    def _setup(self, name):
        self.name = name
        self._callbacks, self._callback_errors = [], []
        d = ctypes.c_int64()
        _check(lib.kfp_problem_dim(self.handle, ctypes.byref(d)))
        self.dim = d.value
        self.operator = Operator(_create(lib.kfp_problem_operator, self.handle), name, (_problem_operator, (name,)))

    def _function(self, f, what):
        """A kfp_point_function calling f on (N, d) points (a number: a constant). An exception
        inside it, or values of the wrong shape, fill `out` with NaN and are re-raised by
        `_check_callbacks` after the library call."""
        def call(_user, x, n, d, out):
            try:
                points = np.ctypeslib.as_array(x, shape=(n, d)).copy()
                values = np.full(n, float(f)) if isinstance(f, (int, float)) else np.asarray(f(points), dtype=np.float64)
                if values.shape != (n,):
                    raise InputError(f"{what} returned shape {values.shape} for {n} points; expected ({n},)",
                                     DIMENSION_MISMATCH)
                np.ctypeslib.as_array(out, shape=(n,))[:] = values
            except BaseException as error:   # cannot cross the C boundary: recorded, re-raised after the call
                self._callback_errors.append(error)
                np.ctypeslib.as_array(out, shape=(n,))[:] = np.nan
        function = _abi.point_function(call)
        self._callbacks.append(function)   # alive as long as the problem
        return function

    def _check_callbacks(self, status):
        """Re-raises the first exception of a Python function during the last call, else checks `status`."""
        if self._callback_errors:
            error = self._callback_errors[0]
            self._callback_errors.clear()
            raise error
        _check(status)

    @classmethod
    def custom(cls, dim, operator, source, domain, conditions=(), exact=None, n_interior=1000, n_boundary=200):
        """A problem of your own: `operator` on `domain` (kp.Box, kp.Ball, or kp.Points: your own
        batch, whose terms carry the data; `source` and `conditions` then unused) with source f, the
        `conditions` (kp.DirichletCondition, kp.NeumannCondition, kp.RobinCondition,
        kp.InitialCondition) and, for the logged errors, the exact solution. Functions are
        vectorised: (N, d) points -> (N,) values; numbers are constants. A condition's
        n_points fixes its points per batch; the others share the rest by face area."""
        if int(dim) != domain.dim:
            raise InputError(f"dim is {dim}, the domain is {domain.dim}-dimensional", DIMENSION_MISMATCH)
        problem = cls.__new__(cls)
        _Handle.__init__(problem, None)
        problem._callbacks, problem._callback_errors = [], []
        if isinstance(domain, Points):
            if conditions:
                raise InputError("a problem on kp.Points takes its conditions as terms of its batch")
            problem._handle = _create(lib.kfp_problem_create_points, operator.handle, domain.batch.handle)
            problem._setup("points")
            if exact is not None:
                _check(lib.kfp_problem_set_exact(problem.handle, problem._function(exact, "exact solution"), None))
            return problem
        source_function = problem._function(source, "source")
        if isinstance(domain, Box):
            handle = _create(lib.kfp_problem_create_box, operator.handle, _ptr(domain.lower), _ptr(domain.upper), domain.dim,
                             source_function, None)
        elif isinstance(domain, Ball):
            handle = _create(lib.kfp_problem_create_ball, operator.handle, _ptr(domain.center), domain.radius, domain.dim,
                             source_function, None)
        else:
            raise InputError("domain must be a kp.Box or a kp.Ball")
        problem._handle = handle
        callbacks = problem._callbacks
        problem._setup("custom")
        problem._callbacks = callbacks + problem._callbacks
        try:
            added = 0
            for c in conditions:
                if isinstance(c, InitialCondition):
                    velocity = (ctypes.cast(None, _abi.point_function) if c.velocity is None   # NULL: no velocity
                                else problem._function(c.velocity, "initial velocity"))
                    _check(lib.kfp_problem_add_initial(problem.handle, problem._function(c.value, "initial value"), None,
                                                       velocity, None))
                    parts = 1 if velocity is None else 2
                elif isinstance(c, _Condition):
                    a, b = (c.a, c.b) if isinstance(c, RobinCondition) else (0.0, 0.0)
                    _check(lib.kfp_problem_add_condition(problem.handle, c.faces.encode(), _abi.TERM_KINDS[c.kind],
                                                         problem._function(c.value, f"{c.kind} condition on {c.faces}"),
                                                         None, a, b))
                    parts = 1
                else:
                    raise InputError(f"unknown condition {c!r}")
                for index in range(added, added + parts):
                    if c.n_points is not None:
                        _check(lib.kfp_problem_set_condition_points(problem.handle, index, int(c.n_points)))
                added += parts
            if exact is not None:
                _check(lib.kfp_problem_set_exact(problem.handle, problem._function(exact, "exact solution"), None))
            _check(lib.kfp_problem_set_sizes(problem.handle, int(n_interior), int(n_boundary)))
        except Exception:
            problem.close()
            raise
        return problem

    def set_observations(self, x, y, weight=1.0):
        """Measurements y (N,) of the solution at points x (N, d), added to every batch of this
        problem of your own as an observation term of weight `weight` (replacing earlier ones).
        With trainable operator coefficients (kp.Trainable) this makes an inverse problem.
        Returns self."""
        x = _points(x)
        y = _array(y, "y", (x.shape[0],))
        _check(lib.kfp_problem_set_observations(self.handle, _ptr(x), _ptr(y), x.shape[0], x.shape[1], float(weight)))
        return self

    def network_widths(self, size="small"):
        """Widths [d, hidden..., 1] of the default network of `size` (small, medium, big, huge)."""
        widths, count = (ctypes.c_int64 * 16)(), ctypes.c_int64()
        _check(lib.kfp_problem_network_widths(self.handle, size.encode(), widths, 16, ctypes.byref(count)))
        return list(widths[:count.value])

    def sample(self, n_interior=None, n_boundary=None, seed=0, sampler="uniform"):
        """A training batch (interior points strictly inside, condition points as the problem
        defines, f and g = u*); the problem's default sizes when None; sampler "uniform" or
        "sobol" (quasi-random); deterministic per seed."""
        out = ctypes.c_void_p()
        self._check_callbacks(lib.kfp_problem_sample(self.handle, 0 if n_interior is None else int(n_interior),
                                                     -1 if n_boundary is None else int(n_boundary), int(seed),
                                                     str(sampler).encode(), ctypes.byref(out)))
        return Batch._from_handle(out)

    def exact(self, x):
        """u*(x) for points (N, d)."""
        x = _points(x)
        u = np.empty(x.shape[0])
        self._check_callbacks(lib.kfp_problem_exact(self.handle, _ptr(x), x.shape[0], x.shape[1], _ptr(u)))
        return u

    def errors(self, net, n_eval=None, seed=1):
        """(L2 (RMS) error, relative L2 error) of `net` on n_eval fresh interior points (default 10 N_interior)."""
        l2, rel = ctypes.c_double(), ctypes.c_double()
        self._check_callbacks(lib.kfp_problem_errors(self.handle, net.handle, 0 if n_eval is None else int(n_eval), int(seed), ctypes.byref(l2), ctypes.byref(rel)))
        return l2.value, rel.value

    def l2_error(self, net, n_eval=None, seed=1):
        return self.errors(net, n_eval, seed)[0]

    def relative_l2_error(self, net, n_eval=None, seed=1):
        return self.errors(net, n_eval, seed)[1]

    def __repr__(self):
        return f"Problem({self.name!r}, dim={self.dim})"



def train(net, prob, opt, steps=1000, seconds=None, n_interior=None, n_boundary=None, sampler="uniform",
          resample_every=0, log_every=100, seed=0, csv=None, callback=None, progress=True,
          checkpoint=None, checkpoint_every=0, resume=False):
    """Trains `net` with `opt` on `prob` until `steps` steps or `seconds` of training time.

    Batches (`sampler` "uniform" or "sobol") are drawn with seed, seed + 1, ... (a new one every `resample_every` steps; 0: one
    fixed batch). After step 0, 1, every `log_every` steps and the last, the errors are evaluated
    on 10 N_interior fresh points and a record {column: value} (LOG_COLUMNS) is made; `callback`
    receives it and may return False to stop; an operator with trainable coefficients adds their
    values after each step as columns coef_<name>. `csv` names a file for the log. With `progress`
    and stderr a terminal, a progress bar runs. Returns the log as {column: numpy array}.

    `checkpoint` names a file that keeps the run (network, optimizer, step, batch, log): written
    every `checkpoint_every` steps (0: only at the end) and after a failing step. With `resume`,
    an existing checkpoint is continued to `steps` steps in all, bit for bit as if uninterrupted.
    A failing step raises a kp.Error whose `history` holds the log up to the last good step.
    """
    rows, failure = [], []
    show = progress and sys.stderr.isatty()
    # The fixed columns, then coef_<name> for each trainable coefficient of the optimizer's operator.
    columns = LOG_COLUMNS + [f"coef_{name}" for name in opt.op.coefficients]

    def on_record(record, count, _user):
        try:
            row = dict(zip(columns, record[:count]))
            row["step"] = int(row["step"])
            rows.append(row)
            if show:
                done = int(30 * row["step"] / steps)
                sys.stderr.write(f"\r[{'#' * done}{' ' * (30 - done)}] {row['step']}/{steps}  "
                                 f"loss {row['loss']:.3e}  L2 {row['l2_error']:.3e}  {row['seconds']:.1f} s")
                sys.stderr.flush()
            return 0 if callback is None or callback(row) is not False else 1
        except BaseException as error:   # cannot cross the C boundary: stop, re-raise below
            failure.append(error)
            return 1

    options = _abi.TrainOptions()
    _check(lib.kfp_train_default_options(ctypes.byref(options)))
    options.steps = int(steps)
    options.seconds = float(seconds or 0)
    options.num_interior = 0 if n_interior is None else int(n_interior)
    options.num_boundary = -1 if n_boundary is None else int(n_boundary)
    options.sampler = str(sampler).encode()
    options.resample_every = int(resample_every)
    options.log_every = int(log_every)
    options.seed = int(seed)
    options.csv_path = None if csv is None else str(csv).encode()
    options.callback = _abi.train_callback(on_record)
    options.checkpoint_path = None if checkpoint is None else _path(checkpoint)
    options.checkpoint_every = _integer(checkpoint_every, "checkpoint_every", 0, 2**31 - 1)
    options.resume = 1 if resume else 0
    taken = ctypes.c_int64()

    def history():
        return {c: np.array([r[c] for r in rows]) for c in columns}

    try:
        prob._check_callbacks(lib.kfp_train(opt.handle, net.handle, prob.handle, ctypes.byref(options),
                                            ctypes.byref(taken)))
    except Error as error:
        error.history = history()
        raise
    finally:
        if show:
            sys.stderr.write("\n")
    if failure:
        raise failure[0]
    return history()


class MPIComm:
    """The processes of an mpi4py communicator as a kfacpinn communicator (libkfacpinn_mpi.so,
    built by scripts/build-mpi.sh next to libkfacpinn.so; KFACPINN_MPI_LIBRARY overrides its
    path). Creating one is collective over `comm` (it is duplicated); `close()` (also collective)
    frees it, after the optimizers using it are freed or detached."""

    def __init__(self, comm):
        from ._lib import mpi_lib
        self._lib = mpi_lib()
        self._comm = _abi.Communicator()
        _check(self._lib.kfp_comm_from_mpi_fortran(int(comm.py2f()), ctypes.byref(self._comm)))
        self.rank, self.size = self._comm.rank, self._comm.num_ranks

    def close(self):
        if self._comm.context:
            self._lib.kfp_comm_free_mpi(ctypes.byref(self._comm))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"kp.MPIComm(rank {self.rank} of {self.size})"


def set_num_threads(n):
    """Number of threads (process-wide): the library's own, and OpenBLAS's outside its computations."""
    _check(lib.kfp_set_num_threads(_integer(n, "num_threads", 1, 1024)))


def get_num_threads():
    return lib.kfp_get_num_threads()
