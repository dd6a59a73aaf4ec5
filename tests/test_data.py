"""Tests for mlp_core.data. Sizes are all different (m=7, n=5, C=3) so a transpose cannot hide."""

import gzip
import struct

import numpy as np
import pytest

from mlp_core.core import validate
from mlp_core.core.data import (
    Dataset,
    load_digits,
    load_mnist,
    one_hot,
    read_idx,
    spirals,
    train_test_split,
    xor,
)
from mlp_core.core.errors import ConfigError, DataError, LabelError, ShapeError

M, N, C = 7, 5, 3


# ----------------------------------------------------------------------------- helpers

_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def idx_bytes(a: np.ndarray) -> bytes:
    """IDX encoding written independently of the reader: struct header + big-endian data."""
    code = _CODES[a.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ----------------------------------------------------------------------------- digits


def test_load_digits_shape_range_and_labels():
    d = load_digits()
    assert isinstance(d, Dataset)
    assert d.X.shape == (1797, 64) and d.X.dtype == np.float64
    assert d.labels.shape == (1797,) and d.labels.dtype == np.int64
    assert d.X.min() == 0.0 and d.X.max() == 1.0
    # scaled by exactly 16: every value is a multiple of 1/16
    assert np.allclose(d.X * 16, np.round(d.X * 16))
    assert d.C == 10 and set(np.unique(d.labels)) == set(range(10))
    assert d.image_shape == (8, 8) and (d.m, d.n) == (1797, 64)
    assert d.Y.shape == (1797, 10)


def test_load_digits_float32_and_refuses_int_dtype():
    assert load_digits(np.float32).X.dtype == np.float32
    with pytest.raises(ConfigError, match="dtype"):
        load_digits(np.int64)


def test_dataset_refuses_mismatched_labels():
    with pytest.raises(ShapeError, match="labels"):
        Dataset(X=np.zeros((M, N)), labels=np.zeros(M + 1, dtype=np.int64), C=C, name="t")


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    a = (
        rng.normal(0, 50, size=(M, 4, N))
        if np.dtype(dtype).kind == "f"
        else rng.integers(0, 100, size=(M, 4, N))
    ).astype(dtype)
    if np.dtype(dtype).kind == "i":
        a[0, 0, 0] = -3  # a negative value survives the signed types
    # the file name says nothing about gzip: detection is by magic bytes
    p = write(tmp_path / "data.bin", idx_bytes(a), gz=gz)
    out = read_idx(p)
    assert out.shape == (M, 4, N)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


def test_read_idx_one_dimensional(tmp_path):
    a = np.array([3, 1, 4, 1, 5, 9, 2], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "l.idx1", idx_bytes(a))), a)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_refuses_truncated_data(tmp_path, gz):
    data = idx_bytes(np.arange(M * N, dtype=np.int32).reshape(M, N))
    p = write(tmp_path / "t.idx", data[:-5], gz=gz)
    with pytest.raises(DataError, match="truncated") as e:
        read_idx(p)
    assert f"({M}, {N})" in str(e.value)


def test_read_idx_refuses_truncated_header_and_gzip_stream(tmp_path):
    data = idx_bytes(np.zeros((M, N), dtype=np.uint8))
    with pytest.raises(DataError, match="truncated"):
        read_idx(write(tmp_path / "h.idx", data[:9]))  # header needs 4 + 2*4 = 12 bytes
    with pytest.raises(DataError, match="gzip"):
        read_idx(write(tmp_path / "g.gz", gzip.compress(data)[:-6]))
    with pytest.raises(DataError):
        read_idx(write(tmp_path / "e.idx", b"\x00\x00"))


def test_read_idx_refuses_bad_magic_and_unknown_type(tmp_path):
    data = idx_bytes(np.zeros((M, N), dtype=np.uint8))
    with pytest.raises(DataError, match="magic") as e:
        read_idx(write(tmp_path / "m.idx", b"\x01\x00" + data[2:]))
    assert "0x01" in str(e.value)
    with pytest.raises(DataError, match="0x0A"):
        read_idx(write(tmp_path / "u.idx", data[:2] + b"\x0a" + data[3:]))


def test_read_idx_refuses_extra_bytes_and_missing_file(tmp_path):
    data = idx_bytes(np.zeros((M, N), dtype=np.uint8))
    with pytest.raises(DataError, match=r"corrupt: .* 35 data bytes, but 36 data bytes follow"):
        read_idx(write(tmp_path / "x.idx", data + b"\x00"))
    with pytest.raises(DataError, match="never downloads"):
        read_idx(tmp_path / "nope.idx")


