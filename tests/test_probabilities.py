"""The probabilities a workflow returns (and writes beside its labels) after the spatial prior:
the prior's posterior marginals, which agree with its labels."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.simulate.scenes import random_scene
from helpers.spatial import regularise_labels
from helpers.workflows import regularised_at, workflow1, workflow2


@pytest.fixture(scope="module")
def scene():
    """Three grain phases at 8 counts per pixel: most pixels sure, those near boundaries not."""
    return random_scene(9, 96, kind="grains", n_phases=3, dose=8)


def _own(p, labels):
    return np.take_along_axis(p, np.maximum(labels, 0)[..., None], axis=-1)[..., 0]


def test_marginals_are_distributions_that_agree_with_the_labels(scene):
    signal, truth = scene
    keep = truth.labels >= 0
    for beta in (0.0, 0.8):
        sp = regularise_labels(np.asarray(signal.data), truth.labels, mask=keep, beta=beta)
        q = sp.marginals
        assert q.shape == keep.shape + (len(sp.clusters),)
        assert np.allclose(q[keep].sum(-1), 1, atol=1e-4) and not q[~keep].any()
        lab = sp.labels[keep]
        best = np.asarray(sp.clusters)[np.argmax(q[keep], axis=-1)]
        assert np.mean(best[lab >= 0] == lab[lab >= 0]) > (0.999 if beta == 0 else 0.97)


def test_workflow_probabilities_follow_the_prior(scene):
    """Both workflows: the probabilities agree with the final labels (W1's most probable
    cluster is the label far more often than the per-pixel model's; W2's membership is > 0 on
    every labelled pixel, 0 elsewhere), and the per-pixel model's are kept beside them."""
    signal, truth = scene
    t = truth.labels
    for r in (workflow1(signal, n_clusters=3), workflow2(signal)):
        lab, p, pp = r.labels, r.probabilities, r.probabilities_per_pixel
        m = (lab >= 0) & (t >= 0)
        assert pp is not None and pp.shape == p.shape and not np.array_equal(p, pp)
        if p.ndim == 3:
            agree = np.mean(np.argmax(p, -1)[m] == lab[m])
            before = np.mean(np.argmax(pp, -1)[m] == lab[m])
            print(f"\nworkflow 1: most probable cluster = label on {agree:.3f} of the pixels "
                  f"(per-pixel posteriors: {before:.3f})")
            assert agree > 0.95 and agree > before + 0.05
        own = _own(p, lab) if p.ndim == 3 else p
        assert np.all(own[m] > 0) and not np.any(own[lab < 0])


def test_slider_at_zero_gives_the_per_pixel_probabilities(scene):
    signal, _ = scene
    r = workflow2(signal)
    off = regularised_at(signal, r, 0)
    assert np.array_equal(off.probabilities, r.probabilities_per_pixel)
    again = regularised_at(signal, r, r.spatial.beta)
    assert again.probabilities.shape == r.probabilities.shape
