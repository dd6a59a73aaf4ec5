"""The exercise checkers: every correct answer passes, every wrong variant a checker claims
to diagnose gets that diagnosis, and nothing wrong passes.

For each checker name, ``VARIANTS[name]`` maps every mistake key the checker lists
(``exercises.CHECKERS[name].mistakes``) to a wrong function a student could write; the
test asserts the checker names exactly that mistake. A coverage test makes sure no listed
mistake lacks a variant, so a new diagnosis cannot go untested.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mlp_core.book import exercises
from mlp_core.core import batched, gradcheck, losses, single
from mlp_core.core.activations import ACTIVATIONS, relu, relu_prime, softmax
from mlp_core.core.backend import gpu_available, to_numpy
from mlp_core.core.errors import ConfigError, MlpCoreError
from mlp_core.core.params import Params
from mlp_core.training import sgd_step

GPU = gpu_available()
ROOT = Path(__file__).resolve().parents[1]

SIGMA = {a.sigma_prime: a.sigma for a in ACTIVATIONS.values() if a.sigma_prime}


def skip_layer_backward(G, A, W, s):
    """A student's right answer for the layer Z = A W + s A (the library has no such layer)."""
    return G @ W.T + s * G, A.T @ G


LIBRARY = {
    "linear": batched.linear,
    "output_error": losses.output_error,
    "bias_gradient": batched.bias_gradient,
    "weight_gradient": batched.weight_gradient,
    "hidden_error": batched.hidden_error,
    "backprop_single": single.backprop_single,
    "backprop": batched.backprop,
    "sgd_step": sgd_step,
    "skip_layer": skip_layer_backward,
}


class StandInGpuArray(np.ndarray):
    """A NumPy array that mlp_core's backend takes for a CuPy array (its type's module is
    ``cupy...``): lets the CPU-only suite test the wrong-device diagnosis."""

    __module__ = "cupy._stand_in"

    def get(self):
        return np.asarray(self).view(np.ndarray)


def on_gpu_standin(a):
    return np.asarray(a).view(StandInGpuArray)


def not_written(*args):
    raise NotImplementedError("Hint: write it with the book's equation")


def crashes(*args):
    raise ZeroDivisionError("division by zero")


def returns_none(*args):
    return None


def never_returns(*args):
    while True:
        pass


def exits(*args):
    sys.exit(3)


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("this exception cannot be printed")


def raises_unprintable(*args):
    raise Unprintable()


class Shapeless:
    """A result whose shape cannot be read."""

    dtype = np.dtype(np.float64)

    @property
    def shape(self):
        raise RuntimeError("no shape here")


# ---------------------------------------------------------------- student-style networks


def student_single(x, y, params, *, transpose_dW=False, db_shape=None, W_not_WT=False, keys0=False):
    """The four one-example equations, written the way a student would, with a switch per
    mistake."""
    W, b, L = params.W, params.b, params.L
    a, z = {0: x}, {}
    for l in range(1, L + 1):
        z[l] = W[l].T @ a[l - 1] + b[l].reshape(-1, 1)
        a[l] = relu(z[l]) if l < L else softmax(z[l], axis=0)
    delta = {L: a[L] - y}
    for l in range(L - 1, 0, -1):
        Wn = W[l + 1].T if W_not_WT else W[l + 1]
        delta[l] = (Wn @ delta[l + 1]) * relu_prime(z[l])
    dW = {l: (delta[l] @ a[l - 1].T if transpose_dW else a[l - 1] @ delta[l].T) for l in a if l}
    db = {l: delta[l][:, 0] for l in delta}
    if db_shape == "column":
        db = {l: delta[l] for l in delta}
    elif db_shape == "row":
        db = {l: delta[l].T for l in delta}
    if keys0:
        dW, db = {l - 1: g for l, g in dW.items()}, {l - 1: g for l, g in db.items()}
    return dW, db


