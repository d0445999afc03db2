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
    """The shape of benchmark scene 32's tree: the root (node 100) first sheds a small
    fragment (101) and only then divides the rest (102) into two groups (103, 104). Returns
    the tree and each point's group (0 fragment, 1 and 2) in that order."""
    idx = np.repeat(np.arange(3), sizes)
    direct = np.array([101, 103, 104])[idx]
    tree = C.CondensedTree(children={100: [101, 102], 102: [103, 104]}, direct=direct,
                           parent={101: 100, 102: 100, 103: 102, 104: 102})
    return tree, idx


def _counts(groups, probs, dose=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.multinomial(dose, probs[g]) for g in groups]).astype(float)


def test_a_cluster_holding_two_groups_below_a_fragment_is_split_into_them():
    tree, idx = _hand_tree()
    # the fragment is of group 1's phase: the root's split (fragment against the rest) is
    # weak, node 102's (group 1 against group 2) strong
    counts = _counts(idx, {0: PA, 1: PA, 2: PB})
    labels, splits = M.split_along_tree(counts, np.zeros(len(idx), int), tree)
    assert len(np.unique(labels[idx == 1])) == 1 and len(np.unique(labels[idx == 2])) == 1
    assert labels[idx == 1][0] != labels[idx == 2][0]
    assert {s[0] for s in splits} == {100, 102}
    # the root was split only because node 102 below it was: its own G is below the margin
    # times the null of that subset of its pixels
    root, inner = (next(s for s in splits if s[0] == v) for v in (100, 102))
    assert root[3] < M.TREE_SPLIT_FACTOR * inner[4]
    # the merge then joins the fragment to its own phase: two clusters, one per phase
    merged, _ = M.merge_insignificant(counts, labels)
    assert merged.max() == 1
    assert C.ari(merged, np.where(idx == 2, 1, 0)) == pytest.approx(1.0)


def test_one_phase_along_the_same_tree_stays_one_cluster():
    tree, idx = _hand_tree()
    counts = _counts(idx, {0: PA, 1: PA, 2: PA})
    labels, splits = M.split_along_tree(counts, np.zeros(len(idx), int), tree)
    assert splits == [] and np.all(labels == 0)


def test_noise_and_other_clusters_are_left_alone():
    tree, idx = _hand_tree()
    counts = _counts(idx, {0: PA, 1: PA, 2: PA})
    start = np.where(idx == 0, -1, 0)                 # the fragment was noise
    labels, _ = M.split_along_tree(counts, start, tree)
    np.testing.assert_array_equal(labels, start)


def test_condensed_subtrees_are_hdbscans_clusters_as_point_sets():
    from hdbscan._hdbscan_tree import condense_tree
    X, _ = make_blobs(n_samples=900, centers=[[0, 0], [6, 0], [0, 6]], cluster_std=1.0,
                      random_state=0)
    h = C.hdbscan_cluster(X, 30, 5)
    t = C.condensed_subtrees(h.single_linkage_tree, 30)
    root = t.subtree(next(iter(t.parent.values())))[-1]
    while root in t.parent:
        root = t.parent[root]
    assert t.members(root).all() and t.subtree(root)[-1] == root
    assert len(set(t.subtree(root))) == len(t.subtree(root))
    for parent, (a, b) in t.children.items():
        assert not np.any(t.members(a) & t.members(b))
        assert np.all(t.members(parent)[t.members(a) | t.members(b)])
    # the same point sets as hdbscan's own condensed tree
    ct = condense_tree(h.single_linkage_tree, 30)
    ref = C.CondensedTree(children={}, direct=np.full(len(X), -1, np.int64), parent={})
    for p, c, size in zip(ct["parent"], ct["child"], ct["child_size"]):
        if size > 1:
            ref.children.setdefault(int(p), []).append(int(c))
            ref.parent[int(c)] = int(p)
        else:
            ref.direct[c] = p
    sets = lambda tree, top: {tuple(np.flatnonzero(tree.members(v))) for v in tree.subtree(top)}
    assert sets(t, root) == sets(ref, len(X))            # hdbscan numbers its root n
    for k in range(h.n_clusters):                     # every EOM cluster is one node's points
        sel = h.labels == k
        node = t.node_of(sel)
        assert np.all(t.members(node)[sel]) and node != root


@pytest.mark.slow   # UMAP
def test_workflow2_splits_phases_excess_of_mass_kept_together():
    """Benchmark scene 25 (6-phase sulfide, a 3-px boundary layer, 11 counts per pixel): excess
    of mass keeps 2 clusters at every plateau; split along the tree, 4 phases are found and the
    ARI passes the per-pixel ceiling (0.60)."""
    s, truth = random_scene(25, size=128)
    keep = truth.labels >= 0
    # the tree split alone (the region-level split test, helpers.workflows.split, comes after
    # it and is tested in test_split.py)
    eom = W.workflow2(s, cluster_selection="eom", split_clusters=False)
    split = W.workflow2(s, split_clusters=False)
    assert split.params["cluster_selection"] == "split"
    assert eom.n_clusters == 2 and split.n_clusters >= 4
    assert C.ari(split.labels[keep], truth.labels[keep]) > 0.7 > \
        C.ari(eom.labels[keep], truth.labels[keep]) + 0.3
    # the slider re-splits from the stored tree the same way
    moved = W.recluster_workflow2(split, split.params["min_cluster_size"])
    assert C.ari(moved.labels, split.labels) == pytest.approx(1.0)
