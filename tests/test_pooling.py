"""Spatially pooled features (``smoothing``), their counting-statistics null, and the choice of
min_cluster_size among HDBSCAN's plateaus."""
import numpy as np
import pytest

from helpers import cluster as C
from helpers import multinomial as M
from helpers import preprocess as P
from helpers import workflows as W
from helpers.simulate.scenes import random_scene


def _two_phase_counts(rows=20, cols=20, dose=400, seed=0):
    """A left/right two-phase map of 3 channels, counts high enough that each pixel is clear."""
    rng = np.random.default_rng(seed)
    left = np.arange(rows * cols) % cols < cols // 2
    p = np.where(left[:, None], [0.6, 0.3, 0.1], [0.1, 0.3, 0.6])
    return rng.poisson(dose * p).astype(float), left


def test_smoothing_zero_is_the_identity_and_vacuum_gives_nothing():
    c, _ = _two_phase_counts()
    mask = np.ones(len(c), bool)
    assert P.smooth_counts(c, (20, 20), mask, 0) is c
    mask[:60] = False                                    # three vacuum rows
    c[~mask] = 1e6                                       # would dominate if it leaked in
    out = P.smooth_counts(c, (20, 20), mask, 1.0)
    assert out.shape == c.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[~mask], c[~mask])  # left as they were
    assert out[mask].max() < 1e3                         # nothing leaked into the sample
    # one pixel's worth: the pooled totals average the raw ones
    assert out[mask].sum(1).mean() == pytest.approx(c[mask].sum(1).mean(), rel=0.02)


