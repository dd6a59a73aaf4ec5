"""``python -m mlp_core train``, run as a user runs it: in a subprocess.

Each run checks the exit status, what is printed (the per-epoch table, the final
held-out accuracy, or one clear ``error:`` line and never a traceback), and what is, or
is not, written to disk.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlp_core import cli, data
from mlp_core.core.backend import gpu_available
from mlp_core.core.errors import ConfigError, ParamsFileError
from mlp_core.core.io import load_params
from mlp_core.core.params import Params
from mlp_core.training import check_settings, evaluate

REPO_ROOT = str(Path(__file__).resolve().parents[1])

# one row of the table: epoch, train loss, train acc, held-out loss, held-out acc
ROW = re.compile(r"^\s*(\d+)\s+(\d+\.\d{4})\s+(\d\.\d{4})\s+(\d+\.\d{4})\s+(\d\.\d{4})\s*$")
FINAL = re.compile(r"final held-out accuracy: (\d\.\d{4})")


def cli_command(*args):
    """``python -m mlp_core train ARGS`` and the environment to run it in."""
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env.pop("MLP_CORE_DEVICE", None)
    return [sys.executable, "-m", "mlp_core", "train", *map(str, args)], env


def run_cli(*args, cwd, timeout=120, **kwargs):
    """``python -m mlp_core train ARGS`` in a fresh interpreter; returns the CompletedProcess."""
    command, env = cli_command(*args)
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def assert_clean_error(proc, *needles, code=2):
    """Exit status ``code``, one ``error:`` line on stderr holding the needles, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def table_rows(stdout):
    return [ROW.match(line) for line in stdout.splitlines() if ROW.match(line)]


# ----------------------------------------------------------------------------- success


