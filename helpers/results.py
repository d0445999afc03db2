"""The output contract: where results and figures go, the files' names and the tables' columns.

Every notebook writes through these functions and the batch runner reads through them, so a
name or a column is defined once. A run folder ``OUTPUT_DIR`` holds::

    OUTPUT_DIR/results/labels_workflow{1,2}.npy         cluster label per pixel, original grid, -1 unassigned
    OUTPUT_DIR/results/probabilities_workflow{1,2}.npy  posteriors (W1, rows x cols x k) / membership (W2);
                                                      with the spatial prior, its posterior marginals
    OUTPUT_DIR/results/compositions.csv (+ _detail)     COMPOSITION_COLUMNS
    OUTPUT_DIR/results/entropy.csv (+ _detail)          ENTROPY_COLUMNS
    OUTPUT_DIR/results/reproducibility_workflow{1,2}.json  split-half ARI and per-cluster Jaccard
    OUTPUT_DIR/results/split_test_workflow2.json       workflow 2's split test, cluster by cluster
    OUTPUT_DIR/results/labels_workflow{1,2}.hspy        the labels as a HyperSpy Signal2D: the input's
                                                        calibrated axes, cluster ids/names in metadata
    OUTPUT_DIR/results/cluster_spectra_workflow{1,2}.hspy  hard + weighted cluster spectra, one
                                                        EDSTEMSpectrum stack (.zspy when large)
    OUTPUT_DIR/results/cluster_names.csv                NAME_COLUMNS: short composition names
    OUTPUT_DIR/figures/NN_name.png

Interactive sessions without ``OUTPUT_DIR`` write results to ``runs/interactive/results`` and
figures to the project's ``figures/`` (or ``$HEA_FIGURE_DIR``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import DataError, OutputError
from .paths import PROJECT_ROOT

#: Label file of each workflow (integer labels on the input's original navigation grid).
LABEL_FILES = {1: "labels_workflow1.npy", 2: "labels_workflow2.npy"}
#: Split-half reproducibility of each workflow (:mod:`helpers.reproducibility`), JSON.
REPRODUCIBILITY_FILES = {1: "reproducibility_workflow1.json", 2: "reproducibility_workflow2.json"}
#: Probabilities written beside the labels (W1: posteriors per cluster; W2: membership; with the
#: spatial prior, the prior's, which agree with its labels: helpers.workflows.probabilities).
PROBABILITY_FILES = {1: "probabilities_workflow1.npy", 2: "probabilities_workflow2.npy"}
COMPOSITION_COLUMNS = ["workflow", "cluster", "n_pixels", "element", "at_percent",
                       "at_percent_err"]
ENTROPY_COLUMNS = ["workflow", "cluster", "s_conf_R", "s_conf_R_err", "metal_to_sulfur"]
#: HyperSpy-native results (stems; ``.hspy``, or ``.zspy`` above :data:`ZSPY_BYTES`).
LABEL_SIGNAL_STEMS = {1: "labels_workflow1", 2: "labels_workflow2"}
SPECTRA_SIGNAL_STEMS = {1: "cluster_spectra_workflow1", 2: "cluster_spectra_workflow2"}
#: Signals larger than this are written as chunked, compressed ``.zspy`` (zarr) instead of ``.hspy``.
ZSPY_BYTES = 256 * 2 ** 20
#: Short composition names of the clusters (:mod:`helpers.quant.names`).
NAMES_FILE = "cluster_names.csv"
NAME_COLUMNS = ["workflow", "cluster", "n_pixels", "name"]
#: The contract CSV files and their exact columns (``<stem>_detail.csv`` may add more).
CSV_SCHEMAS = {"compositions.csv": COMPOSITION_COLUMNS, "entropy.csv": ENTROPY_COLUMNS}
#: Every file a complete run leaves in ``results/`` (checked by the runner).
RESULT_FILES = tuple(LABEL_FILES.values()) + tuple(CSV_SCHEMAS)


def results_dir(output_dir=None) -> Path:
    """Where results go: ``OUTPUT_DIR/results``, or ``<project>/runs/interactive/results``."""
    if output_dir is None:
        return PROJECT_ROOT / "runs" / "interactive" / "results"
    return Path(output_dir) / "results"


def figure_dir(output_dir=None) -> Path:
    """Where figures go: ``OUTPUT_DIR/figures``, or the project's ``figures/`` when None."""
    if output_dir is None:
        env = os.environ.get("HEA_FIGURE_DIR")
        return Path(env) if env else PROJECT_ROOT / "figures"
    return Path(output_dir) / "figures"


