"""The explorers in the built HTML, in headless Chromium with the network cut off.

For each explorer the test moves each control with the keyboard (focus, arrow key: a
range steps, a select or a radio group moves to the next setting) and waits until the
chart shows the line the library computes for the new setting: computed here in Python
(the learning curves by training again; the gradients, the shapes and the ring by the
same library calls; the roofline and the GPU model against the CPU from the recording
their chapters read, ``book/data/part3-cpu.json``). Every request
outside the book's own server is blocked and fails the test; so does any console error.
The shape rule the page applies is checked equal to ``diagrams.shape_table`` over a grid
of sizes. Screenshots of each explorer before and after its first move go to
artifacts/screenshots/explorers/.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from collections import Counter
from itertools import product
from pathlib import Path

import pytest

from .test_browser import CHROMIUM_ARGS, NOT_FOUND_MSG, _QuietHandler, find_chromium

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots" / "explorers"
WAIT_MS = 1000 * float(os.environ.get("BOOK_BROWSER_WAIT_S", "300"))


@pytest.fixture(scope="module")
def explorer_server(built_book):
    handler = functools.partial(_QuietHandler, directory=str(built_book.html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Session:
    """One Chromium page with the network cut; records console errors and requests."""

    def __init__(self, page, origin):
        self.page, self.origin = page, origin
        self.problems: list[str] = []

    def open(self, docname: str, key: str):
        self.page.goto(f"{self.origin}/{docname}.html", wait_until="domcontentloaded")
        self.page.wait_for_function(
            f"() => document.querySelector('#explorer-{key}') && "
            f"(document.querySelector('#explorer-{key}').hasAttribute('data-explorer-ready') "
            f"|| document.querySelector('#explorer-{key}').hasAttribute('data-explorer-error'))",
            timeout=WAIT_MS,
        )
        error = self.page.get_attribute(f"#explorer-{key}", "data-explorer-error")
        assert error is None, f"{docname}: the explorer {key} failed to draw: {error}"
        return self.page.locator(f"#explorer-{key}")

    def text(self, key: str) -> str:
        return self.page.eval_on_selector(
            f"#explorer-{key} .mlp-explorer-chart svg",
            "svg => [...svg.querySelectorAll('text')].map(t => t.textContent).join('\\n')",
        )

    def wait_for_text(self, key: str, expected: str):
        try:
            self.page.wait_for_function(
                "([key, s]) => { const svg = document.querySelector("
                "'#explorer-' + key + ' .mlp-explorer-chart svg'); return svg && "
                "[...svg.querySelectorAll('text')].some(t => t.textContent === s); }",
                arg=[key, expected],
                timeout=min(WAIT_MS, 60_000),
            )
        except Exception:  # noqa: BLE001 - the assertion below says what the page shows
            pass
        shown = self.text(key)
        assert expected in shown.split("\n"), (
            f"after the move, the explorer {key} does not show\n  {expected}\n"
            f"it shows:\n  " + "\n  ".join(t for t in shown.split("\n") if len(t) > 25)
        )

    def control(self, label: str, role: str = "slider"):
        """A control found as assistive technology finds it: by its role and its label."""
        return self.page.get_by_role(role, name=re.compile("^" + re.escape(label)))

    def move(self, locator, key: str):
        """Focus a control and press one key, as a keyboard user does."""
        locator.focus()
        self.page.keyboard.press(key)

    def shot(self, key: str, name: str):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.locator(f"#explorer-{key}").screenshot(path=str(SHOTS / f"{key}-{name}.png"))


@pytest.fixture(scope="module")
def session(explorer_server):
    from playwright.sync_api import sync_playwright

    path = find_chromium()
    if not path:
        pytest.fail(NOT_FOUND_MSG, pytrace=False)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        s = Session(page, explorer_server)

        def route(r):
            if r.request.url.startswith(explorer_server):
                r.continue_()
            else:
                s.problems.append(f"BLOCKED external request: {r.request.url}")
                r.abort("blockedbyclient")

        context.route("**/*", route)
        page.on(
            "console",
            lambda m: s.problems.append(f"console.error: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: s.problems.append(f"uncaught exception: {e}"))
        page.on(
            "response",
            lambda r: s.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )
        yield s
        context.close()
        browser.close()


@pytest.fixture(autouse=True)
def _clean_console(session):
    session.problems.clear()
    yield
    assert not session.problems, "\n".join(session.problems)


# ----------------------------------------------------------------------------- shapes


def expected_shapes(m, sizes) -> Counter:
    """The shape texts the shapes explorer must show: the table and the chain."""
    from mlp_core.book.diagrams import shape_table
    from mlp_core.book.explorers.network_shapes import COLUMNS

    def text(shape):
        return f"({shape[0]},)" if len(shape) == 1 else f"({shape[0]}, {shape[1]})"

    table = shape_table(sizes, m)
    shown = [text(r[k]) for r in table for k, *_ in COLUMNS]
    chain = [text(r[k]) for r in table for k in ("A_prev", "W")] + [text(table[-1]["A"])]
    return Counter(shown + chain)


def shown_shapes(session, key) -> Counter:
    texts = session.text(key).split("\n")
    return Counter(t for t in texts if re.fullmatch(r"\(\d+, ?\d*\)|\(\d+,\)", t))


def test_shapes_follow_the_keyboard(session):
    session.open("book/01-notation", "shapes")
    assert shown_shapes(session, "shapes") == expected_shapes(16, (64, 32, 10))
    session.shot("shapes", "before")
    session.move(session.control("m (examples)"), "ArrowRight")
    session.page.wait_for_function(
        "() => [...document.querySelectorAll('#explorer-shapes svg text')]"
        ".some(t => t.textContent === '(17, 64)')"
    )
    assert shown_shapes(session, "shapes") == expected_shapes(17, (64, 32, 10))
    session.shot("shapes", "after")
    for label, key, sizes in [
        ("n (inputs)", "ArrowLeft", (63, 32, 10)),
        ("h1 (first hidden layer)", "ArrowRight", (63, 33, 10)),
        ("h2 (second hidden layer, 0 = none)", "ArrowRight", (63, 33, 1, 10)),
        ("C (classes)", "ArrowLeft", (63, 33, 1, 9)),
    ]:
        session.move(session.control(label), key)
        session.page.wait_for_function(
            "n => [...document.querySelectorAll('#explorer-shapes svg text')]"
            ".filter(t => /^\\(/.test(t.textContent)).length === n",
            arg=sum(expected_shapes(17, sizes).values()),
        )
        assert shown_shapes(session, "shapes") == expected_shapes(17, sizes), label


def test_the_shape_rule_in_the_browser_is_the_library_rule(session):
    """Over a grid of sizes, the shapes the page computes equal ``shape_table``'s."""
    session.open("book/05-stacking", "shapes")
    grid = list(product((1, 7, 256), (1, 5, 784), (1, 4), (0, 6, 256), (1, 3, 20)))
    for m, n, h1, h2, C in grid:
        session.page.evaluate(
            "async ([m, n, h1, h2, C]) => { const v = document.querySelector("
            "'#explorer-shapes').mlpView; v.signal('m', m).signal('n', n).signal('h1', h1)"
            ".signal('h2', h2).signal('C', C); await v.runAsync(); }",
            [m, n, h1, h2, C],
        )
        sizes = (n, h1) + ((h2,) if h2 else ()) + (C,)
        assert shown_shapes(session, "shapes") == expected_shapes(m, sizes), (m, sizes)


