"""Tests for mlp_core.io: save/load round trip, validation, atomicity, corrupt files."""

import json
import os

import numpy as np
import pytest

from mlp_core.core.errors import MlpCoreError, ParamsFileError, ShapeError
from mlp_core.core.io import FORMAT_VERSION, load_params, save_params

SIZES = (5, 4, 3)  # h_0 = n = 5, h_1 = 4, h_2 = C = 3: all different


def make_params(sizes=SIZES, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    W = {l: rng.normal(size=(sizes[l - 1], sizes[l])).astype(dtype) for l in range(1, len(sizes))}
    b = {l: rng.normal(size=sizes[l]).astype(dtype) for l in range(1, len(sizes))}
    return W, b


def listing(d):
    return sorted(os.listdir(d))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip(tmp_path, dtype):
    W, b = make_params(dtype=dtype)
    p = tmp_path / "model.npz"
    assert (
        save_params(p, W, b, {"activation": "relu", "loss": "cross_entropy", "epoch": np.int64(3)})
        == p
    )
    W2, b2, meta = load_params(p, expected_sizes=SIZES)
    assert sorted(W2) == [1, 2] and sorted(b2) == [1, 2]
    for l in (1, 2):
        assert W2[l].dtype == np.dtype(dtype) and W2[l].shape == (SIZES[l - 1], SIZES[l])
        np.testing.assert_array_equal(W2[l], W[l])
        np.testing.assert_array_equal(b2[l], b[l])
    assert meta["sizes"] == list(SIZES)
    assert meta["dtype"] == np.dtype(dtype).name
    assert meta["activation"] == "relu" and meta["loss"] == "cross_entropy"
    assert meta["format_version"] == FORMAT_VERSION and meta["epoch"] == 3
    assert listing(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_file_layout_is_plain_npz(tmp_path):
    W, b = make_params()
    p = save_params(tmp_path / "m.npz", W, b, {})
    with np.load(p, allow_pickle=False) as f:
        assert sorted(f.files) == ["W1", "W2", "b1", "b2", "meta"]
        assert json.loads(str(f["meta"]))["activation"] is None


def test_overwrite_replaces_old_file(tmp_path):
    p = tmp_path / "m.npz"
    save_params(p, *make_params(seed=1), {})
    W, b = make_params(seed=2)
    save_params(p, W, b, {})
    np.testing.assert_array_equal(load_params(p)[0][1], W[1])


def test_three_layers(tmp_path):
    sizes = (6, 5, 4, 2)
    W, b = make_params(sizes)
    W2, b2, meta = load_params(save_params(tmp_path / "m.npz", W, b, {}), expected_sizes=sizes)
    assert meta["sizes"] == list(sizes) and W2[3].shape == (4, 2)


# ----------------------------------------------------------------------------- refused saves


def assert_refused(tmp_path, exc, match, W, b, meta=None):
    p = tmp_path / "bad.npz"
    with pytest.raises(exc, match=match):
        save_params(p, W, b, meta or {})
    assert listing(tmp_path) == [], "a refused save must write nothing, not even a temp file"


def test_refuses_shapes_that_do_not_chain(tmp_path):
    W, b = make_params()
    W[2] = W[2].T.copy()  # (3, 4) instead of (4, 3)
    assert_refused(tmp_path, ShapeError, r"W2.*transpose", W, b)


def test_refuses_wrong_bias_shape(tmp_path):
    W, b = make_params()
    b[1] = b[1].reshape(1, -1)
    assert_refused(tmp_path, ShapeError, r"b1.*\(4,\).*b1 = b1.reshape\(4\)", W, b)


def test_refuses_non_contiguous_or_zero_based_keys(tmp_path):
    W, b = make_params()
    assert_refused(tmp_path, ParamsFileError, "start at 1", {0: W[1], 1: W[2]}, {0: b[1], 1: b[2]})
    assert_refused(tmp_path, ParamsFileError, "contiguous", {1: W[1], 3: W[2]}, {1: b[1], 3: b[2]})
    assert_refused(tmp_path, ParamsFileError, "missing", W, {1: b[1]})


def test_refuses_nan_and_inf(tmp_path):
    W, b = make_params()
    W[2][1, 1] = np.nan
    assert_refused(tmp_path, ParamsFileError, r"W2 contains 1 NaN or Inf", W, b)
    W, b = make_params()
    b[1][0] = np.inf
    assert_refused(tmp_path, ParamsFileError, r"b1 contains 1 NaN or Inf", W, b)


def test_refuses_mixed_dtypes_and_bad_meta(tmp_path):
    W, b = make_params()
    b[2] = b[2].astype(np.float32)
    assert_refused(tmp_path, ShapeError, "one dtype", W, b)
    W, b = make_params()
    assert_refused(tmp_path, ParamsFileError, "JSON", W, b, {"fn": print})
    assert_refused(tmp_path, ShapeError, r"meta\['sizes'\]", W, b, {"sizes": [5, 9, 3]})


def test_refused_save_keeps_existing_good_file(tmp_path):
    p = tmp_path / "m.npz"
    W, b = make_params()
    save_params(p, W, b, {"activation": "tanh"})
    before = p.read_bytes()
    Wbad = dict(W)
    Wbad[1] = np.full_like(W[1], np.nan)
    with pytest.raises(ParamsFileError):
        save_params(p, Wbad, b, {})
    assert p.read_bytes() == before
    assert listing(tmp_path) == ["m.npz"]


def test_failing_write_does_not_clobber_existing_file(tmp_path, monkeypatch):
    p = tmp_path / "m.npz"
    W, b = make_params()
    save_params(p, W, b, {})
    before = p.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_params(p, *make_params(seed=9), {})
    assert p.read_bytes() == before
    assert listing(tmp_path) == ["m.npz"]  # the temporary file was removed


def test_missing_directory_refused(tmp_path):
    W, b = make_params()
    with pytest.raises(ParamsFileError, match="mkdir"):
        save_params(tmp_path / "no" / "such" / "m.npz", W, b, {})


# ----------------------------------------------------------------------------- refused loads


def test_missing_file_refused(tmp_path):
    p = tmp_path / "absent.npz"
    with pytest.raises(ParamsFileError, match="save_params") as e:
        load_params(p)
    assert "absent.npz" in str(e.value)


def test_truncated_file_refused(tmp_path):
    p = save_params(tmp_path / "m.npz", *make_params(), {})
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ParamsFileError, match="truncated or corrupt") as e:
        load_params(p)
    assert "m.npz" in str(e.value)


def test_not_an_npz_refused(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ParamsFileError, match="not a valid .npz"):
        load_params(p)
    q = tmp_path / "single.npy"
    np.save(q, np.zeros(3))
    with pytest.raises(ParamsFileError, match="single .npy"):
        load_params(q)


def test_mismatched_sizes_refused(tmp_path):
    p = save_params(tmp_path / "m.npz", *make_params(), {})
    with pytest.raises(ParamsFileError, match="expected_sizes") as e:
        load_params(p, expected_sizes=(5, 6, 3))
    assert "(5, 4, 3)" in str(e.value) and "(5, 6, 3)" in str(e.value)


def test_missing_keys_refused(tmp_path):
    W, b = make_params()
    p = save_params(tmp_path / "m.npz", W, b, {})
    with np.load(p) as f:
        arrays = {k: f[k] for k in f.files}
    del arrays["b2"]
    np.savez(p, **arrays)
    with pytest.raises(ParamsFileError, match="b2"):
        load_params(p)
    del arrays["meta"]
    np.savez(p, **arrays)
    with pytest.raises(ParamsFileError, match="meta"):
        load_params(p)


def test_shapes_that_do_not_chain_in_file_refused(tmp_path):
    W, b = make_params()
    p = save_params(tmp_path / "m.npz", W, b, {})
    with np.load(p) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["W2"] = arrays["W2"].T
    np.savez(p, **arrays)
    with pytest.raises(ParamsFileError, match="invalid parameters: W2 has shape"):
        load_params(p)


def test_param_errors_are_value_errors():
    assert issubclass(ParamsFileError, MlpCoreError) and issubclass(ParamsFileError, ValueError)
