"""Headless batch runner: every numbered notebook, through papermill, for one or more inputs.

``python -m helpers run INPUT [INPUT ...] --out DIR`` executes ``notebooks/NN_*.ipynb`` (in order,
or side by side where their declared needs allow: :mod:`helpers.notebook_graph`) for each input
with the common parameters injected (``DATA``, ``ELEMENTS``, ``BEAM_ENERGY``, ``KFACTORS``,
``OUTPUT_DIR`` and any ``-p NAME VALUE``), and leaves ``DIR/<name>/notebooks/``
(executed copies), ``figures/`` and ``results/`` (the notebooks' files, ``summary.json``).

Safety rules: inputs are only read; an existing ``DIR/<name>`` is replaced only with
``overwrite=True``; each input is executed into a hidden sibling folder and moved into place at the
end, so an interrupted or failed run never touches earlier results (a failed one is kept as
``DIR/<name>.failed``). Inputs are independent: a failing input is reported, the others finish.
:func:`run` runs inputs on this machine; :mod:`helpers.distributed` on a dask cluster.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

from .errors import HEAError, InputFileError, OutputError, ParameterError
from .execution import (CellTimeout, declared_parameters, execute_notebook, find_notebooks,
                        interrupt_kernels, parse_value)
from .notebook_graph import run_graph, usable_cores
from .paths import notebooks_dir as default_notebooks_dir
from .progress import BatchProgress, notify
from .run_check import check_results  # noqa: F401  (also runner.check_results)
from .xray.kfactors import read_kfactor_csv

_DEMO = re.compile(r"^demo:([A-Za-z0-9_]+)(?:\?(.*))?$")


# --------------------------------------------------------------------------- inputs

def input_name(spec):
    """Folder name of an input: the file stem, or the demo name plus its options.

    ``"demo:hea6"`` -> ``"hea6"``; ``"demo:hea6?size=96&dose=40"`` -> ``"hea6_size96_dose40"``;
    ``"/data/map_01.emd"`` -> ``"map_01"``.
    """
    m = _DEMO.match(spec)
    if m:
        name = m.group(1)
        for part in filter(None, (m.group(2) or "").split("&")):
            key, _, value = part.partition("=")
            name += f"_{key}{value}"
    else:
        name = Path(spec).stem
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name) or "input"


def unique_names(specs):
    """Input names made unique by appending ``_2``, ``_3``... to repeats, in input order."""
    names, seen = [], {}
    for spec in specs:
        base = input_name(spec)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def resolve_input(spec):
    """The value given to the notebooks' ``DATA``: an absolute path, or the demo spec unchanged.

    Raises
    ------
    InputFileError
        When a path does not exist or is a folder.
    """
    if spec.startswith("demo:"):
        if not _DEMO.match(spec):
            raise InputFileError(f"Bad demo name {spec!r}: write it as demo:NAME or "
                                 "demo:NAME?size=96&dose=40&seed=0 (e.g. demo:hea6).")
        return spec
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputFileError(f"Input file {spec} does not exist: check the path, or use a demo "
                             "name such as demo:hea6.")
    if path.is_dir():
        raise InputFileError(f"Input {spec} is a folder: give the spectrum-image file itself "
                             "(.emd, .bcf, .hspy, ...).")
    return str(path.resolve())


# --------------------------------------------------------------------------- one input

def _declared_by_notebook(notebooks):
    return {nb.name: declared_parameters(nb) for nb in notebooks}


def _hea_error_names():
    names, todo = set(), [HEAError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


def run_input(spec, name, out, notebooks, injected, overwrite=False, debug=False, versions=None,
              declared=None, timeout=None, notebook_jobs=1, events=None):
    """Run every notebook on one input; never raises (the outcome is in the returned dict).

    Parameters
    ----------
    spec : str
        The input as given (path or demo name).
    name : str
        Its folder name under ``out``.
    out : Path
        The run folder.
    notebooks : list of Path
        Notebooks to execute in order.
    injected : dict
        Parameters for every notebook (``DATA`` and ``OUTPUT_DIR`` are added here); each notebook
        receives only the names its ``parameters`` cell declares.
    overwrite : bool
        Replace an existing ``out/name``.
    debug : bool
        Keep full tracebacks in the result.
    versions : dict, optional
        Package versions for summary.json (default ``helpers.show_versions``).
    declared : dict, optional
        ``{notebook name: declared parameters}`` if already read (default: read them here).
    timeout : float, optional
        Seconds allowed per cell (default: no limit).
    notebook_jobs : int
        Notebooks of this input run side by side when their declared needs allow
        (:mod:`helpers.notebook_graph`); 1 = one after the other.
    events : queue, optional
        Progress events (:func:`helpers.progress.notify`); None: progress printed as lines.

    Returns
    -------
    dict
        ``name``, ``input``, ``status`` ("ok" / "failed"), ``kind`` ("input" for a HEAError,
        "error" otherwise), ``message``, ``seconds``, ``folder``, ``problems``, ``ari``.
    """
    out = Path(out)
    final = out / name
    staging = out / f".{name}.tmp-{os.getpid()}-{int(time.time() * 1000)}"
    result = {"name": name, "input": spec, "status": "failed", "kind": "error", "message": "",
              "seconds": 0.0, "folder": str(final), "problems": [], "ari": None}
    t0 = time.perf_counter()
    # filled in as notebooks run: the one running, seconds and parameters of each finished one
    progress = {"seconds": {}, "notebook": None, "parameters": {}}
    run = None
    try:
        data = resolve_input(spec)
        if final.exists() and not overwrite:
            raise OutputError(f"Run folder {final} already exists: pass --overwrite to replace it "
                              "or choose another --out.")
        for sub in ("notebooks", "figures", "results"):
            (staging / sub).mkdir(parents=True, exist_ok=True)
        params = dict(injected, DATA=data, OUTPUT_DIR=str(staging))
        run = dict(name=name, input=spec, data=data, notebooks=[nb.name for nb in notebooks],
                   injected=dict(params, OUTPUT_DIR=str(final)), t0=t0,
                   versions=versions if versions is not None else _versions())
        _run_notebooks(name, notebooks, declared or _declared_by_notebook(notebooks), params,
                       staging, final, timeout, progress, events, notebook_jobs)
        _finish(staging, final, result, run, progress)
    except BaseException as exc:  # noqa: BLE001 - every failure is reported per input
        result.update(_describe_failure(exc, progress["notebook"], debug))
        partial = run is not None and progress["seconds"] and not isinstance(exc, KeyboardInterrupt)
        if partial:   # earlier notebooks finished: keep every output they wrote
            target = out / f"{name}.partial" if final.exists() else final
            try:
                _finish(staging, target, result, run, progress, failure=result)
            except OSError:
                _keep_failed(staging, out / f"{name}.failed", result)
        else:
            _keep_failed(staging, out / f"{name}.failed", result)
        if isinstance(exc, KeyboardInterrupt):
            raise
    finally:
        result["seconds"] = round(time.perf_counter() - t0, 1)
        result["stage_seconds"] = progress["seconds"]
        notify(events, "skip", name, None, len(notebooks) - len(progress["seconds"]))
    return result


def _finish(staging, target, result, run, progress, failure=None):
    """Check the results, write ``summary.json`` and move the staging folder to ``target``.

    ``failure`` (the failed input's result) makes it a *partial* run: the notebooks that
    finished keep their outputs, and the summary says which notebook failed and why.
    """
    check = check_results(staging / "results")
    status = "ok" if failure is None else "partial"
    # in notebook order, whatever order notebooks running side by side finished in
    stems = [Path(n).stem for n in run["notebooks"]]
    done = [k for k in stems if k in progress["seconds"]]
    summary = {
        "name": run["name"], "input": run["input"], "data": run["data"], "status": status,
        "notebooks": run["notebooks"],
        "completed": done,
        "parameters": {k: _jsonable(progress["parameters"][k]) for k in stems
                       if k in progress["parameters"]},
        "injected": {k: _jsonable(v) for k, v in run["injected"].items()},
        "versions": run["versions"],
        "seconds": {k: progress["seconds"][k] for k in done},
        "seconds_total": round(time.perf_counter() - run["t0"], 2),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **({} if failure is None else {"failed_notebook": progress["notebook"],
                                       "message": failure["message"]}),
        **check,
    }
    (staging / "results" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n",
                                                      encoding="utf-8")
    _move_into_place(staging, target)
    result.update(problems=check["problems"], ari=check.get("ari"), folder=str(target),
                  status=status)
    if failure is None:
        result.update(kind="", message="")


def _run_notebooks(name, notebooks, declared, params, staging, final, timeout, progress,
                   events=None, notebook_jobs=1):
    """Execute ``notebooks`` into ``staging/notebooks``, up to ``notebook_jobs`` at a time as
    their declared needs allow (:mod:`helpers.notebook_graph`); each gets the parameters its
    ``parameters`` cell declares. ``progress`` records the values each ran with (``OUTPUT_DIR``
    as the final folder), the notebook that failed and the seconds of each finished one."""
    effective = progress["parameters"]
    # side by side, each kernel gets its share of the cores for BLAS (None: the default)
    threads = max(1, usable_cores() // notebook_jobs) if notebook_jobs > 1 else None

    def one(nb):
        names = declared[nb.name]
        mine = params if names is None else {k: v for k, v in params.items() if k in names}
        effective[nb.stem] = {**(names or {}), **mine}
        if "OUTPUT_DIR" in effective[nb.stem]:
            effective[nb.stem]["OUTPUT_DIR"] = str(final)
        target = staging / "notebooks" / nb.name
        notify(events, "start", name, nb.name)
        t = time.perf_counter()
        execute_notebook(nb, target, parameters=mine, cwd=nb.parent, timeout=timeout,
                         kernel_log=staging / "kernel.log", threads=threads)
        progress["seconds"][nb.stem] = round(time.perf_counter() - t, 2)
        notify(events, "done", name, nb.name, progress["seconds"][nb.stem])
        _point_injected_cell_at(target, staging, final)

    try:
        run_graph(notebooks, one, max_parallel=notebook_jobs, on_interrupt=interrupt_kernels)
    except BaseException as exc:
        progress["notebook"] = getattr(exc, "failed_notebook", None)
        raise
    return effective


def _keep_failed(staging, failed_dir, result):
    """Keep a failed input's staging folder as ``<name>.failed`` (replacing an older one)."""
    if not staging.exists():
        return
    shutil.rmtree(failed_dir, ignore_errors=True)
    try:
        staging.rename(failed_dir)
        result["folder"] = str(failed_dir)
    except OSError:
        pass


def _describe_failure(exc, notebook, debug):
    from papermill.exceptions import PapermillExecutionError

    where = f" (in {notebook})" if notebook else ""
    if isinstance(exc, PapermillExecutionError):
        kind = "input" if exc.ename in _hea_error_names() else "error"
        message = f"{exc.ename}: {exc.evalue}{where}"
        tb = str(exc)
    elif isinstance(exc, CellTimeout):
        kind, message, tb = "timeout", f"CellTimeout: {exc}", ""
    elif isinstance(exc, HEAError):
        kind, message, tb = "input", f"{type(exc).__name__}: {exc}", traceback.format_exc()
    elif isinstance(exc, KeyboardInterrupt):
        kind, message, tb = "error", f"interrupted{where}", ""
    else:
        kind = "error"
        message = f"{type(exc).__name__}: {exc}{where}"
        tb = traceback.format_exc()
    return {"kind": kind, "message": " ".join(message.split()), **({"traceback": tb} if debug else {})}


def _point_injected_cell_at(notebook, staging, final):
    """Rewrite the staging path in the executed notebook's injected-parameters cell to the final
    folder, so re-running that notebook writes where its results now live."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    changed = False
    for cell in nb.get("cells", []):
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell.get("source", ""))
            new = src.replace(str(staging), str(final))
            changed |= new != src
            cell["source"] = new
    if changed:
        notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _move_into_place(staging, final):
    """Swap the finished staging folder in; the old folder is removed only after the swap."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def _versions():
    import helpers

    return helpers.show_versions(print_out=False)


# --------------------------------------------------------------------------- whole run

def prepare_output(out):
    """Create the run folder if needed and prove it is writable.

    Raises
    ------
    OutputError
        When the folder cannot be created or written.
    """
    out = Path(out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"Cannot write to output folder {out} ({exc.strerror or exc}): choose "
                          "another --out or fix its permissions.") from None
    return out.resolve()


def build_parameters(notebooks, elements=None, beam_energy=None, kfactors=None, params=None,
                     declared=None):
    """The parameters to inject, checked against what the notebooks declare.

    Parameters
    ----------
    notebooks : list of Path
    elements : list of str, optional
    beam_energy : float, optional
    kfactors : str or Path, optional
        k-factor CSV; validated here (KFactorError when unreadable).
    params : dict or list of (str, str), optional
        Extra ``NAME: value`` pairs; string values are parsed as Python literals when possible.
    declared : dict, optional
        ``{notebook name: declared parameters}`` if already read.

    Raises
    ------
    ParameterError
        When a name is declared by no notebook (papermill would silently ignore it).
    """
    injected = {}
    if elements:
        injected["ELEMENTS"] = [e for item in elements for e in str(item).replace(",", " ").split()]
    if beam_energy is not None:
        injected["BEAM_ENERGY"] = float(beam_energy)
    if kfactors is not None:
        read_kfactor_csv(kfactors)  # raises KFactorError with the fix
        injected["KFACTORS"] = str(Path(kfactors).expanduser().resolve())
    items = params.items() if isinstance(params, dict) else (params or [])
    for key, value in items:
        if key in ("DATA", "OUTPUT_DIR"):
            raise ParameterError(f"-p {key} is set by the runner: give inputs as arguments and "
                                 "the run folder with --out.")
        injected[key] = parse_value(value) if isinstance(value, str) else value
    known = set()
    for names in (declared or _declared_by_notebook(notebooks)).values():
        known |= set(names or {})
    unknown = [k for k in injected if k not in known]
    if unknown and notebooks:
        raise ParameterError(
            f"Unknown parameter {', '.join(unknown)}: no notebook declares it. Known names: "
            f"{', '.join(sorted(known)) or '(none)'}.")
    return injected


def plan_run(inputs, out, elements=None, beam_energy=None, kfactors=None, params=None,
             notebooks_dir=None, jobs=1, overwrite=False, timeout=None):
    """Check a batch before anything runs and prepare its run folder (the first half of
    :func:`run`, shared with :func:`helpers.distributed.run_distributed`).

    Parameters
    ----------
    inputs : list of str
        File paths or demo names (``demo:hea6?size=96``).
    out : str or Path
        Run folder; one sub-folder per input.
    elements, beam_energy, kfactors, params
        See :func:`build_parameters`.
    notebooks_dir : str or Path, optional
        Folder of the ``NN_*.ipynb`` notebooks; default the project's ``notebooks/``.
    jobs, overwrite, timeout
        Inputs run in parallel; replace existing ``out/<name>``; seconds allowed per cell.

    Returns
    -------
    dict
        ``out`` (resolved), ``notebooks``, ``declared``, ``injected``, ``names``, ``versions``,
        ``notebook_jobs`` (notebooks of one input run side by side: the usable cores shared
        among ``jobs`` inputs).

    Raises
    ------
    HEAError
        No notebooks, bad output folder, unknown parameter, existing run folders without
        ``overwrite``; per-input problems are in the results instead.
    """
    if not inputs:
        raise InputFileError("No input given: name a spectrum-image file or a demo such as "
                             "demo:hea6.")
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}.")
    if timeout is not None and timeout <= 0:
        raise ParameterError(f"--timeout must be a positive number of seconds, got {timeout}.")
    notebooks = find_notebooks(notebooks_dir)
    if not notebooks:
        raise InputFileError(f"No notebooks NN_*.ipynb in {notebooks_dir or default_notebooks_dir()}: "
                             "nothing to run.")
    declared = _declared_by_notebook(notebooks)
    injected = build_parameters(notebooks, elements, beam_energy, kfactors, params, declared)
    out = prepare_output(out)
    names = unique_names(inputs)
    existing = [n for n in names if (out / n).exists()]
    if existing and not overwrite:
        raise OutputError(f"Run folder {out / existing[0]} already exists: pass --overwrite to "
                          "replace it or choose another --out.")
    return dict(out=out, notebooks=notebooks, declared=declared, injected=injected, names=names,
                versions=_versions(), notebook_jobs=max(1, usable_cores() // jobs))


def input_tasks(plan, inputs, overwrite=False, debug=False, timeout=None, events=None,
                notebook_jobs=None):
    """The arguments of :func:`run_input` for every input of a :func:`plan_run` plan (``events``
    last); ``notebook_jobs`` None: the plan's."""
    p = plan
    nj = p["notebook_jobs"] if notebook_jobs is None else notebook_jobs
    return [(spec, name, p["out"], p["notebooks"], p["injected"], overwrite, debug, p["versions"],
             p["declared"], timeout, nj, events) for spec, name in zip(inputs, p["names"])]


def run(inputs, out, elements=None, beam_energy=None, kfactors=None, params=None,
        notebooks_dir=None, jobs=1, overwrite=False, debug=False, timeout=None):
    """Run the notebook suite on several inputs, each independently, on this machine.

    Parameters are :func:`plan_run`'s and ``debug`` (keep tracebacks); ``jobs`` inputs run in
    parallel processes. Returns one dict per input (:func:`run_input`); :func:`finish_run` closes.
    """
    plan = plan_run(inputs, out, elements, beam_energy, kfactors, params, notebooks_dir, jobs,
                    overwrite, timeout)
    parallel = jobs > 1 and len(plan["names"]) > 1
    with BatchProgress(len(plan["names"]), len(plan["notebooks"]), parallel=parallel) as bar:
        tasks = input_tasks(plan, inputs, overwrite, debug, timeout, bar.queue)
        if not parallel:
            results = [run_input(*t) for t in tasks]
        else:
            with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)),
                                     mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(run_input, *t) for t in tasks]
                results = [f.result() for f in futures]
    finish_run(plan["out"], results)
    return results