def student_batch(
    X, Y, params, *, scale=1, transpose_dW=False, db_axis=0, keepdims=False, W_not_WT=False
):
    """The batched backprop a student writes, with a switch per mistake; ``scale`` is
    what the sums are multiplied by instead of 1/m, in units of 1/m."""
    W, b, L = params.W, params.b, params.L
    m = X.shape[0]
    A, Z = {0: X}, {}
    for l in range(1, L + 1):
        Z[l] = A[l - 1] @ W[l] + b[l]
        A[l] = relu(Z[l]) if l < L else softmax(Z[l], axis=1)
    delta = {L: A[L] - Y}
    for l in range(L - 1, 0, -1):
        Wn = W[l + 1] if W_not_WT else W[l + 1].T
        delta[l] = (delta[l + 1] @ Wn) * relu_prime(Z[l])
    dW = {
        l: (delta[l].T @ A[l - 1] if transpose_dW else A[l - 1].T @ delta[l]) * scale / m
        for l in range(1, L + 1)
    }
    db = {l: delta[l].sum(axis=db_axis, keepdims=keepdims) * scale / m for l in range(1, L + 1)}
    return dW, db


def _in_place_output_error(A_L, Y):
    A_L -= Y
    return A_L


def _in_place_bias(delta):
    delta /= delta.shape[0]
    return delta.sum(axis=0)


def _in_place_sgd(params, dW, db, lr):
    for l in params.layers:
        params.W[l] -= lr * dW[l]
        params.b[l] -= lr * db[l]
    return params


def _in_place_linear(A_prev, W, b):
    Z = A_prev @ W + b
    b[...] = 0.0
    return Z


def _in_place_hidden(delta_next, W_next, Z, sigma_prime):
    Z[...] = sigma_prime(Z)
    return (delta_next @ W_next.T) * Z


def _in_place_weight(A_prev, delta):
    delta /= delta.shape[0]
    return A_prev.T @ delta


def _in_place_single(x, y, params):
    out = single.backprop_single(x, y, params)
    x *= 2.0
    return out


def _in_place_batch(X, Y, params):
    out = batched.backprop(X, Y, params)
    params.W[1][0, 0] += 1.0
    return out


def _step(params, dW, db, lr, w_lr=None, b_lr=None, sign=-1):
    w_lr = lr if w_lr is None else w_lr
    b_lr = lr if b_lr is None else b_lr
    return Params(
        {l: params.W[l] + sign * w_lr * dW[l] for l in params.layers},
        {l: params.b[l] + sign * b_lr * db[l] for l in params.layers},
    )


def _in_place_skip(G, A, W, s):
    G *= 2.0
    return G @ W.T / 2 + s * G / 2, A.T @ G / 2


def _map(out, f):
    """Apply f to every array of a (dW, db) pair."""
    dW, db = out
    return {l: f(g) for l, g in dW.items()}, {l: f(g) for l, g in db.items()}


