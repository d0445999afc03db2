"""The split test's second look at a cluster: all of its pixels, a mixture with the clusters it
touches not counted (helpers.workflows.split.WHOLE_CLUSTER,
helpers.workflows.fractions.mixing_directions)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from helpers.quant.clusters import quant_lines
from helpers.quant.linefit import _cached_design
from helpers.quant.spectra import cluster_spectra
from helpers.simulate.scenes import random_scene
from helpers.spatial import regularise_labels
from helpers.workflows import split as S
from helpers.workflows.fractions import MIN_DOF, mixing_directions, whole_cluster_directions


class _Fit:
    def __init__(self, intensities):
        self.intensities = np.asarray(intensities, float)


def test_mixing_directions_point_to_every_cluster_touched():
    """Cluster 0 touches 1, 1 touches 0 and 2, cluster 3 touches only unassigned pixels (no
    phase, no direction); each direction is the other cluster's fractions minus its own."""
    labels = np.full((12, 20), -1)
    labels[:, :5], labels[:, 5:10], labels[:, 10:14] = 0, 1, 2
    labels[4:8, 16:19] = 3
    f = {0: [1.0, 1.0, 2.0], 1: [2.0, 1.0, 1.0], 2: [1.0, 3.0, 0.0], 3: [1.0, 1.0, 1.0]}
    d = mixing_directions([_Fit(f[c]) for c in range(4)], [0, 1, 2, 3], labels)
    frac = {c: np.array(v) / sum(v) for c, v in f.items()}
    assert np.allclose(d[0], [frac[1] - frac[0]])
    assert sorted(map(tuple, np.round(d[1], 12))) == sorted(
        tuple(np.round(frac[j] - frac[1], 12)) for j in (0, 2))
    assert np.allclose(d[2], [frac[1] - frac[2]])
    assert d[3] is None
    # a cluster whose fit failed gives and gets no direction
    d = mixing_directions([_Fit(f[0]), None, _Fit(f[2]), _Fit(f[3])], [0, 1, 2, 3], labels)
    assert d[0] is None and d[1] is None and d[2] is None


def test_mixing_directions_longest_contact_first():
    """Cluster 0 (a 12 x 12 block) touches cluster 2 along 12 px and cluster 1 along 3 px: 2's
    direction comes first, though its label is the larger."""
    labels = np.full((14, 20), -1)
    labels[1:13, 1:13] = 0
    labels[1:13, 13:16] = 2        # the long side
    labels[13, 4:7] = 1            # a short stretch below
    f = {0: [1.0, 1.0, 2.0], 1: [2.0, 1.0, 1.0], 2: [1.0, 3.0, 0.0]}
    d = mixing_directions([_Fit(f[c]) for c in range(3)], [0, 1, 2], labels)[0]
    frac = {c: np.array(v) / sum(v) for c, v in f.items()}
    assert np.allclose(d, [frac[2] - frac[0], frac[1] - frac[0]])


@pytest.mark.parametrize("n_lines, absorption, n_mixing, kept", [
    (6, True, 4, 2),     # 5 fractions' dof - absorption - 2 left: the 2 longest contacts
    (6, True, 1, 1),     # enough left: every direction
    (6, False, 4, 3),
    (4, True, 1, 0),     # 3 - 1 - 2: no room for a mixture
    (3, True, 2, 0),
])
def test_the_whole_cluster_test_keeps_min_dof(n_lines, absorption, n_mixing, kept):
    """What the whole-cluster test leaves out: absorption, and the mixing directions of the
    clusters touched (longest contact first) only as far as :data:`MIN_DOF` degrees of
    freedom of the fractions remain; a cluster touching four others in a six-line map kept
    none (held-out random scene 45: its boundary layer found with them, lamellae 124: two more
    phases)."""
    rng = np.random.default_rng(0)
    ab = rng.standard_normal(n_lines) if absorption else None
    mix = rng.standard_normal((n_mixing, n_lines))
    got = whole_cluster_directions(ab, mix, n_lines)
    want = [] if ab is None else [ab]
    want += list(mix[:kept])
    if not want:
        assert got is None
    else:
        assert np.allclose(got, np.array(want))
    assert MIN_DOF == 2


@pytest.fixture(scope="module")
def three_grains():
    """Three grain phases of a 96 x 96 alloy at 40 counts per pixel."""
    return random_scene(3, 96, kind="grains", n_phases=3, family="alloy", close_pair=False,
                        dose=40)


