"""Batches on a dask.distributed cluster (``python -m helpers run ... --scheduler``) and the
chunked stages of lazy maps under an active ``distributed.Client`` (issue 20).

The batch tests use a ``LocalCluster`` of two one-thread worker processes and throwaway
notebooks like tests/test_runner.py's (each writes the results files from its parameters in a
second), so the runner's contract on a cluster is checked in seconds: the same files as the local
runner, a worker killed mid-run (its input runs again once, or is reported failed, the others
finish), and clear errors for a bad address, an unreachable scheduler and a run folder the workers
cannot use. (The real notebooks on a cluster are not run here: ~75 s per demo input.)
"""
import filecmp
import json
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from helpers import distributed as hd  # noqa: E402
from helpers import execution, runner  # noqa: E402
from helpers.errors import OutputError, ParameterError, SchedulerError  # noqa: E402
from test_runner import _notebook  # noqa: E402  (the same throwaway-notebook builder)

ROOT = Path(__file__).resolve().parent.parent

NB01_PARAMS = 'DATA = "demo:x"\nOUTPUT_DIR = None\nN_CLUSTERS = 3'
NB01_CODE = '''\
import os, signal, zlib
import numpy as np
KILL = DATA.partition("kill=")[2]   # demo:x?kill=once / always: a worker lost mid-run
if KILL:   # end the worker process that runs this kernel (the kernel's parent)
    marker = os.path.join(os.path.dirname(OUTPUT_DIR), "killed-" + str(zlib.crc32(DATA.encode())))
    if KILL == "always" or not os.path.exists(marker):
        open(marker, "a").write("x")
        os.kill(os.getppid(), signal.SIGKILL)
seed = zlib.crc32(DATA.encode())
lab = np.random.default_rng(seed).integers(-1, N_CLUSTERS, size=(6, 9))
np.save(os.path.join(OUTPUT_DIR, "results", "labels_workflow1.npy"), lab)
np.save(os.path.join(OUTPUT_DIR, "results", "labels_workflow2.npy"), np.where(lab >= 0, lab // 2, -1))
'''
NB02_PARAMS = 'DATA = "demo:x"\nOUTPUT_DIR = None'
NB02_CODE = '''\
import os, zlib
x = zlib.crc32(DATA.encode()) % 1000 / 10
res = os.path.join(OUTPUT_DIR, "results")
with open(os.path.join(res, "compositions.csv"), "w") as f:
    f.write(f"workflow,cluster,n_pixels,element,at_percent,at_percent_err\\n1,0,5,Cu,{x},1.0\\n")
with open(os.path.join(res, "entropy.csv"), "w") as f:
    f.write(f"workflow,cluster,s_conf_R,s_conf_R_err,metal_to_sulfur\\n1,0,{x / 50},0.1,1.0\\n")
'''
CONTRACT = ["labels_workflow1.npy", "labels_workflow2.npy", "compositions.csv", "entropy.csv"]


@pytest.fixture(scope="module")
def nbdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("notebooks")
    nbformat.write(_notebook(NB01_PARAMS, NB01_CODE), d / "01_labels.ipynb")
    nbformat.write(_notebook(NB02_PARAMS, NB02_CODE), d / "02_tables.ipynb")
    return d


def _same_results(a, b, names=CONTRACT):
    """Every contract file of two input folders: same bytes, or (npy) same numbers."""
    for name in names:
        fa, fb = Path(a) / "results" / name, Path(b) / "results" / name
        if name.endswith(".npy"):
            np.testing.assert_array_equal(np.load(fa), np.load(fb), err_msg=name)
        else:
            assert filecmp.cmp(fa, fb, shallow=False), f"{name} differs: {fa} vs {fb}"


# ----------------------------------------------------------------------------- fast units

