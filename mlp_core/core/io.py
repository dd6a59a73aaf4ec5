"""Saving and loading a network's parameters W[l], b[l] (l = 1..L) as a .npz file.

The file holds the arrays ``W1, b1, W2, b2, ...`` (W[l] of shape (h_{l-1}, h_l), b[l]
of shape (h_l,)) and ``meta``, a JSON string with the layer sizes h = (h_0, ..., h_L),
the dtype, the activation, the loss and the format version. Saving is atomic: a crash or
a refused save never leaves a half-written file, and never clobbers a good one.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .errors import MlpCoreError, ParamsFileError, ShapeError
from .params import Params
from .validate import check_params

__all__ = ["save_params", "load_params", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)
_FORMAT_NAME = "mlp_core.params"


def _layer_indices(W, b, error) -> int:
    """Check W and b are dicts keyed 1..L (the same keys); return L."""
    for name, d in (("W", W), ("b", b)):
        if not isinstance(d, Mapping):
            raise error(
                f"{name} must be a dict keyed by layer index 1..L ({name}[1], {name}[2], ...); "
                f"found {type(d).__name__}."
            )
    if not W:
        raise error("W is empty: a network needs at least one layer, W[1] of shape (n, h_1).")
    keys_W, keys_b = set(W), set(b)
    if not all(
        isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys_W | keys_b
    ):
        raise error(
            f"W and b must be keyed by integer layer indices 1..L; found keys "
            f"W: {sorted(map(repr, keys_W))}, b: {sorted(map(repr, keys_b))}."
        )
    L = len(keys_W)
    expected = set(range(1, L + 1))
    if keys_W != expected:
        hint = (
            " Layer indices start at 1 as in the book: W[1] maps h_0 = n to h_1."
            if 0 in keys_W
            else ""
        )
        raise error(
            f"W must have keys 1..L contiguous; found {sorted(int(k) for k in keys_W)}, "
            f"expected {sorted(expected)}.{hint}"
        )
    if keys_b != expected:
        missing = sorted(expected - keys_b)
        extra = sorted(int(k) for k in keys_b - expected)
        raise error(
            f"b must have the same keys as W, 1..{L}; missing {missing}, unexpected {extra}."
        )
    return L


def _check_params(W, b) -> tuple[list[int], np.dtype]:
    """Validate host arrays W[l], b[l]; return the sizes (h_0, ..., h_L) and the dtype.

    The keys 1..L first (:func:`_layer_indices`), then the book's shape and dtype rules
    (:func:`mlp_core.validate.check_params`, a ShapeError), then what a file needs on top:
    floating-point, finite values (a ParamsFileError).
    """
    _layer_indices(W, b, ParamsFileError)
    params = Params(W, b)
    check_params(params)
    for l in params.layers:
        for name, a in ((f"W{l}", W[l]), (f"b{l}", b[l])):
            if a.dtype.kind != "f":
                raise ParamsFileError(f"{name} must be floating point; found dtype {a.dtype}.")
            n_bad = int(np.count_nonzero(~np.isfinite(a)))
            if n_bad:
                raise ParamsFileError(
                    f"{name} contains {n_bad} NaN or Inf value(s); refusing to keep diverged "
                    f"parameters. Lower the learning rate, or save from an earlier epoch."
                )
    return [int(h) for h in params.sizes], params.dtype


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _meta_json(meta, sizes, dtype) -> str:
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):
        raise ParamsFileError(f"meta must be a dict; found {type(meta).__name__}.")
    if "sizes" in meta and [int(s) for s in meta["sizes"]] != sizes:
        raise ShapeError(
            f"meta['sizes'] is {list(meta['sizes'])} but the arrays W, b have sizes {sizes}; "
            f"they must agree. Fix: drop 'sizes' from meta (it is computed) or correct it."
        )
    full = dict(meta)
    full.update(
        format=_FORMAT_NAME,
        format_version=FORMAT_VERSION,
        sizes=sizes,
        dtype=str(dtype),
        activation=meta.get("activation"),
        loss=meta.get("loss"),
    )
    try:
        return json.dumps(full, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        bad = []
        for k, v in full.items():
            try:
                json.dumps(v, default=_json_default)
            except (TypeError, ValueError):
                bad.append(k)
        raise ParamsFileError(
            f"meta must be JSON-serialisable (numbers, strings, lists, dicts); the value of "
            f"{bad or '?'} is not ({exc}). Fix: store it as a string or a number."
        ) from exc


def check_save_path(path) -> None:
    """Refuse a save path that cannot be written: its folder is missing or not writable,
    or the path is itself a folder. Cheap, so callers can check before long work."""
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        raise ParamsFileError(
            f"path: the directory {str(directory)!r} of {str(path)!r} does not exist. "
            f"Fix: Path({str(directory)!r}).mkdir(parents=True, exist_ok=True)."
        )
    if path.is_dir():
        raise ParamsFileError(
            f"path: {str(path)!r} is a folder; give a file name, e.g. {str(path / 'model.npz')!r}."
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ParamsFileError(f"path: the directory {str(directory)!r} is not writable.")


def save_params(path, W, b, meta: dict | None = None) -> Path:
    """Save W[l] (h_{l-1}, h_l) and b[l] (h_l,), l = 1..L, to the .npz file at ``path``.

    Arrays may be NumPy or CuPy. ``meta`` (JSON-serialisable) is stored alongside, with
    the sizes h, the dtype, the activation and loss (taken from meta, None if absent)
    and the format version added. Everything is validated first; if anything is wrong,
    nothing is written. The file is written to a temporary file in the same directory,
    fsynced, then renamed over ``path`` (atomic: readers see the old file or the new one).

    Returns the Path written (exactly ``path``; no suffix is added).
    """
    path = Path(path)
    if not isinstance(W, Mapping) or not isinstance(b, Mapping):
        _layer_indices(W, b, ParamsFileError)  # raises with the explanation
    W_host = {k: to_numpy(v) for k, v in W.items()}
    b_host = {k: to_numpy(v) for k, v in b.items()}
    sizes, dtype = _check_params(W_host, b_host)
    meta_json = _meta_json(meta, sizes, dtype)

    check_save_path(path)
    directory = path.parent

    arrays = {}
    for l in range(1, len(sizes)):
        arrays[f"W{l}"] = W_host[l]
        arrays[f"b{l}"] = b_host[l]
    arrays["meta"] = np.array(meta_json)

    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; a saved model is shared
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)
    return path


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the OS allows it (best effort)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load_params(path, expected_sizes=None):
    """Load parameters saved by :func:`save_params`.

    Returns (W, b, meta): W[l] of shape (h_{l-1}, h_l) and b[l] of shape (h_l,) as NumPy
    arrays for l = 1..L, and the meta dict (with 'sizes', 'dtype', 'activation', 'loss',
    'format_version'). If ``expected_sizes`` (h_0, ..., h_L) is given, the file's sizes
    must equal it.
    """
    path = Path(path)
    where = f"parameters file {str(path)!r}"
    if not path.exists():
        raise ParamsFileError(
            f"path: no {where} (looked in {os.getcwd()!r} for relative paths). Check the "
            f"path, or save parameters first with save_params(path, W, b, meta)."
        )
    if path.is_dir():
        raise ParamsFileError(f"path: {str(path)!r} is a directory, not a parameters file.")

    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ParamsFileError(
                f"path: {where} is a single .npy array, not an .npz of parameters. "
                f"Save with save_params(path, W, b, meta)."
            )
        with loaded as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        if isinstance(exc, ParamsFileError):
            raise
        raise ParamsFileError(
            f"path: {where} is not a valid .npz file, or it is truncated or corrupt "
            f"({type(exc).__name__}: {exc}). Save the parameters again with save_params."
        ) from exc

    if "meta" not in arrays:
        raise ParamsFileError(
            f"path: {where} has no 'meta' entry (found {sorted(arrays)}); it was not "
            f"written by save_params. Save the parameters again with save_params."
        )
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ParamsFileError(f"path: {where} has an unreadable 'meta' entry ({exc}).") from exc
    if not isinstance(meta, dict) or "sizes" not in meta:
        raise ParamsFileError(f"path: {where} has a 'meta' entry without 'sizes'; it is corrupt.")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ParamsFileError(
            f"path: {where} has format_version {version!r}; this mlp_core reads version "
            f"{FORMAT_VERSION}. Upgrade mlp_core, or save the parameters again."
        )

    L = len(meta["sizes"]) - 1
    missing = [k for l in range(1, L + 1) for k in (f"W{l}", f"b{l}") if k not in arrays]
    if L < 1 or missing:
        raise ParamsFileError(
            f"path: {where} is missing the arrays {missing or ['W1', 'b1']} for a network with "
            f"sizes {meta['sizes']} (found {sorted(arrays)}). The file is incomplete; save it "
            f"again."
        )
    W = {l: arrays[f"W{l}"] for l in range(1, L + 1)}
    b = {l: arrays[f"b{l}"] for l in range(1, L + 1)}
    try:
        sizes, _ = _check_params(W, b)
    except MlpCoreError as exc:
        raise ParamsFileError(f"path: {where} holds invalid parameters: {exc}") from None
    if sizes != [int(s) for s in meta["sizes"]]:
        raise ParamsFileError(
            f"path: {where} says sizes {meta['sizes']} in its meta but its arrays have sizes "
            f"{sizes}; the file is corrupt. Save it again."
        )
    if expected_sizes is not None and sizes != [int(s) for s in expected_sizes]:
        raise ParamsFileError(
            f"expected_sizes: {where} holds a network with sizes h = {tuple(sizes)}, but "
            f"expected_sizes is {tuple(int(s) for s in expected_sizes)}. Fix: build the "
            f"network with the file's sizes (meta['sizes']), or load the file that matches."
        )
    return W, b, meta
