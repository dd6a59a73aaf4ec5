"""The backend: NumPy / CuPy, device choice, transfers, the only module importing cupy."""

from __future__ import annotations

import pathlib
import re
import sys

import numpy as np
import pytest
from conftest import GPU, requires_gpu

import mlp_core
from mlp_core import backend
from mlp_core.core.backend import get_xp, gpu_available, resolve_device, to_device, to_numpy
from mlp_core.core.errors import ConfigError, DataError
from mlp_core.core.params import Params, init_params

PACKAGE_DIR = pathlib.Path(mlp_core.__file__).resolve().parent


# --------------------------------------------------------------------------- device choice


def test_without_cupy_there_is_no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    backend.gpu_xp.cache_clear()
    try:
        assert backend.gpu_xp() is None and gpu_available() is False
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ConfigError, match="no usable CUDA device"):
            resolve_device("gpu")
    finally:
        monkeypatch.undo()
        backend.gpu_xp.cache_clear()
    assert gpu_available() == GPU


def pretend_gpu(monkeypatch):
    """A machine where a GPU can be used, as the device rule sees it."""
    monkeypatch.setattr(backend, "gpu_available", lambda: True)
    monkeypatch.delenv("MLP_CORE_DEVICE", raising=False)


@pytest.mark.parametrize("unset", [None, ""])
def test_one_device_rule_none_is_the_cpu_even_with_a_gpu(monkeypatch, unset):
    """With no argument and no MLP_CORE_DEVICE, new and moved arrays stay on the CPU,
    beside the NumPy data every loader returns, whether or not there is a GPU."""
    pretend_gpu(monkeypatch)
    if unset is not None:
        monkeypatch.setenv("MLP_CORE_DEVICE", unset)
    assert resolve_device() == resolve_device(None) == "cpu"
    assert resolve_device("auto") == "gpu"
    assert isinstance(to_device(np.zeros(3)), np.ndarray)
    p = init_params((5, 4, 3))
    assert p.device == p.to(None).device == "cpu"


@pytest.mark.parametrize("env", ["auto", "gpu"])
def test_MLP_CORE_DEVICE_chooses_the_gpu_for_every_caller(monkeypatch, env):
    pretend_gpu(monkeypatch)
    monkeypatch.setenv("MLP_CORE_DEVICE", env)
    assert resolve_device() == resolve_device(None) == "gpu"
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("value", ["cpu", "CPU", " cpu "])
def test_resolve_device_cpu_from_env(monkeypatch, value):
    monkeypatch.setenv("MLP_CORE_DEVICE", value)
    assert resolve_device() == "cpu"
    assert resolve_device(None) == "cpu"


def test_explicit_argument_beats_env(monkeypatch):
    monkeypatch.setenv("MLP_CORE_DEVICE", "junk")
    assert resolve_device("cpu") == "cpu"


def test_resolve_device_auto(monkeypatch):
    monkeypatch.setenv("MLP_CORE_DEVICE", "auto")
    assert resolve_device() == resolve_device("auto") == ("gpu" if GPU else "cpu")


@requires_gpu
def test_resolve_device_gpu_with_a_gpu(monkeypatch):  # pragma: no cover - GPU only
    monkeypatch.setenv("MLP_CORE_DEVICE", "gpu")
    assert resolve_device() == "gpu"


