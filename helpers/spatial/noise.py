"""The noise label of the spatial prior: which pixels no cluster explains (a pooled G test
against each cluster's spectrum, Benjamini-Hochberg false-discovery control)."""
from __future__ import annotations


import numpy as np
from scipy import sparse

from .counts import one_blas_thread
from .potts import offsets


def _windows(log_spectra, levels):
    """Window index (k, features) of each feature at the finest level (2**levels windows).

    Windows are contiguous in energy and hold about equal probability under p_k, so each
    expects about n / 2**levels counts; coarser levels merge neighbouring pairs.
    """
    p = np.exp(np.asarray(log_spectra, float))
    mid = np.cumsum(p, axis=1) - p / 2
    return np.clip(np.floor(mid * 2 ** levels), 0, 2 ** levels - 1).astype(np.int64)


def goodness_of_fit(prep, labels, log_spectra, pool=True, neighbourhood=8, levels=5,
                    counts_per_window=10, min_counts=10):
    """Grouped likelihood-ratio (G-) test of each pixel's counts against its cluster's spectrum.

    The features are grouped into contiguous windows of about equal probability under the
    pixel's cluster spectrum p_k (as many as the counts allow, about ``counts_per_window``
    expected counts each, at most 2**levels), and

        G = 2 sum_g y_g log(y_g / (n pi_kg))

    is referred to the chi-square distribution with (windows - 1) degrees of freedom. With
    ``pool`` the counts of the pixel and of its neighbours that carry the same label are
    summed first: under the null they are one multinomial draw from p_k, and a region of an
    unknown phase is seen with several times the counts of one pixel.

    Parameters
    ----------
    prep : PreparedCounts
    labels : (n_sample,) int
        Cluster 0..k-1 of each sample pixel (the hypothesis tested); negative: not tested.
    log_spectra : (k, features) log p_k
    pool : bool
        Sum same-label neighbours' counts (4- or 8-neighbourhood) before testing.
    neighbourhood : {4, 8}
    levels : int
        At most 2**levels windows.
    counts_per_window : float
        Expected counts per window that set the number of windows.
    min_counts : int
        Pixels (pooled) with fewer counts are not tested (p-value 1).

    Returns
    -------
    pvalue : (n_sample,) float
    stat : (n_sample,) float, G
    df : (n_sample,) int, degrees of freedom (0 where not tested)
    """
    from scipy.special import chdtrc
    logp = np.asarray(log_spectra, float)
    lab = np.asarray(labels, np.int64)
    K = logp.shape[0]
    nw = 2 ** levels
    ids = _windows(logp, levels)
    Z = _window_sums(prep, lab, logp.shape, ids, nw)
    if pool:
        Z = Z + _same_label_adjacency(prep.mask, lab, neighbourhood) @ Z
    Z = np.asarray(Z, np.float64)
    n = Z.sum(axis=1)
    pi = np.zeros((K, nw))
    for k in range(K):
        pi[k] = np.bincount(ids[k], weights=np.exp(logp[k]), minlength=nw)
    # number of windows: 2**j with about counts_per_window expected counts each
    j = np.clip(np.floor(np.log2(np.maximum(n, 1) / counts_per_window)), 1, levels).astype(int)
    stat = np.zeros(n.size)
    df = np.zeros(n.size, np.int64)
    for lev in range(1, levels + 1):
        sel = np.flatnonzero((j == lev) & (n >= min_counts) & (lab >= 0))
        if sel.size == 0:
            continue
        f = nw // 2 ** lev
        z = Z[sel].reshape(sel.size, 2 ** lev, f).sum(axis=2)
        pk = pi.reshape(K, 2 ** lev, f).sum(axis=2)[lab[sel]]
        e = n[sel, None] * pk
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(z > 0, z * np.log(z / e), 0.0)
        stat[sel] = 2.0 * t.sum(axis=1)
        df[sel] = (pk > 0).sum(axis=1) - 1
    pval = np.ones(n.size)
    tested = df > 0
    phi = dispersion(stat, df, lab, K)
    pval[tested] = chdtrc(df[tested], stat[tested] / phi[lab[tested]])
    return pval, stat, df


