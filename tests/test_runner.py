"""The batch runner (python -m helpers run) against tiny throwaway notebooks.

The notebooks here stand in for the real suite: notebook 01 writes the two labels files with
N_CLUSTERS clusters, notebook 02 the two CSV files; both fail on request (a HEAError, a plain bug,
or a long wait to be killed), so the runner's contract and its safety rules (issue 6 and the
runner-side cases of issue 8) are checked in seconds, independently of the science notebooks.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from helpers import execution, runner
from helpers.results import RESULT_FILES
from helpers.errors import InputFileError, OutputError, ParameterError

ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- fixtures

NB01_PARAMS = 'DATA = "demo:x"\nOUTPUT_DIR = None\nN_CLUSTERS = 4   # clusters\nELEMENTS = None'
NB01_CODE = '''\
import os
import numpy as np
import helpers
if not DATA.startswith("demo:") and not os.path.exists(DATA):
    raise helpers.errors.InputFileError(f"{DATA} does not exist")
rows, cols = (6, 9) if "big" not in DATA else (8, 12)
lab = np.arange(rows * cols).reshape(rows, cols) % N_CLUSTERS
lab[0, 0] = -1
np.save(os.path.join(OUTPUT_DIR, "results", "labels_workflow1.npy"), lab)
np.save(os.path.join(OUTPUT_DIR, "results", "labels_workflow2.npy"), np.where(lab >= 0, lab // 2, -1))
open(os.path.join(OUTPUT_DIR, "figures", "01_map.png"), "wb").write(b"png")
print(ELEMENTS)
'''
NB02_PARAMS = 'DATA = "demo:x"\nOUTPUT_DIR = None\nKFACTORS = None\nBOOM = None\nWAIT = None'
NB02_CODE = '''\
import os, time
import helpers
if WAIT:                                   # stand-in for a long computation to interrupt
    open(WAIT, "w").write(str(os.getpid()))
    time.sleep(300)
if BOOM == "input" or "fail=input" in DATA:
    raise helpers.errors.ParameterError("BOOM is set: unset it to continue")
if BOOM == "bug" or "fail=bug" in DATA:
    1 / 0
res = os.path.join(OUTPUT_DIR, "results")
with open(os.path.join(res, "compositions.csv"), "w") as f:
    f.write("workflow,cluster,n_pixels,element,at_percent,at_percent_err\\n1,0,5,Cu,50.0,1.0\\n")
with open(os.path.join(res, "entropy.csv"), "w") as f:
    f.write("workflow,cluster,s_conf_R,s_conf_R_err,metal_to_sulfur\\n1,0,1.2,0.1,1.0\\n")
'''


def _notebook(params, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# throwaway"),
                nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture(scope="module")
def nbdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("notebooks")
    nbformat.write(_notebook(NB01_PARAMS, NB01_CODE), d / "01_labels.ipynb")
    nbformat.write(_notebook(NB02_PARAMS, NB02_CODE), d / "02_tables.ipynb")
    scratch = _notebook("X = 1", "raise RuntimeError('not numbered: never run')")
    scratch.cells[1].metadata = {}                                   # no parameters cell
    nbformat.write(scratch, d / "scratch.ipynb")
    return d


def _tree_digest(folder):
    """Hash of every file under folder (names and bytes)."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "helpers", "run", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------------------- fast units

def test_input_names_are_stems_or_demo_names_and_unique():
    assert runner.input_name("demo:hea6") == "hea6"
    assert runner.input_name("demo:hea6?size=96&dose=40") == "hea6_size96_dose40"
    assert runner.input_name("/data/map 01.emd") == "map_01"
    assert runner.unique_names(["a/x.emd", "b/x.bcf", "demo:x"]) == ["x", "x_2", "x_3"]


def test_parameter_values_parse_as_literals():
    assert execution.parse_value("3") == 3
    assert execution.parse_value("None") is None
    assert execution.parse_value("['Fe', 'Co']") == ["Fe", "Co"]
    assert execution.parse_value("pca") == "pca"


