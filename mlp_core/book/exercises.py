"""Exercises that check themselves: ``exercises.check(name, fn)``.

A "write it yourself" exercise ends with ``exercises.check("<name>", fn)``. The checker runs
the student's ``fn`` on several problems whose dimensions all differ (one has m = 1), on
NumPy and, where a GPU can be used, on CuPy, and compares each result with the library's
own function of the same name (:mod:`mlp_core.core.batched`, :mod:`mlp_core.core.single`,
:func:`mlp_core.training.sgd_step`), or, for a layer the library does not have, with
reverse-mode autodiff (autograd) of that layer's forward formula.

When the answer is wrong it names the most likely mistake by testing hypotheses against
the student's *output* (never by reading their code): does the result equal the right one
times m (the missing 1/m: the sum instead of the mean), divided by m (1/m twice), its
transpose, the result with W where W^T belongs, with σ'(A) instead of σ'(Z), with the
bias added down the columns...? Some hypotheses need a square matrix to be testable at all
(``A @ W`` with W where W^T belongs raises an exception when the sizes differ); those are
tested on an extra "probe" problem, only after the real problems failed. The message
names the mistake and the section of the book to read again, never the formula of the
answer, and it prints shapes and counts, never raw floats (which could change in the last
digit from one CPU to another).

Whatever the student's function does, the check answers with a verdict: it runs the
function in a worker thread and waits at most :data:`TIME_LIMIT` seconds for each call (a
function that never returns is stopped and reported); an exception, ``sys.exit()``, or
inputs changed, deleted or replaced are each reported as such.

Checker names and the student's signatures (the library's functions of the same name)::

    linear(A_prev, W, b)                         Z = A_prev W + b             (m, h_l)
    output_error(A_L, Y)                         Δ^L = A^L − Y                (m, C)
    bias_gradient(delta)                         ∂J/∂b = (1/m) Σ_i Δ_i,:      (h_l,)
    weight_gradient(A_prev, delta)               ∂J/∂W = (1/m) A_prev^T Δ     (h_{l-1}, h_l)
    hidden_error(delta_next, W_next, Z, sigma_prime)  Δ^l = (Δ^{l+1} W^T) ⊙ σ'(Z)  (m, h_l)
    backprop_single(x, y, params)                the four one-example equations → (dW, db)
    backprop(X, Y, params)                       the batched gradients of J   → (dW, db)
    sgd_step(params, dW, db, lr)                 θ ← θ − η ∂J/∂θ              → Params
    skip_layer_backward(G, A, W, s)              the layer Z = A W + s A, G = ∂J/∂Z → (dA, dW)

Every problem is drawn from a seeded :func:`numpy.random.default_rng`, in float64.
"""

from __future__ import annotations

import ast
import ctypes
import html
import inspect
import re
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import autograd.numpy as anp
import numpy as np
from autograd import grad

from ..core import batched, data, losses, single
from ..core.activations import ACTIVATIONS, relu_prime, sigmoid_prime, tanh_prime
from ..core.backend import gpu_xp, is_gpu_array, to_numpy
from ..core.errors import ConfigError
from ..core.params import Params, init_params
from ..training import sgd_step as library_sgd_step

NAMES = (
    "linear",
    "output_error",
    "bias_gradient",
    "weight_gradient",
    "hidden_error",
    "backprop_single",
    "backprop",
    "sgd_step",
    "skip_layer",
)

# float64 answers computed in another order (a mean instead of sum / m, a loop instead of
# a product) differ from the library's in the last few bits only.
RTOL = 1e-7
ATOL = 1e-10

#: Seconds one call of the student's function may take. The right answers take
#: milliseconds on these small problems; the margin covers a slow laptop and CuPy's
#: compilation of its kernels on their first use.
TIME_LIMIT = 10.0

