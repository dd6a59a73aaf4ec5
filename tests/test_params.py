"""Parameters: init_params (seeds, schemes, dtypes, devices, refusals) and Params."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import requires_gpu

from mlp_core import backend
from mlp_core.core.backend import to_numpy
from mlp_core.core.errors import ConfigError, ShapeError
from mlp_core.core.params import Params, init_params, parameter_count

SIZES = (5, 4, 6, 3)


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


def test_params_to_always_copies(device):
    """Params.to never shares memory, even when the arrays are already on ``device``."""
    p = init_params(SIZES, seed=1, device=device)
    for target in (device, None, "auto"):
        if target != device and device == "gpu":
            continue
        q = p.to(target)
        q.W[1][0, 0] += 1
        assert float(q.W[1][0, 0]) != float(p.W[1][0, 0]), target


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.longdouble, "bogus", bool])
def test_init_params_refuses_a_dtype_it_cannot_train_in(dtype):
    with pytest.raises(ConfigError, match="float32 or np.float64"):
        init_params(SIZES, dtype=dtype)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", float("nan"), True])
def test_init_params_refuses_a_bad_seed(seed):
    with pytest.raises(ConfigError, match="seed must be a whole number"):
        init_params(SIZES, seed=seed)


def test_init_params_accepts_whole_number_sizes_and_seeds():
    p = init_params((5.0, np.int64(4), 3), seed=np.int64(2))
    assert p.sizes == (5, 4, 3)
    q = init_params((5, 4, 3), seed=2.0)
    np.testing.assert_array_equal(p.W[1], q.W[1])


def test_init_params_honours_MLP_CORE_DEVICE(monkeypatch):
    monkeypatch.setenv("MLP_CORE_DEVICE", "bogus")
    with pytest.raises(ConfigError, match="bogus"):
        init_params(SIZES)  # the default device is read from the environment
    monkeypatch.setenv("MLP_CORE_DEVICE", "cpu")
    assert init_params(SIZES).device == "cpu"
    monkeypatch.delenv("MLP_CORE_DEVICE")
    assert init_params(SIZES).device == "cpu"  # unset: the CPU, beside the host data


def test_params_properties_follow_the_book():
    p = init_params(SIZES, seed=0)
    assert p.L == 3 and list(p.layers) == [1, 2, 3] and p.sizes == SIZES
    assert p.count() == sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:]))
    assert p.device == "cpu" and p.xp is np and p.dtype == np.float64


@pytest.mark.parametrize(
    "sizes", [{5: "a", 3: "b"}, {"W": 1, "b": 2}, {5, 3}, "53", b"\x05\x03"], ids=repr
)
def test_init_params_refuses_sizes_that_are_not_a_sequence_of_widths(sizes):
    with pytest.raises(ConfigError, match=r"sizes .*e\.g\. \(64, 32, 10\)"):
        init_params(sizes)


def test_init_params_given_a_network_says_how_to_wrap_one():
    p = init_params(SIZES)
    for given in (p.W, p.b):  # a dict of arrays: not the widths
        with pytest.raises(ConfigError, match=r"mc\.Params\(W, b\)"):
            init_params(given)


@pytest.mark.parametrize("keys", [(1, 3), (0, 1), (2, 3), (1, 2.5)])
def test_params_keyed_other_than_1_to_L_say_so_wherever_they_are_read(keys):
    p = init_params((5, 4, 3), seed=0)
    bad = Params(dict(zip(keys, p.W.values())), dict(zip(keys, p.b.values())))
    for read in (lambda q: q.sizes, lambda q: q.count(), lambda q: q.to("cpu").sizes):
        with pytest.raises(ShapeError, match=r"keyed by|integer layer indices"):
            read(bad)


def test_count_is_the_number_of_scalars():
    p = init_params(SIZES, seed=0)
    assert p.count() == sum(p.W[l].size + p.b[l].size for l in p.layers) == parameter_count(SIZES)
