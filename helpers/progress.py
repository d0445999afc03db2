"""Progress bars (tqdm) for long steps: the batch (inputs x notebooks) and, inside notebooks,
UMAP, reruns with other seeds, split-half reruns and dask reductions of large lazy maps.

Bars are for people watching: they are shown in an interactive session (a terminal, JupyterLab)
and stay quiet where output is logged or compared, because a bar's text changes from run to run.
``HEA_PROGRESS=1`` forces them on, ``HEA_PROGRESS=0`` off; the notebook executors
(:mod:`helpers.execution`: the batch runner, ``make notebooks``) and the test suite (the project's
``conftest.py``, so nbval too) start kernels with ``HEA_PROGRESS=0``. Without the variable, bars
are shown in an IPython kernel (tqdm's widget in JupyterLab) and on a terminal (tqdm's own
``disable=None`` rule: off when the output is not a TTY, e.g. a log file).
"""
from __future__ import annotations

import contextlib
import os

#: Environment variable switching progress bars on ("1") or off ("0").
ENV = "HEA_PROGRESS"


def _in_kernel():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def enabled():
    """True, False, or None (tqdm decides: shown on a TTY only), following :data:`ENV`."""
    value = os.environ.get(ENV, "").strip()
    if value in ("0", "false", "False", "no"):
        return False
    if value:
        return True
    return True if _in_kernel() else None


def _disable():
    on = enabled()
    return None if on is None else not on


def bar(iterable=None, total=None, desc=None, leave=False, **kwargs):
    """A tqdm bar (``tqdm.auto``: a widget in JupyterLab, text on a terminal) that follows
    :func:`enabled`.

    Parameters
    ----------
    iterable : iterable, optional
    total : int, optional
    desc : str, optional
        What is running, e.g. ``"split-half reruns"``.
    leave : bool
        Keep the finished bar on screen.
    **kwargs
        Passed to :class:`tqdm.auto.tqdm`.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=leave, disable=_disable(), **kwargs)


def tqdm_kwds(desc):
    """``tqdm_kwds`` for umap-learn's epoch bar, following :func:`enabled` (never None:
    umap-learn shows its bar only when ``disable`` is False)."""
    return {"desc": desc, "disable": enabled() is not True, "leave": False}


@contextlib.contextmanager
def dask_bar(desc):
    """A tqdm bar over the tasks of the dask computations run inside the ``with`` block
    (tqdm's :class:`tqdm.dask.TqdmCallback`), when :func:`enabled`; else nothing."""
    if enabled() is not True:
        yield
        return
    from tqdm.auto import tqdm
    from tqdm.dask import TqdmCallback

    with TqdmCallback(desc=desc, leave=False, tqdm_class=tqdm):
        yield


def notify(events, kind, name, notebook, info=None):
    """Report a batch step: to :class:`BatchProgress` through its queue ``events``, or as a
    printed line when there is none. ``kind``: ``"start"``, ``"done"`` (``info`` = seconds) or
    ``"skip"`` (``info`` = notebooks that will not run after a failure)."""
    if events is not None:
        events.put((kind, name, notebook, info))
    elif kind == "start":
        print(f"[{name}] {notebook} ...", flush=True)
    elif kind == "done":
        print(f"[{name}] {notebook} done in {info:.1f} s", flush=True)


class BatchProgress:
    """One tqdm bar for a batch run: a step per (input, notebook), the stage running in its
    description; the per-notebook lines are written above it (``tqdm.write``).

    Workers (also in other processes when ``parallel``) send events with :func:`notify` through
    :attr:`queue`; a thread of this process draws them. Use as a context manager.

    Parameters
    ----------
    n_inputs, n_notebooks : int
    parallel : bool
        Inputs run in other processes: the queue is a ``multiprocessing`` manager's.
    """

    def __init__(self, n_inputs, n_notebooks, parallel=False):
        import queue
        import threading

        from tqdm import tqdm

        self._manager = None
        if parallel:
            from multiprocessing import get_context

            self._manager = get_context("spawn").Manager()
            self.queue = self._manager.Queue()
        else:
            self.queue = queue.Queue()
        self._bar = tqdm(total=n_inputs * n_notebooks, unit="notebook", desc="batch",
                         disable=_disable(), dynamic_ncols=True)
        self._thread = threading.Thread(target=self._consume, daemon=True)

    def _consume(self):
        while True:
            event = self.queue.get()
            if event is None:
                return
            kind, name, notebook, info = event
            if kind == "start":
                self._bar.set_description(f"{name}: {notebook}")
                self._bar.write(f"[{name}] {notebook} ...")
            elif kind == "done":
                self._bar.update(1)
                self._bar.write(f"[{name}] {notebook} done in {info:.1f} s")
            elif kind == "skip" and info:
                self._bar.update(info)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.queue.put(None)
        self._thread.join(timeout=30)
        self._bar.set_description("batch")
        self._bar.close()
        if self._manager is not None:
            self._manager.shutdown()
        return False