def test_train_prints_a_table_and_saves_parameters_that_load_back(tmp_path):
    epochs, seed = 3, 1
    save = tmp_path / "digits.npz"
    proc = run_cli(
        "--epochs", epochs, "--seed", seed, "--device", "cpu", "--save", save, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout

    # the header, one row per epoch (1..epochs), then the final accuracy
    assert re.search(r"epoch\s+train loss\s+train acc\s+held-out loss\s+held-out acc", out)
    rows = table_rows(out)
    assert [int(r.group(1)) for r in rows] == list(range(1, epochs + 1))
    for r in rows:
        assert 0.0 <= float(r.group(3)) <= 1.0 and 0.0 <= float(r.group(5)) <= 1.0
    final = FINAL.search(out)
    assert final, out
    assert final.group(1) == rows[-1].group(5)  # the last row's held-out accuracy
    assert float(final.group(1)) > 0.8  # three epochs already learn the digits
    assert f"saved parameters to {save}" in out

    # the file reads back with the right sizes h = (64, 128, 64, 10) and meta
    loaded, meta = load_params(save, expected_sizes=(64, 128, 64, 10))
    W, b = loaded.W, loaded.b
    assert [W[l].shape for l in (1, 2, 3)] == [(64, 128), (128, 64), (64, 10)]
    assert [b[l].shape for l in (1, 2, 3)] == [(128,), (64,), (10,)]
    assert W[1].dtype == np.float32 and meta["dtype"] == "float32"
    assert meta["activation"] == "relu" and meta["loss"] == "cross_entropy"
    assert meta["seed"] == seed and meta["epochs"] == epochs
    assert list(tmp_path.iterdir()) == [save]  # no temporary file left behind

    # ... and give the same held-out accuracy on the same split
    ds = data.load_digits()
    _, X_te, _, y_te = data.train_test_split(ds.X, ds.labels, 0.2, seed=seed)
    params = Params(W, b)
    _, acc = evaluate(
        X_te.astype(np.float32),
        data.one_hot(y_te, ds.C, dtype=np.float32),
        params,
        meta["activation"],
        meta["loss"],
    )
    assert acc == meta["held_out_accuracy"]
    assert f"{acc:.4f}" == final.group(1)


def test_mnist_from_small_fake_idx_files(tmp_path):
    """50 random 28×28 uint8 images with labels 0..9 (five of each), gzipped IDX."""
    m = 50
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(m, 28, 28), dtype=np.uint8)
    labels = (np.arange(m) % 10).astype(np.uint8)
    img_path, lab_path = tmp_path / "imgs-idx3-ubyte.gz", tmp_path / "labs-idx1-ubyte.gz"
    img_path.write_bytes(
        gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">III", m, 28, 28) + images.tobytes())
    )
    lab_path.write_bytes(
        gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", m) + labels.tobytes())
    )
    assert data.read_idx(img_path).shape == (m, 28, 28)  # the files are well formed

    proc = run_cli(
        "--dataset",
        "mnist",
        "--mnist-images",
        img_path,
        "--mnist-labels",
        lab_path,
        "--epochs",
        1,
        "--hidden",
        "16",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mnist: 40 training and 10 held-out examples; sizes (784, 16, 10)" in proc.stdout
    assert [int(r.group(1)) for r in table_rows(proc.stdout)] == [1]
    assert FINAL.search(proc.stdout)


# ----------------------------------------------------------------------------- refusals


def test_save_into_a_missing_folder_is_refused_before_training(tmp_path):
    target = tmp_path / "no-such-folder" / "model.npz"
    proc = run_cli("--epochs", 1, "--save", target, cwd=tmp_path)
    assert_clean_error(proc, "does not exist", "no-such-folder")
    assert proc.stdout == ""  # no training: not even the header was printed
    assert list(tmp_path.iterdir()) == []


def test_save_onto_a_folder_is_refused_before_training(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    proc = run_cli("--epochs", 1, "--save", folder, cwd=tmp_path)
    assert_clean_error(proc, "is a folder")
    assert proc.stdout == ""
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(gpu_available(), reason="a GPU is present, so --device gpu works")
def test_device_gpu_without_a_gpu_is_a_clear_error(tmp_path):
    proc = run_cli("--device", "gpu", "--epochs", 1, cwd=tmp_path)
    assert_clean_error(proc, "error:", "no usable CUDA device", "cpu")
    assert proc.stdout == ""


def test_divergence_exits_2_names_epoch_and_batch_and_saves_nothing(tmp_path):
    save = tmp_path / "diverged.npz"
    proc = run_cli("--lr", 1000, "--epochs", 3, "--device", "cpu", "--save", save, cwd=tmp_path)
    assert_clean_error(proc, "smaller learning rate")
    assert re.search(r"in epoch \d+, (after )?batch \d+ of \d+", proc.stderr), proc.stderr
    assert "final held-out accuracy" not in proc.stdout
    assert not save.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file either


def test_unknown_activation_lists_the_choices(tmp_path):
    proc = run_cli("--activation", "softmax", cwd=tmp_path)
    assert_clean_error(proc, "invalid choice", "'softmax'")
    for name in ("relu", "sigmoid", "tanh", "identity"):
        assert name in proc.stderr
    assert proc.stdout == ""


def test_mnist_without_files_explains_the_idx_files(tmp_path):
    proc = run_cli("--dataset", "mnist", "--epochs", 1, cwd=tmp_path)
    assert_clean_error(proc, "IDX", "--mnist-images", "--mnist-labels", "nothing is downloaded")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "args, what",
    [
        (["--batch-size", "0"], "batch_size"),
        (["--epochs", "-1"], "epochs"),
        (["--lr", "nan"], "learning rate"),
    ],
)
def test_cli_refuses_bad_numbers_before_loading_anything(args, what):
    run = subprocess.run(
        [sys.executable, "-m", "mlp_core", "train", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": REPO_ROOT},
    )
    assert run.returncode == 2
    assert what in run.stderr and run.stdout == ""


# ----------------------------------------------------------- every error path, one line each

SAMPLES = ["--dataset", "xor", "--samples", "40", "--epochs", "1", "--hidden", "4"]


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_main(argv, capsys) -> Ran:
    """``cli.main(argv)`` in this process (fast), as a CompletedProcess-like record."""
    try:
        code = cli.main(["train", *map(str, argv)])
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return Ran(code, out, err)


ERROR_PATHS = {
    "unknown option": (["--bogus"], "unrecognized arguments"),
    "bad choice": (["--activation", "softmax"], "invalid choice"),
    "bad dtype": (["--dtype", "float16"], "invalid choice"),
    "batch size 0": (["--batch-size", "0"], "batch_size must be a whole number"),
    "batch size 2.5": (["--batch-size", "2.5"], "batch_size must be a whole number"),
    "epochs -1": (["--epochs", "-1"], "epochs must be a whole number"),
    "epochs text": (["--epochs", "ten"], "--epochs: invalid number value"),
    "lr nan": (["--lr", "nan"], "learning rate"),
    "lr 0": (["--lr", "0"], "learning rate"),
    "lr text": (["--lr", "fast"], "--lr: invalid number value"),
    "seed -1": (["--seed", "-1"], "seed must be a whole number"),
    "seed 1.5": (["--seed", "1.5"], "seed must be a whole number"),
    "seed 2**32": (["--seed", "4294967296", *SAMPLES], "seed must be a whole number in 0"),
    "test fraction 0": (["--test-fraction", "0"], "test_fraction"),
    "test fraction 1.5": (["--test-fraction", "1.5"], "test_fraction"),
    "save empty": (["--save", ""], "--save: the path must be a file name"),
    "save in /proc": (["--save", "/proc/model.npz", *SAMPLES], "cannot write"),
    "save in /sys": (["--save", "/sys/model.npz", *SAMPLES], "cannot write"),
    "save missing folder": (["--save", "{tmp}/no/such/m.npz", *SAMPLES], "does not exist"),
    "save onto a folder": (["--save", "{tmp}", *SAMPLES], "is a folder"),
    "hidden not numbers": (["--hidden", "a,b", *SAMPLES[:4]], "--hidden"),
    "hidden zero": (["--hidden", "0", *SAMPLES[:4]], "--hidden"),
    "hidden empty widths": (["--hidden", ",,,4", *SAMPLES[:4]], "--hidden"),
    "mnist files with the digits": (["--mnist-images", "{tmp}/x"], "--dataset mnist"),
    "samples with the digits": (["--samples", "40"], "--samples"),
    "mnist no files": (["--dataset", "mnist"], "--mnist-images"),
    "mnist missing file": (
        ["--dataset", "mnist", "--mnist-images", "{tmp}/x", "--mnist-labels", "{tmp}/y"],
        "no file",
    ),
    "xor too few samples": (["--dataset", "xor", "--samples", "3"], "m must be"),
    "split impossible": (
        ["--dataset", "spirals", "--samples", "6", "--test-fraction", "0.1"],
        "test_fraction",
    ),
    "divergence": (["--dataset", "xor", "--lr", "1e4", "--epochs", "5"], "training diverged"),
}


@pytest.mark.parametrize("case", ERROR_PATHS)
def test_every_cli_error_path_is_one_line_and_non_zero(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLP_CORE_DEVICE", raising=False)
    argv, needle = ERROR_PATHS[case]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    ran = run_main([*argv, "--device", "cpu"], capsys)
    assert_clean_error(ran, needle)
    assert "final held-out accuracy" not in ran.stdout
    assert not any(p.suffix == ".npz" for p in tmp_path.rglob("*"))


def test_a_save_failing_after_training_goes_to_a_printed_fallback(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "fallback"))
    (tmp_path / "fallback").mkdir()
    real = cli.save_params
    target = tmp_path / "m.npz"

    def failing(path, params, meta=None):
        if Path(path) == target:
            raise ParamsFileError("path: writing failed (disk full, simulated)")
        return real(path, params, meta)

    monkeypatch.setattr(cli, "save_params", failing)
    ran = run_main([*SAMPLES, "--device", "cpu", "--save", target], capsys)
    assert_clean_error(ran, "disk full", "saved to", code=3)
    assert "final held-out accuracy" in ran.stdout
    rescued = list((tmp_path / "fallback").glob("mlp_core-rescued-*.npz"))
    assert len(rescued) == 1 and str(rescued[0]) in ran.stderr
    params, meta = load_params(rescued[0])
    assert params.sizes == (2, 4, 2) and meta["dataset"] == "xor"


def test_an_unexpected_error_is_one_line_unless_debug(capsys, monkeypatch):
    def boom(args, out=None):
        raise RuntimeError("something odd")

    monkeypatch.setattr(cli, "run_train", boom)
    ran = run_main([], capsys)
    assert_clean_error(ran, "RuntimeError: something odd", "--debug")
    with pytest.raises(RuntimeError):
        cli.main(["train", "--debug"])
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "train"])