# ----------------------------------------------------------------------------- chapters 6–9


def test_output_error_rows(session):
    from mlp_core.book.explorers import gradients

    lines = [r["readout"] for r in gradients.output_tables()["readout"]]
    session.open("book/06-output-error", "output-error")
    session.wait_for_text("output-error", lines[0])
    session.move(session.control("example i (row of Δ)"), "ArrowRight")
    session.wait_for_text("output-error", lines[1])
    session.move(session.control("example i (row of Δ)"), "End")
    session.wait_for_text("output-error", lines[7])


def bias_line(k, i):
    from mlp_core.book.explorers import gradients

    return next(r for r in gradients.bias_tables(8)["sums"] if r["k"] == k and r["i"] == i)[
        "readout"
    ]


def test_bias_column(session):
    session.open("book/07-bias-gradient", "bias-column")
    session.wait_for_text("bias-column", bias_line(4, 3))
    session.move(session.control("unit k (column of Δ)"), "ArrowRight")
    session.wait_for_text("bias-column", bias_line(5, 3))
    session.move(session.control("rows summed, i"), "ArrowRight")
    session.wait_for_text("bias-column", bias_line(5, 4))


def test_outer_products(session):
    from mlp_core.book.explorers import gradients

    lines = {r["i"]: r["readout"] for r in gradients.outer_tables()["readout"]}
    session.open("book/08-weight-gradient", "outer-products")
    session.wait_for_text("outer-products", lines[2])
    session.shot("outer-products", "before")
    control = session.control("examples summed, i")
    session.move(control, "ArrowRight")
    session.wait_for_text("outer-products", lines[3])
    session.move(control, "End")
    session.wait_for_text("outer-products", lines[gradients.SMALL_M])
    session.shot("outer-products", "after")


