"""mlp_core: one-example and batched backpropagation on NumPy and CuPy.

The library behind the book *Vectorized Backpropagation*. Notation is the book's:
``W[l]`` is (h_{l-1}, h_l), ``Z[l] = A[l-1] @ W[l] + b[l]``, ``A[0] = X`` (m, n), and the
layers are numbered 1..L.
"""

from . import (activations, backend, batched, data, gradcheck, io, losses, params, shapes,
               single, train)
from .activations import ACTIVATIONS, get_activation
from .backend import gpu_available, get_xp, resolve_device, synchronize, to_device, to_numpy
from .batched import backprop, forward, loss_and_gradients, mean_loss, predict
from .errors import (ConfigError, DataError, LabelError, MlpCoreError, ParamsFileError,
                     ShapeError, TrainingDiverged)
from .gradcheck import gradient_errors, relative_error
from .losses import LOSSES, get_loss
from .params import Params, init_params
from .single import backprop_single, forward_single, gradients_loop

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "LOSSES", "ConfigError", "DataError", "LabelError", "MlpCoreError",
    "Params", "ParamsFileError", "ShapeError", "TrainingDiverged", "backprop",
    "backprop_single", "forward", "forward_single", "get_activation", "get_loss", "get_xp",
    "gpu_available", "gradient_errors", "gradients_loop", "init_params", "loss_and_gradients",
    "mean_loss", "predict", "relative_error", "resolve_device", "synchronize", "to_device",
    "to_numpy",
]
