"""The two workflows of the paper end to end, on the binned grid, with labels on the original one.

* :func:`workflow1`: features → PCA → Gaussian mixture (→ multinomial refinement);
* :func:`workflow2`: features → (PCA →) UMAP → HDBSCAN, noise kept as -1;
* :func:`recluster_workflow2`: workflow 2 at another ``min_cluster_size`` from the stored tree;
* :func:`workflow_labels`: both workflows' labels, from the results folder when notebooks 03/04
  wrote them there, otherwise computed (content-cached, so free after 03 and 04);
* :func:`save_labels`: the labels into the results contract (:mod:`helpers.results`).

Every function takes a :class:`~helpers.workflows.params.WorkflowParams` (or its fields as
keyword arguments), so notebooks and the runner run both workflows with the same settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import cache as _cache   # (workflow functions take a ``cache`` flag)
from .. import results
from ..cluster import (UMAP_EPOCHS, UMAP_NEIGHBOURS, HDBSCANResult, check_int,
                       condensed_subtrees, default_min_cluster_size, gmm_cluster, hdbscan_cluster,
                       plateau_min_cluster_size, plateau_runs, recluster)
from ..errors import ParameterError
from ..mixture import classify_pixels, mixture_em, polish_partition
from ..multinomial import (assign_by_likelihood, boundary_mixtures, merge_insignificant,
                           split_along_tree)
from ..preprocess import upsample_labels
from ..spatial import regularise_labels
from .features import as_signal, embedding_for, pca_of_features, pooling_grid, spatial_counts
from .params import resolve
from .probabilities import prior_probabilities
from .split import split_mixed


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
    # (with the spatial prior, its posterior marginals, :func:`prior_probabilities`)
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
    counts: np.ndarray = field(repr=False, default=None)   # W2: binned counts of sample pixels
    pooled: np.ndarray = field(repr=False, default=None)   # W2: their pooled counts, or None
    labels_per_pixel: np.ndarray = field(repr=False, default=None)  # before the spatial prior
    probabilities_per_pixel: np.ndarray = field(repr=False, default=None)  # the same, before it
    spatial: object = field(repr=False, default=None)   # helpers.spatial.SpatialResult, or None
    source: object = field(repr=False, default=None)    # W2: the signal the split test read
    labels_unsplit: np.ndarray = field(repr=False, default=None)  # W2: before the split test

    @property
    def noise_fraction(self):
        """Fraction of clustered (sample) binned pixels labelled noise."""
        m = self.mask_binned.ravel()
        return float(np.mean(self.labels_binned.ravel()[m] < 0)) if m.any() else 0.0


def _on_grids(grid, mask_flat, labels, probabilities):
    """Labels (-1 where unclustered) and probabilities (0 there) of the clustered pixels on the
    binned grid and on the original grid. ``grid``: (binned_shape, bin_factor, original_shape)."""
    binned_shape, f, original_shape = grid
    lab = np.full(mask_flat.size, -1, int)
    lab[mask_flat] = labels
    prob = np.zeros((mask_flat.size,) + probabilities.shape[1:])
    prob[mask_flat] = probabilities
    lb = lab.reshape(binned_shape)
    up = upsample_labels(lb, f, original_shape)
    prob_up = upsample_labels(prob.reshape(*binned_shape, *probabilities.shape[1:]), f,
                              original_shape, fill=0.0)
    return lb, up, prob_up


def _mask_param(mask):
    return "auto" if isinstance(mask, str) else (None if mask is None else "array")


def _result(workflow, feats, p, labels, probabilities, n_clusters, params, **extra):
    """A :class:`WorkflowResult` of the clustered (masked) pixels' labels and probabilities."""
    m = feats.mask
    grid = (feats.binned_shape, feats.bin_factor, feats.original_shape)
    lb, up, prob_up = _on_grids(grid, m, labels, probabilities)
    mask_up = upsample_labels(m.astype(int).reshape(feats.binned_shape), feats.bin_factor,
                              feats.original_shape, fill=0)
    return WorkflowResult(workflow=workflow, labels=up, probabilities=prob_up,
                          mask=mask_up.astype(bool), labels_binned=lb,
                          mask_binned=m.reshape(feats.binned_shape), scores=p.scores,
                          n_components=p.n_components, elbow=p.elbow, n_clusters=n_clusters,
                          bin_factor=feats.bin_factor, binned_shape=feats.binned_shape,
                          original_shape=feats.original_shape, energy=feats.energy,
                          params=params, pca=p, **extra)