def test_declared_parameters_read_the_tagged_cell(nbdir):
    assert execution.declared_parameters(nbdir / "01_labels.ipynb") == {
        "DATA": "demo:x", "OUTPUT_DIR": None, "N_CLUSTERS": 4, "ELEMENTS": None}
    assert execution.declared_parameters(nbdir / "scratch.ipynb") is None
    assert [p.name for p in execution.find_notebooks(nbdir)] == ["01_labels.ipynb", "02_tables.ipynb"]


def test_check_results_schema_and_ari(tmp_path):
    a = np.array([[0, 0, 1, 1], [2, 2, -1, 1]])
    b = np.array([[5, 5, 3, 3], [4, 4, 4, 3]])          # same partition except the noise pixel
    np.save(tmp_path / "labels_workflow1.npy", a)
    np.save(tmp_path / "labels_workflow2.npy", b)
    (tmp_path / "compositions.csv").write_text("workflow,cluster,element\n")
    check = runner.check_results(tmp_path)
    assert check["files"]["labels_workflow1.npy"] == "ok"
    assert check["n_clusters"] == {"workflow1": 3, "workflow2": 3}
    assert check["ari"] == pytest.approx(adjusted_rand_score(a.ravel(), b.ravel()))
    assert check["ari_assigned"] == pytest.approx(1.0)
    assert check["files"]["entropy.csv"] == "missing"
    assert "expected workflow,cluster,n_pixels" in check["files"]["compositions.csv"]
    np.save(tmp_path / "labels_workflow2.npy", np.full((2, 4), -2))
    assert "2-D integer array >= -1" in runner.check_results(tmp_path)["files"]["labels_workflow2.npy"]


def test_exit_code_and_table():
    ok = {"name": "a", "status": "ok", "kind": "", "message": "", "seconds": 1.0, "ari": 0.5,
          "folder": "/o/a", "problems": []}
    bad_input = dict(ok, name="b", status="failed", kind="input", message="InputFileError: x")
    bug = dict(ok, name="c", status="failed", kind="error", message="ZeroDivisionError: y")
    assert runner.exit_code([ok]) == 0
    assert runner.exit_code([ok, bad_input]) == 2
    assert runner.exit_code([ok, bad_input, bug]) == 1
    partial = dict(bad_input, name="d", status="partial")
    assert runner.exit_code([ok, partial]) == 3 and runner.exit_code([partial, bad_input]) == 2
    table = runner.format_table([ok, bad_input])
    assert "0.500" in table and "InputFileError: x" in table


def test_unknown_parameter_is_refused_with_the_known_names(nbdir, tmp_path):
    with pytest.raises(ParameterError, match=r"Unknown parameter N_CLUSTER: .*Known names: .*"
                                             r"N_CLUSTERS"):
        runner.run(["demo:x"], tmp_path / "out", params=[("N_CLUSTER", "3")], notebooks_dir=nbdir)
    assert not (tmp_path / "out").exists()          # refused before anything was written


def test_data_and_output_dir_cannot_be_set_with_p(nbdir, tmp_path):
    with pytest.raises(ParameterError, match="-p OUTPUT_DIR is set by the runner: .*--out"):
        runner.run(["demo:x"], tmp_path / "out", params={"OUTPUT_DIR": "/x"}, notebooks_dir=nbdir)


def test_missing_kfactor_file_is_refused(nbdir, tmp_path):
    from helpers.errors import KFactorError

    with pytest.raises(KFactorError, match="does not exist"):
        runner.run(["demo:x"], tmp_path / "out", kfactors=tmp_path / "nope.csv",
                   notebooks_dir=nbdir)


def test_unwritable_output_folder(nbdir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=r"Cannot write to output folder .*choose another --out"):
        runner.run(["demo:x"], blocker / "out", notebooks_dir=nbdir)
    assert blocker.read_text() == "not a folder"


def test_missing_input_file_message():
    with pytest.raises(InputFileError, match=r"nope\.emd does not exist: check the path"):
        runner.resolve_input("nope.emd")


# ----------------------------------------------------------------------------- one shared run