VARIANTS = {
    "linear": {
        "transposed": lambda A, W, b: W.T @ A.T + b[:, None],
        "WT-not-W": lambda A, W, b: A @ W.T + b,
        "bias-broadcast": lambda A, W, b: A @ W + b[:, None],
        "no-bias": lambda A, W, b: A @ W,
        "in-place": _in_place_linear,
        "dtype": lambda A, W, b: (A @ W + b).astype(np.float32),
        "device": lambda A, W, b: on_gpu_standin(A @ W + b),
        "not-an-array": lambda A, W, b: (A @ W + b).tolist(),
        "shape": lambda A, W, b: (A @ W + b)[:, :-1],
        "wrong-values": lambda A, W, b: A @ W + 2 * b,
    },
    "output_error": {
        "sign": lambda A, Y: Y - A,
        "transposed": lambda A, Y: (A - Y).T,
        "divided-by-m": lambda A, Y: (A - Y) / A.shape[0],
        "wrong-axis": lambda A, Y: (A - Y).mean(axis=0),
        "in-place": _in_place_output_error,
        "dtype": lambda A, Y: (A - Y).astype(np.float32),
        "device": lambda A, Y: on_gpu_standin(A - Y),
        "not-an-array": lambda A, Y: (A - Y).tolist(),
        "shape": lambda A, Y: (A - Y)[:, 1:],
        "wrong-values": lambda A, Y: A - 0.5 * Y,
    },
    "bias_gradient": {
        "missing-1/m": lambda D: D.sum(axis=0),
        "1/m-twice": lambda D: D.mean(axis=0) / D.shape[0],
        "wrong-axis": lambda D: D.sum(axis=1),
        "all-entries": lambda D: D.mean(),
        "keepdims": lambda D: D.mean(axis=0, keepdims=True),
        "in-place": _in_place_bias,
        "dtype": lambda D: D.mean(axis=0).astype(np.float32),
        "device": lambda D: on_gpu_standin(D.mean(axis=0)),
        "not-an-array": lambda D: D.mean(axis=0).tolist(),
        "shape": lambda D: D.mean(axis=0)[:-1],
        "wrong-values": lambda D: D.max(axis=0),
    },
    "weight_gradient": {
        "transposed": lambda A, D: D.T @ A / A.shape[0],
        "missing-1/m": lambda A, D: A.T @ D,
        "1/m-twice": lambda A, D: A.T @ D / A.shape[0] ** 2,
        "A-not-AT": lambda A, D: A @ D / A.shape[0],
        "in-place": _in_place_weight,
        "dtype": lambda A, D: (A.T @ D / A.shape[0]).astype(np.float32),
        "device": lambda A, D: on_gpu_standin(A.T @ D / A.shape[0]),
        "not-an-array": lambda A, D: (A.T @ D / A.shape[0]).tolist(),
        "shape": lambda A, D: (A.T @ D / A.shape[0])[1:],
        "wrong-values": lambda A, D: A.T @ D / (A.shape[0] + 1),
    },
    "hidden_error": {
        "transposed": lambda D, W, Z, sp: ((D @ W.T) * sp(Z)).T,
        "W-not-WT": lambda D, W, Z, sp: (D @ W) * sp(Z),
        "sigma-prime-of-A": lambda D, W, Z, sp: (D @ W.T) * sp(SIGMA[sp](Z)),
        "no-sigma-prime": lambda D, W, Z, sp: D @ W.T,
        "in-place": _in_place_hidden,
        "dtype": lambda D, W, Z, sp: ((D @ W.T) * sp(Z)).astype(np.float32),
        "device": lambda D, W, Z, sp: on_gpu_standin((D @ W.T) * sp(Z)),
        "not-an-array": lambda D, W, Z, sp: ((D @ W.T) * sp(Z)).tolist(),
        "shape": lambda D, W, Z, sp: ((D @ W.T) * sp(Z))[:, 1:],
        "wrong-values": lambda D, W, Z, sp: (D @ W.T) * relu_prime(Z),
    },
    "backprop_single": {
        "transposed": lambda x, y, p: student_single(x, y, p, transpose_dW=True),
        "bias-column": lambda x, y, p: student_single(x, y, p, db_shape="column"),
        "keepdims": lambda x, y, p: student_single(x, y, p, db_shape="row"),
        "W-not-WT": lambda x, y, p: student_single(x, y, p, W_not_WT=True),
        "layer-keys": lambda x, y, p: student_single(x, y, p, keys0=True),
        "swapped": lambda x, y, p: student_single(x, y, p)[::-1],
        "structure": lambda x, y, p: student_single(x, y, p)[0],
        "in-place": _in_place_single,
        "dtype": lambda x, y, p: _map(student_single(x, y, p), lambda g: g.astype(np.float32)),
        "device": lambda x, y, p: _map(student_single(x, y, p), on_gpu_standin),
        "shape": lambda x, y, p: _map(student_single(x, y, p), lambda g: g[1:]),
        "wrong-values": lambda x, y, p: _map(student_single(x, y, p), lambda g: 2 * g),
    },
    "backprop": {
        "missing-1/m": lambda X, Y, p: student_batch(X, Y, p, scale=X.shape[0]),
        "1/m-twice": lambda X, Y, p: student_batch(X, Y, p, scale=1 / X.shape[0]),
        "transposed": lambda X, Y, p: student_batch(X, Y, p, transpose_dW=True),
        "wrong-axis": lambda X, Y, p: student_batch(X, Y, p, db_axis=1),
        "keepdims": lambda X, Y, p: student_batch(X, Y, p, keepdims=True),
        "W-not-WT": lambda X, Y, p: student_batch(X, Y, p, W_not_WT=True),
        "layer-keys": lambda X, Y, p: tuple(
            {l - 1: g for l, g in d.items()} for d in student_batch(X, Y, p)
        ),
        "swapped": lambda X, Y, p: student_batch(X, Y, p)[::-1],
        "structure": lambda X, Y, p: list(student_batch(X, Y, p)[0].values()),
        "in-place": _in_place_batch,
        "dtype": lambda X, Y, p: _map(student_batch(X, Y, p), lambda g: g.astype(np.float32)),
        "device": lambda X, Y, p: _map(student_batch(X, Y, p), on_gpu_standin),
        "shape": lambda X, Y, p: _map(student_batch(X, Y, p), lambda g: g[:-1]),
        "wrong-values": lambda X, Y, p: student_batch(X, Y, p, scale=2),
    },
    "sgd_step": {
        "gradient-ascent": lambda p, dW, db, lr: _step(p, dW, db, lr, sign=+1),
        "no-learning-rate": lambda p, dW, db, lr: _step(p, dW, db, 1.0),
        "W-only": lambda p, dW, db, lr: _step(p, dW, db, lr, b_lr=0.0),
        "b-only": lambda p, dW, db, lr: _step(p, dW, db, lr, w_lr=0.0),
        "structure": lambda p, dW, db, lr: (_step(p, dW, db, lr).W, _step(p, dW, db, lr).b),
        "in-place": _in_place_sgd,
        "dtype": lambda p, dW, db, lr: _step(p, dW, db, lr).astype(np.float32),
        "device": lambda p, dW, db, lr: Params(
            {l: on_gpu_standin(w) for l, w in _step(p, dW, db, lr).W.items()},
            {l: on_gpu_standin(v) for l, v in _step(p, dW, db, lr).b.items()},
        ),
        "shape": lambda p, dW, db, lr: Params(
            {l: w[1:] for l, w in _step(p, dW, db, lr).W.items()}, _step(p, dW, db, lr).b
        ),
        "wrong-values": lambda p, dW, db, lr: _step(p, dW, db, lr / 2),
    },
    "skip_layer": {
        "skip-forgotten": lambda G, A, W, s: (G @ W.T, A.T @ G),
        "s-forgotten": lambda G, A, W, s: (G @ W.T + G, A.T @ G),
        "W-not-WT": lambda G, A, W, s: (G @ W + s * G, A.T @ G),
        "transposed": lambda G, A, W, s: (G @ W.T + s * G, G.T @ A),
        "structure": lambda G, A, W, s: G @ W.T + s * G,
        "swapped": lambda G, A, W, s: skip_layer_backward(G, A, W, s)[::-1],
        "in-place": _in_place_skip,
        "dtype": lambda G, A, W, s: tuple(
            g.astype(np.float32) for g in skip_layer_backward(G, A, W, s)
        ),
        "device": lambda G, A, W, s: tuple(
            on_gpu_standin(g) for g in skip_layer_backward(G, A, W, s)
        ),
        "shape": lambda G, A, W, s: (skip_layer_backward(G, A, W, s)[0][:, 1:], A.T @ G),
        "wrong-values": lambda G, A, W, s: (G @ W.T + s * G, 2 * A.T @ G),
    },
}
for _name in VARIANTS:
    VARIANTS[_name].update(
        {
            "not-written": not_written,
            "exception": crashes,
            "returned-none": returns_none,
            "time-limit": never_returns,
            "exits": exits,
        }
    )

