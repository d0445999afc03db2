"""Straight stripes of another composition inside a cluster (helpers.workflows.stripes and the
split test's use of it)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.quant.clusters import quant_lines
from helpers.simulate.scenes import random_scene
from helpers.spatial import regularise_labels
from helpers.workflows import split as S
from helpers.workflows import stripes as T


def _field(angle, seed, delta=0.8, d=4, shape=(96, 96), offsets=(-20, 15)):
    """Whitened residuals: unit noise, plus ``delta`` along one composition direction on two
    3-px stripes across ``angle``."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(shape + (d,)).astype(np.float32)
    r, c = np.indices(shape)
    s = T.bin_index(r, c, angle) - T.bin_index(shape[0] // 2, shape[1] // 2, angle)
    stripe = np.zeros(shape, bool)
    for off in offsets:
        stripe |= np.abs(s - off) <= 1
    g[stripe, 0] += delta
    return g, stripe


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0])
def test_stripes_are_found_across_their_own_direction(angle):
    """Two 3-px stripes, 0.8 noise standard deviations per pixel away from the rest, on the
    search colour of a 96 x 96 map: the direction comes back within 2 degrees and the flagged
    bins hold the stripes and little else."""
    g, stripe = _field(angle, seed=int(angle))
    px = S.checkerboard(stripe.shape)
    got, direction, _ = T.stripe_direction(g, px)
    assert min(abs(got - angle), 180 - abs(got - angle)) <= 2
    code, at = T.stripe_candidate(g, px)
    cand = code == 1
    assert at == got
    assert np.mean(cand[stripe]) > 0.8 and np.mean(stripe[cand]) > 0.8


def test_noise_alone_flags_few_bins():
    """No stripe: the bins flagged along the best of 180 directions (chosen on the same noise,
    so a few can pass) hold a small share of the map; the test on the other colour is what keeps
    them from becoming a cluster (next tests)."""
    shares = []
    for seed in range(5):
        g, _ = _field(0.0, seed, delta=0.0)
        code, _ = T.stripe_candidate(g, S.checkerboard(g.shape[:2]))
        shares.append(0.0 if code is None else np.mean(code == 1))
    assert max(shares) < 0.1


@pytest.fixture(scope="module")
def lamella():
    """Random lamellae scene 119 (66 counts per pixel): a matrix, 3-px lamellae of a second
    phase, and one 3-px lamella of a third (2.6 % of the map) that workflow 2 merges into the
    matrix cluster, where the split test's windows do not see it (spatial ratio 1.07)."""
    signal, truth = random_scene(119, 128, kind="lamellae")
    return signal, truth, truth.labels >= 0


def _split(signal, labels, keep, rounds=3, relabel_first=True, **kw):
    """The split test from ``labels`` (relabelled by the prior first, as workflow 2 hands them
    over, unless ``relabel_first`` is False), the prior at a fixed coupling relabelling."""
    sp = regularise_labels(np.asarray(signal.data), labels, mask=keep, beta=0.7)
    relabel = lambda L: regularise_labels(sp.prepared, L, mask=keep, beta=0.7).labels  # noqa: E731
    start = sp.labels if relabel_first else labels
    return S.split_mixed_clusters(signal, start, relabel, quant_lines(signal), rounds=rounds,
                                  prepared=sp.prepared, **kw)


def test_a_single_lamella_inside_the_matrix_becomes_its_own_cluster(lamella):
    signal, truth, keep = lamella
    t = truth.labels
    merged = np.where(keep, np.where(t == 2, 1, t), -1)
    labels, log = _split(signal, merged, keep)
    hits = [e for e in log if e["cluster"] == -3 and e["split"]]
    assert hits and hits[0]["p"] < 1e-10 and hits[0]["joins"] is None
    assert abs(hits[0]["angle"] - truth.params["scene"]["angle_deg"]) <= 2
    assert "stripes" in S.format_split_log(log)
    lam = t == 2
    c = np.bincount(labels[lam & (labels >= 0)]).argmax()
    assert c not in (0, 1)                                     # a new cluster
    assert np.mean(labels[lam] == c) > 0.7 and np.mean(lam[labels == c]) > 0.8


