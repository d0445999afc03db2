"""Multinomial mixtures of count rows: soft EM from a partition, classification by likelihood,
and a partition refitted as a mixture (workflow 1's polish of its GMM starts, workflow 2's of its
clusters).

Hand-written because scikit-learn's mixtures are Gaussian: at a few counts per pixel the exact
model of counts (multinomial given each pixel's total) is what separates close spectra.
"""
from __future__ import annotations

import numpy as np

from .cluster import relabel_by_size

#: Pseudo-count added to every channel of a cluster spectrum (avoids log 0).
PSEUDO_COUNT = 0.5


def _log_normaliser(ll):
    """Row-wise log of the sum of exp(``ll``), (n, 1): scipy.special's logsumexp without its
    input checks (3x faster on the slider's 15,000 x k arrays)."""
    top = ll.max(axis=1, keepdims=True)
    return top + np.log(np.exp(ll - top).sum(axis=1, keepdims=True))


def mixture_em(counts, labels, max_iter=300, tol=1e-7):
    """Maximum-likelihood multinomial mixture of count rows (soft EM), started from a partition.

    Each pixel's counts are multinomial given its total under its cluster's spectrum; EM
    weighs every pixel into every cluster by its posterior, where classification EM
    (:func:`helpers.cluster.poisson_mixture_refine`) gives it wholly to one. At a few counts
    per pixel the hard version drifts: each cluster's spectrum is learnt from the pixels it
    already won, so two close phases pull apart or collapse; the soft one estimates the spectra
    without that bias (workflow 1 on the random-scene benchmark, per-pixel features, 10th
    percentile of ARI - ceiling -0.172 hard, -0.144 soft; benchmarks/generalisation_per_pixel.md
    and generalisation_w1_per_pixel.md).

    Parameters
    ----------
    counts : (n, channels) raw counts
    labels : (n,) int, the starting partition 0..k-1
    max_iter : int
    tol : float, stop when the log-likelihood rises by less than this fraction

    Returns
    -------
    spectra : (k, channels) normalised cluster spectra (with :data:`PSEUDO_COUNT`)
    weights : (k,) mixing weights
    posteriors : (n, k)
    loglik : float, the mixture's log-likelihood (to compare starts on the same counts)
    """
    c = np.asarray(counts, float)
    lab = np.asarray(labels)
    k = int(lab.max() + 1)
    post = np.zeros((len(c), k))
    post[np.arange(len(c)), lab] = 1.0
    previous = -np.inf
    for _ in range(int(max_iter)):
        spectra = post.T @ c + PSEUDO_COUNT
        spectra /= spectra.sum(1, keepdims=True)
        weights = post.sum(0) / post.sum()
        ll = c @ np.log(spectra).T + np.log(np.maximum(weights, 1e-12))
        total = _log_normaliser(ll)
        post = np.exp(ll - total)
        current = float(total.sum())
        if current - previous <= tol * abs(current):
            break
        previous = current
    return spectra, weights, post, current


def polish_partition(counts, labels, pooled=None):
    """A partition's clusters refitted as a multinomial mixture of the raw counts
    (:func:`mixture_em`, soft EM started from the labelled pixels), every labelled pixel then
    classified as workflow 1's are: by its own counts with the mixture's shares (maximum a
    posteriori) or, given ``pooled`` counts, by those alone. Noise (-1) stays noise.

    Why: clusters cut in a 4-D embedding of 2x2-binned, pooled features put a thin phase's
    pixels and its neighbours' into one cluster (a 3-px lamella with the matrix beside it);
    labelled pixel by pixel with that mixed cluster's spectrum, it stays mixed. The mixture of
    the counts moves each spectrum to the one that explains its pixels. Where it makes a
    cluster vanish (the mixture merges two close clusters at a few counts per pixel, which the
    counting-statistics merge had kept apart) the partition is returned unchanged: the mixture
    ignores where the pixels are, the merge test did not.

    Returns (labels, posteriors of the assigned cluster, True when polished)."""
    lab = np.asarray(labels)
    keep = lab >= 0
    k = int(lab.max() + 1)
    if k < 2 or len(np.unique(lab[keep])) < k:
        return lab, None, False
    rows = slice(None) if keep.all() else keep      # no copy of the counts when no noise
    c = np.asarray(counts, float)[rows]
    spectra, weights, _, _ = mixture_em(c, lab[rows])
    new, post = classify_pixels(c, spectra, weights,
                                None if pooled is None else np.asarray(pooled, float)[rows])
    if int(new.max()) + 1 < k:
        return lab, None, False
    out = np.full(lab.shape, -1, dtype=lab.dtype)
    out[keep] = new
    proba = np.zeros(lab.shape)
    proba[keep] = post.max(axis=1)
    return out, proba, True


def classify_pixels(counts, spectra, weights, pooled=None):
    """Pixels to a mixture's spectra as both workflows label them: by their own counts with the
    mixture's ``weights`` (maximum a posteriori) or, given ``pooled`` counts, by those alone:
    they hold several pixels' evidence at one pixel's total, so the prior sized for one pixel
    would outweigh it. Returns :func:`classify`'s labels and posteriors."""
    return classify(counts, spectra, weights) if pooled is None else classify(pooled, spectra)


def classify(counts, spectra, weights=None):
    """Every row of ``counts`` to the spectrum of highest multinomial likelihood (plus the log
    of ``weights`` when given: maximum a posteriori). Returns labels numbered by size and the
    posteriors in that numbering."""
    ll = np.asarray(counts, float) @ np.log(spectra).T
    if weights is not None:
        ll = ll + np.log(np.maximum(weights, 1e-12))
    post = np.exp(ll - _log_normaliser(ll))
    labels, order = relabel_by_size(np.argmax(ll, axis=1))
    return labels, post[:, order + [j for j in range(len(spectra)) if j not in order]]
