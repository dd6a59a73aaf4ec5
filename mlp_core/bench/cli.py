"""The command line: ``python -m mlp_core bench [options]``."""

from __future__ import annotations

import argparse
import os
import sys

from ..core import backend
from ..core.errors import MlpCoreError
from ..core.io import rescue_name, write_or_rescue
from . import allreduce
from .contenders import CONTENDERS
from .harness import run_bench
from .machine import POOL_SETTINGS
from .problems import DEFAULT_SIZES, DTYPES, LEARNING_RATE, SIZES
from .report import check_writable, format_table, write_json

DESCRIPTION = "python -m mlp_core bench: how fast is a training epoch, and against what?"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to a ``python -m mlp_core`` parser."""
    b = subparsers.add_parser(
        "bench",
        help="time training epochs against other libraries",
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_arguments(b)
    allreduce.add_arguments(b)  # --allreduce, --ranks: the data-parallel benchmark (ch. 14)
    return b


def _add_arguments(b: argparse.ArgumentParser) -> None:
    b.add_argument(
        "--sizes",
        default=None,
        help=f"comma-separated, from: {', '.join(SIZES)} (default: {','.join(DEFAULT_SIZES)})",
    )
    b.add_argument("--dtypes", default=None, help=f"default: {','.join(DTYPES)}")
    b.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset")
    b.add_argument("--repeats", type=int, default=None, help="timed epochs per contender (5)")
    b.add_argument("--warmup", type=int, default=None, help="untimed epochs first (1)")
    b.add_argument(
        "--device",
        choices=backend.DEVICES,
        default=None,
        help="auto: GPU contenders where a GPU can be used (default: $MLP_CORE_DEVICE, else auto)",
    )
    b.add_argument(
        "--loop-examples",
        type=int,
        default=None,
        help="examples the one-example loop times on large sizes (default: per size)",
    )
    b.add_argument("--lr", type=float, default=LEARNING_RATE)
    b.add_argument(
        "--quick",
        action="store_true",
        help="digits, float32, 3 repeats: a first look in seconds (not with --sizes, "
        "--dtypes or --repeats)",
    )
    b.add_argument("--json", metavar="PATH", help="also write the results as JSON here")


def run_from_args(args, out=None) -> int:
    """Run the benchmark the parsed arguments describe; print the table; write the JSON.

    ``--json``'s folder is proven writable before the run (a temporary file is created
    and removed beside it). If writing the results still fails, they go to a fallback
    file in the temporary folder, the error says where, and the exit status is 1."""
    out = out or sys.stdout
    if getattr(args, "allreduce", False):
        return allreduce.run_from_args(args, out)
    reexec_with_sleeping_pools()
    if args.json:
        check_writable(args.json)
    result = run_bench(
        sizes=args.sizes,
        dtypes=args.dtypes,
        repeats=args.repeats,
        warmup=args.warmup,
        contenders=args.contenders,
        quick=args.quick,
        device=args.device,
        loop_examples=args.loop_examples,
        lr=args.lr,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_table(result), file=out, flush=True)
    if not args.json:
        return 0
    try:
        written, error = write_or_rescue(
            lambda p: write_json(result, p), args.json, rescue_name("mlp-core-bench", ".json")
        )
    except OSError as err:
        print(f"error: could not write {args.json} ({err}), nor a rescue file", file=sys.stderr)
        return 1
    if error is not None:
        print(
            f"error: could not write {args.json} ({error}); the results are in {written}",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {written}", file=out)
    return 0


def reexec_with_sleeping_pools(argv=None, environ=None, execve=os.execve) -> None:
    """When started from the shell as ``python -m mlp_core bench ...`` without the
    environment that makes idle BLAS/OpenMP threads sleep (:data:`machine.POOL_SETTINGS`,
    read only when those libraries load), start again, once, with it: a contender's
    spinning pool must not eat into the next one's time. Settings the user gave are kept;
    called from Python (tests, notebooks), nothing happens."""
    argv = list(sys.argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    from_shell = bool(argv) and os.path.basename(argv[0]) == "__main__.py" and "bench" in argv
    missing = {k: v for k, v in POOL_SETTINGS.items() if k not in environ}
    if not from_shell or not missing or environ.get("MLP_CORE_BENCH_REEXEC"):
        return
    env = dict(environ, MLP_CORE_BENCH_REEXEC="1", **missing)
    sys.stdout.flush()
    sys.stderr.flush()
    execve(sys.executable, [sys.executable, "-m", "mlp_core", *argv[1:]], env)


def main(argv=None, out=None) -> int:
    """``python -m mlp_core bench [options]`` on its own: returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m mlp_core bench",
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args, out)
    except MlpCoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
