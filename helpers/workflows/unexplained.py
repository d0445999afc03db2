"""Pixels that no cluster explains, tested as one more cluster.

Why. HDBSCAN leaves a phase smaller than ``min_cluster_size`` inside a larger cluster, and the
spatial prior's noise test then flags its pixels: no cluster's spectrum explains them, so they
become -1 (unassigned). A phase of 5 % of a particle map, 8 at% away from its neighbours at 100
counts per pixel, ends up as noise (random-scene benchmark, seed 17). A microscopist expects a
cluster there. This step, part of workflow 2's split test (:mod:`helpers.workflows.split`),
proposes those pixels as a new cluster and keeps it only if counts the search did not see
confirm it.

Method (the same sample splitting as the split test):

1. Search colour of a checkerboard only: each pixel's counts, pooled with its same-colour
   neighbours of the same best cluster, are tested against that cluster's spectrum (the prior's
   G test, :func:`helpers.spatial.noise.goodness_of_fit`; Benjamini-Hochberg at :data:`FDR`).
   The candidate: the flagged pixels whose best cluster is the one most of them share, away
   from every other cluster (an interface pixel mixes two known phases and fits neither), in
   connected groups of at least :data:`MIN_GROUP`.
2. Test colour: the pixels with at least three of their four neighbours in the candidate and
   the same best cluster on their own counts, against that cluster's interior pixels: a Wald
   chi-square of the line-intensity fractions (:func:`helpers.workflows.fractions.wald_fractions`,
   a change by absorption alone not counted).
3. Accepted, the candidate's pixels seed a new cluster and the spatial prior relabels the map.

Hand-written for the same reason as the split test: no package tests Poisson counts for an
unexplained region.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..spatial import encode
from ..spatial.counts import cluster_log_spectra
from ..spatial.noise import benjamini_hochberg, goodness_of_fit

#: False-discovery rate of the search's goodness-of-fit flags (the prior's noise test uses the
#: same rate).
FDR = 0.01
#: Smallest connected group of flagged search pixels kept (false discoveries are scattered).
MIN_GROUP = 5


def unexplained_candidate(prep, labels, search, fdr=FDR, min_group=MIN_GROUP, edge=2):
    """Pixels that no cluster explains, near one cluster, for the search and for the test.

    Parameters
    ----------
    prep : PreparedCounts
        The spatial prior's prepared counts (``SpatialResult.prepared``).
    labels : (rows, cols) int
        Current labels, -1 = unassigned.
    search : (rows, cols) bool
        The search colour.
    edge : int
        Pixels this close to a cluster other than the nearest one are left out: a pixel on an
        interface mixes two known phases and fits neither.

    Returns
    -------
    cand : (rows, cols) bool or None
        Flagged search pixels whose best cluster is ``ref``, in groups of ``min_group`` (None:
        there are none).
    test : (rows, cols) bool or None
        Pixels of the other colour with at least 3 of their 4 neighbours in ``cand`` and
        ``ref`` as their own best cluster (decided on their own counts).
    ref : int
        The label (of ``labels``) that explains most of the flagged pixels best.
    """
    labels = np.asarray(labels)
    m = prep.mask
    clusters, cur = encode(labels[m])
    if clusters.size == 0 or not (cur < 0).any():
        return None, None, -1
    logp = cluster_log_spectra(prep, cur, clusters.size)
    best = np.where(cur >= 0, cur, np.argmax(prep.dot(logp.T), axis=1))   # by likelihood
    on = search[m]
    pval, _, _ = goodness_of_fit(prep, np.where(on, best, -1), logp, pool=True)
    flags = np.zeros(on.size, bool)
    flags[on] = benjamini_hochberg(pval[on], fdr)
    if not flags.any():
        return None, None, -1
    k = int(np.argmax(np.bincount(best[flags], minlength=clusters.size)))
    near_other = ndi.binary_dilation((labels >= 0) & (labels != clusters[k]),
                                     np.ones((2 * edge + 1,) * 2))
    img, own = np.zeros(m.shape, bool), np.zeros(m.shape, bool)
    img[m] = flags & (best == k)
    own[m] = best == k
    img &= ~near_other
    comp, _ = ndi.label(img, structure=np.ones((3, 3)))     # search pixels touch diagonally
    size = np.bincount(comp.ravel())
    size[0] = 0
    cand = size[comp] >= min_group
    if not cand.any():
        return None, None, -1
    cross = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float)
    near = ndi.convolve(cand.astype(float), cross, mode="constant")
    test = (near >= 3) & ~search & m & own & ~near_other
    return cand, test, int(clusters[k])
