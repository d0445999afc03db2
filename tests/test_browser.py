"""End-to-end: the interactive notebooks work for a person in JupyterLab, in a real browser.

Starts JupyterLab from this venv on a free localhost port (random token, isolated settings),
opens notebooks in headless Debian Chromium through Playwright, runs all cells, moves the
ipywidgets sliders with the keyboard and checks that the widget redraws: the reported number
of clusters (or components) and the figure change. Screenshots go to tests/artifacts/browser/
(git-ignored) so a person can look at what a user sees.

Needs /usr/bin/chromium (Debian package ``chromium``; .ci/run installs it) and the ``playwright``
Python package (requirements.txt; its bundled driver is used, never ``playwright install``).
Skipped with a message when either is missing.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from browser.jlab import CHROMIUM, LabNotebook, LabServer, count_in, launch_chromium

if not Path(CHROMIUM).exists():
    pytest.skip(f"browser test skipped: {CHROMIUM} not found (install Debian's chromium: "
                "apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="browser test skipped: Python package playwright not installed "
                                      "(pip install -r requirements.txt)")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"

TOY_NOTEBOOK = r'''
import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
from sklearn.cluster import HDBSCAN

rng = np.random.default_rng(0)
# three blobs of 40, 120 and 400 points: raising min_cluster_size drops the small ones
X = np.vstack([rng.normal(c, 0.3, size=(n, 2)) for c, n in [((0, 0), 40), ((4, 0), 120), ((2, 4), 400)]])

def show(min_cluster_size):
    labels = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(X)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.scatter(*X.T, c=labels, s=4, cmap="tab10", vmin=-1, vmax=9)
    plt.show()
    print(f"N clusters: {labels.max() + 1}")

widgets.interact(show, min_cluster_size=widgets.IntSlider(
    value=20, min=10, max=300, step=10, description="min_cluster_size", continuous_update=False));
'''


def _toy_notebook(path):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Toy slider (browser-harness self-test)"),
                nbformat.v4.new_code_cell(TOY_NOTEBOOK)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    root.mkdir()
    _toy_notebook(root / "toy_slider.ipynb")
    with LabServer(root_dir=root, workdir=tmp / "server") as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        try:  # what the page looked like at the end, pass or fail
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}_final.png"), full_page=True)
        except Exception:
            pass
        ctx.close()


def _move_slider_and_check(nb, description, key, times, prefix):
    slider = nb.slider(description)
    slider.handle.wait_for(state="visible")
    assert nb.loading_widgets() == 0, "a widget did not render (placeholder text shown)"
    slider.root.scroll_into_view_if_needed()
    v0, text0, imgs0 = slider.value(), slider.output_text(), slider.figure_sources()
    n0 = count_in(text0)
    nb.screenshot(f"{prefix}_before", slider.output_area)
    assert imgs0, f"no figure under the slider /{description}/"
    assert n0 is not None, f"no cluster count printed under the slider:\n{text0[:1000]}"

    slider.press(key, times)
    v1 = slider.wait_value(lambda v: v != v0)
    text1 = slider.wait_for_redraw(text0)
    imgs1 = slider.figure_sources()
    n1 = count_in(text1)
    nb.screenshot(f"{prefix}_after", slider.output_area)
    nb.screenshot(f"{prefix}_page")
    assert n1 is not None and n1 != n0, f"{description}: {v0} -> {v1}, count {n0} -> {n1}"
    assert imgs1 and imgs1 != imgs0, f"{description}: figure did not change ({v0} -> {v1})"
    return (v0, n0), (v1, n1)


def test_toy_slider_redraws(lab, page):
    """Harness self-test on a throwaway notebook: widget renders, slider moves, figure redraws."""
    t0 = time.monotonic()
    nb = LabNotebook(page, lab, "toy_slider.ipynb", ARTIFACTS).open().run_all()
    assert not nb.errors(), nb.errors()
    (v0, n0), (v1, n1) = _move_slider_and_check(nb, "min_cluster_size", "PageUp", 1, "toy")
    print(f"toy: min_cluster_size {v0}->{v1}, clusters {n0}->{n1}, {time.monotonic() - t0:.1f} s")
