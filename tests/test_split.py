"""Clusters holding two phases: the spatial split test (helpers.workflows.split)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from sklearn.metrics import adjusted_rand_score

from helpers.quant.clusters import quant_lines
from helpers.simulate.scenes import random_scene
from helpers.spatial import regularise_labels
from helpers.workflows import split as S


def _lines(signal):
    return [k.xray_line for k in quant_lines(signal)]


@pytest.fixture(scope="module")
def close_pair():
    """Two grain phases 3 at% apart in two elements at 10 counts per pixel (96 x 96)."""
    return random_scene(0, 96, kind="grains", n_phases=2, close_pair=True, dose=10)


def _relabel(signal, keep):
    return lambda L: regularise_labels(np.asarray(signal.data), L, mask=keep, beta=1.0).labels


def test_two_means_1d_is_the_exact_optimum():
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = np.concatenate([rng.normal(0, 1, rng.integers(2, 40)),
                            rng.normal(rng.uniform(0, 4), 1, rng.integers(2, 40))])
        lab = S.two_means_1d(x)
        cost = sum(((x[lab == k] - x[lab == k].mean()) ** 2).sum() for k in (0, 1))
        xs = np.sort(x)   # brute force over every cut of the sorted values
        best = min(((xs[:i] - xs[:i].mean()) ** 2).sum() + ((xs[i:] - xs[i:].mean()) ** 2).sum()
                   for i in range(1, len(xs)))
        assert cost == pytest.approx(best)
        assert x[lab == 1].min() > x[lab == 0].max()


def test_specks_inside_a_cluster_are_not_its_edge():
    """interior(): a cluster eroded by EDGE_PX from its edge, where an enclosed speck of other
    labels is no edge but a large enclosed region, or one open to the map's edge, is."""
    m = np.ones((40, 40), bool)
    m[:, 30:] = False                     # another cluster along the right edge
    m[10, 10] = False                     # a one-pixel speck
    m[20:26, 8:14] = False                # an enclosed grain of 36 px
    inner = S.interior(m)
    e = S.EDGE_PX
    assert inner[10, 10 - 1] and inner[10, 10 + 1] and not inner[10, 10]   # speck: no edge
    assert not inner[20 - e, 10] and inner[20 - e - 1, 10]                  # grain: an edge
    assert not inner[5, 30 - e] and inner[5, 30 - e - 1]                    # neighbour: an edge
    assert not inner[:e].any() and not inner[:, :e].any()                 # the map's border
    assert not (inner & ~m).any()
    plain = ndi.binary_erosion(m, np.ones((2 * e + 1,) * 2))
    assert np.array_equal(S.interior(m, max_hole=1), plain)


def test_checkerboard_halves_are_complementary_and_balanced():
    c = S.checkerboard((5, 7))
    assert c.sum() == 18 and (~c).sum() == 17
    assert not np.any(c[:, 1:] & c[:, :-1]) and not np.any(c[1:] & c[:-1])


def test_a_cluster_holding_two_close_phases_is_split_along_them(close_pair):
    """Merged into one cluster, two phases that no pixel tells apart (3 at% in two elements,
    10 counts per pixel) differ coherently over the grains: the test finds the split (p far
    below its threshold) and the relabelled map follows the phases."""
    signal, truth = close_pair
    keep = truth.labels >= 0
    labels, log = S.split_mixed_clusters(signal, np.where(keep, 0, -1), _relabel(signal, keep),
                                         _lines(signal))
    first = next(e for e in log if e["cluster"] == 0)      # its windows (stripes come first)
    assert first["split"] and first["ratio"] > S.MIN_RATIO and first["p"] < 1e-8
    assert len(np.unique(labels[keep])) == 2
    assert adjusted_rand_score(truth.labels[keep], labels[keep]) > 0.5


def test_pure_clusters_are_not_split(close_pair):
    """The same map labelled by its true phases: nothing is coherent beyond counting noise."""
    signal, truth = close_pair
    keep = truth.labels >= 0
    start = np.where(keep, truth.labels, -1)
    labels, log = S.split_mixed_clusters(signal, start, _relabel(signal, keep), _lines(signal))
    assert np.array_equal(labels, start)
    assert all(not e["split"] for e in log)
    assert all(e["ratio"] < S.MIN_RATIO for e in log if e["cluster"] >= 0)


