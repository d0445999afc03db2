"""Layers between two clusters: the split test's boundary test (helpers.workflows.interfaces)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from helpers.quant.clusters import quant_lines
from helpers.simulate.scenes import random_scene
from helpers.spatial import regularise_labels
from helpers.workflows import interfaces as I
from helpers.workflows import split as S


def test_bands_flanks_and_triple_junctions():
    """Two halves (0 | 1) and a third cluster in a corner: the band is WIDTH px each side of
    the 0-1 boundary, the flanks the next 2 x WIDTH px, and nothing near cluster 2 counts."""
    lab = np.zeros((40, 40), int)
    lab[:, 20:] = 1
    lab[:10, 30:] = 2
    bands = {(a, b): rest for a, b, *rest in I.interface_bands(lab)}
    assert set(bands) == {(0, 1), (1, 2)}            # 0 and 2 are 10 px apart
    band, fa, fb = bands[(0, 1)]
    w = I.WIDTH
    cols = np.nonzero(band[30])[0]
    assert cols.min() == 20 - w and cols.max() == 20 + w - 1
    assert np.array_equal(np.nonzero(fa[30])[0], np.arange(20 - 3 * w, 20 - w))
    assert np.array_equal(np.nonzero(fb[30])[0], np.arange(20 + w, 20 + 3 * w))
    near2 = ndi.distance_transform_edt(lab != 2) <= w + 1
    assert not np.any((band | fa | fb) & near2)
    assert not np.any(band & fa) and not np.any(band & fb)


@pytest.fixture(scope="module")
def grains():
    """Three grain phases (no layer) at 50 counts per pixel, 96 x 96."""
    return random_scene(0, 96, kind="grains", n_phases=3, dose=50)


def test_boundaries_without_a_layer_are_not_split(grains):
    """No layer, the map blurred as by a spreading probe (sigma 1.5 px: the boundary pixels
    really mix their sides), labelled by its true phases; 10 noise draws. The boundary tests'
    p-values spread like uniform ones and no layer is ever called."""
    signal, truth = grains
    keep = truth.labels >= 0
    mu = ndi.gaussian_filter(truth.expected_counts().astype(float), (1.5, 1.5, 0))
    rng = np.random.default_rng(1)
    lines = quant_lines(signal)
    ps = []
    for _ in range(10):
        s = signal.deepcopy()
        s.data = rng.poisson(mu).astype(signal.data.dtype)
        _, log = S.split_mixed_clusters(s, np.where(keep, truth.labels, -1), lambda L: L, lines,
                                        rounds=1)
        border = [e for e in log if e["cluster"] == -2]
        assert border and not any(e["split"] for e in border)
        ps += [e["p"] for e in border]
    ps = np.array(ps)
    print(f"\nboundary p-values without a layer: {np.round(np.sort(ps), 3)}")
    assert len(ps) >= 20 and ps.min() > S.ALPHA / 5 and np.median(ps) > 0.2


@pytest.fixture(scope="module")
def layer():
    """A 1-px layer phase on the boundaries between two grain phases (30 counts per pixel),
    labelled as a clustering would leave it: each layer pixel with its nearest grain."""
    signal, truth = random_scene(2, 96, kind="boundary", n_phases=3, dose=30)
    t, keep = truth.labels, truth.labels >= 0
    lay = t == truth.params["scene"]["layer_phase"]
    idx = ndi.distance_transform_edt(lay, return_distances=False, return_indices=True)
    start = np.where(keep, np.where(lay, t[idx[0], idx[1]], t), -1)
    return signal, truth, lay, start


def test_a_layer_between_two_clusters_becomes_a_cluster(layer):
    signal, truth, lay, start = layer
    keep = truth.labels >= 0
    labels, log = S.split_mixed_clusters(
        signal, start, lambda L: regularise_labels(np.asarray(signal.data), L, mask=keep,
                                                   beta=1.0).labels, quant_lines(signal))
    border = [e for e in log if e["cluster"] == -2 and e["split"]]
    assert border and border[0]["p"] < 1e-10 and "border" in S.format_split_log(log)
    new = [c for c in np.unique(labels[keep]) if c not in np.unique(start[keep])]
    assert len(new) == 1                      # found again later, it grew: one layer cluster
    c = new[0]
    assert np.mean(lay[labels == c]) > 0.6 and np.mean(labels[lay] == c) > 0.3
    # the grains keep their pixels
    assert np.mean(labels[keep & ~lay] == start[keep & ~lay]) > 0.97


def test_off_leaves_the_boundaries_alone(layer):
    signal, truth, lay, start = layer
    labels, log = S.split_mixed_clusters(signal, start, lambda L: L, quant_lines(signal),
                                         interfaces=False)
    assert not any(e["cluster"] == -2 for e in log) and np.array_equal(labels, start)


def test_mask_spectra_sums_overlapping_masks(grains):
    from helpers.quant.spectra import mask_spectra
    signal, truth = grains
    rows = np.indices(truth.labels.shape)[0]
    masks = [rows < 30, (rows >= 20) & (rows < 50), np.zeros_like(rows, bool)]
    stack = mask_spectra(signal, masks)
    for i, m in enumerate(masks):
        assert np.array_equal(stack.data[i], signal.data[m].sum(0))
    assert stack.metadata.Clusters.n_pixels == [int(m.sum()) for m in masks]
