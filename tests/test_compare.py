"""Workflow agreement and the "is this split real?" test against simulated ground truth.

hea7: uniform particles, so a core/shell split of them must come out NOT significant (the
paper's conclusion). hea7_coreshell: a real Co/Mn/Zn-rich core, which the test must detect.
"""
import numpy as np
import pytest

from helpers import compare, preprocess, quant, simulate
from helpers.errors import ParameterError


def _thickness_split(truth, quantile=0.5):
    """Particle pixels split into thick (0, "core") and thin (1, "shell") at a thickness
    quantile: what a clustering of raw intensities does on spheres."""
    part = truth.labels >= 0
    cut = np.quantile(truth.thickness[part], quantile)
    lab = np.full(truth.labels.shape, -1)
    lab[part & (truth.thickness >= cut)] = 0
    lab[part & (truth.thickness < cut)] = 1
    return lab


@pytest.fixture(scope="module")
def hea7():
    return simulate.simulate("hea7", size=96, seed=0)


@pytest.fixture(scope="module")
def hea7_coreshell():
    return simulate.simulate("hea7_coreshell", size=96, seed=0)


def test_contingency_ari_and_matching():
    a = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [-1, 2, 2, 2]])
    b = np.array([[5, 5, 3, 3], [5, 5, 3, 3], [-1, -1, 3, 3]])
    ct = compare.contingency_table(a, b)
    assert ct.loc[0, 5] == 4 and ct.loc[1, 3] == 4 and ct.loc[2, 3] == 2 and ct.loc[-1, -1] == 1
    assert ct.values.sum() == a.size
    assert compare.adjusted_rand(a, a) == pytest.approx(1.0)
    assert compare.adjusted_rand(a, b) < 1.0
    pairs = compare.match_clusters(a, b)
    assert (0, 5, 4) in pairs and (1, 3, 4) in pairs
    with pytest.raises(ParameterError):
        compare.contingency_table(a, b[:2])


@pytest.mark.slow
def test_uniform_particles_core_shell_split_not_significant(hea7):
    """hea7 has one composition: thick-vs-thin splits are never significant."""
    s, truth = hea7
    for qt in (0.35, 0.65):
        q = quant.quantify_clusters(s, _thickness_split(truth, qt))
        real, df = compare.split_significance(q, 0, 1)
        assert not real, df.round(2).to_string()
        assert np.abs(df["z"]).max() < compare.z_threshold(len(df))


@pytest.mark.slow
def test_real_core_is_detected(hea7_coreshell):
    """hea7_coreshell, true core and shell: Co, Mn and Zn come out significant."""
    s, truth = hea7_coreshell
    # 0 shell, 1 core; true labels: every pixel (the exact difference below uses whole masks)
    q = quant.quantify_clusters(s, truth.labels, exclude_boundary=False)
    real, df = compare.split_significance(q, 1, 0)
    assert real
    sig = df.set_index("element")
    for el in ("Co", "Mn", "Zn"):
        assert sig.loc[el, "significant"], df.round(2).to_string()
        assert sig.loc[el, "z"] > 0  # enriched in the core
    # the estimated difference matches the truth within 3 sigma for every element; the truth
    # is the quantification of the noise-free cluster spectra (core pixels also see shell above
    # and below them, so the core cluster is not the pure core phase)
    mu = truth.expected_counts()
    exact = quant.quantify_spectra(quant.spectra.new_like(s, np.stack([mu[truth.labels == c].sum(0)
                                                                 for c in (1, 0)])))
    true_diff = dict(zip(exact[0].elements, exact[0].at_percent - exact[1].at_percent))
    for el, row in sig.iterrows():
        assert abs(row["difference"] - true_diff[el]) < 3 * row["sigma"], el
    # a thickness split of the same particles mixes core into both halves but still sees it
    q2 = quant.quantify_clusters(s, _thickness_split(truth, 0.5))
    _, df2 = compare.split_significance(q2, 0, 1)
    assert df2.set_index("element").loc[["Co", "Mn", "Zn"], "significant"].all()


def test_composition_difference_needs_same_elements():
    def comp(elements):
        n = len(elements)
        return quant.Composition(elements, [e + "_Ka" for e in elements], np.full(n, 100 / n),
                                 np.eye(n), np.eye(n), np.ones(n), np.eye(n), np.ones(n),
                                 np.zeros(n))

    a, b = comp(["Cu", "Fe", "S"]), comp(["Cu", "S"])
    assert not compare.composition_difference(a, a)["significant"].any()
    with pytest.raises(ParameterError):
        compare.composition_difference(a, b)
    with pytest.raises(ParameterError):
        compare.composition_difference(a, a, error="poisson")