# The time limit of the tests that feed a function that never returns (the default is
# generous, for a slow laptop).
SHORT_LIMIT = 0.1

CASES = [(name, key) for name in exercises.NAMES for key in exercises.CHECKERS[name].mistakes]


def _flat(text: str) -> str:
    """Text compared without spacing, superscript marks and braces, with − as -."""
    return re.sub(r"[\s^{}]", "", text).replace("−", "-")


def docstring_formulas(fn) -> list[str]:
    """The right-hand sides of the equations the library function's docstring states (the
    one-line answer in the book's symbols; an operator or a product in each)."""
    found = []
    for line in inspect.getdoc(fn).splitlines():
        for part in line.split(";"):
            if " = " not in part and "←" not in part:
                continue
            rhs = re.split(r" = |←", part)[-1]
            rhs = re.split(r": |, | \(`|\.$| for ", rhs.strip())[0]
            if len(_flat(rhs)) >= 4 and re.search(r"[\s−+⊙/]", rhs):
                found.append(rhs)
    return found


@functools.cache
def _answers() -> tuple[str, ...]:
    return tuple(
        text
        for name in exercises.NAMES
        for text in exercises.answer_lines(name)
        + [f for fn in exercises.CHECKERS[name].answer for f in docstring_formulas(fn)]
    )


