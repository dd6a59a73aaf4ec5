"""Tests for mlp_core.io: save/load round trip, validation, atomicity, corrupt files."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from mlp_core.core import io
from mlp_core.core.errors import DataError, MlpCoreError, ParamsFileError, ShapeError
from mlp_core.core.io import FORMAT_VERSION, load_params, save_params
from mlp_core.core.params import Params

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
        save_params(
            p, Params(W, b), {"activation": "relu", "loss": "cross_entropy", "epoch": np.int64(3)}
        )
        == p
    )
    q, meta = load_params(p, expected_sizes=SIZES)
    W2, b2 = q.W, q.b
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
    p = save_params(tmp_path / "m.npz", Params(W, b), {})
    with np.load(p, allow_pickle=False) as f:
        assert sorted(f.files) == ["W1", "W2", "b1", "b2", "meta"]
        assert json.loads(str(f["meta"]))["activation"] is None


def test_overwrite_replaces_old_file(tmp_path):
    p = tmp_path / "m.npz"
    save_params(p, Params(*make_params(seed=1)), {})
    W, b = make_params(seed=2)
    save_params(p, Params(W, b), {})
    np.testing.assert_array_equal(load_params(p)[0].W[1], W[1])


def test_three_layers(tmp_path):
    sizes = (6, 5, 4, 2)
    W, b = make_params(sizes)
    q, meta = load_params(save_params(tmp_path / "m.npz", Params(W, b), {}), expected_sizes=sizes)
    W2 = q.W
    assert meta["sizes"] == list(sizes) and W2[3].shape == (4, 2)


# ----------------------------------------------------------------------------- refused saves


def assert_refused(tmp_path, exc, match, W, b, meta=None):
    p = tmp_path / "bad.npz"
    with pytest.raises(exc, match=match):
        save_params(p, Params(W, b), meta or {})
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
    assert_refused(tmp_path, ShapeError, "start at 1", {0: W[1], 1: W[2]}, {0: b[1], 1: b[2]})
    assert_refused(
        tmp_path, ShapeError, "keyed by the layers", {1: W[1], 3: W[2]}, {1: b[1], 3: b[2]}
    )
    assert_refused(tmp_path, ShapeError, "missing", W, {1: b[1]})


def test_refuses_nan_and_inf(tmp_path):
    W, b = make_params()
    W[2][1, 1] = np.nan
    assert_refused(tmp_path, DataError, r"W2 contains 1 NaN or Inf", W, b)
    W, b = make_params()
    b[1][0] = np.inf
    assert_refused(tmp_path, DataError, r"b1 contains 1 NaN or Inf", W, b)


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
    save_params(p, Params(W, b), {"activation": "tanh"})
    before = p.read_bytes()
    Wbad = dict(W)
    Wbad[1] = np.full_like(W[1], np.nan)
    with pytest.raises(DataError):
        save_params(p, Params(Wbad, b), {})
    assert p.read_bytes() == before
    assert listing(tmp_path) == ["m.npz"]


def test_failing_write_does_not_clobber_existing_file(tmp_path, monkeypatch):
    p = tmp_path / "m.npz"
    W, b = make_params()
    save_params(p, Params(W, b), {})
    before = p.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(ParamsFileError, match="disk full"):
        save_params(p, Params(*make_params(seed=9)), {})
    assert p.read_bytes() == before
    assert listing(tmp_path) == ["m.npz"]  # the temporary file was removed


def test_missing_directory_refused(tmp_path):
    W, b = make_params()
    with pytest.raises(ParamsFileError, match="mkdir"):
        save_params(tmp_path / "no" / "such" / "m.npz", Params(W, b), {})


# ----------------------------------------------------------------------------- refused loads


def test_missing_file_refused(tmp_path):
    p = tmp_path / "absent.npz"
    with pytest.raises(ParamsFileError, match="save_params") as e:
        load_params(p)
    assert "absent.npz" in str(e.value)


def test_truncated_file_refused(tmp_path):
    p = save_params(tmp_path / "m.npz", Params(*make_params()), {})
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ParamsFileError, match="truncated or corrupt") as e:
        load_params(p)
    assert "m.npz" in str(e.value)


def test_not_an_npz_refused(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ParamsFileError, match="not an .npz file") as e:
        load_params(p)
    assert "text file renamed .npz" in str(e.value) and "pickle" not in str(e.value)
    p.write_bytes(b"")
    with pytest.raises(ParamsFileError, match="is empty"):
        load_params(p)
    q = tmp_path / "single.npy"
    np.save(q, np.zeros(3))
    with pytest.raises(ParamsFileError, match="single .npy"):
        load_params(q)


def test_mismatched_sizes_refused(tmp_path):
    p = save_params(tmp_path / "m.npz", Params(*make_params()), {})
    with pytest.raises(ParamsFileError, match="expected_sizes") as e:
        load_params(p, expected_sizes=(5, 6, 3))
    assert "(5, 4, 3)" in str(e.value) and "(5, 6, 3)" in str(e.value)


def test_missing_keys_refused(tmp_path):
    W, b = make_params()
    p = save_params(tmp_path / "m.npz", Params(W, b), {})
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
    p = save_params(tmp_path / "m.npz", Params(W, b), {})
    with np.load(p) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["W2"] = arrays["W2"].T
    np.savez(p, **arrays)
    with pytest.raises(ParamsFileError, match="invalid parameters: W2 has shape"):
        load_params(p)


# ------------------------------------------------------------------- files and faults


def write_with_meta(path, arrays, meta):
    np.savez(path, **arrays, meta=np.array(json.dumps(meta)))


@pytest.mark.parametrize("sizes", [4, "5,4,3", [5], [4, 3], [5, 4, 3, 2], [5, -4, 3], None])
def test_meta_sizes_that_are_not_the_stored_layers_are_refused(tmp_path, sizes):
    """Sizes [4, 3] on a two-layer file must not drop layer 2 silently."""
    W, b = make_params()
    p = tmp_path / "m.npz"
    arrays = {f"{k}{l}": d[l] for k, d in (("W", W), ("b", b)) for l in (1, 2)}
    write_with_meta(p, arrays, {"sizes": sizes, "format_version": FORMAT_VERSION})
    with pytest.raises(ParamsFileError, match="sizes"):
        load_params(p)


def test_load_returns_params(tmp_path):
    q, meta = load_params(save_params(tmp_path / "m.npz", Params(*make_params()), {}))
    assert isinstance(q, Params) and q.sizes == SIZES and meta["sizes"] == list(SIZES)


def test_save_refuses_a_pair_of_dicts(tmp_path):
    W, b = make_params()
    with pytest.raises(MlpCoreError, match="mc.Params"):
        save_params(tmp_path / "m.npz", (W, b))
    assert listing(tmp_path) == []


def test_a_fifo_named_npz_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    result = {}

    def load():
        try:
            load_params(fifo)
        except ParamsFileError as exc:
            result["error"] = str(exc)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # unblock the reader so the suite can go on, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("load_params blocked on a FIFO")
    assert "not a regular file" in result["error"]
    with pytest.raises(ParamsFileError, match="not a regular file"):
        save_params(fifo, Params(*make_params()))


def test_save_proves_the_folder_writable_before_work(tmp_path):
    from mlp_core.core.io import check_writable

    for bad in ("/proc/model.npz", "/sys/model.npz", ""):
        with pytest.raises(ParamsFileError, match="cannot write|empty"):
            check_writable(bad)
    check_writable(tmp_path / "ok.npz")
    assert listing(tmp_path) == []  # the probe file was removed


def test_saved_file_mode_follows_the_umask(tmp_path):
    for umask in (0o022, 0o077):
        old = os.umask(umask)
        try:
            p = save_params(tmp_path / f"m{umask:o}.npz", Params(*make_params()))
        finally:
            os.umask(old)
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_importing_io_leaves_the_umask_alone():
    code = "import os; os.umask(0o027); import mlp_core.core.io; print(oct(os.umask(0)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0o27"


def test_a_symlink_is_written_through(tmp_path):
    target = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    save_params(target, Params(*make_params(seed=1)))
    link.symlink_to(target)
    W, b = make_params(seed=2)
    save_params(link, Params(W, b))
    assert link.is_symlink()
    np.testing.assert_array_equal(load_params(target)[0].W[1], W[1])


def test_stale_temporaries_of_dead_saves_are_removed_live_ones_kept(tmp_path):
    p = tmp_path / "m.npz"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    prefix = io._tmp_prefix(p)
    stale = tmp_path / f"{prefix}.{int(dead.stdout)}.0123abcd.tmp"
    live = tmp_path / f"{prefix}.{os.getpid()}.89abcdef.tmp"
    other = tmp_path / f"{io._tmp_prefix(tmp_path / 'other.npz')}.1.0123abcd.tmp"
    for f in (stale, live, other):
        f.write_bytes(b"x" * 10)
    save_params(p, Params(*make_params()))
    assert listing(tmp_path) == sorted([live.name, other.name, "m.npz"])


SAVE_FOREVER = textwrap.dedent(
    """
    import sys, numpy as np
    import mlp_core.core.io as io
    from mlp_core.core.params import Params
    real = np.savez
    def slow(f, **arrays):  # write half the file, then wait to be killed
        f.write(b"PK" + b"\\0" * (1 << 20))
        f.flush()
        print("writing", flush=True)
        import time; time.sleep(60)
    np.savez = slow
    rng = np.random.default_rng(5)
    W = {1: rng.normal(size=(500, 400)), 2: rng.normal(size=(400, 3))}
    b = {1: np.zeros(400), 2: np.zeros(3)}
    io.save_params(sys.argv[1], Params(W, b))
    """
)


def test_a_save_killed_half_way_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    p = tmp_path / "m.npz"
    W, b = make_params(seed=3)
    save_params(p, Params(W, b), {"epoch": 1})
    before = p.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVE_FOREVER, str(p)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    leftovers = [n for n in listing(tmp_path) if n != "m.npz"]
    assert leftovers and all(n.endswith(".tmp") for n in leftovers)  # the kill left one
    assert p.read_bytes() == before  # the old file, bit for bit
    q, meta = load_params(p)
    np.testing.assert_array_equal(q.W[1], W[1])
    assert meta["epoch"] == 1
    save_params(p, Params(*make_params(seed=4)))
    assert listing(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("path", [3, None, b"m.npz", ["m.npz"], Params({}, {})], ids=repr)
def test_save_and_load_refuse_what_is_not_a_path(tmp_path, path):
    for f in (lambda: save_params(path, Params(*make_params())), lambda: load_params(path)):
        with pytest.raises(ParamsFileError, match=r"the path must be a file name \(a str or"):
            f()


def test_a_name_as_long_as_the_file_system_allows_is_saved(tmp_path):
    p = tmp_path / ("m" * 251 + ".npz")  # 255 bytes, the usual NAME_MAX
    W, b = make_params()
    save_params(p, Params(W, b))
    np.testing.assert_array_equal(load_params(p)[0].W[1], W[1])
    assert listing(tmp_path) == [p.name]


def test_a_name_too_long_gets_a_short_message_that_says_so(tmp_path):
    p = tmp_path / ("m" * 296 + ".npz")
    for f in (lambda: save_params(p, Params(*make_params())), lambda: load_params(p)):
        with pytest.raises(ParamsFileError, match="name is too long") as info:
            f()
        assert len(str(info.value)) < 300 and "…" in str(info.value)
    assert listing(tmp_path) == []