def dispersion(stat, df, labels, n_clusters):
    """Per-cluster over-dispersion ``phi_k >= 1``: the median of the cluster's G statistics over
    the median of chi-square with their degrees of freedom (quasi-likelihood scale, made robust).

    Under Poisson counting noise alone ``phi`` is about 1 and the test is the textbook one. A
    real map at thousands of counts per pixel is never exactly Poisson around one mean spectrum
    (small composition and thickness variations, detector effects), so every pixel would be
    rejected; dividing G by ``phi_k`` asks instead whether a pixel fits its cluster *as badly as
    its cluster's typical pixel does*, so only outliers (an unknown phase) stay flagged. The
    median keeps such outliers, as long as they are a minority of the cluster, from inflating
    ``phi_k``.
    """
    from scipy.stats import chi2
    phi = np.ones(max(int(n_clusters), 1))
    for k in range(int(n_clusters)):
        sel = (labels == k) & (df > 0)
        if sel.sum() >= 10:
            u, inv = np.unique(df[sel], return_inverse=True)   # a ppf per distinct df only
            ratio = np.median(stat[sel]) / np.median(chi2.median(u)[inv])
            phi[k] = max(1.0, float(ratio))
    return phi


def _window_sums(prep, lab, shape, ids, nw):
    """(n_sample, nw) counts of each pixel summed over its cluster's energy windows (in float32:
    exact for integer counts, 2-3 times faster than float64)."""
    K, F = shape
    Ws = np.zeros((K, F, nw), np.float32)
    for k in range(K):
        Ws[k, np.arange(F), ids[k]] = 1.0
    Z = np.zeros((prep.n_pixels, nw), np.float32)
    with one_blas_thread():
        for i0, i1, b in prep.blocks(np.float32):
            li = lab[i0:i1]
            for k in range(K):
                r = np.flatnonzero(li == k)
                if r.size:                    # window sums of the pixels of cluster k
                    Z[i0 + r] = b[r] @ Ws[k]
    return Z


def _same_label_adjacency(mask, lab, neighbourhood):
    """(n, n) sparse 0/1 matrix of neighbouring sample pixels that carry the same label."""
    R, C = mask.shape
    idx = np.full((R + 2, C + 2), -1, np.int64)
    idx[1:-1, 1:-1][mask] = np.arange(int(mask.sum()))
    limg = np.full((R + 2, C + 2), -2, np.int64)
    limg[1:-1, 1:-1][mask] = lab
    own_i, own_l = idx[1:-1, 1:-1], limg[1:-1, 1:-1]
    rows, cols = [], []
    for dr, dc, _ in offsets(neighbourhood):
        nb_i = idx[1 + dr:R + 1 + dr, 1 + dc:C + 1 + dc]
        ok = (own_i >= 0) & (nb_i >= 0) & (limg[1 + dr:R + 1 + dr, 1 + dc:C + 1 + dc] == own_l)
        rows.append(own_i[ok])
        cols.append(nb_i[ok])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    n = int(mask.sum())
    return sparse.csr_matrix((np.ones(r.size, np.float32), (r, c)), shape=(n, n))


def benjamini_hochberg(pvalues, fdr):
    """Rejections of the Benjamini-Hochberg step-up procedure at false-discovery rate ``fdr``.

    Parameters
    ----------
    pvalues : (n,) float
    fdr : float in (0, 1)

    Returns
    -------
    (n,) bool, True = rejected
    """
    p = np.asarray(pvalues, float)
    n = p.size
    out = np.zeros(n, bool)
    # only p <= fdr can be rejected, and they are the smallest: their ranks among themselves
    # are their ranks among all n, so only they are sorted (a map's worth of p-values is not)
    cand = np.flatnonzero(p <= fdr)
    if cand.size == 0:
        return out
    order = cand[np.argsort(p[cand], kind="stable")]
    ok = p[order] <= fdr * np.arange(1, order.size + 1) / n
    if ok.any():
        out[order[:np.flatnonzero(ok)[-1] + 1]] = True
    return out