def workflow1(signal, params=None, *, cache=True, **overrides):
    """Workflow 1 of the paper: bin → features → scale → PCA → Gaussian mixture (→ refine).

    Parameters
    ----------
    signal : EDSTEMSpectrum, (rows, cols, channels) array, or a path / demo name
    params : WorkflowParams, optional
        The settings (default ``WorkflowParams()``); fields used here: the feature fields
        (:func:`helpers.workflows.compute_features`), ``n_components`` (None: as many as
        ``n_clusters``; the scree elbow, :func:`helpers.decompose.profile_likelihood_elbow`, is
        reported in ``elbow``), ``max_components``,
        ``random_state``, ``n_clusters`` (the paper: chosen by hand, 4 for hea6), ``n_init``
        (GMM initialisations), ``covariance_type`` and ``refine`` (each GMM start polished
        into a multinomial mixture of the raw binned counts, the exact noise model of counts,
        the start that explains the counts best kept, pixels classified by their own or
        pooled counts, :func:`_counts_mixture`; False = the paper's plain GMM, best Gaussian
        likelihood of ``n_init`` starts).
    cache : bool
        Read/write intermediate results in the on-disk cache (:mod:`helpers.cache`).
    **overrides
        Any field of :class:`WorkflowParams`, e.g. ``n_clusters=3``.

    Returns
    -------
    WorkflowResult
        ``labels`` (rows, cols) on the original grid, clusters numbered 0.. by size, -1 for
        vacuum/support and cropped edges; ``probabilities`` (rows, cols, n_clusters) posteriors
        (0 where unassigned); ``scores`` PCA scores of every binned pixel.
    """
    q = resolve(params, **overrides)
    feats, p = pca_of_features(signal, n_components=q.n_components,
                               max_components=q.max_components, random_state=q.random_state,
                               cache=cache, **q.feature_kwargs(1))
    if q.n_components is None:
        # as many components as clusters: k clusters need k - 1 dimensions to be told apart,
        # and the scree elbow at a few counts per pixel is either 1 or lost in the noise
        # (12-13); on the random scenes this choice beat the elbow on 5 of 7 probed scenes
        # (+0.21 ARI on one) and lost at most 0.04
        p = p.with_components(min(int(q.n_clusters), p.all_scores.shape[1]))
    m = feats.mask
    key = dict(n_components=p.n_components, n_clusters=q.n_clusters,
               random_state=q.random_state, n_init=q.n_init, covariance_type=q.covariance_type,
               max_components=q.max_components)
    k = check_int(q.n_clusters, "N_CLUSTERS", 1, int(m.sum()),
                  "choose between 1 and the number of (binned) sample pixels.")
    if q.refine and k > 1:
        labels, proba = _counts_mixture(feats, p, q, k, key, cache)
    else:
        g = _cache.cached("gmm", feats.key, key,
                          lambda: gmm_cluster(p.scores[m], k, random_state=q.random_state,
                                              n_init=q.n_init,
                                              covariance_type=q.covariance_type),
                          enabled=cache)
        labels, proba = g.labels, g.probabilities
    info = {**feats.params, **key, "refine": bool(q.refine), "mask": _mask_param(q.mask),
            "spatial_beta": q.spatial_beta, "spatial_anisotropy": q.anisotropy(1)}
    res = _result(1, feats, p, labels, proba, int(labels.max() + 1), info)
    return apply_spatial_prior(signal, feats, res, q.spatial_beta, q.anisotropy(1))


def _counts_mixture(feats, p, q, k, key, cache):
    """Workflow 1's labels and posteriors with ``refine``: each of ``q.n_init`` Gaussian
    mixtures of the PCA scores (one start each, seeds ``random_state + i``) starts a
    multinomial mixture of the raw counts (:func:`helpers.mixture.mixture_em`); the start
    whose mixture explains the counts best wins (the exact model of counts, where the Gaussian
    one's likelihood picked a poorer start on one half of hea6 at 64 x 64: ARI 0.61 against
    0.79 from the other starts). Pixels are then classified by their own counts (maximum a
    posteriori) or, when the features were pooled, by their pooled counts: these hold several
    pixels' evidence at one pixel's total, so their likelihood decides, not the mixture's
    prior sized for one pixel (with it, close phases went wholly to the larger one: ARI 0 on
    three benchmark scenes)."""
    m = feats.mask
    counts = np.asarray(feats.counts[m], float)     # once, not once per start
    best = None
    for i in range(max(1, int(q.n_init))):
        seed = q.random_state + i
        g = _cache.cached("gmm", feats.key, dict(key, n_init=1, random_state=seed),
                          lambda s=seed: gmm_cluster(p.scores[m], k, random_state=s, n_init=1,
                                                     covariance_type=q.covariance_type),
                          enabled=cache)
        fit = mixture_em(counts, g.labels)
        if best is None or fit[3] > best[3]:
            best = fit
    spectra, weights = best[0], best[1]
    return classify_pixels(counts, spectra, weights,
                           None if feats.pooled is None else feats.pooled[m])


