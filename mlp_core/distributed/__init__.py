"""Data-parallel SGD on MPI (mpi4py): the batch sum becomes an all-reduce (chapter 14).

``mpiexec -n P python -m mlp_core train`` runs :func:`train_distributed`, equal to
``mc.train(..., fast=False)`` in one process. mpi4py is imported only when a function
here needs MPI (``pip install 'mlp_core[mpi]'``).
"""

from .comm import (
    HostAllreduce,
    NcclAllreduce,
    allreducer,
    check_agreement,
    fingerprint,
    one_fails_all_fail,
    world,
    world_size,
)
from .sgd import (
    broadcast_params,
    buffer_layout,
    buffer_size,
    cli_setup,
    evaluate_distributed,
    global_mean,
    local_sums,
    rank_rows,
    run_epoch_distributed,
    train_distributed,
)

__all__ = [
    "HostAllreduce",
    "NcclAllreduce",
    "allreducer",
    "broadcast_params",
    "buffer_layout",
    "buffer_size",
    "check_agreement",
    "cli_setup",
    "evaluate_distributed",
    "fingerprint",
    "global_mean",
    "local_sums",
    "one_fails_all_fail",
    "rank_rows",
    "run_epoch_distributed",
    "train_distributed",
    "world",
    "world_size",
]
