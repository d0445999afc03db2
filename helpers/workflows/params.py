"""The parameters of both workflows, in one object.

Notebooks 03-06 and the batch runner set the same handful of values (bin factor, PCA
components, seed, clusters, HDBSCAN sizes, UMAP input); a :class:`WorkflowParams` holds them
once, so every notebook runs the workflows with the same settings and a new parameter is added
in one place.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError

#: Names of the notebooks' UPPER_CASE constants that map onto :class:`WorkflowParams` fields.
NOTEBOOK_NAMES = ("BIN_FACTOR", "N_COMPONENTS", "RANDOM_STATE", "N_CLUSTERS", "MIN_CLUSTER_SIZE",
                  "MIN_SAMPLES", "UMAP_INPUT", "SPATIAL_BETA", "SMOOTHING", "SPLIT_CLUSTERS")


#: ``smoothing`` when not given, per workflow: both pool. Workflow 2 on the random-scene
#: benchmark (34 scenes, benchmarks/generalisation_per_pixel.md against
#: generalisation_pooled_sf2.md): median ARI - ceiling -0.048 to +0.011, 10th percentile
#: -0.216 to -0.118, phases found 60 to 67 of 118. Workflow 1 pools since its refinement
#: became a multinomial mixture chosen by the counts' likelihood over its GMM starts
#: (helpers.workflows.pipeline._counts_mixture): median -0.032 per pixel against +0.072
#: pooled, 10th percentile -0.144 against -0.058 (generalisation_w1_per_pixel.md against
#: generalisation.md; held-out seeds 34-63: -0.020 to +0.043 and -0.168 to -0.104 against
#: the former per-pixel workflow 1, generalisation_heldout_new.md); hea6 at 64 x 64 comes back in
#: both halves of its counts (split-half ARI 0.85, every cluster's overlap >= 0.8), and three
#: clusters asked of one uniform phase still dissolve across halves (largest overlap 0.41).
#: ``SMOOTHING = 0`` is the paper's pixel-by-pixel workflow.
DEFAULT_SMOOTHING = {1: 1.0, 2: 1.0}

#: ``spatial_anisotropy`` None means this per workflow: the prior's direction factors
#: estimated from the labels it starts from (:func:`helpers.spatial.potts.direction_weights`)
#: for workflow 2, isotropic for workflow 1. On the random-scene benchmark workflow 2 with
#: them: 30 lamellae scenes 75 -> 78 of 112 phases found, median ARI - ceiling 0.199 ->
#: 0.227 (118 gains its third phase, 119 loses its single lamella); held-out seeds 34-63
#: every phase >= 2 % found 0.50 -> 0.53, 94 -> 95 phases, none worse; the suite: only scene
#: 5 changes (+0.069). Workflow 1 with them lost 0.098 ARI on lamellae scene 101, whose
#: labels (true k, ARI 0.51 per pixel) ran across the tilted lamellae and set the prior along
#: the wrong diagonal (benchmarks/generalisation_*_aniso.md).
DEFAULT_ANISOTROPY = {1: False, 2: True}


def check_smoothing(value):
    """``value`` as a pooling width (binned pixels, >= 0); anything else is refused."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (v >= 0 and v <= 10):
        raise ParameterError(f"SMOOTHING={value!r} is not a pooling width: use 0 (each pixel "
                             "on its own), about 1 (pool with the nearest neighbours), up to "
                             "10 binned pixels.")
    return v