def test_relu_gate(session):
    from mlp_core.book.explorers import gradients

    def line(act, shift):
        return gradients.gate_frame(act, shift)["readout"][0]["readout"]

    session.open("book/09-hidden-error", "relu-gate")
    session.wait_for_text("relu-gate", line("relu", 0.0))
    session.move(session.control("shift of b[1]", "combobox"), "ArrowDown")
    session.wait_for_text("relu-gate", line("relu", 0.5))
    session.move(session.control("relu", "radio"), "ArrowRight")
    session.wait_for_text("relu-gate", line("sigmoid", 0.5))


# ----------------------------------------------------------------------------- chapter 11


def test_learning_curves_show_a_fresh_training_run(session):
    from mlp_core.book.explorers import curves

    session.open("book/11-minibatch-sgd", "learning-curves")
    session.wait_for_text("learning-curves", curves.readout(curves.run_record(32, 0.1, 20), 20))
    session.shot("learning-curves", "before")
    session.move(session.control("batch size B", "combobox"), "ArrowDown")  # 32 → 128
    session.wait_for_text("learning-curves", curves.readout(curves.run_record(128, 0.1, 20), 20))
    session.move(session.control("learning rate η", "combobox"), "ArrowDown")  # 0.1 → 0.2
    session.wait_for_text("learning-curves", curves.readout(curves.run_record(128, 0.2, 20), 20))
    session.move(session.control("epochs"), "ArrowRight")  # 20 → 21
    session.wait_for_text("learning-curves", curves.readout(curves.run_record(128, 0.2, 21), 21))
    session.shot("learning-curves", "after")


# ----------------------------------------------------------------------------- chapters 12–14


def part3_readout(explorer: str) -> dict:
    """The readout lines of a Part III explorer, computed here from the recording the
    chapter reads (the same library call as the book's, not the page's embedded data)."""
    from mlp_core.bench import record
    from mlp_core.book.explorers import speed

    rec = record.load_recording(ROOT / "book" / "data" / "part3-cpu.json")
    if explorer == "roofline":
        rows, key = speed.roofline_tables(rec)["readout"], "m"
    else:
        rows, key = speed.launch_tables(rec)["readout"], "B"
    out: dict = {}
    for r in rows:
        out.setdefault(r[key], []).append(r["text"])
    return out


def test_roofline_moves_with_m(session):
    lines = part3_readout("roofline")
    ms = sorted(lines)
    session.open("book/12-why-batches-are-fast", "roofline")
    session.wait_for_text("roofline", lines[ms[0]][0])
    session.shot("roofline", "before")
    session.move(session.control("m (rows of A)", "combobox"), "ArrowDown")
    for line in lines[ms[1]]:
        session.wait_for_text("roofline", line)
    session.shot("roofline", "after")
    session.move(session.control("m (rows of A)", "combobox"), "End")
    session.wait_for_text("roofline", lines[ms[-1]][0])


def test_launch_cost_moves_with_B(session):
    lines = part3_readout("launch-cost")
    Bs = sorted(lines)
    session.open("book/13-gpu-cupy", "launch-cost")
    session.wait_for_text("launch-cost", lines[Bs[0]][0])
    session.shot("launch-cost", "before")
    session.move(session.control("batch size B", "combobox"), "ArrowDown")
    for line in lines[Bs[1]]:
        session.wait_for_text("launch-cost", line)
    session.shot("launch-cost", "after")
    session.move(session.control("batch size B", "combobox"), "End")
    session.wait_for_text("launch-cost", lines[Bs[-1]][1])


def test_ring_allreduce_steps(session):
    from mlp_core.book.explorers import ring

    lines = {(r["P"], r["s"]): r for r in ring.ring_tables(**ring.recorded_model())["readout"]}
    session.open("book/14-beyond-one-device", "ring-allreduce")
    session.wait_for_text("ring-allreduce", lines[4, 2]["readout"])
    session.move(session.control("ranks P"), "ArrowRight")
    session.wait_for_text("ring-allreduce", lines[5, 2]["readout"])
    session.move(session.control("step"), "ArrowRight")
    session.wait_for_text("ring-allreduce", lines[5, 3]["phase"])
    session.wait_for_text("ring-allreduce", lines[5, 3]["readout"])
