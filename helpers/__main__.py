"""Command line: ``python -m helpers run|make-demo|notebooks|versions``.

    python -m helpers run demo:hea6 data/my_map.emd --out runs/today -p N_CLUSTERS 3 --jobs 2
    python -m helpers run a.emd b.emd --out /shared/runs/x --scheduler tcp://10.0.0.5:8786
    python -m helpers make-demo [--out data/demo]
    python -m helpers notebooks          # re-execute notebooks/NN_*.ipynb in place (make notebooks)
    python -m helpers versions

Bad input is reported as one line (no traceback unless ``--debug``) with exit status 2.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from .errors import HEAError

# Each command imports what it runs when it runs: ``--help`` and argument errors answer at once,
# without importing the analysis stack (HyperSpy, scikit-learn, numba).


def _parser():
    p = argparse.ArgumentParser(prog="python -m helpers",
                                description="STEM-EDX high-entropy-material analysis suite.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run", help="run every numbered notebook headless on one or more inputs",
        description="Run notebooks/NN_*.ipynb in order on each INPUT through papermill. "
                    "Results go to OUT/<name>/{notebooks,figures,results}.",
        epilog="INPUT is a file path or a demo name: demo:hea6, demo:hea7, demo:hea7_coreshell, "
               "optionally with options, e.g. 'demo:hea6?size=96&dose=40&seed=0' (quote it). "
               "Exit status: 0 all inputs complete; 1 something unexpected (a bug, a cell "
               "timeout) stopped an input; 2 bad input stopped an input before any notebook "
               "finished; 3 bad input stopped an input part-way (earlier results kept).")
    r.add_argument("inputs", nargs="+", metavar="INPUT")
    r.add_argument("--out", required=True, metavar="DIR", help="run folder (created if missing)")
    r.add_argument("--elements", nargs="+", metavar="E",
                   help="element symbols, e.g. --elements Cu Zn Sn S (default: from the file)")
    r.add_argument("--beam-energy", type=float, metavar="KV",
                   help="beam energy in kV (default: from the file)")
    r.add_argument("--signal", type=int, metavar="N",
                   help="which spectrum image of a file holding several (its number, as printed "
                        "when loading; default: the largest)")
    r.add_argument("--kfactors", metavar="FILE",
                   help="k-factor CSV (element,line,k_factor,k_factor_err) replacing the "
                        "package's table for the elements it lists")
    r.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                   metavar=("NAME", "VALUE"),
                   help="any notebook parameter, e.g. -p N_CLUSTERS 3 (value parsed as a Python "
                        "literal when possible); repeatable")
    r.add_argument("--jobs", type=int, default=1, metavar="N", help="inputs run in parallel")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="run each input as a task on a dask.distributed cluster: tcp://HOST:PORT "
                        "of a running scheduler, or local:N for N workers on this machine; "
                        "--out must be on storage every worker shares (replaces --jobs)")
    r.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="seconds allowed per notebook cell (default: no limit)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace existing OUT/<name> folders (otherwise refused)")
    r.add_argument("--notebooks", metavar="FOLDER",
                   help="folder of the NN_*.ipynb notebooks (default: the project's notebooks/)")
    r.add_argument("--debug", action="store_true", help="show full tracebacks")

    d = sub.add_parser("make-demo", help="write the simulated demo data sets with ground truth")
    d.add_argument("--out", default="data/demo", metavar="DIR")
    d.add_argument("--debug", action="store_true")

    n = sub.add_parser("notebooks", help="re-execute notebooks/NN_*.ipynb in place on their "
                                         "default parameters (fresh outputs for nbval)")
    n.add_argument("--notebooks", metavar="FOLDER")
    n.add_argument("--debug", action="store_true")

    v = sub.add_parser("versions", help="print the versions of the packages in use")
    v.add_argument("--debug", action="store_true")
    return p


def _run(args):
    from . import runner

    common = dict(elements=args.elements, beam_energy=args.beam_energy, kfactors=args.kfactors,
                  params=args.parameter + ([("SIGNAL", str(args.signal))]
                                           if args.signal is not None else []),
                  notebooks_dir=args.notebooks, overwrite=args.overwrite, debug=args.debug,
                  timeout=args.timeout)
    if args.scheduler:
        from .distributed import run_distributed

        results = run_distributed(args.inputs, args.out, args.scheduler, **common)
    else:
        results = runner.run(args.inputs, args.out, jobs=args.jobs, **common)
    print()
    print(runner.format_table(results))
    for r in [r for r in results if r["status"] != "ok"]:
        word = "PARTIAL" if r["status"] == "partial" else "FAILED"
        print(f"{word} {r['name']} ({r['input']}): {r['message']}", file=sys.stderr)
        if args.debug and r.get("traceback"):
            print(r["traceback"], file=sys.stderr)
        if r["status"] == "partial":
            print(f"       the notebooks before it completed; their results are in {r['folder']}",
                  file=sys.stderr)
        elif r["folder"].endswith(".failed"):
            print(f"       what it wrote is kept in {r['folder']}", file=sys.stderr)
    return runner.exit_code(results)


def _make_demo(args):
    from .demo import write_demo_data

    folder = Path(args.out)
    write_demo_data(folder)
    print(f"demo data written to {folder}/")
    return 0


def _notebooks(args):
    from .execution import execute_in_place

    report = execute_in_place(args.notebooks)
    bad = [r for r in report if r[1] != "ok"]
    for name, status, _ in bad:
        print(f"FAILED {name}: {status} (left unchanged)", file=sys.stderr)
    return 1 if bad else 0


def _versions(args):
    import helpers

    helpers.show_versions()
    return 0


def main(argv=None):
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    command = {"run": _run, "make-demo": _make_demo, "notebooks": _notebooks,
               "versions": _versions}[args.command]
    try:
        return command(args)
    except HEAError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished inputs are in place; unfinished ones left no results.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
