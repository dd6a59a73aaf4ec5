"""The benchmark, ``python -m mlp_core bench``, and the book's Part III experiments.

One room, one idea per module:

=============  ==============================================================================
timing         a call's seconds (device synchronised), its spread, CUDA events, GPU warm-up,
               the host-speed probe
problems       the sizes, their data and parameters, an epoch's FLOPs
contenders     one epoch of each contender (loop, NumPy/CuPy batched and fast, scikit-learn,
               PyTorch eager and CUDA-graph, the GEMM floor), set up as a :class:`Runner`
machine        what a result was measured on (CPU, caches, BLAS, GPU, versions, load)
harness        the run: every contender interleaved on every size and dtype, the records
report         the text table and the JSON file
experiments    the book's chapters 12 and 13: the CPU's peak, GEMM rate, copy bandwidths,
               intensity, roofline, speed against the batch size, loop against batched,
               recorded results
gpu_model      chapter 13's prediction of the fast epoch on a GPU (no GPU has measured it)
record         ``make record``: every recording of ``book/data`` with the current code
allreduce      chapter 14: compute against all-reduce time per step under ``mpiexec``, with
               the ring model's prediction (``python -m mlp_core bench --allreduce``)
=============  ==============================================================================

The command line, ``python -m mlp_core bench``, lives with ``train`` in :mod:`mlp_core.cli`.
"""

from . import gpu_model
from .contenders import (
    CONTENDERS,
    GPU_CONTENDERS,
    LABELS,
    epoch_batched,
    epoch_loop,
    epoch_torch,
    setup_contender,
)
from .experiments import (
    GPU_COPY_BYTES,
    call_overhead,
    copy_bandwidth,
    copy_roofs,
    cpu_peak_gflops,
    cpu_vector_facts,
    crossover_batch,
    default_copy_bytes,
    epoch_bytes,
    fma_datapath_bits,
    gemm_rate,
    load_recorded,
    loop_vs_batched,
    matmul_intensity,
    matmul_rates,
    recorded_label,
    recorded_table,
    roofline,
    speed_vs_batch,
    time_breakdown,
    timing_with_and_without_sync,
)
from .harness import run_bench
from .machine import POOL_VARIABLES, cache_sizes, command_line, last_level_cache_bytes
from .problems import SIZES, BenchSize, epoch_flops, make_problem
from .report import format_table, record_spread, write_json
from .timing import median, spread, time_call

__all__ = [
    "cache_sizes",
    "copy_roofs",
    "cpu_peak_gflops",
    "cpu_vector_facts",
    "fma_datapath_bits",
    "gpu_model",
    "matmul_rates",
    "call_overhead",
    "epoch_bytes",
    "time_breakdown",
    "BenchSize",
    "CONTENDERS",
    "GPU_CONTENDERS",
    "GPU_COPY_BYTES",
    "LABELS",
    "POOL_VARIABLES",
    "SIZES",
    "command_line",
    "copy_bandwidth",
    "crossover_batch",
    "default_copy_bytes",
    "epoch_batched",
    "epoch_flops",
    "epoch_loop",
    "epoch_torch",
    "format_table",
    "record_spread",
    "gemm_rate",
    "last_level_cache_bytes",
    "load_recorded",
    "loop_vs_batched",
    "make_problem",
    "matmul_intensity",
    "median",
    "recorded_label",
    "recorded_table",
    "roofline",
    "run_bench",
    "setup_contender",
    "speed_vs_batch",
    "spread",
    "time_call",
    "timing_with_and_without_sync",
    "write_json",
]