def workflow2(signal, params=None, *, cache=True, **overrides):
    """Workflow 2 of the paper: bin → features → scale → UMAP (4-D) → HDBSCAN.

    Parameters
    ----------
    signal : EDSTEMSpectrum, (rows, cols, channels) array, or a path / demo name
    params : WorkflowParams, optional
        Fields used here: the feature fields (``smoothing`` None: 1, the features pooled
        over like neighbours, :class:`WorkflowParams`; pixels are then classified by their
        pooled counts and splits judged against pooled noise), ``min_cluster_size``
        (smallest cluster in binned pixels; None/"auto": of the widest plateau of the
        cluster count over min_cluster_size and the coarser ones, the one whose clusters the
        counting statistics keep most of, :func:`_significant_plateau`, found by
        re-condensing the tree), ``min_samples`` (HDBSCAN's density smoothing; None = 5, or
        min_cluster_size if smaller: fewer thin-edge pixels called noise), ``umap_input``
        ("pca": the PCA scores, faster and less noisy; "spectra": the paper's way),
        ``n_components`` (for "pca"; None = the larger of the automatic elbow and
        2 × ``umap_dims``: UMAP needs more input than output dimensions), ``umap_dims`` and
        ``n_neighbors`` (paper: 4-D; min_dist 0, Euclidean), ``n_epochs`` (None:
        :data:`helpers.cluster.UMAP_EPOCHS`), ``allow_single_cluster`` (default False: HDBSCAN
        must propose two clusters, the counting-statistics merge joins them again when their
        split is no more than noise, so uniform hea7 particles end as one cluster; True hid
        real phases on the random-scene benchmark, 45 against 53 of 118 found),
        ``cluster_selection`` (default "split": excess of mass, then each cluster split along
        its subtree where two branches differ by more than one-phase noise,
        :func:`helpers.multinomial.split_along_tree`; "eom" or "leaf": HDBSCAN's own; see
        :class:`WorkflowParams` for the benchmark numbers), ``refine`` (clusters refitted to
        the counts, :func:`helpers.mixture.polish_partition`), ``random_state``, etc.
    cache : bool
    **overrides : any field of :class:`WorkflowParams`

    Returns
    -------
    WorkflowResult
        ``labels`` (rows, cols), original grid, -1 = noise, vacuum/support or cropped; with the
        prior, clusters holding two phases split (``split_clusters``, :func:`split_mixed`);
        ``probabilities`` HDBSCAN's membership; ``embedding`` UMAP's coordinates; ``hdbscan``
        the tree for :func:`recluster_workflow2`.
    """
    q = resolve(params, **overrides)
    n_epochs = UMAP_EPOCHS if q.n_epochs is None else q.n_epochs
    feats, p, emb = embedding_for(signal, umap_input=q.umap_input, n_components=q.n_components,
                                  umap_dims=q.umap_dims, n_neighbors=q.n_neighbors,
                                  random_state=q.random_state, max_components=q.max_components,
                                  n_epochs=n_epochs, cache=cache, **q.feature_kwargs(2))
    m, n = feats.mask, int(feats.mask.sum())
    auto = q.min_cluster_size is None or str(q.min_cluster_size) == "auto"
    mcs = default_min_cluster_size(n) if auto else q.min_cluster_size
    ms = min(5, int(mcs)) if q.min_samples is None else q.min_samples
    key = dict(umap_input=q.umap_input, n_components=p.n_components, umap_dims=q.umap_dims,
               n_neighbors=q.n_neighbors, random_state=q.random_state,
               max_components=q.max_components, min_samples=ms, n_epochs=n_epochs,
               neighbours=UMAP_NEIGHBOURS)
    mcs = check_int(mcs, "MIN_CLUSTER_SIZE", 2, n,
                    f"use 2..{n} (binned sample pixels); about 1 % of them is a good start.")
    ms = check_int(ms, "MIN_SAMPLES", 1, n - 1, "use a small number such as 5-20.")
    base = _cache.cached("hdbscan_tree", feats.key, key,
                         lambda: hdbscan_cluster(emb[m], mcs, ms, q.allow_single_cluster),
                         enabled=cache)
    # float64 once, kept for the slider: no conversion (20 MB of fresh pages) on every move
    counts = feats.counts[m].astype(np.float64)
    pooled = None if feats.pooled is None else feats.pooled[m].astype(np.float64)
    if auto:
        mcs = _significant_plateau(base, n, emb[m], counts, q, feats.pooling)
    # the stored tree's own labels are EOM's at its min_cluster_size; anything else re-selects
    same = mcs == base.min_cluster_size and q.cluster_selection in ("eom", "split") and \
        bool(q.allow_single_cluster) == base.allow_single_cluster
    h = base if same else recluster(base, mcs, q.allow_single_cluster, embedding=emb[m],
                                    selection=q.cluster_selection)
    info = {**feats.params, **key, **_w2_info(q), "min_cluster_size": mcs}
    labels, proba = _counting_statistics(counts, h, q.merge_splits, q.assign_noise,
                                         q.random_state, q.split_factor, feats.pooling,
                                         pooled, q.cluster_selection, q.refine)
    res = _result(2, feats, p, labels, proba, int(labels.max() + 1), info, embedding=emb,
                  hdbscan=h, counts=counts, pooled=pooled)
    return split_mixed(signal, apply_spatial_prior(signal, feats, res, q.spatial_beta,
                                                   q.anisotropy(2)), q.split_clusters)


