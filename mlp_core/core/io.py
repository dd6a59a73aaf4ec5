"""Saving and loading a network's parameters W[l], b[l] (l = 1..L) as a .npz file.

The file holds the arrays ``W1, b1, W2, b2, ...`` (W[l] of shape (h_{l-1}, h_l), b[l]
of shape (h_l,)) and ``meta``, a JSON string with the layer sizes h = (h_0, ..., h_L),
the dtype, the activation, the loss and the format version. Saving is atomic: a crash or
a refused save never leaves a half-written file, and never clobbers a good one. A save
killed half-way leaves a hidden temporary file ``.NAME.PID.XXXX.tmp`` beside the
destination; the next save into that folder removes those whose process has ended.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .errors import MlpCoreError, ParamsFileError, ShapeError
from .params import Params
from .validate import check_layer_keys, check_params, whole_number

__all__ = ["save_params", "load_params", "atomic_write", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_FORMAT_NAME = "mlp_core.params"


def _check_params(W, b) -> tuple[list[int], np.dtype]:
    """Validate host arrays W[l], b[l]; return the sizes (h_0, ..., h_L) and the dtype.

    The keys 1..L first (:func:`mlp_core.validate.check_layer_keys`), then the book's
    shape and dtype rules (:func:`mlp_core.validate.check_params`), then what a file needs
    on top: finite values (a ParamsFileError).
    """
    check_layer_keys(W, b, ParamsFileError)
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


def json_default(obj):
    """``json.dumps(..., default=json_default)``: NumPy scalars and arrays as numbers and lists."""
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
    if "sizes" in meta and _sizes_list(meta["sizes"]) != sizes:
        raise ShapeError(
            f"meta['sizes'] is {meta['sizes']!r} but the arrays W, b have sizes {sizes}; "
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
        return json.dumps(full, default=json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        bad = []
        for k, v in full.items():
            try:
                json.dumps(v, default=json_default)
            except (TypeError, ValueError):
                bad.append(k)
        raise ParamsFileError(
            f"meta must be JSON-serialisable (numbers, strings, lists, dicts); the value of "
            f"{bad or '?'} is not ({exc}). Fix: store it as a string or a number."
        ) from exc


def _sizes_list(sizes):
    """``sizes`` as a list of whole numbers ≥ 1, or None when it is not one."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        return None
    out = [whole_number(h) for h in sizes]
    return out if len(out) >= 2 and all(h is not None and h >= 1 for h in out) else None


