"""Mini-batch stochastic gradient descent (chapters 10 and 11).

One epoch visits every example once, in an order reshuffled from a seeded generator;
each mini-batch of B rows gives one step θ ← θ − η ∂J/∂θ with the batched gradients.

The last batch of an epoch is usually partial (m is rarely a multiple of B). Its gradient
is still the mean over its own m_b rows, but its step is scaled by m_b / B, so that every
example moves the parameters by the same amount and a last batch of one example cannot
make a full-size, very noisy step.
"""

from __future__ import annotations

import dataclasses
import math
import signal
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from .core.activations import get_hidden_activation
from .core.backend import get_xp, is_gpu_array, to_numpy
from .core.batched import backward, cache_loss, forward
from .core.batching import batch_slices, epoch_order, step_size
from .core.errors import ConfigError, TrainingDiverged
from .core.losses import get_loss
from .core.params import Params
from .core.validate import check_batch, check_lr, check_seed, check_whole, is_one_hot
from .fast import run_epoch_fast
from .fast import supports as fast_supports

#: Training stops with :class:`TrainingDiverged` when an epoch's mean loss J exceeds
#: ``DIVERGENCE_FACTOR * (J_0 + 1)`` in size, J_0 the loss of the parameters it started from.
DIVERGENCE_FACTOR = 10.0


@dataclass
class History:
    """Per-epoch records: mean loss J and accuracy on the training and held-out sets."""

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)

    as_dict = dataclasses.asdict


class Interrupted(KeyboardInterrupt):
    """A signal that stopped training: SIGINT (Ctrl-C) or SIGTERM, its number ``signum``.
    Like every KeyboardInterrupt out of :func:`train`, it carries ``params`` and
    ``history``."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(int(signum))
        self.signum = int(signum)

    def __str__(self) -> str:
        return signal.Signals(self.signum).name


def sgd_step(params: Params, dW: dict, db: dict, lr: float) -> Params:
    """θ ← θ − η ∂J/∂θ for every W[l] and b[l]; returns new parameters.

    With one example this is eq. ``eq-sgd-step``; with the mean gradient of a
    mini-batch, eq. ``eq-minibatch-step``.
    """
    lr = float(lr)  # a NumPy float64 scalar would silently turn float32 W into float64
    return Params(
        {l: params.W[l] - lr * dW[l] for l in params.layers},
        {l: params.b[l] - lr * db[l] for l in params.layers},
    )


def accuracy(A_L, Y) -> float:
    """Fraction of rows whose predicted class (argmax over the C outputs; a 0.5 threshold
    when C = 1) equals the target's."""
    xp = get_xp(A_L)
    if A_L.shape[1] == 1:
        hits = (A_L > 0.5) == (Y > 0.5)
    else:
        hits = xp.argmax(A_L, axis=1) == xp.argmax(Y, axis=1)
    return float(hits.mean())


def classifies(loss, Y) -> bool:
    """Whether an accuracy is reported (NaN otherwise): for a classifier's loss, or for
    one-hot targets Y (a regression loss on classes)."""
    return get_loss(loss).classification or is_one_hot(Y)


def evaluate(X, Y, params: Params, activation="relu", loss="cross_entropy", with_accuracy=None):
    """``(J, accuracy)`` on a whole data set, one batched forward pass.

    Parameters
    ----------
    X : array, shape (N, n)
    Y : array, shape (N, C)
    params : Params
    activation, loss : str or object
    with_accuracy : bool or None
        None: as :func:`classifies` says.

    X, Y and the parameters are checked first (shapes, dtypes, finite values).
    """
    check_data(params, X, Y, loss=loss)
    return _evaluate(X, Y, params, activation, loss, with_accuracy)


def _evaluate(X, Y, params: Params, activation, loss, with_accuracy=None):
    """:func:`evaluate` without the checks: what the training loop calls every epoch."""
    if with_accuracy is None:
        with_accuracy = classifies(loss, Y)
    cache = forward(X, params, activation, loss, check=False)
    J = float(cache_loss(cache, Y, loss))
    return J, accuracy(cache.A[params.L], Y) if with_accuracy else math.nan


def run_epoch(
    X, Y, params: Params, order, batch_size: int, lr: float, activation="relu", loss="cross_entropy"
):
    """One pass over the data in ``order``: returns ``(params, batch_losses)``.

    One step θ ← θ − η (m_b/B) ∂J_batch/∂θ per mini-batch (eq. ``eq-minibatch-step``).

    ``batch_losses`` stays on the device (one entry per batch) so the GPU is never made
    to wait for the host inside the epoch.
    """
    xp = get_xp(X)
    slices = batch_slices(X.shape[0], batch_size)
    losses = xp.empty(len(slices), dtype=X.dtype)
    for k, (start, stop) in enumerate(slices):
        idx = order[start:stop]
        Xb, Yb = X[idx], Y[idx]
        cache = forward(Xb, params, activation, loss, check=False)
        losses[k] = cache_loss(cache, Yb, loss)
        dW, db, _ = backward(Yb, params, cache, activation)
        params = sgd_step(params, dW, db, step_size(lr, stop - start, batch_size))
    return params, losses


