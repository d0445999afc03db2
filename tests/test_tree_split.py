"""Workflow 2's clusters split along HDBSCAN's condensed tree where the counts demand it
(``cluster_selection="split"``, :func:`helpers.multinomial.split_along_tree`)."""
import numpy as np
import pytest
from sklearn.datasets import make_blobs

from helpers import cluster as C
from helpers import multinomial as M
from helpers import workflows as W
from helpers.simulate.scenes import random_scene

PA = np.array([0.5, 0.3, 0.2])
PB = np.array([0.3, 0.3, 0.4])


def _hand_tree(sizes=(40, 200, 200)):
    """The shape of benchmark scene 32's tree: the root first sheds a small fragment (F) and
    only then divides the rest (X) into two groups (A, B). Returns children, members, node_of
    over ``sum(sizes)`` points in the order F, A, B."""
    n = sum(sizes)
    idx = np.repeat(np.arange(3), sizes)
    sets = {"F": idx == 0, "A": idx == 1, "B": idx == 2}
    sets["X"] = sets["A"] | sets["B"]
    sets["R"] = np.ones(n, bool)
    children = {"R": ["F", "X"], "X": ["A", "B"]}
    return children, sets.__getitem__, lambda mask: "R", idx


def _counts(groups, probs, dose=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.multinomial(dose, probs[g]) for g in groups]).astype(float)


def test_a_cluster_holding_two_groups_below_a_fragment_is_split_into_them():
    children, members, node_of, idx = _hand_tree()
    # F is a fragment of A: the root's split (F against A + B) is weak, X's is strong
    counts = _counts(idx, {0: PA, 1: PA, 2: PB})
    labels, splits = M.split_along_tree(counts, np.zeros(len(idx), int), children, members,
                                        node_of)
    assert len(np.unique(labels[idx == 1])) == 1 and len(np.unique(labels[idx == 2])) == 1
    assert labels[idx == 1][0] != labels[idx == 2][0]
    assert {s[0] for s in splits} == {"R", "X"}
    # the root was split only because X below it was: its own G is no more than noise
    root = next(s for s in splits if s[0] == "R")
    assert root[3] < M.TREE_SPLIT_FACTOR * root[4]
    # the merge then joins the fragment to its own phase: two clusters, one per phase
    merged, _ = M.merge_insignificant(counts, labels)
    assert merged.max() == 1
    assert C.ari(merged, np.where(idx == 2, 1, 0)) == pytest.approx(1.0)


def test_one_phase_along_the_same_tree_stays_one_cluster():
    children, members, node_of, idx = _hand_tree()
    counts = _counts(idx, {0: PA, 1: PA, 2: PA})
    labels, splits = M.split_along_tree(counts, np.zeros(len(idx), int), children, members,
                                        node_of)
    assert splits == [] and np.all(labels == 0)


def test_noise_and_other_clusters_are_left_alone():
    children, members, node_of, idx = _hand_tree()
    counts = _counts(idx, {0: PA, 1: PA, 2: PA})
    start = np.where(idx == 0, -1, 0)                 # the fragment was noise
    labels, _ = M.split_along_tree(counts, start, children, members, lambda m: "X")
    np.testing.assert_array_equal(labels, start)


def test_condensed_subtrees_are_hdbscans_clusters_as_point_sets():
    X, _ = make_blobs(n_samples=900, centers=[[0, 0], [6, 0], [0, 6]], cluster_std=1.0,
                      random_state=0)
    h = C.hdbscan_cluster(X, 30, 5)
    children, members, node_of = C.condensed_subtrees(h.single_linkage_tree, 30)
    root = len(X)                                     # hdbscan numbers the root n
    assert members(root).all()
    for parent, (a, b) in children.items():
        assert not np.any(members(a) & members(b))
        assert np.all(members(parent)[members(a) | members(b)])
    for k in range(h.n_clusters):                     # every EOM cluster is one node's points
        sel = h.labels == k
        node = node_of(sel)
        assert np.all(members(node)[sel]) and node != root


@pytest.mark.slow   # UMAP
def test_workflow2_splits_phases_excess_of_mass_kept_together():
    """Benchmark scene 25 (6-phase sulfide, a 3-px boundary layer, 11 counts per pixel): excess
    of mass keeps 2 clusters at every plateau; split along the tree, 4 phases are found and the
    ARI passes the per-pixel ceiling (0.60)."""
    s, truth = random_scene(25, size=128)
    keep = truth.labels >= 0
    eom = W.workflow2(s, cluster_selection="eom")
    split = W.workflow2(s)
    assert split.params["cluster_selection"] == "split"
    assert eom.n_clusters == 2 and split.n_clusters >= 4
    assert C.ari(split.labels[keep], truth.labels[keep]) > 0.7 > \
        C.ari(eom.labels[keep], truth.labels[keep]) + 0.3
    # the slider re-splits from the stored tree the same way
    moved = W.recluster_workflow2(split, split.params["min_cluster_size"])
    assert C.ari(moved.labels, split.labels) == pytest.approx(1.0)
