"""``python -m mlp_core train|bench``: train a network, or time training epochs.

``train`` prints one row per epoch (mean loss and accuracy, training and held-out) and the
final held-out accuracy; ``--save`` writes the parameters to an ``.npz`` file (atomically,
after training; the path is proven writable before training starts). Under ``mpiexec -n
P`` the training is data-parallel (:mod:`mlp_core.distributed`) and only rank 0 prints
and saves. ``bench`` times training epochs against other libraries (:mod:`mlp_core.bench`).

The options are handed to the library as they are typed (text becomes a number, nothing
more): the library's rules judge them. Every refusal is one line on stderr, ``error:
...``, printed once (by rank 0 under ``mpiexec``), and a non-zero exit status: 2 for bad
input or a failed run, 3 when the result could only be saved to a rescue file, 130 or 143
when SIGINT (Ctrl-C) or SIGTERM stopped it, after saving what was trained (``--save``).
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import distributed
from .bench import allreduce
from .bench.contenders import CONTENDERS
from .bench.harness import run_bench
from .bench.problems import DEFAULT_SIZES, DTYPES, SIZES
from .bench.report import format_table, write_json
from .core import data as datasets
from .core.activations import HIDDEN_ACTIVATIONS
from .core.backend import DEVICES, resolve_device, to_device
from .core.errors import ConfigError, MlpCoreError, TrainingDiverged
from .core.io import check_writable, save_params
from .core.losses import LOSSES
from .core.params import default_init, init_params
from .core.validate import check_fraction, check_whole
from .training import Interrupted, Settings, check_settings, train

DATASETS = ("digits", "spirals", "xor", "mnist")


@dataclass(frozen=True)
class TrainDefaults:
    """The CLI's defaults: on the digits they reach ≈98% held-out accuracy (median of
    10 seeds)."""

    dataset: str = "digits"
    hidden: str = "128,64"
    activation: str = "relu"
    batch_size: int = 32
    lr: float = 0.2
    epochs: int = 40
    dtype: str = "float32"
    seed: int = 0
    test_fraction: float = 0.2
    samples: int = 600


DEFAULTS = TrainDefaults()


class SavedElsewhere(MlpCoreError):
    """The work succeeded but its file could not be written where asked; it went to a
    rescue file instead (the message names both)."""


# ------------------------------------------------------------------------- the options


def number(text: str):
    """argparse type: the text as an int, else as a float (the library judges the value)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def whole_numbers(text: str, option: str, example: str) -> tuple:
    """``"128,64"`` → ``(128, 64)``: comma-separated whole numbers ≥ 1 (``""``: none)."""
    try:
        values = [int(piece) for piece in text.split(",")] if text.strip() else []
    except ValueError:
        raise ConfigError(
            f"{option} takes comma-separated whole numbers like {example}; got {text!r}."
        ) from None
    return tuple(check_whole(v, f"every number of {option}") for v in values)


def parse_widths(text: str) -> tuple:
    """``--hidden "128,64"`` → ``(128, 64)``; the empty string means no hidden layer."""
    return whole_numbers(text, "--hidden", "128,64 (or '' for no hidden layer)")