class Settings(NamedTuple):
    """The checked settings of a training run (what :func:`check_settings` returns)."""

    epochs: int
    batch_size: int
    lr: float
    seed: object  # a whole number in 0 … 2**32 − 1, None, or a NumPy Generator


def check_settings(
    epochs,
    batch_size,
    lr,
    seed,
    *,
    activation="relu",
    loss="cross_entropy",
    fast=None,
    progress=None,
    on_epoch=None,
) -> Settings:
    """The one gate for a training run's settings, passed before any work starts (by
    :func:`train`, the data-parallel trainer and the command line, which hands its
    options over as they are typed). Raises the :class:`ConfigError` naming the first
    bad setting; the rules are :mod:`mlp_core.core.validate`'s.
    """
    settings = Settings(
        check_whole(epochs, "epochs"),
        check_whole(batch_size, "batch_size", example="B = N is full-batch descent."),
        check_lr(lr),
        check_seed(seed),
    )
    get_hidden_activation(activation)
    get_loss(loss)
    for name, flag in (("fast", fast), ("progress", progress)):
        if flag is not None and not isinstance(flag, (bool, np.bool_)):
            raise ConfigError(f"{name} must be True, False or None, got {flag!r}.")
    if on_epoch is not None and not callable(on_epoch):
        raise ConfigError(
            f"on_epoch must be a function on_epoch(epoch, history), called after every "
            f"epoch; got {type(on_epoch).__name__} {on_epoch!r}."
        )
    return settings


def check_data(params: Params, X, Y, X_val=None, Y_val=None, loss="cross_entropy") -> None:
    """The training set and the held-out set (both or neither) fit the parameters and the
    loss: shapes, dtypes, devices and finite values (:func:`validate.check_batch`)."""
    if (X_val is None) != (Y_val is None):
        raise ConfigError(
            "X_val and Y_val go together: pass both (the held-out examples and their "
            "one-hot targets) or neither."
        )
    targets = get_loss(loss).targets
    check_batch(X, params, Y, targets=targets)
    if X_val is not None:
        check_batch(X_val, params, Y_val, name_X="X_val", name_Y="Y_val", targets=targets)


def _smaller_steps(lr: float) -> str:
    return (
        f"the steps are too large. Try a smaller learning rate, e.g. lr={lr / 10:g}, or "
        f"check the inputs are scaled."
    )


