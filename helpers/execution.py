"""Executing notebooks: the one kernel manager and the two ways the project runs notebooks.

* :func:`execute_notebook`: papermill (parameters injected after the ``parameters`` cell), used
  by the batch runner and by every test that executes a notebook;
* :func:`execute_in_place`: nbclient on the committed notebooks (``make notebooks``), so they
  stay free of papermill metadata.

Both start the kernel with :func:`kernel_manager_class` (ipykernel of *this* interpreter, its
client waiting in one-second slices) and stop a cell that runs longer than its timeout with a
:class:`CellTimeout` naming the notebook and the cell.
"""
from __future__ import annotations

import ast
import contextlib
import functools
import json
import os
import re
import threading
import time
import weakref
from pathlib import Path

from .errors import HEAError, InputFileError
from .paths import PROJECT_ROOT, notebooks_dir
from .progress import ENV as PROGRESS_ENV

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
IGNORE_OUTPUT_TAG = "nbval-ignore-output"


class CellTimeout(HEAError, TimeoutError):
    """A notebook cell ran longer than the timeout allowed (the kernel was stopped)."""


def find_notebooks(folder=None):
    """Return the numbered notebooks ``NN_*.ipynb`` of ``folder`` in execution order.

    Parameters
    ----------
    folder : str or Path, optional
        Folder holding the notebooks; default the project's ``notebooks/``.

    Returns
    -------
    list of Path
    """
    folder = Path(folder) if folder is not None else notebooks_dir()
    if not folder.is_dir():
        raise InputFileError(f"Notebook folder {folder} does not exist: pass --notebooks with the "
                             "folder holding the NN_*.ipynb notebooks.")
    return sorted(folder.glob(NOTEBOOK_GLOB))


def declared_parameters(notebook):
    """Names and default values assigned in a notebook's cell tagged ``parameters``.

    Parameters
    ----------
    notebook : str or Path
        An ``.ipynb`` file.

    Returns
    -------
    dict or None
        ``{NAME: default}`` (defaults that are Python literals are evaluated, others kept as
        their source text); None when the notebook has no ``parameters`` cell.
    """
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = "".join(cell.get("source", ""))
        found = {}
        try:
            tree = ast.parse(source)
        except SyntaxError:  # e.g. a line magic in the cell: fall back to simple assignments
            for m in re.finditer(r"^([A-Za-z_]\w*)\s*=\s*(.+?)\s*(?:#.*)?$", source, re.M):
                found[m.group(1)] = parse_value(m.group(2))
            return found
        for node in tree.body:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    text = ast.get_source_segment(source, node.value)
                    found[target.id] = parse_value(text)
        return found
    return None


