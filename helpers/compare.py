"""Agreement between the two workflows, and "is this split real?" tests between clusters.

* :func:`contingency_table` and :func:`adjusted_rand` (scikit-learn's ARI, via
  :func:`helpers.cluster.ari`) say how far the two segmentations agree pixel by pixel.
* :func:`composition_difference` asks, element by element, whether two clusters differ in
  composition by more than counting noise allows::

      z_i = (x_a,i - x_b,i) / sqrt(sigma_a,i^2 + sigma_b,i^2)

  with the *counting* sigmas of :mod:`helpers.quant` (the k-factor error is common to clusters of
  one dataset and cancels in the difference). Two-sided p-values are Bonferroni-corrected for the
  number of elements tested, so "significant" means ``p * n_elements < alpha``.

  Caveats. Clusters of one hard segmentation have disjoint pixels, so their errors are
  independent; soft (probability-weighted) spectra share pixels and the z-score is then
  conservative-to-wrong. A clustering chooses its split to separate pixels, partly on noise, so
  a z-score computed on the same counts is slightly optimistic; a real composition difference
  shows up as |z| far above the threshold, a noise split hovers around it.
"""
from __future__ import annotations

import numpy as np

from .quant import quantify_clusters
from .cluster import ari
from .errors import ParameterError
from .preprocess import thin_counts


def adjusted_rand(labels_a, labels_b, exclude_noise=False, exclude=None):
    """Adjusted Rand index between two labelings (1 = identical up to renaming, ~0 = chance).

    Noise (-1) counts as a label of its own unless ``exclude_noise``.
    """
    return ari(labels_a, labels_b, exclude=exclude, exclude_noise=exclude_noise)


def contingency_table(labels_a, labels_b, names=("workflow 1", "workflow 2")):
    """Pixel counts of every (cluster of a, cluster of b) pair, noise (-1) included, as a
    pandas DataFrame (rows: ``labels_a``; columns: ``labels_b``)."""
    import pandas as pd

    a = np.asarray(labels_a).ravel()
    b = np.asarray(labels_b).ravel()
    if a.shape != b.shape:
        raise ParameterError(f"Label arrays differ in size ({a.size} vs {b.size}): compare "
                             "labels of the same map (original resolution).")
    ct = pd.crosstab(pd.Series(a, name=names[0]), pd.Series(b, name=names[1]))
    return ct


def match_clusters(labels_a, labels_b):
    """Pair each cluster of ``a`` with the cluster of ``b`` it shares most pixels with
    (Hungarian assignment on the contingency table, noise ignored).

    Returns
    -------
    list of (cluster_a, cluster_b, shared_pixels)
    """
    from scipy.optimize import linear_sum_assignment

    ct = contingency_table(labels_a, labels_b)
    ct = ct.loc[[r for r in ct.index if r >= 0], [c for c in ct.columns if c >= 0]]
    if ct.size == 0:
        return []
    r, c = linear_sum_assignment(-ct.values)
    return [(int(ct.index[i]), int(ct.columns[j]), int(ct.values[i, j])) for i, j in zip(r, c)]


def composition_difference(comp_a, comp_b, error="counting", alpha=0.05):
    """Per-element z-score of the composition difference of two clusters.

    Parameters
    ----------
    comp_a, comp_b : helpers.quant.Composition
    error : {"counting", "total"}
        Which sigma: ``"counting"`` for clusters of the same dataset (default), ``"total"`` for
        compositions measured with different k-factor tables or instruments.
    alpha : float
        Family-wise significance level (Bonferroni over the elements).

    Returns
    -------
    pandas.DataFrame
        element, at_percent_a, at_percent_b, difference, sigma, z, p, significant.
    """
    import pandas as pd
    from scipy.stats import norm

    if list(comp_a.elements) != list(comp_b.elements):
        raise ParameterError("The two compositions have different elements: quantify both with "
                             "the same element list.")
    if error not in ("counting", "total"):
        raise ParameterError("error must be 'counting' or 'total'.")
    ea = comp_a.err_counting if error == "counting" else comp_a.err_total
    eb = comp_b.err_counting if error == "counting" else comp_b.err_total
    d = comp_a.at_percent - comp_b.at_percent
    sig = np.sqrt(ea ** 2 + eb ** 2)
    z = np.divide(d, sig, out=np.zeros_like(d), where=sig > 0)
    p = 2 * norm.sf(np.abs(z))
    n = len(d)
    return pd.DataFrame(dict(element=comp_a.elements, at_percent_a=comp_a.at_percent,
                             at_percent_b=comp_b.at_percent, difference=d, sigma=sig, z=z, p=p,
                             significant=p * n < alpha))


def z_threshold(n_elements, alpha=0.05):
    """|z| above which a difference is significant (two-sided, Bonferroni over ``n_elements``)."""
    from scipy.stats import norm

    return float(norm.isf(alpha / (2 * n_elements)))


