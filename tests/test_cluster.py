"""Clustering: core functions on synthetic blobs, and both workflows against simulated truth."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from ceiling import ari_vs_truth, poisson_ceiling_ari
from helpers import cluster as C
from helpers import hdbscan_counts as HC
from helpers import workflows as W
from helpers.errors import DataError, ParameterError


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(600, centers=4, n_features=5, random_state=1,
                      cluster_std=[1.0, 1.0, 2.0, 0.5])
    return X, y


# --------------------------------------------------------------------------------------------
# core functions
# --------------------------------------------------------------------------------------------
def test_relabel_by_size_orders_clusters_and_keeps_noise():
    lab = np.array([5, 5, 2, 2, 2, -1, 7])
    new, order = C.relabel_by_size(lab)
    assert new.tolist() == [1, 1, 0, 0, 0, -1, 2]
    assert order == [2, 5, 7]


def test_gmm_recovers_blobs_and_numbering_is_seed_independent(blobs):
    X, y = blobs
    r = C.gmm_cluster(X, 4, random_state=0)
    assert C.ari(r.labels, y) > 0.99
    np.testing.assert_allclose(r.probabilities.sum(axis=1), 1, atol=1e-6)
    # posterior columns follow the renumbered labels
    assert np.mean(r.probabilities.argmax(axis=1) == r.labels) > 0.99
    stab = C.seed_stability(lambda s: C.gmm_cluster(X, 4, random_state=s).labels, seeds=(0, 1, 2))
    assert stab["min_ari"] > 0.99
    # identical numbers (not just the same partition): deterministic relabelling
    assert all(np.array_equal(stab["labels"][0], lab) for lab in stab["labels"][1:])


def test_hdbscan_keeps_noise_and_recluster_equals_fresh_hdbscan(blobs):
    import hdbscan
    X, y = blobs
    rng = np.random.default_rng(0)
    Xn = np.vstack([X, rng.uniform(X.min(0), X.max(0), size=(40, X.shape[1]))])
    h = C.hdbscan_cluster(Xn, 20, 5)
    assert h.n_clusters == 4
    assert (h.labels == -1).sum() > 0                      # uniform points are noise
    assert h.probabilities[h.labels == -1].max() == 0
    # labels taken from fit() equal the tree's condense/select step at the same size
    r20 = C.recluster(h, 20, embedding=Xn)
    np.testing.assert_array_equal(h.labels, r20.labels)
    np.testing.assert_allclose(h.probabilities, r20.probabilities)
    for mcs in (10, 50, 140):
        r = C.recluster(h, mcs, embedding=Xn)
        fresh = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=5).fit(Xn)
        assert C.ari(r.labels, fresh.labels_) == pytest.approx(1.0)
        np.testing.assert_allclose(r.probabilities, fresh.probabilities_)


def test_poisson_refinement_recovers_multinomial_mixture():
    rng = np.random.default_rng(0)
    k, ch, n = 3, 40, 900
    spectra = rng.dirichlet(np.ones(ch) * 0.5, size=k)
    truth = rng.integers(0, k, n)
    totals = rng.integers(20, 200, n)          # "thickness": totals differ 10x
    counts = np.stack([rng.multinomial(t, spectra[c]) for t, c in zip(totals, truth)])
    bad = np.where(rng.random(n) < 0.3, rng.integers(0, k, n), truth)   # 30 % scrambled
    lab, post, it = C.poisson_mixture_refine(counts, bad)
    assert C.ari(lab, truth) > 0.98
    assert post.shape == (n, k) and np.allclose(post.sum(1), 1)


def test_parameter_errors_are_package_errors(blobs):
    X, _ = blobs
    with pytest.raises(ParameterError, match="n_clusters"):
        C.gmm_cluster(X, 0)
    with pytest.raises(ParameterError, match="n_clusters"):
        C.gmm_cluster(X, len(X) + 1)
    with pytest.raises(ParameterError, match="min_cluster_size"):
        C.hdbscan_cluster(X, 1, 5)
    with pytest.raises(ParameterError, match="min_cluster_size"):
        C.hdbscan_cluster(X, len(X) + 1, 5)
    with pytest.raises(DataError, match="NaN"):
        C.gmm_cluster(np.full((10, 2), np.nan), 2)


def _plateau_reference(result, n_pixels, lo=5, hi_fraction=0.1, n_steps=30):
    """plateau_min_cluster_size as it was: labels from recluster() at every candidate (the
    plateau rule, widest_plateau, is shared)."""
    hi = max(lo + 1, int(hi_fraction * n_pixels))
    table = []
    for m in sorted(set(int(round(v)) for v in np.geomspace(lo, hi, n_steps))):
        r = C.recluster(result, m)
        table.append((m, r.n_clusters, r.noise_fraction))
    return C.widest_plateau(table, n_pixels), table


@pytest.mark.parametrize("seed,n,allow_single", [(0, 500, False), (1, 1200, True),
                                                 (2, 2000, False), (3, 3000, True),
                                                 (4, 800, True), (5, 1500, False)])
def test_plateau_min_cluster_size_equals_recluster_at_every_candidate(seed, n, allow_single):
    rng = np.random.default_rng(seed)
    X, _ = make_blobs(n, centers=int(rng.integers(1, 6)), n_features=4, random_state=seed,
                      cluster_std=float(rng.uniform(0.5, 2.5)))
    X = np.vstack([X, rng.uniform(X.min(0), X.max(0), size=(n // 20, 4))])
    h = C.hdbscan_cluster(X, 15, 5, allow_single_cluster=allow_single)
    for n_pixels in (len(X), 3 * len(X)):          # 3x: candidates up to 30 % of the points
        got = C.plateau_min_cluster_size(h, n_pixels)
        assert got == _plateau_reference(h, n_pixels)     # floats compared exactly


def test_min_cluster_size_counts_equal_recluster_with_ties_and_duplicates():
    """Integer grid points: equal merge distances and distance-0 merges (lambda = inf)."""
    rng = np.random.default_rng(7)
    for X in (rng.integers(0, 4, size=(300, 3)).astype(float), rng.uniform(size=(200, 2))):
        h = C.hdbscan_cluster(X, 2, 3)
        arrays = HC.linkage_arrays(h.single_linkage_tree)
        for allow_single in (False, True):
            for m in [*range(2, 40), 75, 150, len(X)]:
                r = C.recluster(h, m, allow_single_cluster=allow_single)
                assert HC.eom_counts(arrays, m, allow_single) == (r.n_clusters,
                                                                  r.noise_fraction), m


def _hdbscan_labels(tree, m, allow_single):
    from hdbscan.hdbscan_ import _tree_to_labels
    lab, proba, *_ = _tree_to_labels(None, tree, min_cluster_size=m,
                                     allow_single_cluster=allow_single)
    return lab, proba


@pytest.mark.parametrize("seed", range(4))
def test_eom_labels_are_hdbscans_labels_and_probabilities(seed):
    """The slider's labelling (helpers.hdbscan_counts.eom_labels) against hdbscan's own, on
    blobs with background points, integer grids (equal distances, distance 0 = lambda inf)."""
    rng = np.random.default_rng(seed)
    if seed < 2:
        X, _ = make_blobs(600 + 400 * seed, centers=3 + seed, n_features=3, random_state=seed)
        X = np.vstack([X, rng.uniform(X.min(0), X.max(0), size=(60, 3))])
    else:
        X = rng.integers(0, 4 + seed, size=(300, 3)).astype(float)
    tree = C.hdbscan_cluster(X, 5, 3).single_linkage_tree
    arrays = HC.linkage_arrays(tree)
    for allow_single in (False, True):
        for m in (2, 3, 5, 8, 15, 30, 60, 200, len(X)):
            ref, ref_p = _hdbscan_labels(tree, m, allow_single)
            got, got_p, _ = HC.eom_labels(arrays, m, allow_single)
            # the same partition (hdbscan numbers clusters in its own node order)
            assert np.array_equal(got < 0, ref < 0), (m, allow_single)
            pairs = set(zip(got[got >= 0].tolist(), ref[ref >= 0].tolist()))
            assert len(pairs) == len(set(got[got >= 0])) == len(set(ref[ref >= 0]))
            np.testing.assert_array_equal(got_p, ref_p)


def test_min_cluster_size_counts_break_a_stability_tie_as_hdbscan_does():
    """Root stability 0.4 = its children's 0.2 + 0.2: hdbscan sums the children in a C float
    (0.40000000596 > 0.4), so it keeps the two pairs rather than the single root cluster."""
    tree = np.array([[0, 1, 5.0, 2], [2, 3, 5.0, 2], [4, 5, 10.0, 4]])
    h = C.HDBSCANResult(labels=np.zeros(4, int), probabilities=np.ones(4),
                        single_linkage_tree=tree, allow_single_cluster=True)
    assert C.recluster(h, 2).n_clusters == 2
    assert HC.eom_counts(HC.linkage_arrays(tree), 2, True) == (2, 0.0)


# --------------------------------------------------------------------------------------------
# workflows on simulated data
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hea6_w1(hea6_96):
    signal, _ = hea6_96
    return W.workflow1(signal, n_clusters=4)


@pytest.fixture(scope="module")
def hea6_w2(hea6_96):
    signal, _ = hea6_96
    return W.workflow2(signal)


@pytest.fixture(scope="module")
def hea6_ceiling(hea6_96):
    return poisson_ceiling_ari(*hea6_96, bin_factor=2)


def test_workflow1_hea6_reaches_poisson_ceiling(hea6_96, hea6_w1, hea6_ceiling):
    signal, truth = hea6_96
    r = hea6_w1
    assert r.labels.shape == truth.labels.shape
    score = ari_vs_truth(r.labels, truth)
    print(f"\nW1 hea6 96x96: ARI {score:.3f}, Poisson ceiling {hea6_ceiling:.3f}")
    assert score >= 0.90 or score >= hea6_ceiling - 0.03
    assert r.n_clusters == 4
    # vacuum mask: no all-vacuum 2x2 block clustered, no all-sample block lost
    from helpers.preprocess import bin_navigation
    n_sample = bin_navigation((truth.labels >= 0)[..., None].astype(float), 2)[0][..., 0]
    assert not np.any(r.labels_binned[n_sample == 0] >= 0)
    assert np.all(r.labels_binned[n_sample == 4] >= 0)


@pytest.mark.slow   # UMAP (numba compile on first use)
def test_workflow2_hea6_reaches_poisson_ceiling(hea6_96, hea6_w2, hea6_ceiling):
    signal, truth = hea6_96
    r = hea6_w2
    score = ari_vs_truth(r.labels, truth, exclude_noise=True)
    noise = float(np.mean(r.labels[truth.labels >= 0] < 0))
    print(f"\nW2 hea6 96x96: ARI {score:.3f} (noise excluded, noise {100 * noise:.1f} %), "
          f"Poisson ceiling {hea6_ceiling:.3f}, {r.n_clusters} clusters")
    assert noise <= 0.15
    assert score >= 0.90 or score >= hea6_ceiling - 0.03


@pytest.mark.slow   # UMAP
def test_workflow2_hea6_is_seed_stable_and_agrees_with_workflow1(hea6_96, hea6_w1, hea6_w2):
    """What notebook 04's machine-dependent cell prints, with tolerances: the same partition
    (noise excluded) from another UMAP seed (ARI >= 0.95) and from workflow 1 (ARI >= 0.9). The
    last digits differ between machines; a real change of the clustering would not pass."""
    signal, _ = hea6_96
    other = W.workflow2(signal, random_state=1)
    seed_ari = C.ari(hea6_w2.labels, other.labels, exclude_noise=True)
    w1_w2 = C.ari(hea6_w1.labels, hea6_w2.labels, exclude_noise=True)
    print(f"\nW2 seed 0 vs 1: ARI {seed_ari:.3f}; W1 vs W2: ARI {w1_w2:.3f}")
    assert other.n_clusters == hea6_w2.n_clusters == 4
    assert seed_ari >= 0.95 and w1_w2 >= 0.9


def test_thickness_normalisation_separates_phases_not_thickness(hea6_96):
    """Without per-pixel normalisation the leading PCA score follows thickness."""
    from helpers.preprocess import bin_navigation
    signal, truth = hea6_96
    thick = bin_navigation(truth.thickness[..., None], 2)[0][..., 0].ravel()
    pure = bin_navigation((truth.labels == 2)[..., None].astype(float), 2)[0][..., 0].ravel() == 4
    corr = {}
    for norm in ("none", "total"):
        f, p = W.pca_of_features(signal, normalization=norm)
        sel = pure & f.mask      # one phase only: any score variation is thickness or noise
        corr[norm] = max(abs(np.corrcoef(p.all_scores[sel, i], thick[sel])[0, 1])
                         for i in range(3))
    print(f"\n|corr(PC score, thickness)| within majority wurtzite: {corr}")
    assert corr["none"] > 0.8
    assert corr["total"] < 0.3


def _n_particle(truth):
    """Particle pixels in each 2x2 block."""
    from helpers.preprocess import bin_navigation
    return bin_navigation((truth.labels >= 0)[..., None].astype(float), 2)[0][..., 0]


@pytest.mark.slow   # UMAP (numba compile on first use)
def test_hea7_workflow2_one_particle_cluster(hea7_96):
    signal, truth = hea7_96
    r = W.workflow2(signal)
    print(f"\nW2 hea7: {r.n_clusters} cluster(s), noise {100 * r.noise_fraction:.1f} %")
    assert r.n_clusters == 1
    assert np.all(r.labels_binned[_n_particle(truth) == 0] < 0)   # support is not clustered
    # issue 16: the particle cluster holds >= 90 % of the particle pixels (0.98 here)
    assert np.mean(r.labels[truth.labels >= 0] == 0) >= 0.9


@pytest.mark.slow   # UMAP
def test_hea7_coreshell_workflow2_finds_the_real_core():
    """The same particles with a real Co/Mn/Zn-rich core: a split the counting statistics keep
    (on uniform hea7 they merge everything into one cluster, test above). The core is a third
    of the particle area and differs by a few at%, so the cut is not clean at this dose, but
    the second cluster must be mostly core and hold most of it. 128 px: at 96 px (about 1 800
    binned particle pixels) one UMAP seed in four cuts the core into two clusters."""
    from helpers.simulate import simulate
    signal, truth = simulate("hea7_coreshell", size=128, seed=0)
    r = W.workflow2(signal)
    core = truth.labels == truth.phase_names.index("core")
    print(f"\nW2 hea7_coreshell: {r.n_clusters} clusters")
    assert r.n_clusters == 2
    second = r.labels == 1
    print(f"second cluster: {np.mean(core[second]):.2f} core, holds {np.mean(second[core]):.2f} "
          "of the core")
    assert np.mean(core[second]) >= 0.6 and np.mean(second[core]) >= 0.5


def test_hea7_workflow1_two_clusters_split_thick_core_from_thin_shell(hea7_96):
    """The paper's artefact: a uniform particle split into 'core' and 'shell' by thickness."""
    signal, truth = hea7_96
    r = W.workflow1(signal, n_clusters=2)
    th = [truth.thickness[r.labels == k].mean() for k in range(2)]
    print(f"\nW1 hea7 mean thickness per cluster: {np.round(th, 3)}")
    assert r.n_clusters == 2
    assert max(th) > 2 * min(th)
    assert np.all(r.labels_binned[_n_particle(truth) == 0] < 0)


