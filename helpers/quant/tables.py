"""Tables of cluster compositions: Table-1 style, long format for the results files, k-factors
used, the comparison with a demo's ground truth and with window integration."""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from .clusters import quant_lines
from .names import display_name


def composition_table(quant, error="total", digits=2):
    """Table-1-style wide table: rows = elements, columns = clusters (number and name,
    ``"cluster 0 · Ag–Cd rich"``), cells ``"x ± σ"``.

    Parameters
    ----------
    quant : ClusterQuant
    error : {"total", "counting"}
    """
    import pandas as pd

    if error not in ("total", "counting"):
        raise ParameterError("error must be 'total' or 'counting'.")
    cols = {}
    names = getattr(quant, "names", None) or {}
    for c in quant.clusters:
        comp = quant.compositions[c]
        err = comp.err_total if error == "total" else comp.err_counting
        cols[f"cluster {display_name(c, names.get(c))}"] = [
            f"{x:.{digits}f} ± {e:.{digits}f}" if comp.quantified else "n/a"
            for x, e in zip(comp.at_percent, err)]
    df = pd.DataFrame(cols, index=quant.elements)
    df.index.name = f"workflow {quant.workflow} (at%)"
    return df


def truth_table(quant, truth):
    """Compare a workflow's cluster compositions with a demo's ground truth.

    Each cluster is matched to the phase most of its pixels belong to. Returns a long table:
    cluster, phase, purity (fraction of the cluster's pixels in that phase), element,
    at_percent, true_at_percent, error, z_counting (error / counting σ).
    """
    import pandas as pd

    rows = []
    spectra_ids = list(quant.clusters)
    for c in spectra_ids:
        comp = quant.compositions[c]
        if not comp.quantified:
            continue
        lab = quant.labels if getattr(quant, "labels", None) is not None else None
        if lab is None:
            raise ParameterError("truth_table needs the labels: pass a ClusterQuant from "
                                 "quantify_clusters.")
        tl = truth.labels[lab == c]
        tl = tl[tl >= 0]
        if tl.size == 0:
            continue
        ph = int(np.bincount(tl).argmax())
        purity = float(np.mean(truth.labels[lab == c] == ph))
        tr = truth.compositions[truth.phase_names[ph]]
        for e, x, sc in zip(comp.elements, comp.at_percent, comp.err_counting):
            t = tr.get(e, 0.0)
            rows.append(dict(cluster=c, phase=truth.phase_names[ph], purity=purity, element=e,
                             at_percent=float(x), true_at_percent=float(t),
                             error=float(x - t), z_counting=float((x - t) / sc) if sc > 0
                             else np.nan))
    return pd.DataFrame(rows)


def method_difference(fit_quants, window_quants):
    """At% from windows minus at% from the fit for every (workflow, cluster, element), sorted by
    the size of the difference (``{workflow: ClusterQuant}`` dicts of both methods)."""
    import pandas as pd

    rows = []
    for wf, qf in fit_quants.items():
        qw = window_quants.get(wf)
        if qw is None:
            continue
        for c in qf.clusters:
            if c not in qw.compositions:
                continue
            f, w = qf.compositions[c], qw.compositions[c]
            for i, e in enumerate(f.elements):
                rows.append(dict(workflow=wf, cluster=c, element=e, at_percent_fit=f.at_percent[i],
                                 err_counting_fit=f.err_counting[i],
                                 at_percent_windows=w.at_percent[i],
                                 windows_minus_fit=w.at_percent[i] - f.at_percent[i]))
    df = pd.DataFrame(rows)
    return df.reindex(df["windows_minus_fit"].abs().sort_values(ascending=False).index) \
        .reset_index(drop=True)


def kfactor_table(signal, elements=None, kfactors=None):
    """The line and k-factor (± 1σ) used for each element, as a DataFrame."""
    import pandas as pd

    lines = quant_lines(signal, elements, kfactors)
    return pd.DataFrame([dict(element=kf.element, line=kf.xray_line, k_factor=kf.k,
                              k_factor_err=kf.k_err, relative_err=kf.k_err / kf.k)
                         for kf in lines]).set_index("element")


def compositions_frame(quants):
    """One long table of several :class:`ClusterQuant` (``ClusterQuant.table()`` stacked): the
    rows of ``compositions.csv`` (:func:`helpers.results.write_compositions`)."""
    import pandas as pd

    return pd.concat([q.table() for q in quants], ignore_index=True)


def fit_quality(quant):
    """One line on how well the line model explains each cluster spectrum of a workflow:
    the range of the fits' reduced chi^2 (1 = Poisson noise only)."""
    chi2 = [quant.compositions[c].fit.reduced_chi2 for c in quant.clusters
            if quant.compositions[c].fit is not None]
    if not chi2:
        return f"workflow {quant.workflow}: {len(quant.clusters)} clusters (not fitted)"
    return (f"workflow {quant.workflow}: {len(quant.clusters)} clusters, reduced chi^2 of the fits "
            f"{min(chi2):.2f}-{max(chi2):.2f} (1 = the model explains the spectrum to Poisson noise)")


def first_fitted(quants):
    """``(workflow, cluster)`` of the first cluster with a fitted spectrum (workflow 1 first), or
    None when no cluster could be quantified: what notebook 05 shows as its example."""
    for wf in sorted(quants, key=str):
        q = quants[wf]
        for c in q.clusters:
            if q.compositions[c].fit is not None:
                return wf, c
    return None


def save_results(signal, labels, quants, output_dir=None):
    """Write what notebook 05 produces into ``OUTPUT_DIR/results``.

    ``compositions.csv`` (+ ``_detail``, which carries the ``name`` column),
    ``cluster_names.csv``, and for each workflow with clusters its labels as a HyperSpy signal
    with the names (``labels_workflow{1,2}.hspy``) and its hard + weighted cluster spectra
    (``cluster_spectra_workflow{1,2}.hspy``, :func:`cluster_spectra_stack`).

    Parameters
    ----------
    signal : EDSTEMSpectrum
        The raw-count spectrum image.
    labels : dict ``{workflow: (labels, probabilities or None)}``
        From :func:`helpers.workflows.workflow_labels`.
    quants : dict ``{workflow: ClusterQuant}``
        From :func:`quantify_workflows` (names attached).
    output_dir : str or Path, optional

    Returns
    -------
    list of Path, in the order written.
    """
    from .. import results
    from .names import names_frame
    from .spectra import cluster_spectra_stack

    paths = [results.write_compositions(compositions_frame(quants.values()), output_dir),
             results.write_cluster_names(names_frame(quants), output_dir)]
    for wf, (lab, prob) in labels.items():
        if wf not in quants:
            continue
        names = quants[wf].names
        paths.append(results.save_label_signal(wf, lab, signal, names, output_dir))
        stack = cluster_spectra_stack(signal, lab, prob, names, workflow=wf)
        paths.append(results.save_cluster_spectra(wf, stack, output_dir))
    return paths
