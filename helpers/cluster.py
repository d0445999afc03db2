"""Clustering: Gaussian mixture (workflow 1), UMAP + HDBSCAN (workflow 2), relabelling, stability.

The algorithms are scikit-learn's ``GaussianMixture``, umap-learn's ``UMAP`` and the ``hdbscan``
package, called directly (HyperSpy's ``cluster_analysis`` drops HDBSCAN's noise label and needs a
``labels_`` attribute that a mixture model does not have). What is hand-written here is what
those libraries lack:

* deterministic cluster numbering (:func:`relabel_by_size`): cluster 0 is the largest, so a
  rerun with another seed or another machine gives the same numbers, and therefore colours;
* re-clustering at a new ``min_cluster_size`` from HDBSCAN's stored single-linkage tree
  (:func:`recluster`), without recomputing UMAP or the minimum spanning tree;
* a seed-stability check (:func:`seed_stability`).

Noise from HDBSCAN is kept as label ``-1``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError, ParameterError

#: UMAP optimisation epochs. umap-learn's own default is 200 above 10 000 rows and 500 below;
#: the embedding only feeds HDBSCAN, whose clusters are settled well before that (measured on
#: simulated hea6 64-256 px, several seeds and doses, hea7, hea7_coreshell and test_TEM.bcf:
#: the same clusters and ARI within 0.004 of 200 epochs at 100 and at 50). Each epoch is a pass
#: over the k-NN graph, single-threaded under a fixed random_state: 100 halves UMAP's time.
UMAP_EPOCHS = 100


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


def _check_int(value, name, lo, hi, hint):
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
    n_clusters = _check_int(n_clusters, "n_clusters", 1, X.shape[0],
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
def umap_embed(X, n_components=4, n_neighbors=15, min_dist=0.0, metric="euclidean",
               random_state=0, n_epochs=None):
    """Embed feature rows with UMAP (umap-learn), as in the paper: 4-D, min_dist 0, Euclidean.

    ``min_dist=0`` packs similar pixels tightly, which is what a density-based clusterer wants.
    A fixed ``random_state`` makes the result reproducible (umap-learn then runs on one thread).
    The first call in a process pays a numba compilation of tens of seconds. ``n_epochs=None``
    uses :data:`UMAP_EPOCHS` (100; umap-learn would take 200 for large data and 500 for small,
    at 2-5x the time, with the same clusters in our tests).

    Returns
    -------
    (n_pixels, n_components) float array
    """
    X = _check_features(X)
    n = X.shape[0]
    n_components = _check_int(n_components, "umap n_components", 1, max(1, n - 2),
                              "use 2-10 dimensions and a map with more pixels.")
    n_neighbors = _check_int(n_neighbors, "n_neighbors", 2, max(2, n - 1),
                             "use about 10-50, fewer than the number of pixels.")
    n_epochs = UMAP_EPOCHS if n_epochs is None else _check_int(
        n_epochs, "n_epochs", 1, 10000, "use about 50-500 optimisation epochs.")
    import umap
    from .numba_cache import enable as _numba_disk_cache
    _numba_disk_cache()   # umap-learn's JIT kept on disk: paid once per machine, not per kernel
    # force_approximation_algorithm: below 4096 rows umap-learn otherwise computes all pairwise
    # distances through a Python-level callable (tens of seconds for ~4000 pixels); NN-descent
    # gives the same clusters (ARI unchanged on hea6 128x128) in a fraction of the time.
    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                        metric=metric, random_state=random_state, n_jobs=1,
                        n_epochs=n_epochs, force_approximation_algorithm=True)
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

    @property
    def n_clusters(self):
        return int(self.labels.max() + 1) if self.labels.size else 0

    @property
    def noise_fraction(self):
        return float(np.mean(self.labels < 0)) if self.labels.size else 0.0


def _labels_from_tree(tree, min_cluster_size, allow_single_cluster, features=None):
    # hdbscan's own condense/stability/selection step (hdbscan.hdbscan_._tree_to_labels):
    # it only needs the single-linkage tree, so UMAP and the MST are not recomputed.
    from hdbscan.hdbscan_ import _tree_to_labels
    labels, proba, *_ = _tree_to_labels(None, tree, min_cluster_size=int(min_cluster_size),
                                        cluster_selection_method="eom",
                                        allow_single_cluster=bool(allow_single_cluster))
    new, _ = relabel_by_size(labels, features)
    return new, np.asarray(proba, float)


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
    min_cluster_size = _check_int(min_cluster_size, "min_cluster_size", 2, n,
                                  "use a number of (binned) pixels between 2 and the pixel count.")
    min_samples = _check_int(min_samples, "min_samples", 1, n - 1,
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


def recluster(result, min_cluster_size, allow_single_cluster=None, embedding=None):
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
    """
    tree = result.single_linkage_tree
    if tree is None:
        raise ParameterError("This result holds no single-linkage tree: run hdbscan_cluster "
                             "first, then recluster its result.")
    n = tree.shape[0] + 1
    min_cluster_size = _check_int(min_cluster_size, "min_cluster_size", 2, n,
                                  "use a number of (binned) pixels between 2 and the pixel count.")
    asc = result.allow_single_cluster if allow_single_cluster is None else allow_single_cluster
    labels, proba = _labels_from_tree(tree, min_cluster_size, asc, embedding)
    return HDBSCANResult(labels=labels, probabilities=proba, single_linkage_tree=tree,
                         min_cluster_size=min_cluster_size, min_samples=result.min_samples,
                         allow_single_cluster=asc)


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
    labs = [np.asarray(run(int(s))) for s in seeds]
    pair = {}
    for i in range(len(seeds)):
        for j in range(i + 1, len(seeds)):
            pair[(int(seeds[i]), int(seeds[j]))] = ari(labs[i], labs[j],
                                                       exclude_noise=exclude_noise)
    return {"labels": labs, "pairwise_ari": pair,
            "min_ari": float(min(pair.values())) if pair else float("nan")}