def test_the_confirmation_test_is_calibrated_on_one_phase_clusters(close_pair):
    """Forced to propose a split of each one-phase cluster (min_ratio 0), the test on the other
    checkerboard colour gives p-values spread like uniform ones, not piled near 0: the split was
    chosen on counts the test does not see. 10 noise draws x 2 phases."""
    signal, truth = close_pair
    keep = truth.labels >= 0
    start = np.where(keep, truth.labels, -1)
    mu = truth.expected_counts()
    rng = np.random.default_rng(5)
    ps = []
    for _ in range(10):
        s = signal.deepcopy()
        s.data = rng.poisson(mu).astype(signal.data.dtype)
        _, log = S.split_mixed_clusters(s, start, lambda L: L, _lines(s), min_ratio=0.0,
                                        rounds=1)
        ps += [e["p"] for e in log if e["p"] is not None]
    ps = np.array(ps)
    print(f"\np-values of forced one-phase splits: {np.round(np.sort(ps), 3)}")
    assert len(ps) >= 16
    assert np.mean(ps < 0.05) <= 0.2 and ps.min() > S.ALPHA / 2 and np.median(ps) > 0.2


def _found(labels, truth):
    """Phases with a cluster >= 50 % pure holding >= 50 % of them (the benchmark's rule)."""
    keep = (truth.labels >= 0) & (labels >= 0)
    out = []
    for p in range(len(truth.phase_names)):
        inp = truth.labels == p
        out.append(any((labels[keep & inp] == c).sum() >= 0.5 * max((labels[keep] == c).sum(), 1)
                       and (labels[keep & inp] == c).sum() >= 0.5 * inp.sum()
                       for c in np.unique(labels[keep])))
    return out


@pytest.mark.slow   # UMAP
def test_workflow2_splits_a_cluster_merging_two_grain_phases():
    """Held-out benchmark scene 45 (4-phase alloy grains): workflow 2 up to the prior merges
    two phases into one cluster (2 of 4 phases found); the split test separates them, and the
    whole-cluster test then finds the fourth, a 6 % boundary layer at 5 counts per pixel, in
    the cluster that held it (all 4 found, ARI 0.52 -> 0.87; with every mixing direction left
    out, :data:`helpers.workflows.fractions.MIN_DOF`, that cluster had no freedom left to
    test, and only 3 were found). The min_cluster_size slider and the coupling slider run the
    same test, so they show the same labels."""
    from helpers.workflows import recluster_workflow2, regularised_at, workflow2
    signal, truth = random_scene(45, 128)
    keep = truth.labels >= 0
    r = workflow2(signal)
    assert r.params["split_clusters"] is True and any(e["split"] for e in r.params["splits"])
    before, after = r.labels_unsplit, r.labels
    assert sum(_found(before, truth)) == 2 and sum(_found(after, truth)) == 4
    gain = (adjusted_rand_score(truth.labels[keep], after[keep])
            - adjusted_rand_score(truth.labels[keep], before[keep]))
    assert gain > 0.2
    assert np.array_equal(recluster_workflow2(r, r.params["min_cluster_size"]).labels, after)
    assert np.array_equal(regularised_at(signal, r, r.spatial.beta).labels, after)
    off = workflow2(signal, split_clusters=False)
    assert off.params["splits"] == "off" and np.array_equal(off.labels, before)


@pytest.mark.slow   # UMAP
def test_workflow2_gives_a_phase_below_min_cluster_size_its_own_cluster():
    """Benchmark scene 17 (regression case): HDBSCAN merges phase P1 (5 % of a particle map,
    100 counts per pixel) into P3 and the prior leaves 82 % of it unassigned; the test of the
    unexplained pixels makes it a cluster (all four phases found, ARI 0.959 -> 0.972, pixels
    unassigned 6 % -> 1.7 %). Whether HDBSCAN merges P1 depends on the UMAP embedding, which
    differs between machines (a fresh environment of 2026-12-07 found P1 before the split
    test): what must hold is the outcome, and, where HDBSCAN did merge it, that the
    unexplained pixels' test is what found it. The step itself is tested without UMAP in
    :func:`test_pixels_no_cluster_explains_become_their_own_cluster`."""
    from helpers.workflows import workflow2
    signal, truth = random_scene(17, 128)
    keep = truth.labels >= 0
    r = workflow2(signal)
    before, after = r.labels_unsplit, r.labels
    assert all(_found(after, truth))
    assert np.mean(after[keep] < 0) < 0.03                                # 1.7 %
    if np.mean(before[truth.labels == 1] < 0) > 0.5:                      # merged: 82 % noise
        assert any(e["cluster"] == -1 and e["split"] for e in r.params["splits"])
        assert np.mean(after[keep] < 0) < np.mean(before[keep] < 0) / 2   # 6 % -> 1.7 %