def states_an_answer(message: str) -> list[str]:
    """The answers (the library's key lines, the formulas of its docstrings) that
    ``message`` states: none is allowed."""
    flat = _flat(message)
    return [text for text in _answers() if _flat(text) in flat]


RAW_FLOAT = re.compile(r"\d\.\d{3,}|\de-\d")


def test_the_names_of_the_convention():
    assert exercises.NAMES == tuple(LIBRARY)
    assert set(exercises.CHECKERS) == set(LIBRARY)


@pytest.mark.parametrize("name", exercises.NAMES)
def test_the_library_itself_passes(name):
    result = exercises.check(name, LIBRARY[name])
    assert result.passed, result.message
    assert result.mistake is None
    assert result.message.startswith(f"✓ {name} is correct")
    assert "m = 1" in result.message or name in ("backprop_single", "sgd_step")


def test_the_answers_are_the_library_functions_of_the_same_name():
    """What the student edition must not show: the library function each exercise asks
    for is among its answer functions (skip_layer's layer is not in the library)."""
    for name in exercises.NAMES:
        answer = exercises.CHECKERS[name].answer
        if name == "skip_layer":
            assert answer == ()
            continue
        assert LIBRARY[name] in answer
        bodies = exercises.answer_bodies(name)
        lines = exercises.answer_lines(name)
        assert lines, name
        source = "\n".join(inspect.getsource(f) for f in answer)
        for line in lines:
            assert line in source, (name, line)
            assert not line.startswith(("return ", '"""', "#")), (name, line)
        for body in bodies:
            assert '"""' not in body and not body.startswith("def ")
            assert "".join(body.split()) in "".join(source.split())


def test_key_lines_are_the_computing_lines():
    """Every line of an answer with an arithmetic operator is a key line; a line that only
    validates or names things (no operator, no call of another answer) is not."""
    lines = exercises.answer_lines("bias_gradient")
    assert lines == [exercises.answer_bodies("bias_gradient")[0].split("\n")[-1][7:]]
    assert not any("shape[0]" in line for line in lines)
    backprop = exercises.answer_lines("backprop")
    assert any("output_error(" in line for line in backprop)  # a call of another answer
    assert not any(line.startswith("sigma_prime =") for line in backprop)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("backprop_single", lambda x, y, p: student_single(x, y, p)),
        ("backprop", lambda X, Y, p: student_batch(X, Y, p)),
        ("bias_gradient", lambda D: D.mean(axis=0)),
        ("weight_gradient", lambda A, D: np.einsum("ij,ik->jk", A, D) / len(A)),
        ("hidden_error", lambda D, W, Z, sp: (W @ D.T).T * sp(Z)),
        ("linear", lambda A, W, b: np.add(A @ W, b)),
    ],
)
def test_other_correct_formulations_pass(name, fn):
    """Right answers written another way (a mean, einsum, the one-example orientation)."""
    result = exercises.check(name, fn)
    assert result.passed, result.message


