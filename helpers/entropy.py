"""Configurational entropy and metal : sulfur ratio of cluster compositions, with uncertainties.

Convention (the one that reproduces the paper's 0.858 R, 0.529 R, 0.482 R for Table 1):

    S_conf / R = -f * sum_i y_i ln y_i,      y_i = x_i / sum_{metals} x_j

over the *cation* site fractions ``y_i`` (metal atomic fractions renormalised to 1; the anion
sublattice holds one species, S, and contributes nothing). ``f = 1/2`` expresses it *per atom*
of an ideal MS compound (one cation site per two atoms); ``f = 1`` (``per="formula_unit"``) is
the usual per-mole-of-cation-sites value. The ideal maximum, all N cations equal, is
``f ln N``: 0.896 R (6 cations) and 0.973 R (7 cations) per atom.

Uncertainty: first-order propagation with the full composition covariance ``C`` (at%^2)::

    dS/dx_j = -(f / X_M) (ln y_j - sum_i y_i ln y_i)   for metals j (0 for S),  X_M = sum metals
    sigma_S^2 = g^T C g

The metal : sulfur ratio is ``X_M / x_S`` with ``d/dx_metal = 1/x_S``, ``d/dx_S = -X_M/x_S^2``.
"""
from __future__ import annotations

import numpy as np

from .errors import ElementError, ParameterError

#: Elements treated as anions (not on the cation sublattice).
ANIONS = ("S", "Se", "Te", "O")
_FACTOR = {"atom": 0.5, "formula_unit": 1.0}
#: Smallest site fraction used in logarithms (a zero fraction contributes 0 to S).
Y_FLOOR = 1e-9


def _factor(per):
    if per not in _FACTOR:
        raise ParameterError(f"per must be 'atom' (paper, S per atom of MS) or 'formula_unit', "
                             f"got {per!r}.")
    return _FACTOR[per]


def _split(elements, anions):
    metals = [i for i, e in enumerate(elements) if e not in anions]
    an = [i for i, e in enumerate(elements) if e in anions]
    if not metals:
        raise ElementError(f"No cation among {elements}: configurational entropy needs metals.")
    return metals, an


def site_fractions(at_percent, elements, anions=ANIONS):
    """Cation site fractions ``{metal: y}`` (metal at% renormalised to sum 1)."""
    x = np.clip(np.asarray(at_percent, float), 0, None)
    metals, _ = _split(list(elements), anions)
    xm = x[metals]
    if not xm.sum() > 0:
        raise ElementError("The metals' atomic percents sum to zero: nothing to compute.")
    return {elements[i]: float(v) for i, v in zip(metals, xm / xm.sum())}


def ideal_maximum(n_cations, per="atom"):
    """Ideal configurational entropy ``f ln N`` (in R) of N equimolar cations."""
    if int(n_cations) < 1:
        raise ParameterError("n_cations must be >= 1.")
    return _factor(per) * float(np.log(int(n_cations)))


def configurational_entropy(at_percent, elements, cov=None, anions=ANIONS, per="atom"):
    """Configurational entropy (in units of R) of one composition, with its 1σ error.

    Parameters
    ----------
    at_percent : array (n_elements,)
    elements : list of str
    cov : array (n_elements, n_elements), optional
        Covariance of ``at_percent`` (at%^2); the error is None when not given.
    anions : tuple of str
        Elements off the cation sublattice.
    per : {"atom", "formula_unit"}
        ``"atom"`` (paper): ``-1/2 sum y ln y``; ``"formula_unit"``: ``-sum y ln y``.

    Returns
    -------
    (S_over_R, sigma or None)
    """
    f = _factor(per)
    x = np.clip(np.asarray(at_percent, float), 0, None)
    elements = list(elements)
    if x.shape != (len(elements),):
        raise ParameterError("at_percent and elements must have the same length.")
    metals, _ = _split(elements, anions)
    XM = x[metals].sum()
    if not XM > 0:
        raise ElementError("The metals' atomic percents sum to zero: nothing to compute.")
    y = x[metals] / XM
    ly = np.log(np.clip(y, Y_FLOOR, None))
    s = float(-f * np.sum(y * ly))
    if cov is None:
        return s, None
    g = np.zeros(len(x))
    g[metals] = -(f / XM) * (ly - np.sum(y * ly))
    return s, float(np.sqrt(max(g @ np.asarray(cov, float) @ g, 0.0)))


def metal_to_sulfur(at_percent, elements, cov=None, anions=ANIONS):
    """Ratio of metal to anion (sulfur) atoms, ``sum metals / sum anions``, with its 1σ error."""
    x = np.clip(np.asarray(at_percent, float), 0, None)
    elements = list(elements)
    metals, an = _split(elements, anions)
    if not an:
        raise ElementError(f"No anion ({', '.join(anions)}) among {elements}: the metal : sulfur "
                           "ratio needs S in the quantified elements.")
    XM, XS = x[metals].sum(), x[an].sum()
    if not XS > 0:
        return float("inf"), None
    r = float(XM / XS)
    if cov is None:
        return r, None
    g = np.zeros(len(x))
    g[metals] = 1.0 / XS
    g[an] = -XM / XS ** 2
    return r, float(np.sqrt(max(g @ np.asarray(cov, float) @ g, 0.0)))


def entropy_table(quants, per="atom", anions=ANIONS):
    """One row per cluster of each :class:`helpers.quant.ClusterQuant`.

    Columns: workflow, cluster, n_pixels, n_cations, s_conf_R, s_conf_R_err (total: counting +
    k-factor), s_conf_R_err_counting, s_max_R, s_over_max, metal_to_sulfur,
    metal_to_sulfur_err, metal_to_sulfur_err_counting.
    """
    import pandas as pd

    rows = []
    for q in quants:
        for c in q.clusters:
            comp = q.compositions[c]
            s, se = configurational_entropy(comp.at_percent, comp.elements, comp.cov_total,
                                            anions, per)
            _, sc = configurational_entropy(comp.at_percent, comp.elements, comp.cov_counting,
                                            anions, per)
            r, re = metal_to_sulfur(comp.at_percent, comp.elements, comp.cov_total, anions)
            _, rc = metal_to_sulfur(comp.at_percent, comp.elements, comp.cov_counting, anions)
            n = sum(e not in anions for e in comp.elements)
            smax = ideal_maximum(n, per)
            rows.append(dict(workflow=q.workflow, cluster=c, n_pixels=comp.n_pixels,
                             n_cations=n, s_conf_R=s, s_conf_R_err=se,
                             s_conf_R_err_counting=sc, s_max_R=smax, s_over_max=s / smax,
                             metal_to_sulfur=r, metal_to_sulfur_err=re,
                             metal_to_sulfur_err_counting=rc))
    return pd.DataFrame(rows)
