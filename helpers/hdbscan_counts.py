"""Cluster counts of HDBSCAN's condensed tree at many ``min_cluster_size`` values, fast.

:func:`helpers.cluster.plateau_min_cluster_size` needs, for ~30 values of min_cluster_size,
only the number of clusters and the noise fraction HDBSCAN would give. hdbscan computes them by
condensing the single-linkage tree, computing stabilities and selecting clusters with labels and
probabilities every time (45 ms per value on 15 000 points, and its ``condense_tree`` alone
20 ms). Hand-written because hdbscan has no count-only path: :func:`linkage_arrays` reads the
tree once, :func:`condensed_clusters` finds the condensed clusters and their stabilities with
array operations, :func:`eom_counts` runs hdbscan's excess-of-mass selection on them. The
numbers are hdbscan 0.8.44's to the bit (its summation order and its single-precision sum of
children's stabilities are copied; tests compare against ``helpers.cluster.recluster``).
"""
from __future__ import annotations

import numpy as np


def linkage_arrays(tree):
    """Per-node arrays of a scipy-style single-linkage tree, node ``n + i`` = row ``i``.

    Returns a dict: ``n`` (points), ``left``/``right`` (children of each row), ``size`` and
    ``parent`` (of every node; the root is its own parent), ``lam`` (1/distance of each merge,
    inf at distance 0 as in hdbscan's condense_tree; NaN for points).
    """
    tree = np.asarray(tree, dtype=np.float64)
    n = tree.shape[0] + 1
    left, right = tree[:, 0].astype(np.intp), tree[:, 1].astype(np.intp)
    size = np.ones(2 * n - 1, dtype=np.intp)
    size[n:] = tree[:, 3].astype(np.intp)
    parent = np.empty(2 * n - 1, dtype=np.intp)
    parent[left] = parent[right] = np.arange(n, 2 * n - 1)
    parent[-1] = 2 * n - 2
    lam = np.full(2 * n - 1, np.nan)
    d = tree[:, 2]
    lam[n:] = np.where(d > 0.0, 1.0 / np.where(d > 0.0, d, 1.0), np.inf)
    return {"n": n, "left": left, "right": right, "size": size, "parent": parent, "lam": lam}


def condensed_clusters(a, m):
    """The clusters of hdbscan's condensed tree at min_cluster_size ``m``, and their stability.

    A node is kept while its size is >= ``m``; a row whose two children both reach ``m`` splits
    its cluster in two. A cluster is named by its first node; ``clusters`` is sorted by node id,
    so children come before their parent and the root is last. Each cluster's stability is
    summed one point (row) at a time in the order of hdbscan's condensed tree (its nodes
    top-down, i.e. descending node id, then the split's left and right child), so it is the
    same float as ``hdbscan._hdbscan_tree.compute_stability``.

    Returns
    -------
    dict with ``clusters`` (first node of each), ``stability`` (list of float), ``children``
    (k, 2) cluster indices (-1 for a leaf), ``parent`` (cluster index, -1 for the root),
    ``drop_lam``/``drop_count`` (lambda and number of the points leaving a cluster at a node),
    ``drop_cluster``/``split_cluster`` (the cluster each drop and each split belongs to),
    ``split_lam``, ``node_cluster`` (the cluster of every node of at least ``m`` points) and
    ``root_max_lam`` (largest lambda of a row under the root cluster).
    """
    n, left, right, size, parent, lam = (a[key] for key in
                                         ("n", "left", "right", "size", "parent", "lam"))
    split = np.flatnonzero((size[left] >= m) & (size[right] >= m))
    clusters = np.sort(np.concatenate(([2 * n - 2], left[split], right[split])))
    k = clusters.size
    up = parent.copy()                    # pointer jumping to the first node of each cluster
    up[clusters] = clusters
    while True:
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    index = np.full(2 * n - 1, -1, dtype=np.intp)
    index[clusters] = np.arange(k)
    birth = np.zeros(k)
    birth[:-1] = lam[parent[clusters[:-1]]]
    drop = np.flatnonzero(size[:-1] < m)                     # subtrees that fall out as points
    drop = drop[size[parent[drop]] >= m]
    at = parent[drop]
    order = np.argsort(-at, kind="stable")
    drop, at = drop[order], at[order]
    cl_drop, count = index[up[at]], size[drop]
    cl_split = index[up[split + n]]
    with np.errstate(invalid="ignore"):          # inf - inf = NaN, as in hdbscan, silently
        gain = lam[split + n] - birth[cl_split]
        weights = np.concatenate((np.repeat(lam[at] - birth[cl_drop], count),
                                  gain * size[left[split]], gain * size[right[split]]))
    stability = np.bincount(np.concatenate((np.repeat(cl_drop, count), cl_split, cl_split)),
                            weights=weights, minlength=k)
    children = np.full((k, 2), -1, dtype=np.intp)
    children[cl_split, 0], children[cl_split, 1] = index[left[split]], index[right[split]]
    cparent = np.full(k, -1, dtype=np.intp)
    cparent[children[cl_split].ravel()] = np.repeat(cl_split, 2)
    under_root = np.concatenate((lam[at[cl_drop == k - 1]], lam[split[cl_split == k - 1] + n]))
    return {"clusters": clusters, "stability": stability.tolist(), "children": children,
            "parent": cparent, "drop_lam": lam[at], "drop_count": count,
            "drop_cluster": cl_drop, "split_cluster": cl_split, "split_lam": lam[split + n],
            "node_cluster": index[up],
            "root_max_lam": max(0.0, float(under_root.max())) if under_root.size else 0.0}


