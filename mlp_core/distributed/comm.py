"""The MPI side of data-parallel SGD: who runs, one all-reduce, agreeing at start, failing
fast, stopping together.

mpi4py is imported only inside these functions (the ``mpi`` extra stays optional): a
process started without ``mpiexec`` never loads MPI, and :func:`world_size` and
:func:`world_rank` read the launcher's environment instead.

Ranks fail together: a check that can fail on one rank runs inside :func:`shared_verdict`
(every rank learns every rank's verdict before any collective), an error in the middle of
training ends every rank (:func:`one_fails_all_fail`), and a signal stops every rank at
the end of the same epoch (:func:`deferred_signals`, :func:`stop_requested`).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import signal
import sys
import threading
from contextlib import contextmanager

import numpy as np

from ..core import backend
from ..core.backend import is_gpu_array, to_numpy
from ..core.errors import ConfigError, TrainingDiverged
from ..training import Interrupted

# What MPI launchers put in each rank's environment: MPICH/Hydra, Open MPI, MVAPICH/Intel.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK")
LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK")  # on its own node


def _launcher_number(environ, names, default):
    environ = os.environ if environ is None else environ
    for name in names:
        value = environ.get(name, "")
        if value.strip().isdigit():
            return int(value)
    return default


def world_size(environ=None) -> int:
    """P, the number of ranks this process was launched with (1 outside ``mpiexec``).

    Read from the launcher's environment, so that a plain ``python`` never imports MPI.
    """
    return _launcher_number(environ, SIZE_VARIABLES, 1)


def world_rank(environ=None) -> int:
    """This process's rank among the P (0 outside ``mpiexec``), from the launcher's
    environment: known before MPI is loaded, so that only rank 0 reports an error."""
    return _launcher_number(environ, RANK_VARIABLES, 0)


def use_local_gpu(environ=None) -> None:
    """On a node with several GPUs, the node's rank r uses GPU r mod (their number), so
    that NCCL sees one rank per GPU (a no-op without a usable GPU or a local rank)."""
    cp = backend.gpu_xp()  # through the backend, the one module that imports CuPy
    local = _launcher_number(environ, LOCAL_RANK_VARIABLES, None)
    if cp is not None and local is not None:
        cp.cuda.Device(local % cp.cuda.runtime.getDeviceCount()).use()


def mpi():
    """mpi4py's ``MPI`` module; a clear error when the ``mpi`` extra is not installed."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ConfigError(
            "data-parallel training needs mpi4py and an MPI library: "
            "pip install 'mlp_core[mpi]' (mpi4py and the mpich wheel), then run "
            "mpiexec -n P python -m mlp_core train."
        ) from err
    return MPI


def world():
    """``MPI.COMM_WORLD``, every rank ``mpiexec`` started."""
    return mpi().COMM_WORLD


def check_comm(comm):
    """``comm`` when it is an MPI intra-communicator (``MPI.COMM_WORLD`` or one split from
    it), else a :class:`ConfigError` saying what to pass."""
    if not isinstance(comm, mpi().Intracomm):
        raise ConfigError(
            f"comm must be an MPI communicator such as mpi4py's MPI.COMM_WORLD (or one "
            f"made from it with comm.Split), got {type(comm).__name__} {comm!r}; or leave "
            f"comm=None for every rank of mpiexec."
        )
    return comm


def _shareable(err):
    """``err`` if it survives pickling (to travel to the other ranks), else a RuntimeError
    with its type and message."""
    try:
        pickle.dumps(err)
    except Exception:  # noqa: BLE001 - any object may refuse to pickle
        return RuntimeError(f"{type(err).__name__}: {err}")
    return err


def shared_verdict(comm, check):
    """``check()`` on every rank, then one allgather of the verdicts: every rank returns
    its result, or every rank raises (the failing rank its own error, the others the
    first failing rank's, naming it). A pending signal (:func:`deferred_signals`) stops
    every rank here too. Checks that can fail on one rank run here, before any
    collective a failed rank would never reach."""
    try:
        result, error = check(), None
    except Exception as err:  # noqa: BLE001 - shared with the other ranks, then raised
        result, error = None, err
    verdicts = comm.allgather((None if error is None else _shareable(error), _take_signal()))
    signum = max(s for _, s in verdicts)
    if signum:
        raise Interrupted(signum)
    if error is not None:
        raise error
    failed = [(rank, err) for rank, (err, _) in enumerate(verdicts) if err is not None]
    if failed:
        rank, err = failed[0]
        try:
            named = type(err)(f"MPI rank {rank} of {comm.size}: {err}")
        except Exception:  # noqa: BLE001 - an error class that takes other arguments
            named = err
        raise named from None
    return result


_pending = 0  # the signal received while deferred (0: none)


def _take_signal() -> int:
    global _pending
    signum, _pending = _pending, 0
    return signum


def _note_signal(signum, frame) -> None:
    global _pending
    _pending = _pending or signum