def _w2_info(q):
    """Workflow 2's own settings in its result's ``params``."""
    return {"allow_single_cluster": q.allow_single_cluster,
            "cluster_selection": q.cluster_selection, "mask": _mask_param(q.mask),
            "merge_splits": q.merge_splits, "split_factor": q.split_factor,
            "assign_noise": q.assign_noise, "spatial_beta": q.spatial_beta,
            "spatial_anisotropy": q.anisotropy(2), "refine": bool(q.refine)}


#: Plateaus with more HDBSCAN clusters than this are not tested (the merge costs grow as k^2).
MAX_PLATEAU_CLUSTERS = 12


def _significant_plateau(base, n, emb, counts, q, pooling):
    """The min_cluster_size of the plateau (a run of equal cluster counts over
    min_cluster_size, :func:`helpers.cluster.plateau_min_cluster_size`) whose clusters leave
    the most that the counting-statistics merge keeps, among the widest plateau and the
    coarser ones; ties go to the wider plateau. The widest plateau alone can be one where
    HDBSCAN's excess of mass keeps three phases as one parent (benchmark scene 17: 2 clusters
    from 5 to 79 pixels, 3 from 89 up); the counts, not the tree's shape, then decide. Finer
    plateaus are not tried: their small fragments over-split one-phase regions (8-10 clusters
    on benchmark scenes whose phases cannot be told apart, when every plateau was tried). A
    plateau with no more clusters than the best so far keeps can not win and is skipped."""
    mcs0, table = plateau_min_cluster_size(base, n)
    if not q.merge_splits:
        return mcs0
    runs = plateau_runs(table)
    runs = [r for r in runs if r[0] == mcs0] + [r for r in runs if r[0] > mcs0 and r[1] > 0]
    best = None
    for mid, span, k in runs:
        if k < 1 or k > MAX_PLATEAU_CLUSTERS or (best is not None and k <= best[0][0]):
            continue
        h = recluster(base, mid, q.allow_single_cluster, embedding=emb,
                      selection=q.cluster_selection)
        lab = h.labels if h.labels.max() >= 0 else np.zeros_like(h.labels)
        kept, _ = merge_insignificant(counts, lab, factor=q.split_factor,
                                      random_state=q.random_state, pooling=pooling)
        score = (int(kept.max()) + 1, span)
        if best is None or score > best[0]:
            best = (score, mid)
    return mcs0 if best is None else best[1]