# The mistakes the checkers can name: key -> the hint the message ends with. A hint names
# the mistake and never states the formula of the answer. The tests feed a wrong function
# for every key a checker lists in CHECKERS[name].mistakes.
MISTAKES = {
    "not-written": "Replace the `raise NotImplementedError` line with your code, run the "
    "cell, then run this check again.",
    "exception": "Read the error above: it usually names the two shapes that do not fit. "
    "Write the shape of every matrix next to the formula and check that they chain.",
    "time-limit": "Look for a loop that never ends (a `while` whose condition stays true, a "
    "loop over a list that keeps growing) or for far more work than these small problems "
    "need: the right answer takes a few milliseconds here.",
    "exits": "Do not call sys.exit(), exit() or quit() in the function: they stop the "
    "program. A function hands its result back with `return`.",
    "returned-none": "Your function returned None: did you forget the `return`?",
    "not-an-array": "Return an array (NumPy or CuPy, like the inputs), not a list or a number.",
    "structure": "Return exactly what the exercise asks for (see the expected structure above).",
    "in-place": "Compute new arrays and new dicts instead of changing the ones you were given: "
    "operators such as `-=`, `+=`, `*=` write into their left-hand array, and `del d[k]` or "
    "`d[k] = ...` change the caller's dict.",
    "device": "Use the operators and methods of the arrays you were given (not `np.asarray`, "
    "`np.array` or `.get()`), so that CuPy inputs give a CuPy result.",
    "dtype": "Keep the inputs' dtype (float64 here): do not convert with `astype`, "
    "`np.float32` or a Python list.",
    "transposed": "Your result is the transpose of the right one: check the order of the "
    "factors in each product, with the shapes written out.",
    "wrong-axis": "You reduced over the wrong axis: the result keeps one entry per unit, so "
    "the reduction runs over the examples.",
    "all-entries": "You reduced over every entry to one number: the result keeps one entry "
    "per unit.",
    "keepdims": "∂J/∂b is stored flat, like b, with shape (h_l,): do not keep the reduced "
    "axis as a row.",
    "bias-column": "b and ∂L/∂b are stored flat, with shape (h_l,), like b itself: flatten "
    "the (h_l, 1) column.",
    "missing-1/m": "Your result is m times too large: it is the SUM over the m examples, "
    "not the MEAN. J is the mean loss, so its gradient is a mean too.",
    "1/m-twice": "Your result is m times too small: the 1/m is applied twice. Divide by m "
    "once (and not at all if you already used a mean).",
    "divided-by-m": "Your result is m times too small: the output error has no 1/m (it is one "
    "error per example); the 1/m of the mean loss comes in later, with the gradients.",
    "sign": "Your result has the wrong sign: check the order of the subtraction.",
    "W-not-WT": "You used W where its transpose belongs (the error travels backwards, "
    "from the units of the layer above to the units below): write out the shapes of the "
    "product.",
    "WT-not-W": "You used the transpose of W where W itself belongs: with the examples as "
    "rows, the transpose of the one-example form has moved. Write out the shapes of the "
    "product.",
    "A-not-AT": "You used A^{l-1} where its transpose belongs: the product must sum over "
    "the m examples, so m has to be the inner dimension.",
    "sigma-prime-of-A": "You applied σ' to the activation A, the output of σ; the derivative "
    "is taken at the layer's input instead.",
    "no-sigma-prime": "The elementwise factor of the activation's slope is missing.",
    "bias-broadcast": "The bias is added the wrong way: b has one entry per unit (h_l,), "
    "and the same b is added to every row (every example) of the (m, h_l) product.",
    "no-bias": "The bias b is missing from the sum.",
    "gradient-ascent": "You stepped uphill: a step of gradient descent goes against the gradient.",
    "no-learning-rate": "The step is not scaled by the learning rate η (lr).",
    "W-only": "Only the weights W moved: the biases b take a step too.",
    "b-only": "Only the biases b moved: the weights W take a step too.",
    "layer-keys": "The layers are numbered 1..L, as in the book: the dicts' keys must be "
    "1, 2, ..., L (not 0-based).",
    "swapped": "You returned the two results in the wrong order: see the expected structure above.",
    "skip-forgotten": "∂J/∂A misses the skip path: A reaches Z along two paths, and its "
    "gradient adds what flows back along each of them.",
    "s-forgotten": "The skip path's factor s is missing from ∂J/∂A.",
    "shape": "Write the shape of every matrix of the formula next to it, in the book's "
    "symbols, and check which product or sum gives the expected shape.",
    "wrong-values": "The shapes are right but the numbers are not. Test your function on a "
    "tiny example you can work out by hand, and compare it with the equation.",
}

# The mistakes observed directly (the others are inferred from a hypothesis about the output).
OBSERVED = frozenset(
    {
        "not-written",
        "exception",
        "time-limit",
        "exits",
        "returned-none",
        "not-an-array",
        "structure",
        "in-place",
        "device",
        "dtype",
        "shape",
        "wrong-values",
        "swapped",
        "layer-keys",
    }
)
LIKELY = frozenset(MISTAKES) - OBSERVED

