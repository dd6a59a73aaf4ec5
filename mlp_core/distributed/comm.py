"""The MPI side of data-parallel SGD: who runs, one all-reduce, agreeing at start, failing fast.

mpi4py is imported only inside these functions (the ``mpi`` extra stays optional): a
process started without ``mpiexec`` never loads MPI, and :func:`world_size` reads the
launcher's environment instead.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from contextlib import contextmanager

import numpy as np

from ..core import backend
from ..core.backend import is_gpu_array, to_numpy
from ..core.errors import ConfigError, TrainingDiverged

# What MPI launchers put in each rank's environment: MPICH/Hydra, Open MPI, MVAPICH/Intel.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def world_size(environ=None) -> int:
    """P, the number of ranks this process was launched with (1 outside ``mpiexec``).

    Read from the launcher's environment, so that a plain ``python`` never imports MPI.
    """
    environ = os.environ if environ is None else environ
    for name in SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.strip().isdigit():
            return int(value)
    return 1


def world():
    """``MPI.COMM_WORLD``; a clear error when the ``mpi`` extra is not installed."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ConfigError(
            "data-parallel training needs mpi4py and an MPI library: "
            "pip install 'mlp_core[mpi]' (mpi4py and the mpich wheel), then run "
            "mpiexec -n P python -m mlp_core train."
        ) from err
    return MPI.COMM_WORLD


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

        if is_gpu_array(buf):
            host = np.ascontiguousarray(to_numpy(buf))
            self.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
            buf.set(host)  # CuPy: host → device, into the same buffer
            return buf
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
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
    with a non-zero exit status. :class:`TrainingDiverged` is raised on all ranks at once
    (the reduced losses are identical), so it propagates normally.
    """
    if comm.size == 1:
        yield
        return
    try:
        yield
    except TrainingDiverged:
        raise
    except BaseException as err:  # noqa: BLE001 - any failure must end the other ranks
        print(
            f"error on MPI rank {comm.rank} of {comm.size}: {type(err).__name__}: {err}\n"
            f"ending all {comm.size} ranks (MPI_Abort) so that none waits forever.",
            file=sys.stderr,
            flush=True,
        )
        comm.Abort(1)