def test_load_mnist_from_own_files(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(M, 28, 28)).astype(np.uint8)
    images[0, 0, 0], images[1, 0, 0] = 0, 255
    labels = np.array([0, 9, 3, 3, 1, 2, 7], dtype=np.uint8)
    ip = write(tmp_path / "imgs", idx_bytes(images), gz=True)
    lp = write(tmp_path / "labs", idx_bytes(labels))
    d = load_mnist(ip, lp, dtype=np.float32)
    assert d.X.shape == (M, 784) and d.X.dtype == np.float32
    assert d.X.min() == 0.0 and d.X.max() == 1.0
    np.testing.assert_allclose(d.X[3], images[3].ravel() / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.labels, labels)
    assert d.labels.dtype == np.int64 and d.C == 10 and d.image_shape == (28, 28)


def test_load_mnist_refuses_count_mismatch_and_swapped_files(tmp_path):
    ip = write(tmp_path / "i", idx_bytes(np.zeros((M, 28, 28), dtype=np.uint8)))
    lp = write(tmp_path / "l", idx_bytes(np.zeros(M - 1, dtype=np.uint8)))
    with pytest.raises(DataError, match="labels_path") as e:
        load_mnist(ip, lp)
    assert str(M) in str(e.value) and str(M - 1) in str(e.value)
    with pytest.raises(ShapeError, match="swap"):
        load_mnist(lp, ip)


# ----------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("m,k", [(7, 3), (300, 3), (10, 4)])
def test_spirals_shape_balance(m, k):
    d = spirals(m, C=k, seed=3)
    assert d.X.shape == (m, 2) and d.labels.shape == (m,) and d.C == k
    counts = np.bincount(d.labels, minlength=k)
    assert counts.sum() == m and counts.max() - counts.min() <= 1
    assert np.all(np.linalg.norm(d.X, axis=1) <= 1.0 + 1e-12)  # radius runs 0..1


def test_spirals_deterministic_per_seed():
    a, b, c = spirals(60, seed=5), spirals(60, seed=5), spirals(60, seed=6)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.allclose(a.X, c.X)


def test_spirals_refuses_too_few_points():
    with pytest.raises(ConfigError, match="m must be a whole number ≥ 3, got 2.*each of its"):
        spirals(2, C=3)
    with pytest.raises(ConfigError, match="C must be a whole number ≥ 2.*spiral arms"):
        spirals(10, C=1)


@pytest.mark.parametrize("m", [7, 8, 101])
def test_xor_shape_balance_and_labels(m):
    d = xor(m, seed=4)
    assert d.X.shape == (m, 2) and d.C == 2 and d.labels.dtype == np.int64
    counts = np.bincount(d.labels, minlength=2)
    assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(d.labels, (d.X[:, 0] > 0) ^ (d.X[:, 1] > 0))


def test_xor_deterministic_per_seed():
    np.testing.assert_array_equal(xor(20, seed=1).X, xor(20, seed=1).X)
    assert not np.allclose(xor(20, seed=1).X, xor(20, seed=2).X)


# ----------------------------------------------------------------------------- one-hot


def test_one_hot_values_and_round_trip():
    labels = np.array([2, 0, 1, 1, 2, 0, 2])
    Y = one_hot(labels, C)
    assert Y.shape == (M, C) and Y.dtype == np.float64
    np.testing.assert_array_equal(Y.sum(axis=1), np.ones(M))
    assert Y[0, 2] == 1 and Y[1, 0] == 1 and Y[0, 0] == 0
    np.testing.assert_array_equal(Y.argmax(axis=1), labels)
    # C inferred as max + 1, and an explicit larger C adds empty columns
    assert one_hot(labels).shape == (M, 3)
    assert one_hot(labels, 5, dtype=np.float32).shape == (M, 5)
    assert one_hot(labels, 5, dtype=np.float32).dtype == np.float32
    # integer-valued floats and bools are accepted
    np.testing.assert_array_equal(one_hot(labels.astype(float), C), Y)
    np.testing.assert_array_equal(one_hot(np.array([True, False]))[:, 1], [1, 0])


def test_one_hot_refuses_non_integer_labels():
    with pytest.raises(LabelError, match="labels") as e:
        one_hot(np.array([0.0, 1.5, 2.0]))
    assert "1.5" in str(e.value) and "index 1" in str(e.value)
    with pytest.raises(LabelError, match="np.unique"):
        one_hot(np.array(["cat", "dog"]))


def test_one_hot_refuses_already_one_hot():
    with pytest.raises(LabelError, match="already one-hot"):
        one_hot(one_hot(np.array([0, 1, 2, 1])))
    with pytest.raises(LabelError, match="ravel"):
        one_hot(np.array([[0], [2], [1]]))


