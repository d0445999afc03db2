"""The per-pixel Poisson ceiling: the best ARI any per-pixel classifier can reach.

A classifier that knows the simulator's true phase spectra (``truth.unit_spectra``), each
binned pixel's true path length and the background spectrum assigns every binned pixel to the
phase under which its observed counts are most likely (Poisson log-likelihood), i.e. it assumes
the pixel is pure phase k of the true thickness. Its labels, upsampled to the original grid like
the workflows' labels, are compared with the true phase map (vacuum excluded). No unsupervised
per-pixel method can beat it on average, so it tells how far Poisson noise and binning (blurred
boundaries) cap the ARI of the workflows.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score


def _bin(a, f):
    r, c = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    a = a[:r, :c]
    return a.reshape(r // f, f, c // f, f, *a.shape[2:]).sum(axis=(1, 3))


def poisson_ceiling_labels(signal, truth, bin_factor=2):
    """Most likely phase of each binned pixel under Poisson statistics (original grid).

    Returns
    -------
    (rows, cols) int labels; -1 where the binned pixel holds no material or was cropped.
    """
    counts = _bin(np.asarray(signal.data, dtype=np.float64), bin_factor)       # (rb, cb, ch)
    path = _bin(np.asarray(truth.path_lengths, float).sum(axis=-1), bin_factor)  # (rb, cb)
    bg = np.asarray(truth.background_spectrum, float) * bin_factor ** 2
    unit = np.asarray(truth.unit_spectra, float)                               # (k, ch)
    rb, cb, ch = counts.shape
    c = counts.reshape(-1, ch)
    L = path.reshape(-1)
    ll = np.empty((c.shape[0], unit.shape[0]))
    for k in range(unit.shape[0]):
        mu = L[:, None] * unit[k][None, :] + bg[None, :]
        mu = np.maximum(mu, 1e-300)
        ll[:, k] = (c * np.log(mu) - mu).sum(axis=1)
    lab = np.argmax(ll, axis=1)
    lab[L <= 0] = -1
    lab = lab.reshape(rb, cb)
    up = np.repeat(np.repeat(lab, bin_factor, 0), bin_factor, 1)
    out = np.full(truth.labels.shape, -1, int)
    out[:up.shape[0], :up.shape[1]] = up
    return out


def poisson_ceiling_ari(signal, truth, bin_factor=2):
    """ARI of :func:`poisson_ceiling_labels` against the true phase map, vacuum excluded."""
    lab = poisson_ceiling_labels(signal, truth, bin_factor)
    keep = (truth.labels >= 0) & (lab >= 0)
    return float(adjusted_rand_score(truth.labels[keep], lab[keep]))


def ari_vs_truth(labels, truth, exclude_noise=False):
    """ARI of workflow labels against the true phase map, vacuum (truth -1) excluded.

    With ``exclude_noise`` pixels the workflow left unassigned (-1) are excluded too;
    otherwise they count as one more cluster.
    """
    labels = np.asarray(labels)
    keep = truth.labels >= 0
    if exclude_noise:
        keep &= labels >= 0
    return float(adjusted_rand_score(truth.labels[keep], labels[keep]))