# ============================================================================================
# the two workflows, end to end (what notebooks 03-06 and the batch runner call)
# ============================================================================================
DEFAULTS = dict(bin_factor=2, energy_range=None, normalization="total", scaling="standard",
                mask="auto", max_components=30, random_state=0)


@dataclass
class Features:
    """Binned, cropped, normalised and scaled features of a spectrum image."""
    X: np.ndarray                 # (n_binned_pixels, channels) scaled features
    counts: np.ndarray            # (n_binned_pixels, channels) binned raw counts (cropped range)
    mask: np.ndarray              # (n_binned_pixels,) bool, True = sample (clustered)
    binned_shape: tuple
    original_shape: tuple
    energy: np.ndarray            # keV of the kept channels
    energy_range: tuple
    bin_factor: int
    key: str                      # cache key of (data, preprocessing parameters)
    params: dict = field(default_factory=dict)

    @property
    def mask_image(self):
        """(rows_b, cols_b) sample mask on the binned grid."""
        return self.mask.reshape(self.binned_shape)


@dataclass
class WorkflowResult:
    """Result of :func:`workflow1` or :func:`workflow2`.

    Everything with ``_binned`` lives on the binned grid (row-major, ``binned_shape``); the
    rest is on the input's original navigation grid. Label -1 = unassigned: HDBSCAN noise,
    vacuum/support (see ``mask``) or rows/columns cropped by binning.
    """
    workflow: int
    labels: np.ndarray            # (rows, cols) int, original grid
    probabilities: np.ndarray     # W1: (rows, cols, k) posteriors; W2: (rows, cols) membership
    mask: np.ndarray              # (rows, cols) bool, True = sample pixel that was clustered
    labels_binned: np.ndarray     # (rows_b, cols_b)
    mask_binned: np.ndarray       # (rows_b, cols_b)
    scores: np.ndarray            # (n_binned_pixels, n_components) PCA scores (all pixels)
    embedding: np.ndarray = None  # W2: (n_binned_pixels, umap_dims); NaN rows for masked pixels
    n_components: int = 0
    elbow: int = 0
    n_clusters: int = 0
    bin_factor: int = 2
    binned_shape: tuple = ()
    original_shape: tuple = ()
    energy: np.ndarray = field(repr=False, default=None)
    params: dict = field(default_factory=dict)
    hdbscan: HDBSCANResult = field(repr=False, default=None)   # W2: tree for re-clustering
    pca: object = field(repr=False, default=None)

    @property
    def noise_fraction(self):
        """Fraction of clustered (sample) binned pixels labelled noise."""
        m = self.mask_binned.ravel()
        return float(np.mean(self.labels_binned.ravel()[m] < 0)) if m.any() else 0.0