def test_every_listed_mistake_has_a_wrong_variant():
    missing = [(n, k) for n, k in CASES if k not in VARIANTS[n]]
    assert not missing
    unknown = [k for n in exercises.NAMES for k in exercises.CHECKERS[n].mistakes]
    assert set(unknown) <= set(exercises.MISTAKES)


@pytest.mark.parametrize("name, mistake", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_each_wrong_variant_gets_its_diagnosis(name, mistake, monkeypatch):
    if mistake == "time-limit":
        monkeypatch.setattr(exercises, "TIME_LIMIT", SHORT_LIMIT)
    result = exercises.check(name, VARIANTS[name][mistake])
    assert not result.passed
    assert result.mistake == mistake, result.message
    assert exercises.MISTAKES[mistake] in result.message
    assert not RAW_FLOAT.search(result.message), result.message
    # the message never states the answer, in code or as a formula
    assert not states_an_answer(result.message), result.message
    # stable: the same message every time (stored outputs compare it)
    assert exercises.check(name, VARIANTS[name][mistake]).message == result.message


def test_the_messages_read_well():
    """A few messages in full: what was observed, on which sizes, and the hint."""
    r = exercises.check("bias_gradient", VARIANTS["bias_gradient"]["missing-1/m"])
    assert (
        r.message.splitlines()[0]
        == "✗ bias_gradient is wrong in ∂J/∂b on a problem with m = 7, h_l = 4."
    )
    r = exercises.check("bias_gradient", VARIANTS["bias_gradient"]["wrong-axis"])
    assert "∂J/∂b has shape (7,), expected (h_l,) = (4,)" in r.message
    r = exercises.check("linear", not_written)
    assert r.message.startswith("… linear is not written yet")
    assert "write it with the book's equation" in r.message
    r = exercises.check("linear", crashes)
    assert "raised ZeroDivisionError" in r.message and "division by zero" in r.message
    assert "Traceback" not in r.message
    r = exercises.check("output_error", _in_place_output_error)
    assert "changed its input A_L in place" in r.message
    r = exercises.check("sgd_step", _in_place_sgd)
    assert "params.W[1]" in r.message


def test_display_in_jupyter():
    ok = exercises.check("linear", batched.linear)
    bad = exercises.check("linear", VARIANTS["linear"]["no-bias"])
    assert repr(ok) == ok.message
    assert "exercise-check-passed" in ok._repr_html_()
    html = bad._repr_html_()
    assert "exercise-check-failed" in html and "<br>" in html
    assert "The bias b is missing" in html


def test_negative_controls_nothing_wrong_passes():
    """Wrong only for m = 1, wrong only on the second problem, or off by one part in
    a million: each must fail, or the checker could not fail at all."""

    def wrong_for_one_example(D):
        return D.sum(axis=0) / (D.shape[0] if D.shape[0] > 1 else 2)

    def wrong_when_h_is_five(A, W, b):
        return A @ W + (b if W.shape[0] != 6 else 0 * b)

    r = exercises.check("bias_gradient", wrong_for_one_example)
    assert not r.passed and "m = 1" in r.message
    assert not exercises.check("linear", wrong_when_h_is_five).passed
    assert not exercises.check("output_error", lambda A, Y: (A - Y) * (1 + 1e-6)).passed
    assert not exercises.check(
        "backprop", lambda X, Y, p: _map(batched.backprop(X, Y, p), lambda g: g + 1e-7)
    ).passed


@pytest.mark.parametrize(
    "name, fn, needle",
    [
        ("no-such-exercise", batched.linear, "no exercise check named 'no-such-exercise'"),
        ("linear", "A @ W + b", "needs your function itself"),
        ("linear", None, "needs your function itself"),
        (["linear"], batched.linear, "there is no exercise check named ['linear']"),
        ("skip_layer", "G @ W.T", "exercises.check('skip_layer', skip_layer_backward)"),
    ],
)
def test_bad_input_to_the_checker_is_an_mlp_core_error(name, fn, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)) as info:
        exercises.check(name, fn)
    assert isinstance(info.value, MlpCoreError)