@pytest.fixture(scope="module")
def shared_run(nbdir, tmp_path_factory):
    """ONE command line with good and bad inputs, run in parallel; later tests inspect it."""
    tmp = tmp_path_factory.mktemp("run")
    data = tmp / "map.emd"
    data.write_bytes(b"pretend spectrum image")
    before = data.read_bytes(), data.stat().st_mtime_ns
    kfactors = tmp / "my_kfactors.csv"
    kfactors.write_text("element,line,k_factor,k_factor_err\nCu,Cu_Ka,1.6,0.05\n")
    out = tmp / "out"
    proc = _cli("demo:x", "demo:x?big=1", data, tmp / "missing.emd", "demo:x?fail=bug",
                "--out", out, "--notebooks", nbdir, "-p", "N_CLUSTERS", "3",
                "--elements", "Cu", "Zn,S", "--kfactors", kfactors, "--jobs", "2")
    return {"proc": proc, "out": out, "data": data, "before": before, "kfactors": kfactors}


@pytest.mark.slow
def test_valid_inputs_finish_and_bad_ones_are_named(shared_run):
    proc, out = shared_run["proc"], shared_run["out"]
    assert proc.returncode == 1, proc.stderr                   # a bug among the failures -> 1
    assert "FAILED missing (" in proc.stderr and "missing.emd does not exist" in proc.stderr
    assert "PARTIAL x_failbug" in proc.stderr and "ZeroDivisionError" in proc.stderr
    assert "02_tables.ipynb" in proc.stderr                   # says where it failed
    assert "Traceback" not in proc.stderr + proc.stdout       # no traceback without --debug
    for name in ("x", "x_big1", "map"):
        assert (out / name / "notebooks" / "02_tables.ipynb").exists()
    # a notebook failing after others finished: a partial run, earlier outputs kept in place
    partial = out / "x_failbug"
    assert (partial / "results" / "labels_workflow1.npy").exists()
    assert (partial / "notebooks" / "02_tables.ipynb").exists()      # open it: where it stopped
    summary = json.loads((partial / "results" / "summary.json").read_text())
    assert summary["status"] == "partial" and summary["completed"] == ["01_labels"]
    assert summary["failed_notebook"] == "02_tables.ipynb"
    assert "ZeroDivisionError" in summary["message"]
    assert not (out / "missing").exists() and not (out / "x_failbug.failed").exists()
    table = proc.stdout[proc.stdout.index("input  "):]
    assert [line.split()[:2] for line in table.splitlines()[2:]] == [
        ["x", "ok"], ["x_big1", "ok"], ["map", "ok"], ["missing", "failed"],
        ["x_failbug", "partial"]]
    run = json.loads((out / runner.RUN_SUMMARY).read_text())
    assert run["exit_status"] == 1
    assert {k: v["status"] for k, v in run["inputs"].items()} == {
        "x": "ok", "x_big1": "ok", "map": "ok", "missing": "failed", "x_failbug": "partial"}


@pytest.mark.slow
def test_output_contract_and_summary(shared_run):
    out = shared_run["out"]
    for name, shape in (("x", (6, 9)), ("x_big1", (8, 12)), ("map", (6, 9))):
        results = out / name / "results"
        l1 = np.load(results / "labels_workflow1.npy")
        assert l1.shape == shape
        assert sorted(set(np.unique(l1)) - {-1}) == [0, 1, 2]        # -p N_CLUSTERS 3 arrived
        assert (out / name / "figures" / "01_map.png").exists()
        summary = json.loads((results / "summary.json").read_text())
        assert summary["n_clusters"] == {"workflow1": 3, "workflow2": 2}
        l2 = np.load(results / "labels_workflow2.npy")
        assert summary["ari"] == pytest.approx(adjusted_rand_score(l1.ravel(), l2.ravel()))
        assert set(summary["seconds"]) == {"01_labels", "02_tables"}
        assert summary["versions"]["helpers"] and summary["versions"]["papermill"]
        assert summary["parameters"]["01_labels"]["N_CLUSTERS"] == 3
        assert summary["parameters"]["01_labels"]["ELEMENTS"] == ["Cu", "Zn", "S"]
        assert summary["parameters"]["02_tables"]["OUTPUT_DIR"] == str(out.resolve() / name)
        assert "N_CLUSTERS" not in summary["parameters"]["02_tables"]  # only declared names
        assert summary["parameters"]["02_tables"]["KFACTORS"] == str(shared_run["kfactors"])
        assert summary["files"] == dict.fromkeys(RESULT_FILES, "ok")
        injected = nbformat.read(out / name / "notebooks" / "02_tables.ipynb", as_version=4).cells[2]
        assert injected.metadata.tags == ["injected-parameters"]
        assert f'OUTPUT_DIR = "{out.resolve() / name}"' in injected.source  # not the staging path
    assert json.loads((out / "map" / "results" / "summary.json").read_text())["data"] == \
        str(shared_run["data"].resolve())


