"""Progress bars (helpers.progress): when they show, and the batch bar's arithmetic."""
import os

from helpers import execution, progress


def test_environment_switches_bars(monkeypatch):
    monkeypatch.setenv(progress.ENV, "1")
    assert progress.enabled() is True and progress.tqdm_kwds("x")["disable"] is False
    monkeypatch.setenv(progress.ENV, "0")
    assert progress.enabled() is False and progress.tqdm_kwds("x")["disable"] is True
    assert list(progress.bar(range(3), desc="quiet")) == [0, 1, 2]
    monkeypatch.delenv(progress.ENV)
    assert progress.enabled() is None        # not in a kernel: tqdm's TTY rule decides


def test_notebook_kernels_start_without_bars(monkeypatch):
    """Kernels inherit the executor's environment: no bar text in executed notebooks."""
    monkeypatch.setenv(progress.ENV, "1")
    with execution._kernel_environment():
        assert os.environ[progress.ENV] == "0"
    assert os.environ[progress.ENV] == "1"


def test_batch_bar_counts_notebooks_and_fills_up_after_a_failure(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV, "1")
    with progress.BatchProgress(n_inputs=2, n_notebooks=3) as bar:
        for nb in ("01_a.ipynb", "02_b.ipynb", "03_c.ipynb"):
            progress.notify(bar.queue, "start", "first", nb)
            progress.notify(bar.queue, "done", "first", nb, 1.25)
        progress.notify(bar.queue, "skip", "first", None, 0)
        progress.notify(bar.queue, "start", "second", "01_a.ipynb")
        progress.notify(bar.queue, "skip", "second", None, 3)    # failed in its first notebook
    assert bar._bar.n == bar._bar.total == 6
    captured = capsys.readouterr()
    assert "[first] 02_b.ipynb done in 1.2 s" in captured.out
    assert "[second] 01_a.ipynb ..." in captured.out
    assert "6/6" in captured.err                                 # the bar, on stderr
