"""HyperSpy-native results (issue 18): label maps and cluster spectra that ``hs.load`` opens with
the input's calibration and metadata, and the clusters' composition names."""
from types import SimpleNamespace

import numpy as np
import pytest

from helpers import quant, results


@pytest.fixture(scope="module")
def small_map():
    """hea6 at 48x48 with a calibrated, offset grid; its true phase map as labels, -1 on a
    strip (unassigned), and Dirichlet posteriors as the weights."""
    from helpers.simulate import simulate

    signal, truth = simulate("hea6", size=48, seed=0)
    for ax, offset in zip(signal.axes_manager.navigation_axes, (12.5, -7.0)):
        ax.offset = offset
    labels = np.asarray(truth.labels, int).copy()
    labels[:, :3] = -1
    k = int(labels.max()) + 1
    rng = np.random.default_rng(0)
    prob = rng.dirichlet(np.ones(k), size=labels.shape)
    return signal, labels, prob


def test_label_signal_loads_with_the_inputs_calibration_and_cluster_names(small_map, tmp_path):
    import hyperspy.api as hs

    signal, labels, _ = small_map
    names = {0: "Cu–Fe rich", 1: "Ag–Cd rich", 2: "Zn–Mn rich", 3: "near-equimolar"}
    path = results.save_label_signal(1, labels, signal, names, tmp_path)
    assert path.name == "labels_workflow1.hspy"
    s = hs.load(path)
    assert s.axes_manager.signal_shape == labels.shape[::-1]
    for src, ax in zip(signal.axes_manager.navigation_axes, s.axes_manager.signal_axes):
        assert (ax.name, ax.units) == (src.name, src.units)
        assert ax.scale == pytest.approx(src.scale) and ax.offset == pytest.approx(src.offset)
    assert s.axes_manager.signal_axes[0].units == "nm"
    assert s.axes_manager.signal_axes[0].offset == pytest.approx(12.5)
    np.testing.assert_array_equal(s.data, labels)
    ids = sorted(int(c) for c in np.unique(labels) if c >= 0)
    assert list(s.metadata.Clusters.ids) == ids and len(ids) == 4
    assert list(s.metadata.Clusters.names) == [names[c] for c in ids]
    assert list(s.metadata.Clusters.n_pixels) == [int((labels == c).sum()) for c in ids]
    s.plot()   # what a HyperSpy user does first
    import matplotlib.pyplot as plt
    plt.close("all")


def test_cluster_spectra_sum_back_to_the_raw_counts_of_their_pixels(small_map, tmp_path):
    import exspy
    import hyperspy.api as hs

    signal, labels, prob = small_map
    stack = quant.cluster_spectra_stack(signal, labels, prob, {0: "a"}, workflow=2)
    path = results.save_cluster_spectra(2, stack, tmp_path)
    s = hs.load(path)
    assert isinstance(s, exspy.signals.EDSTEMSpectrum)
    ids = list(s.metadata.Clusters.ids)
    assert s.axes_manager.navigation_shape == (len(ids), 2)
    assert [a.name for a in s.axes_manager.navigation_axes] == ["cluster", "weighting"]
    assert list(s.metadata.Clusters.weighting) == ["hard", "weighted"]
    raw = np.asarray(signal.data, dtype=np.int64)
    for i, c in enumerate(ids):   # hard: exactly the counts of the cluster's pixels
        np.testing.assert_array_equal(s.data[0, i], raw[labels == c].sum(axis=0))
    # weighted: every labelled pixel's posteriors sum to 1, so the clusters share its counts
    np.testing.assert_allclose(s.data[1].sum(axis=0), raw[labels >= 0].sum(axis=0), rtol=1e-9)
    w = np.where((labels >= 0)[..., None], prob, 0.0)
    np.testing.assert_allclose(s.data[1, 1], np.tensordot(w[..., 1], raw, axes=2), rtol=1e-9)
    # the input's metadata and energy axis, so exspy's own tools run on the stack
    assert list(s.metadata.Sample.elements) == list(signal.metadata.Sample.elements)
    assert list(s.metadata.Sample.xray_lines) == list(signal.metadata.Sample.xray_lines)
    assert s.metadata.Acquisition_instrument.TEM.beam_energy == \
        signal.metadata.Acquisition_instrument.TEM.beam_energy
    src, ax = signal.axes_manager.signal_axes[0], s.axes_manager.signal_axes[0]
    assert (ax.scale, ax.offset, ax.units) == (src.scale, src.offset, src.units)
    lines = s.get_lines_intensity()
    assert len(lines) == len(signal.metadata.Sample.xray_lines)
    assert lines[0].axes_manager.navigation_shape == (len(ids), 2)
    var = s.metadata.Signal.Noise_properties.variance
    np.testing.assert_allclose(var.data[0], s.data[0])       # Poisson: variance = counts