@pytest.mark.slow
def test_input_file_is_never_modified(shared_run):
    data = shared_run["data"]
    assert (data.read_bytes(), data.stat().st_mtime_ns) == shared_run["before"]
    assert sorted(p.name for p in data.parent.iterdir()) == ["map.emd", "my_kfactors.csv", "out"]


@pytest.mark.slow
def test_existing_run_folder_needs_overwrite(shared_run, nbdir):
    out = shared_run["out"]
    digest = _tree_digest(out)
    proc = _cli("demo:x", "--out", out, "--notebooks", nbdir)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: OutputError: Run folder {out.resolve() / 'x'} already exists: pass --overwrite to "
        "replace it or choose another --out."]
    assert _tree_digest(out) == digest


@pytest.mark.slow
def test_notebook_heaerror_is_one_line_partial_status_3_and_keeps_old_results(shared_run, nbdir):
    """A notebook failing on bad input after 01 finished: one line, exit status 3 (partial);
    the complete earlier run of that input is not replaced by the partial one (kept beside it
    as x.partial)."""
    out = shared_run["out"]
    digest = _tree_digest(out / "x")
    proc = _cli("demo:x", "--out", out, "--notebooks", nbdir, "--overwrite", "-p", "BOOM", "input")
    assert proc.returncode == 3
    assert ("PARTIAL x (demo:x): ParameterError: BOOM is set: unset it to continue "
            "(in 02_tables.ipynb)") in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert _tree_digest(out / "x") == digest                    # earlier results intact
    assert (out / "x.partial" / "notebooks" / "01_labels.ipynb").exists()
    assert (out / "x.partial" / "results" / "labels_workflow1.npy").exists()


@pytest.mark.slow
def test_debug_keeps_the_traceback(nbdir, tmp_path):
    results = runner.run(["demo:x?fail=input"], tmp_path / "out", notebooks_dir=nbdir, debug=True)
    assert results[0]["kind"] == "input" and results[0]["status"] == "partial"
    assert runner.exit_code(results) == 3
    assert "ParameterError" in results[0]["traceback"] and "02_tables" in results[0]["message"]


