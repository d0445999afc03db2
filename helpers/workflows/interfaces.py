"""Thin layers between two clusters, found where the interface is not a mixture of its sides.

Why. A phase 1-3 px thick that coats the boundaries between grains (a grain-boundary film, a
segregation layer) has too few pixels for a cluster of its own: its pixels are labelled with
whichever grain is nearer, half on each side (random-scene benchmark, seeds 10 and 25). The
split test cannot see it -- it leaves out the pixels near a cluster's edge, because there a
pixel mixes two phases and belongs to neither -- and neither can the unexplained-pixels step,
for the same reason. Yet the two cases differ in a way counts can tell: a pixel that straddles
grains A and B holds a mixture of A and B, so the summed spectrum of every pixel near the A-B
boundary is one too, and its line-intensity fractions lie on the line through A's and B's
(line intensities add). A layer of a third composition pulls them off that line.

Method, in a round of the split test in which no cluster was split (the clusters are settled),
per pair of clusters that touch (A, B) (:func:`interface_bands`):

1. The band: pixels of A within :data:`WIDTH` px of B and of B within :data:`WIDTH` px of A.
   The flanks: A's and B's pixels ``WIDTH`` to ``3 * WIDTH`` px from the boundary, the
   composition each side has there (a cluster need not be the same everywhere: one that
   still holds two phases would otherwise pull the band off the line). Nothing within
   ``WIDTH + 1`` px of a third cluster or of unassigned pixels (a triple junction mixes three).
2. Only the test colour of the split test's checkerboard: the band and flanks are set by the
   labels, not searched, but counts no search has seen keep the p-values honest (on maps
   without a layer, blurred as by a spreading probe, they spread like uniform ones;
   ``tests/test_interfaces.py``).
3. The band's and A's flank's summed spectra are fitted together with B's
   (:func:`helpers.quant.linefit.fit_line_intensities`) and the band's fractions compared with
   A's by a Wald chi-square with two directions left out
   (:func:`helpers.workflows.fractions.wald_fractions`): A to B (any mixture of the sides) and
   the direction absorption moves A's fractions (a thicker or thinner boundary is no phase).
4. Significant (Bonferroni with the split test's other tests) and at least
   :data:`helpers.workflows.split.MIN_DIFFERENCE` off the line: the band's pixels next to the
   boundary seed a new cluster (one per round: the most significant pair), and the spatial
   prior relabels the map. The same boundary found again in a later round grows that cluster
   instead of adding a second one for the same layer.

What it gains is modest. On the random-scene benchmarks only scenes with such layers change,
none for the worse: ARI of suite scenes 10 and 25 0.947 -> 0.956 and 0.912 -> 0.915, held-out
scene 58 0.733 -> 0.755, lamellae scene 100 0.489 -> 0.501 with one more phase found. A layer
1-3 px thick at 3-30 counts per pixel is confirmed, but its pixels are too few and too noisy
for the relabelling to give it most of them (the new cluster holds 20-45 % of the layer, at
60-80 % purity), so its composition is partly its neighbours' (suite: 90th percentile of
workflow 2's |composition error| 0.85 -> 0.95 at%, 2 sigma coverage 0.97 -> 0.96).

Hand-written: no package tests a boundary for a third phase; the pieces (exspy's line model,
the Wald test, the Potts prior) are the split test's.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..quant.linefit import fit_line_intensities
from ..quant.spectra import mask_spectra
from .fractions import wald_fractions

#: Half-width (px) of the band each side of a boundary: a layer up to about 2 x WIDTH px thick
#: straddling it is inside.
WIDTH = 2
#: Pixels (test colour) the band and each flank need before a pair is tested.
MIN_BAND = 40


def interface_bands(labels, width=WIDTH):
    """Every boundary between two clusters: a list of ``(a, b, band, flank_a, flank_b)``.

    For clusters ``a < b`` with pixels within ``width`` px of each other: the band holds the
    pixels of ``a`` within ``width`` px of ``b`` and of ``b`` within ``width`` px of ``a``; a
    flank, the pixels of the same cluster ``width`` to ``3 * width`` px from the other (the
    composition each side has *there*: a cluster need not be the same everywhere). None of
    them lies within ``width + 1`` px of any other label (another cluster, or unassigned
    pixels: a triple junction mixes three phases). Bool masks on the grid of ``labels``.
    """
    lab = np.asarray(labels)
    ids = [int(c) for c in np.unique(lab[lab >= 0])]
    # one distance map per label (the unassigned pixels are one more), shared by every pair
    dist = {c: ndi.distance_transform_edt(lab != c) for c in ids}
    if (lab < 0).any():
        dist[-1] = ndi.distance_transform_edt(lab >= 0)
    out = []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            ma, mb = lab == a, lab == b
            if not (dist[b][ma] <= width).any():
                continue
            others = [d for c, d in dist.items() if c not in (a, b)]
            clear = (np.min(others, axis=0) > width + 1) if others else np.ones(lab.shape, bool)
            band = ((ma & (dist[b] <= width)) | (mb & (dist[a] <= width))) & clear
            out.append((a, b, band,
                        ma & (dist[b] > width) & (dist[b] <= 3 * width) & clear,
                        mb & (dist[a] > width) & (dist[a] <= 3 * width) & clear))
    return out


def find_layer(labels, new, nxt, along, alpha, ctx, log, rnd):
    """The boundary tests of one round (:func:`boundary_tests`), written into ``new``: the
    layer found becomes cluster ``nxt``, or grows the cluster found at the same boundary in
    an earlier round. Returns (next free cluster id, whether a layer grew)."""
    entries, seed, pair = boundary_tests(labels, along, alpha, ctx)
    log.extend(dict(round=rnd, **e) for e in entries)
    if seed is None:
        return nxt, False
    grown = ctx["layers"].get(pair)
    if grown is not None and (labels == grown).any():
        new[seed] = grown
        return nxt, True
    new[seed] = ctx["layers"][pair] = nxt
    return nxt + 1, False


def boundary_tests(labels, along, alpha, ctx):
    """Each boundary between two clusters tested for a layer of a third phase
    (:mod:`.interfaces`; test colour only): (log entries, the seed of a new cluster -- the
    band's pixels next to the boundary, of the most significant confirmed pair -- or None)."""
    test = ~ctx["search"]
    bands = [b for b in ctx["bands"]
             if min((m & test).sum() for m in b[2:]) >= max(ctx["min_part"], MIN_BAND)]
    if not bands:
        return [], None, None
    stack = mask_spectra(ctx["signal"], [m & test for b in bands for m in b[2:]])
    fits = fit_line_intensities(stack, ctx["lines"])
    entries, best = [], None
    for i, (a, b, band, _, _) in enumerate(bands):
        fb, fa, fo = fits[3 * i: 3 * i + 3]
        entry = dict(cluster=-2, compared=(a, b), pixels=int((band & test).sum()), ratio=None,
                     window=0, p=None, split=False)
        if fb is None or fa is None or fo is None:
            continue
        dirs = [fa.intensities / fa.intensities.sum() - fo.intensities / fo.intensities.sum()]
        if along.get(a) is not None:
            dirs.append(along[a])
        _, _, entry["p"], entry["max_diff"] = wald_fractions(fb, fa, np.array(dirs))
        entry["split"] = bool(entry["p"] < alpha and entry["max_diff"] >= ctx["min_difference"])
        entries.append(entry)
        if entry["split"] and (best is None or entry["p"] < best[0]):
            core = band & ((labels == a) & ndi.binary_dilation(labels == b)
                           | (labels == b) & ndi.binary_dilation(labels == a))
            best = (entry["p"], core, (a, b))
    return (entries, None, None) if best is None else (entries,) + best[1:]
