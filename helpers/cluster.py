"""Clustering algorithms on arrays: Gaussian mixture (workflow 1), UMAP + HDBSCAN (workflow 2),
relabelling, re-condensing, stability. No signals and no files here: :mod:`helpers.workflows`
feeds these functions a spectrum image's features and maps their labels back onto the image.

The algorithms are scikit-learn's ``GaussianMixture``, umap-learn's ``UMAP`` and the ``hdbscan``
package, called directly (HyperSpy's ``cluster_analysis`` drops HDBSCAN's noise label and needs a
``labels_`` attribute that a mixture model does not have). What is hand-written here is what
those libraries lack:

* deterministic cluster numbering (:func:`relabel_by_size`): cluster 0 is the largest, so a
  rerun with another seed or another machine gives the same numbers, and therefore colours;
* re-clustering at a new ``min_cluster_size`` from HDBSCAN's stored single-linkage tree
  (:func:`recluster`), without recomputing UMAP or the minimum spanning tree;
* a seed-stability check (:func:`seed_stability`);
* the choice of ``min_cluster_size`` from the widest plateau of the cluster count
  (:func:`plateau_min_cluster_size`), with a count-only copy of hdbscan's condense and
  excess-of-mass steps (:mod:`helpers.hdbscan_counts`; hdbscan always labels, 45 ms a value
  on 15k px).

Noise from HDBSCAN is kept as label ``-1``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from . import numba_cache, progress
from .errors import DataError, ParameterError
from .hdbscan_counts import eom_counts, eom_labels, linkage_arrays

#: UMAP optimisation epochs. umap-learn's own default is 200 above 10 000 rows and 500 below;
#: the embedding only feeds HDBSCAN, whose clusters are settled well before that (hea6 64-256
#: px, hea7, hea7_coreshell, test_TEM.bcf: ARI within 0.004 of 200 epochs at 100 and at 50).
#: Chosen on the random-scene benchmark (34 scenes, exact neighbour graph): 50 against 100
#: epochs, workflow 2's median ARI - ceiling -0.063 against -0.086, p10 -0.243 against -0.234,
#: 58 against 60 of 118 phases found, split-half Spearman 0.70 against 0.59: no loss beyond
#: the benchmark's scatter, at half the time (``benchmarks/generalisation_e50.md``). Each epoch
#: is a pass over the k-NN graph, single-threaded under a fixed random_state.
UMAP_EPOCHS = 50

#: How UMAP's neighbour graph is found (:func:`exact_knn`); part of the cache keys of the
#: embedding and of the HDBSCAN tree, so results of another method are never read back.
UMAP_NEIGHBOURS = "exact"


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _check_features(X, name="features"):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (pixels x features), got shape {X.shape}: "
                        "reshape the data to one row per pixel.")
    if X.shape[0] < 2:
        raise DataError(f"{name} has {X.shape[0]} pixel(s): clustering needs at least 2; "
                        "check the vacuum mask or use a larger map.")
    if not np.all(np.isfinite(X)):
        raise DataError(f"{name} contain NaN or infinite values: check the input counts.")
    return X


def check_int(value, name, lo, hi, hint):
    """``value`` as an int when it is one within ``lo``..``hi``, else a ParameterError with ``hint``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer, got {value!r}: {hint}")
    if not lo <= value <= hi:
        raise ParameterError(f"{name}={value} is outside {lo}..{hi} for this data: {hint}")
    return int(value)


# --------------------------------------------------------------------------------------------
# deterministic numbering
# --------------------------------------------------------------------------------------------
def relabel_by_size(labels, features=None):
    """Renumber clusters so that 0 is the largest, 1 the next, ...; noise (-1) stays -1.

    Ties in size are broken by the mean of the first feature column (then the old label), so
    the numbering depends only on the partition, not on the algorithm's internal order.

    Parameters
    ----------
    labels : (n,) int array
    features : (n, d) array, optional

    Returns
    -------
    new_labels : (n,) int array
    order : list of int
        ``order[new] = old``.
    """
    labels = np.asarray(labels)
    ks = [int(k) for k in np.unique(labels) if k >= 0]
    key = []
    for k in ks:
        sel = labels == k
        f0 = float(np.mean(features[sel, 0])) if features is not None else 0.0
        key.append((-int(sel.sum()), f0, k))
    order = [k for *_, k in sorted(key)]
    new = np.full(labels.shape, -1, dtype=int)
    for newk, oldk in enumerate(order):
        new[labels == oldk] = newk
    return new, order


