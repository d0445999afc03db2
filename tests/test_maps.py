"""Element maps, correlations, the vacuum/support mask, plotting and the cache."""
import numpy as np
import pytest

from helpers import maps as M
from helpers import plotting as PL
from helpers.preprocess import bin_navigation

# --------------------------------------------------------------------------------------------
# vacuum / support mask
# --------------------------------------------------------------------------------------------
def test_otsu_threshold_splits_two_populations():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 1, 500), rng.normal(10, 1, 300)])
    t = M.otsu_threshold(v)
    assert 3 < t < 7


@pytest.mark.parametrize("preset", ["hea6", "hea7"])
def test_sample_mask_matches_true_vacuum_on_binned_grid(preset, hea6_96, hea7_96):
    signal, truth = hea6_96 if preset == "hea6" else hea7_96
    tot = bin_navigation(M.total_counts_map(signal)[..., None], 2)[0][..., 0]
    n_sample = bin_navigation((truth.labels >= 0)[..., None].astype(float), 2)[0][..., 0]
    m = M.sample_mask(tot, smooth=0)
    assert not m[n_sample == 0].any()          # every all-vacuum/support block is masked
    assert m[n_sample == 4].all()              # every all-sample block is kept


def test_sample_mask_keeps_a_thickness_gradient_without_vacuum():
    rng = np.random.default_rng(0)
    thickness = np.linspace(0.5, 1.7, 64)[None, :].repeat(64, 0)   # hea6-like gradient, no vacuum
    tot = rng.poisson(40 * thickness)
    assert M.sample_mask(tot, smooth=1.0).all()


def test_sample_mask_on_full_resolution_hea7(hea7_96):
    signal, truth = hea7_96
    m = M.sample_mask(signal, smooth=1.0)
    agree = np.mean(m == (truth.labels >= 0))
    assert agree > 0.95


# --------------------------------------------------------------------------------------------
# element maps and correlations
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hea6_maps(hea6_96):
    signal, _ = hea6_96
    return M.element_maps(signal)


def test_element_maps_follow_true_phase_distribution(hea6_96, hea6_maps):
    signal, truth = hea6_96
    assert list(hea6_maps) == ["Ag_La", "Cd_La", "Cu_Ka", "Fe_Ka", "Mn_Ka", "S_Ka", "Zn_Ka"]
    ag = np.asarray(hea6_maps["Ag_La"].data, float)
    assert ag.shape == truth.labels.shape
    # background-subtracted: vacuum is ~0, jalpaite (phase 1, 39 at% Ag) much brighter than
    # chalcopyrite (phase 0, 1.4 at% Ag) at comparable thickness
    rel = ag / np.maximum(truth.thickness, 1e-6)
    assert abs(ag[truth.labels < 0].mean()) < 0.3
    assert rel[truth.labels == 1].mean() > 5 * rel[truth.labels == 0].mean()


def test_correlation_matrix_finds_the_papers_pairs(hea6_96, hea6_maps):
    signal, _ = hea6_96
    corr = M.correlation_matrix(hea6_maps, mask=M.sample_mask(signal, smooth=1.0))
    pairs = {frozenset((a, b)) for a, b, _ in M.strongest_pairs(corr, 3)}
    assert pairs == {frozenset(("Fe", "Cu")), frozenset(("Ag", "Cd")), frozenset(("Mn", "Zn"))}
    # thickness makes raw maps all positively correlated; relative maps are not
    raw = M.correlation_matrix(hea6_maps, mask=M.sample_mask(signal, smooth=1.0), relative=False)
    off = ~np.eye(len(raw), dtype=bool)
    assert raw.values[off].mean() > corr.values[off].mean() + 0.2


# --------------------------------------------------------------------------------------------
# plotting
# --------------------------------------------------------------------------------------------
def test_cluster_colours_are_fixed_per_label_and_noise_is_grey():
    assert PL.cluster_colors(3)[:3] == PL.cluster_colors(8)[:3]
    assert PL.cluster_color(-1) == PL.NOISE_COLOR
    assert len(set(PL.cluster_colors(10))) == 10


def test_cluster_map_uses_shared_colours_and_scale_bar(hea6_96, tmp_path):
    import matplotlib.pyplot as plt
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
    signal, truth = hea6_96
    lab = truth.labels.copy()
    lab[:5, :5] = -1
    ax = PL.plot_cluster_map(lab, mask=truth.labels >= 0, scale=signal)
    rgba = ax.get_images()[0].to_rgba(ax.get_images()[0].get_array())
    r, c = np.argwhere(lab == 2)[0]
    assert np.allclose(rgba[r, c], PL.cluster_color(2))
    assert np.allclose(rgba[0, 0], PL.cluster_color(-1))
    vr, vc = np.argwhere(truth.labels < 0)[0]
    assert np.allclose(rgba[vr, vc], PL.MASKED_COLOR)
    bars = [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]
    assert bars and "m" in bars[0].txt_label.get_text()        # "1 µm" / "500 nm"
    paths = PL.save_figure(ax, "cluster_map", output_dir=tmp_path)
    assert paths[0].exists() and paths[0].stat().st_size > 1000
    plt.close("all")


# --------------------------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------------------------
def test_cache_is_keyed_by_content_and_parameters():
    from helpers import cache
    calls = []
    a = np.arange(10)
    h = cache.data_hash(a)
    assert h == cache.data_hash(np.arange(10)) and h != cache.data_hash(np.arange(1, 11))
    f = lambda: calls.append(1) or {"x": 1}      # noqa: E731
    assert cache.cached("t", h, {"p": 1}, f) == {"x": 1}
    assert cache.cached("t", h, {"p": 1}, f) == {"x": 1}
    assert len(calls) == 1                         # second call served from disk
    cache.cached("t", h, {"p": 2}, f)
    assert len(calls) == 2                         # another parameter, another entry
