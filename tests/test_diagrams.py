"""Shape diagrams are drawn to scale, labelled with their shapes; the shape table is exact."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mlp_core.book import diagrams  # noqa: E402
from mlp_core.core.batched import backward, forward  # noqa: E402
from mlp_core.core.data import one_hot  # noqa: E402
from mlp_core.core.errors import ConfigError  # noqa: E402
from mlp_core.core.params import init_params  # noqa: E402

M, SIZES = 7, (5, 4, 3)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def problem():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(M, SIZES[0]))
    Y = one_hot(rng.integers(0, SIZES[-1], M), SIZES[-1])
    params = init_params(SIZES, seed=0)
    return X, Y, params


def matrices(fig):
    """The matrix rectangles of a diagram, by label, in drawing order."""
    return [p for ax in fig.axes for p in ax.patches if p.get_label().startswith("matrix:")]


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def to_inches(fig, rect):
    """Width and height of a patch in inches on the rendered figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    bb = rect.get_window_extent()
    return bb.width / fig.dpi, bb.height / fig.dpi


def test_draw_product_to_scale(problem):
    X, Y, params = problem
    cache = forward(X, params)
    dW, _, delta = backward(Y, params, cache)
    fig = diagrams.draw_product(
        [
            ("(A^{0})^T", X.T),
            "@",
            ("\\Delta^{1}", delta[1]),
            "=",
            ("\\partial J/\\partial W^{1}", dW[1]),
        ],
        symbols={0: "(h_0, m)", 2: "(m, h_1)", 4: "(h_0, h_1)"},
        title="test",
    )
    rects = matrices(fig)
    assert len(rects) == 3
    shapes = [(5, 7), (7, 4), (5, 4)]
    for r, (rows, cols) in zip(rects, shapes):
        assert r.get_width() / r.get_height() == pytest.approx(cols / rows)
        assert r.get_width() == pytest.approx(cols * fig.mlp_scale)
    # heights compare as row counts; data coordinates are inches on the real figure
    assert rects[0].get_height() / rects[1].get_height() == pytest.approx(5 / 7)
    w_in, h_in = to_inches(fig, rects[1])
    assert w_in == pytest.approx(rects[1].get_width(), rel=0.02)
    assert h_in == pytest.approx(rects[1].get_height(), rel=0.02)
    t = texts(fig)
    assert "$(h_0, m)$ = (5, 7)" in t and "$(m, h_1)$ = (7, 4)" in t
    assert "$(h_0, h_1)$ = (5, 4)" in t
    assert r"$\Delta^{1}$" in t and "@" in t and "=" in t


def test_draw_product_plain_shapes_and_operators():
    a, b = np.ones((3, 6)), np.ones((6, 2))
    fig = diagrams.draw_product([("A", a), "⊙", ("B", b), "1/m"], values=False)
    assert [r.get_label() for r in matrices(fig)] == ["matrix:A", "matrix:B"]
    assert "(3, 6)" in texts(fig) and "(6, 2)" in texts(fig)
    with pytest.raises(ConfigError):
        diagrams.draw_product([42])


def test_thin_dimensions_stay_visible_and_width_is_capped():
    fig = diagrams.draw_product([("X", np.zeros((1, 784))), "@", ("W", np.zeros((784, 1)))])
    for r in matrices(fig):
        assert min(r.get_width(), r.get_height()) >= diagrams.MIN_DIM_IN - 1e-12
    assert fig.get_size_inches()[0] <= 12


def test_outer_vs_batch_same_scale(problem):
    X, Y, params = problem
    cache = forward(X, params)
    _, _, delta = backward(Y, params, cache)
    fig = diagrams.outer_vs_batch(X[0], delta[1][0], X, delta[1], l=1)
    rects = matrices(fig)
    assert len(rects) == 6
    top, bottom = rects[:3], rects[3:]
    s = fig.mlp_scale
    # a^0 (5,1), (δ^1)^T (1,4), outer (5,4); (A^0)^T (5,7), Δ^1 (7,4), product (5,4)
    for r, (rows, cols) in zip(top + bottom, [(5, 1), (1, 4), (5, 4), (5, 7), (7, 4), (5, 4)]):
        assert r.get_width() == pytest.approx(max(cols * s, diagrams.MIN_DIM_IN))
        assert r.get_height() == pytest.approx(max(rows * s, diagrams.MIN_DIM_IN))
    assert top[2].get_width() == pytest.approx(bottom[2].get_width())
    t = texts(fig)
    assert "$(n, 1)$ = (5, 1)" in t and "$(n, m)$ = (5, 7)" in t
    assert "$(1, h_{1})$ = (1, 4)" in t and "$(n, h_{1})$ = (5, 4)" in t


