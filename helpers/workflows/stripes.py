"""Straight stripes of another composition inside a cluster, found by projecting its pixels
along every direction.

Why. The split test (:mod:`.split`) compares each pixel's composition with its neighbours' over
square windows of 5-25 pixels. A phase that forms 3-px lamellae, or a single lamella, inside a
cluster is a small share of any such window and of the cluster, so the windows' covariance stays
at noise level (random lamellae scenes 118 and 119, 66 counts per pixel: the matrix cluster
holds a 24 % phase of 3-px lamellae, or one 3-px lamella of a 2.6 % phase). Summed along the
lamellae's own direction, the whole length of each lamella adds up in one bin of a profile
across them: the same counts that are noise pixel by pixel become a line tens of standard
deviations above noise (a Radon transform of the composition residuals).

Method, on the whitened composition residuals of a cluster's interior pixels of the search
colour (:func:`helpers.workflows.split.whitened_residuals`: zero on average for one phase at any
thickness):

1. For every direction (:data:`ANGLES`, then 1 degree around the best), the residuals are
   summed over the lines of pixels across it (1-px bins of ``x cos(theta) + y sin(theta)``).
   The direction whose profile holds the largest between-bin variance (top eigenvalue of
   ``sum_s P_s P_s^T / n_s``, per bin) wins.
2. Each bin's sum along the profile's main composition direction, over its standard deviation,
   is a z score; the bins that Benjamini-Hochberg flags at :data:`FDR` on one side are the
   candidate stripes. The other bins on that side (fainter stripes, their edges) are left for
   the prior to label once the stripes have a spectrum of their own.
3. The test on the other colour of the checkerboard (the split test's Wald chi-square of
   line-intensity fractions) compares its pixels in candidate bins with the rest. Everything
   above was chosen on the search colour, so the test is honest.

Chosen and measured on ``benchmarks/generalisation.py`` against the split test without it
(``generalisation_lamellae_stripes.md``, ``generalisation_heldout_stripes.md``): on 30 lamellae
scenes every phase >= 2 % found in 0.37 -> 0.40 of them (119 gained: its single lamella, 2.6 % of
the map, becomes a cluster, ARI 0.94 -> 0.99), 69 -> 72 of 112 phases, no scene worse by more
than 0.002 of ARI; on the 34-scene suite and the held-out seeds 34-63 no verdict changes and no
scene is worse. Leaving the fainter bins to the prior (instead of in the old cluster, whose
spectrum they blurred) took lamellae scene 118's new cluster from 136 to 1772 of its phase's
3954 pixels (ARI 0.47 -> 0.58). Without the "joins" rule (stripes that are another cluster's
phase become a cluster anyway) held-out scene 40 went from 4 to 10 clusters, 5 of them the
matrix.

The split test tries it on each cluster before the windows, which, 5-25 px wide, cut a cluster
holding 3-px lamellae of a new phase where they lie densely rather than along them. Tried after
the windows (until 2026-12-07), workflow 2 found every phase >= 2 % in 0.40 of the 30 lamellae
scenes; tried first, in 0.43, median ARI - ceiling 0.167 -> 0.190 (scene 117: 0.77 -> 0.92, its
3.6 % phase found), the held-out scenes unchanged, suite scene 5 +0.08 ARI
(``generalisation_lamellae_stripesfirst.md``, ``generalisation_heldout_stripesfirst.md``).

Hand-written: no package offers a projection test for spatially structured Poisson counts
(scikit-image's ``radon`` transforms images, not residual vectors with their pixel counts).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from ..spatial.noise import benjamini_hochberg

#: Directions tried first (degrees; 0 = sum down the columns: vertical stripes); the best is
#: then refined to 1 degree among its neighbours (a 3-px stripe 128 px long drifts by 2 px over
#: its length at 1 degree off; half the work of trying every degree).
ANGLES = np.arange(0.0, 180.0, 2.0)
#: False-discovery rate of the bins flagged as stripes.
FDR = 0.01
#: Search pixels a bin needs to be used.
MIN_BIN = 5


def bin_index(rows, cols, theta):
    """1-px bin of each pixel across direction ``theta`` (degrees): ``round(x cos + y sin)``."""
    t = np.deg2rad(theta)
    return np.rint(cols * np.cos(t) + rows * np.sin(t)).astype(np.int64)


def profile(v, s):
    """Sums of the rows of ``v`` (n, d) per bin ``s`` (n,) (shifted to start at 0): (P, n)."""
    s = s - s.min()
    n = np.bincount(s)
    P = np.stack([np.bincount(s, weights=v[:, j], minlength=len(n)) for j in range(v.shape[1])],
                 axis=1)
    return P, n


def stripe_direction(g, pixels, angles=ANGLES, min_bin=MIN_BIN):
    """(angle, composition direction, between-bin variance per bin) of the profile across which
    the residuals ``g`` (rows, cols, d) of ``pixels`` vary most."""
    rows, cols = np.nonzero(pixels)
    v = g[pixels].astype(np.float64)
    best = (-np.inf, None, None)
    for th in angles:
        best = max(best, _between_bins(v, rows, cols, th, min_bin), key=lambda b: b[0])
    if best[1] is not None and len(angles) > 1:     # 1 degree around the best
        centre, step = best[1], float(np.min(np.diff(np.sort(angles))))
        for off in np.arange(1.0, step):
            for th in (centre - off, centre + off):
                best = max(best, _between_bins(v, rows, cols, th % 180.0, min_bin),
                           key=lambda b: b[0])
    return best[1], best[2], best[0]


def _between_bins(v, rows, cols, angle, min_bin):
    """(between-bin variance per bin, angle, its composition direction) of the profile of the
    residual rows ``v`` across ``angle``; -inf when fewer than 3 bins are used."""
    P, n = profile(v, bin_index(rows, cols, angle))
    ok = n >= min_bin
    if ok.sum() < 3:
        return -np.inf, None, None
    lam, vec = np.linalg.eigh((P[ok] / n[ok, None]).T @ P[ok])
    return lam[-1] / ok.sum(), float(angle), vec[:, -1]


def stripe_bins(g, pixels, angle, direction, fdr=FDR, min_bin=MIN_BIN):
    """(rows, cols) int8 over the whole grid, or None when no bin is flagged: 1 in the candidate
    stripes' bins across ``angle``, -1 in the other bins on their side of the cluster's mean
    (fainter stripes, or the candidates' edges: neither side's), 0 elsewhere. A bin's z score
    is its residual sum along ``direction`` over its standard deviation; of the bins
    Benjamini-Hochberg flags, the side (above or below the mean) with the larger mean |z| is
    kept."""
    rows, cols = np.nonzero(pixels)
    s = bin_index(rows, cols, angle)
    s0 = int(s.min())
    P, n = profile(g[pixels].astype(np.float64), s)
    z = np.where(n >= min_bin, (P @ direction) / np.sqrt(np.maximum(n, 1)), 0.0)
    flag = benjamini_hochberg(2 * stats.norm.sf(np.abs(z)), fdr)
    if not flag.any():
        return None
    up, down = flag & (z > 0), flag & (z < 0)
    side = 1.0 if (np.abs(z[up]).mean() if up.any() else 0.0) >= \
        (np.abs(z[down]).mean() if down.any() else 0.0) else -1.0
    chosen = flag & (side * z > 0)
    # a bin without search pixels between two chosen ones is chosen too: near 45 degrees whole
    # lines of pixels are one colour of the checkerboard, and the test colour's lie there
    gap = np.zeros_like(chosen)
    gap[1:-1] = (n[1:-1] < min_bin) & chosen[:-2] & chosen[2:]
    chosen = chosen | gap
    code = np.where(chosen, 1, np.where(side * z > 0, -1, 0)).astype(np.int8)
    b = bin_index(*np.indices(pixels.shape), angle) - s0
    ok = (b >= 0) & (b < len(code))
    out = np.zeros(pixels.shape, np.int8)
    out[ok] = code[b[ok]]
    return out


def stripe_candidate(g, pixels, angles=ANGLES, fdr=FDR, min_bin=MIN_BIN):
    """The stripes across which the residuals ``g`` (rows, cols, d) of ``pixels`` vary most:
    ``(codes or None, angle)`` (:func:`stripe_bins` at :func:`stripe_direction`'s angle), or
    None when no direction has bins enough."""
    angle, direction, _ = stripe_direction(g, pixels, angles, min_bin)
    if angle is None:
        return None
    return stripe_bins(g, pixels, angle, direction, fdr, min_bin), angle