def test_the_residuals_leave_every_direction_given_out(three_grains):
    """Several directions at once (absorption and two mixtures): the whitened residuals lose
    one dimension per direction, and only those."""
    signal, truth = three_grains
    keep = truth.labels >= 0
    xl = [k.xray_line for k in quant_lines(signal)]
    labels = np.where(keep, truth.labels, -1)
    spectra = cluster_spectra(signal, labels, clusters=[0, 1, 2])
    design = _cached_design(spectra, xl)
    ax = signal.axes_manager.signal_axes[0]
    i0 = int(round((design.energies[0] - ax.offset) / ax.scale))
    window = slice(i0, i0 + design.X.shape[0])
    sel = [design.names.index(x) for x in xl]
    from helpers.quant.linefit import fit_line_intensities
    fits = fit_line_intensities(spectra, xl)
    along = S._absorption_directions(spectra, [0, 1, 2], quant_lines(signal), fits)[0]
    mix = mixing_directions(fits, [0, 1, 2], labels)[0]
    assert mix.shape == (2, len(xl))
    inner = labels == 0
    g0 = S.whitened_residuals(signal.data, inner, design.X, sel, window)
    g3 = S.whitened_residuals(signal.data, inner, design.X, sel, window,
                              np.vstack([mix, along]))
    sv0 = np.linalg.svd(g0[inner], compute_uv=False)
    sv3 = np.linalg.svd(g3[inner], compute_uv=False)
    assert len(sv0) == len(xl) - 1 >= 4
    assert np.all(sv3[-3:] < 1e-3 * sv0[-1]) and sv3[-4] > 0.1 * sv0[-1]


def _relabel(signal, keep):
    return lambda L: regularise_labels(np.asarray(signal.data), L, mask=keep, beta=1.0).labels


def test_a_cluster_grown_into_its_neighbours_is_not_split_by_its_edges(three_grains):
    """Each true phase's cluster grown by 2 px into the grains around it (as a prior may label
    an edge): its edge pixels are its neighbours' phases, a different one on each side. Tested
    on all of its pixels without leaving out the mixtures, such a cluster is cut by its edges;
    with them left out (the default), no cluster is split."""
    signal, truth = three_grains
    keep = truth.labels >= 0
    grown = np.where(keep, truth.labels, -1)
    for c in range(3):   # phase c's cluster takes the 2-px rim of every other grain it touches
        rim = ndi.binary_dilation(truth.labels == c, np.ones((5, 5), bool)) & (grown != c) & keep
        grown[rim & (truth.labels != c) & (np.arange(grown.size).reshape(grown.shape) % 3 == c)] = c
    xl = quant_lines(signal)
    _, log = S.split_mixed_clusters(signal, grown, _relabel(signal, keep), xl, rounds=1,
                                    interfaces=False, stripes=False)
    whole = [e for e in log if e.get("whole") and e["window"] != "pieces"]
    assert len(whole) == 3 and not any(e["split"] for e in log)   # nor by its pieces
    # without the mixture directions the same clusters' edges tell their sides apart
    ctx = S._context(signal, grown, xl, cluster_spectra(signal, grown, clusters=[0, 1, 2]),
                     radii=S.RADII, n_perm=S.N_PERMUTATIONS, random_state=0, min_ratio=0.0,
                     min_difference=S.MIN_DIFFERENCE, prepared=None)
    ctx["residuals"] = {}
    ps = [S._test_cluster(c, grown, None, 1.0, ctx, edge=0)[0]["p"] for c in range(3)]
    print(f"\np of each cluster's edges, mixtures counted: {np.round(ps, 6)}")
    assert min(ps) < S.ALPHA / 10


@pytest.fixture(scope="module")
def small_grains_close_pair():
    """Held-out random scene 54 (5-phase sulfide grains, 76 counts per pixel): P0 and P3 differ
    by 3 at% in Ag and Fe and make 6 % of the map each, in grains a few pixels across."""
    return random_scene(54, 128)


def test_a_close_pair_in_small_grains_is_split_on_all_of_its_pixels(small_grains_close_pair):
    """P0 and P3 given one cluster (as workflow 2's front end gives them): its interior holds
    too few of their pixels to tell them apart, all of them do. Without the whole-cluster test
    the cluster stays whole; with it (the default) each phase gets a cluster of its own, found
    by the benchmark's rule (a cluster holding over half of the phase) and over 70 % pure."""
    signal, truth = small_grains_close_pair
    keep = truth.labels >= 0
    start = np.where(keep, np.where(truth.labels == 3, 0, truth.labels), -1)
    lines = quant_lines(signal)
    relabel = _relabel(signal, keep)
    inside, log0 = S.split_mixed_clusters(signal, start, relabel, lines, whole=False)
    assert not any(e["split"] for e in log0 if e["cluster"] == 0)
    labels, log = S.split_mixed_clusters(signal, start, relabel, lines)
    split = [e for e in log if e["cluster"] == 0 and e.get("whole") and e["split"]]
    assert split and split[0]["p"] < 1e-6
    for phase in (0, 3):
        m = truth.labels == phase
        k = np.bincount(labels[m][labels[m] >= 0]).argmax()
        share = (labels[m] == k).mean()
        purity = (truth.labels[labels == k] == phase).mean()
        assert share > 0.5 and purity > 0.7, (phase, share, purity)   # found, mostly pure
