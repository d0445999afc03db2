"""Two line fits compared: their line-intensity fractions, by a Wald chi-square.

The confirmation step shared by workflow 2's split test (:mod:`.split`), its unexplained-pixels
step (:mod:`.unexplained`) and its boundary test (:mod:`.interfaces`): fractions, not
intensities, because two parts of a map differ in thickness and dose; some directions (what
absorption alone, or a mixture of two known phases, would do) can be left out.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def fraction_cov(intensities, cov):
    """Line-intensity fractions ``I / sum(I)`` and their covariance (delta method)."""
    s = intensities.sum()
    jac = (np.eye(len(intensities)) * s - intensities[:, None]) / s ** 2
    return intensities / s, jac @ cov @ jac.T


def wald_fractions(fit_a, fit_b, along=None):
    """Wald chi-square of two line fits' intensity fractions, not counting a difference along
    ``along`` (fractions, :func:`helpers.workflows.split.absorption_direction`; or several
    directions, one per row).

    Returns (chi2, dof, p, largest absolute difference of a fraction beyond ``along``)."""
    fa, ca = fraction_cov(fit_a.intensities, fit_a.covariance)
    fb, cb = fraction_cov(fit_b.intensities, fit_b.covariance)
    d = fa - fb
    prec = np.linalg.pinv(ca + cb)
    chi2 = float(d @ prec @ d)
    dof = len(d) - 1
    if along is not None:
        a = np.atleast_2d(np.asarray(along, float)).T          # (n_lines, n_directions)
        q = a.T @ prec @ a
        if np.linalg.eigvalsh(q).max() > 0:
            coef = np.linalg.pinv(q) @ (a.T @ prec @ d)
            chi2 -= float((a.T @ prec @ d) @ coef)
            d = d - a @ coef
            dof -= np.linalg.matrix_rank(q)
    dof = max(dof, 1)
    return chi2, dof, float(stats.chi2.sf(chi2, dof)), float(np.abs(d).max())
