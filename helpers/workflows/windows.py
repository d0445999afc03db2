"""The window statistic of the split test (:mod:`helpers.workflows.split`): where a cluster's
composition residuals vary coherently in space, and the cut along that variation.

Pure functions on the whitened residuals ``g`` (rows, cols, d) of a cluster's search pixels
(:func:`helpers.workflows.split.whitened_residuals`); the split test proposes, confirms and
relabels with them (steps 3-4 of its text).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: The residuals are summed over blocks of BLOCK x BLOCK pixels before the spatial statistic
#: (disjoint blocks of independent counts stay independent; 4x less work: a slider move with
#: the test takes 0.5 s at 256 x 256 when nothing splits, 1.6 s when three rounds do,
#: ``benchmarks/results.md``).
BLOCK = 2
#: Half-widths (blocks) of the windows over which composition is compared with its
#: neighbours (6, 14 and 26 pixels); the cut then averages pixels over 5, 13 or 25 pixels.
RADII = (1, 3, 6)
#: Pixel-permuted copies giving the null of the spatial statistic.
N_PERMUTATIONS = 8


def _box_sum(a, rad):
    size = (2 * rad + 1, 2 * rad + 1) + (1,) * (a.ndim - 2)
    return ndi.uniform_filter(a, size, mode="constant") * float((2 * rad + 1) ** 2)


def spatial_direction(g, inner, radii=RADII, n_perm=N_PERMUTATIONS, random_state=0):
    """The composition direction that varies most coherently in space, and how far above noise.

    Returns
    -------
    ratio : float
        Largest eigenvalue of the spatial covariance over the largest of ``n_perm``
        pixel-permuted copies (best radius).
    radius : int
    direction : (d,) float, the top eigenvector at that radius.
    """
    v = g[inner]
    gg = v.T @ v
    best = None
    for rad in radii:
        cnt = _box_sum(inner.astype(np.float32), rad)[inner]
        pairs = float((cnt - 1).sum())
        if pairs <= 0:
            continue
        s = v.T @ _box_sum(g, rad)[inner] - gg
        lam, vec = np.linalg.eigh((s + s.T) / (2 * pairs))
        null = []
        gp = np.zeros_like(g)            # outside ``inner`` stays zero; inside is overwritten
        for k in range(n_perm):
            perm = np.random.default_rng(random_state + k).permutation(len(v))
            gp[inner] = v[perm]
            sp = v[perm].T @ _box_sum(gp, rad)[inner] - gg
            null.append(np.linalg.eigvalsh((sp + sp.T) / (2 * pairs))[-1])
        ratio = float(lam[-1] / max(np.abs(null).max(), 1e-30))
        if best is None or ratio > best[0]:
            best = (ratio, rad, vec[:, -1])
    return best if best is not None else (0.0, 0, np.zeros(g.shape[-1]))


def window_scores(g, inner, direction, rad):
    """Each pixel of ``inner``'s projection on ``direction``, averaged over the pixels of
    ``inner`` within ``rad`` pixels."""
    z = np.zeros(inner.shape, np.float32)
    z[inner] = g[inner] @ np.asarray(direction, np.float32)
    return _box_sum(z, rad)[inner] / _box_sum(inner.astype(np.float32), rad)[inner]


def block_sums(g, inner, block=BLOCK):
    """``g`` (rows, cols, d) summed over ``block`` x ``block`` blocks (edges zero-padded), and
    which blocks hold a pixel of ``inner``."""
    r, c = inner.shape
    pr, pc = -r % block, -c % block
    g = np.pad(g, ((0, pr), (0, pc), (0, 0)))
    m = np.pad(inner, ((0, pr), (0, pc)))
    rb, cb = g.shape[0] // block, g.shape[1] // block
    gb = g.reshape(rb, block, cb, block, -1).sum(axis=(1, 3))
    return gb, m.reshape(rb, block, cb, block).any(axis=(1, 3))


def _bounding_box(mask, margin):
    """Slices of the rows and columns holding ``mask``, widened by ``margin`` pixels (the
    window sums then run over the cluster's neighbourhood, not the whole map)."""
    rows, cols = np.nonzero(mask)
    return (slice(max(rows.min() - margin, 0), rows.max() + margin + 1),
            slice(max(cols.min() - margin, 0), cols.max() + margin + 1))


def two_means_1d(x):
    """0/1 labels of the exact 2-means partition of the values ``x`` (1 = the upper group).

    In one dimension the optimal partition is a threshold: every cut of the sorted values is
    tried with cumulative sums (exact; Lloyd's k-means is local and 100x slower here).
    """
    x = np.asarray(x, float)
    xs = np.sort(x)
    n = len(xs)
    if n < 2:
        return np.zeros(n, int)
    c1, c2 = np.cumsum(xs), np.cumsum(xs ** 2)
    k = np.arange(1, n)                       # size of the lower group
    lo = c2[:-1] - c1[:-1] ** 2 / k
    hi = (c2[-1] - c2[:-1]) - (c1[-1] - c1[:-1]) ** 2 / (n - k)
    cut = xs[int(np.argmin(lo + hi))]
    return (x > cut).astype(int)


def _cores(part, score):
    """0 / 1 where the score lies beyond the median of its own side of the split, -1 between:
    the new clusters' first spectra come from the purest pixels of each side."""
    up = part == 1
    hi, lo = np.median(score[up]), np.median(score[~up])
    return np.where(score >= hi, 1, np.where(score <= lo, 0, -1))


def _extend(part, where, onto):
    """The 0/1 ``part`` of the pixels ``where`` carried to the pixels ``onto`` (nearest)."""
    img = np.full(where.shape, -1, int)
    img[where] = part
    idx = ndi.distance_transform_edt(~where, return_distances=False, return_indices=True)
    out = np.full(where.shape, -1, int)
    out[onto] = img[idx[0], idx[1]][onto]
    return out
