"""Cutting an epoch into mini-batches (mlp_core.batching): batch_slices and epoch_order."""

from __future__ import annotations

import numpy as np
import pytest

from mlp_core.core.batching import batch_slices, epoch_order
from mlp_core.core.errors import ConfigError

# ----------------------------------------------------------------------------- batch_slices


@pytest.mark.parametrize("m, B", [(7, 3), (7, 7), (7, 1), (6, 3), (100, 32), (1797, 32)])
def test_batch_slices_cover_every_row_once(m, B):
    slices = batch_slices(m, B)
    rows = np.concatenate([np.arange(s, e) for s, e in slices])
    np.testing.assert_array_equal(rows, np.arange(m))
    assert len(slices) == -(-m // B)  # ceil(m / B)
    assert all(e - s == B for s, e in slices[:-1])


def test_batch_slices_last_batch_partial():
    assert batch_slices(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert batch_slices(6, 3) == [(0, 3), (3, 6)]  # m % B == 0: no partial batch


def test_batch_slices_batch_larger_than_m_is_one_batch():
    assert batch_slices(7, 100) == [(0, 7)]


@pytest.mark.parametrize("B", [0, -1, 2.5, "3", None, float("nan"), float("inf"), True])
def test_batch_slices_bad_batch_size(B):
    with pytest.raises(ConfigError, match="batch_size"):
        batch_slices(7, B)


def test_batch_slices_accepts_whole_floats_and_numpy_ints():
    assert batch_slices(7, 3.0) == batch_slices(7, np.int64(3)) == [(0, 3), (3, 6), (6, 7)]


def test_epoch_order_is_a_seeded_permutation():
    a = epoch_order(7, np.random.default_rng(3))
    b = epoch_order(7, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.sort(a), np.arange(7))
    assert not np.array_equal(a, epoch_order(7, np.random.default_rng(4)))
