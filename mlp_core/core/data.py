"""Data for the book: real digits that work offline, MNIST files you already have,
small synthetic sets, one-hot labels, splits and scaling.

Notation (the book's): X has shape (m, n), row i is example i; labels are integers
of shape (m,) in 0..C-1; Y one-hot has shape (m, C). Everything here returns NumPy
(host) arrays; moving them to the GPU is the caller's job (see ``mlp_core.backend``).
Nothing here ever downloads anything.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError, LabelError, ShapeError
from .validate import (
    check_fits_in_memory,
    check_float_dtype,
    check_fraction,
    check_plain,
    check_real,
    check_seed,
    check_whole,
    is_one_hot,
)

# --------------------------------------------------------------------------- Dataset


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled data set in the book's notation: X (m, n), row i is example i; labels
    (m,) int64, the class of each example in 0..C-1; C classes (h_L = C); a short name for
    titles and logs; image_shape, the (rows, cols) of one example seen as an image ((8, 8)
    for the digits, so ``X[i].reshape(image_shape)`` can be plotted), None otherwise.
    """

    X: np.ndarray
    labels: np.ndarray
    C: int
    name: str
    image_shape: tuple[int, int] | None = None

    def __post_init__(self):
        _check_labelled(self.X, self.labels)

    @property
    def m(self) -> int:
        """Number of examples (rows of X)."""
        return self.X.shape[0]

    @property
    def n(self) -> int:
        """Number of features (columns of X), the input width h_0."""
        return self.X.shape[1]

    @property
    def Y(self) -> np.ndarray:
        """The labels one-hot encoded, shape (m, C), in X's dtype."""
        return one_hot(self.labels, self.C, dtype=self.X.dtype)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, m={self.m}, n={self.n}, C={self.C}, "
            f"X dtype={self.X.dtype}, image_shape={self.image_shape})"
        )


def _check_labelled(X, labels) -> None:
    """X is (m, n) and labels is (m,): one label per row."""
    if X.ndim != 2 or labels.shape != (X.shape[0],):
        raise ShapeError(
            f"X must be 2-D (m, n) and labels (m,), one label per row of X; found shapes "
            f"{X.shape} and {labels.shape}."
        )


# --------------------------------------------------------------------------- digits


def load_digits(dtype=np.float64) -> Dataset:
    """scikit-learn's bundled handwritten digits, offline.

    Returns a Dataset with X of shape (m, n) = (1797, 64) (8x8 images, one row each)
    scaled from pixel values 0..16 to [0, 1], labels (m,) int64 in 0..9, C = 10.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    dt = check_float_dtype(dtype)
    bunch = _sk_load_digits()
    X = (np.asarray(bunch.data, dtype=np.float64) / 16.0).astype(dt)
    labels = np.asarray(bunch.target, dtype=np.int64)
    return Dataset(X=X, labels=labels, C=10, name="digits", image_shape=(8, 8))


# --------------------------------------------------------------------------- IDX / MNIST

# IDX type code -> big-endian NumPy dtype
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path) -> bytes:
    """The file's bytes, gunzipped if it starts with the gzip magic (whatever its name)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"path: no file at {str(path)!r}. mlp_core never downloads data; pass the path "
            f"of an IDX file you already have (e.g. train-images-idx3-ubyte.gz)."
        )
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(
                f"path: {str(path)!r} starts like a gzip file but cannot be decompressed "
                f"({exc}); it is probably truncated. Copy or gunzip the file again."
            ) from exc
    return raw