@pytest.mark.slow
def test_run_killed_half_way_leaves_earlier_results_intact(shared_run, nbdir, tmp_path):
    out = shared_run["out"]
    digest = _tree_digest(out / "x")
    marker = tmp_path / "kernel_pid"
    cmd = [sys.executable, "-m", "helpers", "run", "demo:x", "demo:x?new=1", "--out", str(out),
           "--notebooks", str(nbdir), "--overwrite", "-p", "WAIT", str(marker)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        for _ in range(600):                                    # wait for notebook 02 to start
            if marker.exists() and marker.read_text():
                break
            assert proc.poll() is None, "runner ended before reaching notebook 02"
            time.sleep(0.2)
        else:
            pytest.fail("notebook 02 never started")
        os.killpg(proc.pid, signal.SIGKILL)                     # power cut: no clean-up at all
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if marker.exists() and marker.read_text():              # never leave the kernel behind
            try:
                os.kill(int(marker.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert _tree_digest(out / "x") == digest
    assert not (out / "x_new1").exists()


@pytest.mark.slow
def test_execute_in_place_refreshes_outputs_and_keeps_failures_unchanged(tmp_path):
    good = _notebook('OUTPUT_DIR = None\nN = 3', 'print(sum(range(N)))')
    good.cells.append(nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider(N)"))
    bad = _notebook('OUTPUT_DIR = None', 'raise ValueError("stale")')
    nbformat.write(good, tmp_path / "01_good.ipynb")
    nbformat.write(bad, tmp_path / "02_bad.ipynb")
    bad_bytes = (tmp_path / "02_bad.ipynb").read_bytes()
    report = execution.execute_in_place(tmp_path)
    assert [(name, status.split(":")[0]) for name, status, _ in report] == [
        ("01_good.ipynb", "ok"), ("02_bad.ipynb", "ValueError")]
    nb = nbformat.read(tmp_path / "01_good.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3]
    assert code[1].outputs[0].text == "3\n"
    assert [c.metadata.get("tags", []) for c in code[1:]] == [[], ["nbval-ignore-output"]]
    assert "papermill" not in nb.metadata and nb.metadata.kernelspec.name == "python3"
    assert (tmp_path / "02_bad.ipynb").read_bytes() == bad_bytes


@pytest.mark.slow
def test_cell_timeout_fails_the_input_not_the_run(nbdir, tmp_path):
    results = runner.run(["demo:x"], tmp_path / "out", notebooks_dir=nbdir, timeout=3,
                         params={"WAIT": str(tmp_path / "pid")})
    assert results[0]["status"] == "partial" and runner.exit_code(results) == 1
    msg = results[0]["message"]
    assert msg.startswith("CellTimeout: code cell 2 ('import os, time') of 02_tables.ipynb ran "
                          "longer than the 3 s timeout"), msg
    assert (tmp_path / "out" / "x" / "results" / "labels_workflow1.npy").exists()   # 01's output


@pytest.mark.slow
def test_a_hanging_cell_fails_within_its_timeout_naming_notebook_and_cell(tmp_path):
    """The one way notebooks are executed (runner and tests) stops a cell that hangs: here a cell
    that would sleep for ten minutes, stopped after 5 s with a message naming it."""
    nb = _notebook('OUTPUT_DIR = None', 'x = 1')
    nb.cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(600)  # a hang"))
    src = tmp_path / "07_hang.ipynb"
    nbformat.write(nb, src)
    t0 = time.monotonic()
    with pytest.raises(execution.CellTimeout) as info:
        execution.execute_notebook(src, tmp_path / "out.ipynb", timeout=5,
                                   kernel_log=tmp_path / "kernel.log")
    assert time.monotonic() - t0 < 120          # stopped at its timeout, not after the sleep
    assert str(info.value).startswith("code cell 3 ('import time') of 07_hang.ipynb ran longer "
                                      "than the 5 s timeout and was stopped")


def test_every_test_has_a_time_limit(pytestconfig):
    """pytest-timeout is active with the limit set once in pyproject.toml: a hung test fails
    with its name instead of stalling CI until its 90-minute limit."""
    assert pytestconfig.pluginmanager.hasplugin("timeout")
    assert 0 < float(pytestconfig.getini("timeout")) <= 900


@pytest.mark.slow
def test_notebooks_side_by_side_keep_the_callers_folder(tmp_path):
    """Each kernel starts in its notebook's folder, and running two at once in threads (as
    helpers.notebook_graph does) leaves the calling process where it was: papermill's own
    ``cwd`` chdir()s the whole process, and two threads raced on it."""
    from concurrent.futures import ThreadPoolExecutor

    here = os.getcwd()
    jobs = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        nbformat.write(_notebook("OUTPUT_DIR = None",
                                 "import os\nopen('where.txt', 'w').write(os.getcwd())"),
                       d / "01_where.ipynb")
        jobs.append(d)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda d: execution.execute_notebook(d / "01_where.ipynb",
                                                           d / "out.ipynb"), jobs))
    assert os.getcwd() == here
    for d in jobs:
        assert Path((d / "where.txt").read_text()).resolve() == d.resolve()


def test_a_kernel_that_dies_before_its_first_reply_is_started_again(monkeypatch, tmp_path):
    """Two kernels starting at once can bind the same TCP port, and one dies before replying
    (seen once in a clean-clone run): execute_notebook starts it again, up to
    KERNEL_START_RETRIES times. Any other error, or a kernel that keeps dying, is raised."""
    import papermill

    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(execution._KERNEL_DIED)
        return "ran"

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    assert execution.execute_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb") == "ran"
    assert len(calls) == 2

    def dies(*args, **kwargs):
        calls.append(1)
        raise RuntimeError(execution._KERNEL_DIED)

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", dies)
    with pytest.raises(RuntimeError, match="Kernel died"):
        execution.execute_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb")
    assert len(calls) == execution.KERNEL_START_RETRIES + 1

    def other(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("something else")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", other)
    with pytest.raises(RuntimeError, match="something else"):
        execution.execute_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb")
    assert len(calls) == 1