def test_problems_are_seeded_and_all_dimensions_differ():
    for name in exercises.NAMES:
        first = exercises.CHECKERS[name].problems()
        again = exercises.CHECKERS[name].problems()
        for p, q in zip(first, again):
            arrays_p = {
                k: v
                for k, v in exercises._leaves(dict(enumerate(p.args))).items()
                if isinstance(v, np.ndarray)
            }
            arrays_q = {
                k: v
                for k, v in exercises._leaves(dict(enumerate(q.args))).items()
                if isinstance(v, np.ndarray)
            }
            assert arrays_p.keys() == arrays_q.keys() and arrays_p
            for k in arrays_p:
                assert np.array_equal(arrays_p[k], arrays_q[k])
            for k in p.expected:
                assert np.array_equal(p.expected[k], q.expected[k])
        for p in first:
            sizes = [v for v in p.sizes.values() if isinstance(v, int)]
            sizes += [h for v in p.sizes.values() if isinstance(v, tuple) for h in v]
            assert len(set(sizes)) == len(sizes), (name, p.sizes)
        if "m" in first[0].sizes:
            assert any(p.sizes["m"] == 1 for p in first), name


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no usable CUDA device (CuPy missing or no GPU)")
def test_on_cupy():  # pragma: no cover - exercised only on a CUDA machine
    """On a GPU the checkers also run the student's function on CuPy arrays."""
    for name in exercises.NAMES:
        assert exercises.check(name, LIBRARY[name]).passed, name
    r = exercises.check("linear", lambda A, W, b: to_numpy(A @ W + b))
    assert r.mistake == "device" and "on the CPU (NumPy) for inputs on the GPU" in r.message


def test_a_function_that_never_returns_is_stopped_with_a_verdict(monkeypatch):
    monkeypatch.setattr(exercises, "TIME_LIMIT", SHORT_LIMIT)
    start = time.perf_counter()
    r = exercises.check("backprop", never_returns)
    waited = time.perf_counter() - start
    assert not r.passed and r.mistake == "time-limit"
    assert r.message.splitlines()[0] == (
        f"✗ backprop did not finish within {SHORT_LIMIT:g} seconds on a problem with "
        "m = 7, h = (5, 4, 3), so the check stopped it."
    )
    assert "a loop that never ends" in r.message
    assert waited < SHORT_LIMIT + 5  # one wait, not one per problem or probe
    # the runaway loop was stopped, not left spinning in the kernel
    deadline = time.monotonic() + 5
    while any(t.name == "exercises.check" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the student's loop is still running"
        time.sleep(0.05)


def _deletes_a_weight(params, dW, db, lr):
    del params.W[1]
    return sgd_step(params, dW, db, lr)


def _replaces_a_bias_by_none(params, dW, db, lr):
    new = sgd_step(params, dW, db, lr)
    params.b[2] = None
    return new


def _replaces_a_weight_by_a_copy(x, y, params):
    params.W[1] = params.W[1].copy()
    return single.backprop_single(x, y, params)


def _empties_dW(params, dW, db, lr):
    new = sgd_step(params, dW, db, lr)
    dW.clear()
    return new


@pytest.mark.parametrize(
    "name, fn, mistake, needle",
    [
        ("linear", raises_unprintable, "exception", "raised Unprintable on a problem with"),
        ("output_error", exits, "exits", "output_error called sys.exit()"),
        ("bias_gradient", lambda D: exit(), "exits", "called sys.exit()"),
        ("sgd_step", _deletes_a_weight, "in-place", "params.W[1] (deleted)"),
        ("sgd_step", _replaces_a_bias_by_none, "in-place", "params.b[2] (replaced)"),
        ("sgd_step", _empties_dW, "in-place", "dW[1] (deleted), dW[2] (deleted)"),
        ("backprop_single", _replaces_a_weight_by_a_copy, "in-place", "params.W[1] (replaced)"),
        ("linear", lambda A, W, b: Shapeless(), "structure", "cannot compare"),
    ],
)
def test_whatever_the_function_does_the_check_gives_a_verdict(name, fn, mistake, needle):
    r = exercises.check(name, fn)
    assert not r.passed and r.mistake == mistake, r.message
    assert needle in r.message
    assert exercises.MISTAKES[mistake] in r.message


def test_no_hint_states_an_answer():
    """Every hint, with its pointer, of every checker: the mistake is named, the answer
    (a key line of the library, the formula of its docstring) is not."""
    for name in exercises.NAMES:
        for mistake in exercises.MISTAKES:
            text = f"{exercises.MISTAKES[mistake]} {exercises.section_pointer(name, mistake)}"
            assert not states_an_answer(text), (name, mistake, text)


@functools.cache
def _headings(chapter: str) -> set[str]:
    nb = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text("utf-8"))
    return {
        m.group(1).strip()
        for cell in nb["cells"]
        if cell["cell_type"] == "markdown"
        for m in re.finditer(r"^#{1,6} (.+)$", "".join(cell["source"]), re.M)
    }