def test_one_hot_refuses_out_of_range_and_empty():
    with pytest.raises(LabelError, match="negative") as e:
        one_hot(np.array([0, 2, -1, 1]), C)
    assert "-1" in str(e.value) and "index 2" in str(e.value)
    with pytest.raises(LabelError, match="C >= 4") as e:
        one_hot(np.array([0, 1, 2, 3]), C)
    assert "value 3 at index 3" in str(e.value)
    with pytest.raises(LabelError, match="empty"):
        one_hot(np.array([], dtype=np.int64))
    with pytest.raises(ConfigError, match="C must be a whole number ≥ 1"):
        one_hot(np.array([0, 1]), 0)


# ----------------------------------------------------------------------------- split


def test_train_test_split_stratified_and_deterministic():
    X = np.arange(40 * N, dtype=float).reshape(40, N)
    y = np.repeat([0, 1, 2, 3], 10)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_fraction=0.2, seed=0)
    assert Xtr.shape == (32, N) and Xte.shape == (8, N) and ytr.shape == (32,)
    np.testing.assert_array_equal(np.bincount(yte), [2, 2, 2, 2])
    # rows stay with their labels, and nothing is lost or duplicated
    np.testing.assert_array_equal(Xtr[:, 0] // (10 * N), ytr)
    assert sorted(np.concatenate([Xtr[:, 0], Xte[:, 0]])) == sorted(X[:, 0])
    again = train_test_split(X, y, test_fraction=0.2, seed=0)
    np.testing.assert_array_equal(again[1], Xte)
    other = train_test_split(X, y, test_fraction=0.2, seed=1)
    assert not np.array_equal(other[1], Xte)


def test_train_test_split_refusals():
    X = np.zeros((M, N))
    with pytest.raises(ConfigError, match="test_fraction"):
        train_test_split(X, np.zeros(M, dtype=int), test_fraction=1.5)
    with pytest.raises(ShapeError, match="labels"):
        train_test_split(X, np.zeros(M + 1, dtype=int))
    with pytest.raises(DataError, match="stratify=False"):
        train_test_split(X, np.array([0, 0, 0, 0, 1, 1, 2]))  # class 2 has one member


# ----------------------------------------------------------------- IDX sizes, whole numbers


@pytest.mark.parametrize(
    "dims, data",
    [((2**32 - 1,) * 3, 16), ((2**16,) * 4, 0), ((2**16,) * 4, 16), ((2**31, 2**31, 4), 0)],
)
def test_idx_header_whose_sizes_overflow_is_refused(tmp_path, dims, data):
    """The product of the sizes must not wrap around (2^64 → 0 in int64)."""
    p = tmp_path / "big.idx"
    header = bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    p.write_bytes(header + bytes(data))
    with pytest.raises(DataError, match="truncated"):
        read_idx(p)


def test_synthetic_sets_take_whole_numbers_of_any_type():
    assert spirals(np.int64(9), C=3.0).m == 9 and xor(8.0).m == 8
    with pytest.raises(ConfigError, match="m must be a whole number"):
        xor(8.5)


@pytest.mark.parametrize("make", [spirals, xor])
@pytest.mark.parametrize("noise", [np.nan, -0.1, np.inf, 1e300, "0.1"])
def test_toy_sets_refuse_noise_that_is_not_a_standard_deviation(make, noise):
    with pytest.raises(ConfigError, match="noise must be a finite number ≥ 0"):
        make(40, noise=noise)


@pytest.mark.parametrize("make", [spirals, xor])
def test_toy_sets_take_zero_noise_and_check_their_seed(make):
    assert np.isfinite(make(40, noise=0.0).X).all() and np.isfinite(make(40, noise=-0.0).X).all()
    with pytest.raises(ConfigError, match="seed must be a whole number in 0"):
        make(40, seed=-1)


@pytest.mark.parametrize(
    "make",
    [lambda: xor(10**8), lambda: spirals(10**8), lambda: one_hot(np.arange(3), C=10**8)],
    ids=["xor", "spirals", "one_hot"],
)
def test_what_would_not_fit_in_memory_is_refused_first(make, monkeypatch):
    """On a machine of 2 GiB, 10^8 points (X and its temporaries), or 3 × 10^8 one-hot
    entries, take more than half of it."""
    monkeypatch.setattr(validate, "_physical_memory", lambda: 2 << 30)
    with pytest.raises(ConfigError, match="GiB, more than half of this machine's 2 GiB"):
        make()


def test_one_hot_refuses_masked_labels_and_integer_dtypes():
    with pytest.raises(DataError, match="masked"):
        one_hot(np.ma.masked_array([0, 1, 2], mask=[0, 1, 0]))
    with pytest.raises(ConfigError, match="np.float32 or np.float64"):
        one_hot(np.array([0, 1]), dtype=np.int64)