@pytest.mark.slow
def test_recluster_on_128_does_not_call_umap_again(monkeypatch):
    from helpers.simulate import simulate
    signal, _ = simulate("hea6", size=128, seed=3)
    r = W.workflow2(signal, min_cluster_size=20)

    def boom(*a, **k):
        raise AssertionError("UMAP was called again")

    import umap
    monkeypatch.setattr(C, "umap_embed", boom)
    monkeypatch.setattr(umap, "UMAP", boom)
    r2 = W.recluster_workflow2(r, 60)
    assert r2.params["min_cluster_size"] == 60
    assert r2.labels.shape == (128, 128)
    r3 = W.workflow2(signal, min_cluster_size=60)      # served from the cache
    assert np.array_equal(r3.labels, r2.labels)


def test_workflow1_seed_stability(hea6_96):
    signal, _ = hea6_96
    stab = C.seed_stability(lambda s: W.workflow1(signal, n_clusters=4, random_state=s).labels,
                            seeds=(0, 1))
    print(f"\nW1 seed stability (ARI between seeds): {stab['pairwise_ari']}")
    assert stab["min_ari"] > 0.95


def test_cache_reuses_results(hea6_96):
    from helpers import cache
    signal, _ = hea6_96
    W.workflow1(signal, n_clusters=3)
    hits = cache.STATS["hits"]
    r = W.workflow1(signal, n_clusters=3)
    assert cache.STATS["hits"] >= hits + 2                 # PCA and GMM both from the cache
    assert r.n_clusters == 3


