"""The notebooks live, as a student runs them: JupyterLab in headless Chromium.

Starts JupyterLab on 127.0.0.1 (a free port, a token, no browser of its own, its own
settings and runtime folders) on a temporary copy of the chapters, so that nothing it
saves can touch the repository. Chromium (Debian's, through Playwright's executable_path,
as in test_browser.py) opens chapter 1, runs all its cells, moves the "m" slider of the
shapes explorer and waits for the widget's output to change; the page must log no error.
Then it opens a notebook of the student edition (scripts/student_edition.py), runs all
its cells and finds the checker's "not written yet" message on the page.

Every wait is on a condition, with a generous budget (a loaded laptop), never a fixed
sleep. Screenshots go to artifacts/screenshots/lab-*.png.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from .test_browser import CHROMIUM_ARGS, NOT_FOUND_MSG, find_chromium

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
START_BUDGET_S = 180
RUN_BUDGET_MS = int(os.environ.get("LAB_RUN_BUDGET_MS", 300_000))
UI_BUDGET_MS = 120_000
WIDGET_CHAPTER = "01-notation.ipynb"
SLIDER_LABEL = "m (examples)"

# The notebook on show (JupyterLab keeps other tabs in the DOM, hidden).
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
# What a page may log that is not an error of the book: none so far.
BENIGN = ()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def student_notebook(dest: Path) -> Path:
    """A notebook of the student edition with a stub in it: from the real chapters when
    one of them has a write-it-yourself exercise, else from the synthetic test book."""
    from test_student_edition import se, synthetic_book

    edition = se.write_edition(ROOT, dest / "real")
    pages = [p for p, r in edition.items() if r.stubs]
    if pages:
        return dest / "real" / pages[0]
    src = synthetic_book(dest / "synthetic-src")
    se.write_edition(src, dest / "synthetic")
    return dest / "synthetic" / "book" / "01-demo.ipynb"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of the chapters: yields (base url, token, served folder)."""
    if not find_chromium():
        pytest.fail(NOT_FOUND_MSG, pytrace=False)
    tmp = tmp_path_factory.mktemp("lab")
    served = tmp / "served"
    shutil.copytree(
        ROOT / "book", served, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build")
    )
    stub = student_notebook(tmp / "student")
    shutil.copytree(stub.parent, served / "student")
    # as a student opens them fresh: no outputs, no execution counts (so that a numbered
    # prompt below means the cell ran in this kernel)
    for path in served.rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, path)
    settings = tmp / "settings"
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    # every cell in the DOM (no windowing), and no news or update checks (offline)
    (settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    (settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        MPLBACKEND="Agg",
    )
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1"]
    cmd += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    cmd += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}"]
    if os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log = (tmp / "lab.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=served)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_BUDGET_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited with {proc.returncode}:\n"
                    + (tmp / "lab.log").read_text()[-3000:]
                )
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        "JupyterLab did not answer within "
                        f"{START_BUDGET_S} s:\n" + (tmp / "lab.log").read_text()[-3000:]
                    )
                time.sleep(0.5)  # polling interval of a condition wait, not a fixed sleep
        yield base, token, served, stub.name
    finally:
        try:
            req = urllib.request.Request(
                f"{base}/api/shutdown?token={token}", method="POST", data=b""
            )
            urllib.request.urlopen(req, timeout=10).close()
        except OSError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def open_notebook(browser, lab, path: str):
    """A page showing the notebook ``path`` with its kernel idle; and its error log."""
    base, token, _, _ = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    # a workspace of its own, reset: only this notebook is open in the page
    workspace = "".join(c if c.isalnum() else "-" for c in path)
    page.goto(
        f"{base}/lab/workspaces/{workspace}/tree/{path}?reset&token={token}",
        timeout=UI_BUDGET_MS,
    )
    page.wait_for_selector(f"{PANEL} .jp-Cell", timeout=UI_BUDGET_MS)
    wait_kernel_idle(page)
    return page, errors


def wait_kernel_idle(page):
    page.wait_for_function(
        """() => {
            const s = document.querySelector(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
            return s && s.getAttribute('data-status') === 'idle';
        }""",
        timeout=UI_BUDGET_MS,
    )


