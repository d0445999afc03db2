"""A cluster's separate pieces (particles, grains) as the split test's windows.

Why. The split test (:mod:`.split`) compares each pixel's composition with its neighbours' over
square windows of 5-25 pixels and cuts the cluster where the window averages differ. A cluster
made of separate particles, or of grains that two phases share, already has its natural windows:
each piece (a connected component of the cluster) is one phase. A square window there straddles
particle and support, or two grains, and its cut follows neither (held-out random scene 51: 27
particles of three phases in one cluster, windows ratio 1.35 inside, a 5-px window on all
pixels not confirmed, p 3e-3).

Method, on the whitened composition residuals ``g`` of the cluster's search pixels
(:func:`helpers.workflows.split.whitened_residuals`), tried last, with the whole-cluster test
(in a round where nothing else split, on all of a cluster's pixels, the mixtures with the
clusters it touches not counted), when the cluster's windows on all its pixels did not split
it:

1. The spatial statistic of :func:`helpers.workflows.windows.spatial_direction` with each
   pixel's neighbours the other search pixels of its piece: ``sum_x g_x (sum_{y in piece(x),
   y != x} g_y)^T``, whose top eigenvalue is compared with that of pixel-permuted copies (counting
   noise is independent between pixels, so it adds nothing on average).
2. Above :data:`helpers.workflows.split.MIN_RATIO`, each piece's mean score along the top
   eigenvector is split in two by 2-means: a whole piece goes to one side.
3. The split test's confirmation on the other colour of the checkerboard, counted by its
   Bonferroni correction as one more test.

Measured on ``benchmarks/generalisation.py`` against the split test without it (workflow 2;
``generalisation_heldout_pieces.md``, ``generalisation_lamellae_pieces.md``, the suite): scenes
with every phase >= 2 % found, held-out seeds 34-63 0.43 -> 0.47 (42: two grain phases of one
cluster split, ARI 0.724 -> 0.979, all six found), phases 91 -> 93 of 121 (51: 27 particles of
three phases in one cluster, its 4.7 % phase found, 0.523 -> 0.600; 46 +0.029); 30 lamellae
scenes and the 34-scene suite: the same phases (suite 28 +0.035); no scene worse. Tried also on
each cluster's interior, right after its windows (``generalisation_*_piecesfirst.md``): lamellae
73 -> 75 phases (124: 3 -> 5 of 6), but a split there in the first round kept the whole-cluster
test from running in it, and held-out 42's 6 % boundary layer, which that test finds, was lost
to the new neighbour's mixing direction (held-out 0.43, 92 phases).

Hand-written for the same reason as the split test: no package tests spatially structured
Poisson counts; the pieces are scipy's connected components.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .stripes import profile
from .windows import N_PERMUTATIONS, two_means_1d

#: Search pixels a piece needs to be scored, and pieces a cluster needs to be tested.
MIN_PIECE_PX = 3
MIN_PIECES = 3


def pieces(m):
    """(labels, n): the 8-connected pieces of the cluster mask ``m`` (0 outside)."""
    return ndi.label(m, structure=np.ones((3, 3), bool))


def piece_direction(g, pixels, lab, n, n_perm=N_PERMUTATIONS, random_state=0):
    """(ratio, direction): the composition direction that varies most between the pieces
    ``lab`` (every one of ``pixels`` in one), its statistic over the largest of ``n_perm``
    pixel-permuted copies' (step 1 of the text)."""
    v = g[pixels].astype(np.float64)
    ids = lab[pixels]                       # every pixel in a piece (labels >= 1)
    cnt = np.bincount(ids, minlength=n + 1).astype(float)
    pairs = float((cnt * (cnt - 1)).sum())
    if pairs <= 0:
        return 0.0, np.zeros(g.shape[-1])

    def top(w):
        S, _ = profile(w, ids)              # each piece's summed residuals
        m = (S.T @ S - w.T @ w) / pairs
        lam, vec = np.linalg.eigh(m)
        return lam[-1], vec[:, -1]

    lam, direction = top(v)
    null = [top(v[np.random.default_rng(random_state + k).permutation(len(v))])[0]
            for k in range(n_perm)]
    return float(lam / max(np.abs(null).max(), 1e-30)), direction


def piece_candidate(g, pixels, m, min_ratio, n_perm=N_PERMUTATIONS, random_state=0):
    """The pieces of cluster mask ``m`` split in two on the search ``pixels`` (steps 1-2):
    ``(ratio, side)``, ``side`` (rows, cols) int: 0 / 1 on every pixel of a scored piece, -1 on
    the other pixels of ``m`` and outside; ``side`` is None when fewer than
    :data:`MIN_PIECES` pieces are scored or the ratio is below ``min_ratio``."""
    lab, n = pieces(m)
    cnt = np.bincount(lab[pixels], minlength=n + 1)
    scored = cnt >= MIN_PIECE_PX
    scored[0] = False
    if scored.sum() < MIN_PIECES:
        return 0.0, None
    use = pixels & scored[lab]
    ratio, direction = piece_direction(g, use, lab, n, n_perm, random_state)
    if ratio < min_ratio:
        return ratio, None
    z = np.zeros(m.shape)
    z[use] = g[use] @ direction
    mean = np.bincount(lab.ravel(), weights=z.ravel(), minlength=n + 1) / np.maximum(cnt, 1)
    side = np.full(n + 1, -1)
    side[scored] = two_means_1d(mean[scored])
    return ratio, np.where(m, side[lab], -1)
