"""Exercises that check themselves: ``exercises.check(name, fn)``.

A "write it yourself" exercise ends with ``exercises.check("<name>", fn)``. The checker runs
the student's ``fn`` on several problems whose dimensions all differ (one has m = 1), on
NumPy and, where a GPU can be used, on CuPy, and compares each result with the library's
own function of the same name (:mod:`mlp_core.core.batched`, :mod:`mlp_core.core.single`,
:func:`mlp_core.training.sgd_step`).

When the answer is wrong it names the most likely mistake by testing hypotheses against
the student's *output* (never by reading their code): does the result equal the right one
times m (the missing 1/m: the sum instead of the mean), divided by m (1/m twice), its
transpose, the result with W where W^T belongs, with σ'(A) instead of σ'(Z), with the
bias added down the columns...? Some hypotheses need a square matrix to be testable at all
(``A @ W`` with W where W^T belongs raises an exception when the sizes differ); those are
tested on an extra "probe" problem, only after the real problems failed. The message
never shows the solution, and it prints shapes and counts, never raw floats (which could
change in the last digit from one CPU to another).

Checker names and the student's signatures (the library's functions of the same name)::

    linear(A_prev, W, b)                         Z = A_prev W + b             (m, h_l)
    output_error(A_L, Y)                         Δ^L = A^L − Y                (m, C)
    bias_gradient(delta)                         ∂J/∂b = (1/m) Σ_i Δ_i,:      (h_l,)
    weight_gradient(A_prev, delta)               ∂J/∂W = (1/m) A_prev^T Δ     (h_{l-1}, h_l)
    hidden_error(delta_next, W_next, Z, sigma_prime)  Δ^l = (Δ^{l+1} W^T) ⊙ σ'(Z)  (m, h_l)
    backprop_single(x, y, params)                the four one-example equations → (dW, db)
    backprop(X, Y, params)                       the batched gradients of J   → (dW, db)
    sgd_step(params, dW, db, lr)                 θ ← θ − η ∂J/∂θ              → Params

Every problem is drawn from a seeded :func:`numpy.random.default_rng`, in float64.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..core import batched, single
from ..core.activations import ACTIVATIONS, relu_prime, sigmoid_prime, tanh_prime
from ..core.backend import get_xp, gpu_available, is_gpu_array, to_device, to_numpy
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
)

# float64 answers computed in another order (a mean instead of sum / m, a loop instead of
# a product) differ from the library's in the last few bits only.
RTOL = 1e-7
ATOL = 1e-10

# The mistakes the checkers can name: key -> the hint the message ends with. The tests feed
# a wrong function for every key a checker lists in CHECKERS[name].mistakes.
MISTAKES = {
    "not-written": "Replace the `raise NotImplementedError` line with your code, run the "
    "cell, then run this check again.",
    "exception": "Read the error above: it usually names the two shapes that do not fit. "
    "Write the shape of every matrix next to the formula and check that they chain.",
    "returned-none": "Your function returned None: did you forget the `return`?",
    "not-an-array": "Return an array (NumPy or CuPy, like the inputs), not a list or a number.",
    "structure": "Return exactly what the exercise asks for (see the expected structure above).",
    "in-place": "Compute a new array instead of changing the ones you were given (operators "
    "such as `-=`, `+=`, `*=` write into their left-hand array, which belongs to the caller).",
    "device": "Use the operators and methods of the arrays you were given (not `np.asarray`, "
    "`np.array` or `.get()`), so that CuPy inputs give a CuPy result.",
    "dtype": "Keep the inputs' dtype (float64 here): do not convert with `astype`, "
    "`np.float32` or a Python list.",
    "transposed": "Your result is the transpose of the right one: check the order of the "
    "factors in each product, with the shapes written out.",
    "wrong-axis": "You reduced over the wrong axis: the sum runs over the m examples, "
    "the rows (axis 0), and keeps one entry per unit.",
    "all-entries": "You reduced over every entry to one number: sum over the m examples "
    "(axis 0) only, keeping one entry per unit.",
    "keepdims": "∂J/∂b is stored flat, like b, with shape (h_l,): do not keep the summed "
    "axis as a row.",
    "bias-column": "b and ∂L/∂b are stored flat, with shape (h_l,), like b itself: flatten "
    "the (h_l, 1) column.",
    "missing-1/m": "Your result is m times too large: it is the SUM over the m examples, "
    "not the MEAN. J is the mean loss, J = (1/m) Σ_i ℓ_i, so the gradient carries a 1/m.",
    "1/m-twice": "Your result is m times too small: the 1/m is applied twice. Divide by m "
    "once (and not at all if you already used a mean).",
    "divided-by-m": "Δ^L = A^L − Y has no 1/m: it is one error per example. The 1/m of the "
    "mean loss appears later, in ∂J/∂W and ∂J/∂b.",
    "sign": "Your result has the wrong sign: check the order of the subtraction.",
    "W-not-WT": "You used W where its transpose W^T belongs (the error travels backwards, "
    "from h_{l+1} units to h_l units): write out the shapes of the product.",
    "WT-not-W": "You used W^T where W belongs: for a batch, Z = A^{l-1} W^l + b^l has no "
    "transpose (the one-example z = (W^l)^T a^{l-1} became rows).",
    "A-not-AT": "You used A^{l-1} where its transpose (A^{l-1})^T belongs: the product must "
    "sum over the m examples, so m has to be the inner dimension.",
    "sigma-prime-of-A": "You applied σ' to the activation A = σ(Z); the equation needs σ' "
    "of the pre-activation, σ'(Z).",
    "no-sigma-prime": "The elementwise factor σ'(Z) is missing: the error must be multiplied "
    "(⊙, elementwise) by the derivative of the activation.",
    "bias-broadcast": "The bias is added the wrong way: b has one entry per unit (h_l,), "
    "and the same b is added to every row (every example) of the (m, h_l) product.",
    "no-bias": "The bias b is missing from the sum.",
    "gradient-ascent": "You stepped uphill: the step subtracts the gradient, θ − η ∂J/∂θ.",
    "no-learning-rate": "The step is not scaled by the learning rate η (lr).",
    "W-only": "Only the weights W moved: the biases b take a step too.",
    "b-only": "Only the biases b moved: the weights W take a step too.",
    "layer-keys": "The layers are numbered 1..L, as in the book: the dicts' keys must be "
    "1, 2, ..., L (not 0-based).",
    "swapped": "You returned (db, dW): return them in the order (dW, db).",
    "shape": "Write the shape of every matrix of the formula next to it, in the book's "
    "symbols, and check which product or sum gives the expected shape.",
    "wrong-values": "The shapes are right but the numbers are not. Test your function on a "
    "tiny example you can work out by hand, and compare it with the equation.",
}

# The mistakes inferred from a hypothesis about the output (the others are observed).
LIKELY = frozenset(MISTAKES) - {
    "not-written",
    "exception",
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
    Y = np.zeros((m, C))
    Y[np.arange(m), rng.integers(0, C, size=m)] = 1.0
    return Y


def _sizes_text(sizes: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sizes.items())


def _linear_problems(k, m, h_prev, h):
    rng = _rng("linear", k)
    A, W, b = rng.normal(size=(m, h_prev)), rng.normal(size=(h_prev, h)), rng.normal(size=h)
    Z = A @ W + b
    hyp = {"no-bias": A @ W, "transposed": Z.T}
    if h_prev == h:
        hyp["WT-not-W"] = A @ W.T + b
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
    D = A_L - Y
    hyp = {"sign": -D, "transposed": D.T}
    if m > 1:
        hyp["divided-by-m"] = D / m
    by_shape = {"wrong-axis": {"Δ^L": (C,)}} if m > 1 else {}
    return Problem((A_L, Y), {"Δ^L": D}, {"m": m, "C": C}, hyp, {"Δ^L": "(m, C)"}, m, by_shape)


def _bias_gradient_problems(k, m, h):
    rng = _rng("bias_gradient", k)
    D = rng.normal(size=(m, h))
    g = D.sum(axis=0) / m
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
    g = A.T @ D / m
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
    back = D @ W.T
    out = back * sigma_prime(Z)
    hyp = {
        "sigma-prime-of-A": back * sigma_prime(_SIGMA_OF_PRIME[sigma_prime](Z)),
        "no-sigma-prime": back,
        "transposed": out.T,
    }
    if h == h_next:
        hyp["W-not-WT"] = (D @ W) * sigma_prime(Z)
    return Problem(
        (D, W, Z, sigma_prime),
        {"Δ^l": out},
        {"m": m, "h_l": h, "h_{l+1}": h_next},
        hyp,
        {"Δ^l": "(m, h_l)"},
        m,
    )


def _grads_variant(X, Y, params: Params, W_not_WT=False):
    """The batched gradients (ReLU hidden layers, softmax + cross-entropy), optionally with
    the mistake W where W^T belongs in the hidden error (needs square hidden layers)."""
    cache = batched.forward(X, params, check=False)
    W, L, Zc, A = params.W, params.L, cache.Z, cache.A
    m = X.shape[0]
    delta = {L: A[L] - Y}
    for l in range(L - 1, 0, -1):
        Wn = W[l + 1] if W_not_WT else W[l + 1].T
        delta[l] = (delta[l + 1] @ Wn) * relu_prime(Zc[l])
    dW = {l: A[l - 1].T @ delta[l] / m for l in range(1, L + 1)}
    db = {l: delta[l].sum(axis=0) / m for l in range(1, L + 1)}
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
        hyp["W-not-WT"] = _grad_parts(*_grads_variant(X, Y, params, W_not_WT=True))
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

    def parts(W, b):
        out = {f"W[{l}]": w for l, w in W.items()}
        out.update({f"b[{l}]": v for l, v in b.items()})
        return out

    L = params.L
    hyp = {
        "gradient-ascent": parts(
            {l: params.W[l] + lr * dW[l] for l in params.layers},
            {l: params.b[l] + lr * db[l] for l in params.layers},
        ),
        "no-learning-rate": parts(
            {l: params.W[l] - dW[l] for l in params.layers},
            {l: params.b[l] - db[l] for l in params.layers},
        ),
        "W-only": parts(new.W, params.b),
        "b-only": parts(params.W, new.b),
    }
    shapes = {f"W[{l}]": "(h_{l-1}, h_l)" for l in range(1, L + 1)}
    shapes.update({f"b[{l}]": "(h_l,)" for l in range(1, L + 1)})
    return Problem(
        (params, dW, db, lr), parts(new.W, new.b), {"h": tuple(sizes), "lr": lr}, hyp, shapes
    )


@dataclass(frozen=True)
class Checker:
    """A checker: its problems (the last with m = 1 where m exists), the probes (square
    problems that make shape-dependent hypotheses testable), the expected structure in
    words, and the mistakes it can name."""

    signature: str
    returns: str
    problems: Callable
    probes: Callable
    mistakes: tuple


def _common(*extra):
    return (
        "not-written",
        "exception",
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
    ),
    "sgd_step": Checker(
        "sgd_step(params, dW, db, lr)",
        "new parameters, a Params(W, b) with W[l] (h_{l-1}, h_l) and b[l] (h_l,)",
        lambda: [_sgd_step_problems(0, (5, 4, 3), 0.1), _sgd_step_problems(1, (6, 3, 7, 2), 0.5)],
        lambda: [],
        _common("structure", "gradient-ascent", "no-learning-rate", "W-only", "b-only"),
    ),
}


# --------------------------------------------------------------------------- running


class _Failure(Exception):
    """Internal: the student's answer failed; carries (mistake key, observation)."""

    def __init__(self, mistake: str, observation: str):
        super().__init__(observation)
        self.mistake, self.observation = mistake, observation