@pytest.mark.skipif(GPU, reason="a usable GPU is present, so 'gpu' is not refused")
@pytest.mark.parametrize("how", ["env", "argument"])
def test_gpu_requested_without_gpu_is_a_helpful_error(monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("MLP_CORE_DEVICE", "gpu")
        call = resolve_device
    else:
        monkeypatch.delenv("MLP_CORE_DEVICE", raising=False)

        def call():
            return resolve_device("gpu")

    with pytest.raises(ConfigError, match="no usable CUDA device") as info:
        call()
    msg = str(info.value)
    assert "device='cpu'" in msg  # the fix
    assert "CuPy" in msg
    # and no silent fall-back: moving an array to the GPU refuses too
    with pytest.raises(ConfigError, match="gpu"):
        to_device(np.zeros(3), "gpu")


@pytest.mark.parametrize("value", ["junk", "cuda", "tpu"])
def test_resolve_device_junk(monkeypatch, value):
    monkeypatch.setenv("MLP_CORE_DEVICE", value)
    with pytest.raises(ConfigError) as info:
        resolve_device()
    msg = str(info.value)
    assert repr(value) in msg
    for name in ("cpu", "gpu", "auto"):
        assert name in msg
    assert "MLP_CORE_DEVICE" in msg


# --------------------------------------------------------------------------- namespaces, transfers


def test_get_xp_of_numpy_arrays_is_numpy():
    a, b = np.zeros((7, 5)), np.ones(3, dtype=np.float32)
    assert get_xp(a) is np
    assert get_xp(a, b) is np
    assert get_xp() is np
    assert get_xp(1.0, [1, 2]) is np
    assert backend.device_of(a) == "cpu"
    assert not backend.is_gpu_array(a)


def test_to_numpy_to_device_round_trip_on_cpu(dtype):
    a = np.random.default_rng(0).normal(size=(7, 5)).astype(dtype)
    d = to_device(a, "cpu")
    assert isinstance(d, np.ndarray) and d.dtype == dtype
    back = to_numpy(d)
    assert isinstance(back, np.ndarray) and back.dtype == dtype
    np.testing.assert_array_equal(back, a)
    assert isinstance(to_numpy([1.0, 2.0]), np.ndarray)


def test_round_trip_on_every_device(device, dtype):
    a = np.random.default_rng(1).normal(size=(7, 5)).astype(dtype)
    d = to_device(a, device)
    assert backend.device_of(d) == device
    assert d.dtype == dtype and d.shape == a.shape
    assert get_xp(d) is (np if device == "cpu" else backend.gpu_xp())
    back = to_numpy(d)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a)


class FakeGpuArray:
    """Looks like a CuPy array to the device rule (its module is cupy's)."""

    __module__ = "cupy._core.core"

    def __init__(self, a):
        self.shape, self.ndim, self.dtype = a.shape, a.ndim, a.dtype


def test_arrays_on_another_device_than_the_parameters_are_refused_with_the_fix():
    p = init_params((5, 4, 3), seed=0)
    X, Y = np.zeros((7, 5)), np.eye(3)[[0, 1, 2, 0, 1, 2, 0]]
    with pytest.raises(DataError, match=r"X is on the gpu but the parameters are on the cpu"):
        mlp_core.backprop(FakeGpuArray(X), Y, p)
    with pytest.raises(DataError, match=r"Y is on the gpu.*params\.to\('gpu'\)"):
        mlp_core.backprop(X, FakeGpuArray(Y), p)
    on_gpu = Params({**p.W, 1: FakeGpuArray(p.W[1])}, p.b)
    with pytest.raises(DataError, match=r"mc\.to_device\(X, params\.device\)"):
        mlp_core.predict(X, on_gpu)


@requires_gpu
def test_host_data_with_gpu_parameters_is_refused_on_a_gpu():  # pragma: no cover - GPU only
    p = init_params((5, 4, 3), seed=0, device="gpu")
    with pytest.raises(DataError, match="X is on the cpu but the parameters are on the gpu"):
        mlp_core.predict(np.zeros((7, 5)), p)


# ----------------------------------------------------------- only backend imports cupy

CUPY_IMPORT = re.compile(
    r"^\s*(from\s+cupy\b|import\s+[^#\n]*\bcupy\b)"
    r"|__import__\(\s*['\"]cupy|import_module\(\s*['\"]cupy",
    re.MULTILINE,
)


def test_only_backend_imports_cupy():
    sources = sorted(PACKAGE_DIR.rglob("*.py"))
    assert any(p.name == "backend.py" for p in sources)
    offenders = {}
    for path in sources:
        if path == PACKAGE_DIR / "core" / "backend.py":
            continue
        hits = [m.group(0).strip() for m in CUPY_IMPORT.finditer(path.read_text("utf-8"))]
        if hits:
            offenders[str(path.relative_to(PACKAGE_DIR))] = hits
    assert not offenders, (
        f"only mlp_core/core/backend.py may import cupy; found {offenders}. Use "
        "mlp_core.backend.get_xp(arrays) instead."
    )


def test_cupy_import_regex_catches_the_usual_forms():
    for line in [
        "import cupy",
        "    import cupy as cp",
        "from cupy import cuda",
        "import numpy, cupy",
        "xp = __import__('cupy')",
        'importlib.import_module("cupy")',
    ]:
        assert CUPY_IMPORT.search(line), line
    for line in ["# CuPy arrays", "type(a).__module__ == 'cupy'", "import cupyx_not"]:
        assert not CUPY_IMPORT.search(line), line


def test_to_numpy_of_a_host_array_is_the_array_itself():
    a = np.zeros(3)
    assert to_numpy(a) is a  # the docstring says so: no copy on the host
