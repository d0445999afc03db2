"""PCA (scikit-learn), scree data and an automatic elbow estimate.

The elbow is found by the profile-likelihood method of Zhu & Ghodsi (Comput. Stat. Data Anal.
51, 918, 2006), applied to the logarithm of the explained variances, i.e. to the scree plot as
it is drawn: the values are split at every possible ``q`` into a "signal" group (first ``q``)
and a "noise" group (the rest), each modelled as Gaussian with its own mean and a common
variance; the ``q`` of maximum likelihood is the change point of the scree plot. It has no
tuning constant, so it does not depend on our simulator. scikit-learn has no elbow finder,
hence this hand-written one (a few lines).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError, ParameterError


def profile_likelihood_elbow(values, log=True):
    """Zhu & Ghodsi (2006) profile-likelihood change point of a decreasing sequence.

    Parameters
    ----------
    values : 1-D array of positive, decreasing values (eigenvalues / explained variances)
    log : bool
        Work on log(values), i.e. on the scree plot as drawn on a log axis.

    Returns
    -------
    q : int
        Number of leading values in the "signal" group (≥ 1).
    loglik : (len(values) - 1,) array
        Profile log-likelihood for q = 1 .. len - 1.
    """
    d = np.asarray(values, dtype=float)
    d = d[np.isfinite(d) & (d > 0)] if log else d[np.isfinite(d)]
    if d.size < 3:
        return 1, np.zeros(max(d.size - 1, 0))
    if log:
        d = np.log(d)
    p = d.size
    ll = np.empty(p - 1)
    for q in range(1, p):
        a, b = d[:q], d[q:]
        ss = ((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()
        var = max(ss / p, 1e-12 * max(float(np.var(d)), 1e-300))
        ll[q - 1] = -0.5 * p * np.log(2 * np.pi * var) - ss / (2 * var)
    return int(np.argmax(ll) + 1), ll


@dataclass
class PCAResult:
    """PCA of the feature matrix; ``scores`` holds the first ``n_components`` columns."""
    scores: np.ndarray                 # (pixels, n_components)
    n_components: int                  # used (elbow or requested)
    elbow: int                         # automatic estimate
    explained_variance_ratio: np.ndarray   # of all computed components (scree)
    components: np.ndarray             # (n_computed, features) loadings
    all_scores: np.ndarray = field(repr=False, default=None)   # (pixels, n_computed)
    mean: np.ndarray = field(repr=False, default=None)

    def with_components(self, n):
        """The same decomposition truncated to ``n`` components (no recomputation)."""
        n = _check_n(n, self.all_scores.shape[1])
        return PCAResult(self.all_scores[:, :n], n, self.elbow, self.explained_variance_ratio,
                         self.components, self.all_scores, self.mean)


def _check_n(n, n_max):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or not \
            1 <= n <= n_max:
        raise ParameterError(f"N_COMPONENTS={n!r} is impossible here: use an integer from 1 to "
                             f"{n_max} (limited by pixels, channels and max_components), or None "
                             "for the automatic elbow.")
    return int(n)


def pca(X, n_components=None, max_components=30, random_state=0, fit_mask=None):
    """PCA of the (scaled) feature matrix with an automatic elbow.

    Parameters
    ----------
    X : (pixels, features) array
    n_components : int or None
        Components kept as ``scores``; None = the profile-likelihood elbow.
    max_components : int
        Components computed for the scree plot (limited by pixels and features).
    random_state : int
    fit_mask : (pixels,) bool, optional
        Rows used to fit (sample pixels); all rows are projected.

    Returns
    -------
    PCAResult
    """
    from sklearn.decomposition import PCA
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 3 or X.shape[1] < 2:
        raise DataError(f"PCA needs a (pixels x channels) matrix with at least 3 pixels and 2 "
                        f"channels, got shape {X.shape}: use a larger map or energy range.")
    fit = X if fit_mask is None else X[np.asarray(fit_mask, bool)]
    n_max = int(min(max_components, fit.shape[0] - 1, fit.shape[1]))
    if n_components is not None:
        if isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool) \
                and n_components > n_max and n_components <= min(fit.shape[0] - 1, fit.shape[1]):
            n_max = int(n_components)
        _check_n(n_components, min(fit.shape[0] - 1, fit.shape[1]))
    model = PCA(n_components=n_max, svd_solver="randomized" if n_max < 0.5 * min(fit.shape)
                else "full", random_state=random_state)
    model.fit(fit)
    all_scores = model.transform(X)
    # all-equal features (no counts in range) have no variance: 0, not 0/0, for every component
    evr = np.nan_to_num(model.explained_variance_ratio_, nan=0.0)
    elbow, _ = profile_likelihood_elbow(evr)
    n = elbow if n_components is None else int(n_components)
    # sign convention: each loading's largest-magnitude entry positive (deterministic figures)
    comps = model.components_.copy()
    flip = np.sign(comps[np.arange(comps.shape[0]), np.abs(comps).argmax(axis=1)])
    flip[flip == 0] = 1
    comps *= flip[:, None]
    all_scores = all_scores * flip[None, :]
    return PCAResult(scores=all_scores[:, :n], n_components=n, elbow=elbow,
                     explained_variance_ratio=evr, components=comps, all_scores=all_scores,
                     mean=model.mean_)


def scree_data(result):
    """(component number 1.., explained-variance ratio) of a :class:`PCAResult`."""
    evr = np.asarray(result.explained_variance_ratio)
    return np.arange(1, evr.size + 1), evr


def score_count_correlation(pca_result, totals, mask=None, n=5):
    """|Pearson correlation| of the first ``n`` component scores with total counts per pixel.

    A component whose scores follow the total counts encodes thickness (or dose), not
    composition. With per-pixel normalisation to total counts these correlations should drop.

    Parameters
    ----------
    pca_result : PCAResult
    totals : (pixels,) total counts of the same (binned) pixels
    mask : (pixels,) bool, optional; sample pixels used

    Returns
    -------
    (n,) array
    """
    t = np.asarray(totals, float).ravel()
    keep = np.ones(t.size, bool) if mask is None else np.asarray(mask, bool).ravel()
    s = pca_result.all_scores[keep]
    n = min(n, s.shape[1])
    return np.array([abs(np.corrcoef(s[:, i], t[keep])[0, 1]) for i in range(n)])