def _to(xp, value):
    """The checker's input on the array library ``xp`` (recursively for Params, dicts)."""
    if isinstance(value, np.ndarray):
        return xp.array(value, copy=True)  # a fresh copy: the problem itself stays intact
    if isinstance(value, Params):
        return Params(_to(xp, value.W), _to(xp, value.b))
    if isinstance(value, dict):
        return {k: _to(xp, v) for k, v in value.items()}
    return value


def _arrays(value, prefix=""):
    """{label: array} of every array inside an input (for the in-place check)."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return {prefix: value}
    if isinstance(value, Params):
        return {**_arrays(value.W, prefix + ".W"), **_arrays(value.b, prefix + ".b")}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_arrays(v, f"{prefix}[{k}]"))
        return out
    return {}


def _arg_names(name):
    sig = CHECKERS[name].signature
    return [a.strip() for a in sig[sig.index("(") + 1 : -1].split(",")]


def _call(name, fn, problem, xp):
    """Call fn on copies of the problem's inputs on ``xp``; return its raw result."""
    args = tuple(_to(xp, a) for a in problem.args)
    before = {
        f"{arg}{label}": to_numpy(a).copy()
        for arg, value in zip(_arg_names(name), args)
        for label, a in _arrays(value).items()
    }
    try:
        out = fn(*args)
    except NotImplementedError as e:
        hint = re.sub(r"^hint:\s*", "", str(e).strip(), flags=re.IGNORECASE)
        raise _Failure(
            "not-written",
            f"{name} is not written yet" + (f" (its hint: {hint})" if hint else "") + ".",
        ) from None
    except Exception as e:  # noqa: BLE001 - any error of the student's code is reported
        first = _short_error(str(e))
        raise _Failure(
            "exception",
            f"{name} raised {type(e).__name__} on a problem with "
            f"{_sizes_text(problem.sizes)}" + (f": {first}" if first else "."),
        ) from None
    after = {
        f"{arg}{label}": to_numpy(a)
        for arg, value in zip(_arg_names(name), args)
        for label, a in _arrays(value).items()
    }
    changed = [k for k in before if not np.array_equal(before[k], after[k], equal_nan=True)]
    if changed:
        raise _Failure("in-place", f"{name} changed its input {', '.join(changed)} in place.")
    return out


