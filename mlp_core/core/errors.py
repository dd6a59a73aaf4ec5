"""The errors mlp_core raises.

Every refusal is an :class:`MlpCoreError` (a ``ValueError``), and its message says
which matrix or argument is wrong, what was expected, what was found, and the likely fix.
"""


class MlpCoreError(ValueError):
    """Base: every refusal of mlp_core is one of these."""


class ShapeError(MlpCoreError):
    """An array has the wrong shape for the book's notation (e.g. a transposed ``W[l]``)."""


class DataError(MlpCoreError):
    """Inputs that cannot be trained on: NaN/Inf, integer X, empty data, a bad file."""


class LabelError(DataError):
    """Labels where one-hot rows were expected (or the reverse), labels out of range, or
    targets the loss cannot learn from (a row that is not a distribution, say)."""


class ParamsFileError(MlpCoreError):
    """A parameter file that is missing, truncated or does not fit the network."""


class ConfigError(MlpCoreError):
    """A setting of the wrong kind or out of range: an unknown activation, loss or device
    name, a batch size < 1, a learning rate ≤ 0, a data set too large for memory."""


class TrainingDiverged(MlpCoreError):
    """The loss became NaN or Inf, or grew far above where training started."""


class ParamsError(MlpCoreError):
    """Parameters in the wrong container: a ``(W, b)`` tuple, lists, a dict for a Params."""
