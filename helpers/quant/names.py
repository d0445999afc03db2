"""Cluster names a reader understands: a short label from each cluster's composition.

The rule (:func:`cluster_names`), applied to the clusters of one workflow:

1. The *map mean* is the pixel-weighted mean composition of the workflow's quantified clusters
   (each cluster's at% weighted by its number of pixels): the composition of the whole
   clustered area.
2. An element *stands out* in a cluster when its at% exceeds the map mean by at least
   :data:`MIN_RATIO` times (10 % relative), by at least :data:`MIN_EXCESS` at% and by more than
   twice its error bar (total σ, when known).
3. The name is the standing-out elements, at most :data:`MAX_ELEMENTS`, most enriched (largest
   ratio to the mean) first, joined by en dashes: ``"Ag–Cd rich"``.
4. When no element stands out: ``"near-equimolar"`` if the cluster's elements (anions S, Se,
   Te, O, N, C left out when other elements remain) are mixed within
   :data:`EQUIMOLAR_FRACTION` of the ideal entropy ``ln N``; otherwise ``"near map mean"``
   (``"whole map"`` when the workflow has one cluster). A cluster without a composition is
   ``"not quantified"``.
5. Names are made unique within the workflow: clusters sharing a name get the next most
   enriched element added (ratio > 1), and if that does not separate them, ``" #2"``, ``" #3"``
   in cluster order.

The rule depends only on the compositions, so the same data give the same names. Use
:func:`display_name` (``"0 · Ag–Cd rich"``) in legends and tables so the number stays visible.
"""
from __future__ import annotations

import numpy as np

MIN_RATIO = 1.1
MIN_EXCESS = 1.0
MAX_ELEMENTS = 3
EQUIMOLAR_FRACTION = 0.9
ANIONS = ("S", "Se", "Te", "O", "N", "C")


def _map_mean(quant, ids):
    comps = [quant.compositions[c] for c in ids]
    w = np.array([float(comp.n_pixels or 0) for comp in comps])
    x = np.array([comp.at_percent for comp in comps], dtype=float)
    if w.sum() <= 0:
        w = np.ones(len(comps))
    return (w[:, None] * x).sum(0) / w.sum()


def _ranked(comp, mean):
    """(symbol, ratio, stands out) of elements above the mean, most enriched first."""
    x = np.asarray(comp.at_percent, float)
    err = np.asarray(comp.err_total, float) if comp.err_total is not None else np.zeros_like(x)
    err = np.where(np.isfinite(err), err, 0.0)
    ratio = np.where(mean > 0, x / np.where(mean > 0, mean, 1.0), np.inf)
    excess = x - mean
    out = [(e, float(r), bool(r >= MIN_RATIO and d >= MIN_EXCESS and d > 2 * s))
           for e, r, d, s in zip(comp.elements, ratio, excess, err) if d > 0]
    return sorted(out, key=lambda t: (-t[1], t[0]))


def _near_equimolar(comp):
    from scipy.stats import entropy

    x = np.asarray(comp.at_percent, float)
    keep = [i for i, e in enumerate(comp.elements) if e not in ANIONS]
    x = x[keep] if len(keep) >= 2 else x
    x = x[x > 0]
    return len(x) >= 2 and entropy(x) >= EQUIMOLAR_FRACTION * np.log(len(x))


def _base_name(comp, mean, single):
    ranked = _ranked(comp, mean)
    top = [e for e, _, stands_out in ranked if stands_out][:MAX_ELEMENTS]
    if top:
        return "–".join(top) + " rich", ranked
    if _near_equimolar(comp):
        return "near-equimolar", ranked
    return ("whole map" if single else "near map mean"), ranked


def cluster_names(quant):
    """Short composition names of a workflow's clusters (rule in the module docstring).

    Parameters
    ----------
    quant : ClusterQuant
        One workflow's quantification (:func:`helpers.quant.quantify_clusters`).

    Returns
    -------
    dict ``{cluster: name}``, unique names, e.g. ``{0: "Zn–Mn–S rich", 1: "Cu–Fe rich"}``.
    """
    ids = [c for c in quant.clusters if quant.compositions[c].quantified]
    names = {c: "not quantified" for c in quant.clusters if c not in ids}
    if not ids:
        return names
    mean = _map_mean(quant, ids)
    base = {c: _base_name(quant.compositions[c], mean, len(ids) == 1) for c in ids}
    named = {c: b[0] for c, b in base.items()}
    for c in ids:   # clusters sharing a name: add the next most enriched element
        twins = [d for d in ids if named[d] == named[c]]
        if len(twins) > 1 and named[c].endswith(" rich"):
            for d in twins:
                used = named[d][:-len(" rich")].split("–")
                extra = [e for e, _, _ in base[d][1] if e not in used][:1]
                if extra:
                    named[d] = "–".join(used + extra) + " rich"
    seen = {}
    for c in ids:   # still shared: number them in cluster order
        seen[named[c]] = seen.get(named[c], 0) + 1
        names[c] = named[c] if seen[named[c]] == 1 else f"{named[c]} #{seen[named[c]]}"
    return {c: names[c] for c in quant.clusters}


def display_name(cluster, name=None):
    """``"0 · Ag–Cd rich"``: the cluster number and its name, for legends and table headers."""
    return f"{cluster}" if not name else f"{cluster} · {name}"


def name_workflows(quants):
    """Attach :func:`cluster_names` to every :class:`ClusterQuant` of ``quants`` (its ``names``)
    and return ``{workflow: {cluster: name}}``."""
    out = {}
    for wf, q in quants.items():
        q.names = cluster_names(q)
        out[wf] = dict(q.names)
    return out


def names_frame(quants):
    """Table of the names: ``workflow, cluster, n_pixels, name`` (``cluster_names.csv``)."""
    import pandas as pd

    rows = []
    for wf, q in quants.items():
        names = q.names if getattr(q, "names", None) else cluster_names(q)
        for c in q.clusters:
            rows.append(dict(workflow=wf, cluster=c, n_pixels=q.compositions[c].n_pixels,
                             name=names[c]))
    return pd.DataFrame(rows, columns=["workflow", "cluster", "n_pixels", "name"])
