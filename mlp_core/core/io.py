"""Saving and loading a network's parameters W[l], b[l] (l = 1..L) as a .npz file.

The file holds the arrays ``W1, b1, W2, b2, ...`` (W[l] of shape (h_{l-1}, h_l), b[l]
of shape (h_l,)) and ``meta``, a JSON string with the layer sizes h = (h_0, ..., h_L),
the dtype, the activation, the loss and the format version; no pickles. Every write goes
through :func:`atomic_write`. A save killed half-way leaves a hidden temporary file
``.HASH.PID.XXXXXXXX.tmp`` beside the destination (HASH stands for the destination's
name, so that any valid name can be saved); the next save there removes it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
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
from .errors import ConfigError, MlpCoreError, ParamsFileError, ShapeError
from .params import Params
from .validate import check_finite_params, check_params, check_sizes

FORMAT_VERSION = 1
_FORMAT_NAME = "mlp_core.params"


def json_default(obj):
    """``json.dumps(..., default=json_default)``: NumPy scalars and arrays as numbers and lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _path(path, example: str = "model.npz") -> Path:
    """``path`` as a Path: a non-empty str or os.PathLike, else a ParamsFileError."""
    if not isinstance(path, (str, os.PathLike)) or os.fspath(path) == "":
        found = type(path).__name__ if not isinstance(path, str) else "an empty name"
        raise ParamsFileError(
            f"the path must be a file name (a str or a pathlib.Path), found {found}; "
            f"e.g. {example!r}."
        )
    return Path(path)


def _shown(path) -> str:
    """A path for a message: quoted, and cut in the middle when long."""
    text = str(path)
    return repr(text if len(text) <= 100 else f"{text[:40]}…{text[-50:]}")


def _failure(action: str, path: Path, exc: OSError, fix: str = "") -> ParamsFileError:
    """The ParamsFileError for an OSError, readable however long the path."""
    why = exc.strerror or str(exc)[:200]
    if exc.errno == errno.ENAMETOOLONG:
        why = f"the name is too long for the file system, {len(os.fsencode(path.name))} bytes"
        fix = "choose a shorter name (most file systems allow 255 bytes)"
    return ParamsFileError(
        f"cannot {action} {_shown(path)} ({why})" + (f"; {fix}." if fix else ".")
    )