def test_an_interrupt_exits_130_in_one_line(capsys, monkeypatch):
    def interrupted(args, out=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_train", interrupted)
    ran = run_main([], capsys)
    assert_clean_error(ran, "interrupted (SIGINT)", code=130)


def test_save_through_a_symlink_says_so(tmp_path, capsys):
    target = tmp_path / "real.npz"
    target.write_bytes(b"")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    ran = run_main([*SAMPLES, "--device", "cpu", "--save", link], capsys)
    assert ran.returncode == 0, ran.stderr
    assert "through the symlink" in ran.stdout and link.is_symlink()
    assert load_params(target)[0].sizes == (2, 4, 2)


def test_the_cli_honours_MLP_CORE_DEVICE(capsys, monkeypatch):
    monkeypatch.setenv("MLP_CORE_DEVICE", "tpu")
    ran = run_main(SAMPLES, capsys)
    assert_clean_error(ran, "MLP_CORE_DEVICE")


# ----------------------------------------------------------------- one gate: the library's


def stopped_after_the_gate(args):
    raise ConfigError("stopped after the gate")


SETTING_TEXT = st.one_of(
    st.integers(-5, 2**33).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "ten", "1e3", "0x10", " 7 ", "2.0", "-0.0", "1_0"]),
)


@given(st.sampled_from(["--epochs", "--batch-size", "--lr", "--seed"]), SETTING_TEXT)
@settings(max_examples=80, deadline=None, derandomize=True)
def test_the_cli_judges_its_settings_by_the_librarys_gate(option, text):
    """Whatever is typed, the CLI's verdict is the library's: text that is not a number is
    argparse's one line; a number is accepted or refused as check_settings does, in its
    words."""
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(cli, "load_dataset", stopped_after_the_gate)
        try:
            cli.main(["train", f"{option}={text}", "--device", "cpu"])
        except SystemExit as exc:
            assert exc.code == 2
    line = err.getvalue()
    try:
        value = cli.number(text)
    except ValueError:
        assert line.startswith(f"error: python -m mlp_core train: argument {option}: invalid")
        return
    d = cli.DEFAULTS
    given_settings = dict(epochs=d.epochs, batch_size=d.batch_size, lr=d.lr, seed=d.seed)
    given_settings[option[2:].replace("-", "_")] = value
    try:
        check_settings(**given_settings)
        expected = "stopped after the gate"
    except ConfigError as exc:
        expected = " ".join(str(exc).split())
    assert line == f"error: {expected}\n"