def finish_run(out, results):
    """Close a batch: ``out/run_summary.json``, then the report ``out/index.html``
    (:mod:`helpers.report`, every input of the folder); a report that cannot be written is a
    warning, never a failed run. Returns the report's path (None when not written)."""
    from .report import write_report
    write_run_summary(out, results)
    try:
        path = write_report(out)
    except Exception as exc:  # noqa: BLE001 - the results are complete without the report
        print(f"warning: the report {Path(out) / 'index.html'} was not written: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    print(f"report: {path}", flush=True)
    return path


#: The batch's own summary, at the run folder's root: one entry per input of the last run.
RUN_SUMMARY = "run_summary.json"


def write_run_summary(out, results):
    """``out/run_summary.json``: status, message, folder and seconds of every input, and the
    exit status (:func:`exit_code`). Inputs of earlier runs into the same folder are kept."""
    path = Path(out) / RUN_SUMMARY
    try:
        old = json.loads(path.read_text(encoding="utf-8")).get("inputs", {})
    except (OSError, ValueError):
        old = {}
    keep = ("input", "status", "kind", "message", "folder", "seconds", "ari", "problems", "attempts")
    old.update({r["name"]: {k: r[k] for k in keep if k in r} for r in results})
    summary = {"finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "exit_status": exit_code(results), "inputs": old}
    tmp = path.with_name(f".{RUN_SUMMARY}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def format_table(results):
    """A plain-text table closing a run: one row per input."""
    rows = [("input", "status", "seconds", "ARI", "folder / message")]
    for r in results:
        ari = "-" if r.get("ari") is None else f"{r['ari']:.3f}"
        if r["status"] == "ok":
            note = r["folder"] + (f"  (warning: {'; '.join(r['problems'])})" if r["problems"] else "")
        elif r["status"] == "partial":
            note = f"{r['message']}; earlier results in {r['folder']}"
        else:
            note = r["message"]
        rows.append((r["name"], r["status"], f"{r['seconds']:.1f}", ari, note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def exit_code(results):
    """The run's exit status: 0 every input complete; 1 something unexpected stopped an input
    (a bug, a cell timeout), whether or not earlier notebooks had finished; 2 bad input stopped
    an input before any notebook finished (a one-line message says what to do); 3 bad input
    stopped an input part-way (the earlier notebooks' outputs are kept: a partial run). The
    first that applies, in the order 1, 2, 3, 0."""
    stopped = [r for r in results if r["status"] != "ok"]
    if any(r["kind"] != "input" for r in stopped):
        return 1
    if any(r["status"] == "failed" for r in stopped):
        return 2
    return 3 if any(r["status"] == "partial" for r in results) else 0