def _writable(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the results folder {folder} ({exc.strerror or exc}): "
                          "choose a writable OUTPUT_DIR.") from None
    return folder


def save_labels(workflow, labels, probabilities=None, output_dir=None):
    """Write a workflow's labels (and probabilities) to the results folder.

    Parameters
    ----------
    workflow : int
        1 or 2.
    labels : (rows, cols) int array on the input's original grid, -1 = unassigned
    probabilities : array, optional
        Written as float32 beside the labels.
    output_dir : str or Path, optional
        Run folder (``None``: ``runs/interactive``).

    Returns
    -------
    Path of the labels file.
    """
    d = _writable(results_dir(output_dir))
    try:
        path = d / LABEL_FILES[workflow]
        np.save(path, np.asarray(labels, dtype=np.int64))
        if probabilities is not None:
            np.save(d / PROBABILITY_FILES[workflow], np.asarray(probabilities, dtype=np.float32))
    except OSError as e:
        raise OutputError(f"Cannot write labels to {d} ({e.strerror}): choose a writable "
                          "OUTPUT_DIR.") from None
    return path


def load_labels(workflow, output_dir, navigation_shape):
    """``(labels, probabilities or None)`` of a workflow from the results folder, or None when
    no labels file is there.

    Raises
    ------
    DataError
        When the file's shape is not the data's navigation shape (it belongs to another input).
    """
    if output_dir is None:
        return None
    path = results_dir(output_dir) / LABEL_FILES[workflow]
    if not path.exists():
        return None
    lab = np.load(path, allow_pickle=False)
    nav = tuple(navigation_shape)
    if lab.shape != nav:
        raise DataError(f"{path} has shape {lab.shape}, but the data's navigation shape "
                        f"is {nav}: it belongs to another input; re-run notebooks 03-04.")
    prob = None
    ppath = path.with_name(PROBABILITY_FILES[workflow])
    if ppath.exists():
        p = np.load(ppath, allow_pickle=False)
        prob = p if p.shape[:2] == nav else None
    return lab.astype(int), prob


def write_table(table, output_dir, stem, columns):
    """Write ``<stem>.csv`` (only ``columns``: the contract) and ``<stem>_detail.csv`` (every
    column of the DataFrame ``table``) into :func:`results_dir` of ``output_dir``; returns the
    path of ``<stem>.csv``."""
    folder = _writable(results_dir(output_dir))
    path = folder / f"{stem}.csv"
    table[columns].to_csv(path, index=False)
    table.to_csv(folder / f"{stem}_detail.csv", index=False)
    return path


def write_compositions(table, output_dir=None):
    """``compositions.csv`` + ``compositions_detail.csv`` from a compositions DataFrame
    (:func:`helpers.quant.compositions_frame`)."""
    return write_table(table, output_dir, "compositions", COMPOSITION_COLUMNS)


def write_entropy(table, output_dir=None):
    """``entropy.csv`` + ``entropy_detail.csv`` from :func:`helpers.entropy.entropy_table`."""
    return write_table(table, output_dir, "entropy", ENTROPY_COLUMNS)


def save_reproducibility(workflow, split, output_dir=None):
    """Write a workflow's split-half reproducibility (``SplitHalf.as_dict()``) as JSON."""
    return _write_json(_writable(results_dir(output_dir)) / REPRODUCIBILITY_FILES[workflow],
                       split)


def _write_json(path, obj):
    """``obj`` as indented JSON at ``path``; an unwritable place is refused with what to do."""
    try:
        path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise OutputError(f"Cannot write {path} ({e.strerror}): choose a writable OUTPUT_DIR.") \
            from None
    return path


#: Workflow 2's split test (:mod:`helpers.workflows.split`): one entry per cluster tested.
SPLIT_TEST_FILE = "split_test_workflow2.json"


def save_split_test(splits, output_dir=None):
    """Write workflow 2's split-test log (``WorkflowResult.params["splits"]``: a list of dicts,
    or the reason it did not run) as JSON, beside the labels it changed."""
    return _write_json(_writable(results_dir(output_dir)) / SPLIT_TEST_FILE, {"splits": splits})


def load_reproducibility(output_dir=None):
    """``{workflow: dict}`` of the split-half results written so far (missing ones left out)."""
    out = {}
    for wf, name in REPRODUCIBILITY_FILES.items():
        path = results_dir(output_dir) / name
        if path.exists():
            try:
                out[wf] = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
    return out


# --------------------------------------------------------------------------- HyperSpy-native files

