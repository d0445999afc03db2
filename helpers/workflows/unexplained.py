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
   The flagged pixels whose best cluster is the one most of them share give a first spectrum
   of what that cluster does not explain; each pixel's log-likelihood ratio of that spectrum
   against the cluster's, pooled as above, keeps those above :data:`LLR_THRESHOLD`, and the
   spectrum is re-estimated from them (:data:`DIRECTION_ROUNDS` times). An omnibus test spreads
   its power over every channel, this ratio spends it on the one difference: held-out random
   scene 62, a 3 % phase 12 at% off at 50 counts per pixel, gets 9 of its 239 search pixels
   flagged at a false-discovery rate of 1 %, about 90 by the ratio. The candidate: those pixels in
   connected groups of at least :data:`MIN_GROUP`.
2. Test colour: the pixels with at least :data:`MIN_NEIGHBOURS` of their four neighbours in the
   candidate and the same best cluster on their own counts, against that cluster's interior
   pixels: a Wald chi-square of the line-intensity fractions
   (:func:`helpers.workflows.fractions.wald_fractions`), not counting a change by absorption
   alone nor by a mixture with a cluster the reference touches
   (:func:`helpers.workflows.fractions.mixing_directions`): an interface pixel mixes two known
   phases and fits neither, so the candidate may hold interfaces, which the test then does not
   count. (Interfaces used to be left out of the candidate; scene 62's phase lies in specks of
   about 10 px, 72 % of its pixels within 2 px of another cluster.)
3. Accepted, the candidate's pixels seed a new cluster and the spatial prior relabels the map.

Hand-written for the same reason as the split test: no package tests Poisson counts for an
unexplained region.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..spatial import encode
from ..spatial.counts import cluster_log_spectra
from ..spatial.noise import _same_label_adjacency, benjamini_hochberg, goodness_of_fit

#: False-discovery rate of the search's goodness-of-fit flags: lenient, since they only give
#: the first spectrum of what no cluster explains (:data:`LLR_THRESHOLD` selects the pixels).
FDR = 0.1
#: Pooled log-likelihood ratio (the flagged pixels' spectrum against the cluster's) above which
#: a search pixel is in the candidate, and how many times that spectrum is re-estimated.
LLR_THRESHOLD = 6.0
DIRECTION_ROUNDS = 2
#: Of a test pixel's four neighbours (all of the search colour), how many must be in the
#: candidate (3 left specks of about 10 px with too few test pixels).
MIN_NEIGHBOURS = 2
#: Smallest connected group of flagged search pixels kept (false discoveries are scattered).
MIN_GROUP = 5


def unexplained_candidate(prep, labels, search, fdr=FDR, min_group=MIN_GROUP):
    """Pixels that no cluster explains, near one cluster, for the search and for the test.

    Parameters
    ----------
    prep : PreparedCounts
        The spatial prior's prepared counts (``SpatialResult.prepared``).
    labels : (rows, cols) int
        Current labels, -1 = unassigned.
    search : (rows, cols) bool
        The search colour. Interface pixels are not left out: the test does not count what a
        mixture with a neighbouring cluster changes.

    Returns
    -------
    cand : (rows, cols) bool or None
        Search pixels whose best cluster is ``ref`` and whose pooled counts favour the flagged
        pixels' spectrum (:func:`_likelier_elsewhere`), in groups of ``min_group`` (None: there
        are none).
    test : (rows, cols) bool or None
        Pixels of the other colour with at least :data:`MIN_NEIGHBOURS` of their 4 neighbours
        in ``cand`` and ``ref`` as their own best cluster (decided on their own counts).
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
    img, own = np.zeros(m.shape, bool), np.zeros(m.shape, bool)
    img[m] = _likelier_elsewhere(prep, on, best, flags, logp, k)     # of best cluster k
    own[m] = best == k
    comp, _ = ndi.label(img, structure=np.ones((3, 3)))     # search pixels touch diagonally
    size = np.bincount(comp.ravel())
    size[0] = 0
    cand = size[comp] >= min_group
    if not cand.any():
        return None, None, -1
    cross = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float)
    near = ndi.convolve(cand.astype(float), cross, mode="constant")
    test = (near >= MIN_NEIGHBOURS) & ~search & m & own
    return cand, test, int(clusters[k])


def _likelier_elsewhere(prep, on, best, flags, logp, k, threshold=LLR_THRESHOLD,
                        rounds=DIRECTION_ROUNDS):
    """Search pixels (``on``) of best cluster ``k`` whose counts, pooled with their
    same-colour neighbours of that cluster, are likelier under the summed spectrum of the
    ``flags`` pixels than under ``k``'s own (log-likelihood ratio above ``threshold``); the
    spectrum re-estimated from the pixels kept, ``rounds`` times. Only search-colour counts."""
    own = on & (best == k)
    sel = flags & own
    adj = _same_label_adjacency(prep.mask, np.where(own, 0, -1), 8)
    for _ in range(rounds):
        spec = prep.label_sums(np.where(sel, 0, -1), 1)[0]
        # shrunk halfway to the cluster's own spectrum: a few dozen pixels' summed counts are
        # noise in most channels, and their logarithm rewards that noise (scene 62: the raw
        # spectrum of 36 flagged pixels keeps 1 pixel, shrunk 110, 90 of them the phase's)
        spec = spec + spec.sum() * np.exp(logp[k])
        llr = prep.dot((np.log(spec / spec.sum()) - logp[k])[:, None])[:, 0]
        sel = own & ((llr + adj @ llr) > threshold)
        if not sel.any():
            break
    return sel