@contextmanager
def deferred_signals():
    """While inside, SIGINT and SIGTERM only take note (no rank leaves a collective that
    the others are in); :func:`stop_requested` and :func:`shared_verdict` turn the note
    into one decision of every rank. A note nobody took is delivered on leaving. In the
    main thread only (signals reach no other)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, _note_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        if before[signal.SIGINT] is not _note_signal and _pending:
            signal.raise_signal(_take_signal())


def stop_requested(comm) -> int:
    """The signal any rank received since the last call (0 for none), the same on every
    rank: one all-reduce of one number."""
    return comm.allreduce(_take_signal(), op=mpi().MAX)


class HostAllreduce:
    """Σ over the ranks of a contiguous buffer, in place, through host memory.

    A CuPy buffer is copied to the host, reduced by MPI and copied back: the route for
    GPUs without NCCL (and the one the CPU tests exercise).
    """

    route = "host (MPI)"

    def __init__(self, comm):
        self.comm = comm

    def __call__(self, buf):
        from mpi4py import MPI

        host = np.ascontiguousarray(to_numpy(buf)) if is_gpu_array(buf) else buf
        self.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        if host is not buf:
            buf.set(host)  # CuPy: host → device, into the same buffer
        return buf


class NcclAllreduce:
    """Σ over the ranks of a CuPy buffer with NCCL (``cupy.cuda.nccl``), GPU to GPU.

    The NCCL communicator is set up once: rank 0 draws its unique id and MPI broadcasts it.
    """

    route = "NCCL"

    def __init__(self, comm, nccl):
        self.nccl = nccl
        uid = nccl.get_unique_id() if comm.rank == 0 else None
        uid = comm.bcast(uid, root=0)
        self.comm = nccl.NcclCommunicator(comm.size, uid, comm.rank)

    def __call__(self, buf):
        kind = {np.float32: self.nccl.NCCL_FLOAT32, np.float64: self.nccl.NCCL_FLOAT64}
        stream = backend.gpu_xp().cuda.get_current_stream()
        self.comm.allReduce(
            buf.data.ptr,
            buf.data.ptr,
            buf.size,
            kind[buf.dtype.type],
            self.nccl.NCCL_SUM,
            stream.ptr,
        )
        return buf


def allreducer(comm, like):
    """The all-reduce for buffers like ``like``: NCCL for CuPy arrays where
    ``cupy.cuda.nccl`` is available, the host route otherwise."""
    nccl = nccl_module() if is_gpu_array(like) else None
    return NcclAllreduce(comm, nccl) if nccl is not None else HostAllreduce(comm)


def nccl_module():
    """CuPy's NCCL binding (``cupy.cuda.nccl``, reached through the CuPy module that
    :mod:`mlp_core.core.backend` loaded) when NCCL is available, else ``None``."""
    cp = backend.gpu_xp()
    if cp is None:
        return None
    try:
        nccl = importlib.import_module(cp.__name__ + ".cuda.nccl")
    except ImportError:
        return None
    return nccl if getattr(nccl, "available", False) else None


def fingerprint(**facts) -> str:
    """A short digest of what every rank must agree on (sizes, dtypes, seed, settings, data)."""
    h = hashlib.sha256()
    for key in sorted(facts):
        value = facts[key]
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            value = to_numpy(value)
            h.update(f"{key}:{value.shape}:{value.dtype}:".encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(f"{key}={value!r};".encode())
    return h.hexdigest()[:16]


def check_agreement(comm, **facts) -> None:
    """Allgather every rank's :func:`fingerprint` of ``facts``; all ranks raise
    :class:`ConfigError` together, naming the disagreeing fact, when they differ."""
    summary = {k: v if not hasattr(v, "dtype") else fingerprint(v=v) for k, v in facts.items()}
    everyone = comm.allgather(summary)
    for key in summary:  # in the caller's order: the plainest facts first
        values = [s[key] for s in everyone]
        if any(v != values[0] for v in values):
            seen = ", ".join(f"rank {r}: {v!r}" for r, v in enumerate(values))
            raise ConfigError(
                f"the {comm.size} MPI ranks disagree on {key} ({seen}). Every rank must "
                f"start from the same data, sizes, dtype, seed and settings: launch one "
                f"command with mpiexec -n P, not different commands per rank."
            )


@contextmanager
def one_fails_all_fail(comm):
    """An exception on one rank ends every rank within seconds instead of a hang.

    The others would wait forever in the next all-reduce; so the failing rank prints
    its error (rank, type, message) and calls ``MPI_Abort``, which ends the whole job
    with a non-zero exit status. :class:`TrainingDiverged` (the reduced losses are the
    same everywhere) and :class:`Interrupted` (:func:`stop_requested`) are raised on
    every rank at once, so they propagate normally.
    """
    if comm.size == 1:
        yield
        return
    try:
        yield
    except (TrainingDiverged, Interrupted):
        raise
    except BaseException as err:  # noqa: BLE001 - any failure must end the other ranks
        print(
            f"error on MPI rank {comm.rank} of {comm.size}: {type(err).__name__}: {err}\n"
            f"ending all {comm.size} ranks (MPI_Abort) so that none waits forever.",
            file=sys.stderr,
            flush=True,
        )
        comm.Abort(1)
