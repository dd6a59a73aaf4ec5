"""mlp_core: one-example and batched backpropagation on NumPy and CuPy.

The library behind the book *Vectorized Backpropagation*. Notation is the book's:
``W[l]`` is (h_{l-1}, h_l), ``Z[l] = A[l-1] @ W[l] + b[l]``, ``A[0] = X`` (m, n), and the
layers are numbered 1..L.

The package is built in layers; each imports only the layers before it:

==================  ======================================================================
``core``            the formulas, validation, parameters, data, files (NumPy)
``fast``            the same epoch rearranged for speed (NumPy and CuPy kernels)
``training``        mini-batch SGD: ``mc.train(params, X, Y, ...)``, the one training loop
``distributed``     data-parallel SGD on MPI: the same loop, its batch sum an all-reduce
``bench``           ``python -m mlp_core bench`` and the book's Part III experiments
``book``            diagrams, plots, widgets, exercises (the ``book`` extra)
``cli``             ``python -m mlp_core train|bench``
==================  ======================================================================

``import mlp_core`` loads ``core``, ``fast`` and ``training`` only (NumPy, no matplotlib).
"""

from . import fast, training
from ._version import __version__
from .core import (
    activations,
    backend,
    batched,
    batching,
    data,
    errors,
    gradcheck,
    io,
    losses,
    params,
    single,
    validate,
)
from .core.activations import ACTIVATIONS, get_activation
from .core.backend import get_xp, gpu_available, resolve_device, synchronize, to_device, to_numpy
from .core.batched import backprop, forward, loss_and_gradients, mean_loss, predict
from .core.errors import (
    ConfigError,
    DataError,
    LabelError,
    MlpCoreError,
    ParamsError,
    ParamsFileError,
    ShapeError,
    TrainingDiverged,
)
from .core.gradcheck import gradient_errors, relative_error
from .core.io import load_params, save_params
from .core.losses import LOSSES, get_loss
from .core.params import Params, init_params
from .core.single import backprop_single, forward_single, gradients_loop
from .training import History, evaluate, train

__all__ = [
    "__version__",
    "ACTIVATIONS",
    "LOSSES",
    "ConfigError",
    "DataError",
    "History",
    "LabelError",
    "MlpCoreError",
    "Params",
    "ParamsError",
    "ParamsFileError",
    "ShapeError",
    "TrainingDiverged",
    "activations",
    "backend",
    "backprop",
    "backprop_single",
    "batched",
    "batching",
    "data",
    "errors",
    "evaluate",
    "fast",
    "forward",
    "forward_single",
    "get_activation",
    "get_loss",
    "get_xp",
    "gpu_available",
    "gradcheck",
    "gradient_errors",
    "gradients_loop",
    "init_params",
    "io",
    "load_params",
    "loss_and_gradients",
    "losses",
    "mean_loss",
    "params",
    "predict",
    "relative_error",
    "resolve_device",
    "save_params",
    "single",
    "synchronize",
    "to_device",
    "to_numpy",
    "train",
    "training",
    "validate",
]