@pytest.mark.slow   # UMAP (numba compile on first use)
def test_sliders_run_headless(hea6_96, hea6_w1, hea6_w2):
    import matplotlib.pyplot as plt
    from helpers import widgets
    signal, _ = hea6_96
    v = widgets.min_cluster_size_slider(hea6_w2, scale=signal)
    v.slider.value = 200                                   # as if a user moved it
    assert v.last.params["min_cluster_size"] == 200
    assert v.last.labels.shape == hea6_w2.labels.shape
    v = widgets.component_slider(hea6_w1.pca, hea6_w1.binned_shape, mask=hea6_w1.mask_binned)
    v.update(3)
    assert v.last["n_components"] == 3 and v.last["result"].scores.shape[1] == 3
    v = widgets.n_clusters_slider(signal, value=4)
    v.update(2)
    assert v.last.n_clusters == 2
    plt.close("all")
    # a slider settles the heap (gc.freeze): later full collections skip today's objects
    import gc
    assert gc.get_freeze_count() > 0


@pytest.mark.slow   # UMAP (numba compile on first use)
def test_auto_min_cluster_size_sits_on_the_widest_plateau(hea6_w2):
    r = hea6_w2
    n = int(r.mask_binned.sum())
    mcs, table = C.plateau_min_cluster_size(r.hdbscan, n)
    assert r.params["min_cluster_size"] == mcs            # workflow2's default is this choice
    k = {m: c for m, c, _ in table}
    assert k[min(k, key=lambda m: abs(np.log(m / mcs)))] == r.n_clusters == 4
    fixed = W.recluster_workflow2(r, 22)                    # 1 % of the pixels: same partition
    assert C.ari(fixed.labels, r.labels) == pytest.approx(1.0)


REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real"


@pytest.mark.slow   # UMAP (numba compile on first use)
@pytest.mark.real
@pytest.mark.skipif(not (REAL / "test_TEM.bcf").exists(), reason="real files not found")
def test_real_sparse_map_is_not_fragmented_into_noise_clusters():
    """test_TEM.bcf: 6 counts/px. The plateau rule must not return tens of noise fragments."""
    from helpers.io import load_spectrum_image
    s = load_spectrum_image(REAL / "test_TEM.bcf", verbose=False)
    r = W.workflow2(s)
    at10 = W.recluster_workflow2(r, 10)
    # without the counting-statistics merge, 10 px gives HDBSCAN's noise fragments: the test can fail
    raw = dataclasses.replace(r, params=dict(r.params, merge_splits=False))
    fragments = W.recluster_workflow2(raw, 10)
    print(f"\ntest_TEM: auto min_cluster_size {r.params['min_cluster_size']} -> {r.n_clusters} "
          f"cluster(s); at 10 px: {at10.n_clusters} merged, {fragments.n_clusters} unmerged")
    assert r.n_clusters <= 3 and at10.n_clusters <= 3 < fragments.n_clusters
    assert r.labels.shape == (64, 64)


@pytest.mark.real
@pytest.mark.skipif(not (REAL / "velox_EELS_EDS_128x128.emd").exists(),
                    reason="real files not found")