def test_the_device_option_passes_an_explicit_value(monkeypatch, capsys):
    monkeypatch.delenv("MLP_CORE_DEVICE", raising=False)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    assert re.search(r"--device \{cpu,gpu,auto\}.*\(default: auto\)", capsys.readouterr().out, re.S)
    seen = []
    monkeypatch.setattr(cli, "resolve_device", lambda device: seen.append(device) or "cpu")
    monkeypatch.setattr(cli, "load_dataset", stopped_after_the_gate)
    assert cli.main(["train"]) == 2
    monkeypatch.setenv("MLP_CORE_DEVICE", "cpu")
    assert cli.main(["train"]) == 2
    assert seen == ["auto", "cpu"]


# ----------------------------------------------------------------- interrupts keep the work


def default_sigint():
    """In the child: SIGINT as a terminal delivers it. A shell that starts the test run in
    the background (``make check &``) ignores SIGINT, and a child inherits that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def read_lines(pipe, n: int) -> list[str]:
    """The first ``n`` lines of a child's pipe, read byte by byte: a buffered read would
    take later lines with it, which ``communicate()`` (reading the descriptor) never sees."""
    data = b""
    while data.count(b"\n") < n and (byte := os.read(pipe.fileno(), 1)):
        data += byte
    return data.decode().splitlines(keepends=True)


def train_then_signal(tmp_path, sig, *args):
    """Start a long training with --save, send ``sig`` once its first epoch is printed;
    returns (the CompletedProcess-like record, the rows printed, the file)."""
    save = tmp_path / "m.npz"
    command, env = cli_command("--epochs", 5000, "--hidden", 16, "--device", "cpu", *args)
    proc = subprocess.Popen(
        [*command, "--save", save], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=tmp_path, preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        head = read_lines(proc.stdout, 3)  # the header, the columns, epoch 1
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    ran = Ran(proc.returncode, "".join(head) + stdout, stderr)
    return ran, table_rows(ran.stdout), save


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_what_was_trained_and_says_where(tmp_path, sig):
    ran, rows, save = train_then_signal(tmp_path, sig)
    name = signal.Signals(sig).name
    assert_clean_error(ran, f"interrupted ({name})", f"were saved to {save}", code=128 + sig)
    params, meta = load_params(save)
    epochs = int(re.search(r"after epoch (\d+) ", ran.stderr).group(1))
    assert meta["interrupted"] and meta["epochs"] == epochs >= 1
    assert epochs in (len(rows), len(rows) + 1)  # the last row may not be printed yet
    assert f"{meta['held_out_accuracy']:.4f}" in [r.group(5) for r in rows[epochs - 1 :]] or (
        epochs == len(rows) + 1
    )
    assert params.sizes == (64, 16, 10)


def test_a_signal_before_the_first_epoch_saves_nothing(tmp_path):
    """An epoch of 800,000 steps (B = 1): the signal arrives before any epoch ends."""
    save = tmp_path / "m.npz"
    command, env = cli_command(
        "--dataset", "spirals", "--samples", 10**6, "--batch-size", 1, "--save", save
    )  # fmt: skip
    proc = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        proc.wait(timeout=3)  # still in the first epoch
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted (SIGINT)")
    assert not save.exists()


def limit_memory():
    four_gib = 4 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (four_gib, four_gib))


def test_a_data_set_too_large_for_memory_is_refused_before_allocating(tmp_path):
    ran = run_cli(
        "--dataset", "xor", "--samples", 10**11, cwd=tmp_path, timeout=60,
        preexec_fn=limit_memory,
    )  # fmt: skip
    assert_clean_error(ran, "GiB")
    assert "MemoryError" not in ran.stderr