@pytest.mark.timeout(30)
def test_scheduler_addresses_are_checked_before_anything_runs(tmp_path, nbdir):
    assert hd.parse_scheduler("local:2") == ("local", 2)
    assert hd.parse_scheduler("tcp://10.0.0.5:8786") == ("remote", "tcp://10.0.0.5:8786")
    for bad in ("local:0", "local:x", "local"):
        with pytest.raises(ParameterError, match="local:N"):
            hd.parse_scheduler(bad)
    for bad in ("10.0.0.5", "http://x", "tcp://host:port"):
        with pytest.raises(SchedulerError, match="tcp://HOST:PORT"):
            hd.run_distributed(["demo:x"], tmp_path / "out", bad, notebooks_dir=nbdir)
    assert not (tmp_path / "out").exists()          # refused before the run folder exists


@pytest.mark.timeout(60)
def test_unreachable_scheduler_is_one_clear_error(tmp_path, nbdir):
    with pytest.raises(SchedulerError, match="Cannot reach the dask scheduler at tcp://127.0.0.1:9"):
        hd.run_distributed(["demo:x"], tmp_path / "out", "tcp://127.0.0.1:9",
                           notebooks_dir=nbdir, connect_timeout=2)


@pytest.fixture(scope="module")
def cluster():
    """Two one-thread worker processes (their nannies restart a killed worker)."""
    client, lc = hd.connect("local:2", silence_logs=50)
    yield client
    client.close()
    lc.close()


