"""helpers.simulate.large and the lazy paths of helpers.preprocess: block-wise writing and
chunked reduction give the same science as in memory.

Small maps only (the 512x512x4096 case is measured by benchmarks/run.py, never timed here).
"""
import numpy as np
import pytest

from helpers import demo, io, preprocess, simulate
from helpers.simulate import large as largedata
from helpers.errors import OutputError, ParameterError

KW = dict(channel_width=0.02)   # 1024 channels of 20 eV: 0-20 keV, every hea6 line


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("large") / "hea6_32.hspy"
    info = largedata.write_simulated_map(path, size=32, n_channels=1024, block_rows=8, seed=3,
                                         dtype=np.uint16, **KW)
    return path, info


def test_large_truth_equals_simulate_truth():
    truth, _ = largedata.large_truth("hea6", size=40, n_channels=1024, seed=2, **KW)
    _, ref = simulate.simulate("hea6", size=40, n_channels=1024, seed=2, **KW)
    assert np.array_equal(truth.labels, ref.labels)
    assert np.allclose(truth.path_lengths, ref.path_lengths)
    assert np.allclose(truth.unit_spectra, ref.unit_spectra, rtol=1e-9)
    assert np.allclose(truth.background_spectrum, ref.background_spectrum, rtol=1e-9)
    assert truth.compositions == ref.compositions


def test_written_map_is_lazy_poisson_around_the_truth(written):
    path, info = written
    sig = io.load_spectrum_image(path, lazy=True, verbose=False)
    assert sig._lazy and sig.data.shape == (32, 32, 1024)
    assert sig.data.chunksize[0] == 8
    truth = demo.get_truth(sig)
    assert np.array_equal(truth.labels, info["truth"].labels)
    counts = np.asarray(sig.data.sum(axis=(0, 1)).compute(), float)
    expected = truth.expected_counts().sum(axis=(0, 1))
    # total counts within 3 sigma of Poisson; spectra agree channel by channel where counts are high
    assert abs(counts.sum() - expected.sum()) < 3 * np.sqrt(expected.sum())
    strong = expected > 400
    z = (counts[strong] - expected[strong]) / np.sqrt(expected[strong])
    assert np.abs(z).max() < 5
    # same seed, same file content
    again = largedata.write_simulated_map(path.with_name("again.hspy"), size=32, n_channels=1024,
                                          block_rows=8, seed=3, dtype=np.uint16, **KW)
    sig2 = io.load_spectrum_image(again["path"], lazy=True, verbose=False)
    assert np.array_equal(np.asarray(sig.data), np.asarray(sig2.data))


def test_chunked_binning_and_scaling_match_in_memory(written):
    path, _ = written
    lazy = io.load_spectrum_image(path, lazy=True, verbose=False)
    eager = io.load_spectrum_image(path, lazy=False, verbose=False)
    got = preprocess.lazy_binned_counts(lazy, bin_factor=2, energy_bin=4)
    ref = preprocess.prepare(eager, bin_factor=2, energy_bin=4)
    assert got["binned_shape"] == ref["binned_shape"] == (16, 16)
    assert np.array_equal(got["counts"], ref["counts"])
    assert np.allclose(got["energy"], ref["energy"])
    mask = got["counts"].sum(1) > np.median(got["counts"].sum(1)) * 0.2
    for scaling in ("standard", "poisson"):
        X = preprocess.lazy_features(got["counts"], scaling=scaling, fit_mask=mask,
                                    block_pixels=100)
        Xref = preprocess.make_features(ref["counts"], "total", scaling, fit_mask=mask)
        assert np.allclose(X, Xref, atol=1e-4 * max(1.0, np.abs(Xref).max()))


def test_bad_arguments(tmp_path, written):
    path, _ = written
    with pytest.raises(ParameterError):
        largedata.write_simulated_map(tmp_path / "x.emd", size=16, n_channels=1024, **KW)
    with pytest.raises(OutputError):
        largedata.write_simulated_map(path, size=16, n_channels=1024, **KW)


def test_numba_cache_switches_on_umap_caching(monkeypatch):
    from numba.core.caching import NullCache

    from helpers import numba_cache
    monkeypatch.setitem(numba_cache._DONE, "n", None)
    assert numba_cache.enable() > 50
    import umap.umap_
    assert not isinstance(umap.umap_.smooth_knn_dist._cache, NullCache)
    monkeypatch.setitem(numba_cache._DONE, "n", None)
    monkeypatch.setenv("HEA_NUMBA_CACHE", "0")
    assert numba_cache.enable() == 0


def test_lazy_map_through_the_workflow_calls_equals_in_memory(written):
    """compute_features and quantify_clusters on a lazy map (chunked binning, block-wise
    scaling, one dask pass for interior + whole-mask spectra) give the in-memory answers."""
    from helpers import quant
    from helpers import workflows as cluster
    path, _ = written
    lazy = io.load_spectrum_image(path, lazy=True, verbose=False)
    eager = io.load_spectrum_image(path, lazy=False, verbose=False)
    fl = cluster.compute_features(lazy)
    fe = cluster.compute_features(eager)
    assert np.array_equal(fl.counts, fe.counts) and np.array_equal(fl.mask, fe.mask)
    assert np.allclose(fl.X, fe.X, atol=1e-4 * max(1.0, np.abs(fe.X).max()))
    labels = demo.get_truth(eager).labels
    ql = quant.quantify_clusters(lazy, labels)
    qe = quant.quantify_clusters(eager, labels)
    assert ql.clusters == qe.clusters
    for c in qe.clusters:
        np.testing.assert_allclose(ql.compositions[c].at_percent, qe.compositions[c].at_percent,
                                   atol=1e-9)
        np.testing.assert_allclose(ql.compositions[c].err_total, qe.compositions[c].err_total,
                                   atol=1e-9)


def test_spatial_prior_counts_of_a_lazy_map_are_read_once_and_match_memory(written):
    """The spatial prior's raw counts of a lazy map: one pass for both workflows, 16-bit, the
    same numbers as cropping and channel-binning the map in memory."""
    from helpers.workflows.features import compute_features, spatial_counts
    path, _ = written
    lazy = io.load_spectrum_image(path, lazy=True, verbose=False)
    eager = io.load_spectrum_image(path, lazy=False, verbose=False)
    feats = compute_features(eager)
    got, channels, one = spatial_counts(lazy, feats)
    assert spatial_counts(lazy, feats)[0] is got and got.dtype == np.uint16 and one == 1
    data, (lo, hi), eb = spatial_counts(eager, feats)
    n = (hi - lo) // eb * eb
    want = data[:, :, lo:lo + n].reshape(*data.shape[:2], -1, eb).sum(axis=-1)
    assert channels is None and eb > 1 and np.array_equal(got, want)