def _eom_chosen(c, allow_single_cluster):
    """hdbscan's excess-of-mass pass (get_clusters): for each cluster, children before their
    parent, whether it is chosen over its children."""
    stab, children = list(c["stability"]), c["children"].tolist()
    k = len(stab)
    chosen = [False] * k
    for i in range(k if allow_single_cluster else k - 1):     # children before parents
        sub = 0.0
        if children[i][0] >= 0:
            # hdbscan sums the children's stability in a C float (get_clusters' cdef float)
            sub = float(np.float32(0.0 + stab[children[i][0]]))
            sub = float(np.float32(sub + stab[children[i][1]]))
        if sub > stab[i]:
            stab[i] = sub
        else:
            chosen[i] = True
    return chosen


def _selected_of(chosen, cparent):
    """For each cluster, the selected cluster it belongs to (a chosen cluster with no chosen
    ancestor absorbs its descendants), -1 where none; parents have larger indices."""
    k = len(chosen)
    sel = [-1] * k
    for i in range(k - 2, -1, -1):
        up = sel[cparent[i]]
        sel[i] = up if up >= 0 else (i if chosen[i] else -1)
    return sel


def eom_counts(a, m, allow_single_cluster):
    """(number of clusters, noise fraction) of hdbscan's EOM selection at min_cluster_size ``m``.

    Equal to ``recluster(result, m, allow_single_cluster)``'s ``n_clusters`` and
    ``noise_fraction`` (tested against it), without labels: hdbscan has no count-only path and
    its condense_tree alone costs 20 ms on 15 000 points, 30 times per plateau search.
    """
    c = condensed_clusters(a, m)
    n = a["n"]
    chosen = _eom_chosen(c, allow_single_cluster)
    k = len(chosen)
    if allow_single_cluster and chosen[k - 1]:
        # only the root: hdbscan keeps the points that leave at the root's largest lambda
        kept = int(c["drop_count"][c["drop_lam"] >= c["root_max_lam"]].sum())
        return (1 if kept else 0), (n - kept) / n
    sel = _selected_of(chosen, c["parent"].tolist())
    top = [i for i in range(k - 1) if sel[i] == i]
    covered = int(a["size"][c["clusters"][top]].sum()) if top else 0
    return len(top), (n - covered) / n


def _point_drops(a, m):
    """The node each point leaves the condensed tree at (the parent of its largest subtree of
    fewer than ``m`` points), by pointer jumping."""
    n, size, parent = a["n"], a["size"], a["parent"]
    jump = np.where((size < m) & (size[parent] < m), parent, np.arange(size.size))
    while True:
        nxt = jump[jump]
        if np.array_equal(nxt, jump):
            break
        jump = nxt
    return parent[jump[:n]]


def eom_labels(a, m, allow_single_cluster):
    """hdbscan's excess-of-mass labels and probabilities at min_cluster_size ``m``, with the
    condensed tree's clusters as point sets.

    The same labels (clusters numbered by their first node, -1 noise) and probabilities as
    ``hdbscan.hdbscan_._tree_to_labels`` (tested against it): 3 ms where hdbscan's condense,
    stability and labelling loops took 50 ms on a slider move at 256 x 256.

    Returns
    -------
    labels : (n,) int
    probabilities : (n,) float
    tree : dict with ``children`` (k, 2), ``parent`` (k,) cluster indices (-1: none) and
        ``direct`` (n,) the cluster each point leaves the tree from
    """
    c = condensed_clusters(a, m)
    n, lam = a["n"], a["lam"]
    chosen = _eom_chosen(c, allow_single_cluster)
    k = len(chosen)
    at = _point_drops(a, m)
    direct, plam = c["node_cluster"][at], lam[at]
    deaths = np.zeros(k)             # hdbscan's max_lambdas: largest lambda of a cluster's rows
    np.maximum.at(deaths, c["drop_cluster"], c["drop_lam"])
    np.maximum.at(deaths, c["split_cluster"], c["split_lam"])
    if allow_single_cluster and chosen[k - 1]:
        labels = np.where(plam >= c["root_max_lam"], 0, -1)
        owner = np.full(n, k - 1)
    else:
        sel = np.array(_selected_of(chosen, c["parent"].tolist()))
        top = np.flatnonzero(sel == np.arange(k))
        rank = np.full(k + 1, -1)
        rank[top] = np.arange(top.size)
        owner = sel[direct]
        labels = rank[owner]
    d = deaths[owner]
    with np.errstate(invalid="ignore", divide="ignore"):
        proba = np.where((d == 0.0) | ~np.isfinite(plam), 1.0, np.minimum(plam, d) / d)
    proba = np.where(labels >= 0, proba, 0.0)
    return labels, proba, {"children": c["children"], "parent": c["parent"], "direct": direct}
