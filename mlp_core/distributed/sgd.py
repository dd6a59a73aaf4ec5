"""Data-parallel mini-batch SGD: the batch sum becomes an all-reduce (chapter 14).

Every rank holds the same data and draws the same epoch order (the same seed); each global
mini-batch of m_b rows (B, or fewer for the last) is cut into P nearly equal row blocks,
one per rank. Rank p computes its *local sums* over its m_p rows,

    S_W^l = (A_p^{l-1})^T Δ_p^l,   S_b^l = 1^T Δ_p^l,   S_ℓ = Σ_i ℓ_i,

which are m_p times its local means; one all-reduce adds them over the ranks in a single
contiguous buffer; every rank divides once by the global m_b (eq. ``eq-allreduce-mean``)
and takes the step η (m_b/B) ∂J/∂θ of :func:`mlp_core.training.run_epoch`. Because
Σ_p m_p = m_b, the result is the single-process gradient, whatever the split.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from ..core.backend import device_of, get_xp, to_numpy
from ..core.batched import backward, cache_loss, forward
from ..core.batching import batch_slices, step_size
from ..core.errors import ConfigError
from ..core.params import Params
from ..training import Interrupted, accuracy, check_data, check_settings, sgd_step, train
from .comm import (
    allreducer,
    check_agreement,
    check_comm,
    deferred_signals,
    one_fails_all_fail,
    shared_verdict,
    stop_requested,
    world,
)


def rank_rows(m_b: int, P: int, rank: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s block of a batch of m_b rows split over P ranks.

    The first m_b mod P ranks get ⌈m_b/P⌉ rows, the others ⌊m_b/P⌋ (0 when m_b < P).
    """
    q, r = divmod(m_b, P)
    start = rank * q + min(rank, r)
    return start, start + q + (rank < r)


def buffer_layout(sizes) -> list[tuple[str, int, slice, tuple]]:
    """Where each local sum lives in the one contiguous buffer: ``(kind, l, slice, shape)``
    for W^l (h_{l-1}, h_l) and b^l (h_l,), l = 1..L, then the loss sum (the last entry)."""
    layout, at = [], 0
    for l in range(1, len(sizes)):
        for kind, shape in (("W", (sizes[l - 1], sizes[l])), ("b", (sizes[l],))):
            size = math.prod(shape)
            layout.append((kind, l, slice(at, at + size), shape))
            at += size
    layout.append(("loss", 0, slice(at, at + 1), ()))
    return layout


def buffer_size(sizes) -> int:
    """The number of entries of the all-reduce buffer: Σ_l (h_{l-1} + 1) h_l, plus one."""
    return buffer_layout(sizes)[-1][2].stop


def local_sums(Xp, Yp, params: Params, activation, loss, out):
    """Write rank p's local sums over its m_p rows into the flat buffer ``out``.

    ``backward`` returns the local *means* (1/m_p)(A_p^{l-1})^T Δ_p^l and (1/m_p) 1^T Δ_p^l;
    times m_p they are the sums, which add up over ranks whatever the m_p are. A rank with
    m_p = 0 rows (m_b < P) contributes zeros.
    """
    out[...] = 0
    m_p = Xp.shape[0]
    if m_p == 0:
        return out
    cache = forward(Xp, params, activation, loss, check=False)
    dW, db, _ = backward(Yp, params, cache, activation)
    for kind, l, where, _shape in buffer_layout(params.sizes):
        if kind == "W":
            out[where] = (dW[l] * m_p).reshape(-1)
        elif kind == "b":
            out[where] = db[l] * m_p
        else:
            out[where] = cache_loss(cache, Yp, loss) * m_p
    return out


def global_mean(total, m_b: int, params: Params):
    """``(dW, db, J)`` from the all-reduced sums: each divided once by the global m_b."""
    dW, db, J = {}, {}, None
    for kind, l, where, shape in buffer_layout(params.sizes):
        value = total[where] / m_b
        if kind == "W":
            dW[l] = value.reshape(shape)
        elif kind == "b":
            db[l] = value
        else:
            J = value[0]
    return dW, db, J


def run_epoch_distributed(
    comm,
    reduce,
    X,
    Y,
    params: Params,
    order,
    batch_size: int,
    lr: float,
    activation="relu",
    loss="cross_entropy",
):
    """One epoch on this rank: returns ``(params, batch_losses)``, the same on every rank.

    Per batch: this rank's block of rows, its local sums, one all-reduce of the buffer,
    one division by m_b, and the step η (m_b/B) ∂J/∂θ (eq. ``eq-minibatch-step``).
    """
    xp = get_xp(X)
    slices = batch_slices(X.shape[0], batch_size)
    losses = xp.empty(len(slices), dtype=X.dtype)
    buf = xp.empty(buffer_size(params.sizes), dtype=X.dtype)
    for k, (start, stop) in enumerate(slices):
        m_b = stop - start
        lo, hi = rank_rows(m_b, comm.size, comm.rank)
        idx = order[start + lo : start + hi]
        local_sums(X[idx], Y[idx], params, activation, loss, buf)
        reduce(buf)
        dW, db, losses[k] = global_mean(buf, m_b, params)
        params = sgd_step(params, dW, db, step_size(lr, m_b, batch_size))
    return params, losses