def test_stripes_of_a_phase_another_cluster_holds_join_it(lamella):
    """The matrix between six close lamellae (rows 21-49: gaps of 1-2 rows) given to the
    lamellae's cluster, as HDBSCAN does on held-out scene 40, and the window statistic switched
    off (here it splits them first): the stripes test finds the gaps and sends them back to the
    matrix cluster instead of making a second matrix cluster."""
    signal, truth, keep = lamella
    t = truth.labels                               # 0 lamellae, 1 matrix, 2 the single lamella
    moved = np.zeros(t.shape, bool)
    moved[21:50] = t[21:50] == 1
    labels, log = _split(signal, np.where(moved, 0, t), keep, rounds=1, relabel_first=False,
                         min_ratio=np.inf)
    hits = [e for e in log if e["cluster"] == -3 and e["split"]]
    assert len(hits) == 1 and hits[0]["compared"] == 0 and hits[0]["joins"] == 1
    assert "to 1" in S.format_split_log(log)
    assert labels.max() == 2                                   # no new cluster
    assert np.mean(labels[moved] == 1) > 0.5


def test_stripes_handed_back_that_return_are_left_the_next_time(lamella):
    """As above, but the relabelling puts the freed stripes back where they were (as the prior
    does on lamellae scenes 110 and 120): the second time they are found they are left, so the
    tests that wait for a round without change (boundaries, whole clusters) run."""
    signal, truth, keep = lamella
    t = truth.labels
    moved = np.zeros(t.shape, bool)
    moved[21:50] = t[21:50] == 1
    start = np.where(moved, 0, t)
    back = lambda L: np.where((L < 0) & keep, start, L)          # noqa: E731
    labels, log = S.split_mixed_clusters(signal, start, back, quant_lines(signal), rounds=3,
                                         min_ratio=np.inf)
    joins = [e for e in log if e["cluster"] == -3 and e["split"]]
    assert [e.get("again", False) for e in joins] == [False, True]
    assert joins[1]["round"] == 1 and "to 1 again: left" in S.format_split_log(log)
    assert any(e.get("whole") for e in log if e["round"] == 1)
    assert max(e["round"] for e in log) == 1 and np.array_equal(labels, start)


def test_true_clusters_of_lamellae_are_not_split(lamella):
    """The true labels (each phase its own cluster): the stripes test may look, but nothing
    passes the test on the other colour."""
    signal, truth, keep = lamella
    _, log = _split(signal, np.where(keep, truth.labels, -1), keep, rounds=1)
    assert not any(e["split"] for e in log if e["cluster"] == -3)


def test_stripes_of_a_new_phase_go_before_the_windows():
    """Random lamellae scene 117 (45 counts per pixel): 3-px lamellae of a 3.6 % phase inside
    the matrix cluster. The windows (25 px) would cut that cluster where the lamellae lie
    densely; the stripes test, tried first, finds the lamellae themselves, and the windows are
    not tried on that cluster in that round."""
    signal, truth = random_scene(117, 128, kind="lamellae")
    keep, t = truth.labels >= 0, truth.labels
    labels, log = _split(signal, np.where(keep, np.where(t == 2, 1, t), -1), keep)
    first = [e for e in log if e["round"] == 0]
    hit = [e for e in first if e["cluster"] == -3 and e["compared"] == 1]
    assert hit and hit[0]["split"] and hit[0]["joins"] is None and hit[0]["p"] < 1e-10
    assert not any(e["cluster"] == 1 for e in first)              # no window test of it
    assert any(e["cluster"] == 0 for e in first)                  # the other cluster's
    lam = t == 2
    c = np.bincount(labels[lam & (labels >= 0)]).argmax()
    assert c not in (0, 1)
    assert np.mean(labels[lam] == c) > 0.7 and np.mean(lam[labels == c]) > 0.7
    for phase in (0, 1):
        m = t == phase
        assert np.mean(labels[m] == np.bincount(labels[m][labels[m] >= 0]).argmax()) > 0.9