def _get_signal(signal):
    if isinstance(signal, (str,)) or hasattr(signal, "__fspath__"):
        from .io import load_spectrum_image
        return load_spectrum_image(signal, verbose=False)
    return signal


def compute_features(signal, bin_factor=2, energy_range=None, normalization="total",
                     scaling="standard", mask="auto", energy_bin="auto"):
    """Bin, crop, mask, normalise and scale a spectrum image into clustering features.

    Parameters
    ----------
    signal : EDSTEMSpectrum, (rows, cols, channels) array, or a path / demo name
    bin_factor : int
        Sum ``bin_factor`` × ``bin_factor`` pixels (the paper: 2).
    energy_range : (lo, hi) keV or None for the elements' useful range
    normalization : {"total", "none"}
        ``"total"`` divides each pixel by its total counts (thickness-independent features).
    scaling : {"poisson", "robust", "standard", "none"}
        Per-channel scaling; ``"robust"`` is the paper's RobustScaler.
    mask : "auto", None/False, or (rows, cols) bool array
        Sample pixels to cluster (True). ``"auto"``: :func:`helpers.maps.sample_mask` on the
        binned total counts; None/False: every pixel.
    energy_bin : int or "auto"
        Adjacent channels summed (auto: half the detector FWHM, see
        :func:`helpers.preprocess.auto_energy_bin`).

    Returns
    -------
    Features
    """
    from . import cache
    signal = _get_signal(signal)
    dh = cache.data_hash(signal)
    args = dict(bin_factor=bin_factor, energy_range=energy_range, normalization=normalization,
                scaling=scaling, mask=mask, energy_bin=energy_bin)
    memo_key = cache.make_key("features-args", dh, args)
    hit = _FEATURES_MEMO.get(memo_key)
    if hit is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            feats = _compute_features(signal, dh, **args)
        hit = (feats, list(caught))
        if len(_FEATURES_MEMO) >= 2:
            _FEATURES_MEMO.pop(next(iter(_FEATURES_MEMO)))
        _FEATURES_MEMO[memo_key] = hit
    feats, caught = hit
    for w in caught:   # the same warnings on every call, from their original place
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno,
                               registry=_WARNED)
    return feats


#: Features of the last maps seen in this process (workflow 1 and 2 of one map share them).
_FEATURES_MEMO = {}
_WARNED = {}   # as a module's __warningregistry__: a "default" warning shows once per place


