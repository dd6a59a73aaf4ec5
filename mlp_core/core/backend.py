"""The array namespace ``xp``: NumPy on the CPU, CuPy on a GPU.

This is the only module that imports :mod:`cupy`. The rest of the library asks
:func:`get_xp` for the namespace of the arrays it was given, so one function body runs
on both devices.

The device is chosen by the arrays themselves, or, when creating or moving arrays, by
:func:`resolve_device`: an argument, else the environment variable ``MLP_CORE_DEVICE``
(``cpu``, ``gpu`` or ``auto``), else the CPU.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from .errors import ConfigError

DEVICES = ("cpu", "gpu", "auto")


@functools.lru_cache(maxsize=1)
def gpu_xp():
    """CuPy, the namespace of GPU arrays, if it imports *and* a CUDA device can be used;
    else ``None``. The one way the rest of the package reaches CuPy.

    ``import cupy`` succeeds on machines without a driver or a GPU, so we also allocate
    a tiny array and run a kernel on it: only then does a GPU count as present.
    """
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        (cupy.arange(3) * 2).sum().item()
        return cupy
    except Exception:  # noqa: BLE001 - no cupy, no driver, no device, or a broken install
        return None


def gpu_available() -> bool:
    """True when CuPy imports and a CUDA device can actually run a kernel."""
    return gpu_xp() is not None


def resolve_device(device: str | None = None) -> str:
    """The one device rule: ``'cpu' | 'gpu' | 'auto' | None`` becomes ``'cpu'`` or ``'gpu'``.

    ``None`` means ``MLP_CORE_DEVICE`` if it is set, else ``'cpu'``. New parameters then
    sit where data already are: :func:`mlp_core.data.load_digits`, scikit-learn and every
    common data loader return NumPy arrays, so ``mc.train(mc.init_params(sizes), X, Y)``
    works on a laptop with a GPU too. The GPU is used when asked for, as an argument or in
    ``MLP_CORE_DEVICE``: ``'auto'`` takes it where one can be used (else the CPU), and
    ``'gpu'`` where none can be used is an error, never a silent fall-back to the CPU.
    """
    if device is None:
        device = os.environ.get("MLP_CORE_DEVICE") or "cpu"
    device = str(device).strip().lower()
    if device not in DEVICES:
        raise ConfigError(
            f"device {device!r} is not one of {', '.join(DEVICES)}; "
            "set MLP_CORE_DEVICE=cpu|gpu|auto or pass device='cpu'."
        )
    if device == "auto":
        return "gpu" if gpu_available() else "cpu"
    if device == "gpu" and not gpu_available():
        raise ConfigError(
            "device 'gpu' was requested but no usable CUDA device was found "
            "(CuPy missing, no driver, or no GPU). Install the extra with "
            "`pip install mlp_core[gpu]` on a machine with a GPU, or use device='cpu' "
            "(--device cpu on the command line)."
        )
    return device


def is_gpu_array(a) -> bool:
    """True for a CuPy array (checked without importing CuPy)."""
    return type(a).__module__.split(".")[0] == "cupy"


def get_xp(*arrays):
    """The namespace of the given arrays: ``cupy`` if any is a CuPy array, else ``numpy``.

    Mixing host and device arrays in one computation is refused by CuPy itself; here we
    only pick the namespace.
    """
    for a in arrays:
        if is_gpu_array(a):
            return gpu_xp() or __import__("cupy")
    return np


def device_of(a) -> str:
    """``'gpu'`` for a CuPy array, ``'cpu'`` otherwise."""
    return "gpu" if is_gpu_array(a) else "cpu"


def to_device(a, device: str | None = None):
    """``a`` on ``device`` (:func:`resolve_device`): a host array copied to the GPU, or a
    GPU array brought back (a no-op when it is already there)."""
    if resolve_device(device) == "cpu":
        return to_numpy(a)
    return gpu_xp().asarray(a)


def to_numpy(a):
    """``a`` as a NumPy array: a host copy of a CuPy array (``a.get()``); a host array
    comes back as it is (``np.asarray``, no copy), so writing to it writes to ``a``."""
    return a.get() if is_gpu_array(a) else np.asarray(a)


def synchronize(xp=None) -> None:
    """Wait until the GPU has finished all queued work (a no-op on NumPy).

    CuPy launches kernels asynchronously: a clock read without this measures only the
    time to *queue* the work, not to do it.
    """
    xp = gpu_xp() if xp is None else xp
    if xp is not None and xp is not np:
        xp.cuda.Device().synchronize()