def test_error_matrix_highlight(problem):
    X, Y, params = problem
    D = forward(X, params).A[2] - Y
    fig = diagrams.error_matrix(D, class_names=["a", "b", "c"], highlight_row=2)
    rects = matrices(fig)
    assert len(rects) == 2  # Δ^L and the column δ^{L(3)}
    big, col = rects
    assert big.get_width() / big.get_height() == pytest.approx(3 / 7)
    assert col.get_height() == pytest.approx(big.get_width())  # C cells tall
    hl = [p for p in fig.axes[0].patches if p.get_label() == "highlight"]
    assert len(hl) == 1 and hl[0].get_height() == pytest.approx(big.get_height() / 7)
    t = texts(fig)
    assert "example 1" in t and "example 7" in t and {"a", "b", "c"} <= set(t)
    assert "$(m, C)$ = (7, 3)" in t
    with pytest.raises(ConfigError):
        diagrams.error_matrix(D, highlight_row=7)


def test_column_sums_rectangles_and_arrows():
    D = np.arange(28.0).reshape(7, 4) - 10
    fig = diagrams.column_sums(D, l=1)
    delta, db = matrices(fig)
    assert delta.get_width() == pytest.approx(db.get_width())
    assert delta.get_height() / db.get_height() == pytest.approx(7)
    assert len(fig.axes[0].texts) >= 4
    arrows = [c for c in fig.axes[0].texts if hasattr(c, "arrow_patch")]
    assert len(arrows) >= 4  # one per column, plus the "examples i" arrow
    shown = " ".join(texts(fig))
    for v in D.sum(axis=0) / 7:
        assert f"{v:+.3f}".replace("-", "−") in shown
    assert "(7, 4)" in shown and "(4,)" in shown