def _noise_split(signal, truth, lo=7.9, hi=8.2):
    """A deliberately noise-driven 'clustering' of the uniform hea7 particles: pixels split at
    the median of their own Cu Ka fraction. No real difference exists between the halves."""
    E = signal.axes_manager.signal_axes[0].axis
    d = np.asarray(signal.data, float)
    frac = d[..., (E > lo) & (E < hi)].sum(-1) / np.maximum(d.sum(-1), 1)
    part = truth.labels >= 0
    lab = np.full(truth.labels.shape, -1)
    cut = np.median(frac[part])
    lab[part & (frac > cut)] = 0
    lab[part & (frac <= cut)] = 1
    return lab


def test_thin_counts_gives_independent_halves(hea7):
    s, truth = hea7
    a, b = preprocess.thin_counts(s, 0.5, seed=0)
    np.testing.assert_array_equal(a.data.astype(int) + b.data.astype(int), s.data.astype(int))
    assert a.data.sum() / s.data.sum() == pytest.approx(0.5, abs=0.005)
    with pytest.raises(ParameterError):
        preprocess.thin_counts(s, 1.5)


def test_thin_counts_of_a_lazy_map_stays_lazy_block_by_block(hea7):
    """A lazily loaded map is thinned chunk by chunk without loading it: halves still lazy,
    summing to the original, each about half, the same on a rerun; float data refused."""
    s, _ = hea7
    lazy = s.as_lazy()
    lazy.data = lazy.data.rechunk((16, 16, -1))
    a, b = preprocess.thin_counts(lazy, 0.5, seed=4)
    assert a._lazy and b._lazy and a.data.numblocks == lazy.data.numblocks
    A, B = np.asarray(a.data.compute()), np.asarray(b.data.compute())
    np.testing.assert_array_equal(A.astype(int) + B.astype(int), s.data.astype(int))
    assert A.sum() / s.data.sum() == pytest.approx(0.5, abs=0.005)
    np.testing.assert_array_equal(np.asarray(preprocess.thin_counts(lazy, 0.5, 4)[0].data), A)
    floats = s.as_lazy()
    floats.data = floats.data.astype(float)
    with pytest.raises(ParameterError, match="integer counts"):
        preprocess.thin_counts(floats, 0.5)


def test_count_splitting_removes_double_dipping(hea7):
    """Clusters chosen on noise look 'significantly' different on the counts that chose them;
    tested on held-out counts (binomial thinning) they do not."""
    s, truth = hea7
    q = quant.quantify_clusters(s, _noise_split(s, truth))
    real, df = compare.split_significance(q, 0, 1)
    assert real and df.set_index("element").loc["Cu", "z"] > 5  # the double-dipping artefact
    qh, tab = compare.heldout_split_significance(s, lambda x: _noise_split(x, truth), seed=1)
    assert not tab["significant"].any(), tab.round(2).to_string()


def _fresh_counts(signal, truth, seed):
    """The same scene with an independent Poisson draw of its counts (what a second
    acquisition would give): a cluster split chosen on ``signal`` is tested here without the
    selection bias of testing it on the counts that chose it."""
    fresh = signal.deepcopy()
    fresh.data = np.random.default_rng(seed).poisson(truth.expected_counts()).astype(
        signal.data.dtype)
    return fresh


@pytest.mark.slow
def test_workflow1_core_shell_split(hea7, hea7_coreshell):
    """Workflow 1 with 2 clusters, as in the paper. Its split of the uniform hea7 particles
    (thin edges against thick centres) shows no significant difference on an independent draw
    of the counts; its split of hea7_coreshell does, and only in elements whose true core and
    shell contents differ (Co, Mn, Zn). On the counts that chose the split, the uniform
    particles can look 'significant' (selection bias: see the double-dipping test above).
    Per-pixel features, as in the paper: neither split is the core (per-pixel ceiling 0.28 on
    hea7_coreshell at 96 x 96); the paper's workflow cuts 35 thin shell pixels off the rest, and
    the rest holds the core. Pooled features (the package default) leave one pixel in the second
    cluster: nothing to compare, which is what the map can tell at this dose."""
    from helpers import workflows as cluster
    for (s, truth), real_split in ((hea7, False), (hea7_coreshell, True)):
        labels = np.asarray(cluster.workflow1(s, n_clusters=2, smoothing=0).labels)
        q = quant.quantify_clusters(_fresh_counts(s, truth, seed=7), labels)
        assert len(q.clusters) == 2
        found, df = compare.split_significance(q, *q.clusters)
        sig = set(df.loc[df["significant"], "element"])
        assert found == real_split, (truth.preset, df.round(2).to_string())
        comp = truth.compositions
        differs = {e for e in truth.elements
                   if max(abs(a.get(e, 0) - b.get(e, 0)) for a in comp.values()
                          for b in comp.values()) > 1.0}
        assert sig <= differs, (truth.preset, sig - differs, df.round(2).to_string())
