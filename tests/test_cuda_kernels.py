"""Every CUDA kernel the GPU epoch launches compiles with NVRTC for the H100/H200.

CuPy compiles a kernel with NVRTC the first time it is launched, so a typo in one of
``mlp_core.fast``'s kernel strings would surface only on a GPU, mid-training. Here the GPU
epoch's code is run (on NumPy, through ``tests/cuda_kernels.HostCupy``) for every hidden
activation, loss and dtype; every distinct CUDA source it launches is then compiled by
NVRTC, the compiler CuPy uses, for compute_90 (Hopper: the H100 and H200), and must compile
cleanly, keep its unmangled name (CuPy looks a RawKernel up by it) and be complete (every
kernel the fast path defines, for both dtypes). Negative controls show the check can fail.
"""

from __future__ import annotations

import cuda_kernels
import numpy as np
import pytest
from conftest import LOSS_NAMES, make_problem

from mlp_core.core.activations import HIDDEN_ACTIVATIONS
from mlp_core.fast import engine as fast

pytestmark = [
    pytest.mark.skipif(
        cuda_kernels.nvrtc_path() is None,
        reason="NVRTC is missing (pip install nvidia-cuda-nvrtc-cu12; Linux)",
    ),
    pytest.mark.skipif(
        cuda_kernels.host_compiler() is None,
        reason="no C++ compiler to run the GPU epoch's kernels on the host",
    ),
]

ARCH = "compute_90"
DTYPES = (np.float32, np.float64)


@pytest.fixture(scope="module")
def launched_sources():
    """{CUDA source: kernel name} for every kernel one GPU epoch launches, over every
    hidden activation × loss × dtype (with a partial last batch)."""
    cp = cuda_kernels.HostCupy()
    for dtype in DTYPES:
        for activation in HIDDEN_ACTIVATIONS:
            for loss in LOSS_NAMES:
                X, Y, params = make_problem(11, (5, 6, 4, 3), loss, seed=1, dtype=dtype)
                ws = fast._Workspace(cp, params.sizes, 11, 4, dtype, activation, loss)
                ws.epoch(X, Y, params, np.arange(11), 0.01)
    return cp.sources


def test_every_kernel_of_the_fast_path_is_launched(launched_sources):
    """Not vacuous: each dtype launches the SGD step, the bias add, the sigmoid output
    with its loss terms, the softmax + cross-entropy rows, and a bias + activation and a
    derivative for every activation (identity needs no derivative)."""
    expected = {"mlp_sgd_step", "mlp_bias_add", "mlp_sigmoid_bce", "softmax_xent_rows"}
    expected |= {f"mlp_bias_{a}" for a in HIDDEN_ACTIVATIONS}
    expected |= {f"mlp_d_{a}" for a in HIDDEN_ACTIVATIONS if a != "identity"}
    names = sorted(launched_sources.values())
    assert set(names) == expected
    assert all(names.count(n) == len(DTYPES) for n in expected), names  # float and double


def test_every_launched_kernel_compiles_cleanly_with_nvrtc_for_hopper(launched_sources):
    print(
        f"NVRTC {'.'.join(map(str, cuda_kernels.nvrtc_version()))}, {ARCH}: "
        f"{len(launched_sources)} kernel sources"
    )
    for source, name in launched_sources.items():
        ptx, log = cuda_kernels.nvrtc_compile(source, ARCH)
        assert not log.strip(), f"{name}: NVRTC warned:\n{log}"
        assert f".entry {name}(" in ptx, f"{name}: not found unmangled in the PTX"
        assert ".target sm_90" in ptx


@pytest.mark.parametrize(
    "body, says",
    [
        ("z = tanhh(z + b);", 'identifier "tanhh" is undefined'),  # a typo in a body
        ("b = z;", "must be a modifiable lvalue"),  # writing to an input (CuPy binds it const)
    ],
)
def test_negative_control_nvrtc_rejects_a_bad_kernel(body, says):
    source = cuda_kernels.elementwise_source("mlp_bad", "T b", "T z", body, "float")
    with pytest.raises(cuda_kernels.KernelCompileError, match=says):
        cuda_kernels.nvrtc_compile(source, ARCH)
