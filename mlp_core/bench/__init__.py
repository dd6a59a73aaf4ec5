"""The benchmark, ``python -m mlp_core bench``, and the book's Part III experiments."""

from . import allreduce
from .harness import *  # noqa: F403
from .harness import __all__  # noqa: F401
from .harness import add_parser as _add_parser
from .harness import run_from_args as _run_from_args


def add_parser(subparsers):
    """``python -m mlp_core bench``, with the data-parallel benchmark's ``--allreduce``."""
    b = _add_parser(subparsers)
    allreduce.add_arguments(b)
    return b


def run_from_args(args, out=None) -> int:
    """Run the benchmark the arguments describe (``--allreduce``: the MPI one)."""
    if getattr(args, "allreduce", False):
        return allreduce.run_from_args(args, out)
    return _run_from_args(args, out)