def test_column_sums_numbers_are_apart_and_signed():
    """The printed ∂J/∂b_j of ten units (chapter 7's figure) do not touch each other, and a
    small negative value keeps its sign (no "−0.00")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    D = np.random.default_rng(3).normal(scale=0.05, size=(12, 10))
    D[:, 4] -= D[:, 4].mean() + 0.0036  # a column mean of −0.0036
    fig = diagrams.column_sums(D, l=2)
    FigureCanvasAgg(fig).draw()
    values = [t for t in fig.axes[0].texts if t.get_gid() == "value"]
    assert len(values) == 10
    assert values[4].get_text() == "−0.004"
    boxes = [t.get_window_extent() for t in values]
    for j, a in enumerate(boxes):
        for b in boxes[j + 1 :]:
            assert not a.overlaps(b)


def test_rows_from_columns():
    X = np.random.default_rng(0).random((6, 9))
    fig = diagrams.rows_from_columns(X, k=3)
    rects = matrices(fig)
    assert len(rects) == 4
    for r in rects[:3]:
        assert r.get_height() / r.get_width() == pytest.approx(9)
    assert rects[3].get_width() / rects[3].get_height() == pytest.approx(9 / 6)
    assert rects[0].get_height() == pytest.approx(rects[3].get_width())  # n both ways
    hl = [p for p in fig.axes[0].patches if p.get_label() == "highlight"]
    assert len(hl) == 6  # k column outlines + k row outlines
    assert "$(m, n)$ = (6, 9)" in texts(fig)


@pytest.mark.parametrize("m", [None, 7])
def test_network_stack(m):
    fig = diagrams.network_stack((5, 4, 6, 3), m=m)
    rects = matrices(fig)
    Ws = [r for r in rects if r.get_label().startswith("matrix:W")]
    As = [r for r in rects if r.get_label().startswith("matrix:A")]
    assert len(Ws) == 3 and len(As) == (0 if m is None else 4)
    s = fig.mlp_scale
    for r, (rows, cols) in zip(Ws, [(5, 4), (4, 6), (6, 3)]):
        assert (r.get_width(), r.get_height()) == pytest.approx((cols * s, rows * s))
    t = texts(fig)
    assert "$(n, h_{1})$ = (5, 4)" in t and "$(h_{2}, C)$ = (6, 3)" in t
    if m:
        assert "$(m, n)$ = (7, 5)" in t and "$(m, C)$ = (7, 3)" in t


def test_huge_network_fits():
    fig = diagrams.network_stack((784, 128, 10), m=256)
    w, h = fig.get_size_inches()
    assert w <= 14 and h <= 9
    for r in matrices(fig):
        assert min(r.get_width(), r.get_height()) >= diagrams.MIN_DIM_IN - 1e-12


def test_forward_and_backward_shapes(problem):
    X, Y, params = problem
    fig = diagrams.forward_shapes(params, X)
    labels = [r.get_label() for r in matrices(fig)]
    assert labels == [
        "matrix:A^{0}",
        "matrix:W^{1}",
        "matrix:b^{1}",
        "matrix:Z^{1}",
        "matrix:A^{1}",
        "matrix:W^{2}",
        "matrix:b^{2}",
        "matrix:Z^{2}",
    ]
    rects = matrices(fig)
    s = fig.mlp_scale
    for r, (rows, cols) in zip(
        rects, [(7, 5), (5, 4), (1, 4), (7, 4), (7, 4), (4, 3), (1, 3), (7, 3)]
    ):
        assert (r.get_width(), r.get_height()) == pytest.approx((cols * s, rows * s))
    fig = diagrams.backward_shapes(params, X, Y)
    labels = [r.get_label() for r in matrices(fig)]
    assert "matrix:\\partial J/\\partial W^{1}" in labels
    assert "matrix:\\partial J/\\partial W^{2}" in labels
    t = texts(fig)
    assert "$(h_{1}, C)$ = (4, 3)" in t and "$(n, h_{1})$ = (5, 4)" in t
    # rows: A^2 − Y = Δ^2; (A^1)^T Δ^2 = dW^2; 1^T Δ^2 = db^2; Δ^2 (W^2)^T ⊙ σ'(Z^1) = Δ^1;
    # (A^0)^T Δ^1 = dW^1; 1^T Δ^1 = db^1
    assert len(labels) == 3 + 3 + 3 + 4 + 3 + 3
    assert "matrix:\\partial J/\\partial b^{1}" in labels
    assert "$(h_{1},)$ = (4,)" in t and "$(1, m)$ = (1, 7)" in t
    fig = diagrams.backward_shapes(params, X, Y, biases=False)
    assert len(matrices(fig)) == 3 + 3 + 4 + 3


def test_shape_table_exact():
    tab = diagrams.shape_table(SIZES, M)
    assert [r["l"] for r in tab] == [1, 2]
    one, two = tab
    assert one["W"] == (5, 4) and two["W"] == (4, 3)
    assert one["Delta"] == (7, 4) and two["Delta"] == (7, 3)
    assert one["Z"] == one["A"] == (7, 4) and two["Z"] == two["A"] == (7, 3)
    assert one["A_prev"] == (7, 5) and two["A_prev"] == (7, 4)
    assert one["dW"] == one["dW_one"] == (5, 4) and two["dW"] == two["dW_one"] == (4, 3)
    assert one["db"] == (4,) and two["db"] == (3,)
    assert one["delta"] == (4, 1) and two["delta"] == (3, 1)
    assert one["z"] == one["a"] == (4, 1) and two["a_prev"] == (4, 1)
    assert one["a_prev"] == (5, 1) and one["db_one"] == (4, 1) and two["b"] == (3, 1)
    assert one["b_batch"] == (4,)


def test_shape_table_agrees_with_real_arrays(problem):
    X, Y, params = problem
    cache = forward(X, params)
    dW, db, delta = backward(Y, params, cache)
    for r in diagrams.shape_table(SIZES, M):
        l = r["l"]
        assert params.W[l].shape == r["W"] and cache.Z[l].shape == r["Z"]
        assert delta[l].shape == r["Delta"] and dW[l].shape == r["dW"]
        assert db[l].shape == r["db"] and cache.A[l - 1].shape == r["A_prev"]


def test_shape_table_html():
    html = diagrams.shape_table_html(SIZES, M)
    assert html.startswith('<div class="mlp-shape-table-wrap"') and "<table" in html
    assert html.rstrip().endswith("</table></div>")
    for s in [
        "(5, 4)",
        "(4, 3)",
        "(7, 4)",
        "(7, 3)",
        "(4, 1)",
        "(3, 1)",
        "(4,)",
        "(3,)",
        "(7, 5)",
        "(5, 1)",
        "one example",
        "m examples",
    ]:
        assert s in html


def test_one_signed_key_everywhere(problem):
    """Every heatmap uses the book's one diverging map, the key is drawn under the figure,
    and cells large enough carry their sign as + or − (readable without colour)."""
    X, Y, params = problem
    D = forward(X, params).A[2] - Y
    figs = [
        diagrams.error_matrix(D, highlight_row=0),
        diagrams.column_sums(D, l=2),
        diagrams.backward_shapes(params, X, Y),
        diagrams.draw_product([("W", params.W[1]), "@", ("b", params.b[1])]),
    ]
    for k, fig in enumerate(figs):
        images = [im for ax in fig.axes for im in ax.images]
        assert images and {im.get_cmap().name for im in images} == {diagrams.SIGNED_CMAP}
        key = diagrams.SHARED_KEY if k == 0 else diagrams.VALUES_KEY
        assert [t.get_text() for t in fig.texts] == [key]
    signs = [t for t in figs[0].axes[0].texts if t.get_gid() == "sign"]
    assert len(signs) == np.count_nonzero(D) * 1 + np.count_nonzero(D[0])
    for t in signs:
        assert t.get_text() in {"+", "−"}
    # no key under a figure that draws no values
    assert diagrams.VALUES_KEY not in [t.get_text() for t in diagrams.network_stack((5, 4)).texts]


def test_a_shared_scale_is_said_once_with_its_numbers(problem):
    """error_matrix draws Δ^L and its row δ^{L(i)} on one scale: the key under it says so
    and its bar carries the numbers; there is no second colour bar to contradict it."""
    X, Y, params = problem
    D = forward(X, params).A[2] - Y
    fig = diagrams.error_matrix(D, highlight_row=1)
    bars = [ax for ax in fig.axes[1:] if ax.images]
    assert len(bars) == 1
    ticks = [t.get_text() for t in bars[0].get_xticklabels()]
    v = np.abs(D).max()
    assert ticks == [f"{-v:.2g}".replace("-", "−"), "0", f"{v:+.2g}"]
    norms = {(im.norm.vmin, im.norm.vmax) for im in fig.axes[0].images}
    assert norms == {(-v, v)}
    # a figure of matrices each on its own scale keeps −max … +max
    fig = diagrams.draw_product([("W", params.W[1]), "@", ("b", params.b[1])])
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["−max", "0", "+max"]


def _hue_clash(colour, cmap, min_gap=0.05):
    """Whether a saturated ``colour`` has the hue of either end of the signed map."""
    from matplotlib.colors import rgb_to_hsv, to_rgb

    h, sat, _ = rgb_to_hsv(to_rgb(colour))
    if sat < 0.3:  # black, greys: no hue to confuse
        return False
    ends = [rgb_to_hsv(cmap(x)[:3])[0] for x in (0.0, 0.15, 0.85, 1.0)]
    return any(min(abs(h - e), 1 - abs(h - e)) < min_gap for e in ends)


def test_frames_never_wear_the_sign_hues():
    """Outlines and names use the role colours, none of the signed key's purple or orange
    hue (a frame must not read as a sign)."""
    cmap = diagrams.signed_cmap()
    for role, colour in diagrams.ROLE_COLORS.items():
        assert not _hue_clash(colour, cmap), role
    # negative control: an orange frame for W and a purple one for Y clash
    assert _hue_clash("#e07b00", cmap) and _hue_clash("#7b4fa6", cmap)


def test_labels_legible_at_page_width(problem):
    """Every text is at least ~10 CSS px when the figure is shown 800 px wide (or at its
    natural size, if narrower)."""
    X, Y, params = problem
    D = forward(X, params).A[2] - Y
    for fig in [
        diagrams.error_matrix(D, highlight_row=1),
        diagrams.column_sums(D, l=1),
        diagrams.outer_vs_batch(X[0], D[0], X, D, l=2, L=2),
        diagrams.rows_from_columns(X, k=3),
        diagrams.backward_shapes(params, X, Y),
    ]:
        width_px = fig.get_size_inches()[0] * fig.dpi
        shrink = min(1.0, 800 / width_px)
        for t in [t for ax in fig.axes for t in ax.texts] + list(fig.texts):
            if t.get_gid() == "sign" or not t.get_text():
                continue
            px = t.get_fontsize() / 72 * fig.dpi * shrink
            assert px >= 9.5, (t.get_text(), px)


def test_outer_vs_batch_output_width_and_highlight(problem):
    X, Y, params = problem
    cache = forward(X, params)
    _, _, delta = backward(Y, params, cache)
    fig = diagrams.outer_vs_batch(
        cache.A[1][2], delta[2][2], cache.A[1], delta[2], l=2, L=2, highlight=2
    )
    t = texts(fig)
    assert "$(m, C)$ = (7, 3)" in t and "$(h_{1}, C)$ = (4, 3)" in t
    hl = [p for p in fig.axes[0].patches if p.get_label() == "highlight"]
    rects = matrices(fig)
    assert len(hl) == 2
    col, row = hl
    assert col.get_width() == pytest.approx(rects[3].get_width() / 7)
    assert row.get_height() == pytest.approx(rects[4].get_height() / 7)
    with pytest.raises(ConfigError):
        diagrams.outer_vs_batch(X[0], delta[1][0], X, delta[1], highlight=7)


def test_column_sums_is_the_library_bias_gradient(monkeypatch):
    """column_sums shows what mlp_core's bias_gradient returns (a wrong library shows)."""
    from mlp_core.book.diagrams import figures

    D = np.arange(28.0).reshape(7, 4) - 10
    monkeypatch.setattr(figures, "bias_gradient", lambda d: d.sum(axis=0))  # the sum, no 1/m
    shown = " ".join(texts(diagrams.column_sums(D, l=1)))
    assert f"{D.sum(axis=0)[0]:+.3f}".replace("-", "−") in shown