def save_signal(signal, stem, output_dir=None):
    """Write a HyperSpy signal to ``results/<stem>.hspy`` (``.zspy`` when larger than
    :data:`ZSPY_BYTES`) with its own ``save``; the other format's file of that stem, left by an
    earlier run of the same folder, is removed so one version remains. Returns the path."""
    d = _writable(results_dir(output_dir))
    ext, other = (".zspy", ".hspy") if signal.data.nbytes > ZSPY_BYTES else (".hspy", ".zspy")
    path = d / f"{stem}{ext}"
    try:
        signal.save(path, overwrite=True)
    except OSError as e:
        raise OutputError(f"Cannot write {path} ({e.strerror or e}): choose a writable "
                          "OUTPUT_DIR.") from None
    stale = d / f"{stem}{other}"
    if stale.is_file():
        stale.unlink()
    elif stale.is_dir():
        import shutil
        shutil.rmtree(stale, ignore_errors=True)
    return path


def signal_path(stem, output_dir=None):
    """The ``.hspy`` or ``.zspy`` file of ``stem`` in the results folder, or None."""
    for ext in (".hspy", ".zspy"):
        path = results_dir(output_dir) / f"{stem}{ext}"
        if path.exists():
            return path
    return None


def label_signal(workflow, labels, signal, names=None):
    """A workflow's labels as a HyperSpy ``Signal2D`` on the input's calibrated grid.

    Parameters
    ----------
    workflow : int
    labels : (rows, cols) int array, -1 = noise / unassigned
    signal : HyperSpy signal
        The input spectrum image: its navigation axes (name, units, scale, offset) become the
        image's axes, so the map overlays the input in nm.
    names : dict ``{cluster: str}``, optional
        Cluster names (default ``"cluster k"``).

    Returns
    -------
    hyperspy.signals.Signal2D
        ``metadata.Clusters``: ``ids``, ``names``, ``n_pixels`` (lists in id order),
        ``workflow``, ``unassigned_label`` (-1).
    """
    import hyperspy.api as hs

    lab = np.asarray(labels, dtype=np.int32)
    nav = signal.axes_manager.navigation_axes
    if tuple(lab.shape) != tuple(a.size for a in reversed(nav)):
        raise DataError(f"labels of shape {lab.shape} do not match the input's navigation "
                        f"shape {tuple(a.size for a in reversed(nav))}.")
    out = hs.signals.Signal2D(lab)
    for src, ax in zip(nav, out.axes_manager.signal_axes):
        ax.name, ax.units, ax.scale, ax.offset = src.name, src.units, src.scale, src.offset
    ids = sorted(int(c) for c in np.unique(lab) if c >= 0)
    names = names or {}
    title = signal.metadata.get_item("General.title", "")
    out.metadata.General.title = f"Workflow {workflow} cluster labels" + (
        f" of {title}" if title else "")
    out.metadata.set_item("Clusters.workflow", int(workflow))
    out.metadata.set_item("Clusters.ids", ids)
    out.metadata.set_item("Clusters.names", [str(names.get(c, f"cluster {c}")) for c in ids])
    out.metadata.set_item("Clusters.n_pixels", [int(np.count_nonzero(lab == c)) for c in ids])
    out.metadata.set_item("Clusters.unassigned_label", -1)
    return out


def save_label_signal(workflow, labels, signal, names=None, output_dir=None):
    """:func:`label_signal` written as ``results/labels_workflow{1,2}.hspy``; returns the path."""
    return save_signal(label_signal(workflow, labels, signal, names),
                       LABEL_SIGNAL_STEMS[workflow], output_dir)


def save_cluster_spectra(workflow, spectra, output_dir=None):
    """A workflow's cluster-spectra stack (:func:`helpers.quant.cluster_spectra_stack`) written
    as ``results/cluster_spectra_workflow{1,2}.hspy``; returns the path."""
    return save_signal(spectra, SPECTRA_SIGNAL_STEMS[workflow], output_dir)


def write_cluster_names(table, output_dir=None):
    """``results/cluster_names.csv`` (:data:`NAME_COLUMNS`) from
    :func:`helpers.quant.names_frame`; returns its path."""
    path = _writable(results_dir(output_dir)) / NAMES_FILE
    table[NAME_COLUMNS].to_csv(path, index=False)
    return path


def load_cluster_names(output_dir=None):
    """``{workflow: {cluster: name}}`` from ``cluster_names.csv``; {} when it is absent."""
    import csv

    path = results_dir(output_dir) / NAMES_FILE
    if not path.exists():
        return {}
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(int(row["workflow"]), {})[int(row["cluster"])] = row["name"]
    return out