# Where the book explains what a mistake gets wrong: (chapter file, heading). A mistake not
# listed here points to the section of its checker (Checker.section); the observed
# mistakes that concern Python rather than the formula point nowhere.
SECTIONS = {
    "missing-1/m": ("10-putting-together", "The missing $1/m$"),
    "1/m-twice": ("10-putting-together", "Where to put the $1/m$: two conventions, one gradient"),
    "divided-by-m": ("06-output-error", "Where the 1/m goes"),
    "wrong-axis": ("07-bias-gradient", "`axis=0`, not `axis=1`"),
    "all-entries": ("07-bias-gradient", "`axis=0`, not `axis=1`"),
    "keepdims": ("07-bias-gradient", "`axis=0`, not `axis=1`"),
    "bias-column": ("05-stacking", "The trap: a bias stored as a column"),
    "bias-broadcast": ("05-stacking", "Broadcasting the bias"),
    "W-not-WT": ("09-hidden-error", "The classic bug: a missing transpose"),
    "skip-forgotten": ("03-backprop-one", "The one rule we use: the multivariable chain rule"),
    "s-forgotten": ("03-backprop-one", "The one rule we use: the multivariable chain rule"),
}
POINTED = LIKELY | {"exception", "shape", "wrong-values"}


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found: ``passed`` (bool), ``message`` (str) and, when the answer
    is wrong, ``mistake`` (a key of :data:`MISTAKES`, for tests and teachers)."""

    name: str
    passed: bool
    message: str
    mistake: str | None = None

    def __repr__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else "#b35900"
        lines = html.escape(self.message).split("\n")
        body = "<br>".join(lines)
        return (
            f'<div class="exercise-check exercise-check-{"passed" if self.passed else "failed"}"'
            f' style="border-left: 4px solid {colour}; padding: 0.3em 0.8em;">{body}</div>'
        )


# --------------------------------------------------------------------------- problems


@dataclass
class Problem:
    """One call of the student's function: ``args``, the library's answer ``expected`` (a
    dict {part label: array}), the sizes in the book's symbols for the messages, and the
    hypotheses {mistake key: the wrong answer that mistake gives}."""

    args: tuple
    expected: dict
    sizes: dict
    hypotheses: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)  # part label -> the shape in symbols
    m: int = 1
    # {mistake key: {part label: the shape that mistake gives}}: tested after the values,
    # for mistakes recognisable by their shape alone (a reduction over the wrong axis).
    shape_hypotheses: dict = field(default_factory=dict)

    def __post_init__(self):
        for label, want in self.expected.items():
            if want.ndim == 2 and want.shape[0] != want.shape[1]:
                self.shape_hypotheses.setdefault("transposed", {})[label] = want.shape[::-1]


def _rng(name: str, k: int) -> np.random.Generator:
    return np.random.default_rng([NAMES.index(name), k])


def _one_hot(rng, m: int, C: int) -> np.ndarray:
    """m one-hot rows of C classes, the labels drawn from ``rng``."""
    return data.one_hot(rng.integers(0, C, size=m), C)


def _sizes_text(sizes: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sizes.items())


def _linear_problems(k, m, h_prev, h):
    rng = _rng("linear", k)
    A, W, b = rng.normal(size=(m, h_prev)), rng.normal(size=(h_prev, h)), rng.normal(size=h)
    Z = batched.linear(A, W, b)
    hyp = {"no-bias": A @ W, "transposed": Z.T}
    if h_prev == h:
        hyp["WT-not-W"] = batched.linear(A, W.T, b)
    if m == h:
        hyp["bias-broadcast"] = A @ W + b[:, None]
    return Problem(
        (A, W, b),
        {"Z": Z},
        {"m": m, "h_{l-1}": h_prev, "h_l": h},
        hyp,
        {"Z": "(m, h_l)"},
        m,
    )


def _output_error_problems(k, m, C):
    rng = _rng("output_error", k)
    Zl = rng.normal(size=(m, C))
    A_L = np.exp(Zl) / np.exp(Zl).sum(axis=1, keepdims=True)
    Y = _one_hot(rng, m, C)
    D = losses.output_error(A_L, Y)
    hyp = {"sign": -D, "transposed": D.T}
    if m > 1:
        hyp["divided-by-m"] = D / m
    by_shape = {"wrong-axis": {"Δ^L": (C,)}} if m > 1 else {}
    return Problem((A_L, Y), {"Δ^L": D}, {"m": m, "C": C}, hyp, {"Δ^L": "(m, C)"}, m, by_shape)


def _bias_gradient_problems(k, m, h):
    rng = _rng("bias_gradient", k)
    D = rng.normal(size=(m, h))
    g = batched.bias_gradient(D)
    hyp = {}
    if m > 1:
        hyp["missing-1/m"] = g * m
        hyp["1/m-twice"] = g / m
    label = "∂J/∂b"
    by_shape = {"keepdims": {label: (1, h)}, "all-entries": {label: ()}}
    if m > 1:
        by_shape["wrong-axis"] = {label: (m,)}
    return Problem((D,), {label: g}, {"m": m, "h_l": h}, hyp, {label: "(h_l,)"}, m, by_shape)


def _weight_gradient_problems(k, m, h_prev, h):
    rng = _rng("weight_gradient", k)
    A, D = rng.normal(size=(m, h_prev)), rng.normal(size=(m, h))
    g = batched.weight_gradient(A, D)
    hyp = {"transposed": g.T}
    if m > 1:
        hyp["missing-1/m"] = g * m
        hyp["1/m-twice"] = g / m
    if m == h_prev:
        hyp["A-not-AT"] = A @ D / m
    return Problem(
        (A, D),
        {"∂J/∂W": g},
        {"m": m, "h_{l-1}": h_prev, "h_l": h},
        hyp,
        {"∂J/∂W": "(h_{l-1}, h_l)"},
        m,
    )


_SIGMA_OF_PRIME = {act.sigma_prime: act.sigma for act in ACTIVATIONS.values() if act.sigma_prime}


def _hidden_error_problems(k, m, h, h_next, sigma_prime):
    rng = _rng("hidden_error", k)
    D, W, Z = rng.normal(size=(m, h_next)), rng.normal(size=(h, h_next)), rng.normal(size=(m, h))
    out = batched.hidden_error(D, W, Z, sigma_prime)
    hyp = {
        "sigma-prime-of-A": batched.hidden_error(
            D, W, _SIGMA_OF_PRIME[sigma_prime](Z), sigma_prime
        ),
        "no-sigma-prime": batched.hidden_error(D, W, Z, np.ones_like),
        "transposed": out.T,
    }
    if h == h_next:
        hyp["W-not-WT"] = batched.hidden_error(D, W.T, Z, sigma_prime)
    return Problem(
        (D, W, Z, sigma_prime),
        {"Δ^l": out},
        {"m": m, "h_l": h, "h_{l+1}": h_next},
        hyp,
        {"Δ^l": "(m, h_l)"},
        m,
    )


def _gradients_with_W_not_WT(X, Y, params: Params):
    """The batched gradients (ReLU hidden layers, softmax + cross-entropy) with the mistake
    W where W^T belongs in every hidden error: the library's backward pass handed the
    transposed weights W[l], l >= 2 (which it uses only there; they must be square)."""
    cache = batched.forward(X, params, check=False)
    swapped = Params({l: w if l == 1 else w.T for l, w in params.W.items()}, params.b)
    dW, db, _ = batched.backward(Y, swapped, cache)
    return dW, db


def _grad_parts(dW, db):
    parts = {f"dW[{l}]": g for l, g in dW.items()}
    parts.update({f"db[{l}]": g for l, g in db.items()})
    return parts


def _grad_shapes(L):
    shapes = {f"dW[{l}]": "(h_{l-1}, h_l)" for l in range(1, L + 1)}
    shapes.update({f"db[{l}]": "(h_l,)" for l in range(1, L + 1)})
    return shapes


def _params(name, k, sizes):
    p = init_params(sizes, seed=100 * NAMES.index(name) + k, device="cpu")
    rng = _rng(name, 50 + k)
    return Params(p.W, {l: rng.normal(scale=0.5, size=v.shape) for l, v in p.b.items()})


def _network_hypotheses(X, Y, params, dW, db, m):
    """(value hypotheses, shape-only hypotheses) for the gradients of a whole network."""
    L = params.L
    hyp = {"transposed": _grad_parts({l: g.T for l, g in dW.items()}, db)}
    if m > 1:
        hyp["missing-1/m"] = _grad_parts(
            {l: g * m for l, g in dW.items()}, {l: g * m for l, g in db.items()}
        )
        hyp["1/m-twice"] = _grad_parts(
            {l: g / m for l, g in dW.items()}, {l: g / m for l, g in db.items()}
        )
    if all(params.W[l].shape[0] == params.W[l].shape[1] for l in range(2, L + 1)):
        hyp["W-not-WT"] = _grad_parts(*_gradients_with_W_not_WT(X, Y, params))
    by_shape = {
        "bias-column": {f"db[{l}]": (g.shape[0], 1) for l, g in db.items()},
        "keepdims": {f"db[{l}]": (1, g.shape[0]) for l, g in db.items()},
    }
    if m > 1:
        by_shape["wrong-axis"] = {f"db[{l}]": (m,) for l in db}
    return hyp, by_shape


def _backprop_problems(k, m, sizes):
    rng = _rng("backprop", k)
    params = _params("backprop", k, sizes)
    X, Y = rng.normal(size=(m, sizes[0])), _one_hot(rng, m, sizes[-1])
    dW, db = batched.backprop(X, Y, params)
    dims = {"m": m, "h": tuple(sizes)}
    hyp, by_shape = _network_hypotheses(X, Y, params, dW, db, m)
    return Problem(
        (X, Y, params), _grad_parts(dW, db), dims, hyp, _grad_shapes(params.L), m, by_shape
    )


def _backprop_single_problems(k, sizes):
    rng = _rng("backprop_single", k)
    params = _params("backprop_single", k, sizes)
    x, y = rng.normal(size=(sizes[0], 1)), _one_hot(rng, 1, sizes[-1]).T
    dW, db = single.backprop_single(x, y, params)
    L = params.L
    hyp, by_shape = _network_hypotheses(x.T, y.T, params, dW, db, 1)
    dims = {"h": tuple(sizes)}
    return Problem((x, y, params), _grad_parts(dW, db), dims, hyp, _grad_shapes(L), 1, by_shape)


def _sgd_step_problems(k, sizes, lr):
    rng = _rng("sgd_step", k)
    params = _params("sgd_step", k, sizes)
    dW = {l: rng.normal(size=w.shape) for l, w in params.W.items()}
    db = {l: rng.normal(size=v.shape) for l, v in params.b.items()}
    new = library_sgd_step(params, dW, db, lr)

    def parts(p: Params):
        out = {f"W[{l}]": w for l, w in p.W.items()}
        out.update({f"b[{l}]": v for l, v in p.b.items()})
        return out

    L = params.L
    no_dW = {l: 0 * g for l, g in dW.items()}
    no_db = {l: 0 * g for l, g in db.items()}
    hyp = {
        "gradient-ascent": parts(library_sgd_step(params, dW, db, -lr)),
        "no-learning-rate": parts(library_sgd_step(params, dW, db, 1.0)),
        "W-only": parts(library_sgd_step(params, dW, no_db, lr)),
        "b-only": parts(library_sgd_step(params, no_dW, db, lr)),
    }
    shapes = {f"W[{l}]": "(h_{l-1}, h_l)" for l in range(1, L + 1)}
    shapes.update({f"b[{l}]": "(h_l,)" for l in range(1, L + 1)})
    return Problem((params, dW, db, lr), parts(new), {"h": tuple(sizes), "lr": lr}, hyp, shapes)


def _layer_vjp(layer, G, A, W):
    """(∂J/∂A, ∂J/∂W) for Z = layer(A, W) and G = ∂J/∂Z, by reverse-mode autodiff of the
    scalar J = Σ G ⊙ Z (whose gradient with respect to Z is G)."""

    def J(A, W):
        return anp.sum(G * layer(A, W))

    return grad(J, 0)(A, W), grad(J, 1)(A, W)


def _skip_layer_problems(k, m, h, s):
    """The layer Z = A W + s A, a layer the book does not have: its gradients come from
    autodiff of that forward formula, the mistakes from autodiff of the wrong ones."""
    rng = _rng("skip_layer", k)
    G, A, W = rng.normal(size=(m, h)), rng.normal(size=(m, h)), rng.normal(size=(h, h))
    dA, dW = _layer_vjp(lambda A, W: A @ W + s * A, G, A, W)
    labels = ("∂J/∂A", "∂J/∂W")
    hyp = {
        "skip-forgotten": {labels[0]: _layer_vjp(lambda A, W: A @ W, G, A, W)[0]},
        "s-forgotten": {labels[0]: _layer_vjp(lambda A, W: A @ W + A, G, A, W)[0]},
        "W-not-WT": {labels[0]: _layer_vjp(lambda A, W: A @ W.T + s * A, G, A, W)[0]},
        "transposed": {labels[1]: dW.T},
    }
    return Problem(
        (G, A, W, s),
        dict(zip(labels, (dA, dW))),
        {"m": m, "h": h, "s": s},
        hyp,
        dict(zip(labels, ("(m, h)", "(h, h)"))),
        m,
    )


@dataclass(frozen=True)
class Checker:
    """A checker: its problems (the last with m = 1 where m exists), the probes (square
    problems that make shape-dependent hypotheses testable), the expected structure in
    words, the mistakes it can name, the section of the book that derives the answer
    (chapter file, heading), the kind of result (``array``, ``pair`` of arrays, ``grads``
    (dW, db), ``params``), and ``answer``: the library functions whose code is the answer
    (what the student edition must not show)."""

    signature: str
    returns: str
    problems: Callable
    probes: Callable
    mistakes: tuple
    section: tuple
    kind: str = "array"
    answer: tuple = ()
    reference: str = "mlp_core"  # what the answers come from, for the message


def _common(*extra):
    return (
        "not-written",
        "exception",
        "time-limit",
        "exits",
        "returned-none",
        "in-place",
        "dtype",
        "device",
        "shape",
        "wrong-values",
    ) + extra


CHECKERS = {
    "linear": Checker(
        "linear(A_prev, W, b)",
        "Z, an (m, h_l) array",
        lambda: [
            _linear_problems(0, 7, 5, 4),
            _linear_problems(1, 3, 6, 2),
            _linear_problems(2, 1, 4, 3),
        ],
        lambda: [_linear_problems(10, 5, 3, 3), _linear_problems(11, 4, 3, 4)],
        _common("not-an-array", "transposed", "WT-not-W", "bias-broadcast", "no-bias"),
        ("05-stacking", "The forward pass, one transpose away"),
        answer=(batched.linear,),
    ),
    "output_error": Checker(
        "output_error(A_L, Y)",
        "Δ^L, an (m, C) array",
        lambda: [
            _output_error_problems(0, 7, 4),
            _output_error_problems(1, 3, 5),
            _output_error_problems(2, 1, 3),
        ],
        lambda: [],
        _common("not-an-array", "transposed", "sign", "divided-by-m", "wrong-axis"),
        ("06-output-error", "The output error"),
        answer=(losses.output_error,),
    ),
    "bias_gradient": Checker(
        "bias_gradient(delta)",
        "∂J/∂b, an array of shape (h_l,)",
        lambda: [
            _bias_gradient_problems(0, 7, 4),
            _bias_gradient_problems(1, 3, 5),
            _bias_gradient_problems(2, 1, 6),
        ],
        lambda: [],
        _common(
            "not-an-array", "missing-1/m", "1/m-twice", "wrong-axis", "all-entries", "keepdims"
        ),
        ("07-bias-gradient", "From one example to the mean over a batch"),
        answer=(batched.bias_gradient,),
    ),
    "weight_gradient": Checker(
        "weight_gradient(A_prev, delta)",
        "∂J/∂W, an (h_{l-1}, h_l) array",
        lambda: [
            _weight_gradient_problems(0, 7, 5, 4),
            _weight_gradient_problems(1, 3, 6, 2),
            _weight_gradient_problems(2, 1, 4, 3),
        ],
        lambda: [_weight_gradient_problems(10, 5, 5, 3)],
        _common("not-an-array", "transposed", "missing-1/m", "1/m-twice", "A-not-AT"),
        ("08-weight-gradient", "m examples: one matrix product"),
        answer=(batched.weight_gradient,),
    ),
    "hidden_error": Checker(
        "hidden_error(delta_next, W_next, Z, sigma_prime)",
        "Δ^l, an (m, h_l) array",
        lambda: [
            _hidden_error_problems(0, 7, 5, 3, sigmoid_prime),
            _hidden_error_problems(1, 4, 2, 6, tanh_prime),
            _hidden_error_problems(2, 1, 4, 3, relu_prime),
        ],
        lambda: [_hidden_error_problems(10, 6, 4, 4, sigmoid_prime)],
        _common("not-an-array", "transposed", "W-not-WT", "sigma-prime-of-A", "no-sigma-prime"),
        ("09-hidden-error", "Transpose, then stack the rows"),
        answer=(batched.hidden_error,),
    ),
    "backprop_single": Checker(
        "backprop_single(x, y, params)",
        "a pair (dW, db) of dicts keyed by layer 1..L: dW[l] (h_{l-1}, h_l), db[l] (h_l,)",
        lambda: [
            _backprop_single_problems(0, (5, 4, 3)),
            _backprop_single_problems(1, (6, 3, 7, 2)),
        ],
        lambda: [_backprop_single_problems(10, (3, 4, 4, 4))],
        _common(
            "structure",
            "layer-keys",
            "swapped",
            "transposed",
            "bias-column",
            "keepdims",
            "W-not-WT",
        ),
        ("03-backprop-one", "The algorithm and its code"),
        kind="grads",
        answer=(single.backprop_single,),
    ),
    "backprop": Checker(
        "backprop(X, Y, params)",
        "a pair (dW, db) of dicts keyed by layer 1..L: dW[l] (h_{l-1}, h_l), db[l] (h_l,)",
        lambda: [
            _backprop_problems(0, 7, (5, 4, 3)),
            _backprop_problems(1, 8, (6, 3, 5, 2)),
            _backprop_problems(2, 1, (4, 6, 3)),
        ],
        lambda: [_backprop_problems(10, 5, (3, 4, 4, 4))],
        _common(
            "structure",
            "layer-keys",
            "swapped",
            "transposed",
            "keepdims",
            "missing-1/m",
            "1/m-twice",
            "wrong-axis",
            "W-not-WT",
        ),
        ("10-putting-together", "The complete table"),
        kind="grads",
        answer=(batched.backprop, batched.loss_and_gradients, batched.backward),
    ),
    "sgd_step": Checker(
        "sgd_step(params, dW, db, lr)",
        "new parameters, a Params(W, b) with W[l] (h_{l-1}, h_l) and b[l] (h_l,)",
        lambda: [_sgd_step_problems(0, (5, 4, 3), 0.1), _sgd_step_problems(1, (6, 3, 7, 2), 0.5)],
        lambda: [],
        _common("structure", "gradient-ascent", "no-learning-rate", "W-only", "b-only"),
        ("04-training-one", "One step downhill"),
        kind="params",
        answer=(library_sgd_step,),
    ),
    "skip_layer": Checker(
        "skip_layer_backward(G, A, W, s)",
        "a pair (dA, dW): ∂J/∂A, an (m, h) array, and ∂J/∂W, an (h, h) array",
        lambda: [
            _skip_layer_problems(0, 7, 5, 0.5),
            _skip_layer_problems(1, 3, 4, -1.5),
            _skip_layer_problems(2, 1, 6, 2.0),
        ],
        lambda: [],
        _common(
            "structure",
            "swapped",
            "skip-forgotten",
            "s-forgotten",
            "W-not-WT",
            "transposed",
        ),
        ("03-backprop-one", "The one rule we use: the multivariable chain rule"),
        kind="pair",
        reference="autodiff of the layer",
    ),
}


# --------------------------------------------------------------------------- the answers


def _function_body(fn) -> tuple[str, ast.FunctionDef]:
    """The dedented source of ``fn`` and its parsed definition."""
    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    return source, next(n for n in tree.body if isinstance(n, ast.FunctionDef))


def _body_statements(node: ast.FunctionDef) -> list:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return body


def answer_bodies(name: str) -> list[str]:
    """The code of the library's answer to exercise ``name``: the body of each function
    of ``CHECKERS[name].answer``, without its signature and docstring."""
    bodies = []
    for fn in CHECKERS[name].answer:
        source, node = _function_body(fn)
        statements = _body_statements(node)
        lines = source.split("\n")[statements[0].lineno - 1 : statements[-1].end_lineno]
        bodies.append(textwrap.dedent("\n".join(lines)).strip())
    return bodies


_COMPOUND = (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try)
_COMPOUND += (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Match)


def key_lines(source: str) -> list[str]:
    """The key lines of the Python code ``source``: each line of a simple statement (not
    the header of a loop, a branch or a definition) with an arithmetic operator or a call
    of an answer function, stripped of its comment; ``return <expression>`` as the
    expression alone."""
    answer_names = {fn.__name__ for c in CHECKERS.values() for fn in c.answer}
    source = textwrap.dedent(source)
    lines = source.split("\n")
    numbers = set()
    for statement in ast.walk(ast.parse(source)):
        if not isinstance(statement, ast.stmt) or isinstance(statement, _COMPOUND):
            continue
        for sub in ast.walk(statement):
            calls_answer = isinstance(sub, ast.Call) and (
                getattr(sub.func, "id", None) in answer_names
                or getattr(sub.func, "attr", None) in answer_names
            )
            if isinstance(sub, ast.BinOp) or calls_answer:
                numbers.update(range(sub.lineno, sub.end_lineno + 1))
    found = []
    for number in sorted(numbers):
        line = lines[number - 1].split("#")[0].strip()
        line = re.sub(r"^return\s+", "", line).rstrip(",")
        if line and line not in found:
            found.append(line)
    return found


def answer_lines(name: str) -> list[str]:
    """The key lines (:func:`key_lines`) of the library's answer to exercise ``name``."""
    found = []
    for fn in CHECKERS[name].answer:
        found += [line for line in key_lines(inspect.getsource(fn)) if line not in found]
    return found