def device_default() -> str:
    """``--device``'s default: ``$MLP_CORE_DEVICE`` where it is set, else ``auto``."""
    return os.environ.get("MLP_CORE_DEVICE") or "auto"


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr (from rank 0 only
    under ``mpiexec``) and exit status 2."""

    def error(self, message):
        quiet = distributed.world_rank() != 0
        self.exit(2, None if quiet else f"error: {self.prog}: {message} (see {self.prog} --help)\n")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none (None, or a flag's False)."""

    def _get_help_string(self, action):
        shown = action.default not in (None, False)
        return super()._get_help_string(action) if shown else action.help


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m mlp_core", description="Vectorized backpropagation, from the command line."
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (anywhere in argv)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train", help="train a network with mini-batch SGD", formatter_class=DefaultsHelp
    )
    d = DEFAULTS
    t.add_argument("--dataset", choices=DATASETS, default=d.dataset, help="the data set")
    t.add_argument("--hidden", default=d.hidden, help="hidden layer widths h_1,...,h_{L-1}")
    t.add_argument(
        "--activation", choices=HIDDEN_ACTIVATIONS, default=d.activation, help="hidden σ"
    )
    t.add_argument("--loss", choices=tuple(LOSSES), default="cross_entropy", help="the loss")
    t.add_argument("--batch-size", type=number, default=d.batch_size, help="B, rows per step")
    t.add_argument("--lr", type=number, default=d.lr, help="learning rate η")
    t.add_argument("--epochs", type=number, default=d.epochs, help="passes over the data")
    t.add_argument("--device", choices=DEVICES, default=device_default(), help="cpu, gpu or auto")
    t.add_argument("--dtype", choices=("float32", "float64"), default=d.dtype, help="precision")
    t.add_argument(
        "--seed",
        type=number,
        default=d.seed,
        help="seeds the split, the initial weights and the batch order",
    )
    t.add_argument(
        "--test-fraction", type=number, default=d.test_fraction, help="the held-out share"
    )
    t.add_argument("--samples", type=number, help=f"m for spirals and xor (default {d.samples})")
    t.add_argument("--mnist-images", help="MNIST images IDX file (plain or .gz)")
    t.add_argument("--mnist-labels", help="MNIST labels IDX file (plain or .gz)")
    t.add_argument("--save", metavar="PATH.npz", help="write the trained parameters here")
    t.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: only on a terminal)",
    )
    b = sub.add_parser(
        "bench",
        help="time training epochs against other libraries",
        description="python -m mlp_core bench: how fast is a training epoch, and against what?",
        formatter_class=DefaultsHelp,
    )
    b.add_argument(
        "--sizes",
        help=f"comma-separated, from: {', '.join(SIZES)} (default: {','.join(DEFAULT_SIZES)})",
    )
    b.add_argument("--dtypes", help=f"comma-separated (default: {','.join(DTYPES)})")
    b.add_argument("--contenders", help=f"a comma-separated subset of {','.join(CONTENDERS)}")
    b.add_argument("--repeats", type=number, help="timed epochs per contender (default 5)")
    b.add_argument("--warmup", type=number, help="untimed epochs first (default 1)")
    b.add_argument(
        "--device",
        choices=DEVICES,
        default=device_default(),
        help="auto: GPU contenders where a GPU can be used",
    )
    b.add_argument(
        "--loop-examples",
        type=number,
        help="examples the one-example loop times on large sizes (default: per size)",
    )
    b.add_argument("--lr", type=number, help="learning rate η (default 0.01)")
    b.add_argument(
        "--quick",
        action="store_true",
        help="digits, float32, 3 repeats: a first look in seconds (not with --sizes, "
        "--dtypes or --repeats)",
    )
    b.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    b.add_argument(
        "--allreduce",
        action="store_true",
        help="data-parallel compute against all-reduce under mpiexec (chapter 14)",
    )
    b.add_argument(
        "--ranks",
        help="with --allreduce: the P to launch (default 1 up to the cores; more are run "
        "but marked oversubscribed)",
    )
    return parser


# ------------------------------------------------------------------------- files


def check_option_path(option: str, path, example: str) -> None:
    """:func:`mlp_core.core.io.check_writable` for a command-line option: the same error
    class, its message led by the option's name."""
    try:
        check_writable(path, example=example)
    except MlpCoreError as err:
        raise type(err)(f"{option}: {err}") from None


def save_or_rescue(write, path) -> Path:
    """``write(path)``; if that fails, ``write`` the same result to a rescue file
    ``mlp_core-rescued-YYYYmmdd-HHMMSS-PID`` (same suffix) in the temporary folder, then in
    the current folder, and raise :class:`SavedElsewhere` naming both: finished work is
    never lost to a failing disk. Raises the first error when every place fails."""
    try:
        return Path(write(path))
    except (MlpCoreError, OSError) as exc:
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{Path(path).suffix or '.out'}"
        for folder in (Path(tempfile.gettempdir()), Path.cwd()):
            try:
                rescued = write(folder / f"mlp_core-rescued-{stamp}")
            except (MlpCoreError, OSError):
                continue
            raise SavedElsewhere(
                f"could not write {str(path)!r} ({exc}); the result was saved to "
                f"{str(rescued)!r} instead."
            ) from exc
        raise


def save_model(path, params, meta: dict) -> str:
    """Save trained parameters (:func:`save_or_rescue`); returns where, as printed."""
    written = save_or_rescue(lambda p: save_params(p, params, meta), path)
    return f"{written}" + (
        f" (through the symlink {str(path)!r})" if Path(path).is_symlink() else ""
    )


# ------------------------------------------------------------------------- train


class Job(NamedTuple):
    """A checked training run: its settings, the data set, the sizes, the device and the
    arrays."""

    settings: Settings
    dataset: datasets.Dataset
    sizes: tuple
    device: str
    params: object
    X_train: object
    Y_train: object
    X_test: object
    Y_test: object


