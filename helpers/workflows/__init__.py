"""The analysis pipeline: features → workflow 1 / workflow 2 → labels on the original grid.

What notebooks 02-06, the batch runner and the benchmarks call. The algorithms themselves
(GMM, UMAP, HDBSCAN, re-condensing, relabelling) are pure functions on arrays in
:mod:`helpers.cluster`; this package feeds them a spectrum image and returns
:class:`WorkflowResult` objects with labels on the input's grid.

Modules: :mod:`.params` (:class:`WorkflowParams`, one object for every setting),
:mod:`.features` (binned, scaled features, their PCA and UMAP embedding, cached),
:mod:`.pipeline` (:func:`workflow1`, :func:`workflow2`, re-clustering, labels to/from the
results folder), :mod:`.split` (workflow 2's last step: clusters holding two phases, found
where their compositions differ in space, split).
"""
from .features import Features, compute_features, embedding_for, pca_of_features  # noqa: F401
from .params import WorkflowParams  # noqa: F401
from .pipeline import (WorkflowResult, apply_spatial_prior, recluster_workflow2,  # noqa: F401
                       regularised_at, save_labels, workflow1, workflow2, workflow_labels)
from .split import format_split_log, split_mixed, split_mixed_clusters  # noqa: F401