# --------------------------------------------------------------------------- running


class _Failure(Exception):
    """Internal: the student's answer failed; carries (mistake key, observation)."""

    def __init__(self, mistake: str, observation: str):
        super().__init__(observation)
        self.mistake, self.observation = mistake, observation


class _TimeLimit(BaseException):
    """Internal: raised inside a student's function that ran past the time limit."""


def _to(xp, value):
    """The checker's input on the array library ``xp`` (recursively for Params, dicts)."""
    if isinstance(value, np.ndarray):
        return xp.array(value, copy=True)  # a fresh copy: the problem itself stays intact
    if isinstance(value, Params):
        return Params(_to(xp, value.W), _to(xp, value.b))
    if isinstance(value, dict):
        return {k: _to(xp, v) for k, v in value.items()}
    return value


def _leaves(value, prefix=""):
    """{label: object} of everything an input holds, through Params and dicts (what the
    student's function may change, delete or replace)."""
    if isinstance(value, Params):
        return {**_leaves(value.W, prefix + ".W"), **_leaves(value.b, prefix + ".b")}
    if isinstance(value, dict):
        out = {}
        for k, v in list(value.items()):
            out.update(_leaves(v, f"{prefix}[{k}]"))
        return out
    return {prefix: value}


def _function_name(name):
    """The name of the student's function (``skip_layer_backward`` for ``skip_layer``)."""
    return CHECKERS[name].signature.split("(")[0]