def split_significance(quant, cluster_a, cluster_b, error="counting", alpha=0.05):
    """"Is this split real?" for two clusters of one :class:`helpers.quant.ClusterQuant`.

    Returns
    -------
    (bool, DataFrame)
        True when at least one element differs significantly; the per-element table.
    """
    for c in (cluster_a, cluster_b):
        if c not in quant.compositions:
            raise ParameterError(f"Cluster {c} is not in workflow {quant.workflow}'s "
                                 f"quantification (clusters {quant.clusters}).")
    df = composition_difference(quant.compositions[cluster_a], quant.compositions[cluster_b],
                                error, alpha)
    return bool(df["significant"].any()), df


def heldout_split_significance(signal, cluster, fraction=0.5, seed=0, elements=None,
                               kfactors=None, error="counting", alpha=0.05):
    """"Is this split real?" without double dipping: cluster one half of the counts, test the
    compositions on the other half.

    A clustering picks its boundaries partly on noise, so clusters of one homogeneous phase
    differ in the very counts that defined them; z-scores computed on those counts are inflated.
    After binomial thinning (:func:`thin_counts`) the held-out half is independent of the labels,
    and the z-test has its nominal error rate (count splitting, Neufeld et al. 2022).

    Parameters
    ----------
    signal : EDSTEMSpectrum of raw counts
    cluster : callable
        ``cluster(train_signal) -> labels`` (rows, cols), e.g.
        ``lambda s: helpers.cluster.workflow1(s, n_clusters=2).labels``.
    fraction : float
        Share of the counts used for clustering.

    Returns
    -------
    quant : ClusterQuant of the held-out counts
    table : DataFrame with one row per (cluster pair, element): cluster_a, cluster_b, element,
        difference, sigma, z, p, significant
    """
    import pandas as pd

    train, test = thin_counts(signal, fraction, seed)
    labels = np.asarray(cluster(train))
    q = quantify_clusters(test, labels, workflow="held-out", elements=elements,
                                 kfactors=kfactors)
    rows = []
    for i, a in enumerate(q.clusters):
        for b in q.clusters[i + 1:]:
            df = composition_difference(q.compositions[a], q.compositions[b], error, alpha)
            rows.append(df.assign(cluster_a=a, cluster_b=b))
    cols = ["cluster_a", "cluster_b", "element", "difference", "sigma", "z", "p", "significant"]
    table = pd.concat(rows, ignore_index=True)[cols] if rows else pd.DataFrame(columns=cols)
    return q, table


def pairwise_max_z(quant, error="counting"):
    """Largest |z| over elements for every pair of clusters of one workflow (a square table)."""
    import pandas as pd

    cl = [c for c in quant.clusters if quant.compositions[c].quantified]
    out = pd.DataFrame(np.zeros((len(cl), len(cl))), index=cl, columns=cl)
    for i, a in enumerate(cl):
        for b in cl[i + 1:]:
            z = composition_difference(quant.compositions[a], quant.compositions[b], error)["z"]
            out.loc[a, b] = out.loc[b, a] = float(np.abs(z).max())
    out.index.name = f"workflow {quant.workflow}"
    return out


def least_distinct_pair(quant, error="counting"):
    """The two clusters of a workflow whose compositions are closest in units of their errors
    (smallest maximum |z|): the split most likely to be an artefact. None for < 2 clusters."""
    cl = [c for c in quant.clusters if quant.compositions[c].quantified]
    if len(cl) < 2:
        return None
    t = pairwise_max_z(quant, error)
    best = min(((a, b) for i, a in enumerate(cl) for b in cl[i + 1:]), key=lambda p: t.loc[p])
    return best


def workflow_composition_comparison(quant_a, quant_b, labels_a, labels_b):
    """Compositions of matched clusters of the two workflows side by side.

    Clusters are paired by :func:`match_clusters`. The z-scores use total sigmas *without*
    claiming independence: matched clusters share pixels, so read them as a distance in units
    of the error bars, not as a test.

    Returns
    -------
    pandas.DataFrame
        cluster_a, cluster_b, shared_pixels, element, at_percent_a, err_a, at_percent_b, err_b,
        difference.
    """
    import pandas as pd

    rows = []
    for a, b, shared in match_clusters(labels_a, labels_b):
        if a not in quant_a.compositions or b not in quant_b.compositions:
            continue
        ca, cb = quant_a.compositions[a], quant_b.compositions[b]
        for i, e in enumerate(ca.elements):
            rows.append(dict(cluster_a=a, cluster_b=b, shared_pixels=shared, element=e,
                             at_percent_a=ca.at_percent[i], err_a=ca.err_counting[i],
                             at_percent_b=cb.at_percent[i], err_b=cb.err_counting[i],
                             difference=ca.at_percent[i] - cb.at_percent[i]))
    return pd.DataFrame(rows)