def _compute_features(signal, dh, bin_factor, energy_range, normalization, scaling, mask,
                      energy_bin):
    from . import cache
    from .maps import sample_mask
    from .preprocess import make_features, prepare
    prep = prepare(signal, bin_factor=bin_factor, energy_range=energy_range,
                   energy_bin=energy_bin)
    counts = prep["counts"]
    rb, cb = prep["binned_shape"]
    if isinstance(mask, str):
        if mask != "auto":
            raise ParameterError(f"mask={mask!r} is unknown: use 'auto', None or a boolean array.")
        # binning already averages Poisson noise; extra smoothing would blur particle edges
        m = sample_mask(counts.sum(axis=1).reshape(rb, cb),
                        smooth=0.0 if bin_factor >= 2 else 1.0).ravel()
        mask_param = "auto"
    elif mask is None or mask is False:
        m = np.ones(rb * cb, bool)
        mask_param = None
    else:
        mm = np.asarray(mask, bool)
        if mm.shape == (rb, cb):
            m = mm.ravel()
        elif mm.shape == tuple(prep["original_shape"]):
            f = prep["bin_factor"]
            sub = mm[:rb * f, :cb * f].reshape(rb, f, cb, f)
            m = (sub.mean(axis=(1, 3)) >= 0.5).ravel()
        else:
            raise ParameterError(f"mask shape {mm.shape} matches neither the map "
                                 f"{prep['original_shape']} nor the binned map {(rb, cb)}.")
        mask_param = mm
    if m.sum() < 3:
        raise DataError("Fewer than 3 sample pixels after masking vacuum/support: pass "
                        "mask=None to cluster every pixel, or check the data.")
    if getattr(signal, "_lazy", False):
        from .largedata import lazy_features   # block-wise: no float64 copies of the matrix
        X = lazy_features(counts, normalization, scaling, fit_mask=m)
    else:
        X = make_features(counts, normalization, scaling, fit_mask=m)
    params = dict(bin_factor=int(bin_factor), energy_range=prep["energy_range"],
                  energy_bin=energy_bin,
                  normalization=normalization, scaling=scaling, mask=mask_param)
    key = cache.make_key("features", dh, params)
    return Features(X=X, counts=counts, mask=m, binned_shape=(rb, cb),
                    original_shape=prep["original_shape"], energy=prep["energy"],
                    energy_range=prep["energy_range"], bin_factor=int(bin_factor), key=key,
                    params=params)


def decomposition(signal, n_components=None, max_components=30, random_state=0, cache=True,
                  features=None, **feature_kw):
    """PCA of the features (cached). Returns ``(Features, PCAResult)``.

    ``feature_kw`` are the arguments of :func:`compute_features`.
    """
    from . import cache as _cache
    from .decompose import pca
    feats = features if features is not None else compute_features(signal, **feature_kw)
    res = _cache.cached("pca", feats.key, dict(max_components=max_components,
                                               random_state=random_state),
                        lambda: pca(feats.X, None, max_components=max_components,
                                    random_state=random_state, fit_mask=feats.mask),
                        enabled=cache)
    if n_components is not None:
        res = res.with_components(n_components)
    return feats, res


def _to_original(feats, labels_flat, extra=None, fill=-1):
    from .preprocess import upsample_labels
    lb = np.asarray(labels_flat).reshape(feats.binned_shape)
    up = upsample_labels(lb, feats.bin_factor, feats.original_shape, fill=fill)
    return lb, up