def _target(path) -> Path:
    """The file a save writes: ``path``, or the file a symlink ``path`` points to (a save
    writes through a symlink rather than replacing it)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _tmp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _create_tmp(path: Path) -> tuple[int, Path]:
    """A new temporary file beside ``path``, created with mode 0o666 so the kernel applies
    the process umask (a saved model is as readable as any file the user creates)."""
    tmp = _tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return fd, tmp


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path) -> list[Path]:
    """Remove the temporary files that killed saves to ``path`` left beside it.

    A temporary file is named ``.NAME.PID.XXXX.tmp``; it is stale when process PID has
    ended (a live save, even of another process, is left alone). Returns what was removed.
    """
    path = _target(path)
    pattern = re.compile(r"^\." + re.escape(path.name) + r"\.(\d+)\.[0-9a-f]{8}\.tmp$")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match and not _process_alive(int(match.group(1))):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def check_writable(path, example: str = "model.npz") -> None:
    """Prove that ``path`` can be written before long work: create and remove a temporary
    file beside it (a missing or read-only folder, a folder given as the path, ``/proc``
    or ``/sys`` all fail here, with a ParamsFileError that says why and what to do).

    The package's one writable-path rule; ``example`` is the file name its advice suggests.
    A caller with an option name (the CLI's ``--save``) puts it in front of the message.
    """
    if path is None or str(path) == "":
        raise ParamsFileError(f"the path is empty; give a file name such as {example!r}.")
    path = _target(path)
    directory = path.parent
    if not directory.is_dir():
        raise ParamsFileError(
            f"the directory {str(directory)!r} of {str(path)!r} does not exist. "
            f"Fix: Path({str(directory)!r}).mkdir(parents=True, exist_ok=True)."
        )
    if path.is_dir():
        raise ParamsFileError(
            f"{str(path)!r} is a folder; give a file name, e.g. {str(path / example)!r}."
        )
    if path.exists() and not path.is_file():
        raise ParamsFileError(
            f"{str(path)!r} exists and is not a regular file (a FIFO, a device?); "
            f"give the name of a file to write."
        )
    try:
        fd, tmp = _create_tmp(path)
    except OSError as exc:
        raise ParamsFileError(
            f"cannot write in {str(directory)!r} ({exc.strerror or exc}); choose a "
            f"writable folder, e.g. ./{example}."
        ) from None
    os.close(fd)
    os.unlink(tmp)


def save_params(path, params: Params, meta: dict | None = None) -> Path:
    """Save the parameters W[l] (h_{l-1}, h_l) and b[l] (h_l,), l = 1..L, to ``path``.

    Parameters
    ----------
    path : str or Path
        The .npz file to write (exactly this name; no suffix is added). A symlink is
        written through: the file it points to is replaced, the link stays.
    params : Params
        NumPy or CuPy arrays, finite, floating point.
    meta : dict, optional
        JSON-serialisable facts stored alongside; the sizes h, the dtype, the activation
        and loss (taken from meta, None if absent) and the format version are added.

    Returns
    -------
    Path
        The file written.

    Everything is validated first; if anything is wrong, nothing is written. The arrays
    go to a temporary file in the same folder, fsynced, then renamed over the target
    (atomic: readers see the old file or the new one, even if the process is killed).
    """
    check_params(params)
    W_host = {k: to_numpy(v) for k, v in params.W.items()}
    b_host = {k: to_numpy(v) for k, v in params.b.items()}
    sizes, dtype = _check_params(W_host, b_host)
    meta_json = _meta_json(meta, sizes, dtype)

    check_writable(path)
    arrays = {}
    for l in range(1, len(sizes)):
        arrays[f"W{l}"] = W_host[l]
        arrays[f"b{l}"] = b_host[l]
    arrays["meta"] = np.array(meta_json)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def atomic_write(path, write) -> Path:
    """The package's one atomic writer: ``write(f)`` into a new temporary file beside
    ``path`` (binary, created with mode 0o666 so the process umask applies), fsynced, then
    renamed over ``path``. Readers see the old file or the new one, never half of one; a
    failure or an interrupt removes the temporary file and leaves ``path`` as it was. A
    symlink ``path`` is written through. Returns the file written.

    ``save_params``, the benchmark's ``--json`` and the recordings all write through here.
    """
    path = _target(path)
    remove_stale_temporaries(path)
    try:
        fd, tmp_name = _create_tmp(path)
    except OSError as exc:
        raise ParamsFileError(f"path: cannot write {str(path)!r} ({exc}).") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise ParamsFileError(f"path: writing {str(path)!r} failed ({exc}).") from exc
        raise
    _fsync_directory(path.parent)
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


def _read_arrays(path: Path, where: str) -> dict:
    """The arrays of the .npz at ``path``: only a regular file whose first bytes are a zip
    archive's is opened (a FIFO would block for ever, a text file would get NumPy's
    message about pickles)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ParamsFileError(f"path: cannot read {where} ({exc}).") from None
    if not stat.S_ISREG(st.st_mode):
        raise ParamsFileError(
            f"path: {where} is not a regular file (a FIFO, a socket or a device); "
            f"give the .npz file written by save_params."
        )
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as exc:
        raise ParamsFileError(f"path: cannot read {where} ({exc}).") from None
    if head.startswith(b"\x93NUMPY"):
        raise ParamsFileError(
            f"path: {where} is a single .npy array, not an .npz of parameters. "
            f"Save with save_params(path, params, meta)."
        )
    if not head.startswith(b"PK"):
        kind = "is empty" if not head else f"starts with {head!r}"
        raise ParamsFileError(
            f"path: {where} is not an .npz file (an .npz is a zip archive; this one "
            f"{kind}: a text file renamed .npz?). Save the parameters with save_params."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        raise ParamsFileError(
            f"path: {where} is not a valid .npz file, or it is truncated or corrupt "
            f"({type(exc).__name__}: {exc}). Save the parameters again with save_params."
        ) from exc


def load_params(path, expected_sizes=None) -> tuple[Params, dict]:
    """Load parameters saved by :func:`save_params`.

    Parameters
    ----------
    path : str or Path
        The .npz file.
    expected_sizes : sequence of int, optional
        h = (h_0, ..., h_L) the file must hold.

    Returns
    -------
    params : Params
        W[l] of shape (h_{l-1}, h_l) and b[l] of shape (h_l,), NumPy arrays, l = 1..L.
    meta : dict
        With 'sizes', 'dtype', 'activation', 'loss', 'format_version'.
    """
    path = Path(path)
    where = f"parameters file {str(path)!r}"
    if not path.exists():
        raise ParamsFileError(
            f"path: no {where} (looked in {os.getcwd()!r} for relative paths). Check the "
            f"path, or save parameters first with save_params(path, params, meta)."
        )
    if path.is_dir():
        raise ParamsFileError(f"path: {str(path)!r} is a directory, not a parameters file.")
    arrays = _read_arrays(path, where)

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
    meta_sizes = _sizes_list(meta["sizes"])
    if meta_sizes is None:
        raise ParamsFileError(
            f"path: {where} has meta sizes {meta['sizes']!r}; expected a list of at least two "
            f"whole numbers ≥ 1, h = (h_0, ..., h_L). The file is corrupt; save it again."
        )
    L = len(meta_sizes) - 1
    expected_keys = {k for l in range(1, L + 1) for k in (f"W{l}", f"b{l}")}
    missing = sorted(expected_keys - set(arrays))
    extra = sorted(set(arrays) - expected_keys)
    if missing or extra:
        raise ParamsFileError(
            f"path: {where} says sizes {meta_sizes} (L = {L} layers) in its meta but holds "
            f"the arrays {sorted(arrays)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
            + ". The file is incomplete or corrupt; save it again."
        )
    W = {l: arrays[f"W{l}"] for l in range(1, L + 1)}
    b = {l: arrays[f"b{l}"] for l in range(1, L + 1)}
    try:
        sizes, _ = _check_params(W, b)
    except MlpCoreError as exc:
        raise ParamsFileError(f"path: {where} holds invalid parameters: {exc}") from None
    if sizes != meta_sizes:
        raise ParamsFileError(
            f"path: {where} says sizes {meta_sizes} in its meta but its arrays have sizes "
            f"{sizes}; the file is corrupt. Save it again."
        )
    if expected_sizes is not None:
        wanted = _sizes_list(expected_sizes)
        if wanted is None:
            raise ParamsFileError(
                f"expected_sizes must be h = (h_0, ..., h_L), whole numbers ≥ 1; got "
                f"{expected_sizes!r}."
            )
        if sizes != wanted:
            raise ParamsFileError(
                f"expected_sizes: {where} holds a network with sizes h = {tuple(sizes)}, but "
                f"expected_sizes is {tuple(wanted)}. Fix: build the network with the file's "
                f"sizes (meta['sizes']), or load the file that matches."
            )
    return Params(W, b), meta