def _arg_names(name):
    sig = CHECKERS[name].signature
    return [a.strip() for a in sig[sig.index("(") + 1 : -1].split(",")]


def _exception_text(e: BaseException) -> str:
    """The first line of an exception's message ('' when its ``str()`` fails), with
    NumPy's gufunc signature (noise to a student) cut from a matmul size mismatch."""
    try:
        text = str(e)
    except BaseException:  # noqa: BLE001 - a student's exception whose __str__ itself fails
        return ""
    first = (text.strip().splitlines() or [""])[0]
    mismatch = re.search(r"\((size \d+ is different from \d+)\)", first)
    if first.startswith("matmul") and mismatch:
        return f"matmul: the inner sizes of a product do not agree ({mismatch.group(1)})"
    return first


def _stop(thread: threading.Thread) -> None:
    """Raise _TimeLimit inside ``thread`` (CPython checks for it between two bytecodes, so a
    pure-Python loop stops at once; a long call into C stops when it returns)."""
    set_async_exc = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)
    if set_async_exc is not None and thread.ident is not None:
        set_async_exc(ctypes.c_ulong(thread.ident), ctypes.py_object(_TimeLimit))


def _run_limited(fn, args, seconds):
    """``fn(*args)`` in a worker thread, waited for at most ``seconds``.

    Returns ``("returned", value)``, ``("raised", (exception type name, its first line))``
    or ``("running", None)`` when the time ran out (the worker is then stopped). The
    exception's text is read inside the worker, under the same time limit, since the
    student's code may define it.
    """
    box = {}

    def work():
        try:
            box["returned"] = fn(*args)
        except _TimeLimit:
            pass
        except BaseException as e:  # noqa: BLE001 - SystemExit included: the student's code
            box["raised"] = (type(e), _exception_text(e))

    worker = threading.Thread(target=work, name="exercises.check", daemon=True)
    worker.start()
    try:
        worker.join(seconds)
    except BaseException:  # an interrupt of the kernel while waiting: stop the worker too
        _stop(worker)
        raise
    if worker.is_alive():
        _stop(worker)
        worker.join(0.5)
        return "running", None
    if "raised" in box:
        return "raised", box["raised"]
    return "returned", box.get("returned")