def _short_error(text: str) -> str:
    """The first line of an exception's message, with NumPy's gufunc signature (noise to
    a student) cut from a matmul size mismatch."""
    first = (text.strip().splitlines() or [""])[0]
    mismatch = re.search(r"\((size \d+ is different from \d+)\)", first)
    if first.startswith("matmul") and mismatch:
        return f"matmul: the inner sizes of a product do not agree ({mismatch.group(1)})"
    return first


def _parts(name, out, problem):
    """The student's result as {part label: array}, or a _Failure naming the structure."""
    labels = list(problem.expected)
    if out is None:
        raise _Failure("returned-none", f"{name} returned None.")
    if name == "sgd_step":
        if not isinstance(out, Params):
            raise _Failure(
                "structure",
                f"sgd_step returned a value of type {type(out).__name__}; "
                f"expected {CHECKERS[name].returns}.",
            )
        W, b = out.W, out.b
        return _dict_parts(name, {"W": W, "b": b}, problem)
    if name in ("backprop", "backprop_single"):
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise _Failure(
                "structure",
                f"{name} returned a value of type {type(out).__name__}; "
                f"expected {CHECKERS[name].returns}.",
            )
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
    if wrong:
        raise _Failure(
            "wrong-values",
            f"{name} returned the right shapes but wrong values in {', '.join(wrong)} "
            f"on a problem with {where}.",
        )


def _all_arrays(parts):
    return all(hasattr(v, "shape") and hasattr(v, "dtype") for v in parts.values())


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
    xps = [np]
    if gpu_available():
        xps.append(get_xp(to_device(np.zeros(1), "gpu")))
    return xps


def check(name: str, fn) -> CheckResult:
    """Check the student's ``fn`` for the exercise ``name`` (one of :data:`NAMES`).

    Returns a :class:`CheckResult`; it displays as its message in Jupyter. Bad input to the
    checker itself (an unknown name, something that is not callable) raises
    :class:`~mlp_core.core.errors.ConfigError`.
    """
    if name not in CHECKERS:
        raise ConfigError(
            f"there is no exercise check named {name!r}; the checks are: {', '.join(NAMES)}."
        )
    if not callable(fn):
        raise ConfigError(
            f"exercises.check({name!r}, fn) needs your function itself as fn, got a "
            f"{type(fn).__name__}; pass the name without calling it, e.g. "
            f"exercises.check({name!r}, {name})."
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
        f"✓ {name} is correct: it matches mlp_core on {len(problems)} problems of "
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
        except _Failure:
            continue
        if _all_arrays(parts):
            found = _hypothesis(parts, problem)
            if found is not None:
                return found
    return None
