"""Split-half reproducibility: how far a clustering comes back on independent halves of the counts.

No ground truth is needed. Every pixel's counts are split into two halves by binomial thinning
(:func:`helpers.preprocess.thin_counts`, p = 1/2): for Poisson data the halves are *independent*
Poisson maps with half the dose each, the same sample seen twice. The workflow is run on each
half, and

* the adjusted Rand index between the two halves' labels says how reproducible the partition
  is as a whole (noise counted as a label of its own);
* per cluster of the full-data result, its overlap (Jaccard index, shared pixels over pixels in
  either) with its best match in each half, averaged over the two halves (Hennig's clusterwise
  stability, Comput. Stat. Data Anal. 52, 258, 2007: below 0.5 a cluster "dissolves", above
  0.75 it is stable) says whether *that cluster* comes back. A phase comes back; a cluster cut
  out of noise does not.

The halves hold half the counts, so the numbers are a conservative (lower) estimate of the
full data's reproducibility; a cluster that fails here is one to distrust, not necessarily wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import progress
from .cluster import ari
from .preprocess import thin_counts


@dataclass
class SplitHalf:
    """Result of :func:`split_half`.

    Attributes
    ----------
    ari : float
        Adjusted Rand index between the two halves' labels (sample pixels, noise a label);
        NaN when neither half splits the sample (one cluster in both: trivially "reproduced",
        so it says nothing about phases, and the chance-adjusted index is 0/0).
    jaccard : dict ``{cluster: float}``
        Per cluster of the full-data labels: its Jaccard overlap with its best match in each
        half, averaged over the two halves (0 when a half has no cluster there).
    labels_a, labels_b : arrays
        The halves' labels (original grid).
    """

    ari: float
    jaccard: dict
    labels_a: np.ndarray = field(repr=False, default=None)
    labels_b: np.ndarray = field(repr=False, default=None)

    def table(self):
        """``cluster, jaccard, reproduced`` (Jaccard >= 0.5) as a DataFrame."""
        import pandas as pd

        return pd.DataFrame([dict(cluster=c, jaccard=j, reproduced=bool(j >= 0.5))
                             for c, j in self.jaccard.items()])

    @property
    def ari_text(self):
        """The ARI for printing (:func:`ari_text`)."""
        return ari_text(self.ari)

    def as_dict(self):
        """Plain numbers for ``summary.json``."""
        return {"ari_between_halves": None if not np.isfinite(self.ari) else self.ari,
                "jaccard": {str(c): round(float(j), 4) for c, j in self.jaccard.items()}}


def ari_text(value):
    """A split-half ARI for printing: three decimals, or why there is none (NaN or None, as
    in ``summary.json``: one cluster in both halves)."""
    if value is None or not np.isfinite(value):
        return "n/a (one cluster in both halves)"
    return f"{value:.3f}"


def jaccard_matrix(labels_a, labels_b, mask=None):
    """Jaccard index of every (cluster of a, cluster of b) pair, noise (-1) left out.

    Returns
    -------
    (clusters_a, clusters_b, (len(a), len(b)) array)
    """
    a = np.asarray(labels_a).ravel()
    b = np.asarray(labels_b).ravel()
    keep = np.ones(a.size, bool) if mask is None else np.asarray(mask, bool).ravel()
    ca = [int(c) for c in np.unique(a[keep]) if c >= 0]
    cb = [int(c) for c in np.unique(b[keep]) if c >= 0]
    J = np.zeros((len(ca), len(cb)))
    for i, x in enumerate(ca):
        ma = keep & (a == x)
        for j, y in enumerate(cb):
            mb = keep & (b == y)
            union = np.count_nonzero(ma | mb)
            J[i, j] = np.count_nonzero(ma & mb) / union if union else 0.0
    return ca, cb, J


def split_half(signal, run, labels_full, mask=None, seed=0):
    """Split-half reproducibility of a clustering (see the module docstring).

    Parameters
    ----------
    signal : EDS spectrum image of raw counts
    run : callable
        ``run(signal) -> labels`` on the original grid (e.g.
        ``lambda s: helpers.workflows.workflow2(s, params, cache=False).labels``).
    labels_full : (rows, cols) int
        The labels of the full data, whose clusters are reported.
    mask : (rows, cols) bool, optional
        Pixels to compare (sample); default those labelled in the full data or either half.
    seed : int
        Seed of the thinning.

    Returns
    -------
    SplitHalf
    """
    half_a, half_b = thin_counts(signal, 0.5, seed=seed)
    la, lb = (np.asarray(run(h)) for h in progress.bar((half_a, half_b), total=2,
                                                         desc="split-half reruns"))
    full = np.asarray(labels_full)
    if mask is None:
        mask = (full >= 0) | (la >= 0) | (lb >= 0)
    mask = np.asarray(mask, bool)
    ks, _, Ja = jaccard_matrix(full, la, mask)
    _, _, Jb = jaccard_matrix(full, lb, mask)
    best = [J.max(axis=1) if J.size else np.zeros(len(ks)) for J in (Ja, Jb)]
    out = {k: float((best[0][i] + best[1][i]) / 2) for i, k in enumerate(ks)}
    trivial = all(np.unique(x[mask]).size < 2 for x in (la, lb))
    a = float("nan") if trivial else ari(la, lb, exclude=~mask)
    return SplitHalf(ari=a, jaccard=out, labels_a=la, labels_b=lb)