def _call(name, fn, problem, xp):
    """Call fn on copies of the problem's inputs on ``xp``; return its raw result."""
    args = tuple(_to(xp, a) for a in problem.args)
    names = _arg_names(name)
    before = {f"{n}{k}": v for n, a in zip(names, args) for k, v in _leaves(a).items()}
    values = {k: to_numpy(v).copy() for k, v in before.items() if hasattr(v, "dtype")}
    where = _sizes_text(problem.sizes)
    state, out = _run_limited(fn, args, TIME_LIMIT)
    if state == "running":
        raise _Failure(
            "time-limit",
            f"{name} did not finish within {TIME_LIMIT:g} seconds on a problem with {where}, "
            "so the check stopped it.",
        )
    # changes to the inputs first: they may be why the function then raised
    after = {f"{n}{k}": v for n, a in zip(names, args) for k, v in _leaves(a).items()}
    changed = []
    for label, obj in before.items():
        if label not in after:
            changed.append(f"{label} (deleted)")
        elif after[label] is not obj:
            changed.append(f"{label} (replaced)")
        elif label in values and not np.array_equal(values[label], to_numpy(obj), equal_nan=True):
            changed.append(label)
    changed += [f"{label} (added)" for label in after if label not in before]
    if changed:
        raise _Failure("in-place", f"{name} changed its input {', '.join(changed)} in place.")
    if state == "raised":
        kind, first = out
        if issubclass(kind, NotImplementedError):
            hint = re.sub(r"^hint:\s*", "", first.strip(), flags=re.IGNORECASE)
            raise _Failure(
                "not-written",
                f"{name} is not written yet" + (f" (its hint: {hint})" if hint else "") + ".",
            )
        if issubclass(kind, SystemExit):
            raise _Failure("exits", f"{name} called sys.exit() on a problem with {where}.")
        raise _Failure(
            "exception",
            f"{name} raised {kind.__name__} on a problem with {where}"
            + (f": {first}" if first else "."),
        )
    return out


