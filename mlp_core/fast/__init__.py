"""The fast engine: the book's epoch rearranged for speed, on NumPy and on CuPy.

It is *the same computation* as :func:`mlp_core.training.run_epoch` (tests/test_fast.py
proves it); read :mod:`mlp_core.core.batched` to learn the algorithm. The epoch is
written once (:func:`engine.epoch_body`) against :class:`kernels.Kernels`, with one kernel
set per device (:mod:`numpy_kernels`, with the fused passes of :mod:`cpu_fused` compiled by
Numba, and :mod:`cupy_kernels`); :mod:`graph` captures it as a CUDA graph.
"""

from .engine import clear_workspaces, graph_status, run_epoch_fast, supports

__all__ = ["clear_workspaces", "graph_status", "run_epoch_fast", "supports"]