def wait_kernel_connected(lab):
    """Until the server's kernel is idle with the page's websocket connected to it."""
    base, token, _, _ = lab
    deadline = time.monotonic() + UI_BUDGET_MS / 1000
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as r:
                kernels = json.load(r)
        except OSError as exc:  # e.g. a 500 while a kernel is still starting: ask again
            kernels = [str(exc)]
        if any(
            isinstance(k, dict) and k["execution_state"] == "idle" and k["connections"] >= 1
            for k in kernels
        ):
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"no kernel connected and idle within {UI_BUDGET_MS / 1000:.0f} s: {kernels}"
            )
        time.sleep(0.5)  # polling interval of a condition wait


def run_all(page, lab, name):
    """Run every cell as a student does, Shift+Enter from the first cell (Ctrl+Enter on
    the last, which would otherwise add a cell), then wait until every code cell shows a
    numbered prompt and the kernel is idle."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    wait_kernel_connected(lab)
    cells = page.locator(f"{PANEL} .jp-Notebook .jp-Cell")
    n = cells.count()
    cells.first.locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Escape")  # command mode
    for _ in range(n - 1):
        page.keyboard.press("Shift+Enter")
    page.keyboard.press("Control+Enter")
    try:
        page.wait_for_function(
            """(panel) => {
                const prompts = [
                    ...document.querySelectorAll(panel + ' .jp-CodeCell .jp-InputPrompt')];
                return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
            }""",
            arg=PANEL,
            timeout=RUN_BUDGET_MS,
        )
    except PlaywrightTimeout:
        shot(page, f"{name}-timeout")
        prompts = page.eval_on_selector_all(
            f"{PANEL} .jp-CodeCell .jp-InputPrompt", "ps => ps.map(p => p.textContent)"
        )
        pytest.fail(f"{name}: not every cell ran within {RUN_BUDGET_MS / 1000:.0f} s: {prompts}")
    wait_kernel_idle(page)


def real_errors(errors):
    return [e for e in errors if not any(b in e for b in BENIGN)]


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"lab-{name}.png"), full_page=False)


def test_widget_chapter_runs_and_its_slider_updates_the_output(browser, lab):
    page, errors = open_notebook(browser, lab, WIDGET_CHAPTER)
    try:
        run_all(page, lab, "01")
        slider = page.locator(PANEL).locator(
            ".widget-slider", has=page.locator(".widget-label", has_text=SLIDER_LABEL)
        )
        slider.first.wait_for(timeout=UI_BUDGET_MS)
        widget = slider.first.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][last()]")
        output = widget.locator(".widget-output").first
        output.wait_for(timeout=UI_BUDGET_MS)
        page.wait_for_function(
            "el => el.innerText.trim().length > 0",
            arg=output.element_handle(),
            timeout=UI_BUDGET_MS,
        )
        before = output.inner_text()
        readout = slider.first.locator(".widget-readout").first
        value_before = readout.inner_text()
        slider.first.scroll_into_view_if_needed()
        shot(page, "01-before")
        handle = slider.first.locator(".noUi-handle").first
        handle.focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([el, old]) => el.innerText !== old",
            arg=[readout.element_handle(), value_before],
            timeout=UI_BUDGET_MS,
        )
        page.wait_for_function(
            "([el, old]) => el.innerText !== old",
            arg=[output.element_handle(), before],
            timeout=UI_BUDGET_MS,
        )
        after = output.inner_text()
        shot(page, "01-after")
        assert after != before
        assert readout.inner_text() != value_before
        assert not page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        ).count()
        assert not real_errors(errors), "\n".join(errors)
    finally:
        page.close()


def test_a_student_stub_shows_the_checker_message(browser, lab):
    _, _, _, name = lab
    page, errors = open_notebook(browser, lab, f"student/{name}")
    try:
        run_all(page, lab, "student")
        message = (
            page.locator(PANEL).locator(".jp-OutputArea-output", has_text="not written yet").first
        )
        message.wait_for(timeout=UI_BUDGET_MS)
        message.scroll_into_view_if_needed()
        shot(page, "student-stub")
        assert "Traceback" not in message.inner_text()  # a message, not a traceback
        assert not real_errors(errors), "\n".join(errors)
    finally:
        page.close()