def workflow1(signal, n_clusters=4, n_components=None, *, bin_factor=2, energy_range=None,
              normalization="total", scaling="standard", mask="auto", energy_bin="auto",
              random_state=0, n_init=4, covariance_type="full", max_components=30, refine=True,
              cache=True):
    """Workflow 1 of the paper: bin → features → scale → PCA → Gaussian mixture (→ refine).

    Parameters
    ----------
    signal : EDSTEMSpectrum, (rows, cols, channels) array, or a path / demo name
    n_clusters : int
        Gaussian-mixture components (the paper: chosen by hand, 4 for hea6).
    n_components : int or None
        PCA components; None = automatic elbow (:func:`helpers.decompose.profile_likelihood_elbow`).
    bin_factor, energy_range, normalization, scaling, mask, energy_bin
        See :func:`compute_features`. Defaults: bin ×2, useful energy range, per-pixel
        normalisation to total counts, per-channel standard scaling, automatic vacuum mask.
    random_state : int
    n_init : int
        GMM initialisations (best likelihood kept).
    covariance_type : str
    max_components : int
        PCA components computed for the scree plot.
    refine : bool
        Polish the GMM partition with a multinomial mixture of the raw binned counts
        (:func:`poisson_mixture_refine`, the right noise model for counts; on simulated hea6
        it brings the ARI to the per-pixel Poisson ceiling). False = the paper's plain GMM.
    cache : bool
        Read/write intermediate results in the on-disk cache (:mod:`helpers.cache`).

    Returns
    -------
    WorkflowResult
        ``labels`` (rows, cols) on the original grid, clusters numbered 0.. by size, -1 for
        vacuum/support and cropped edges; ``probabilities`` (rows, cols, n_clusters) posteriors
        (0 where unassigned); ``scores`` PCA scores of every binned pixel.
    """
    from . import cache as _cache
    feats, p = decomposition(signal, n_components=n_components, max_components=max_components,
                             random_state=random_state, cache=cache, bin_factor=bin_factor,
                             energy_range=energy_range, normalization=normalization,
                             scaling=scaling, mask=mask, energy_bin=energy_bin)
    m = feats.mask
    params = dict(n_components=p.n_components, n_clusters=n_clusters, random_state=random_state,
                  n_init=n_init, covariance_type=covariance_type, max_components=max_components)
    n_clusters = _check_int(n_clusters, "N_CLUSTERS", 1, int(m.sum()),
                            "choose between 1 and the number of (binned) sample pixels.")
    g = _cache.cached("gmm", feats.key, params,
                      lambda: gmm_cluster(p.scores[m], n_clusters, random_state=random_state,
                                          n_init=n_init, covariance_type=covariance_type),
                      enabled=cache)
    labels, proba = g.labels, g.probabilities
    if refine and n_clusters > 1:
        labels, proba, _ = poisson_mixture_refine(feats.counts[m], labels)
    params["refine"] = bool(refine)
    lab = np.full(m.size, -1, int)
    lab[m] = labels
    prob = np.zeros((m.size, n_clusters))
    prob[m] = proba
    lb, up = _to_original(feats, lab)
    from .preprocess import upsample_labels
    prob_up = upsample_labels(prob.reshape(*feats.binned_shape, n_clusters), feats.bin_factor,
                              feats.original_shape, fill=0.0)
    _, mask_up = _to_original(feats, m.astype(int), fill=0)
    return WorkflowResult(workflow=1, labels=up, probabilities=prob_up, mask=mask_up.astype(bool),
                          labels_binned=lb, mask_binned=m.reshape(feats.binned_shape),
                          scores=p.scores, n_components=p.n_components, elbow=p.elbow,
                          n_clusters=int(lab.max() + 1), bin_factor=feats.bin_factor,
                          binned_shape=feats.binned_shape, original_shape=feats.original_shape,
                          energy=feats.energy, params={**feats.params, **params,
                                                       "mask": "auto" if isinstance(mask, str)
                                                       else (None if mask is None else "array")},
                          pca=p)


def default_min_cluster_size(n_pixels):
    """Default HDBSCAN ``min_cluster_size``: 1 % of the clustered (binned) pixels, at least 10."""
    return int(max(10, round(0.01 * n_pixels)))