def test_draw_product_highlights_one_example(problem):
    X, Y, params = problem
    fig = diagrams.draw_product(
        [("A^{0}", X), "@", ("W^{1}", params.W[1])], highlight={0: ("row", 3), 2: ("col", 1)}
    )
    a, w = matrices(fig)
    row, col = [p for p in fig.axes[0].patches if p.get_label() == "highlight"]
    assert row.get_height() == pytest.approx(a.get_height() / 7)
    assert row.get_y() == pytest.approx(a.get_y() + a.get_height() * (7 - 4) / 7)
    assert col.get_width() == pytest.approx(w.get_width() / 4)
    assert col.get_x() == pytest.approx(w.get_x() + w.get_width() / 4)
    for bad in ({1: ("row", 0)}, {0: ("row", 7)}, {0: ("diag", 0)}):
        with pytest.raises(ConfigError):
            diagrams.draw_product([("A^{0}", X), "@", ("W^{1}", params.W[1])], highlight=bad)


def test_a_huge_network_is_drawn_without_allocating_it():
    """network_stack draws shapes only: a 10⁹-wide layer costs no memory of its size."""
    import tracemalloc

    tracemalloc.start()
    try:
        fig = diagrams.network_stack((64, 10**9, 10), m=8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6
    assert "$(n, h_{1})$ = (64, 1000000000)" in texts(fig)


def test_values_too_large_to_draw_are_refused_before_allocating():
    huge = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10**6, 10**6), strides=(0, 0))
    with pytest.raises(ConfigError, match="as a heatmap would need .* GiB.*only its shape"):
        diagrams.draw_product([("W", huge)])