def load_dataset(args) -> datasets.Dataset:
    """The data set named on the command line, as a host-side :class:`Dataset`, refusing
    the options that do not apply to it."""
    mnist_files = args.mnist_images is not None or args.mnist_labels is not None
    if mnist_files and args.dataset != "mnist":
        raise ConfigError(
            f"--mnist-images and --mnist-labels are the files of --dataset mnist; with "
            f"--dataset {args.dataset} they would be ignored. Drop them, or add "
            f"--dataset mnist."
        )
    if args.samples is not None and args.dataset not in ("spirals", "xor"):
        raise ConfigError(
            f"--samples sets m for --dataset spirals or xor; the {args.dataset} data set "
            f"has its own size. Drop --samples."
        )
    samples = DEFAULTS.samples if args.samples is None else args.samples
    if args.dataset == "digits":
        return datasets.load_digits()
    if args.dataset == "spirals":
        return datasets.spirals(samples, C=3, seed=args.seed)
    if args.dataset == "xor":
        return datasets.xor(samples, seed=args.seed)
    if not (args.mnist_images and args.mnist_labels):
        raise ConfigError(
            "--dataset mnist reads MNIST-format IDX files you already have (nothing is "
            "downloaded): pass --mnist-images train-images-idx3-ubyte.gz and "
            "--mnist-labels train-labels-idx1-ubyte.gz."
        )
    return datasets.load_mnist(args.mnist_images, args.mnist_labels)


def prepare(args, check_save: bool = True) -> Job:
    """Every check of a training run, cheapest first (the settings before any data is
    loaded), then the data, the split and the initial parameters on the device."""
    settings = check_settings(
        args.epochs, args.batch_size, args.lr, args.seed, activation=args.activation, loss=args.loss
    )
    check_fraction(args.test_fraction, "test_fraction")
    hidden = parse_widths(args.hidden)
    if check_save and args.save is not None:
        check_option_path("--save", args.save, "model.npz")
    device = resolve_device(args.device)
    dtype = np.dtype(args.dtype)
    ds = load_dataset(args)
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(
        ds.X, ds.labels, args.test_fraction, seed=args.seed
    )
    sizes = (ds.n, *hidden, ds.C)
    params = init_params(
        sizes, seed=args.seed, dtype=dtype, device=device, scheme=default_init(args.activation)
    )

    def on_device(X, labels):
        Y = datasets.one_hot(labels, ds.C, dtype=dtype)
        return to_device(X.astype(dtype), device), to_device(Y, device)

    train_set, test_set = on_device(X_tr, y_tr), on_device(X_te, y_te)
    return Job(settings, ds, sizes, device, params, *train_set, *test_set)


def _quiet(*args, **kwargs) -> None:
    return None


def run_train(args, out=None) -> float:
    """Train as the arguments say; print the table (to ``out``, default stdout); return
    the held-out accuracy. Under ``mpiexec`` with more than one rank the training is
    data-parallel, every check's verdict is shared by the ranks before they train, and
    only rank 0 prints and saves."""
    comm = distributed.world() if distributed.world_size() > 1 else None
    rank = 0 if comm is None else comm.rank
    say = partial(print, file=sys.stdout if out is None else out, flush=True)
    say = say if rank == 0 else _quiet
    with nullcontext() if comm is None else distributed.deferred_signals():
        if comm is None:
            job, trainer = prepare(args), train
        else:
            if args.device != "cpu":
                distributed.use_local_gpu()
            job = distributed.shared_verdict(comm, lambda: prepare(args, check_save=rank == 0))
            trainer = partial(distributed.train_distributed, comm=comm)
        settings = job.settings
        say(
            f"{job.dataset.name}: {job.X_train.shape[0]} training and {job.X_test.shape[0]} "
            f"held-out examples; sizes {job.sizes}; {args.activation}; batch "
            f"{settings.batch_size}; lr {settings.lr}; {args.dtype} on {job.device}"
        )
        say(
            f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'held-out loss':>13}  "
            f"{'held-out acc':>12}"
        )

        def show(epoch, h):
            say(
                f"{epoch:>5}  {h.train_loss[-1]:>10.4f}  {h.train_acc[-1]:>9.4f}  "
                f"{h.val_loss[-1]:>13.4f}  {h.val_acc[-1]:>12.4f}"
            )

        meta = dict(
            activation=args.activation, loss=args.loss, dataset=job.dataset.name,
            **settings._asdict(),
        )  # fmt: skip
        start = time.perf_counter()
        try:
            params, history = trainer(
                job.params,
                job.X_train,
                job.Y_train,
                X_val=job.X_test,
                Y_val=job.Y_test,
                **settings._asdict(),
                activation=args.activation,
                loss=args.loss,
                progress=args.progress,
                on_epoch=show,
            )
        except KeyboardInterrupt as err:
            if rank == 0 and args.save is not None:
                err.saved = save_interrupted(args.save, err, meta)
            raise
    seconds = time.perf_counter() - start
    acc = history.val_acc[-1]
    say(
        f"final held-out accuracy: {acc:.4f} ({acc:.2%}) after {settings.epochs} epochs "
        f"in {seconds:.1f} s"
    )
    if rank == 0 and args.save is not None:
        meta["held_out_accuracy"] = acc
        say(f"saved parameters to {save_model(args.save, params, meta)}")
    return acc