def _target(path: Path) -> Path:
    """The file a save writes: ``path``, or the file a symlink ``path`` points to (a save
    writes through a symlink rather than replacing it)."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


def _tmp_prefix(path: Path) -> str:
    return "." + hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16]


def _create_tmp(path: Path) -> tuple[int, Path]:
    """A new temporary file beside ``path``, created with mode 0o666 so the kernel applies
    the process umask (a saved model is as readable as any file the user creates)."""
    tmp = path.parent / f"{_tmp_prefix(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return fd, tmp


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files that killed saves to ``path`` left beside it: those of
    processes that have ended (a live save, even of another process, is left alone)."""
    pattern = re.compile(re.escape(_tmp_prefix(path)) + r"\.(\d+)\.[0-9a-f]{8}\.tmp")
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _process_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def check_writable(path, example: str = "model.npz") -> None:
    """Prove that ``path`` can be written before long work: create and remove a temporary
    file beside it (a missing or read-only folder, a folder given as the path, a name too
    long, ``/proc`` or ``/sys`` all fail here, with a ParamsFileError that says why and what
    to do).

    The package's one writable-path rule; ``example`` is the file name its advice suggests.
    A caller with an option name (the CLI's ``--save``) puts it in front of the message.
    """
    path = _target(_path(path, example))
    try:
        if not path.parent.is_dir():
            raise ParamsFileError(
                f"the directory {_shown(path.parent)} does not exist. "
                f"Fix: Path({_shown(path.parent)}).mkdir(parents=True, exist_ok=True)."
            )
        mode = path.stat().st_mode if path.exists() else stat.S_IFREG
        fd, tmp = _create_tmp(path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise _failure("write", path, exc, f"choose a writable folder, e.g. ./{example}") from None
    if stat.S_ISDIR(mode):
        raise ParamsFileError(
            f"{_shown(path)} is a folder; give a file name, e.g. {_shown(path / example)}."
        )
    if not stat.S_ISREG(mode):
        raise ParamsFileError(
            f"{_shown(path)} exists and is not a regular file (a FIFO, a device?); "
            f"give the name of a file to write."
        )


def atomic_write(path, write) -> Path:
    """The package's one atomic writer: ``write(f)`` into a new temporary file beside
    ``path`` (binary, :func:`_create_tmp`), fsynced, then renamed over ``path``, after
    :func:`check_writable`'s checks. Readers see the old file or the new one, never half of
    one; a failure or an interrupt leaves ``path`` as it was. A symlink ``path`` is written
    through. Returns the file written.
    """
    check_writable(path)
    path = _target(_path(path))
    _remove_stale_temporaries(path)
    try:
        fd, tmp = _create_tmp(path)
    except OSError as exc:
        raise _failure("write", path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _failure("write", path, exc) from exc
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def save_params(path, params: Params, meta: dict | None = None) -> Path:
    """Save the parameters W[l] (h_{l-1}, h_l) and b[l] (h_l,), l = 1..L (NumPy or CuPy,
    finite) to the .npz file ``path`` (exactly this name) with ``meta``, a dict of
    JSON-serialisable facts to which the sizes h, the dtype, the activation and loss (from
    meta, None if absent) and the format version are added. Returns the file written;
    if anything is wrong, nothing is written (:func:`atomic_write`).
    """
    check_params(params)
    check_finite_params(params)
    arrays = {
        f"{name}{l}": to_numpy(d[l])
        for l in params.layers
        for name, d in (("W", params.W), ("b", params.b))
    }
    arrays["meta"] = np.array(_meta_json(meta, params))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _meta_json(meta, params: Params) -> str:
    sizes = list(params.sizes)
    meta = {} if meta is None else meta
    if not isinstance(meta, Mapping):
        raise ParamsFileError(f"meta must be a dict; found {type(meta).__name__}.")
    if "sizes" in meta and _sizes(meta["sizes"]) != sizes:
        raise ShapeError(
            f"meta['sizes'] is {meta['sizes']!r} but the arrays W, b have sizes {sizes}; "
            f"they must agree. Fix: drop 'sizes' from meta (it is computed) or correct it."
        )
    computed = dict(format=_FORMAT_NAME, format_version=FORMAT_VERSION, sizes=sizes)
    full = {"activation": None, "loss": None, **meta, **computed, "dtype": str(params.dtype)}
    try:
        return json.dumps(full, default=json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ParamsFileError(
            f"meta must be JSON-serialisable (numbers, strings, lists, dicts keyed by "
            f"strings): {exc}. Fix: store such a value as a string or a number."
        ) from None


def _sizes(sizes) -> list[int] | None:
    try:
        return list(check_sizes(sizes))
    except ConfigError:
        return None


def _read_arrays(path: Path, where: str) -> dict:
    """The arrays of the .npz at ``path``: only a regular file whose first bytes are a zip
    archive's is opened (a FIFO would block for ever, a text file would get NumPy's
    message about pickles)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ParamsFileError(
                f"{where} is not a regular file (a folder, a FIFO, a device); give the .npz "
                f"file written by save_params."
            )
        with open(path, "rb") as f:
            head = f.read(6)
    except FileNotFoundError:
        raise ParamsFileError(
            f"there is no {where} (relative paths start in {_shown(os.getcwd())}). Check "
            f"the path, or save parameters first with save_params(path, params, meta)."
        ) from None
    except OSError as exc:
        raise _failure("read", path, exc) from None
    if not head.startswith(b"PK"):
        kind = (
            "is empty"
            if not head
            else "is a single .npy array"
            if head.startswith(b"\x93NUMPY")
            else f"starts with {head!r}: a text file renamed .npz?"
        )
        raise ParamsFileError(
            f"{where} is not an .npz file (a zip archive); this one {kind}. Save the "
            f"parameters with save_params(path, params, meta)."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        raise ParamsFileError(
            f"{where} is not a valid .npz file, or it is truncated or corrupt "
            f"({type(exc).__name__}: {exc}). Save the parameters again with save_params."
        ) from None


def load_params(path, expected_sizes=None) -> tuple[Params, dict]:
    """The parameters and the meta of a file written by :func:`save_params`.

    Returns a Params of NumPy arrays W[l] (h_{l-1}, h_l) and b[l] (h_l,), l = 1..L, and a
    dict with 'sizes', 'dtype', 'activation', 'loss' and 'format_version'. The file must
    hold the sizes h = ``expected_sizes`` when they are given.
    """
    path = _path(path)
    where = f"the parameters file {_shown(path)}"
    arrays = _read_arrays(path, where)
    if "meta" not in arrays:
        raise ParamsFileError(
            f"{where} has no 'meta' entry; it was not written by save_params. Save the "
            f"parameters again with save_params."
        )
    try:
        meta = json.loads(str(arrays.pop("meta")))
        version = meta.get("format_version")
    except (json.JSONDecodeError, AttributeError):
        raise ParamsFileError(f"{where} has an unreadable 'meta' entry; it is corrupt.") from None
    if version != FORMAT_VERSION:
        raise ParamsFileError(
            f"{where} has format_version {version!r}; this mlp_core reads version "
            f"{FORMAT_VERSION}. Upgrade mlp_core, or save the parameters again."
        )
    try:
        sizes = meta["sizes"] = list(check_sizes(meta.get("sizes"), "its meta['sizes']"))
    except ConfigError as exc:
        raise ParamsFileError(f"{where} is corrupt: {exc}") from None
    L = len(sizes) - 1
    names = {f"{k}{l}" for l in range(1, L + 1) for k in "Wb"}
    if set(arrays) != names:
        raise ParamsFileError(
            f"{where} says sizes {sizes} (L = {L} layers) in its meta but holds the arrays "
            f"{sorted(arrays)}; missing {sorted(names - set(arrays))}, unexpected "
            f"{sorted(set(arrays) - names)}. The file is incomplete or corrupt; save it again."
        )
    params = Params(
        {l: arrays[f"W{l}"] for l in range(1, L + 1)}, {l: arrays[f"b{l}"] for l in range(1, L + 1)}
    )
    try:
        check_params(params)
        check_finite_params(params)
    except MlpCoreError as exc:
        raise ParamsFileError(f"{where} holds invalid parameters: {exc}") from None
    if list(params.sizes) != sizes:
        raise ParamsFileError(
            f"{where} says sizes {sizes} in its meta but its arrays have sizes "
            f"{list(params.sizes)}; the file is corrupt. Save it again."
        )
    if expected_sizes is not None:
        wanted = check_sizes(expected_sizes, "expected_sizes")
        if params.sizes != wanted:
            raise ParamsFileError(
                f"expected_sizes: {where} holds a network with sizes h = {params.sizes}, but "
                f"expected_sizes is {wanted}. Fix: build the network with the file's sizes "
                f"(meta['sizes']), or load the file that matches."
            )
    return params, meta