def _parts(name, out, problem):
    """The student's result as {part label: array}, or a _Failure naming the structure."""
    labels = list(problem.expected)
    kind = CHECKERS[name].kind
    if out is None:
        raise _Failure("returned-none", f"{name} returned None.")
    wrong_type = _Failure(
        "structure",
        f"{name} returned a value of type {type(out).__name__}; expected {CHECKERS[name].returns}.",
    )
    if kind == "params":
        if not isinstance(out, Params):
            raise wrong_type
        return _dict_parts(name, {"W": out.W, "b": out.b}, problem)
    if kind in ("grads", "pair"):
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise wrong_type
        if kind == "pair":
            if _looks_swapped_pair(out, problem):
                raise _Failure("swapped", f"{name} returned its two results in swapped order.")
            return dict(zip(labels, out))
        dW, db = out
        if all(isinstance(d, dict) for d in (dW, db)) and _looks_swapped(dW, db, problem):
            raise _Failure("swapped", f"{name} returned (db, dW), not (dW, db).")
        return _dict_parts(name, {"dW": dW, "db": db}, problem)
    (label,) = labels
    return {label: out}


def _looks_swapped(dW, db, problem):
    """True when the dicts' shapes are those of (db, dW): the pair came back swapped."""

    def shapes(d):
        return [tuple(getattr(d[k], "shape", ())) for k in sorted(d, key=str)]

    want = problem.expected
    return shapes(db) == [want[k].shape for k in want if k.startswith("dW")] and shapes(dW) == [
        want[k].shape for k in want if k.startswith("db")
    ]


def _looks_swapped_pair(out, problem):
    """True when the pair of arrays holds the right two answers in the other order."""
    first, second = problem.expected.values()
    return all(hasattr(v, "shape") for v in out) and (
        _matches(out[0], second) and _matches(out[1], first)
    )


def _dict_parts(name, dicts, problem):
    L = sum(1 for k in problem.expected if k.startswith(next(iter(dicts))))
    parts = {}
    for key, d in dicts.items():
        if not isinstance(d, dict):
            raise _Failure(
                "structure",
                f"{name} returned {key} as a value of type {type(d).__name__}; expected "
                f"{CHECKERS[name].returns}.",
            )
        if set(d) != set(range(1, L + 1)):
            keys = sorted(d, key=str)
            mistake = "layer-keys" if keys == list(range(L)) else "structure"
            raise _Failure(
                mistake,
                f"{name} returned {key} with the keys {keys} for a network of L = {L} "
                f"layers; expected the keys {list(range(1, L + 1))}.",
            )
        parts.update({f"{key}[{l}]": d[l] for l in range(1, L + 1)})
    return parts


