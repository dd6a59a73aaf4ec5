"""The backend (NumPy / CuPy, device choice, transfers) and parameter initialisation."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest
from conftest import GPU, NO_GPU_REASON, requires_gpu

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
from mlp_core.core.params import Params, init_params

PACKAGE_DIR = pathlib.Path(mlp_core.__file__).resolve().parent
SIZES = (5, 4, 6, 3)


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
    # and no silent fall-back: creating parameters on the GPU refuses too
    with pytest.raises(ConfigError, match="gpu"):
        init_params(SIZES, device="gpu")


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
    assert get_xp(d) is backend.xp_for_device(device)
    back = to_numpy(d)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a)


def test_synchronize_is_a_noop_on_cpu():
    assert synchronize(np) is None
    if not gpu_available():
        assert synchronize() is None


@requires_gpu
def test_synchronize_on_gpu():  # pragma: no cover - GPU only
    xp = backend.xp_for_device("gpu")
    a = xp.ones((512, 512))
    (a @ a).sum()
    assert synchronize(xp) is None
    assert synchronize() is None


# --------------------------------------------------------------------------- init_params


def test_same_seed_same_numbers():
    p, q = init_params(SIZES, seed=3), init_params(SIZES, seed=3)
    for l in p.layers:
        np.testing.assert_array_equal(p.W[l], q.W[l])
        np.testing.assert_array_equal(p.b[l], q.b[l])


def test_different_seeds_differ():
    p, q = init_params(SIZES, seed=3), init_params(SIZES, seed=4)
    for l in p.layers:
        assert not np.array_equal(p.W[l], q.W[l])


def test_shapes_follow_the_book():
    p = init_params(SIZES, seed=0)
    assert isinstance(p, Params)
    assert p.L == len(SIZES) - 1
    assert list(p.layers) == [1, 2, 3]
    assert sorted(p.W) == [1, 2, 3] and sorted(p.b) == [1, 2, 3]  # no layer 0
    for l in p.layers:
        assert p.W[l].shape == (SIZES[l - 1], SIZES[l])
        assert p.b[l].shape == (SIZES[l],)
        np.testing.assert_array_equal(p.b[l], 0)
    assert p.sizes == SIZES
    assert p.count() == sum(SIZES[l - 1] * SIZES[l] + SIZES[l] for l in range(1, len(SIZES)))
    assert p.device == "cpu"


def test_dtype_is_respected(dtype):
    p = init_params(SIZES, seed=0, dtype=dtype)
    assert p.dtype == dtype
    for l in p.layers:
        assert p.W[l].dtype == dtype and p.b[l].dtype == dtype
    # float32 is the float64 draw, rounded: the same starting point in both dtypes
    p64 = init_params(SIZES, seed=0, dtype=np.float64)
    for l in p.layers:
        np.testing.assert_array_equal(p.W[l], p64.W[l].astype(dtype))


@pytest.mark.parametrize("scheme", ["he", "xavier"])
def test_init_variance(scheme):
    fan_in, fan_out = 800, 600
    p = init_params((fan_in, fan_out, 7), seed=0, scheme=scheme)
    expected = 2.0 / fan_in if scheme == "he" else 2.0 / (fan_in + fan_out)
    W = p.W[1]
    assert abs(W.mean()) < 0.01 * np.sqrt(expected)
    assert W.var() == pytest.approx(expected, rel=0.03)


def test_he_and_xavier_differ():
    he = init_params((50, 30, 7), seed=0, scheme="he")
    xa = init_params((50, 30, 7), seed=0, scheme="xavier")
    assert he.W[1].std() > xa.W[1].std()


@pytest.mark.parametrize("sizes", [(5,), (), (5, 0, 3), (5, -2, 3), (5, 2.5, 3)])
def test_bad_sizes_are_refused(sizes):
    with pytest.raises(ConfigError, match="sizes"):
        init_params(sizes)


def test_unknown_scheme_is_refused():
    with pytest.raises(ConfigError, match="he, xavier"):
        init_params(SIZES, scheme="lecun")


def test_params_to_cpu_and_astype_copy():
    p = init_params(SIZES, seed=1)
    q = p.astype(np.float32)
    assert q.dtype == np.float32 and p.dtype == np.float64
    c = p.copy()
    c.W[1][0, 0] += 1
    assert c.W[1][0, 0] != p.W[1][0, 0]


@requires_gpu
@pytest.mark.gpu
def test_gpu_params_equal_cpu_params_exactly(dtype):  # pragma: no cover - GPU only
    cpu = init_params(SIZES, seed=7, dtype=dtype, device="cpu")
    gpu = init_params(SIZES, seed=7, dtype=dtype, device="gpu")
    assert gpu.device == "gpu" and gpu.dtype == dtype
    for l in cpu.layers:
        assert backend.is_gpu_array(gpu.W[l]) and backend.is_gpu_array(gpu.b[l])
        np.testing.assert_array_equal(to_numpy(gpu.W[l]), cpu.W[l])
        np.testing.assert_array_equal(to_numpy(gpu.b[l]), cpu.b[l])
    back = gpu.to("cpu")
    assert back.device == "cpu"
    for l in cpu.layers:
        np.testing.assert_array_equal(back.W[l], cpu.W[l])


def test_params_on_every_device_equal_cpu(device):
    cpu = init_params(SIZES, seed=8, device="cpu")
    here = init_params(SIZES, seed=8, device=device)
    assert here.device == device
    for l in cpu.layers:
        np.testing.assert_array_equal(to_numpy(here.W[l]), cpu.W[l])


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
        "mlp_core.backend.get_xp(arrays) (or xp_for_device) instead."
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


def test_no_gpu_reason_is_clear():
    assert "CuPy" in NO_GPU_REASON and "GPU" in NO_GPU_REASON