def save_interrupted(path, err: KeyboardInterrupt, meta: dict) -> str:
    """Save what an interrupted training had finished (the ``params`` and ``history`` its
    interrupt carries); returns the sentence that says where, or why nothing was saved."""
    history = getattr(err, "history", None)
    done = len(history.epoch) if history is not None else 0
    if not done:
        return "no epoch had finished: nothing was saved"
    meta = dict(meta, epochs=done, interrupted=True, held_out_accuracy=history.val_acc[-1])
    try:
        return (
            f"the parameters after epoch {done} were saved to {save_model(path, err.params, meta)}"
        )
    except SavedElsewhere as saved:
        return f"the parameters after epoch {done}: {saved}"


# ------------------------------------------------------------------------- bench


def run_bench_command(args, out=None) -> int:
    """``bench``: run the benchmark the arguments describe, print its table, write the JSON
    (``--json``, proven writable before the run). With ``--allreduce``, the data-parallel
    benchmark instead (:func:`allreduce_job`)."""
    out = out or sys.stdout
    if args.allreduce:
        run, table, example = allreduce_job(args)
    elif args.ranks is not None:
        raise ConfigError("--ranks is an option of --allreduce; add --allreduce or drop it.")
    else:
        run = partial(
            run_bench,
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
        table, example = format_table, "bench.json"
    if args.json:
        check_option_path("--json", args.json, example)
    result = run()
    print(table(result), file=out, flush=True)
    if not args.allreduce and not result["records"]:
        raise ConfigError("nothing was timed: every contender was skipped (see the reasons above).")
    if args.json:
        print(f"wrote {save_or_rescue(partial(write_json, result), args.json)}", file=out)
    return 0


def allreduce_job(args) -> tuple:
    """``bench --allreduce``: the run (``mpiexec -n P`` for each P of ``--ranks``), its
    table and the JSON file name its advice suggests. The options of the epoch benchmark
    do not apply."""
    given = [
        f"--{name.replace('_', '-')}"
        for name in ("sizes", "dtypes", "contenders", "repeats", "warmup", "loop_examples", "lr")
        if getattr(args, name) is not None
    ] + (["--quick"] if args.quick else [])
    if given:
        raise ConfigError(
            f"--allreduce times its own networks and batch sizes; {', '.join(given)} "
            f"apply to the epoch benchmark only. Drop them, or drop --allreduce."
        )
    ranks = None if args.ranks is None else whole_numbers(args.ranks, "--ranks", "1,2,4")
    if ranks == ():
        raise ConfigError("--ranks is empty; give the numbers of ranks to launch, like 1,2,4.")
    return partial(allreduce.run, ranks), allreduce.format_table, "allreduce.json"


# ------------------------------------------------------------------------- main


def _terminate(signum, frame):
    raise Interrupted(signum)


def main(argv=None) -> int:
    """Run ``python -m mlp_core``; returns the exit status (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    say = partial(print, file=sys.stderr) if distributed.world_rank() == 0 else _quiet
    main_thread = threading.current_thread() is threading.main_thread()
    on_term = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        if args.command == "train":
            run_train(args)
        else:
            return run_bench_command(args)
    except KeyboardInterrupt as err:
        if debug:
            raise
        signum = getattr(err, "signum", signal.SIGINT)
        saved = getattr(err, "saved", None)
        say(f"error: interrupted ({signal.Signals(signum).name})" + (f"; {saved}" if saved else ""))
        return 128 + signum
    except Exception as err:  # noqa: BLE001 - one readable line, never a traceback
        if debug:
            raise
        if isinstance(err, TrainingDiverged):
            text = f"training diverged: {err}"
        elif isinstance(err, MlpCoreError):
            text = str(err)
        else:
            text = f"{type(err).__name__}: {err} (run again with --debug for the traceback)"
        say(f"error: {' '.join(text.split())}")
        return 3 if isinstance(err, SavedElsewhere) else 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, on_term)
    return 0
