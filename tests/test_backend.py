"""The backend: NumPy / CuPy, device choice, transfers, the only module importing cupy."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest
from conftest import GPU, requires_gpu

import mlp_core
from mlp_core import backend
from mlp_core.core.backend import (
    get_xp,
    gpu_available,
    resolve_device,
    synchronize,
    to_device,
    to_numpy,
)
from mlp_core.core.errors import ConfigError, MlpCoreError

PACKAGE_DIR = pathlib.Path(mlp_core.__file__).resolve().parent


# --------------------------------------------------------------------------- device choice


def test_gpu_available_is_a_bool():
    assert isinstance(gpu_available(), bool)
    assert gpu_available() == GPU


@pytest.mark.parametrize("value", ["cpu", "CPU", " cpu "])
def test_resolve_device_cpu_from_env(monkeypatch, value):
    monkeypatch.setenv("MLP_CORE_DEVICE", value)
    assert resolve_device() == "cpu"
    assert resolve_device(None) == "cpu"


def test_explicit_argument_beats_env(monkeypatch):
    monkeypatch.setenv("MLP_CORE_DEVICE", "junk")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("value", ["auto", None])
def test_resolve_device_auto(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("MLP_CORE_DEVICE", raising=False)  # default is auto
    else:
        monkeypatch.setenv("MLP_CORE_DEVICE", value)
    assert resolve_device() == ("gpu" if gpu_available() else "cpu")
    assert resolve_device("auto") == ("gpu" if gpu_available() else "cpu")


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


@pytest.mark.parametrize("value", ["junk", "cuda", "tpu", ""])
def test_resolve_device_junk(monkeypatch, value):
    monkeypatch.setenv("MLP_CORE_DEVICE", value)
    with pytest.raises(ConfigError) as info:
        resolve_device()
    msg = str(info.value)
    assert repr(value) in msg
    for name in ("cpu", "gpu", "auto"):
        assert name in msg
    assert "MLP_CORE_DEVICE" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, MlpCoreError)


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


def test_synchronize_is_a_noop_on_cpu():
    assert synchronize(np) is None
    if not gpu_available():
        assert synchronize() is None


@requires_gpu
def test_synchronize_on_gpu():  # pragma: no cover - GPU only
    xp = backend.gpu_xp()
    a = xp.ones((512, 512))
    (a @ a).sum()
    assert synchronize(xp) is None
    assert synchronize() is None


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


def test_backend_does_import_cupy_lazily():
    text = (PACKAGE_DIR / "core" / "backend.py").read_text("utf-8")
    assert "import cupy" in text
    # never at module level: importing mlp_core must work without CuPy
    assert not re.search(r"^import cupy|^from cupy", text, re.MULTILINE)


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


def test_default_device_reads_the_environment_else_cpu(monkeypatch):
    monkeypatch.delenv("MLP_CORE_DEVICE", raising=False)
    assert backend.default_device() == "cpu"
    assert backend.default_device("cpu") == "cpu"
    monkeypatch.setenv("MLP_CORE_DEVICE", "cpu")
    assert backend.default_device() == "cpu"
    monkeypatch.setenv("MLP_CORE_DEVICE", "bogus")
    with pytest.raises(ConfigError, match="MLP_CORE_DEVICE"):
        backend.default_device()


def test_to_numpy_of_a_host_array_is_the_array_itself():
    a = np.zeros(3)
    assert to_numpy(a) is a  # the docstring says so: no copy on the host