@pytest.mark.timeout(60)
def test_a_run_folder_the_workers_cannot_see_is_refused(cluster, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    hd.check_workers_can_write(cluster, out)                  # shared here: accepted
    monkeypatch.setattr(hd, "_probe_folder", lambda folder, token: "it cannot write there (test)")
    with pytest.raises(OutputError, match=r"cannot be used by worker tcp://.*storage every worker "
                                          r"shares"):
        hd.check_workers_can_write(cluster, out)
    assert list(out.iterdir()) == []                           # the token file is removed


@pytest.mark.timeout(60)
def test_lazy_stages_compute_through_the_active_client(cluster, hea6_96, tmp_path):
    """With a Client as the default scheduler, the chunked stages (binning, features, element
    maps, cluster sums) run as tasks on its workers (nothing in helpers forces threads) and give
    the numbers of the in-memory computation."""
    from helpers import io, maps, preprocess
    from helpers.quant import spectra

    eager = hea6_96[0]
    eager.save(tmp_path / "map.hspy", chunks=(24, 96, eager.data.shape[-1]))
    sig = io.load_spectrum_image(str(tmp_path / "map.hspy"), lazy=True, verbose=False)
    assert sig._lazy    # chunks read from the file by the workers (h5py, shared storage)
    flat = np.arange(96 * 96).reshape(96, 96)
    labels = np.where(flat % 5 == 4, -1, flat % 3)
    assert hd.active_client() is cluster
    with distributed.get_task_stream(cluster) as ts:
        binned = preprocess.lazy_binned_counts(sig, 2, energy_bin=4)
        emaps = maps.element_maps(sig)
        sums = spectra.cluster_spectra(sig, labels)
    ran = {t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in ts.data}
    assert len(ts.data) >= 3 * 4, f"the chunked stages did not run on the cluster: {ran}"
    ref = preprocess.lazy_binned_counts(eager, 2, energy_bin=4)
    np.testing.assert_allclose(binned["counts"], ref["counts"], rtol=1e-6)
    for line, m in maps.element_maps(eager).items():
        np.testing.assert_allclose(np.asarray(emaps[line].data), m.data, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sums.data, spectra.cluster_spectra(eager, labels).data)


def test_nothing_in_helpers_names_a_dask_scheduler():
    """Chunked computations use dask's default scheduler (a Client when one is active); the only
    exception writes the simulated HDF5 file, which must stay in one process."""
    allowed = {"helpers/simulate/large.py"}
    found = {str(p.relative_to(ROOT)) for p in (ROOT / "helpers").rglob("*.py")
             if re.search(r"scheduler\s*=\s*['\"]|get=dask|num_workers\s*=",
                          p.read_text(encoding="utf-8"))}
    assert found <= allowed, found - allowed


# ----------------------------------------------------------------------------- batches

@pytest.mark.timeout(180)
def test_a_batch_on_the_cluster_writes_what_the_local_runner_writes(cluster, nbdir, tmp_path):
    inputs = ["demo:a?seed=1", "demo:b?seed=2", "demo:c?seed=3"]
    local = runner.run(inputs, tmp_path / "local", notebooks_dir=nbdir, params={"N_CLUSTERS": 4})
    address = cluster.scheduler.address
    dist = hd.run_distributed(inputs, tmp_path / "dist", address, notebooks_dir=nbdir,
                              params={"N_CLUSTERS": 4})
    assert [r["status"] for r in dist] == ["ok"] * 3, [r["message"] for r in dist]
    assert [r["attempts"] for r in dist] == [1, 1, 1]
    for a, b in zip(local, dist):
        assert a["name"] == b["name"] and Path(b["folder"]).parent == tmp_path / "dist"
        _same_results(a["folder"], b["folder"])
        sa, sb = (json.loads((Path(r["folder"]) / "results" / "summary.json").read_text())
                  for r in (a, b))
        assert sb["status"] == "ok" and sb["completed"] == sa["completed"]
        assert sb["injected"]["OUTPUT_DIR"] == b["folder"]
    summary = json.loads((tmp_path / "dist" / runner.RUN_SUMMARY).read_text())
    assert summary["exit_status"] == 0 and set(summary["inputs"]) == {r["name"] for r in dist}
    assert (tmp_path / "dist" / "index.html").exists()
    assert not list((tmp_path / "dist").glob(".*.tmp-*"))     # every staging folder moved


@pytest.mark.timeout(240)
def test_a_killed_worker_is_retried_once_then_reported_and_nothing_else_is_lost(
        cluster, nbdir, tmp_path):
    """Input ``once`` kills its worker the first time (it runs again on a restarted worker and
    completes); input ``always`` kills every worker it runs on (reported failed after two
    attempts); the inputs beside them are untouched. The runs still end with their summary
    and report. ``once`` and ``always`` run in two runs: in one, ``always`` could kill the
    worker ``once`` was retried on (two deaths, and ``once`` would be failed for it)."""
    out, out_once = tmp_path / "out", tmp_path / "once"
    pids = set(cluster.run(os.getpid).values())
    results = hd.run_distributed(["demo:once?kill=once", "demo:fine?seed=8"], out_once,
                                 cluster.scheduler.address, notebooks_dir=nbdir)
    results += hd.run_distributed(["demo:always?kill=always", "demo:fine?seed=9"], out,
                                  cluster.scheduler.address, notebooks_dir=nbdir)
    by = {r["name"]: r for r in results}
    assert set(cluster.run(os.getpid).values()) != pids      # workers were really replaced
    assert by["once_killonce"]["status"] == "ok" and by["once_killonce"]["attempts"] == 2
    assert by["always_killalways"]["status"] == "failed"
    assert "KilledWorker" in by["always_killalways"]["message"], by["always_killalways"]
    for name in ("fine_seed8", "fine_seed9"):
        assert by[name]["status"] == "ok" and by[name]["attempts"] == 1
    for folder, name in ((out_once, "once_killonce"), (out_once, "fine_seed8"),
                         (out, "fine_seed9")):
        assert all((folder / name / "results" / f).exists() for f in CONTRACT)
    assert json.loads((out_once / runner.RUN_SUMMARY).read_text())["exit_status"] == 0
    summary = json.loads((out / runner.RUN_SUMMARY).read_text())
    assert summary["exit_status"] == 1
    assert summary["inputs"]["always_killalways"]["status"] == "failed"
    assert (out / "index.html").exists() and (out_once / "index.html").exists()
    assert not (out / "always_killalways").exists()           # nothing half-written in place
    assert not list(out.glob(".*.tmp-*"))          # no staging folder of a dead attempt left
