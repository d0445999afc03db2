"""Batch runs on a dask.distributed cluster: ``python -m helpers run ... --scheduler ADDRESS``.

Each input becomes one task (a dask future) that runs :func:`helpers.runner.run_input` on a
worker, exactly as the local runner does: the staging folder, the atomic move into place, the
partial and failed folders, ``summary.json``; this process then writes ``run_summary.json`` and
the report ``index.html`` (:func:`helpers.runner.finish_run`). ``ADDRESS`` is an existing
scheduler (``tcp://host:8786``, e.g. one started by dask-jobqueue) or ``local:N``, a
:class:`distributed.LocalCluster` of N one-thread worker processes on this machine.

What the workers need: the same Python environment (this package importable, the same
notebooks folder and input files at the same paths) and the run folder on storage they all
share at the same path; the folder is checked from every connected worker before any task is
sent (:func:`check_workers_can_write`).

Failures: a task whose worker dies (killed, out of memory, node lost) is run again once on
another worker (``distributed.scheduler.allowed-failures: 1`` and ``worker-saturation: 1.0`` on a
``local:N`` cluster; set them in an external scheduler's configuration), a task that raises is
retried once (``retries=1``);
after that the input is reported failed and the other inputs finish. Inputs that fail inside
their notebooks are not retried: :func:`~helpers.runner.run_input` reports them (partial/failed).

Chunked computations on lazy maps (binning, features, element maps, cluster sums) call dask
without naming a scheduler, so inside a process with an active :class:`distributed.Client`
they run on its cluster (:func:`active_client`).
"""
from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path

from . import runner
from .errors import OutputError, ParameterError, SchedulerError
from .progress import BatchProgress

#: How many times a task is run again after its worker died, or after it raised.
RETRIES = 1
_LOCAL = re.compile(r"^local:(\d+)$")
_REMOTE = re.compile(r"^(?:(?:tcp|tls|ucx|ws|wss)://)?[A-Za-z0-9_.\-\[\]:]+:\d+/?$")


def parse_scheduler(address):
    """``("local", n_workers)`` for ``local:N``, else ``("remote", address)``.

    Raises
    ------
    ParameterError
        ``local:N`` with N not a positive integer.
    SchedulerError
        An address that is not ``[protocol://]host:port``.
    """
    text = str(address).strip()
    if text.startswith("local"):
        m = _LOCAL.match(text)
        if not m or int(m.group(1)) < 1:
            raise ParameterError(f"--scheduler {address!r}: write local:N with N >= 1 workers "
                                 "(e.g. local:2), or give a scheduler address tcp://HOST:PORT.")
        return "local", int(m.group(1))
    if not _REMOTE.match(text):
        raise SchedulerError(f"Bad scheduler address {address!r}: give tcp://HOST:PORT as the "
                             "dask scheduler prints it (e.g. tcp://10.0.0.5:8786), or local:N "
                             "for N workers on this machine.")
    return "remote", text