def plateau_min_cluster_size(result, n_pixels, lo=5, hi_fraction=0.1, n_steps=30):
    """min_cluster_size in the middle of the widest plateau of the cluster count.

    Re-condenses the stored HDBSCAN tree (milliseconds each) for ``n_steps`` values spaced
    geometrically from ``lo`` to ``hi_fraction`` × ``n_pixels`` and finds the widest range (on
    a log scale) over which the number of clusters does not change. Clusters that exist only
    for a narrow range of min_cluster_size are fragments of noise or arbitrary splits; a count
    that survives a wide range is a property of the data. This is HDBSCAN's own notion of
    persistence applied to its one free parameter, with no constant tuned to our simulator.

    Returns
    -------
    (min_cluster_size, table) where table is a list of (mcs, n_clusters, noise_fraction).
    """
    hi = max(lo + 1, int(hi_fraction * n_pixels))
    cands = sorted(set(int(round(v)) for v in np.geomspace(lo, hi, n_steps)))
    table = []
    for m in cands:
        r = recluster(result, m)
        table.append((m, r.n_clusters, r.noise_fraction))
    best, best_span = None, -1.0
    i = 0
    while i < len(table):
        j = i
        while j + 1 < len(table) and table[j + 1][1] == table[i][1]:
            j += 1
        span = np.log(table[j][0]) - np.log(table[i][0])
        if table[i][1] >= 1 and span > best_span:
            best_span = span
            best = int(round(np.sqrt(table[i][0] * table[j][0])))
        i = j + 1
    if best is None:
        best = default_min_cluster_size(n_pixels)
    return best, table


def embedding_for(signal, umap_input="pca", n_components=None, umap_dims=4, n_neighbors=15,
                  random_state=0, max_components=30, cache=True, features=None, n_epochs=None,
                  **feature_kw):
    """UMAP embedding of the sample pixels (cached). Returns ``(Features, PCAResult, embedding)``.

    ``embedding`` has one row per binned pixel; masked rows are NaN.
    """
    from . import cache as _cache
    if umap_input not in ("pca", "spectra"):
        raise ParameterError(f"UMAP_INPUT={umap_input!r} is unknown: use 'pca' (PCA scores, "
                             "fast) or 'spectra' (full scaled spectra, the paper's way).")
    feats, p = decomposition(signal, n_components=n_components, max_components=max_components,
                             random_state=random_state, cache=cache, features=features,
                             **feature_kw)
    if n_components is None and umap_input == "pca":
        # UMAP needs more input than output dimensions: an elbow of 2 would leave it a plane to
        # tear into fragments. Components beyond the elbow are mostly noise and cost little.
        p = p.with_components(min(max(p.elbow, 2 * umap_dims), p.all_scores.shape[1]))
    m = feats.mask
    data = p.scores if umap_input == "pca" else feats.X
    params = dict(umap_input=umap_input, n_components=p.n_components if umap_input == "pca"
                  else None, umap_dims=umap_dims, n_neighbors=n_neighbors,
                  random_state=random_state, max_components=max_components,
                  n_epochs=UMAP_EPOCHS if n_epochs is None else n_epochs)

    def run():
        emb = np.full((m.size, umap_dims), np.nan)
        emb[m] = umap_embed(data[m], n_components=umap_dims, n_neighbors=n_neighbors,
                            random_state=random_state, n_epochs=n_epochs)
        return emb

    emb = _cache.cached("umap", feats.key, params, run, enabled=cache)
    return feats, p, emb