def test_map_without_xray_counts_completes_and_says_there_is_nothing_to_quantify():
    """velox_EELS_EDS_128x128.emd: its EDS counts all sit in the zero-energy peak. The workflow
    warns (naming the empty range), finds one cluster (every pixel looks the same), and the
    quantification gives that cluster a NaN row with the reason instead of aborting the run."""
    from helpers import quant
    from helpers.io import load_spectrum_image
    from helpers.preprocess import NoCountsWarning
    s = load_spectrum_image(REAL / "velox_EELS_EDS_128x128.emd", verbose=False)
    with pytest.warns(NoCountsWarning, match="No X-ray counts between"):
        r = W.workflow1(s, n_clusters=2)
    assert r.n_clusters == 1
    q = quant.quantify_clusters(s, r.labels)
    assert all(not q.compositions[c].quantified for c in q.clusters)
    assert "counts" in q.compositions[q.clusters[0]].reason


def test_features_are_shared_within_a_process_and_warnings_repeat():
    """workflow 1 and 2 of one map compute its features once; a changed map or parameter
    computes anew; a cropping warning is shown on every call, not only the first."""
    import warnings

    from helpers.preprocess import BinningCropWarning
    from helpers.simulate import simulate
    s, _ = simulate("hea6", size=33, seed=5)          # 33 px: binning x2 drops a row/column
    with pytest.warns(BinningCropWarning):
        f1 = W.compute_features(s)
    with pytest.warns(BinningCropWarning):
        f2 = W.compute_features(s)
    assert f2 is f1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert W.compute_features(s, scaling="robust") is not f1
        s2 = s.deepcopy()
        s2.data[0, 0, 100] += 1                            # same object shape, other counts
        f3 = W.compute_features(s2)
    assert f3 is not f1 and f3.key != f1.key


def test_leaf_selection_is_at_least_as_fine_as_eom_and_bad_names_are_refused():
    X, _ = make_blobs(n_samples=900, centers=[[0, 0], [6, 0], [0, 6]], cluster_std=1.0,
                      random_state=0)
    X = np.vstack([X, make_blobs(n_samples=300, centers=[[0, 0.8]], cluster_std=0.3,
                                 random_state=1)[0]])          # a dense knot inside blob 0
    h = C.hdbscan_cluster(X, 30, 5)
    eom, leaf = (C.recluster(h, 30, selection=s) for s in ("eom", "leaf"))
    assert leaf.n_clusters >= eom.n_clusters >= 2
    for k in range(leaf.n_clusters):          # every leaf cluster lies inside one EOM cluster
        inside = eom.labels[leaf.labels == k]
        assert np.unique(inside[inside >= 0]).size <= 1
    with pytest.raises(ParameterError, match="'eom', 'leaf' or 'split'"):
        C.recluster(h, 30, selection="finest")