def test_large_signals_go_to_zspy_and_replace_an_earlier_hspy(small_map, tmp_path, monkeypatch):
    import hyperspy.api as hs

    signal, labels, _ = small_map
    first = results.save_label_signal(1, labels, signal, output_dir=tmp_path)
    monkeypatch.setattr(results, "ZSPY_BYTES", 0)
    second = results.save_label_signal(1, labels, signal, output_dir=tmp_path)
    assert second.suffix == ".zspy" and not first.exists()
    assert results.signal_path("labels_workflow1", tmp_path) == second
    np.testing.assert_array_equal(hs.load(second).data, labels)


# ----------------------------------------------------------------------------- names

def _quant(table, pixels, errors=0.3):
    """A ClusterQuant-like object from ``{cluster: {element: at%}}``."""
    comps = {}
    for c, comp in table.items():
        els = sorted(comp)
        comps[c] = SimpleNamespace(elements=els, at_percent=np.array([comp[e] for e in els]),
                                   err_total=np.full(len(els), errors), n_pixels=pixels[c],
                                   quantified=True)
    return SimpleNamespace(clusters=sorted(table), compositions=comps)


HEA6 = {0: {"Ag": 2.8, "Cd": 7.7, "Cu": 1.0, "Fe": 5.6, "Mn": 17.3, "S": 60.2, "Zn": 5.4},
        1: {"Ag": 1.4, "Cd": 0.7, "Cu": 17.6, "Fe": 25.4, "Mn": 2.5, "S": 52.1, "Zn": 0.3},
        2: {"Ag": 10.8, "Cd": 7.0, "Cu": 8.6, "Fe": 10.5, "Mn": 9.5, "S": 51.2, "Zn": 2.5},
        3: {"Ag": 39.0, "Cd": 15.8, "Cu": 5.1, "Fe": 0.7, "Mn": 0.8, "S": 38.5, "Zn": 0.1}}
HEA6_PIXELS = {0: 601, 1: 160, 2: 122, 3: 79}   # the true phase areas of hea6


def test_names_come_from_the_elements_most_above_the_map_mean():
    names = quant.cluster_names(_quant(HEA6, HEA6_PIXELS))
    assert names[1] == "Cu–Fe rich"          # chalcopyrite
    assert names[3] == "Ag–Cd rich"          # jalpaite
    assert names[0].startswith(("Zn–Mn", "Mn–Zn")) and "Ag" not in names[0]
    assert len(set(names.values())) == 4
    assert quant.cluster_names(_quant(HEA6, HEA6_PIXELS)) == names   # deterministic


def test_near_equimolar_single_map_and_twins_get_distinct_names():
    alloy = {0: {e: 20.0 for e in ("Co", "Cr", "Fe", "Mn", "Ni")},
             1: {"Co": 14.0, "Cr": 48.0, "Fe": 18.0, "Mn": 12.0, "Ni": 8.0}}
    names = quant.cluster_names(_quant(alloy, {0: 800, 1: 120}))
    assert names == {0: "near-equimolar", 1: "Cr rich"}
    one = quant.cluster_names(_quant({0: HEA6[3]}, {0: 10}))
    assert one == {0: "whole map"}
    twins = {0: HEA6[3], 1: HEA6[3], 2: HEA6[1]}
    names = quant.cluster_names(_quant(twins, {0: 50, 1: 50, 2: 400}))
    assert len(set(names.values())) == 3 and names[0].startswith("Ag–Cd")


def test_unquantified_cluster_is_named_so():
    q = _quant(HEA6, HEA6_PIXELS)
    q.compositions[2].quantified = False
    names = quant.cluster_names(q)
    assert names[2] == "not quantified" and names[3] == "Ag–Cd rich"
