"""Data-parallel SGD on MPI (mpi4py): the batch sum becomes an all-reduce (chapter 14).

``mpiexec -n P python -m mlp_core train`` runs :func:`train_distributed`, equal to
``mc.train(..., fast=False)`` in one process: the same loop, with the epoch and the
evaluation of :mod:`.sgd`. mpi4py is imported only when a function here needs MPI
(``pip install 'mlp_core[mpi]'``); the rest of :mod:`.comm` and :mod:`.sgd` is there too.
"""

from .comm import (
    allreducer,
    deferred_signals,
    shared_verdict,
    use_local_gpu,
    world,
    world_rank,
    world_size,
)
from .sgd import (
    buffer_layout,
    buffer_size,
    evaluate_distributed,
    global_mean,
    local_sums,
    rank_rows,
    run_epoch_distributed,
    train_distributed,
)

__all__ = [
    "allreducer",
    "buffer_layout",
    "buffer_size",
    "deferred_signals",
    "evaluate_distributed",
    "global_mean",
    "local_sums",
    "rank_rows",
    "run_epoch_distributed",
    "shared_verdict",
    "train_distributed",
    "use_local_gpu",
    "world",
    "world_rank",
    "world_size",
]
