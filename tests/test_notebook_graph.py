"""Notebooks that declare what they need run side by side; the rest wait (helpers.notebook_graph)."""
import json
import threading
import time
from pathlib import Path

import nbformat
import pytest

from helpers import notebook_graph as G
from helpers import runner
from helpers.paths import notebooks_dir


def _write(folder, stem, needs=None, code="pass", params="OUTPUT_DIR = None"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if needs is not None:
        nb.metadata[G.METADATA_KEY] = {"needs": list(needs)}
    path = Path(folder) / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


def test_undeclared_notebooks_wait_for_every_earlier_one(tmp_path):
    a = _write(tmp_path, "01_a", needs=[])
    b = _write(tmp_path, "02_b")                       # no declaration: after 01
    c = _write(tmp_path, "03_c", needs=["01_a", "09_not_in_run"])
    assert G.notebook_needs([a, b, c]) == {"01_a": set(), "02_b": {"01_a"}, "03_c": {"01_a"}}


def test_the_project_notebooks_declare_their_needs():
    """05 and 06 read the labels and split-half results of 03 and 04; 01-04 only the input."""
    nbs = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    needs = G.notebook_needs(nbs)
    assert all(G.declared_needs(nb) is not None for nb in nbs)
    for stem, need in needs.items():
        expect = {"03_gmm_clustering", "04_umap_hdbscan"} if stem[:2] in ("05", "06") else set()
        assert need == expect, stem


def _fake_run(log, fail=()):
    lock = threading.Lock()

    def run(nb):
        with lock:
            log.append(("start", nb.stem, time.perf_counter()))
        time.sleep(0.3)
        if nb.stem in fail:
            raise RuntimeError(f"{nb.stem} broke")
        with lock:
            log.append(("end", nb.stem, time.perf_counter()))
    return run


def _times(log):
    return {(kind, stem): t for kind, stem, t in log}


def test_independent_notebooks_overlap_and_dependents_wait(tmp_path):
    nbs = [Path(f"{s}.ipynb") for s in ("01_a", "02_b", "03_c", "04_d")]
    needs = {"01_a": set(), "02_b": set(), "03_c": {"01_a", "02_b"}, "04_d": {"01_a", "02_b"}}
    log = []
    G.run_graph(nbs, _fake_run(log), max_parallel=2, needs=needs)
    t = _times(log)
    assert t[("start", "02_b")] < t[("end", "01_a")]              # side by side
    for later in ("03_c", "04_d"):
        assert t[("start", later)] >= max(t[("end", "01_a")], t[("end", "02_b")])
    assert len([e for e in log if e[0] == "end"]) == 4


def test_one_at_a_time_runs_in_order(tmp_path):
    nbs = [Path(f"{s}.ipynb") for s in ("01_a", "02_b", "03_c")]
    log = []
    G.run_graph(nbs, _fake_run(log), max_parallel=1, needs={s.stem: set() for s in nbs})
    assert [stem for kind, stem, _ in log if kind == "start"] == ["01_a", "02_b", "03_c"]
    t = _times(log)
    assert t[("start", "02_b")] >= t[("end", "01_a")]


def test_a_failure_stops_what_needs_it_and_names_the_notebook(tmp_path):
    nbs = [Path(f"{s}.ipynb") for s in ("01_a", "02_b", "03_c")]
    needs = {"01_a": set(), "02_b": set(), "03_c": {"01_a", "02_b"}}
    log = []
    with pytest.raises(RuntimeError, match="01_a broke") as err:
        G.run_graph(nbs, _fake_run(log, fail={"01_a"}), max_parallel=2, needs=needs)
    assert err.value.failed_notebook == "01_a.ipynb"
    started = {stem for kind, stem, _ in log if kind == "start"}
    assert "03_c" not in started                  # never started after the failure
    assert ("end", "02_b") in {(k, s) for k, s, _ in log}   # the one running was let finish


@pytest.mark.slow
@pytest.mark.skipif(G.usable_cores() < 2, reason="needs two cores to run notebooks side by side")
def test_runner_runs_independent_notebooks_side_by_side_with_a_thread_share(tmp_path):
    code = ("import json, os, time\n"
            "from pathlib import Path\n"
            "t0 = time.time(); time.sleep(3)\n"
            "Path(OUTPUT_DIR, 'results', NAME + '.json').write_text(json.dumps(dict(\n"
            "    start=t0, end=time.time(), blas=os.environ.get('OPENBLAS_NUM_THREADS'))))\n")
    d = tmp_path / "nbs"
    d.mkdir()
    for stem, needs in (("01_a", []), ("02_b", []), ("03_c", ["01_a", "02_b"])):
        _write(d, stem, needs=needs, code=code, params=f"OUTPUT_DIR = None\nNAME = {stem!r}")
    res = runner.run(["demo:hea6?size=16"], tmp_path / "out", notebooks_dir=d)
    assert res[0]["status"] == "ok", res[0]["message"]
    got = {p.stem: json.loads(p.read_text())
           for p in (tmp_path / "out").glob("*/results/0*.json")}
    a, b, c = got["01_a"], got["02_b"], got["03_c"]
    assert b["start"] < a["end"] and a["start"] < b["end"]          # overlapped
    assert c["start"] >= max(a["end"], b["end"])
    assert a["blas"] == str(max(1, G.usable_cores() // 2))


@pytest.mark.slow
@pytest.mark.skipif(G.usable_cores() < 2, reason="needs two cores to run notebooks side by side")
def test_ctrl_c_stops_notebooks_running_side_by_side_at_once(tmp_path):
    """Kernels run in their own session, so a terminal's Ctrl-C reaches only the runner: it must
    interrupt them, not wait for their cells (here 120 s sleeps) to end."""
    import os
    import signal
    import subprocess
    import sys

    d = tmp_path / "nbs"
    d.mkdir()
    for stem in ("01_a", "02_b"):
        _write(d, stem, needs=[], code="import time; time.sleep(120)")
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers", "run", "demo:hea6?size=16", "--out", str(tmp_path / "out"),
         "--notebooks", str(d)], cwd=str(Path(__file__).resolve().parents[1]),
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and len(list(tmp_path.glob("out/.*/notebooks/*.ipynb"))) < 2:
        time.sleep(0.5)                         # both notebooks started (papermill wrote them)
    time.sleep(3)
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=100)
    assert proc.returncode == 130, out
    assert time.time() - t0 < 60, "the runner waited for the cells instead of interrupting them"
    assert "interrupted" in out


def test_notebooks_others_wait_for_start_first(tmp_path):
    """05 needs 03 and 04: they start before 01 and 02, which nothing needs, so the chain to
    05 is not held up behind them; with one at a time the run order is kept."""
    nbs = [Path(f"{s}.ipynb") for s in ("01_a", "02_b", "03_c", "04_d", "05_e")]
    needs = {"01_a": set(), "02_b": set(), "03_c": set(), "04_d": set(),
             "05_e": {"03_c", "04_d"}}
    assert G.dependents(needs, "03_c") == {"05_e"} and G.dependents(needs, "01_a") == set()
    log = []
    G.run_graph(nbs, _fake_run(log), max_parallel=2, needs=needs)
    assert [stem for kind, stem, _ in log if kind == "start"][:2] == ["03_c", "04_d"]
    log = []
    G.run_graph(nbs, _fake_run(log), max_parallel=1, needs=needs)
    assert [stem for kind, stem, _ in log if kind == "start"] == [nb.stem for nb in nbs]
