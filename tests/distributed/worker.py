"""One rank of the MPI tests: ``mpiexec -n P python tests/distributed/worker.py OUT.npz ...``.

Every rank builds the same small problem (dimensions all different), then rank 0 writes to
OUT.npz: the data, the initial parameters, the gradients of the first step, and the
parameters and history after the epochs. tests/test_distributed.py compares them with
one process. ``--bug`` plants a known mistake (a negative control), ``--fail-rank`` makes
one rank raise, ``--mismatch`` makes the ranks disagree at start, ``--bad-rank`` gives one
rank a NaN in its data, ``--interrupt-rank`` sends SIGINT to one rank after an epoch (rank 0
then writes the parameters and history the interrupt hands back).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys

import numpy as np

import mlp_core as mc
from mlp_core import distributed
from mlp_core.core.batching import epoch_order
from mlp_core.core.data import one_hot
from mlp_core.core.errors import MlpCoreError
from mlp_core.distributed import sgd


def problem(N, sizes, dtype, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, sizes[0])).astype(dtype)
    Y = one_hot(rng.integers(0, sizes[-1], N), sizes[-1], dtype=dtype)
    return X, Y, mc.init_params(sizes, seed=seed + 1, dtype=dtype)


def plant(bug, comm):
    """Replace a step of the algorithm by a known mistake."""
    local_sums, global_mean = sgd.local_sums, sgd.global_mean
    if bug == "no-division":  # the sums are used as they are: no 1/m_b
        sgd.global_mean = lambda total, m_b, params: global_mean(total, 1, params)
    elif bug == "mean-of-means":  # each rank sends its local mean; the ranks' means averaged

        def local_means(Xp, Yp, params, activation, loss, out):
            local_sums(Xp, Yp, params, activation, loss, out)
            out /= max(Xp.shape[0], 1)
            return out

        sgd.local_sums = local_means
        sgd.global_mean = lambda total, m_b, params: global_mean(total, comm.size, params)


def fail_on(rank, step, comm):
    """Make rank ``rank`` raise in its ``step``-th call of local_sums."""
    local_sums, calls = sgd.local_sums, [0]

    def failing(*args):
        calls[0] += 1
        if comm.rank == rank and calls[0] == step:
            raise RuntimeError(f"planted failure in step {step}")
        return local_sums(*args)

    sgd.local_sums = failing


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--N", type=int, default=23)
    p.add_argument("--sizes", default="6,5,4,3")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--bug", choices=("none", "no-division", "mean-of-means"), default="none")
    p.add_argument("--fail-rank", type=int, default=-1)
    p.add_argument("--fail-step", type=int, default=2)
    p.add_argument("--mismatch", choices=("none", "seed", "dtype", "sizes"), default="none")
    p.add_argument("--bad-rank", type=int, default=-1)
    p.add_argument("--interrupt-rank", type=int, default=-1)
    p.add_argument("--interrupt-epoch", type=int, default=1)
    a = p.parse_args()
    comm = distributed.world()
    r = comm.rank
    sizes = tuple(int(s) for s in a.sizes.split(","))
    dtype, seed = a.dtype, a.seed
    if a.mismatch == "seed":
        seed += r
    if a.mismatch == "dtype" and r == 1:
        dtype = "float32"
    if a.mismatch == "sizes" and r == 1:
        sizes = (*sizes[:-2], sizes[-2] + 1, sizes[-1])
    X, Y, params = problem(a.N, sizes, np.dtype(dtype), 11)
    if a.bad_rank == r:
        X[3, 2] = np.nan
    plant(a.bug, comm)
    if a.fail_rank >= 0:
        fail_on(a.fail_rank, a.fail_step, comm)

    def on_epoch(epoch, history):
        if r == a.interrupt_rank and epoch == a.interrupt_epoch:
            os.kill(os.getpid(), signal.SIGINT)

    try:
        trained, history = distributed.train_distributed(
            params, X, Y, X_val=X[:7], Y_val=Y[:7], epochs=a.epochs, batch_size=a.batch_size,
            lr=a.lr, seed=seed, progress=False, comm=comm, on_epoch=on_epoch,
        )  # fmt: skip
    except MlpCoreError as err:
        print(f"error on rank {r}: {err}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt as err:
        if r == 0:
            save(a.out, X, Y, params, err.params, err.history)
        return 130
    # the first step's gradients, formed as run_epoch_distributed does (params are unchanged)
    order = epoch_order(a.N, np.random.default_rng(seed))
    m_b = min(a.batch_size, a.N)
    lo, hi = distributed.rank_rows(m_b, comm.size, r)
    buf = np.empty(distributed.buffer_size(sizes), dtype=X.dtype)
    sgd.local_sums(X[order[lo:hi]], Y[order[lo:hi]], params, "relu", "cross_entropy", buf)
    distributed.allreducer(comm, buf)(buf)
    dW, db, _ = sgd.global_mean(buf, m_b, params)
    if r == 0:
        save(a.out, X, Y, params, trained, history, dW=dW, db=db)
    return 0


def save(path, X, Y, params, trained, history, **gradients):
    """Rank 0's record: the data, the initial and trained parameters, the history and the
    first step's gradients (``dW``, ``db``) where given."""
    out = {"X": X, "Y": Y}
    for l in params.layers:
        out.update({f"W0_{l}": params.W[l], f"b0_{l}": params.b[l]})
        out.update({f"W_{l}": trained.W[l], f"b_{l}": trained.b[l]})
        out.update({f"{k}_{l}": v[l] for k, v in gradients.items()})
    for key, values in dataclasses.asdict(history).items():
        out[f"history_{key}"] = np.asarray(values, dtype=float)
    np.savez(path, **out)


if __name__ == "__main__":
    sys.exit(main())