@dataclass(frozen=True)
class WorkflowParams:
    """Everything that decides the labels of workflow 1 (PCA + GMM) and workflow 2 (UMAP +
    HDBSCAN). Defaults are the package's; see :func:`helpers.workflows.compute_features`,
    :func:`helpers.workflows.workflow1` and :func:`helpers.workflows.workflow2` for each.

    Features (both workflows): ``bin_factor`` (×2 in the paper), ``energy_range`` (None: the
    elements' useful range), ``normalization`` ("total": thickness-independent),
    ``scaling`` ("standard"), ``mask`` ("auto" vacuum/support mask, None: every pixel),
    ``energy_bin`` ("auto": half the detector FWHM), ``smoothing`` (0: each binned pixel's own
    counts; sigma > 0: the features are built from counts pooled over neighbours with
    edge-preserving weights, :func:`helpers.preprocess.smooth_counts`, pixels are classified
    by their pooled counts and the merge's null is pooled alike; None: the workflow's
    default, :data:`DEFAULT_SMOOTHING`, 1 for both).
    PCA (both): ``n_components`` (None: workflow 1 keeps as many as ``n_clusters``, workflow 2
    the larger of the scree elbow and 2 x ``umap_dims``), ``max_components``, ``random_state``.
    Workflow 1: ``n_clusters``, ``n_init``, ``covariance_type``. Both: ``refine`` (the
    partition refitted as a multinomial mixture of the raw counts: workflow 1's GMM starts,
    workflow 2's clusters after the counting statistics, :func:`helpers.mixture.
    polish_partition`; on the 30 lamellae scenes of the benchmark workflow 2 then finds every
    phase >= 2 % in 11 against 7, the 34-scene suite and held-out seeds 34-63 unchanged).
    Workflow 2: ``min_cluster_size`` (None/"auto": plateau of the cluster count),
    ``min_samples`` (None: 5), ``umap_input`` ("pca" or "spectra"), ``umap_dims``,
    ``n_neighbors``, ``n_epochs`` (None: :data:`helpers.cluster.UMAP_EPOCHS`),
    ``allow_single_cluster``, ``cluster_selection`` ("split": HDBSCAN's excess of mass, each
    cluster then split along the tree where the counts demand; "eom": excess of mass alone;
    "leaf": the finest clusters of the tree at the min_cluster_size that the EOM plateau rule
    still chooses, the merge then joins splits that are only noise), ``merge_splits`` (merge
    clusters whose split is no more than noise makes,
    :func:`helpers.multinomial.merge_insignificant`; ``split_factor``: how many times the best
    split of one-phase surrogates a split must gain, None =
    :data:`helpers.multinomial.SPLIT_FACTOR`), ``assign_noise`` (every pixel
    to the cluster that explains its counts, noise only where none does,
    :func:`helpers.multinomial.assign_by_likelihood`); both False = the paper's plain HDBSCAN.
    Both workflows: ``spatial_beta`` ("auto": a Potts prior on the original pixel grid, its
    coupling estimated from the data, :func:`helpers.spatial.regularise_labels`, the default; a
    number: that coupling; None or 0: the per-pixel labels), ``spatial_anisotropy`` (True:
    neighbours along a direction weigh more when the labels are alike along it, as in
    lamellae; False: isotropic; None: :data:`DEFAULT_ANISOTROPY`, True for workflow 2 only).
    Workflow 2 with the prior: ``split_clusters`` (default True: a cluster whose interior holds
    two compositions that differ in space, confirmed on counts the search did not use, is split
    in two, :func:`helpers.workflows.split.split_mixed_clusters`).
    """

    bin_factor: int = 2
    energy_range: tuple = None
    normalization: str = "total"
    scaling: str = "standard"
    mask: object = "auto"
    energy_bin: object = "auto"
    smoothing: float = None
    n_components: int = None
    max_components: int = 30
    random_state: int = 0
    n_clusters: int = 4
    n_init: int = 4
    covariance_type: str = "full"
    refine: bool = True
    min_cluster_size: object = None
    min_samples: int = None
    umap_input: str = "pca"
    umap_dims: int = 4
    n_neighbors: int = 15
    n_epochs: int = None
    allow_single_cluster: bool = False
    # "split": excess of mass, then each cluster split along its subtree where the counts
    # demand (helpers.multinomial.split_along_tree). On the random-scene benchmark (34 scenes,
    # generalisation_split3.md against generalisation.md of commit e8d58e9) workflow 2's median
    # ARI - ceiling went from +0.011 to +0.055, its 10th percentile from -0.118 to -0.036,
    # phases found from 67 to 76 of 118, no scene worse; on 30 held-out scenes (seeds 34-63,
    # generalisation_heldout_split.md against _heldout_eom.md) p10 -0.110 to -0.032, one
    # scene 0.015 worse. "leaf" (every finest cluster, then the merge) over-split single
    # phases (max noise 0.35, generalisation_pooled_leaf.md) and failed hea6 / hea7_coreshell.
    cluster_selection: str = "split"
    merge_splits: bool = True
    split_factor: float = None
    assign_noise: bool = True
    # "auto": the Potts prior (helpers.spatial) on by default, as it meets the bars set for a
    # default on the random-scene benchmark (34 scenes, benchmarks/generalisation.md): median
    # ARI - ceiling 0.072 -> 0.174 (W1) and 0.055 -> 0.162 (W2), no scene worse by > 0.01, no
    # phase >= 1 % lost, >= 0.91 of the right pixels of 3-px lamellae kept, 0.2 s at 256 x 256.
    # None (or 0) gives the per-pixel labels of the paper's workflows.
    spatial_beta: object = "auto"
    # The prior's neighbours along a direction weighed by how alike the labels are along it
    # (lamellae); None: each workflow's default, DEFAULT_ANISOTROPY.
    spatial_anisotropy: object = None
    # Workflow 2: test every final cluster for two compositions that differ in space and split
    # it where they do (helpers.workflows.split); needs the spatial prior (it relabels).
    split_clusters: bool = True

    def replace(self, **changes) -> "WorkflowParams":
        """A copy with some fields changed; an unknown name is refused with the known ones."""
        known = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - known)
        if bad:
            raise ParameterError(f"Unknown workflow parameter(s) {', '.join(bad)}: use "
                                 f"{', '.join(sorted(known))}.")
        return dataclasses.replace(self, **changes)

    def feature_kwargs(self, workflow=1) -> dict:
        """Arguments of :func:`helpers.workflows.compute_features` for ``workflow`` (1 or 2:
        ``smoothing`` None is that workflow's default, :data:`DEFAULT_SMOOTHING`)."""
        sm = DEFAULT_SMOOTHING[workflow] if self.smoothing is None else self.smoothing
        return dict(bin_factor=self.bin_factor, energy_range=self.energy_range,
                    normalization=self.normalization, scaling=self.scaling, mask=self.mask,
                    energy_bin=self.energy_bin, smoothing=check_smoothing(sm))

    def anisotropy(self, workflow=1):
        """``spatial_anisotropy`` for ``workflow`` (None: :data:`DEFAULT_ANISOTROPY`)."""
        a = DEFAULT_ANISOTROPY[workflow] if self.spatial_anisotropy is None else \
            self.spatial_anisotropy
        if not isinstance(a, (bool, np.bool_)):
            raise ParameterError(f"spatial_anisotropy must be True, False or None, got {a!r}.")
        return bool(a)

    @classmethod
    def from_notebook(cls, namespace) -> "WorkflowParams":
        """The parameters a notebook's UPPER_CASE constants set (``BIN_FACTOR``,
        ``N_COMPONENTS``, ``RANDOM_STATE``, ``N_CLUSTERS``, ``MIN_CLUSTER_SIZE``,
        ``MIN_SAMPLES``, ``UMAP_INPUT``); names it does not define keep their defaults.

        ``namespace`` is a dict such as the notebook's ``globals()``.
        """
        return cls(**{name.lower(): namespace[name] for name in NOTEBOOK_NAMES
                      if name in namespace})


def resolve(params=None, **overrides) -> WorkflowParams:
    """``params`` (default :class:`WorkflowParams`) with ``overrides`` applied."""
    params = WorkflowParams() if params is None else params
    if not isinstance(params, WorkflowParams):
        raise ParameterError(f"params must be a helpers.workflows.WorkflowParams, got "
                             f"{type(params).__name__}: build one with WorkflowParams(...).")
    return params.replace(**overrides) if overrides else params
