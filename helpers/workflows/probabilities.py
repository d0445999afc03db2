"""A workflow's probabilities after the spatial prior: the prior's posterior marginals in the
workflow's own form, so that the probabilities written beside the labels agree with them.

Hand-written: a reshaping of :class:`helpers.spatial.SpatialResult`'s ``marginals``.
"""
from __future__ import annotations

import numpy as np


def prior_probabilities(sp, like):
    """The spatial prior's probabilities in a workflow's form ``like``: workflow 1's
    (rows, cols, k) posteriors (column c = cluster c, every cluster of the prior's input; one
    without a pixel there stays 0), or workflow 2's (rows, cols) membership, the probability
    of each pixel's own label (0 where it has none). From the prior's posterior marginals
    (:class:`helpers.spatial.SpatialResult` ``marginals``), so they agree with its labels; the
    per-pixel model's are the result's ``probabilities_per_pixel``."""
    q, ids, lab = sp.marginals, np.asarray(sp.clusters, int), sp.labels
    if q is None:
        return like
    if like is not None and np.ndim(like) == 3:
        out = np.zeros(lab.shape + (max(like.shape[-1], int(ids.max()) + 1 if ids.size else 0),))
        out[..., ids] = q
        return out
    code = np.full(int(ids.max()) + 2 if ids.size else 1, -1)
    code[ids] = np.arange(ids.size)
    c = np.where(lab >= 0, code[lab], -1)
    own = np.take_along_axis(q, np.maximum(c, 0)[..., None], axis=-1)[..., 0]
    return np.where(c >= 0, own, 0.0)