def parse_value(text):
    """A command-line or notebook value as a Python literal when it is one, else the string.

    ``"3"`` -> 3, ``"None"`` -> None, ``"['Fe', 'Co']"`` -> list, ``"pca"`` -> ``"pca"``.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


@functools.lru_cache(maxsize=None)
def kernel_manager_class(stderr_log=None, threads=None):
    """A jupyter_client kernel manager that always starts ipykernel in *this* interpreter.

    Hand-written for two reasons. (1) A kernelspec found on the Jupyter path (e.g. a user-level
    ``python3`` pointing at another Python) could otherwise run the notebooks outside the
    project's venv. (2) Its client waits for kernel messages in slices of one second: nbclient
    waits with no timeout, and a zmq wake-up missed under load then hangs the run for ever with
    the kernel idle (seen here on widget cells; jupyter/nbclient#312); re-polling picks the
    message up. The kernel process's own stderr (start-up warnings, crashes; not cell output) is
    appended to ``stderr_log`` when given, instead of cluttering the terminal. ``threads``
    caps the kernel's BLAS/OpenMP thread pools (:data:`THREAD_ENV`): notebooks running side by
    side would otherwise each start one thread per core, and OpenBLAS's spinning threads slow
    everything several-fold when there are more of them than cores.
    """
    from queue import Empty

    import ipykernel.kernelspec
    from jupyter_client import AsyncKernelManager
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.channels import AsyncZMQSocketChannel
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from traitlets import Type, default

    class SlicedWaitChannel(AsyncZMQSocketChannel):
        async def get_msg(self, timeout=None):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    return await super().get_msg(timeout=min(1.0, left))
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

    class SlicedWaitClient(AsyncKernelClient):
        shell_channel_class = Type(SlicedWaitChannel)
        iopub_channel_class = Type(SlicedWaitChannel)
        control_channel_class = Type(SlicedWaitChannel)

    class CurrentPythonKernelSpecManager(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(resource_dir=ipykernel.kernelspec.RESOURCES,
                              **ipykernel.kernelspec.get_kernel_dict())

    class CurrentPythonKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _default_ksm(self):
            return CurrentPythonKernelSpecManager(data_dir=self.data_dir)

        @default("client_factory")
        def _default_client_factory(self):
            return SlicedWaitClient

        async def start_kernel(self, **kw):
            if threads is not None:
                kw["env"] = {**kw.get("env", os.environ),
                             **{k: str(int(threads)) for k in THREAD_ENV}}
            _KERNELS.add(self)
            if stderr_log is not None:
                with open(stderr_log, "ab") as log:  # Popen duplicates the descriptor
                    kw.setdefault("stderr", log)
                    return await super().start_kernel(**kw)
            return await super().start_kernel(**kw)

    return CurrentPythonKernelManager


#: Kernel managers started by :func:`kernel_manager_class` that are still referenced.
_KERNELS = weakref.WeakSet()


def interrupt_kernels():
    """Interrupt the cell running in every kernel this process started, as Jupyter's
    "Interrupt" does (SIGINT to the kernel): notebooks executing in other threads then stop
    at once with a KeyboardInterrupt. jupyter_client starts kernels in their own session, so a
    terminal's Ctrl-C reaches only this process. Returns how many kernels were signalled."""
    import signal

    n = 0
    for km in list(_KERNELS):
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        if not pid:
            continue
        try:
            os.kill(pid, signal.SIGINT)
            n += 1
        except OSError:
            pass
    return n


#: Environment variables that size a kernel's numerical thread pools.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_ENV = {"users": 0, "saved": {}}
_ENV_LOCK = threading.Lock()


@contextlib.contextmanager
def _kernel_environment():
    """While kernels start: the project root on PYTHONPATH, so ``import helpers`` works in them
    even when the package is not pip-installed, and no progress bars (``HEA_PROGRESS=0``,
    :mod:`helpers.progress`: their text would land in the executed notebooks); kernels inherit
    this process's environment. Notebooks run side by side in threads (the batch runner) share
    one change: the first to enter makes it, the last to leave restores the old values."""
    with _ENV_LOCK:
        if _ENV["users"] == 0:
            old = {k: os.environ.get(k) for k in ("PYTHONPATH", PROGRESS_ENV)}
            parts = [str(PROJECT_ROOT)] + [p for p in (old["PYTHONPATH"] or "").split(os.pathsep)
                                           if p]
            os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
            os.environ[PROGRESS_ENV] = "0"
            _ENV["saved"] = old
        _ENV["users"] += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _ENV["users"] -= 1
            if _ENV["users"] == 0:
                for key, value in _ENV["saved"].items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


#: Seconds a kernel may take to start (papermill's default, 60, failed a clean-clone test run
#: once: "Kernel didn't respond in 60 seconds" while two other kernels loaded HyperSpy on the
#: 2 cores). A slow start is not a failure of the input; a hung cell still hits ``timeout``.
KERNEL_START_TIMEOUT = 180


#: Times a kernel that died before its first reply is started again. jupyter_client picks
#: free TCP ports and the kernel binds them a moment later; a kernel starting beside it can
#: take one first ("Address already in use": a clean-clone test run whose runner started two
#: notebooks at once). A kernel that dies for any other reason dies again and is reported.
KERNEL_START_RETRIES = 2
_KERNEL_DIED = "Kernel died before replying to kernel_info"


def execute_notebook(source, target, parameters=None, cwd=None, timeout=None, kernel_log=None,
                     threads=None):
    """Execute one notebook with papermill in the current interpreter's kernel.

    Parameters
    ----------
    source, target : str or Path
        Notebook to run, and where to write the executed copy (written as cells complete).
    parameters : dict, optional
        Values injected after the ``parameters`` cell.
    cwd : str or Path, optional
        Working directory of the kernel; default the source notebook's folder, so relative
        paths behave as in JupyterLab.
    timeout : float, optional
        Seconds allowed per cell (default: no limit).
    kernel_log : str or Path, optional
        File that receives the kernel process's own stderr (default: the terminal).
    threads : int, optional
        BLAS/OpenMP threads of the kernel (default: the libraries' own choice, one per core).

    Raises
    ------
    papermill.exceptions.PapermillExecutionError
        When a cell raises; ``ename``/``evalue`` carry the notebook's exception.
    CellTimeout
        When a cell runs longer than ``timeout``; the message names the notebook and the cell.
    """
    import logging

    import papermill
    from nbclient.exceptions import CellTimeoutError

    # papermill's own parameter parser warns about values it cannot parse (e.g. "demo:x?size=9")
    # and about names a notebook lacks; the runner checks names itself (build_parameters).
    logging.getLogger("papermill").setLevel(logging.ERROR)
    for attempt in range(KERNEL_START_RETRIES + 1):
        try:
            with _kernel_environment():
                # the kernel's working folder goes to nbclient ("resources"), not papermill's
                # ``cwd``: papermill os.chdir()s the whole process, and notebooks run side by
                # side in threads (helpers.notebook_graph) raced on it, leaving the caller in a
                # notebook's folder
                return papermill.execute_notebook(
                    str(Path(source).resolve()), str(Path(target).resolve()),
                    parameters=parameters or {}, kernel_name="python3", language="python",
                    resources={"metadata": {"path": str(Path(cwd or Path(source).parent)
                                                        .resolve())}},
                    progress_bar=False, log_output=False,
                    execution_timeout=timeout, start_timeout=KERNEL_START_TIMEOUT,
                    kernel_manager_class=kernel_manager_class(
                        str(kernel_log) if kernel_log else None, threads))
        except CellTimeoutError as exc:
            raise CellTimeout(_timeout_message(Path(source).name, _timed_out_cell(source, exc),
                                               timeout)) from None
        except RuntimeError as exc:
            # no cell has run when the kernel dies before its first reply: start it again
            if _KERNEL_DIED not in str(exc) or attempt == KERNEL_START_RETRIES:
                raise


def _timed_out_cell(source, exc):
    """(number among the source notebook's code cells, first line) of the cell that timed out,
    found from the source preview nbclient puts in its message; (None, "") if not found."""
    parts = str(exc).split("-------------------")
    preview = parts[1].strip() if len(parts) >= 3 else ""
    try:
        nb = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, ""
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for i, cell in enumerate(code):
        src = "".join(cell.get("source", "")).strip()
        lines = src.split("\n")
        if preview and (src == preview or (len(lines) >= 11 and preview.startswith(str(lines[:5])))):
            return i + 1, lines[0]
    return None, ""


def _timeout_message(name, cell, timeout):
    index, first = cell if cell else (None, "")
    where = f"code cell {index} ({first[:60]!r})" if index else "a cell"
    return (f"{where} of {name} ran longer than the {timeout:g} s timeout and was stopped: "
            "raise --timeout if the data are large, or look for a hang in that cell.")


def widget_cells(nb):
    """Code cells of a notebook (dict or NotebookNode) whose stored outputs display a widget."""
    return [c for c in nb["cells"] if c["cell_type"] == "code"
            and any(WIDGET_MIME in o.get("data", {}) for o in c.get("outputs", []))]


def tag_widget_cells(nb):
    """Tag every widget-displaying cell ``nbval-ignore-output``; return how many were newly tagged."""
    added = 0
    for cell in widget_cells(nb):
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if IGNORE_OUTPUT_TAG not in tags:
            tags.append(IGNORE_OUTPUT_TAG)
            added += 1
    return added


#: Seconds a cell of ``make notebooks`` may run (the default demos need about a minute per notebook).
IN_PLACE_CELL_TIMEOUT = 1800


def execute_in_place(folder=None, timeout=IN_PLACE_CELL_TIMEOUT):
    """Re-execute the numbered notebooks in place on their default parameters (``make notebooks``).

    Uses nbclient directly (no papermill metadata, no injected cell) so the committed notebooks
    stay clean; a notebook that fails is left unchanged and reported. Cells that display a widget
    are tagged ``nbval-ignore-output``: without a browser, a widget's output goes to a different
    place under nbval than under nbclient, so it cannot be compared (the static figure after it is).

    Returns
    -------
    list of (str, str, float)
        ``(notebook name, "ok" or the error line, seconds)``.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    report = []
    for path in find_notebooks(folder):
        nb = nbformat.read(path, as_version=4)
        kernelspec = nb.metadata.get("kernelspec")
        print(f"{path.name} ...", flush=True)
        t = time.perf_counter()
        try:
            with _kernel_environment():
                NotebookClient(nb, timeout=timeout, kernel_name="python3",
                               kernel_manager_class=kernel_manager_class(),
                               resources={"metadata": {"path": str(path.parent)}}).execute()
            status = "ok"
        except CellExecutionError as exc:
            status = " ".join(f"{exc.ename}: {exc.evalue}".split())
        except CellTimeoutError:
            status = f"CellTimeout: a cell of {path.name} ran longer than {timeout} s"
        seconds = time.perf_counter() - t
        if status == "ok":
            tag_widget_cells(nb)
            nb.metadata["kernelspec"] = kernelspec or {
                "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
            tmp = path.with_name(f".{path.name}.tmp")
            nbformat.write(nb, tmp)
            tmp.replace(path)
        print(f"{path.name}: {status} ({seconds:.1f} s)", flush=True)
        report.append((path.name, status, seconds))
    return report