@pytest.mark.slow   # UMAP
def test_the_split_test_says_why_it_did_not_run(hea6_96):
    from helpers.workflows import workflow2
    signal, _ = hea6_96
    r = workflow2(signal, spatial_beta=None)
    assert r.params["splits"].startswith("off: it relabels with the spatial prior")
    bare = workflow2(np.asarray(signal.data))          # no metadata: no elements
    assert bare.params["splits"].startswith("not run:")
    lazy = workflow2(signal.as_lazy())
    assert "lazy" in lazy.params["splits"]


class _Fit:
    def __init__(self, intensities, covariance):
        self.intensities, self.covariance = np.asarray(intensities, float), covariance


def test_a_difference_absorption_alone_could_make_is_not_counted():
    """Two spectra whose fractions differ only along the direction a thicker foil moves them
    (absorption) are not two phases: the Wald test leaves that direction out (p ~ 1, nothing
    left of the difference); the same size of difference across it is significant."""
    base = np.array([3000.0, 5000.0, 4000.0, 6000.0])
    cov = np.diag(base * 0.01)                 # ~ 100x the counts: a very precise measurement
    along = np.array([0.02, -0.005, -0.005, -0.01])
    f = base / base.sum()
    same_phase = _Fit((f + along) * base.sum(), cov)
    across = np.array([0.01, 0.01, -0.02, 0.0])
    other_phase = _Fit((f + across) * base.sum(), cov)
    chi2, dof, p, diff = S.wald_fractions(_Fit(base, cov), same_phase, along)
    assert dof == 2 and p > 0.99 and diff < 1e-9
    assert S.wald_fractions(_Fit(base, cov), same_phase)[2] < 1e-6     # without the allowance
    assert S.wald_fractions(_Fit(base, cov), other_phase, along)[2] < 1e-6


def test_absorption_direction_lowers_the_soft_line_and_needs_k_factors(close_pair):
    """A thicker foil lowers the fraction of the most absorbed (lowest-energy) line most; bare
    line names give no direction (no composition to compute absorption from)."""
    signal, truth = close_pair
    keep = truth.labels >= 0
    labels = np.where(keep, truth.labels, -1)
    lines = quant_lines(signal)
    d = S.absorption_direction(signal, labels, [0, 1], lines)
    assert set(d) == {0, 1} and all(abs(v.sum()) < 1e-9 for v in d.values())
    from exspy.material import elements as db
    xray = [db[k.element]["Atomic_properties"]["Xray_lines"] for k in lines]
    soft = int(np.argmin([x[k.xray_line.split("_")[1]]["energy (keV)"]
                          for x, k in zip(xray, lines)]))
    assert all(np.argmin(v) == soft for v in d.values())
    assert S.absorption_direction(signal, labels, [0, 1], _lines(signal)) == {}


def test_the_residuals_leave_the_absorption_direction_out(close_pair):
    signal, truth = close_pair
    keep = truth.labels >= 0
    lines = quant_lines(signal)
    xl = [k.xray_line for k in lines]
    from helpers.quant.linefit import _cached_design
    from helpers.quant.spectra import cluster_spectra
    design = _cached_design(cluster_spectra(signal, np.where(keep, 0, -1)), xl)
    ax = signal.axes_manager.signal_axes[0]
    i0 = int(round((design.energies[0] - ax.offset) / ax.scale))
    window = slice(i0, i0 + design.X.shape[0])
    sel = [design.names.index(x) for x in xl]
    along = S.absorption_direction(signal, np.where(keep, 0, -1), [0], lines)[0]
    g0 = S.whitened_residuals(signal.data, keep, design.X, sel, window)
    g1 = S.whitened_residuals(signal.data, keep, design.X, sel, window, along)
    # projected: one direction of the whitened residuals carries nothing any more
    sv0 = np.linalg.svd(g0[keep], compute_uv=False)
    sv1 = np.linalg.svd(g1[keep], compute_uv=False)
    assert sv1[-1] < 1e-3 * sv0[-1] and sv1[0] <= sv0[0] * (1 + 1e-6)


@pytest.fixture(scope="module")
def small_phase():
    """Benchmark scene 17 (4-phase alloy particles, 100 counts per pixel): phase P1, 5 % of the
    sample, merged into P3 as HDBSCAN merges a phase below its min_cluster_size, then labelled
    by the spatial prior, whose noise test leaves most of P1 unassigned."""
    return _merged_and_relabelled(17, 1, 3)


def _merged_and_relabelled(seed, phase, into):
    """Random scene ``seed`` (128 x 128) labelled by its true phases, ``phase`` merged into
    ``into``, relabelled by the spatial prior (beta 1): (signal, truth, SpatialResult)."""
    signal, truth = random_scene(seed, 128)
    keep = truth.labels >= 0
    merged = np.where(keep, np.where(truth.labels == phase, into, truth.labels), -1)
    return signal, truth, regularise_labels(np.asarray(signal.data), merged, mask=keep, beta=1.0)