def apply_spatial_prior(signal, feats, result, beta, anisotropy=False):
    """``result`` with its labels regularised by the Potts prior on the original pixel grid
    (:func:`helpers.spatial.regularise_labels`: multinomial data term of each pixel's raw
    counts in the features' energy range and channel binning, coupling ``beta``, "auto" =
    estimated; ``anisotropy`` as there); the per-pixel labels and probabilities are kept in
    ``labels_per_pixel`` and ``probabilities_per_pixel``, the prior's probabilities replace
    them (:func:`prior_probabilities`). ``beta`` None or 0: ``result`` unchanged. Lazy maps are
    reduced chunk by chunk first."""
    result.labels_per_pixel, result.probabilities_per_pixel = result.labels, result.probabilities
    if beta is None or (not isinstance(beta, str) and float(beta) == 0):
        return result
    counts, channels, ebin = spatial_counts(as_signal(signal), feats)
    return _with_prior(result, regularise_labels(counts, result.labels, mask=result.mask,
                                                 beta=beta, energy_bin=ebin, channels=channels,
                                                 anisotropy=anisotropy))


def _with_prior(result, sp):
    """``result`` holding the prior's labels and probabilities ``sp`` (its own kept as the
    per-pixel ones)."""
    result.labels_per_pixel, result.labels, result.spatial = result.labels, sp.labels, sp
    result.probabilities_per_pixel = result.probabilities
    result.probabilities = prior_probabilities(sp, result.probabilities)
    result.n_clusters = int(sp.labels.max() + 1)
    return result


def _counting_statistics(counts, h, merge, assign, random_state, split_factor=None,
                         pooling=None, pooled=None, selection="eom", refine=False):
    """HDBSCAN's clusters judged by the counts: with ``selection`` "split", clusters split
    along the tree where the counts demand (:func:`helpers.multinomial.split_along_tree`);
    splits no bigger than noise makes merged
    (:func:`helpers.multinomial.merge_insignificant`), every pixel to the cluster that explains
    it (:func:`helpers.multinomial.assign_by_likelihood`). Returns labels and a per-pixel
    membership (HDBSCAN's, or the posterior of the assigned cluster)."""
    labels, proba = h.labels, h.probabilities
    if not (merge or assign):
        return labels, proba
    if labels.max() < 0:          # no dense group at all: one cluster, for the counts to judge
        labels = np.zeros_like(labels)
    elif merge and selection == "split":
        tree = condensed_subtrees(h.single_linkage_tree, h.min_cluster_size,
                                  h.condensed_tree)
        labels, _ = split_along_tree(counts, labels, tree, random_state=random_state,
                                     pooling=pooling)
    if merge:
        labels, _ = merge_insignificant(counts, labels, factor=split_factor,
                                        random_state=random_state, pooling=pooling)
    if pooling is not None and assign:
        # pooled features gather a grain boundary's mixed pixels into a cluster: its pixels
        # go back to the clusters that explain them
        for k, *_ in boundary_mixtures(counts, labels, pooling[0], pooling[1],
                                       random_state=random_state):
            labels = np.where(labels == k, -1, labels)
    if assign:
        # pooled clusters are already spatially informed: classification EM on top of them
        # drifts to one cluster where phases differ by little (seed 26 of the benchmark)
        labels, post = (assign_by_likelihood(counts, labels) if pooled is None else
                        assign_by_likelihood(pooled, labels, refine=False))
        proba = np.where(labels >= 0, post.max(axis=1) if post.size else 0.0, 0.0)
    if refine:
        labels, polished, done = polish_partition(counts, labels, pooled)
        proba = polished if done else proba
    return labels, proba


def recluster_workflow2(result, min_cluster_size):
    """Workflow-2 result at a new ``min_cluster_size``, from the stored HDBSCAN tree.

    No UMAP, no minimum spanning tree: HDBSCAN's condense/select step, then the counting
    statistics (0.03-0.1 s at 256 x 256, most of it the tree split's tests; the slider
    widget first settles the heap, :func:`helpers.widgets.settle_heap`).
    """
    if result.workflow != 2 or result.hdbscan is None:
        raise ParameterError("recluster_workflow2 needs a result of workflow2.")
    m = result.mask_binned.ravel()
    h = recluster(result.hdbscan, min_cluster_size, embedding=result.embedding[m],
                  selection=result.params.get("cluster_selection", "eom"))
    labels, proba = _counting_statistics(result.counts, h, result.params.get("merge_splits"),
                                         result.params.get("assign_noise"),
                                         result.params.get("random_state", 0),
                                         result.params.get("split_factor"),
                                         pooling_grid(result.mask_binned, result.binned_shape,
                                                      result.params), result.pooled,
                                         result.params.get("cluster_selection", "eom"),
                                         result.params.get("refine", False))
    grid = (result.binned_shape, result.bin_factor, result.original_shape)
    lb, up, prob_up = _on_grids(grid, m, labels, proba)
    params = dict(result.params, min_cluster_size=int(min_cluster_size))
    res = WorkflowResult(workflow=2, labels=up, probabilities=prob_up, mask=result.mask,
                          labels_binned=lb, mask_binned=result.mask_binned, scores=result.scores,
                          embedding=result.embedding, n_components=result.n_components,
                          elbow=result.elbow, n_clusters=int(labels.max() + 1),
                          bin_factor=result.bin_factor, binned_shape=result.binned_shape,
                          original_shape=result.original_shape, energy=result.energy,
                          params=params, hdbscan=h, pca=result.pca, counts=result.counts,
                          pooled=result.pooled)
    if result.spatial is None:
        return res
    # the same prior at the coupling the full run estimated (re-estimating it would redo the
    # slow part on every slider move), then the same split test
    res = _with_prior(res, regularise_labels(result.spatial.prepared, res.labels,
                                             mask=res.mask, beta=result.spatial.beta,
                                             anisotropy=result.spatial.anisotropy))
    if result.source is None:
        return res
    return split_mixed(result.source, res, result.params.get("split_clusters", False))