def _matches(got, want) -> bool:
    got = to_numpy(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        return False
    return bool(np.allclose(got, want, rtol=RTOL, atol=ATOL))


def _shape_hypothesis(parts, problem) -> str | None:
    """The first shape-only mistake that explains every part of a wrong shape."""
    wrong = {k for k, v in parts.items() if tuple(v.shape) != problem.expected[k].shape}
    for key, shapes in problem.shape_hypotheses.items():
        if wrong and all(k in shapes and tuple(parts[k].shape) == shapes[k] for k in wrong):
            return key
    return None


def _hypothesis(parts, problem) -> str | None:
    """The first mistake whose wrong answer equals the student's on every part it
    changes (and which is right on every other part); then the shape-only mistakes."""
    for key, wrong in problem.hypotheses.items():
        wrong = wrong if isinstance(wrong, dict) else {next(iter(problem.expected)): wrong}
        full = {**problem.expected, **wrong}
        if all(_matches(full[k], problem.expected[k]) for k in problem.expected):
            continue  # this mistake gives the right answer on this problem (σ' of ReLU)
        try:
            if all(_matches(parts[k], full[k]) for k in problem.expected):
                return key
        except (TypeError, ValueError):
            continue
    return _shape_hypothesis(parts, problem)


def _run(name, fn, problem, xp):
    """Run one problem; None when right, else raises _Failure."""
    out = _call(name, fn, problem, xp)
    try:
        return _judge(name, out, problem, xp)
    except _Failure:
        raise
    except Exception as e:  # noqa: BLE001 - a result too strange to compare is a verdict too
        raise _Failure(
            "structure",
            f"{name} returned something the check cannot compare with the right answer "
            f"({type(e).__name__} while reading it); expected {CHECKERS[name].returns}.",
        ) from None


def _judge(name, out, problem, xp):
    """Compare the student's result ``out`` with the problem's answer: None when right,
    else raises _Failure."""
    parts = _parts(name, out, problem)
    where = _sizes_text(problem.sizes)
    for label, got in parts.items():
        want = problem.expected[label]
        if not (hasattr(got, "shape") and hasattr(got, "dtype")):
            raise _Failure(
                "not-an-array",
                f"{name} returned {label} as a {type(got).__name__}, not an array.",
            )
        if is_gpu_array(got) != (xp is not np):
            where_is = "on the GPU (CuPy)" if is_gpu_array(got) else "on the CPU (NumPy)"
            raise _Failure(
                "device",
                f"{name} returned {label} {where_is} for inputs "
                f"{'on the GPU (CuPy)' if xp is not np else 'on the CPU (NumPy)'}.",
            )
        if got.dtype != want.dtype:
            raise _Failure(
                "dtype",
                f"{name} returned {label} as {got.dtype} for {want.dtype} inputs.",
            )
    if all(_matches(parts[k], problem.expected[k]) for k in parts):
        return None
    mistake = _hypothesis(parts, problem)
    if mistake is not None:
        raise _Failure(mistake, _observation(name, mistake, parts, problem))
    for label, got in parts.items():
        want = problem.expected[label]
        if tuple(got.shape) != want.shape:
            raise _Failure(
                "shape",
                f"{name} returned {label} with shape {tuple(got.shape)} for a problem with "
                f"{where}; expected {problem.shapes.get(label, '')} = {want.shape}.",
            )
    wrong = [k for k in parts if not _matches(parts[k], problem.expected[k])]
    raise _Failure(
        "wrong-values",
        f"{name} returned the right shapes but wrong values in {', '.join(wrong)} "
        f"on a problem with {where}.",
    )


def _observation(name, mistake, parts, problem):
    where = _sizes_text(problem.sizes)
    bad = [k for k in parts if not _matches(parts[k], problem.expected[k])]
    shapes = [
        f"{k} has shape {tuple(parts[k].shape)}, expected {problem.shapes.get(k, '')} = "
        f"{problem.expected[k].shape}"
        for k in bad
        if tuple(parts[k].shape) != problem.expected[k].shape
    ]
    text = f"{name} is wrong in {', '.join(bad)} on a problem with {where}"
    return text + (": " + "; ".join(shapes) + "." if shapes else ".")


def _devices():
    gpu = gpu_xp()
    return [np] if gpu is None else [np, gpu]


def section_pointer(name: str, mistake: str) -> str:
    """Where the book explains what ``mistake`` gets wrong in exercise ``name``, in words:
    'See chapter 7, “axis=0, not axis=1”.' ('' for mistakes that concern Python)."""
    if mistake not in POINTED:
        return ""
    chapter, heading = SECTIONS.get(mistake, CHECKERS[name].section)
    number = int(chapter.split("-")[0])
    return f"See chapter {number}, “{heading.replace('$', '').replace('`', '')}”."


def check(name: str, fn) -> CheckResult:
    """Check the student's ``fn`` for the exercise ``name`` (one of :data:`NAMES`).

    Returns a :class:`CheckResult`; it displays as its message in Jupyter. Bad input to the
    checker itself (an unknown name, something that is not callable) raises
    :class:`~mlp_core.core.errors.ConfigError`.
    """
    if not isinstance(name, str) or name not in CHECKERS:
        raise ConfigError(
            f"there is no exercise check named {name!r}; the checks are: {', '.join(NAMES)} "
            f'(give one name as a string, e.g. exercises.check("linear", linear)).'
        )
    if not callable(fn):
        raise ConfigError(
            f"exercises.check({name!r}, fn) needs your function itself as fn, got a "
            f"{type(fn).__name__}; pass the name without calling it, e.g. "
            f"exercises.check({name!r}, {_function_name(name)})."
        )
    checker = CHECKERS[name]
    problems = checker.problems()
    for xp in _devices():
        for problem in problems:
            try:
                _run(name, fn, problem, xp)
            except _Failure as failure:
                return _failed(name, fn, failure, checker, xp)
    sizes = "; ".join(_sizes_text(p.sizes) for p in problems)
    return CheckResult(
        name,
        True,
        f"✓ {name} is correct: it matches {checker.reference} on {len(problems)} problems of "
        f"different sizes ({sizes}).",
    )


def _failed(name, fn, failure, checker, xp):
    mistake, observation = failure.mistake, failure.observation
    if xp is not np:  # right on NumPy, wrong on the GPU
        observation = f"{observation} (with CuPy arrays, on the GPU; right with NumPy ones)"
    if mistake in ("exception", "wrong-values", "shape"):
        probed = _probe(name, fn, checker, xp)
        if probed is not None:
            mistake = probed
    hint = MISTAKES[mistake]
    if mistake in LIKELY:
        hint = f"Likely mistake: {hint}"
    pointer = section_pointer(name, mistake)
    if pointer:
        hint = f"{hint} {pointer}"
    message = f"✗ {observation}\n{hint}"
    if mistake == "not-written":
        message = f"… {observation}\n{hint}"
    return CheckResult(name, False, message, mistake)


def _probe(name, fn, checker, xp):
    """Try the square probe problems; the mistake whose wrong answer the student's
    function gives there, if any."""
    for problem in checker.probes():
        try:
            out = _call(name, fn, problem, xp)
            parts = _parts(name, out, problem)
            if _all_arrays(parts):
                found = _hypothesis(parts, problem)
                if found is not None:
                    return found
        except _Failure as failure:
            if failure.mistake == "time-limit":
                return None  # one wait is enough
            continue
        except Exception:  # noqa: BLE001 - a probe that cannot be compared names nothing
            continue
    return None


def _all_arrays(parts):
    return all(hasattr(v, "shape") and hasattr(v, "dtype") for v in parts.values())