def test_guided_pooling_keeps_the_edge_that_plain_pooling_blurs():
    c, left = _two_phase_counts()
    mask = np.ones(len(c), bool)
    edge = (np.arange(400) % 20) == 9                    # last column of the left phase
    plain = P.smooth_counts(c, (20, 20), mask, 1.5)
    guided = P.smooth_counts(c, (20, 20), mask, 1.5, guide=c / c.sum(1, keepdims=True))
    share = lambda x: x[edge, 0] / x[edge].sum(1)        # noqa: E731  (0.6 in the left phase)
    assert share(plain).mean() < 0.5                     # plain: mixed with the right phase
    assert share(guided).mean() > 0.55                   # guided: still the left phase
    # and the pooled interior is less noisy than the raw counts
    inner = left & ((np.arange(400) % 20) < 6) & (np.arange(400) // 20 > 3) \
        & (np.arange(400) // 20 < 16)
    assert np.std(guided[inner, 0]) < 0.5 * np.std(c[inner, 0])


def test_pooled_null_is_below_the_per_pixel_null_of_the_same_pixels():
    """Pooling averages the noise a split can exploit: the best split of pooled one-phase
    surrogates gains several times less than the best split of raw ones."""
    rng = np.random.default_rng(1)
    rows, cols = np.divmod(np.arange(30 * 30), 30)
    counts = rng.poisson(20 * np.array([0.5, 0.3, 0.2]), size=(900, 3))
    raw = M.null_split_gain(counts)
    totals, spectrum = counts.sum(1), counts.sum(0)
    pooled = M.pooled_null_gain(totals, spectrum, rows, cols, 1.0)
    assert 0 < pooled < raw / 2
    assert M.pooled_null_gain(totals, spectrum, rows, cols, 1.0) == pooled   # remembered


@pytest.mark.parametrize("dose,pooling,shape", [(3, True, "square"), (40, False, "square"),
                                                 (40, True, "band"), (3, False, "band")])
def test_the_subset_bound_of_a_large_null_is_above_the_null(dose, pooling, shape):
    """A large pair's null is first bounded from its first NULL_SUBSET pixels (the null grows
    more slowly than the pixel count); the bound must be above the exact null, or the tests
    it decides would differ from the exact ones. One-phase sets of 4,800 pixels, compact and
    a band 24 pixels wide."""
    rng = np.random.default_rng(dose)
    p = rng.gamma(0.5, size=60)
    p /= p.sum()
    side = (80, 60) if shape == "square" else (200, 24)
    rows, cols = np.divmod(np.arange(side[0] * side[1]), side[1])
    totals = rng.poisson(dose, rows.size)
    counts = rng.multinomial(totals, p).astype(float)
    pair = np.ones(rows.size, bool)
    grid = (rows, cols, 1.0) if pooling else None
    exact = M._pair_null(totals, counts.sum(0), pair, grid, 0)
    bound, is_bound = M._test_null(totals, counts.sum(0), pair, grid, 0, enough=np.inf)
    assert is_bound and bound > exact > 0
    # a bound above what decides the test is not used: the exact null is measured
    assert M._test_null(totals, counts.sum(0), pair, grid, 0, enough=0.0) == (exact, False)


@pytest.mark.parametrize("pooling", [False, True])
def test_a_null_stopped_early_rejects_as_the_exact_one_and_resumes_to_it(pooling):
    """The tree split's tests stop drawing a null once its largest gain is above what passes
    (``reject_early``): the value is then a lower bound above ``enough``, so the verdict is the
    exact test's, and a later exact request goes on from the remembered draws to the very value
    every draw gives (the draws' random stream is kept, not restarted)."""
    rng = np.random.default_rng(7)
    rows, cols = np.divmod(np.arange(30 * 30), 30)
    totals = rng.poisson(20, rows.size)
    p = np.array([0.5, 0.3, 0.2])
    counts = rng.multinomial(totals, p).astype(float)
    pair = np.ones(rows.size, bool)
    grid = (rows, cols, 1.0) if pooling else None
    M._NULL_MEMO.clear()
    exact = M._pair_null(totals, counts.sum(0), pair, grid, 3)
    M._NULL_MEMO.clear()
    enough = 1e-9                      # any draw's gain is above it: stopped after the first
    low, is_bound = M._test_null(totals, counts.sum(0), pair, grid, 3, enough,
                                 reject_early=True)
    assert is_bound and enough < low <= exact
    key, state = next(iter(M._NULL_MEMO.items()))
    assert state[1] == 1               # one draw of NULL_DRAWS made, the rest kept for later
    assert M._test_null(totals, counts.sum(0), pair, grid, 3, enough=exact * 2,
                        reject_early=True) == (exact, False)     # resumed: the exact value
    assert M._NULL_MEMO[key] == exact
    # without reject_early, or when the null passes, the exact value as before
    M._NULL_MEMO.clear()
    assert M._test_null(totals, counts.sum(0), pair, grid, 3, enough) == (exact, False)


def test_plateau_runs_and_the_widest_plateau():
    table = [(5, 4, 0.1), (6, 4, 0.1), (8, 2, 0.0), (12, 2, 0.0), (20, 2, 0.0), (30, 1, 0.0)]
    runs = C.plateau_runs(table)
    assert [(k, round(span, 3)) for _, span, k in runs] == [
        (4, round(np.log(6 / 5), 3)), (2, round(np.log(20 / 8), 3)), (1, 0.0)]
    assert runs[1][0] == int(round(np.sqrt(8 * 20)))
    assert C.widest_plateau(table, 1000) == runs[1][0]


@pytest.mark.slow   # UMAP
def test_workflow2_looks_past_the_widest_plateau_when_it_hides_a_phase():
    """Benchmark scene 10 (3-phase alloy, a 1-px boundary layer, 14 counts per pixel): the
    widest plateau keeps one cluster; a coarser plateau splits the two large phases and the
    counting statistics keep both (per-pixel features; pooled ones find both at once). The
    split test is off: it would add the layer as a third cluster (its boundary test). The
    plateau table depends on the UMAP embedding, which differs between machines (in a fresh
    environment of 2026-12-07 the widest plateau itself holds the two clusters): where the
    widest plateau keeps one cluster, the workflow must have looked past it."""
    s, truth = random_scene(10, size=128)
    r = W.workflow2(s, smoothing=0, split_clusters=False)
    n = int(r.mask_binned.sum())
    widest, table = C.plateau_min_cluster_size(r.hdbscan, n)
    if max((k for mid, _, k in C.plateau_runs(table) if mid == widest), default=0) < 2:
        assert r.params["min_cluster_size"] > widest
    assert r.n_clusters == 2
    keep = truth.labels >= 0
    assert C.ari(r.labels[keep], truth.labels[keep]) > 0.45    # per-pixel ceiling 0.54


@pytest.mark.slow   # UMAP
def test_pooled_features_beat_the_per_pixel_ceiling_on_large_close_phases():
    """Benchmark scene 26: two sulfides 3 at% apart in two metals, 40 counts per pixel, wide
    lamellae. Pixel by pixel even the classifier that knows the spectra reaches ARI 0.26 and
    workflow 2 finds one cluster; pooled over neighbours it finds both phases."""
    s, truth = random_scene(26, size=128)
    keep = truth.labels >= 0
    per_pixel = W.workflow2(s, smoothing=0)
    pooled = W.workflow2(s, smoothing=1.0)
    assert pooled.n_clusters == 2
    a_pooled = C.ari(pooled.labels[keep], truth.labels[keep])
    assert a_pooled > 0.5 > C.ari(per_pixel.labels[keep], truth.labels[keep]) + 0.2
    # the pooled counts, not the features' scaling, classify the pixels
    assert pooled.pooled is not None and pooled.pooled.shape == pooled.counts.shape
    moved = W.recluster_workflow2(pooled, pooled.params["min_cluster_size"])
    assert C.ari(moved.labels, pooled.labels) == pytest.approx(1.0)


PA = np.array([0.61, 0.31, 0.11, 0.01]) / 1.04
PB = np.array([0.11, 0.31, 0.61, 0.01]) / 1.04


def _three_regions(middle, width=2, rows=24, cols=30, dose=300, seed=0):
    """Phase a on the left, b on the right, and ``width`` columns of ``middle`` spectrum
    between them (or, with middle=("grain", p), a square grain of p inside a)."""
    rng = np.random.default_rng(seed)
    pa, pb = PA, PB
    r, c = np.divmod(np.arange(rows * cols), cols)
    lab = np.where(c < cols // 2, 0, 1)
    kind, pm = middle
    if kind == "band":
        sel = (c >= cols // 2 - width // 2) & (c < cols // 2 + width - width // 2)
    else:
        sel = (r >= 8) & (r < 16) & (c >= 3) & (c < 11)
    lab = np.where(sel, 2, lab)
    p = np.stack([pa, pb, pm])[lab]
    counts = rng.poisson(dose * p)
    return counts, lab, r, c, pa, pb


def test_a_boundary_band_of_mixed_pixels_is_recognised_and_a_real_phase_is_not():
    mix = (PA + PB) / 2
    counts, lab, r, c, pa, pb = _three_regions(("band", mix))
    found = M.boundary_mixtures(counts, lab, r, c)
    assert [f[:3] for f in found] == [(2, 0, 1)]
    g, alpha = M.mixture_gain(counts[lab == 2].sum(0), pa, pb)
    assert abs(alpha - 0.5) < 0.05
    # a thin layer of its own composition at the same place stays
    other = np.array([0.3, 0.2, 0.2, 0.3])
    counts, lab, r, c, *_ = _three_regions(("band", other))
    assert M.boundary_mixtures(counts, lab, r, c) == []
    # and a grain whose spectrum lies between a and b, inside a, is a phase, not a boundary
    counts, lab, r, c, *_ = _three_regions(("grain", mix))
    assert M.boundary_mixtures(counts, lab, r, c) == []


@pytest.mark.parametrize("pooled", [False, True])
def test_clusters_of_pixels_without_counts_are_merged_into_one(pooled):
    """A map whose lines hold no counts (the real velox_EELS_EDS file): HDBSCAN cuts the
    featureless embedding anyhow; with nothing to split on, the merge joins every piece, so
    every pixel gets the one cluster instead of noise."""
    counts = np.zeros((60, 5))
    labels = np.repeat([0, 1, 2], 20)
    rows, cols = np.divmod(np.arange(60), 10)
    merged, _ = M.merge_insignificant(counts, labels,
                                      pooling=(rows, cols, 1.0) if pooled else None)
    assert set(merged) == {0}