def save_labels(result, output_dir=None, signal=None):
    """Write ``labels_workflow{1,2}.npy`` (original grid, -1 = unassigned) and the
    probabilities beside them into ``OUTPUT_DIR/results`` (``runs/interactive/results`` when
    ``output_dir`` is None): the results contract the runner and notebooks 05/06 rely on
    (:mod:`helpers.results`). With the input ``signal``, also ``labels_workflow{1,2}.hspy``
    (:func:`helpers.results.save_label_signal`: the map on the input's calibrated axes; notebook
    05 rewrites it with the clusters' names). Returns the path of the labels file."""
    path = results.save_labels(result.workflow, result.labels, result.probabilities, output_dir)
    if signal is not None:
        results.save_label_signal(result.workflow, result.labels, signal, output_dir=output_dir)
    return path


def workflow_labels(signal, output_dir=None, params=None, **overrides):
    """Labels (and probabilities) of both workflows on the original grid.

    Read from ``output_dir/results`` (:func:`helpers.results.load_labels`) when notebooks 03
    and 04 wrote them there (batch runs), otherwise computed with :func:`workflow1` and
    :func:`workflow2` and ``params`` (content-cached, so free after notebooks 03 and 04).

    Returns
    -------
    dict ``{1: (labels, probabilities or None), 2: (labels, probabilities or None)}``
    """
    q = resolve(params, **overrides)
    nav = tuple(signal.data.shape[:-1])
    out = {}
    for wf, run in ((1, workflow1), (2, workflow2)):
        found = results.load_labels(wf, output_dir, nav)
        if found is None:
            r = run(signal, q)
            found = (np.asarray(r.labels, int), r.probabilities)
        out[wf] = found
    return out


def regularised_at(signal, result, beta):
    """A copy of ``result`` with its per-pixel labels regularised at coupling ``beta`` (0: the
    per-pixel labels), then, for workflow 2, tested for clusters holding two phases
    (:func:`split_mixed`) as the full run was: what the spatial-prior slider shows."""
    from dataclasses import replace

    per_pixel = result.labels_per_pixel is not None
    base = replace(result, labels=result.labels_per_pixel if per_pixel else result.labels,
                   probabilities=(result.probabilities_per_pixel if per_pixel
                                  else result.probabilities),
                   spatial=None, params=dict(result.params))
    if not beta:
        base.labels_per_pixel, base.probabilities_per_pixel = base.labels, base.probabilities
        base.n_clusters = int(base.labels.max() + 1)
        return base
    # the counts as the full run's prior read them, else read them now
    counts, channels, ebin = ((result.spatial.prepared, None, 1) if result.spatial is not None
                              else spatial_counts(as_signal(signal), _features_of(signal, result)))
    reg = _with_prior(base, regularise_labels(counts, base.labels, mask=base.mask,
                                              beta=float(beta), energy_bin=ebin,
                                              channels=channels,
                                              anisotropy=result.params.get("spatial_anisotropy",
                                                                           False)))
    if result.workflow != 2:
        return reg
    return split_mixed(signal, reg, result.params.get("split_clusters", False))


def _features_of(signal, result):
    """The (memoised) features a result was computed from."""
    from .features import compute_features
    keys = ("bin_factor", "energy_range", "normalization", "scaling", "energy_bin", "smoothing")
    kw = {k: result.params[k] for k in keys if k in result.params}
    mask = result.params.get("mask", "auto")
    return compute_features(as_signal(signal), mask="auto" if mask == "auto" else None, **kw)
