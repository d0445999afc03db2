"""Two line fits compared: their line-intensity fractions, by a Wald chi-square.

The confirmation step shared by workflow 2's split test (:mod:`.split`), its unexplained-pixels
step (:mod:`.unexplained`) and its boundary test (:mod:`.interfaces`): fractions, not
intensities, because two parts of a map differ in thickness and dose; some directions (what
absorption alone, or a mixture of two known phases, would do) can be left out.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage, stats

from ..quant.linefit import fit_line_intensities
from ..quant.spectra import cluster_spectra


def fraction_cov(intensities, cov):
    """Line-intensity fractions ``I / sum(I)`` and their covariance (delta method)."""
    s = intensities.sum()
    jac = (np.eye(len(intensities)) * s - intensities[:, None]) / s ** 2
    return intensities / s, jac @ cov @ jac.T


def wald_fractions(fit_a, fit_b, along=None):
    """Wald chi-square of two line fits' intensity fractions, not counting a difference along
    ``along`` (fractions, :func:`absorption_direction`; or several
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


def absorption_direction(signal, labels, clusters, lines):
    """Per cluster, the direction in which absorption moves its line-intensity fractions when
    the foil gets thicker; ``{}`` when ``lines`` are bare names (no k-factors to estimate the
    composition with).

    In a thin foil line i is attenuated by about ``1 - mu_i rho t / 2`` (``mu_i`` the mass
    absorption coefficient of the line's energy in the specimen: exspy's
    ``mass_absorption_mixture`` at the composition Cliff-Lorimer gives), so its fraction moves
    along ``-f_i (mu_i - sum_j f_j mu_j)``: only the direction matters, not the thickness,
    density or take-off angle. A wedge-shaped foil of one phase has different apparent
    compositions at its thin and thick ends; the split test does not count that direction.
    """
    if not lines or not all(hasattr(k, "k") for k in lines):
        return {}
    return _absorption_directions(cluster_spectra(signal, labels, clusters=clusters), clusters,
                                  lines)


def _absorption_directions(spectra, clusters, lines, fits=None):
    """:func:`absorption_direction` from the clusters' summed spectra (a stack, in
    ``clusters`` order), or from their line fits ``fits`` when given."""
    if not lines or not all(hasattr(k, "k") for k in lines):
        return {}
    from exspy.material import elements as database, mass_absorption_mixture
    els = [k.element for k in lines]
    try:
        energy = [database[e]["Atomic_properties"]["Xray_lines"][k.xray_line.split("_", 1)[1]]
                  ["energy (keV)"] for e, k in zip(els, lines)]
    except (KeyError, AttributeError):      # a line exspy's database lacks: no allowance
        return {}
    kf = np.array([k.k for k in lines], float)
    if fits is None:
        fits = fit_line_intensities(spectra, [k.xray_line for k in lines])
    out = {}
    for c, fit in zip(clusters, fits):
        if fit is None:
            continue
        i = np.maximum(fit.intensities, 0)
        if not i.sum() > 0:
            continue
        wt = 100 * kf * i / (kf * i).sum()      # Cliff-Lorimer weight fractions (k = wt/I ratio)
        try:
            mu = np.asarray(mass_absorption_mixture(weight_percent=list(wt), elements=els,
                                                    energies=energy), float)
        except (KeyError, ValueError):       # an element without absorption data
            continue
        f = i / i.sum()
        if np.all(np.isfinite(mu)):
            out[c] = -f * (mu - f @ mu)
    return out


def mixing_directions(fits, clusters, labels):
    """Per cluster, the directions in which a mixture with each cluster it touches moves its
    line-intensity fractions: ``f_j - f_c`` for every cluster ``j`` with a pixel next to one
    of ``c``'s (8 neighbours), one row each, the cluster with the most pixels next to ``c``'s
    first; None for a cluster that touches none.

    A pixel on the edge between two phases holds the sum of their counts (the probe and the
    foil spread over both), so its fractions lie on the line between theirs, and any set of
    edge pixels sums to fractions in the span of these directions: two parts of one phase
    that differ only in how much of their neighbours' counts their edges hold differ in it.

    Parameters
    ----------
    fits : list of LineFit or None, the clusters' line fits, in ``clusters`` order
    clusters : list of int
    labels : (rows, cols) int, -1 = unassigned (not a phase: no direction)
    """
    labels = np.asarray(labels)
    f = {}
    for c, fit in zip(clusters, fits):
        if fit is not None and np.sum(fit.intensities) > 0:
            f[c] = np.asarray(fit.intensities, float) / np.sum(fit.intensities)
    out = {}
    for c in clusters:
        touch = ndimage.binary_dilation(labels == c, np.ones((3, 3), bool)) & (labels >= 0)
        near, contact = np.unique(labels[touch], return_counts=True)
        order = np.argsort(-contact, kind="stable")      # the longest contact first
        dirs = [f[j] - f[c] for j in near[order] if j != c and j in f and c in f]
        out[c] = np.array(dirs) if dirs else None
    return out


#: Degrees of freedom of the fractions the whole-cluster test keeps
#: (:func:`whole_cluster_directions`): the mixing directions of the clusters with the
#: shortest contact are not left out beyond it, so their edge pixels can take part in a
#: split. Leaving every one out, a cluster touching four others in a six-line map had no
#: freedom left, and its test could split nothing (p = 1). Workflow 2 against leaving every
#: one out (benchmarks/generalisation_*_mindof.md): held-out seeds 34-63, scenes with every
#: phase >= 2 % found 0.47 -> 0.50, 93 -> 94 of 121 phases (45: its 5.6 % boundary layer);
#: lamellae 73 -> 75 of 112 (124: 3 -> 5 of 6); suite 86 -> 87 of 118 (11: +0.05 ARI); no
#: scene worse by more than 0.002. 1: nothing changes (one degree of freedom is too little);
#: 3: lamellae 115 -0.16 and held-out 40 -0.07 ARI.
MIN_DOF = 2


def stack_directions(*directions):
    """The directions given (each None, one vector or one per row) as rows, or None."""
    rows = [np.atleast_2d(d) for d in directions if d is not None]
    return np.vstack(rows) if rows else None


def whole_cluster_directions(absorption, mixing, n_lines, min_dof=MIN_DOF):
    """What the split test's whole-cluster look leaves out: ``absorption`` (a direction or
    None) and the ``mixing`` directions (:func:`mixing_directions`, longest contact first), as
    many as leave the ``n_lines - 1`` degrees of freedom of the fractions ``min_dof``."""
    if mixing is not None:
        free = n_lines - 1 - (absorption is not None) - min_dof
        mixing = mixing[:free] if free > 0 else None
    return stack_directions(absorption, mixing)