def workflow2(signal, min_cluster_size=None, min_samples=None, *, umap_input="pca",
              n_components=None, umap_dims=4, n_neighbors=15, allow_single_cluster=True,
              bin_factor=2, energy_range=None, normalization="total", scaling="standard",
              mask="auto", energy_bin="auto", random_state=0, max_components=30, n_epochs=None,
              cache=True):
    """Workflow 2 of the paper: bin → features → scale → UMAP (4-D) → HDBSCAN.

    Parameters
    ----------
    signal : EDSTEMSpectrum, (rows, cols, channels) array, or a path / demo name
    min_cluster_size : int, "auto" or None
        Smallest cluster, in binned pixels. None/"auto": the middle of the widest plateau of
        the cluster count over min_cluster_size (:func:`plateau_min_cluster_size`), found by
        re-condensing the tree, so it costs milliseconds.
    min_samples : int or None
        HDBSCAN's density smoothing, set explicitly; None = 5 (or min_cluster_size if smaller)
        (small: less smoothing, fewer thin-edge pixels called noise).
    umap_input : {"pca", "spectra"}
        Embed the PCA scores (default: faster, less noise) or the full scaled spectra (the
        paper's way).
    n_components : int or None
        PCA components for ``umap_input="pca"``; None = the larger of the automatic elbow and
        2 × ``umap_dims`` (UMAP needs more input than output dimensions).
    umap_dims, n_neighbors : int
        UMAP output dimensions (paper: 4) and neighbourhood size; min_dist is 0, metric
        Euclidean.
    n_epochs : int or None
        UMAP optimisation epochs; None = :data:`UMAP_EPOCHS`.
    allow_single_cluster : bool
        Allow the answer "one cluster": after masking the support, a uniform sample (hea7
        particles) is one cluster; without it HDBSCAN must split it or call it noise.
    bin_factor, energy_range, normalization, scaling, mask, random_state, max_components, cache
        As in :func:`workflow1`.

    Returns
    -------
    WorkflowResult
        ``labels`` (rows, cols) on the original grid, -1 = noise, vacuum/support or cropped;
        ``probabilities`` (rows, cols) HDBSCAN membership strength; ``embedding`` the UMAP
        coordinates; ``hdbscan`` holds the single-linkage tree for :func:`recluster_workflow2`.
    """
    from . import cache as _cache
    n_epochs = UMAP_EPOCHS if n_epochs is None else n_epochs
    feats, p, emb = embedding_for(signal, umap_input=umap_input, n_components=n_components,
                                  umap_dims=umap_dims, n_neighbors=n_neighbors,
                                  random_state=random_state, max_components=max_components,
                                  n_epochs=n_epochs, cache=cache, bin_factor=bin_factor,
                                  energy_range=energy_range,
                                  normalization=normalization, scaling=scaling, mask=mask,
                                  energy_bin=energy_bin)
    m = feats.mask
    n = int(m.sum())
    auto = min_cluster_size is None or (isinstance(min_cluster_size, str)
                                        and min_cluster_size == "auto")
    mcs = default_min_cluster_size(n) if (min_cluster_size is None or auto) else min_cluster_size
    ms = min(5, int(mcs)) if min_samples is None else min_samples
    params = dict(umap_input=umap_input, n_components=p.n_components, umap_dims=umap_dims,
                  n_neighbors=n_neighbors, random_state=random_state,
                  max_components=max_components, min_samples=ms, n_epochs=n_epochs)
    mcs = _check_int(mcs, "MIN_CLUSTER_SIZE", 2, n,
                     f"use 2..{n} (binned sample pixels); about 1 % of them is a good start.")
    ms = _check_int(ms, "MIN_SAMPLES", 1, n - 1, "use a small number such as 5-20.")
    base = _cache.cached("hdbscan_tree", feats.key, params,
                         lambda: hdbscan_cluster(emb[m], mcs, ms, allow_single_cluster),
                         enabled=cache)
    if auto:
        mcs, _ = plateau_min_cluster_size(base, n)
    same = mcs == base.min_cluster_size and bool(allow_single_cluster) == base.allow_single_cluster
    h = base if same else recluster(base, mcs, allow_single_cluster, embedding=emb[m])
    res = _workflow2_result(feats, p, emb, h)
    res.params.update(params)
    res.params.update(min_cluster_size=mcs, allow_single_cluster=allow_single_cluster,
                      mask="auto" if isinstance(mask, str) else (None if mask is None
                                                                 else "array"))
    return res