@pytest.mark.parametrize("sizes", [(5,), (5, 0, 3), (5, 2.5, 3), (5, "4", 3)])
def test_network_stack_refuses_bad_widths(sizes):
    with pytest.raises(ConfigError):
        diagrams.network_stack(sizes)


def _row_colours(image, i):
    """The RGBA colours a drawn heatmap gives row i of its array."""
    return image.to_rgba(image.get_array())[i]


def test_blocks_drawn_with_one_norm_keep_their_colours():
    """A matrix and its row blocks on one scale (diagrams.signed_norm): a row has the same
    colours in the matrix and in its block, and the key says the scale with its numbers."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(M, SIZES[0]))
    X[0, 0] = 6.0  # the largest entry lies outside the second block
    blocks = [X[0:3], X[3:5], X[5:7]]
    norm = diagrams.signed_norm(X, *blocks)
    terms = [("A", X), "→"] + [(f"A_{k}", b) for k, b in enumerate(blocks, 1)]
    fig = diagrams.draw_product(terms, norm=norm)
    images = fig.axes[0].images
    assert [im.norm for im in images] == [norm] * 4
    for k, (start, _) in enumerate(((0, 3), (3, 5), (5, 7)), 1):
        np.testing.assert_array_equal(_row_colours(images[0], start), _row_colours(images[k], 0))
    assert [t.get_text() for t in fig.texts] == [diagrams.SHARED_KEY]
    ticks = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert ticks == ["−6", "0", "+6"]
    # negative control: each on its own scale, row 4 of X (row 1 of block 2) changes colour
    own = diagrams.draw_product(terms).axes[0].images
    assert not np.array_equal(_row_colours(own[0], 3), _row_colours(own[2], 0))


def test_one_norm_across_figures_keeps_a_matrix_colour():
    """The same partial sum in two figures, drawn with the norm they share, has the same
    colours; drawn each on its own figure's largest entry, it does not."""
    rng = np.random.default_rng(4)
    S = [rng.normal(size=(5, 4)) * s for s in (1.0, 0.5, 2.0)]
    total = S[0] + S[1] + S[2]
    norm = diagrams.signed_norm(*S, total)
    alone = diagrams.draw_product([("S_2", S[1])], norm=norm).axes[0].images[0]
    summed = (
        diagrams.draw_product(
            [("S_1", S[0]), "+", ("S_2", S[1]), "+", ("S_3", S[2]), "=", ("S", total)], norm=norm
        )
        .axes[0]
        .images[1]
    )
    np.testing.assert_array_equal(alone.to_rgba(alone.get_array()), summed.to_rgba(S[1]))
    own = diagrams.draw_product([("S_2", S[1])]).axes[0].images[0]
    assert not np.array_equal(own.to_rgba(own.get_array()), summed.to_rgba(S[1]))


@pytest.mark.parametrize(
    ("norm", "message"),
    [
        (0.5, "must be a matplotlib Normalize"),
        ("shared", "must be a matplotlib Normalize"),
        (matplotlib.colors.Normalize(0, 1), "symmetric"),
        (matplotlib.colors.Normalize(-1, 1), "beyond the shared scale"),
    ],
)
def test_a_norm_that_cannot_hold_the_values_is_refused(norm, message):
    X = np.array([[2.0, -1.0], [0.5, 0.0]])
    with pytest.raises(ConfigError, match=message):
        diagrams.draw_product([("X", X)], norm=norm)


def test_signed_norm_is_the_largest_entry_of_all():
    n = diagrams.signed_norm(np.array([1.0, -4.0]), np.array([[np.nan, 2.5]]))
    assert (n.vmin, n.vmax) == (-4.0, 4.0)
    zero = diagrams.signed_norm(np.zeros(3))
    assert (zero.vmin, zero.vmax) == (-1.0, 1.0)
