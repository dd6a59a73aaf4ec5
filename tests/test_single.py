"""The one-example formulas (mlp_core.single) and the per-example loop's checks.

That the loop's gradients equal the batched ones is in test_batched.py (an oracle there).
"""

from __future__ import annotations

import numpy as np
import pytest

from mlp_core.core.errors import DataError
from mlp_core.core.params import init_params
from mlp_core.core.single import backprop_single, gradients_loop


def test_single_example_refuses_a_dtype_mix():
    p = init_params((5, 4, 3), seed=0)
    x, y = np.ones((5, 1), np.float32), np.eye(3)[:, :1].astype(np.float32)
    with pytest.raises(DataError, match="float32"):
        backprop_single(x, y, p)
    with pytest.raises(DataError, match="m = 0"):
        gradients_loop(np.zeros((0, 5)), np.zeros((0, 3)), p)
