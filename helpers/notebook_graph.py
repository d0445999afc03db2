"""Which notebooks wait for which: the batch runner runs independent notebooks side by side.

Each numbered notebook declares in its metadata the notebooks whose results it reads::

    "metadata": {"hea": {"needs": ["03_gmm_clustering", "04_umap_hdbscan"]}}

(``"needs": []`` for one that reads only the input). A notebook without the declaration waits
for every earlier one, so a notebook a user adds is run in order, as before. Notebooks whose
needs are met run at the same time, each in its own kernel process, up to a given number:
on two cores, notebooks 01-04 read only the input and run two at a time, and 05 and 06 then
run together. Of the notebooks ready to start, those that more notebooks wait for start first
(03 and 04, which 05 and 06 need, before 01 and 02, which nothing needs), so the chain to the
last notebook is not held up behind notebooks nothing waits for; ties keep the run order. The
results are the same: every notebook is seeded, and what they share goes through the
content-keyed cache (:mod:`helpers.cache`), whose entries are written atomically.

Hand-written: papermill executes one notebook; it has no notion of a dependency between two.
"""
from __future__ import annotations

import json
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

#: Notebook metadata key holding ``{"needs": [notebook stems]}``.
METADATA_KEY = "hea"


def declared_needs(notebook):
    """The stems a notebook (path) declares it needs, or None when it declares nothing."""
    try:
        meta = json.loads(Path(notebook).read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return None
    needs = (meta.get(METADATA_KEY) or {}).get("needs")
    return None if needs is None else [str(n) for n in needs]


def notebook_needs(notebooks):
    """``{stem: set of stems}`` each notebook waits for, among ``notebooks`` (in run order).

    Declared needs that are not in the run (e.g. a notebook left out) are dropped; a notebook
    without a declaration waits for every earlier one.
    """
    stems = [Path(nb).stem for nb in notebooks]
    out = {}
    for i, nb in enumerate(notebooks):
        needs = declared_needs(nb)
        earlier = set(stems[:i])
        out[stems[i]] = earlier if needs is None else set(needs) & earlier
    return out


def run_graph(notebooks, run_one, max_parallel=1, needs=None, on_interrupt=None):
    """Call ``run_one(notebook)`` for every notebook once its needs have finished.

    Parameters
    ----------
    notebooks : list of Path
        In run order; a notebook only ever waits for earlier ones.
    run_one : callable(Path)
        Executes one notebook (in its own kernel); called from worker threads when
        ``max_parallel`` > 1.
    max_parallel : int
        Notebooks running at the same time (1: strictly in order, in this thread).
    needs : dict, optional
        ``{stem: set of stems}``; default :func:`notebook_needs`.
    on_interrupt : callable(), optional
        Called on an interrupt (Ctrl-C) while notebooks run side by side, to stop them (the
        runner interrupts their kernels); the interrupt is raised once they have returned.

    Raises
    ------
    The first failure, in notebook order, after the notebooks already running have finished;
    no notebook is started after a failure. ``failed_notebook`` (its file name) is set on the
    exception.
    """
    needs = notebook_needs(notebooks) if needs is None else needs
    if max_parallel <= 1:
        for nb in notebooks:
            _call(run_one, nb)
        return
    done, failures, running = set(), {}, {}
    waiting = sorted(notebooks, key=lambda nb: -len(dependents(needs, nb.stem)))   # stable
    with ThreadPoolExecutor(max_workers=int(max_parallel)) as pool:
        while waiting or running:
            ready = [nb for nb in waiting if needs.get(nb.stem, set()) <= done]
            while not failures and ready and len(running) < max_parallel:
                nb = ready.pop(0)
                waiting.remove(nb)
                running[pool.submit(_call, run_one, nb)] = nb
            if not running:
                break   # a failure (or an unmet need) leaves the rest waiting: not run
            try:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                if on_interrupt is not None:
                    on_interrupt()
                wait(running)
                raise
            for fut in finished:
                nb = running.pop(fut)
                if fut.exception() is None:
                    done.add(nb.stem)
                else:
                    failures[nb] = fut.exception()
    if failures:
        first = min(failures, key=notebooks.index)
        raise failures[first]


def dependents(needs, stem):
    """The stems that wait for ``stem``, directly or through others, in ``needs``
    (``{stem: set of stems}``)."""
    out, todo = set(), [stem]
    while todo:
        cur = todo.pop()
        for other, need in needs.items():
            if cur in need and other not in out:
                out.add(other)
                todo.append(other)
    return out


def _call(run_one, nb):
    try:
        return run_one(nb)
    except BaseException as exc:
        try:
            exc.failed_notebook = Path(nb).name
        except AttributeError:
            pass
        raise


def usable_cores():
    """Cores this process may run on (its CPU affinity where the system reports it)."""
    import os
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