def evaluate_distributed(
    comm, reduce, X, Y, params: Params, activation="relu", loss="cross_entropy", classify=True
):
    """``(J, accuracy)`` on a whole data set, each rank evaluating its block of the N rows:
    the loss sum and the number of hits are all-reduced, then divided by N."""
    xp = get_xp(X)
    lo, hi = rank_rows(X.shape[0], comm.size, comm.rank)
    sums = xp.zeros(2, dtype=np.float64)
    if hi > lo:
        cache = forward(X[lo:hi], params, activation, loss, check=False)
        sums[0] = float(cache_loss(cache, Y[lo:hi], loss)) * (hi - lo)
        if classify:
            sums[1] = round(accuracy(cache.A[params.L], Y[lo:hi]) * (hi - lo))
    reduce(sums)
    J, hits = (float(s) / X.shape[0] for s in to_numpy(sums))
    return J, hits if classify else math.nan


def broadcast_params(comm, params: Params, device: str) -> Params:
    """Rank 0's parameters on every rank (sent through the host, then moved to ``device``)."""
    host = comm.bcast(params.to("cpu") if comm.rank == 0 else None, root=0)
    return host.to(device)


def train_distributed(
    params: Params,
    X,
    Y,
    *,
    X_val=None,
    Y_val=None,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 0.1,
    activation="relu",
    loss="cross_entropy",
    seed: int = 0,
    progress: bool | None = None,
    on_epoch=None,
    fast: bool | None = None,
    comm=None,
):
    """Data-parallel :func:`mlp_core.train` over the ranks of ``comm`` (default: all).

    Call it on every rank with the same arguments (the same X, Y and seed); it returns
    ``(params, history)``, identical on every rank and equal to ``mc.train(..., fast=False)``
    in one process: it is that loop, run with :func:`run_epoch_distributed` and
    :func:`evaluate_distributed`. Rank 0's ``params`` are broadcast; only rank 0 shows the
    progress bar. The step is the book's formulas: ``fast=True`` is refused (there is no
    fast data-parallel epoch), False and None run them.

    Every rank raises the same :class:`ConfigError` (or data error) when a setting or the
    data is wrong on any rank, or when the ranks disagree on the data, sizes, dtype, seed
    or settings; an exception on one rank in the middle of training ends all ranks
    (``MPI_Abort``). SIGINT or SIGTERM to any rank stops every rank at the end of the same
    epoch with :class:`mlp_core.training.Interrupted`, which carries ``params`` and
    ``history``.
    """
    comm = world() if comm is None else check_comm(comm)

    def gate():
        settings = check_settings(
            epochs, batch_size, lr, seed, activation=activation, loss=loss, fast=fast,
            progress=progress, on_epoch=on_epoch,
        )  # fmt: skip
        if fast:
            raise ConfigError(
                "fast=True: the data-parallel trainer runs the book's formulas "
                "(run_epoch_distributed); there is no fast data-parallel epoch. Pass "
                "fast=None or fast=False."
            )
        check_data(params, X, Y, X_val, Y_val, loss)
        return settings

    def after_epoch(epoch, history):
        if on_epoch is not None:
            on_epoch(epoch, history)
        signum = stop_requested(comm)
        if signum:
            raise Interrupted(signum)

    with deferred_signals():
        settings = shared_verdict(comm, gate)
        check_agreement(
            comm,
            sizes=params.sizes,
            dtype=str(X.dtype),
            **settings._asdict(),
            activation=activation,
            loss=loss,
            X=X,
            Y=Y,
            X_val=X_val if X_val is not None else "none",
            Y_val=Y_val if Y_val is not None else "none",
        )
        params = broadcast_params(comm, params, device_of(X))
        reduce = allreducer(comm, X)
        with one_fails_all_fail(comm):
            params, history = train(
                params,
                X,
                Y,
                X_val=X_val,
                Y_val=Y_val,
                **settings._asdict(),
                activation=activation,
                loss=loss,
                progress=False if comm.rank else progress,
                on_epoch=after_epoch,
                epoch_fn=partial(run_epoch_distributed, comm, reduce),
                evaluate_fn=partial(evaluate_distributed, comm, reduce),
            )
        # the ranks must end bitwise equal (an MPI whose sums differed by rank would drift)
        flat = [to_numpy(a).ravel() for l in params.layers for a in (params.W[l], params.b[l])]
        check_agreement(comm, trained_parameters=np.concatenate(flat))
    return params, history