def read_idx(path) -> np.ndarray:
    """Read an MNIST-format IDX file (plain or gzip) into a NumPy array.

    The header is: two zero bytes, a type code (0x08 ubyte, 0x09 sbyte, 0x0B short,
    0x0C int, 0x0D float, 0x0E double), the number of dimensions d, then d big-endian
    uint32 sizes. The data follow, big-endian, row-major. Gzip is detected by the
    file's first bytes, not its name.

    Returns an array of the header's shape, e.g. (m, 28, 28) for MNIST images or (m,)
    for labels, in the native byte order.
    """
    raw = _read_bytes(path)
    where = f"path: {str(path)!r}"
    if len(raw) < 4:
        raise DataError(
            f"{where} has only {len(raw)} bytes; an IDX file starts with a 4-byte magic "
            f"number. The file is empty or truncated."
        )
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{where} has a bad magic number: expected the first two bytes to be 0x00 0x00, "
            f"found 0x{raw[0]:02X} 0x{raw[1]:02X}. This is not an IDX file (is it a "
            f"different format, or compressed with something other than gzip?)."
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise DataError(
            f"{where} has unknown data type code 0x{code:02X} in its magic number; "
            f"expected one of {known}. The file is corrupt or not an IDX file."
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(
            f"{where} is truncated: its header says {ndim} dimensions, which needs "
            f"{header_len} header bytes, but the file has only {len(raw)} bytes."
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dt = _IDX_TYPES[code]
    expected = math.prod(shape) * dt.itemsize  # a Python int: no overflow
    found = len(raw) - header_len
    if found != expected:
        raise DataError(
            f"{where} is {'truncated' if found < expected else 'corrupt'}: its header says "
            f"shape {shape} of {dt.name}, {expected} data bytes, but {found} data bytes "
            f"follow. Copy the file again."
        )
    data = np.frombuffer(raw, dtype=dt, count=expected // dt.itemsize, offset=header_len)
    return data.reshape(shape).astype(dt.newbyteorder("="))


def load_mnist(images_path, labels_path, dtype=np.float64) -> Dataset:
    """Your own MNIST-format files (MNIST, Fashion-MNIST, ...): we never download.

    images_path : IDX file of ubyte images, shape (m, rows, cols), e.g. (m, 28, 28).
    labels_path : IDX file of ubyte labels, shape (m,).

    Returns a Dataset with X of shape (m, n) = (m, rows*cols) scaled from 0..255 to
    [0, 1], labels (m,) int64, C = 10 (or max label + 1 if the labels go higher).
    """
    dt = check_float_dtype(dtype)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise ShapeError(
            f"images_path holds an array of shape {images.shape} and labels_path one of "
            f"shape {labels.shape}; expected images (m, rows, cols) and labels (m,). Did you "
            f"swap images_path and labels_path?"
        )
    if images.dtype != np.uint8:
        raise DataError(
            f"images_path: expected ubyte pixels 0..255 (IDX type 0x08), found {images.dtype}."
        )
    if labels.dtype.kind not in "iu":
        raise LabelError(f"labels_path: expected integer labels, found {labels.dtype}.")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"images_path has m = {images.shape[0]} images but labels_path has "
            f"{labels.shape[0]} labels; they must match. Pair the files of the same split "
            f"(train-images with train-labels, t10k-images with t10k-labels)."
        )
    m, rows, cols = images.shape
    check_fits_in_memory(16 * images.size, f"the {m:,} images in float64", "use fewer images")
    X = (images.reshape(m, rows * cols).astype(np.float64) / 255.0).astype(dt)
    labels = labels.astype(np.int64)
    if m and labels.min() < 0:
        i = int(np.argmin(labels))
        raise LabelError(f"labels_path: label {labels[i]} at index {i} is negative.")
    C = max(10, int(labels.max()) + 1) if m else 10
    return Dataset(X=X, labels=labels, C=C, name="mnist", image_shape=(rows, cols))


# --------------------------------------------------------------------------- synthetic


def _balanced_counts(m: int, k: int) -> list[int]:
    """Split m into k counts that differ by at most one (the first ones get the extra)."""
    return [m // k + (1 if j < m % k else 0) for j in range(k)]


def _synthetic_settings(m, at_least: int, why: str, noise, seed, dtype):
    """A toy set's settings, checked: the point count m (refused before allocating more
    than fits), the noise's standard deviation, the seed and the dtype."""
    m = check_whole(m, "m", at_least, example=why)
    check_fits_in_memory(
        64 * m, f"{m:,} points (X of shape ({m}, 2) and its temporaries)", "use fewer points"
    )
    noise = check_real(
        noise,
        "noise",
        at_least=0,
        below=1e6,
        example="its standard deviation, on the points' unit scale, e.g. 0.2",
    )
    return m, noise, check_seed(seed), check_float_dtype(dtype)


def spirals(m: int, C: int = 3, noise: float = 0.2, seed: int = 0, dtype=np.float64) -> Dataset:
    """The classic CS231n spiral: C interleaved arms in the plane, m points in total.

    Arm j has radius r running from 0 to 1 and angle t from 4j to 4(j+1) (plus Gaussian
    noise of standard deviation ``noise``); the point is (r sin t, r cos t). The counts
    per arm differ by at most one. Rows are ordered arm by arm (shuffle when training).

    Returns a Dataset with X (m, 2), labels (m,) in 0..C-1.
    """
    C = check_whole(C, "C", 2, example="C is the number of spiral arms.")
    why = f"The spiral needs a point on each of its C = {C} arms."
    m, noise, seed, dt = _synthetic_settings(m, C, why, noise, seed, dtype)
    rng = np.random.default_rng(seed)
    X_parts, label_parts = [], []
    for j, count in enumerate(_balanced_counts(m, C)):
        r = np.linspace(0.0, 1.0, count)
        t = np.linspace(4.0 * j, 4.0 * (j + 1), count) + rng.normal(0.0, noise, count)
        X_parts.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        label_parts.append(np.full(count, j, dtype=np.int64))
    X = np.concatenate(X_parts).astype(dt)
    return Dataset(X=X, labels=np.concatenate(label_parts), C=C, name="spirals")


def xor(m: int, noise: float = 0.1, seed: int = 0, dtype=np.float64) -> Dataset:
    """XOR: four Gaussian blobs centred at (+-1, +-1), m points in total.

    The label of a point is the XOR of the signs of its coordinates,
    label = (x1 > 0) xor (x2 > 0): 0 in the (+,+) and (-,-) quadrants, 1 in the others.
    No straight line separates the classes; one hidden layer does.

    Returns a Dataset with X (m, 2), labels (m,) in {0, 1}, C = 2.
    """
    why = "XOR needs a point in each of its 4 blobs."
    m, noise, seed, dt = _synthetic_settings(m, 4, why, noise, seed, dtype)
    rng = np.random.default_rng(seed)
    # blob order alternates the labels (0, 1, 0, 1) so the classes are as balanced as m allows
    centres = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]])
    counts = _balanced_counts(m, 4)
    X = np.concatenate([c + rng.normal(0.0, noise, (k, 2)) for c, k in zip(centres, counts)])
    labels = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
    return Dataset(X=X.astype(dt), labels=labels, C=2, name="xor")