def connect(address, timeout=30, **cluster_kwargs):
    """A :class:`distributed.Client` for ``address`` (see :func:`parse_scheduler`).

    Parameters
    ----------
    address : str
        ``tcp://host:port`` of a running scheduler, or ``local:N``.
    timeout : float
        Seconds to wait for the scheduler (and for a first worker).
    **cluster_kwargs
        Passed to :class:`distributed.LocalCluster` for ``local:N`` (e.g. ``memory_limit``).

    Returns
    -------
    client : distributed.Client
    cluster : distributed.LocalCluster or None
        The cluster started here (close it after the client), None for an external scheduler.

    Raises
    ------
    SchedulerError
        When the scheduler cannot be reached, or has no worker within ``timeout``.
    """
    import dask
    from distributed import Client, LocalCluster

    kind, value = parse_scheduler(address)
    if kind == "local":
        # one input per worker thread at a time: with the default saturation (1.1) a worker
        # also holds a queued input, and a worker that dies takes that one's attempt with it
        with dask.config.set({"distributed.scheduler.allowed-failures": RETRIES,
                              "distributed.scheduler.worker-saturation": 1.0}):
            cluster = LocalCluster(**{"n_workers": value, "threads_per_worker": 1,
                                      "processes": True, "dashboard_address": None,
                                      **cluster_kwargs})
        return Client(cluster), cluster
    try:
        client = Client(value, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(f"Cannot reach the dask scheduler at {value} within {timeout:g} s "
                             f"({type(exc).__name__}): check the address, that the scheduler "
                             "is running, and that this machine may connect to its port.") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        client.close()
        raise SchedulerError(f"The dask scheduler at {value} has no worker after {timeout:g} s: "
                             "start workers (dask worker ADDRESS, or cluster.scale(...) with "
                             "dask-jobqueue) and run again.") from None
    return client, None


def active_client():
    """The :class:`distributed.Client` dask computations of this process go to, or None."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _probe_folder(folder, token):
    """On a worker: None when ``folder`` is the client's folder and writable, else why not."""
    import os
    import socket

    folder = Path(folder)
    try:
        if (folder / token).read_text(encoding="utf-8") != token:
            raise OSError("not the same folder")
    except OSError:
        return "it does not see the folder this machine created (not shared storage)"
    probe = folder / f".write-test-{socket.gethostname()}-{os.getpid()}"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return f"it cannot write there ({exc.strerror or exc})"
    return None


def check_workers_can_write(client, out):
    """Check that every connected worker sees ``out`` (the same folder) and can write in it.

    Raises
    ------
    OutputError
        Naming the first worker that cannot, and what to do.
    """
    out = Path(out)
    token = f".hea-shared-{uuid.uuid4().hex}"
    (out / token).write_text(token, encoding="utf-8")
    try:
        answers = client.run(_probe_folder, str(out), token)
    finally:
        (out / token).unlink(missing_ok=True)
    bad = {worker: why for worker, why in answers.items() if why}
    if bad:
        worker, why = next(iter(bad.items()))
        more = f" (and {len(bad) - 1} other workers)" if len(bad) > 1 else ""
        raise OutputError(f"Run folder {out} cannot be used by worker {worker}{more}: {why}. "
                          "With --scheduler, --out must be on storage every worker shares at the "
                          "same path (a network or cluster file system): choose such a folder.")


class WorkerEvents:
    """The ``events`` of :func:`helpers.runner.run_input` on a worker: each progress event goes
    to the scheduler's event log under ``topic`` (:meth:`distributed.Worker.log_event`), where
    the client subscribed to it draws the batch bar. A lost event never fails an input."""

    def __init__(self, topic):
        self.topic = topic

    def put(self, event):
        """Send one ``(kind, name, notebook, info)`` event."""
        try:
            from distributed import get_worker

            get_worker().log_event(self.topic, list(event))
        except Exception:  # noqa: BLE001 - progress is for people watching, never fatal
            pass


def _run_on_worker(*task):
    """The task of one input on a worker: announce the attempt, then run its notebooks."""
    events = task[-1]
    events.put(("attempt", task[1], None, None))
    return runner.run_input(*task)


class _Tracker:
    """Client side: forwards the workers' events to the batch bar and counts attempts."""

    def __init__(self, queue):
        self.queue, self.attempts, self.done = queue, {}, {}

    def handle(self, event):
        kind, name, notebook, info = event[1]
        if kind == "attempt":
            self.attempts[name] = self.attempts.get(name, 0) + 1
            if self.done.get(name):   # a retry: its notebooks run again
                self.queue.put(("skip", name, None, -self.done[name]))
            self.done[name] = 0
            return
        if kind == "done":
            self.done[name] = self.done.get(name, 0) + 1
        self.queue.put((kind, name, notebook, info))


def _lost_input(spec, name, out, exc, since):
    """The result of an input whose task failed on the cluster (its workers died).

    Its newest staging folder of this batch, if any, is kept as ``<name>.failed`` (the runner's
    rule for an input that stopped before finishing)."""
    result = {"name": name, "input": spec, "status": "failed", "kind": "error",
              "message": " ".join(f"worker lost or task failed on the cluster after "
                                  f"{RETRIES + 1} attempts: {type(exc).__name__}: {exc}".split()),
              "seconds": 0.0, "folder": str(out / name), "problems": [], "ari": None}
    staging = _attempts(out, name, since)
    if staging:
        runner._keep_failed(staging[-1], out / f"{name}.failed", result)
    _clear_dead_attempts(out, name, since)
    return result


def _attempts(out, name, since):
    """Staging folders of ``name`` made by this batch (since ``since``), oldest first."""
    return sorted((p for p in out.glob(f".{name}.tmp-*") if p.stat().st_mtime >= since),
                  key=lambda p: p.stat().st_mtime)


def _clear_dead_attempts(out, name, since):
    """Remove the staging folders this batch's attempts at ``name`` left when their worker
    died: the input is settled (moved into place, or kept as ``<name>.failed``), so they hold
    nothing of the user's and no attempt is still writing to them."""
    for p in _attempts(out, name, since):
        shutil.rmtree(p, ignore_errors=True)


def _submit_and_collect(client, plan, inputs, overwrite, debug, timeout):
    """One future per input, collected as they complete; results in input order."""
    from distributed import as_completed

    topic = f"hea-batch-{uuid.uuid4().hex}"
    out, n_nb, since = plan["out"], len(plan["notebooks"]), time.time() - 1
    results = {}
    with BatchProgress(len(plan["names"]), n_nb) as bar:
        tracker = _Tracker(bar.queue)
        client.subscribe_topic(topic, tracker.handle)
        # one input per worker thread, its notebooks one at a time: the worker's cores are the
        # scheduler's to share out
        tasks = runner.input_tasks(plan, inputs, overwrite, debug, timeout, WorkerEvents(topic),
                                   notebook_jobs=1)
        futures = {client.submit(_run_on_worker, *t, key=f"hea-input-{t[1]}-{topic[-12:]}",
                                 retries=RETRIES, pure=False): t for t in tasks}
        for future in as_completed(futures):
            spec, name = futures[future][:2]
            if future.status == "finished":
                results[name] = future.result()
                _clear_dead_attempts(out, name, since)
            else:
                results[name] = _lost_input(spec, name, out, future.exception(), since)
                bar.queue.put(("skip", name, None, n_nb - tracker.done.get(name, 0)))
            future.release()
        client.unsubscribe_topic(topic)
    for name, result in results.items():
        result["attempts"] = max(1, tracker.attempts.get(name, 1))
    return [results[name] for name in plan["names"]]


def run_distributed(inputs, out, scheduler, elements=None, beam_energy=None, kfactors=None,
                    params=None, notebooks_dir=None, overwrite=False, debug=False, timeout=None,
                    connect_timeout=30, **cluster_kwargs):
    """Run the notebook suite on several inputs, one dask task per input.

    Parameters
    ----------
    inputs, out, elements, beam_energy, kfactors, params, notebooks_dir, overwrite, debug, timeout
        As for :func:`helpers.runner.run`; ``out`` must be on storage every worker shares.
    scheduler : str
        ``tcp://host:port`` of a running dask scheduler, or ``local:N`` (N workers here).
    connect_timeout : float
        Seconds to wait for the scheduler and its first worker.
    **cluster_kwargs
        Passed to :class:`distributed.LocalCluster` for ``local:N``.

    Returns
    -------
    list of dict
        One per input, as :func:`helpers.runner.run_input`, plus ``attempts`` (2 when the input
        ran again after its worker died).

    Raises
    ------
    HEAError
        Problems with the whole run (:func:`helpers.runner.plan_run`), a bad or unreachable
        scheduler (SchedulerError), a run folder the workers cannot use (OutputError).
    """
    parse_scheduler(scheduler)     # a bad address fails before anything is written
    plan = runner.plan_run(inputs, out, elements, beam_energy, kfactors, params, notebooks_dir,
                           1, overwrite, timeout)
    client, cluster = connect(scheduler, connect_timeout, **cluster_kwargs)
    try:
        check_workers_can_write(client, plan["out"])
        results = _submit_and_collect(client, plan, inputs, overwrite, debug, timeout)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    runner.finish_run(plan["out"], results)
    return results