def test_pixels_no_cluster_explains_become_their_own_cluster(small_phase):
    signal, truth, sp = small_phase
    keep, p1 = truth.labels >= 0, truth.labels == 1
    assert np.mean(sp.labels[p1] < 0) > 0.5 and np.mean(sp.labels[keep & ~p1] < 0) < 0.01
    labels, log = S.split_mixed_clusters(
        signal, sp.labels, lambda L: regularise_labels(sp.prepared, L, mask=keep, beta=1.0).labels,
        _lines(signal), prepared=sp.prepared)
    new = [e for e in log if e["cluster"] == -1]
    assert len(new) == 1 and new[0]["split"] and new[0]["p"] < 1e-10 and new[0]["compared"] == 3
    assert "unexpl." in S.format_split_log(log)
    c = np.bincount(labels[p1 & (labels >= 0)]).argmax()
    assert c not in (0, 2, 3)                                   # a new cluster
    assert np.mean(labels[p1] == c) > 0.7 and np.mean(p1[labels == c]) > 0.8
    assert np.mean(labels[keep] < 0) < 0.01


def test_unexplained_pixels_of_known_phases_are_not_a_new_cluster(small_phase, monkeypatch):
    """No unknown phase (true labels, 10 noise draws, 5 % of the pixels unassigned) but a
    candidate forced: the 30 % of search pixels that fit their cluster worst (chosen on the
    search colour's counts, as the real flags are; the likelihood-ratio step that would keep
    few of them passes them all). The test on the other colour gives p-values spread like
    uniform ones and never a new cluster."""
    from helpers.spatial import prepare_counts
    from helpers.workflows import unexplained as U
    signal, truth, _ = small_phase
    keep = truth.labels >= 0
    rng = np.random.default_rng(3)
    monkeypatch.setattr(U, "benjamini_hochberg", lambda p, fdr: p <= np.quantile(p, 0.3))
    monkeypatch.setattr(U, "_likelier_elsewhere",
                        lambda prep, on, best, flags, logp, k: flags & on & (best == k))
    mu = truth.expected_counts()
    ps = []
    for _ in range(10):
        s = signal.deepcopy()
        s.data = rng.poisson(mu).astype(signal.data.dtype)
        start = np.where(keep & (rng.random(keep.shape) > 0.05), truth.labels, -1)
        _, log = S.split_mixed_clusters(s, start, lambda L: L, _lines(s), rounds=1,
                                        prepared=prepare_counts(s.data, keep))
        ps += [e["p"] for e in log if e["cluster"] == -1 and e["p"] is not None]
        assert not any(e["split"] for e in log)
    ps = np.array(ps)
    print(f"\np-values of forced unexplained candidates: {np.round(np.sort(ps), 3)}")
    assert len(ps) >= 8 and ps.min() > S.ALPHA / 5 and np.median(ps) > 0.1


@pytest.fixture(scope="module")
def specks():
    """Held-out random scene 62 (3-phase sulfide grains, 50 counts per pixel): P1, 3 % of the
    sample and 12 at% richer in Ag, lies in 47 specks of about 10 px, 72 % of its pixels within
    2 px of the other two phases. Merged into P0 as workflow 2's front end merges it, then
    labelled by the spatial prior, which leaves much of it unassigned."""
    return _merged_and_relabelled(62, 1, 0)


def test_unexplained_specks_at_interfaces_become_their_own_cluster(specks):
    """The search's likelihood ratio finds the specks where the omnibus flags find a few
    pixels, and interface pixels may be in the candidate (the test leaves mixtures with the
    reference's neighbours out): P1 gets a cluster of its own, found by the benchmark's rule
    and mostly pure; no other phase loses its cluster."""
    signal, truth, sp = specks
    keep, p1 = truth.labels >= 0, truth.labels == 1
    assert np.mean(sp.labels[p1] < 0) > 0.3
    labels, log = S.split_mixed_clusters(
        signal, sp.labels, lambda L: regularise_labels(sp.prepared, L, mask=keep, beta=1.0).labels,
        _lines(signal), prepared=sp.prepared)
    new = [e for e in log if e["cluster"] == -1 and e["split"]]
    assert new and new[0]["p"] < 1e-8
    c = np.bincount(labels[p1 & (labels >= 0)]).argmax()
    assert c not in (0, 2)
    assert np.mean(labels[p1] == c) > 0.5 and np.mean(p1[labels == c]) > 0.7
    for phase in (0, 2):
        m = truth.labels == phase
        assert np.mean(labels[m] == np.bincount(labels[m][labels[m] >= 0]).argmax()) > 0.8