def _workflow2_result(feats, p, emb, h):
    m = feats.mask
    lab = np.full(m.size, -1, int)
    lab[m] = h.labels
    prob = np.zeros(m.size)
    prob[m] = h.probabilities
    lb, up = _to_original(feats, lab)
    _, prob_up = _to_original(feats, prob, fill=0.0)
    _, mask_up = _to_original(feats, m.astype(int), fill=0)
    return WorkflowResult(workflow=2, labels=up, probabilities=prob_up, mask=mask_up.astype(bool),
                          labels_binned=lb, mask_binned=m.reshape(feats.binned_shape),
                          scores=p.scores, embedding=emb, n_components=p.n_components,
                          elbow=p.elbow, n_clusters=h.n_clusters, bin_factor=feats.bin_factor,
                          binned_shape=feats.binned_shape, original_shape=feats.original_shape,
                          energy=feats.energy, params=dict(feats.params), hdbscan=h, pca=p)


def recluster_workflow2(result, min_cluster_size):
    """Workflow-2 result at a new ``min_cluster_size``, from the stored HDBSCAN tree.

    No UMAP, no minimum spanning tree: only HDBSCAN's condense/select step (milliseconds).
    """
    if result.workflow != 2 or result.hdbscan is None:
        raise ParameterError("recluster_workflow2 needs a result of workflow2.")
    m = result.mask_binned.ravel()
    h = recluster(result.hdbscan, min_cluster_size, embedding=result.embedding[m])
    lab = np.full(m.size, -1, int)
    lab[m] = h.labels
    prob = np.zeros(m.size)
    prob[m] = h.probabilities
    from .preprocess import upsample_labels
    lb = lab.reshape(result.binned_shape)
    up = upsample_labels(lb, result.bin_factor, result.original_shape)
    prob_up = upsample_labels(prob.reshape(result.binned_shape), result.bin_factor,
                              result.original_shape, fill=0.0)
    params = dict(result.params, min_cluster_size=int(min_cluster_size))
    return WorkflowResult(workflow=2, labels=up, probabilities=prob_up, mask=result.mask,
                          labels_binned=lb, mask_binned=result.mask_binned, scores=result.scores,
                          embedding=result.embedding, n_components=result.n_components,
                          elbow=result.elbow, n_clusters=h.n_clusters,
                          bin_factor=result.bin_factor, binned_shape=result.binned_shape,
                          original_shape=result.original_shape, energy=result.energy,
                          params=params, hdbscan=h, pca=result.pca)


def cluster_mean_spectra(signal_or_counts, labels, energy=None):
    """Mean raw spectrum of each cluster {label: (channels,)} (noise and vacuum excluded).

    ``signal_or_counts``: a spectrum image (original grid, with ``labels`` of the same grid) or
    a (pixels, channels) count matrix with flat labels.
    """
    data = signal_or_counts.data if hasattr(signal_or_counts, "axes_manager") else signal_or_counts
    lab = np.asarray(labels)
    if data.ndim == 3:
        flat = data.reshape(-1, data.shape[-1])
        lab = lab.reshape(-1)
    else:
        flat = data
        lab = lab.ravel()
    out = {}
    for k in sorted(set(lab[lab >= 0].tolist())):
        s = flat[lab == k].mean(axis=0)
        out[int(k)] = np.asarray(s.compute() if hasattr(s, "compute") else s, float)
    return out


def save_labels(result, output_dir=None):
    """Write ``labels_workflow{1,2}.npy`` (original grid, -1 = unassigned) to the results folder.

    Also writes ``probabilities_workflow{N}.npy`` beside it. The folder is
    ``OUTPUT_DIR/results`` (or ``runs/interactive/results`` when ``output_dir`` is None), the
    results contract the batch runner and notebooks 05/06 rely on.

    Returns
    -------
    Path of the labels file.
    """
    from .errors import OutputError
    from .quant import results_dir
    d = results_dir(output_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"labels_workflow{result.workflow}.npy"
        np.save(path, np.asarray(result.labels, dtype=np.int64))
        np.save(d / f"probabilities_workflow{result.workflow}.npy",
                np.asarray(result.probabilities, dtype=np.float32))
    except OSError as e:
        raise OutputError(f"Cannot write labels to {d} ({e.strerror}): choose a writable "
                          "OUTPUT_DIR.") from None
    return path
