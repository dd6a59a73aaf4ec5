"""A cost model of the fast epoch on a GPU (chapter 13): a prediction, not a measurement.

No GPU has run this project's benchmark yet; this model says what to expect and why, so
that a recording can confirm or correct it. One batch of the fast path on CuPy launches
:func:`batch_kernels` (8L + 1 calls for L layers). Each call costs

* on the **host**, the time Python and CuPy take to issue it, :attr:`GPU.host_call_s`,
  whatever the work (CuPy's performance guide times a function of three small
  elementwise kernels at about 44 µs of CPU time, ~15 µs a call);
* on the **device**, the kernel's work or a floor, whichever is larger, plus the gap
  between two kernels of a stream (:attr:`GPU.kernel_floor_s`, :attr:`GPU.launch_gap_s`).
  A GEMM's work is its FLOPs at the data sheet's peak, *after* tile and wave quantisation
  (NVIDIA's matrix-multiplication guide: the output is cut into tiles, one thread block
  each, run in waves of one tile per SM, so a product of fewer tiles than SMs leaves SMs
  idle and a partial last tile costs a whole one), or its bytes at the memory bandwidth
  if that is longer; an elementwise kernel's work is its bytes at the bandwidth.

The host queues work without waiting, so an eager batch takes the longer of the two sums
(``host`` or ``device``). A CUDA graph replays the epoch's kernels with one host call: it
removes the host's per-call cost, not the device time of each node (whose gap between
kernels shrinks to :attr:`GPU.graph_gap_s`).

Constants and their sources: :data:`H100_SXM`, :data:`H200_SXM` and the module's
references (the book's reference list has them in full).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .problems import epoch_flops

# cuBLAS's output tiles (rows × columns of C per thread block), from NVIDIA's
# "Matrix Multiplication Background User's Guide", section "Typical tile dimensions in
# cuBLAS": it picks the one that runs fastest for each shape.
TILES = ((256, 128), (128, 256), (128, 128), (256, 64), (64, 256), (128, 64), (64, 128), (64, 64))
# A product with at most this many rows or columns runs as a matrix-vector kind of kernel
# (a skinny GEMM): bound by reading the other operand, not by tiles.
SKINNY = 16


@dataclass(frozen=True)
class GPU:
    """The figures of one GPU the model needs (SI units: s, FLOP/s, bytes/s)."""

    name: str
    sms: int  # streaming multiprocessors (the architecture whitepaper)
    fp32_flops: float  # FP32 peak without tensor cores (TF32 off; the data sheet)
    fp64_flops: float  # FP64 peak (the data sheet)
    bandwidth: float  # HBM bytes/s (the data sheet)
    # CuPy's per-call host cost (its performance guide: 3 kernels, ~44 µs of CPU time)
    host_call_s: float = 15e-6
    # the least device time of a kernel, launch to completion (assumed: the same order as
    # the 2.9 µs kernel of NVIDIA's "Getting Started with CUDA Graphs")
    kernel_floor_s: float = 2e-6
    # the gap between kernels back to back in a stream and in a graph (the same article:
    # its 2.9 µs kernel took 3.8 µs a kernel in a stream, 3.4 µs in a graph)
    launch_gap_s: float = 0.9e-6
    graph_gap_s: float = 0.5e-6

    def peak(self, itemsize: int) -> float:
        return self.fp32_flops if itemsize == 4 else self.fp64_flops


# NVIDIA H100 Tensor Core GPU data sheet (SXM5: 67 TFLOP/s FP32, 34 TFLOP/s FP64 without
# its tensor cores, 3.35 TB/s HBM3) and the Hopper architecture whitepaper (132 SMs).
H100_SXM = GPU("H100 SXM", 132, 67e12, 34e12, 3.35e12)
# NVIDIA H200 data sheet: the same GH100 compute at 4.8 TB/s (HBM3e, 141 GB).
H200_SXM = GPU("H200 SXM", 132, 67e12, 34e12, 4.8e12)


def gemm_seconds(M: int, N: int, K: int, gpu: GPU, itemsize: int = 4) -> float:
    """Device time of C (M, N) = A (M, K) B (K, N), without the launch gap: the FLOPs
    after tile and wave quantisation at the peak (the best tile of :data:`TILES`; a
    skinny product, M or N ≤ :data:`SKINNY`, as its FLOPs unquantised), or the bytes of A,
    B and C at the bandwidth if that is longer, and never less than the kernel floor."""
    per_sm = gpu.peak(itemsize) / gpu.sms
    if min(M, N) <= SKINNY:
        compute = 2.0 * M * N * K / gpu.peak(itemsize)
    else:
        compute = min(
            math.ceil(math.ceil(M / tm) * math.ceil(N / tn) / gpu.sms) * 2.0 * tm * tn * K / per_sm
            for tm, tn in TILES
        )
    memory = itemsize * (M * K + K * N + M * N) / gpu.bandwidth
    return max(compute, memory, gpu.kernel_floor_s)


def elementwise_seconds(nbytes: float, gpu: GPU) -> float:
    """Device time of an elementwise kernel that moves ``nbytes``, without the gap."""
    return max(nbytes / gpu.bandwidth, gpu.kernel_floor_s)


def batch_kernels(mb: int, sizes) -> list:
    """The calls one batch of m_b rows makes on CuPy (:class:`~mlp_core.fast.cupy_kernels.
    CupyKernels`), in order: ``("gemm", M, N, K)`` or ``("elementwise", entries, arrays)``
    (the entries it touches, and how many arrays of that size it reads or writes)."""
    L, h = len(sizes) - 1, sizes
    calls = []
    for l in range(1, L + 1):  # A^l W^l, then the fused bias + activation (or bias add)
        calls += [("gemm", mb, h[l], h[l - 1]), ("elementwise", mb * h[l], 2)]
    # the loss: one row-wise kernel (Z, Y, D, row losses), its sum, a scaling
    calls += [("elementwise", mb * h[L], 3), ("elementwise", mb, 1), ("elementwise", 1, 2)]
    for l in range(L, 0, -1):
        if l > 1:  # Δ^l (W^l)^T, then ⊙ σ'
            calls += [("gemm", mb, h[l - 1], h[l]), ("elementwise", mb * h[l - 1], 3)]
        calls += [  # (A^{l-1})^T Δ^l, its SGD step; 1^T Δ^l, its SGD step
            ("gemm", h[l - 1], h[l], mb),
            ("elementwise", h[l - 1] * h[l], 3),
            ("gemm", 1, h[l], mb),
            ("elementwise", h[l], 3),
        ]
    return calls


def epoch_calls(m: int, sizes, B: int, graph: bool = False) -> list:
    """The calls an epoch makes around its batches (:meth:`_Workspace.epoch`), in the
    form of :func:`batch_kernels`: the gathers of X and Y into the epoch's order, the
    order's copy to the device, the step η/B, a copy of each W^l and b^l (with a graph:
    into the graph's own buffers and back out, the batch losses too, and the launch)."""
    L, h = len(sizes) - 1, sizes
    calls = [("elementwise", m * h[0], 2), ("elementwise", m * h[L], 2)]
    calls += [("elementwise", m, 1), ("elementwise", 1, 1)]
    params = [n for l in range(1, L + 1) for n in (h[l - 1] * h[l], h[l])]
    calls += [("elementwise", n, 2) for n in params * (2 if graph else 1)]
    if graph:
        calls += [("elementwise", -(-m // B), 2), ("launch",)]
    return calls


def _device_seconds(call, gpu: GPU, itemsize: int) -> float:
    if call[0] == "gemm":
        return gemm_seconds(call[1], call[2], call[3], gpu, itemsize)
    if call[0] == "launch":
        return 0.0
    return elementwise_seconds(itemsize * call[1] * call[2], gpu)


def predict_epoch(
    m: int, sizes, B: int, gpu: GPU = H100_SXM, itemsize: int = 4, graph: bool = False
) -> dict:
    """The model's epoch on ``gpu``: ``host_s`` (the host's calls), ``device_s`` (the
    kernels and their gaps), ``seconds`` (eagerly, per batch the longer of the two; as a
    graph, the batches' device time, their host calls replaced by one launch),
    ``bound`` ('host' or 'device': which sum is longer), ``examples_per_s``, ``gflops``
    (eq-epoch-flops over the time) and ``calls_per_batch``."""
    gap = gpu.graph_gap_s if graph else gpu.launch_gap_s
    host = device = seconds = 0.0
    for mb, count in ((B, m // B), (m % B, 1)):
        if mb == 0 or count == 0:
            continue
        calls = batch_kernels(mb, sizes)
        d = sum(_device_seconds(c, gpu, itemsize) + gap for c in calls)
        h = 0.0 if graph else len(calls) * gpu.host_call_s
        host, device = host + count * h, device + count * d
        seconds += count * max(h, d)
    for c in epoch_calls(m, sizes, B, graph):  # issued eagerly, one by one
        d = _device_seconds(c, gpu, itemsize) + gpu.launch_gap_s
        host, device = host + gpu.host_call_s, device + d
        seconds += max(gpu.host_call_s, d)
    return dict(
        host_s=host,
        device_s=device,
        seconds=seconds,
        bound="host" if host > device else "device",
        examples_per_s=m / seconds,
        gflops=epoch_flops(m, sizes) / seconds / 1e9,
        calls_per_batch=len(batch_kernels(B, sizes)),
    )
