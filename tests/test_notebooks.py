"""The real notebook suite, headless: conventions nbval relies on, and ONE end-to-end batch run.

``make test`` also runs nbval over ``notebooks/`` (see README, "Notebook conventions"); the tests
here check what nbval cannot: that the committed notebooks were executed top to bottom (an
unexecuted notebook would pass nbval without being checked), and that ``python -m helpers run``
on small demos, a missing file and the real instrument files produces the results contract.
Each notebook-dependent check switches on when the notebook producing that file exists.
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import execution

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob(execution.NOTEBOOK_GLOB))  # [] before they exist
REAL = Path(os.environ.get("HEA_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
REAL_FILES = {"velox_EELS_EDS_128x128": (128, 128), "test_TEM": (64, 64)}  # navigation shapes
REAL_PATHS = {"velox_EELS_EDS_128x128": REAL / "velox_EELS_EDS_128x128.emd",
              "test_TEM": REAL / "test_TEM.bcf"}
HAVE_REAL = all(p.exists() for p in REAL_PATHS.values())
#: Every other real file with an EDS map of >= 16 x 16 pixels (../shared/data/real/README.md):
#: navigation shape (rows, cols). They must complete all six notebooks; the .elid records no
#: elements, so the batch gives them (--elements applies only to files that lack them).
MORE_REAL = {"velox_SI_16x16": ("velox_SI_16x16.emd", (16, 16)),
             "sem_rare_earth_30x30": ("sem_rare_earth_30x30.bcf", (30, 30)),
             "sem_AlCu_Hitachi_TM3030Plus": ("sem_AlCu_Hitachi_TM3030Plus.bcf", (240, 320)),
             "phenom_Elid2Version4": ("phenom_Elid2Version4.elid", (16, 16))}
MORE_REAL_PATHS = {name: REAL / f for name, (f, _) in MORE_REAL.items()}
ELID, ELID_ELEMENTS = "phenom_Elid2Version4", ["C", "O", "Al", "Cu"]   # the peaks its spectra
# show (README of the folder); --elements replaces a file's own, so the .elid runs on its own
#: The 16 elements the rare-earth map lists: each must be quantified (k-factor model beyond the
#: 200 kV table: Ce, Gd, Nd, Sm, Th by their L or M lines at 20 kV).
RARE_EARTH_ELEMENTS = ["Al", "C", "Ca", "Ce", "Fe", "Gd", "K", "Mg", "Na", "Nd", "O", "P", "Si",
                       "Sm", "Th", "Ti"]
# notebook (by number) that writes each results file
PRODUCER = {"labels_workflow1.npy": "03", "labels_workflow2.npy": "04",
            "compositions.csv": "05", "entropy.csv": "06"}
DEMOS = {"hea6_size64": "demo:hea6?size=64", "hea7_size64": "demo:hea7?size=64"}
DEMO_SHAPE = (64, 64)
# Seconds any one notebook cell of the batch may run (a hang fails its input, named, in minutes);
# the whole batch fixture gets BATCH_TIMEOUT (pytest-timeout, covering the first test's set-up).
CELL_TIMEOUT = 300
BATCH_TIMEOUT = 1500
# Table 2, workflow 2: the composition of the uniform hea7 particles
TABLE2_W2 = {"Ag": 19.19, "Co": 3.24, "Cu": 11.3, "Ga": 2.88, "In": 7.72, "Mn": 0.90, "S": 51.92,
             "Zn": 2.84}


def _have(number):
    return any(nb.name.startswith(number + "_") for nb in NOTEBOOKS)


def _expected_files():
    return [f for f, n in PRODUCER.items() if _have(n)]


def _declared():
    names = set()
    for nb in NOTEBOOKS:
        names |= set(execution.declared_parameters(nb) or {})
    return names


needs_notebooks = pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks/NN_*.ipynb yet")


# ----------------------------------------------------------------------------- conventions

@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_parameters_cell_with_common_names(path):
    declared = execution.declared_parameters(path)
    assert declared is not None, f"{path.name}: no cell tagged 'parameters'"
    assert {"DATA", "OUTPUT_DIR"} <= set(declared), \
        f"{path.name}: the parameters cell must declare DATA and OUTPUT_DIR (runner contract)"
    bad = [k for k in declared if not k.isupper()]
    assert not bad, f"{path.name}: parameters must be UPPER_CASE constants, got {bad}"


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_executed_in_order(path):
    """nbval only checks cells that have stored outputs: an unexecuted notebook proves nothing."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{path.name}: unexecuted cells; run `make notebooks` and commit"
    assert counts == list(range(1, len(code) + 1)), \
        f"{path.name}: cells were run out of order ({counts}); run `make notebooks` and commit"
    errors = [o.get("ename") for c in code for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: committed with errors {errors}"


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_widget_cells_are_tagged_ignore_output(path):
    """Headless, a widget's output lands elsewhere under nbval than under nbclient: not comparable."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    untagged = ["".join(c["source"]).splitlines()[0] for c in execution.widget_cells(nb)
                if execution.IGNORE_OUTPUT_TAG not in c.get("metadata", {}).get("tags", [])]
    assert not untagged, (f"{path.name}: widget cells without the tag "
                          f"'{execution.IGNORE_OUTPUT_TAG}' (make notebooks adds it): {untagged}")


MACHINE_DEPENDENT_TAG = "machine-dependent"
#: The data the committed notebooks ran on; tests/conftest.py's hea6_96 fixture is the same map,
#: so the tests on it (test_cluster, test_quant) assert the science of the machine-dependent cells.
NOTEBOOK_DEFAULT_DATA = "demo:hea6?size=96"


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_machine_dependent_cells_are_not_compared_and_their_science_is_tested(path):
    """Workflow 2's exact labels depend on the machine's floating point (UMAP), so cells whose
    output prints them are tagged ``machine-dependent`` + ``nbval-ignore-output``; what they show
    is asserted with tolerances on the same map instead (ARI vs truth, seed-to-seed ARI, the
    workflows' agreement, every at% vs truth: test_cluster.py, test_quant.py)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if MACHINE_DEPENDENT_TAG in tags:
            assert execution.IGNORE_OUTPUT_TAG in tags, \
                f"{path.name}: machine-dependent cell not ignored by nbval: {cell['source'][:1]}"
    if any(MACHINE_DEPENDENT_TAG in c.get("metadata", {}).get("tags", []) for c in nb["cells"]):
        assert execution.declared_parameters(path)["DATA"] == NOTEBOOK_DEFAULT_DATA, \
            f"{path.name}: the tests that stand in for its machine-dependent cells use " \
            f"{NOTEBOOK_DEFAULT_DATA}; change them together"


# ----------------------------------------------------------------------------- one batch run

@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """ONE `python -m helpers run` over small demos, a missing file and the real files."""
    if not NOTEBOOKS:
        pytest.skip("no notebooks/NN_*.ipynb yet")
    out = tmp_path_factory.mktemp("batch") / "out"
    missing = out.parent / "no_such_map.emd"
    inputs = list(DEMOS.values()) + [str(missing)]
    if HAVE_REAL:
        inputs += [str(p) for p in REAL_PATHS.values()]
    inputs += [str(p) for name, p in MORE_REAL_PATHS.items() if p.exists() and name != ELID]
    before = {p: p.stat().st_mtime_ns for p in [*REAL_PATHS.values(), *MORE_REAL_PATHS.values()]
              if p.exists()}
    args = [sys.executable, "-m", "helpers", "run", *inputs, "--out", str(out), "--jobs", "2",
            "--timeout", str(CELL_TIMEOUT)]
    if "N_CLUSTERS" in _declared():
        args += ["-p", "N_CLUSTERS", "3"]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=BATCH_TIMEOUT - 60)
    return {"proc": proc, "out": out, "before": before}


@pytest.fixture(scope="module")
def elid_batch(tmp_path_factory):
    """The .elid on its own, with the elements it does not record."""
    path = MORE_REAL_PATHS[ELID]
    if not NOTEBOOKS or not path.exists():
        pytest.skip(f"no notebooks, or {path} not found (set HEA_REAL_DATA)")
    out = tmp_path_factory.mktemp("elid") / "out"
    before = {path: path.stat().st_mtime_ns}
    proc = subprocess.run([sys.executable, "-m", "helpers", "run", str(path), "--out", str(out),
                           "--timeout", str(CELL_TIMEOUT), "--elements", *ELID_ELEMENTS],
                          cwd=ROOT, capture_output=True, text=True, timeout=BATCH_TIMEOUT - 60)
    return {"proc": proc, "out": out, "before": before}


def _summary(batch, name):
    path = batch["out"] / name / "results" / "summary.json"
    assert path.exists(), f"{name} did not finish:\n{batch['proc'].stdout}\n{batch['proc'].stderr}"
    return json.loads(path.read_text())


@pytest.mark.slow
@pytest.mark.timeout(BATCH_TIMEOUT)
def test_missing_input_fails_alone_and_is_named(batch):
    proc = batch["proc"]
    assert proc.returncode == 2, proc.stdout + proc.stderr     # only the missing file failed
    assert "FAILED no_such_map (" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    for name in DEMOS:
        assert (batch["out"] / name / "results" / "summary.json").exists(), proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(BATCH_TIMEOUT)
@pytest.mark.parametrize("name", DEMOS)
def test_demo_results_follow_the_contract(batch, name):
    summary = _summary(batch, name)
    results = batch["out"] / name / "results"
    assert [p.name for p in sorted((batch["out"] / name / "notebooks").glob("*.ipynb"))] == \
        [nb.name for nb in NOTEBOOKS]
    for f in _expected_files():
        assert summary["files"][f] == "ok", f"{name}: {f}: {summary['files'][f]}"
    for f in [f for f in _expected_files() if f.endswith(".npy")]:
        labels = np.load(results / f)
        assert labels.shape == DEMO_SHAPE                        # original, not binned, shape
        assert labels.min() >= -1 and (labels >= 0).any()
    if {"labels_workflow1.npy", "labels_workflow2.npy"} <= set(_expected_files()):
        assert -1.0 <= summary["ari"] <= 1.0
    if _have("03"):
        l1 = np.load(results / "labels_workflow1.npy")
        assert len(np.unique(l1[l1 >= 0])) == 3                 # -p N_CLUSTERS 3 arrived
    if _have("05"):
        with open(results / "compositions.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows, f"{name}: compositions.csv is empty"
        totals = {}
        for r in rows:
            key = (int(r["workflow"]), int(r["cluster"]))
            totals[key] = totals.get(key, 0.0) + float(r["at_percent"])
            assert float(r["at_percent_err"]) >= 0
        for key, total in totals.items():
            assert total == pytest.approx(100.0, abs=0.5), f"{name} {key}: at% sum {total}"
            labels = np.load(results / f"labels_workflow{key[0]}.npy")
            assert key[1] in set(np.unique(labels)), f"{name}: cluster {key} not in labels"


@pytest.mark.slow
@pytest.mark.timeout(BATCH_TIMEOUT)
def test_uniform_particles_have_the_true_entropy(batch):
    """hea7: one uniform composition, so every cluster of either workflow (workflow 1 asked for
    3 clusters) has the configurational entropy of Table 2's composition, within its error."""
    import pandas as pd

    from helpers import entropy

    if not _have("06"):
        pytest.skip("notebook 06 not written yet")
    _summary(batch, "hea7_size64")
    ent = pd.read_csv(batch["out"] / "hea7_size64" / "results" / "entropy.csv")
    s_true, _ = entropy.configurational_entropy(list(TABLE2_W2.values()), list(TABLE2_W2))
    assert len(ent) >= 2 and set(ent["workflow"]) == {1, 2}
    assert np.all(np.abs(ent["s_conf_R"] - s_true) < 4 * ent["s_conf_R_err"] + 0.02), \
        ent.assign(s_true=s_true)


@pytest.mark.slow
@pytest.mark.timeout(BATCH_TIMEOUT)
def test_summary_records_parameters_versions_and_timing(batch):
    summary = _summary(batch, "hea6_size64")
    assert summary["input"] == DEMOS["hea6_size64"]
    assert set(summary["seconds"]) == {nb.stem for nb in NOTEBOOKS}
    assert summary["versions"]["hyperspy"] != "not installed"
    for nb, params in summary["parameters"].items():
        assert params["DATA"] == DEMOS["hea6_size64"], nb
        if "N_CLUSTERS" in params:
            assert params["N_CLUSTERS"] == 3


@pytest.mark.slow
@pytest.mark.timeout(BATCH_TIMEOUT)
@pytest.mark.real
@pytest.mark.skipif(not HAVE_REAL, reason=f"real instrument files not found in {REAL} "
                                          "(set HEA_REAL_DATA)")
def test_real_bruker_file_completes_end_to_end(batch):
    summary = _summary(batch, "test_TEM")
    for f in _expected_files():
        assert summary["files"][f] == "ok", f"test_TEM: {f}: {summary['files'][f]}"
    if _have("03") or _have("04"):
        assert summary["navigation_shape"] == list(REAL_FILES["test_TEM"])
    assert REAL_PATHS["test_TEM"].stat().st_mtime_ns == batch["before"][REAL_PATHS["test_TEM"]]


@pytest.mark.slow
@pytest.mark.timeout(BATCH_TIMEOUT)
@pytest.mark.real
@pytest.mark.parametrize("name", MORE_REAL)
def test_every_real_map_completes_all_six_notebooks(request, name):
    """Velox 16x16 (300 kV TEM), two Bruker SEM maps (15 and 20 kV: an Al-Cu alloy, a
    16-element mineral) and a Phenom .elid (three 16x16 maps, no elements recorded): every
    notebook runs, every results file is written, nothing is reported as a problem, the input
    file is untouched."""
    path = MORE_REAL_PATHS[name]
    if not path.exists():
        pytest.skip(f"{path} not found (set HEA_REAL_DATA)")
    batch = request.getfixturevalue("elid_batch" if name == ELID else "batch")
    summary = _summary(batch, name)
    assert summary["status"] == "ok", summary.get("problems")
    assert summary["completed"] == [nb.stem for nb in NOTEBOOKS]
    for f in _expected_files():
        assert summary["files"][f] == "ok", f"{name}: {f}: {summary['files'][f]}"
    if _have("03") or _have("04"):
        assert summary["navigation_shape"] == list(MORE_REAL[name][1])
    assert path.stat().st_mtime_ns == batch["before"][path]


@pytest.mark.slow
@pytest.mark.timeout(BATCH_TIMEOUT)
@pytest.mark.real
def test_rare_earth_map_quantifies_every_listed_element(batch):
    """No element is dropped for want of a k-factor: each of the 16 has a finite at% (and
    error) in every cluster of both workflows that has a composition at all."""
    name = "sem_rare_earth_30x30"
    if not MORE_REAL_PATHS[name].exists() or not _have("05"):
        pytest.skip(f"{MORE_REAL_PATHS[name]} not found, or no notebook 05")
    _summary(batch, name)
    with open(batch["out"] / name / "results" / "compositions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    clusters = {}
    for r in rows:
        if r["at_percent"] not in ("", "nan"):
            clusters.setdefault((r["workflow"], r["cluster"]), {})[r["element"]] = r
    assert {w for w, _ in clusters} == {"1", "2"}, clusters.keys()
    for key, by_element in clusters.items():
        assert sorted(by_element) == RARE_EARTH_ELEMENTS, f"cluster {key}: {sorted(by_element)}"
        for el, r in by_element.items():
            assert np.isfinite(float(r["at_percent"])) and float(r["at_percent_err"]) > 0, (key, el)


@pytest.mark.slow
@pytest.mark.timeout(BATCH_TIMEOUT)
@pytest.mark.real
@pytest.mark.skipif(not HAVE_REAL, reason=f"real instrument files not found in {REAL} "
                                          "(set HEA_REAL_DATA)")
def test_real_velox_file_completes_or_is_refused_in_one_line(batch):
    """velox_EELS_EDS_128x128.emd is a file-format test file: its EDS map holds ~11 000 counts,
    all but 2 in the detector's zero-energy noise peak, none in the 0.35-8 keV range where the
    lines of its elements (O, Fe, Co) lie. Either the suite completes on it (contract as for
    test_TEM) or it is refused as bad input: a one-line DataError naming the empty energy range,
    status 2, nothing else affected."""
    name = "velox_EELS_EDS_128x128"
    path = REAL_PATHS[name]
    assert path.stat().st_mtime_ns == batch["before"][path]
    if (batch["out"] / name / "results" / "summary.json").exists():
        summary = _summary(batch, name)
        for f in _expected_files():
            assert summary["files"][f] == "ok", f"{name}: {f}: {summary['files'][f]}"
        return
    failed = [line for line in batch["proc"].stderr.splitlines() if line.startswith(f"FAILED {name}")]
    assert len(failed) == 1, batch["proc"].stderr
    assert "DataError: No X-ray counts between" in failed[0], failed[0]
    assert (batch["out"] / f"{name}.failed").is_dir()


# ----------------------------------------------------------------------------- results to open

@pytest.mark.slow
@pytest.mark.timeout(BATCH_TIMEOUT)
@pytest.mark.parametrize("name", ["hea6_size64"])
def test_hyperspy_results_load_with_calibration_clusters_and_counts(batch, name):
    """labels_workflow{1,2}.hspy and cluster_spectra_workflow{1,2}.hspy of a batch input: hs.load
    opens them, the label map has the demo's navigation calibration and as many clusters as the
    .npy labels, and each cluster's hard spectrum is the sum of its pixels' raw counts."""
    import hyperspy.api as hs

    from helpers import io, results
    if not _have("05"):
        pytest.skip("notebook 05 not written yet")
    _summary(batch, name)
    folder = batch["out"] / name
    raw = io.load_spectrum_image(DEMOS[name])
    data = np.asarray(raw.data, dtype=np.int64)
    names = results.load_cluster_names(folder)
    for wf in (1, 2):
        lab = np.load(folder / "results" / f"labels_workflow{wf}.npy")
        ids = sorted(int(c) for c in np.unique(lab) if c >= 0)
        s = hs.load(results.signal_path(f"labels_workflow{wf}", folder))
        np.testing.assert_array_equal(s.data, lab)
        for src, ax in zip(raw.axes_manager.navigation_axes, s.axes_manager.signal_axes):
            assert (ax.units, ax.scale, ax.offset) == (src.units, src.scale, src.offset)
        assert list(s.metadata.Clusters.ids) == ids
        assert list(s.metadata.Clusters.names) == [names[wf][c] for c in ids]
        if wf == 1:
            assert len(ids) == 3                               # -p N_CLUSTERS 3
        sp = hs.load(results.signal_path(f"cluster_spectra_workflow{wf}", folder))
        assert sp.metadata.Signal.signal_type == "EDS_TEM"
        assert sp.axes_manager.navigation_shape[0] == len(ids)
        for i, c in enumerate(ids):
            np.testing.assert_array_equal(sp.data[0, i], data[lab == c].sum(axis=0))


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(BATCH_TIMEOUT)
def test_report_opens_offline_with_every_image_table_row_and_notebook(batch):
    """The run's index.html in headless Chromium: every image has loaded, the compositions
    table of each demo has one row per cluster and element of compositions.csv, every notebook
    link opens an exported notebook, no request leaves the run folder. Screenshots:
    tests/artifacts/browser/report_*.png."""
    import pandas as pd
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    from browser.jlab import CHROMIUM, launch_chromium
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found")
    index = batch["out"] / "index.html"
    assert index.exists(), batch["proc"].stdout[-2000:] + batch["proc"].stderr[-2000:]
    assert f"report: {index}" in batch["proc"].stdout
    artifacts = ROOT / "tests" / "artifacts" / "browser"
    artifacts.mkdir(parents=True, exist_ok=True)
    outside = []
    with sync_api.sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            ctx = browser.new_context(viewport={"width": 1300, "height": 900})
            ctx.route("**/*", lambda route: (route.continue_() if route.request.url.startswith(
                ("file:", "data:")) else (outside.append(route.request.url), route.abort())))
            page = ctx.new_page()
            page.goto(index.as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(artifacts / "report_index.png"), full_page=True)
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])")
            assert len(images) >= 3 * len(DEMOS), images
            assert all(ok and width > 0 for _, ok, width in images), images
            for name in DEMOS:
                section = page.locator(f'section[id="{name}"]')
                assert "ok" in section.locator(".status").first.inner_text()
                comp = pd.read_csv(batch["out"] / name / "results" / "compositions.csv")
                rows = section.locator("table.compositions tbody tr")
                assert rows.count() == len(comp) == comp.groupby(["workflow", "cluster"]).ngroups \
                    * comp["element"].nunique()
                shown = {tuple(rows.nth(i).locator("td").all_inner_texts()[i_] for i_ in (0, 1, 4))
                         for i in range(rows.count())}
                assert shown == {(str(w), str(c), e) for w, c, e in
                                 comp[["workflow", "cluster", "element"]].itertuples(index=False)}
            assert "failed" in page.locator('section[id="no_such_map"] .status').inner_text()
            links = page.eval_on_selector_all("a.notebook", "els => els.map(e => e.href)")
            assert len(links) >= len(DEMOS) * len(NOTEBOOKS)
            for i, href in enumerate(links):
                page.goto(href)
                assert page.locator(".jp-Cell").count() > 3, href
                assert page.locator(".jp-OutputArea-output img").count() >= 1, href
                if i < len(NOTEBOOKS):
                    page.screenshot(path=str(artifacts / f"report_notebook_{i + 1}.png"))
        finally:
            browser.close()
    assert not outside, f"the report or a notebook page asked the network for {outside[:5]}"