# --------------------------------------------------------------------------------------------
# workflow 1: Gaussian mixture
# --------------------------------------------------------------------------------------------
@dataclass
class GMMResult:
    """Output of :func:`gmm_cluster` (labels numbered by :func:`relabel_by_size`)."""
    labels: np.ndarray          # (n,) int, 0..k-1
    probabilities: np.ndarray   # (n, k) posterior probability of each (renumbered) cluster
    bic: float
    aic: float
    model: object = field(repr=False, default=None)
    order: list = field(default_factory=list)   # order[new] = model's component index


def gmm_cluster(X, n_clusters, random_state=0, n_init=4, covariance_type="full",
                max_iter=500):
    """Gaussian-mixture clustering of feature rows (scikit-learn ``GaussianMixture``).

    Parameters
    ----------
    X : (n_pixels, n_features) array, e.g. PCA scores
    n_clusters : int
        Number of mixture components (the paper sets it by hand: 4 for hea6, 2 for hea7).
    random_state : int
    n_init : int
        Independent k-means++ initialisations; the best likelihood wins. More inits make the
        result independent of the seed (see :func:`seed_stability`).
    covariance_type : {"full", "diag", "tied", "spherical"}

    Returns
    -------
    GMMResult
    """
    from sklearn.mixture import GaussianMixture
    X = _check_features(X)
    n_clusters = check_int(n_clusters, "n_clusters", 1, X.shape[0],
                            "choose between 1 and the number of (binned, unmasked) pixels.")
    model = GaussianMixture(n_components=n_clusters, covariance_type=covariance_type,
                            n_init=n_init, random_state=random_state, max_iter=max_iter,
                            reg_covar=1e-6 * max(float(np.var(X)), 1e-12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # ConvergenceWarning on degenerate toy data
        model.fit(X)
    raw = model.predict(X)
    proba = model.predict_proba(X)
    labels, order = relabel_by_size(raw, X)
    # components that own no pixel still have a column; put them last, in model order
    order_full = order + [k for k in range(n_clusters) if k not in order]
    return GMMResult(labels=labels, probabilities=proba[:, order_full], bic=float(model.bic(X)),
                     aic=float(model.aic(X)), model=model, order=order_full)


def poisson_mixture_refine(counts, labels, max_iter=100, pseudo_count=0.5):
    """Refine a partition with a multinomial (Poisson) mixture of the raw counts.

    Each cluster is described by its spectral shape p_k (summed counts of its pixels, with a
    pseudo-count, normalised); each pixel goes to the cluster with the highest
    log π_k + Σ_j c_j log p_kj, the exact likelihood of counting statistics given the pixel's
    total. Iterated to convergence (classification EM), starting from ``labels``.

    Why: the Gaussian mixture sees features whose noise grows as thickness falls (a 20-count
    pixel is four times noisier than an 80-count one), and at tens of counts per pixel that
    noise is far from Gaussian. The multinomial likelihood is the right noise model for count
    data and does not depend on thickness (it conditions on the pixel's total), so the
    refinement moves the GMM partition towards the per-pixel Poisson limit. scikit-learn has
    no multinomial mixture, hence this short hand-written loop.

    Parameters
    ----------
    counts : (n, channels) raw (binned) counts of the clustered pixels
    labels : (n,) int, initial partition 0..k-1 (e.g. from :func:`gmm_cluster`)
    max_iter : int
    pseudo_count : float
        Added to every channel of every cluster spectrum (avoids log 0).

    Returns
    -------
    labels : (n,) int, renumbered by size
    posteriors : (n, k) float, cluster probabilities under the multinomial model
    n_iter : int
    """
    from scipy.special import logsumexp
    c = np.asarray(counts, dtype=np.float64)
    lab = np.asarray(labels).copy()
    k = int(lab.max() + 1)
    for it in range(1, max_iter + 1):
        spec = np.stack([c[lab == j].sum(axis=0) for j in range(k)]) + pseudo_count
        logp = np.log(spec / spec.sum(axis=1, keepdims=True))
        size = np.bincount(lab, minlength=k).astype(float)
        ll = c @ logp.T + np.log(np.maximum(size, 1e-3) / size.sum())
        new = np.argmax(ll, axis=1)
        # keep every cluster alive: an emptied cluster keeps its best-fitting pixel
        for j in range(k):
            if not np.any(new == j):
                new[np.argmax(ll[:, j] - ll.max(axis=1))] = j
        if np.array_equal(new, lab):
            break
        lab = new
    post = np.exp(ll - logsumexp(ll, axis=1, keepdims=True))
    lab2, order = relabel_by_size(lab)
    order_full = order + [j for j in range(k) if j not in order]
    return lab2, post[:, order_full], it


def gmm_criteria(X, n_range=range(1, 9), random_state=0, n_init=2, covariance_type="full"):
    """BIC and AIC of Gaussian mixtures with each number of components in ``n_range``.

    A guide for choosing ``N_CLUSTERS``: the BIC usually has a minimum or a knee; with
    thousands of pixels it keeps falling slowly, so read it together with the cluster maps.

    Returns
    -------
    dict with keys ``n``, ``bic``, ``aic`` (lists).
    """
    X = _check_features(X)
    out = {"n": [], "bic": [], "aic": []}
    for k in n_range:
        if k > X.shape[0]:
            break
        r = gmm_cluster(X, int(k), random_state=random_state, n_init=n_init,
                        covariance_type=covariance_type)
        out["n"].append(int(k))
        out["bic"].append(r.bic)
        out["aic"].append(r.aic)
    return out


# --------------------------------------------------------------------------------------------
# workflow 2: UMAP + HDBSCAN
# --------------------------------------------------------------------------------------------
def exact_knn(X, n_neighbors, metric="euclidean"):
    """Exact ``n_neighbors`` nearest neighbours of every row (itself first), for UMAP.

    umap-learn would search them with pynndescent: approximate, and its numba functions are
    compiled anew in every process (about 12 s per notebook kernel; they do not go to the disk
    cache). scikit-learn's tree search is exact, so the graph depends on the data alone (not on a
    seed or the thread count), runs on every core, and takes a fraction of a second for the
    low-dimensional PCA scores UMAP gets here. Returns ``(indices, distances)``, the
    ``precomputed_knn`` umap-learn accepts.
    """
    from sklearn.neighbors import NearestNeighbors
    nn = NearestNeighbors(n_neighbors=int(n_neighbors), metric=metric, n_jobs=-1).fit(X)
    dist, ind = nn.kneighbors(X)
    return ind.astype(np.int32), dist.astype(np.float32)


def umap_embed(X, n_components=4, n_neighbors=15, min_dist=0.0, metric="euclidean",
               random_state=0, n_epochs=None):
    """Embed feature rows with UMAP (umap-learn), as in the paper: 4-D, min_dist 0, Euclidean.

    ``min_dist=0`` packs similar pixels tightly, which is what a density-based clusterer wants.
    A fixed ``random_state`` makes the result reproducible (umap-learn then runs on one thread).
    The neighbour graph is exact (:func:`exact_knn`), so only umap-learn's own numba functions
    are compiled, once per machine (:mod:`helpers.numba_cache`). ``n_epochs=None``
    uses :data:`UMAP_EPOCHS` (50; umap-learn would take 200 for large data and 500 for small,
    at 4-10x the time, with the same clusters in our tests).

    Returns
    -------
    (n_pixels, n_components) float array
    """
    X = _check_features(X)
    n = X.shape[0]
    n_components = check_int(n_components, "umap n_components", 1, max(1, n - 2),
                              "use 2-10 dimensions and a map with more pixels.")
    n_neighbors = check_int(n_neighbors, "n_neighbors", 2, max(2, n - 1),
                             "use about 10-50, fewer than the number of pixels.")
    n_epochs = UMAP_EPOCHS if n_epochs is None else check_int(
        n_epochs, "n_epochs", 1, 10000, "use about 50-500 optimisation epochs.")
    import umap
    numba_cache.enable()   # umap-learn's JIT kept on disk: paid once per machine, not per kernel
    knn = exact_knn(X, n_neighbors, metric)
    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                        metric=metric, random_state=random_state, n_jobs=1,
                        n_epochs=n_epochs, precomputed_knn=knn,
                        tqdm_kwds=progress.tqdm_kwds("UMAP epochs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "n_jobs overridden by random_state" and friends
        emb = reducer.fit_transform(X)
    return np.asarray(emb, dtype=np.float64)


@dataclass
class HDBSCANResult:
    """Output of :func:`hdbscan_cluster` / :func:`recluster`."""
    labels: np.ndarray          # (n,) int, -1 = noise, clusters numbered by size
    probabilities: np.ndarray   # (n,) membership strength in [0, 1] (0 for noise)
    single_linkage_tree: np.ndarray = field(repr=False, default=None)  # (n-1, 4) scipy-style
    min_cluster_size: int = 0
    min_samples: int = 0
    allow_single_cluster: bool = False
    condensed_tree: object = field(repr=False, default=None)  # CondensedTree or None

    @property
    def n_clusters(self):
        return int(self.labels.max() + 1) if self.labels.size else 0

    @property
    def noise_fraction(self):
        return float(np.mean(self.labels < 0)) if self.labels.size else 0.0


def _labels_from_tree(tree, min_cluster_size, allow_single_cluster, features=None,
                      selection="eom"):
    # HDBSCAN's condense/stability/selection step: it only needs the single-linkage tree, so
    # UMAP and the MST are not recomputed. Excess of mass by helpers.hdbscan_counts (hdbscan's
    # labels and probabilities, 3 ms against 50 at 256 x 256, with the condensed tree as point
    # sets), "leaf" by hdbscan itself (no tree kept).
    condensed = None
    if selection == "eom":
        labels, proba, ct = eom_labels(linkage_arrays(tree), int(min_cluster_size),
                                       bool(allow_single_cluster))
        condensed = _condensed_tree(ct)
    else:
        from hdbscan.hdbscan_ import _tree_to_labels
        labels, proba, *_ = _tree_to_labels(
            None, tree, min_cluster_size=int(min_cluster_size),
            cluster_selection_method=selection, allow_single_cluster=bool(allow_single_cluster))
    new, _ = relabel_by_size(labels, features)
    return new, np.asarray(proba, float), condensed


def hdbscan_cluster(embedding, min_cluster_size, min_samples, allow_single_cluster=False):
    """HDBSCAN on an embedding, noise kept as -1, clusters numbered by size.

    Parameters
    ----------
    embedding : (n, d) array
    min_cluster_size : int
        Smallest group of (binned) pixels that counts as a cluster: the paper's physical
        parameter, "how many pixels does the smallest feature cover?".
    min_samples : int
        Neighbours used for the core distance (density smoothing). Set explicitly: hdbscan's
        default (= min_cluster_size) is slow and over-smooths for hundreds of pixels.
    allow_single_cluster : bool
        Let HDBSCAN answer "one cluster" (needed when, after masking the support, the sample is
        one uniform phase, as in the hea7 particles).

    Returns
    -------
    HDBSCANResult
    """
    import hdbscan
    X = _check_features(embedding, "embedding")
    n = X.shape[0]
    min_cluster_size = check_int(min_cluster_size, "min_cluster_size", 2, n,
                                  "use a number of (binned) pixels between 2 and the pixel count.")
    min_samples = check_int(min_samples, "min_samples", 1, n - 1,
                             "use a small number such as 5-20.")
    cl = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                         metric="euclidean", allow_single_cluster=allow_single_cluster,
                         core_dist_n_jobs=1)
    cl.fit(X)
    tree = np.asarray(cl._single_linkage_tree, dtype=np.float64)
    # fit() already ran the condense/select step on this tree with these settings
    labels, _ = relabel_by_size(cl.labels_, X)
    proba = np.asarray(cl.probabilities_, float)
    return HDBSCANResult(labels=labels, probabilities=proba, single_linkage_tree=tree,
                         min_cluster_size=min_cluster_size, min_samples=min_samples,
                         allow_single_cluster=allow_single_cluster)


def _stored_tree(result):
    """``result.single_linkage_tree``, or a ParameterError when it holds none."""
    tree = result.single_linkage_tree
    if tree is None:
        raise ParameterError("This result holds no single-linkage tree: run hdbscan_cluster "
                             "first, then recluster its result.")
    return tree


def recluster(result, min_cluster_size, allow_single_cluster=None, embedding=None,
              selection="eom"):
    """HDBSCAN labels at a new ``min_cluster_size`` from a stored single-linkage tree.

    The tree depends on the embedding and ``min_samples`` only, so changing
    ``min_cluster_size`` just re-condenses it (milliseconds): neither UMAP nor the minimum
    spanning tree is recomputed. The result is identical to a fresh HDBSCAN run with the same
    ``min_samples``.

    Parameters
    ----------
    result : HDBSCANResult (or anything with ``single_linkage_tree``)
    min_cluster_size : int
    allow_single_cluster : bool, optional; default: the value used for ``result``
    embedding : (n, d) array, optional; only used to break ties in cluster numbering
    selection : "eom" (HDBSCAN's excess of mass) or "leaf" (the finest clusters of the
        condensed tree); "split" selects as "eom" (workflow 2 then splits the clusters along
        the tree where the counts demand, :func:`helpers.multinomial.split_along_tree`)
    """
    tree = _stored_tree(result)
    n = tree.shape[0] + 1
    min_cluster_size = check_int(min_cluster_size, "min_cluster_size", 2, n,
                                  "use a number of (binned) pixels between 2 and the pixel count.")
    asc = result.allow_single_cluster if allow_single_cluster is None else allow_single_cluster
    if selection not in ("eom", "leaf", "split"):
        raise ParameterError(f"selection must be 'eom', 'leaf' or 'split', got {selection!r}.")
    labels, proba, condensed = _labels_from_tree(tree, min_cluster_size, asc, embedding,
                                                 "leaf" if selection == "leaf" else "eom")
    return HDBSCANResult(labels=labels, probabilities=proba, single_linkage_tree=tree,
                         min_cluster_size=min_cluster_size, min_samples=result.min_samples,
                         allow_single_cluster=asc, condensed_tree=condensed)


@dataclass
class CondensedTree:
    """hdbscan's condensed tree as point sets (:func:`condensed_subtrees`).

    ``children`` maps a cluster node to its two child nodes (absent for a leaf); ``direct``
    (n,) is each point's cluster node when it left the tree; ``members(node)`` the (n,) bool
    mask of every point under ``node`` (memoised); ``node_of(mask)`` the smallest node holding
    every point of ``mask`` (an excess-of-mass cluster's node).
    """
    children: dict
    direct: np.ndarray
    parent: dict
    _memo: dict = field(default_factory=dict, repr=False)

    def members(self, node):
        if node not in self._memo:
            m = self.direct == node
            for ch in self.children.get(node, []):
                m = m | self.members(ch)
            self._memo[node] = m
        return self._memo[node]

    def node_of(self, mask):
        node = int(self.direct[np.flatnonzero(mask)[0]])
        while not np.all(self.members(node)[mask]) and node in self.parent:
            node = self.parent[node]
        return node

    def subtree(self, node):
        """The nodes under ``node`` (itself included), children before their parent."""
        out, stack = [], [(node, False)]
        while stack:
            v, seen = stack.pop()
            if seen:
                out.append(v)
                continue
            stack.append((v, True))
            stack.extend((ch, False) for ch in self.children.get(v, []))
        return out


def _condensed_tree(ct):
    """:class:`CondensedTree` of :func:`helpers.hdbscan_counts.eom_labels`'s arrays."""
    pairs = [(p, [int(a), int(b)]) for p, (a, b) in enumerate(ct["children"].tolist()) if a >= 0]
    return CondensedTree(children=dict(pairs),
                         parent={c: p for p, ch in pairs for c in ch},
                         direct=np.asarray(ct["direct"], np.int64))


def condensed_subtrees(tree, min_cluster_size, condensed=None):
    """The clusters of HDBSCAN's condensed tree at ``min_cluster_size`` as point sets, a
    :class:`CondensedTree`, for :func:`helpers.multinomial.split_along_tree` to test their
    splits. ``condensed``: that tree when already made (:attr:`HDBSCANResult.condensed_tree`),
    else made here (:func:`helpers.hdbscan_counts.eom_labels`; hdbscan's API has no point
    sets). Nodes are numbered children before parents, the root last."""
    if condensed is not None:
        return condensed
    return _condensed_tree(eom_labels(linkage_arrays(tree), int(min_cluster_size), False)[2])


# --------------------------------------------------------------------------------------------
# agreement and stability
# --------------------------------------------------------------------------------------------
def ari(labels_a, labels_b, exclude=None, exclude_noise=False):
    """Adjusted Rand index between two labelings, optionally ignoring some pixels.

    Parameters
    ----------
    labels_a, labels_b : int arrays of the same shape
    exclude : bool array, optional
        True = leave this pixel out (e.g. vacuum).
    exclude_noise : bool
        Also leave out pixels that are -1 in either labeling.
    """
    from sklearn.metrics import adjusted_rand_score
    a = np.asarray(labels_a).ravel()
    b = np.asarray(labels_b).ravel()
    if a.shape != b.shape:
        raise ParameterError(f"Label arrays differ in size ({a.size} vs {b.size}): compare "
                             "labels of the same map.")
    keep = np.ones(a.shape, bool)
    if exclude is not None:
        keep &= ~np.asarray(exclude, bool).ravel()
    if exclude_noise:
        keep &= (a >= 0) & (b >= 0)
    if keep.sum() < 2:
        return float("nan")
    return float(adjusted_rand_score(a[keep], b[keep]))


def seed_stability(run, seeds=(0, 1, 2), exclude_noise=True):
    """Agreement between reruns of a clustering with different random seeds.

    Parameters
    ----------
    run : callable(seed) -> labels
    seeds : sequence of int

    Returns
    -------
    dict with ``labels`` (list per seed), ``pairwise_ari`` {(s1, s2): ari} and ``min_ari``.
    A minimum ARI close to 1 means the clusters do not depend on the seed; well below 1 means
    some clusters are arbitrary splits of a continuum.
    """
    labs = [np.asarray(run(int(s))) for s in progress.bar(seeds, desc="reruns with other seeds")]
    pair = {}
    for i in range(len(seeds)):
        for j in range(i + 1, len(seeds)):
            pair[(int(seeds[i]), int(seeds[j]))] = ari(labs[i], labs[j],
                                                       exclude_noise=exclude_noise)
    return {"labels": labs, "pairwise_ari": pair,
            "min_ari": float(min(pair.values())) if pair else float("nan")}


# --------------------------------------------------------------------------------------------
# choosing min_cluster_size
# --------------------------------------------------------------------------------------------
def default_min_cluster_size(n_pixels):
    """Default HDBSCAN ``min_cluster_size``: 1 % of the clustered (binned) pixels, at least 10."""
    return int(max(10, round(0.01 * n_pixels)))


def plateau_min_cluster_size(result, n_pixels, lo=5, hi_fraction=0.1, n_steps=30):
    """min_cluster_size in the middle of the widest plateau of the cluster count.

    Re-condenses the stored HDBSCAN tree for ``n_steps`` values spaced
    geometrically from ``lo`` to ``hi_fraction`` × ``n_pixels`` and finds the widest range (on
    a log scale) over which the number of clusters does not change. Clusters that exist only
    for a narrow range of min_cluster_size are fragments of noise or arbitrary splits; a count
    that survives a wide range is a property of the data. This is HDBSCAN's own notion of
    persistence applied to its one free parameter, with no constant tuned to our simulator.
    Each value counts clusters and noise without labelling
    (:func:`helpers.hdbscan_counts.eom_counts`): the same numbers as :func:`recluster`, about
    1 ms each instead of 45 ms on 15 000 pixels.

    Parameters
    ----------
    result : HDBSCANResult (or anything with ``single_linkage_tree`` and
        ``allow_single_cluster``)
    n_pixels : int
        Number of clustered (binned) pixels; sets the largest value tried.
    lo, hi_fraction, n_steps : int, float, int
        Range and number of the values tried.

    Returns
    -------
    (min_cluster_size, table) where table is a list of (mcs, n_clusters, noise_fraction).
    """
    tree = _stored_tree(result)
    n = tree.shape[0] + 1
    hi = max(lo + 1, int(hi_fraction * n_pixels))
    cands = sorted(set(int(round(v)) for v in np.geomspace(lo, hi, n_steps)))
    arrays = linkage_arrays(tree)
    table = []
    for m in cands:
        m = check_int(m, "min_cluster_size", 2, n,
                      "use a number of (binned) pixels between 2 and the pixel count.")
        table.append((m, *eom_counts(arrays, m, result.allow_single_cluster)))
    return widest_plateau(table, n_pixels), table


def plateau_runs(table):
    """Runs of equal cluster counts in ``table`` ((mcs, n_clusters, noise) rows, mcs
    increasing): a list of (geometric middle mcs, width on a log scale, n_clusters)."""
    runs, i = [], 0
    while i < len(table):
        j = i
        while j + 1 < len(table) and table[j + 1][1] == table[i][1]:
            j += 1
        runs.append((int(round(np.sqrt(table[i][0] * table[j][0]))),
                     float(np.log(table[j][0]) - np.log(table[i][0])), int(table[i][1])))
        i = j + 1
    return runs


def widest_plateau(table, n_pixels):
    """The geometric middle of the widest run (on a log scale) of equal cluster counts in
    ``table`` ((mcs, n_clusters, noise) rows, mcs increasing); the default
    (:func:`default_min_cluster_size`) when no run has a cluster."""
    runs = [r for r in plateau_runs(table) if r[2] >= 1]
    if not runs:
        return default_min_cluster_size(n_pixels)
    return max(runs, key=lambda r: r[1])[0]   # the first of equally wide runs
