"""Binning, energy cropping, normalisation/scaling, PCA and the automatic elbow."""
import numpy as np
import pytest

from helpers import decompose as D
from helpers import preprocess as P
from helpers.errors import DataError, ParameterError


def test_bin_navigation_sums_blocks_and_crops_with_warning():
    a = np.arange(5 * 7 * 3).reshape(5, 7, 3)
    with pytest.warns(P.BinningCropWarning, match="not a multiple"):
        b, used = P.bin_navigation(a, 2)
    assert b.shape == (2, 3, 3) and used == (4, 6)
    assert b[1, 2, 1] == a[2:4, 4:6, 1].sum()
    assert b.sum() == a[:4, :6].sum()           # counts are conserved in the kept region
    with pytest.raises(ParameterError, match="BIN_FACTOR"):
        P.bin_navigation(a, 0)
    with pytest.raises(ParameterError, match="larger than the map"):
        P.bin_navigation(a, 6)


def test_upsample_labels_restores_original_grid_with_unassigned_edges():
    lab = np.array([[0, 1], [2, -1]])
    up = P.upsample_labels(lab, 2, (5, 4))
    assert up.shape == (5, 4)
    assert (up[:2, :2] == 0).all() and (up[2:4, 2:4] == -1).all()
    assert (up[4] == -1).all()                   # the cropped last row is unassigned
    prob = P.upsample_labels(np.ones((2, 2, 3)), 2, (5, 4), fill=0.0)
    assert prob.shape == (5, 4, 3) and prob[4].sum() == 0


def test_total_normalisation_removes_thickness():
    rng = np.random.default_rng(0)
    shape = rng.dirichlet(np.ones(50))
    thin, thick = 100 * shape, 300 * shape        # same composition, 3x thickness
    X = P.normalize_features(np.stack([thin, thick]), "total")
    np.testing.assert_allclose(X[0], X[1])
    np.testing.assert_allclose(X.sum(1), 1)
    assert np.all(P.normalize_features(np.zeros((2, 3)), "total") == 0)   # empty pixel: no NaN
    with pytest.raises(ParameterError, match="normalization"):
        P.normalize_features(X, "bogus")


@pytest.mark.parametrize("method", ["standard", "robust", "poisson", "none"])
def test_scale_features_fits_on_masked_rows_only(method):
    rng = np.random.default_rng(1)
    X = rng.poisson(5.0, size=(200, 10)).astype(float)
    X[:20] += 1000                                # "vacuum"/outlier rows excluded from the fit
    fit = np.ones(200, bool)
    fit[:20] = False
    Y = P.scale_features(X, method, fit_mask=fit)
    assert np.all(np.isfinite(Y))
    assert abs(np.median(Y[fit])) < 1.0           # centred on the fitted rows
    assert Y[:20].mean() > 10                     # the excluded rows stay far away


def test_check_counts_rejects_bad_data():
    with pytest.raises(DataError, match="negative"):
        P.check_counts(np.array([[1, -1]]))
    with pytest.raises(DataError, match="NaN"):
        P.check_counts(np.array([[1.0, np.nan]]))
    with pytest.raises(DataError, match="all zeros"):
        P.check_counts(np.zeros((3, 3)))


def test_useful_energy_range_covers_every_line(hea6_96):
    from helpers.xray.lines import xray_line_positions
    signal, truth = hea6_96
    lo, hi = P.useful_energy_range(signal)
    lines = xray_line_positions(truth.elements, 200.0, (0.2, 20.0), min_weight=0.1)
    assert lo <= min(lines.values()) - 0.05 and hi >= max(lines.values()) + 0.1
    assert hi < 20.0                              # far below the recorded 20 keV: noise cut


def test_profile_likelihood_elbow_finds_the_signal_rank():
    # synthetic scree: r strong components above a slowly decaying noise floor
    for r in (1, 3, 6):
        ev = np.concatenate([np.geomspace(50, 10, r), np.geomspace(0.5, 0.3, 25)])
        q, ll = D.profile_likelihood_elbow(ev)
        assert q == r
        assert ll.shape == (ev.size - 1,)


def test_pca_elbow_on_low_rank_plus_noise_and_truncation():
    rng = np.random.default_rng(0)
    n, p, r = 800, 60, 3
    X = rng.normal(size=(n, r)) @ (5 * rng.normal(size=(r, p))) + rng.normal(size=(n, p))
    res = D.pca(X, None, max_components=20)
    assert res.elbow == r and res.n_components == r and res.scores.shape == (n, r)
    t = res.with_components(5)
    assert t.scores.shape == (n, 5)
    np.testing.assert_allclose(t.scores[:, :r], res.scores)
    with pytest.raises(ParameterError, match="N_COMPONENTS"):
        D.pca(X, p + 5)
    with pytest.raises(ParameterError, match="N_COMPONENTS"):
        res.with_components(0)


def test_hea6_scree_signal_components_stand_above_noise(hea6_96):
    """On hea6 the first components carry the phases: their score maps separate the true phases."""
    from helpers import workflows as W
    signal, truth = hea6_96
    f, p = W.pca_of_features(signal)
    assert 2 <= p.elbow <= 6
    lab = P.bin_navigation((truth.labels[..., None] + 1).astype(float), 2)[0][..., 0].ravel()
    pure = np.isin(lab, [4, 8, 12, 16]) & f.mask         # blocks of one phase only
    phase = (lab[pure] / 4 - 1).astype(int)
    sc = p.scores[pure]
    # between-phase variance dominates the elbow components (F-ratio style)
    means = np.stack([sc[phase == k].mean(0) for k in range(4)])
    within = np.mean([sc[phase == k].var(0).sum() for k in range(4)])
    between = means.var(0).sum()
    assert between > 2 * within