def check_batch_losses(losses: np.ndarray, epoch: int, lr: float) -> None:
    """Raise :class:`TrainingDiverged` when a batch loss of the epoch is NaN or Inf."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise TrainingDiverged(
            f"the loss became {losses[bad[0]]} in epoch {epoch}, batch {bad[0] + 1} of "
            f"{losses.size} (learning rate {lr}): {_smaller_steps(lr)}"
        )


def check_divergence(J: float, J_0: float, epoch: int, lr: float, batches: int) -> None:
    """Raise :class:`TrainingDiverged` when the epoch's mean loss J is not finite, or is
    "far above" the starting loss J_0: larger in size than DIVERGENCE_FACTOR (J_0 + 1).

    Every loss is ≥ 0, so a large negative J (the rounding error of huge logits) is
    divergence too. A non-finite J with finite batch losses means the epoch's last step
    diverged (no batch loss sees it).
    """
    if not math.isfinite(J):
        raise TrainingDiverged(
            f"the loss became {J} in epoch {epoch}, after batch {batches} of {batches}, the "
            f"epoch's last step (learning rate {lr}): {_smaller_steps(lr)}"
        )
    limit = DIVERGENCE_FACTOR * (J_0 + 1.0)
    if abs(J) > limit:
        rounding = " (a loss below zero is the rounding error of huge logits)" if J < 0 else ""
        raise TrainingDiverged(
            f"the loss went from {J_0:.4g} to {J:.4g} by epoch {epoch} (learning rate {lr}), "
            f"beyond {DIVERGENCE_FACTOR:g} × ({J_0:.4g} + 1) = {limit:.4g} in size{rounding}: "
            f"{_smaller_steps(lr)}"
        )


def _builtin_epoch(fast, activation, loss, params: Params, X):
    """The epoch ``fast`` asks for: :func:`run_epoch_fast` or :func:`run_epoch`."""
    if fast is None:
        fast = fast_supports(activation, loss, params.dtype) and not is_gpu_array(X)
    elif fast and not fast_supports(activation, loss, params.dtype):
        raise ConfigError(
            f"fast=True runs float32 and float64 with the built-in activations and losses; "
            f"here the parameters are {params.dtype}, the activation {activation!r} and "
            f"the loss {loss!r}. Pass fast=False (the formulas: any float dtype, your own "
            f"functions), or cast everything: params = params.astype(np.float32), "
            f"X = X.astype(np.float32), Y likewise."
        )
    return run_epoch_fast if fast else run_epoch


def train(
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
    epoch_fn=None,
    evaluate_fn=None,
):
    """Train with mini-batch SGD; returns ``(params, history)``.

    Parameters
    ----------
    params : Params
        W[l] (h_{l-1}, h_l) and b[l] (h_l,), l = 1..L; never modified.
    X : array, shape (N, n)
        The training set, on the parameters' device and in their dtype.
    Y : array, shape (N, C)
        One-hot rows (or targets for squared error).
    X_val, Y_val : arrays, shapes (N_val, n) and (N_val, C), optional
        A held-out set, evaluated after every epoch (both or neither).
    epochs : int
        Passes over the training set.
    batch_size : int
        B, the rows per step (:func:`~mlp_core.core.batching.step_size` for a last batch
        of m_b < B rows); B larger than N means full-batch descent (B = N).
    lr : float
        The learning rate η > 0.
    activation, loss : str or object
        The hidden layers' σ and the loss.
    seed : int
        Seeds the batch order (``np.random.default_rng(seed)``): a run is reproducible,
        and the same on CPU and GPU.
    progress : bool or None
        The progress bar: None shows it only on a terminal.
    on_epoch : callable, optional
        ``on_epoch(epoch, history)``, called after each epoch.
    fast : bool or None
        True runs each epoch with :func:`mlp_core.fast.run_epoch_fast`, the same
        computation rearranged for speed (:func:`mlp_core.fast.supports` says where);
        False, the book's formulas as written (:func:`run_epoch`). None: the fast path on
        NumPy where it applies, else the formulas.
    epoch_fn, evaluate_fn : callable, optional
        Another engine for the same loop (the data-parallel trainer passes its own), with
        the arguments of :func:`run_epoch` and of :func:`evaluate`; ``fast`` stays None.

    Returns
    -------
    params : Params
        The trained parameters.
    history : History
        Per-epoch loss and accuracy.

    Raises
    ------
    TrainingDiverged
        When a batch's loss becomes NaN or Inf, or an epoch's mean loss ends far above
        where training started (:func:`check_divergence`). It carries the ``params`` and
        ``history`` of the last epoch before, as does a KeyboardInterrupt (Ctrl-C, or an
        ``on_epoch`` that raises it).
    DataError, ShapeError, LabelError, ParamsError, ConfigError
        Bad input or settings (:func:`check_data`, :func:`check_settings`), before any step.
    """
    settings = check_settings(
        epochs,
        batch_size,
        lr,
        seed,
        activation=activation,
        loss=loss,
        fast=fast,
        progress=progress,
        on_epoch=on_epoch,
    )
    check_data(params, X, Y, X_val, Y_val, loss)
    if epoch_fn is None:
        epoch_fn = _builtin_epoch(fast, activation, loss, params, X)
    elif fast is not None:
        raise ConfigError(
            f"fast={fast!r} picks one of the built-in epochs; with an epoch_fn of your own "
            f"leave fast=None."
        )
    evaluate_fn = _evaluate if evaluate_fn is None else evaluate_fn
    epochs, lr = settings.epochs, settings.lr
    B = min(settings.batch_size, X.shape[0])
    rng = np.random.default_rng(settings.seed)
    xp = get_xp(X)
    classify = classifies(loss, Y)
    with np.errstate(over="ignore", invalid="ignore"):
        J_0, _ = evaluate_fn(X, Y, params, activation, loss, False)
    history = History()
    done = (params, 0)  # the last epoch recorded: what an interrupt or a divergence hands back
    bar = tqdm(
        range(1, epochs + 1),
        desc="epochs",
        unit="epoch",
        disable=None if progress is None else not progress,
    )
    try:
        for epoch in bar:
            order = xp.asarray(epoch_order(X.shape[0], rng))
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                trained, losses = epoch_fn(X, Y, done[0], order, B, lr, activation, loss)
                J, acc = evaluate_fn(X, Y, trained, activation, loss, classify)
                losses = to_numpy(losses)
                check_batch_losses(losses, epoch, lr)
                check_divergence(J, J_0, epoch, lr, losses.size)
                if X_val is not None:
                    val_J, val_acc = evaluate_fn(X_val, Y_val, trained, activation, loss, classify)
            history.epoch.append(epoch)
            history.train_loss.append(J)
            history.train_acc.append(acc)
            if X_val is not None:
                history.val_loss.append(val_J)
                history.val_acc.append(val_acc)
                bar.set_postfix(loss=f"{J:.4f}", val_acc=f"{val_acc:.4f}")
            else:
                bar.set_postfix(loss=f"{J:.4f}")
            done = (trained, epoch)
            if on_epoch is not None:
                on_epoch(epoch, history)
    except (KeyboardInterrupt, TrainingDiverged) as err:
        kept = {k: v[: done[1]] for k, v in dataclasses.asdict(history).items()}
        err.params, err.history = done[0], History(**kept)
        raise
    return done[0], history