# --------------------------------------------------------------------------- labels


def _integer_labels(labels, name: str = "labels") -> np.ndarray:
    """Validate labels of shape (m,) and return them as int64 (not yet range-checked)."""
    check_plain(labels, name)
    a = np.asarray(labels)
    if a.ndim == 2 and a.shape[1] > 1 and is_one_hot(a):
        raise LabelError(
            f"{name}: Y is already one-hot (m, C) = {a.shape}; pass it directly "
            f"(or recover the labels with Y.argmax(axis=1))."
        )
    if a.ndim == 2 and a.shape[1] == 1:
        raise LabelError(
            f"{name} must be 1-D of shape (m,); found a column of shape {a.shape}. "
            f"Fix: labels.ravel()."
        )
    if a.ndim != 1:
        raise LabelError(f"{name} must be 1-D of shape (m,); found shape {a.shape}.")
    if a.size == 0:
        raise LabelError(f"{name} is empty (m = 0); there is nothing to encode.")
    if a.dtype.kind in "biu":
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            i = int(np.argmax(bad))
            raise LabelError(
                f"{name} must be integer class indices 0..C-1; found the non-integer value "
                f"{a[i]!r} at index {i}. If these are network outputs, take "
                f"argmax over the classes first; if they are whole numbers stored as "
                f"floats, use labels.astype(np.int64)."
            )
        return a.astype(np.int64)
    raise LabelError(
        f"{name} must be integer class indices 0..C-1; found dtype {a.dtype}. For class "
        f"names, map them to indices: classes, labels = np.unique(names, return_inverse=True)."
    )


def one_hot(labels, C: int | None = None, dtype=np.float64) -> np.ndarray:
    """One-hot encode integer labels (m,) into Y of shape (m, C).

    Y[i, labels[i]] = 1 and every other entry of row i is 0. C defaults to
    max(labels) + 1; pass it explicitly when a batch may miss the last classes.
    """
    y = _integer_labels(labels)
    dt = check_float_dtype(dtype)
    if y.min() < 0:
        i = int(np.argmin(y))
        raise LabelError(
            f"labels must be in 0..C-1; found the negative value {y[i]} at index {i}. "
            f"Shift the labels so the first class is 0."
        )
    if C is None:
        C = int(y.max()) + 1
    C = check_whole(C, "C", example="C is the number of classes.")
    if y.max() >= C:
        i = int(np.argmax(y >= C))
        raise LabelError(
            f"labels must be in 0..C-1 = 0..{C - 1}; found the value {y[i]} at index {i}. "
            f"Fix: pass C >= {int(y.max()) + 1} (max label + 1), or check the labels."
        )
    check_fits_in_memory(
        y.shape[0] * C * dt.itemsize,
        f"one-hot targets of shape ({y.shape[0]:,}, {C:,}) in {dt}",
        "check C, the number of classes (max(labels) + 1 when not given)",
    )
    Y = np.zeros((y.shape[0], C), dtype=dt)
    Y[np.arange(y.shape[0]), y] = 1
    return Y


# --------------------------------------------------------------------------- split, scale


def train_test_split(X, labels, test_fraction: float = 0.2, seed: int = 0, stratify: bool = True):
    """Split (X, labels) into a training and a held-out set, deterministically.

    X (m, n), labels (m,). With stratify=True each class keeps its proportion in both
    parts. Returns (X_train, X_test, y_train, y_test).
    """
    from sklearn.model_selection import train_test_split as _sk_split

    check_plain(X, "X")
    check_plain(labels, "labels")
    X, y = np.asarray(X), np.asarray(labels)
    seed = check_seed(seed)
    test_fraction = check_fraction(test_fraction, "test_fraction")
    _check_labelled(X, y)
    try:
        split = _sk_split(
            X, y, test_size=test_fraction, random_state=seed, stratify=y if stratify else None
        )
        return tuple(split)
    except ValueError as exc:
        raise DataError(
            f"train_test_split could not split m = {X.shape[0]} examples with "
            f"test_fraction={test_fraction}, stratify={stratify}: {exc} "
            f"Fix: use more examples, another test_fraction, or stratify=False."
        ) from exc