def test_every_pointer_names_a_section_of_the_book():
    pointers = list(exercises.SECTIONS.values()) + [c.section for c in exercises.CHECKERS.values()]
    for chapter, heading in pointers:
        assert heading in _headings(chapter), (chapter, heading)
    r = exercises.check("bias_gradient", VARIANTS["bias_gradient"]["wrong-axis"])
    assert r.message.endswith("See chapter 7, “axis=0, not axis=1”.")
    r = exercises.check("linear", VARIANTS["linear"]["no-bias"])
    assert r.message.endswith("See chapter 5, “The forward pass, one transpose away”.")
    assert exercises.section_pointer("linear", "in-place") == ""


def test_skip_layer_answer_agrees_with_finite_differences():
    """The checker's answer (autodiff of the layer's forward formula) against a third
    oracle: centred differences of J = Σ G ⊙ Z through the library's gradcheck."""
    for problem in exercises.CHECKERS["skip_layer"].problems():
        G, A, W, s = (a.copy() if hasattr(a, "copy") else a for a in problem.args)

        def J():
            return float(np.sum(G * (A @ W + s * A)))

        dA, dW = problem.expected.values()
        assert gradcheck.relative_error(gradcheck.numerical_gradient(J, A), dA) < 1e-8
        assert gradcheck.relative_error(gradcheck.numerical_gradient(J, W), dW) < 1e-8
    # negative control: the layer without its skip term gives another dA
    G, A, W, s = exercises.CHECKERS["skip_layer"].problems()[0].args
    assert exercises.check("skip_layer", lambda G, A, W, s: (G @ W.T, A.T @ G)).mistake == (
        "skip-forgotten"
    )


def test_a_function_that_never_returns_does_not_hang_a_notebook_kernel():
    """In a real Jupyter kernel (as in JupyterLab, nbval and nbgrader): the check answers,
    and the kernel runs the next cell."""
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from mlp_core.book import exercises\n"
            f"exercises.TIME_LIMIT = {SHORT_LIMIT}\n"
            "def linear(A_prev, W, b):\n"
            "    while True:\n"
            "        pass\n"
            'print(exercises.check("linear", linear).mistake)'
        ),
        nbformat.v4.new_code_cell('print("the kernel still answers")'),
    ]
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"] == "time-limit\n"
    assert nb.cells[1].outputs[0]["text"] == "the kernel still answers\n"
