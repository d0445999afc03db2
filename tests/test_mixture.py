"""The multinomial mixture of the counts (helpers.mixture: mixture_em, classify, polish_partition)."""
import numpy as np

from helpers import cluster as C
from helpers import mixture as M

PA = np.array([0.40, 0.30, 0.20, 0.10])
PB = np.array([0.30, 0.30, 0.25, 0.15])


def _low_count_pixels(n=4000, dose=20, share=0.6, seed=0):
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) > share).astype(int)
    counts = np.vstack([rng.multinomial(dose, PB if t else PA) for t in truth]).astype(float)
    return counts, truth


def test_soft_mixture_learns_the_spectra_from_a_rough_start():
    """40 counts per pixel, two close spectra, a start with 30 % of the pixels wrong: the soft
    mixture finds both spectra and the shares; the hard one (classification EM) learns each
    spectrum from the pixels it already won and drifts away from them (0.14 off here)."""
    counts, truth = _low_count_pixels(dose=40)
    rng = np.random.default_rng(1)
    start = np.where(rng.random(len(truth)) < 0.3, 1 - truth, truth)
    spectra, weights, post, ll = M.mixture_em(counts, start)
    order = np.argsort(-weights)                      # the larger share is PA
    soft_err = max(np.abs(spectra[order[0]] - PA).max(), np.abs(spectra[order[1]] - PB).max())
    assert soft_err < 0.01
    np.testing.assert_allclose(np.sort(weights)[::-1], [0.6, 0.4], atol=0.05)
    assert post.shape == (len(truth), 2) and np.allclose(post.sum(1), 1)
    hard, _, _ = C.poisson_mixture_refine(counts, start)
    S = np.stack([counts[hard == k].sum(0) for k in (0, 1)])
    S /= S.sum(1, keepdims=True)
    hard_err = max(np.abs(S[0] - PA).max(), np.abs(S[1] - PB).max())
    assert hard_err > 0.1 > 10 * soft_err
    # a better start explains the counts better: the likelihood that picks workflow 1's start
    assert M.mixture_em(counts, truth)[3] >= ll - 1e-6 * abs(ll)


def test_classify_with_and_without_the_prior():
    counts, truth = _low_count_pixels(dose=200)
    spectra = np.stack([PA, PB])
    ml, post = M.classify(counts, spectra)
    assert C.ari(ml, truth) > 0.5 and post.shape == (len(truth), 2)
    # a prior that heavily favours one spectrum moves ambiguous pixels to it
    mapped, _ = M.classify(counts, spectra, np.array([0.999, 0.001]))
    assert np.mean(mapped == mapped[truth == 0][0]) > np.mean(ml == ml[truth == 0][0])


def test_polish_partition_purifies_a_cluster_that_took_its_neighbours():
    """Workflow 2's clusters refitted as a mixture of the counts: a cluster holding all of one
    phase and 40 % of the other (a thin lamella with the matrix beside it, as 2x2 binning and
    pooling cut it) comes out nearly pure; noise stays noise."""
    counts, truth = _low_count_pixels(dose=200)
    rng = np.random.default_rng(2)
    start = np.where((truth == 1) & (rng.random(len(truth)) < 0.4), 0, truth)
    start[:50] = -1
    labels, proba, done = M.polish_partition(counts, start)
    assert done and np.all(labels[:50] == -1) and np.all(proba[:50] == 0)
    assert C.ari(start[50:], truth[50:]) < 0.5 and C.ari(labels[50:], truth[50:]) > 0.8
    assert np.all((proba[50:] >= 0.5) & (proba[50:] <= 1))


def test_polish_partition_classifies_by_pooled_counts():
    """At 40 counts per pixel the pixels' own counts barely tell the two spectra apart; counts
    pooled over four like neighbours (independent draws of the same phase) do, and decide."""
    counts, truth = _low_count_pixels(dose=40)
    rng = np.random.default_rng(3)
    pooled = counts + np.vstack([rng.multinomial(160, PB if t else PA) for t in truth])
    start = np.where((truth == 1) & (rng.random(len(truth)) < 0.4), 0, truth)
    own, _, _ = M.polish_partition(counts, start)
    by_pool, _, done = M.polish_partition(counts, start, pooled=pooled)
    assert done and C.ari(by_pool, truth) > 0.8 > 0.5 > C.ari(own, truth)


def test_polish_partition_keeps_a_partition_the_mixture_would_shrink():
    """A cluster the mixture of the counts empties (a few pixels of the large phase: the
    mixture ignores that the merge test had kept them apart) leaves the partition as it was;
    so does a single cluster."""
    counts, truth = _low_count_pixels(dose=10)
    start = truth.copy()
    start[np.flatnonzero(truth == 0)[:8]] = 2
    labels, proba, done = M.polish_partition(counts, start)
    assert not done and proba is None and np.array_equal(labels, start)
    one = np.zeros(len(truth), int)
    assert not M.polish_partition(counts, one)[2]
