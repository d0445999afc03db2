"""Configurational entropy and metal : anion ratio of cluster compositions, for any material.

Site models (chosen from the elements by :func:`site_model`, or set by hand):

``"compound"`` (sulfides, selenides, tellurides, oxides, nitrides, carbides: an anion among S,
Se, Te, O, N, C is quantified). Cations mix on one sublattice, the anions fill the other::

    S_conf / R = -f * sum_i y_i ln y_i,      y_i = x_i / sum_{cations} x_j

over the *cation* site fractions ``y_i`` (cation atomic fractions renormalised to 1; the anion
sublattice holds one species and contributes nothing). ``f = 1/2`` (``per="atom"``, the paper's
convention, which reproduces its 0.858 R, 0.529 R, 0.482 R for Table 1) expresses it per atom of
an ideal MX compound (one cation site per two atoms); ``f = 1`` (``per="formula_unit"``) is the
per-mole-of-cation-sites value. The ideal maximum, N equal cations, is ``f ln N``: 0.896 R
(6 cations) and 0.973 R (7 cations) per atom.

``"alloy"`` (no anion: high-entropy alloys, intermetallics). Every quantified element mixes on
one site::

    S_conf / R = -sum_i x_i ln x_i,          x_i = atomic fractions renormalised to 1

per atom (= per site, ``f = 1``); the ideal maximum is ``ln N`` (1.609 R for five metals).

Elements that are not part of the phase (a carbon support film, oxygen from contamination, the
Cu of a grid, a Ga implant from the FIB) are left out with ``exclude``: the fractions are
renormalised over the rest. ``anions`` overrides the anion list (e.g. ``("S",)`` for a sulfide
whose oxygen signal is surface oxide: then exclude O as well).

Uncertainty: first-order propagation with the full composition covariance ``C`` (at%^2)::

    dS/dx_j = -(f / X_M) (ln y_j - L),   L = sum_i y_i ln y_i   (site elements j; 0 otherwise)
    d2S/dx_j dx_k = (f / X_M^2) (ln y_j + ln y_k - 2 L + 1) - delta_jk f / (X_M x_j)
    sigma_S^2 = g^T C g + 1/2 tr(H C H C) + (1/2 tr(H C))^2,      X_M = sum of the site elements

(the mean square error of the second-order delta method: variance plus squared bias). The
second-order terms matter only near the maximum, where the gradient vanishes: an equimolar
phase would otherwise get an error of exactly zero, although noise always lowers its entropy.

The metal : anion ratio (compounds only) is ``X_M / X_A`` with ``d/dx_metal = 1/X_A``,
``d/dx_anion = -X_M/X_A^2``; the contract column of ``entropy.csv`` keeps its name
``metal_to_sulfur`` (metal : anion; empty for alloys).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ElementError, ParameterError

#: Elements treated as anions of a compound when quantified (not on the cation sublattice).
ANIONS = ("S", "Se", "Te", "O", "N", "C")
SITE_MODELS = ("auto", "compound", "alloy")
_FACTOR = {"atom": 0.5, "formula_unit": 1.0}
#: Smallest site fraction used in logarithms (a zero fraction contributes 0 to S).
Y_FLOOR = 1e-9


@dataclass(frozen=True)
class SiteModel:
    """Which elements mix on the site whose entropy is computed, and the per-atom factor.

    Attributes
    ----------
    kind : {"compound", "alloy"}
    sites : tuple of str
        Elements mixing on the site (cations of a compound, every element of an alloy).
    anions : tuple of str
        The anion sublattice of a compound (empty for an alloy).
    excluded : tuple of str
        Quantified elements left out of the phase.
    factor : float
        ``f`` in ``S/R = -f sum y ln y``.
    """

    kind: str
    sites: tuple
    anions: tuple
    excluded: tuple
    factor: float

    def describe(self):
        """One line for tables and notebooks, e.g. "compound: (Ag Cd Cu Fe Mn Zn) S, f = 1/2"."""
        f = "1/2" if self.factor == 0.5 else f"{self.factor:g}"
        body = f"({' '.join(self.sites)})" + (f" {' '.join(self.anions)}" if self.anions else "")
        out = f"{self.kind}: {body}, f = {f}"
        return out + (f"; left out: {' '.join(self.excluded)}" if self.excluded else "")


def site_model(elements, model="auto", anions=ANIONS, exclude=(), per="atom"):
    """The :class:`SiteModel` of a phase quantified for ``elements``.

    Parameters
    ----------
    elements : list of str
    model : {"auto", "compound", "alloy"}
        ``"auto"``: a compound when one of ``anions`` is among the (not excluded) elements,
        otherwise an alloy.
    anions : sequence of str
        Elements that form the anion sublattice of a compound.
    exclude : sequence of str
        Elements not part of the phase (support, contamination, grid).
    per : {"atom", "formula_unit"}
        Compounds only: per atom of an ideal MX compound (f = 1/2, the paper) or per cation
        site (f = 1). An alloy's single site is always per atom (f = 1).

    Raises
    ------
    ParameterError
        For an unknown model or ``per``; ElementError when no element is left on the site.
    """
    if model not in SITE_MODELS:
        raise ParameterError(f"ENTROPY_MODEL={model!r} is unknown: use one of "
                             f"{', '.join(SITE_MODELS)}.")
    if per not in _FACTOR:
        raise ParameterError(f"per must be 'atom' (paper, S per atom of MX) or 'formula_unit', "
                             f"got {per!r}.")
    elements = list(elements)
    excluded = tuple(e for e in elements if e in set(exclude or ()))
    kept = [e for e in elements if e not in excluded]
    an = tuple(e for e in kept if e in set(anions or ()))
    kind = ("compound" if an else "alloy") if model == "auto" else model
    if kind == "compound" and not an:
        raise ElementError(f"ENTROPY_MODEL='compound' needs an anion ({', '.join(anions)}) among "
                           f"{', '.join(kept)}: use 'alloy' or 'auto', or set ANIONS.")
    sites = tuple(e for e in kept if e not in an) if kind == "compound" else tuple(kept)
    if not sites:
        raise ElementError(f"No element left on the mixing site of {elements} (excluded: "
                           f"{', '.join(excluded) or 'none'}): configurational entropy needs "
                           "at least one.")
    factor = _FACTOR[per] if kind == "compound" else 1.0
    return SiteModel(kind, sites, an if kind == "compound" else (), excluded, factor)


def _model(elements, model, anions, exclude, per):
    return model if isinstance(model, SiteModel) else site_model(elements, model, anions,
                                                                  exclude, per)


def site_fractions(at_percent, elements, anions=ANIONS, model="auto", exclude=()):
    """Site fractions ``{element: y}`` of the mixing site (renormalised to sum 1)."""
    elements = list(elements)
    m = _model(elements, model, anions, exclude, "atom")
    x = np.clip(np.asarray(at_percent, float), 0, None)
    idx = [elements.index(e) for e in m.sites]
    xm = x[idx]
    if not xm.sum() > 0:
        raise ElementError("The site elements' atomic percents sum to zero: nothing to compute.")
    return {e: float(v) for e, v in zip(m.sites, xm / xm.sum())}


def ideal_maximum(n_sites, per="atom", kind="compound"):
    """Ideal configurational entropy ``f ln N`` (in R) of N equimolar species on the site
    (``f = 1/2`` for a compound per atom, 1 per cation site or for an alloy)."""
    if int(n_sites) < 1:
        raise ParameterError("n_sites must be >= 1.")
    f = 1.0 if kind == "alloy" else _FACTOR.get(per)
    if f is None:
        raise ParameterError(f"per must be 'atom' or 'formula_unit', got {per!r}.")
    return f * float(np.log(int(n_sites)))


def configurational_entropy(at_percent, elements, cov=None, anions=ANIONS, per="atom",
                            model="auto", exclude=()):
    """Configurational entropy (in units of R) of one composition, with its 1σ error.

    Parameters
    ----------
    at_percent : array (n_elements,)
    elements : list of str
    cov : array (n_elements, n_elements), optional
        Covariance of ``at_percent`` (at%^2); the error is None when not given.
    anions, per, model, exclude
        See :func:`site_model` (``model`` may also be a :class:`SiteModel`).

    Returns
    -------
    (S_over_R, sigma or None)
    """
    x = np.clip(np.asarray(at_percent, float), 0, None)
    elements = list(elements)
    if x.shape != (len(elements),):
        raise ParameterError("at_percent and elements must have the same length.")
    m = _model(elements, model, anions, exclude, per)
    idx = [elements.index(e) for e in m.sites]
    XM = x[idx].sum()
    if not XM > 0:
        raise ElementError("The site elements' atomic percents sum to zero: nothing to compute.")
    y = x[idx] / XM
    ly = np.log(np.clip(y, Y_FLOOR, None))
    s = float(-m.factor * np.sum(y * ly))
    if cov is None:
        return s, None
    L = np.sum(y * ly)
    g = np.zeros(len(x))
    g[idx] = -(m.factor / XM) * (ly - L)
    # second order: at the maximum (an equimolar phase) the gradient vanishes and the first-order
    # error would be zero; the Hessian terms of the Gaussian delta method remain there: the
    # variance 1/2 tr(H C H C) and the bias 1/2 tr(H C) (noise always lowers a maximal entropy)
    d = ly - L
    H = np.zeros((len(x), len(x)))
    H[np.ix_(idx, idx)] = (m.factor / XM ** 2) * (d[:, None] + d[None, :] + 1.0) \
        - np.diag(m.factor / (XM * np.clip(x[idx], Y_FLOOR * XM, None)))
    C = np.asarray(cov, float)
    HC = H @ C
    mse = g @ C @ g + 0.5 * np.trace(HC @ HC) + (0.5 * np.trace(HC)) ** 2
    return s, float(np.sqrt(max(mse, 0.0)))


def metal_to_anion(at_percent, elements, cov=None, anions=ANIONS, exclude=()):
    """Ratio of cation to anion atoms of a compound, ``X_M / X_A``, with its 1σ error.

    Raises
    ------
    ElementError
        When no anion is quantified (an alloy has no metal : anion ratio).
    """
    elements = list(elements)
    m = site_model(elements, "auto", anions, exclude)
    if m.kind != "compound":
        raise ElementError(f"No anion ({', '.join(anions)}) among {elements}: the metal : anion "
                           "ratio needs one (an alloy has none).")
    x = np.clip(np.asarray(at_percent, float), 0, None)
    metals = [elements.index(e) for e in m.sites]
    an = [elements.index(e) for e in m.anions]
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


#: The sulfides' name for :func:`metal_to_anion` (the paper's metal : sulfur ratio).
metal_to_sulfur = metal_to_anion


def _row(comp, m, per):
    """Entropy and metal : anion values of one composition under site model ``m``."""
    nan = float("nan")
    out = dict(s_conf_R=nan, s_conf_R_err=nan, s_conf_R_err_counting=nan, metal_to_sulfur=nan,
               metal_to_sulfur_err=nan, metal_to_sulfur_err_counting=nan, reason="")
    if getattr(comp, "reason", "") or not np.all(np.isfinite(comp.at_percent)):
        out["reason"] = getattr(comp, "reason", "") or "composition not quantified"
        return out
    try:
        out["s_conf_R"], out["s_conf_R_err"] = configurational_entropy(
            comp.at_percent, comp.elements, comp.cov_total, model=m)
        _, out["s_conf_R_err_counting"] = configurational_entropy(
            comp.at_percent, comp.elements, comp.cov_counting, model=m)
        if m.kind == "compound":
            out["metal_to_sulfur"], out["metal_to_sulfur_err"] = metal_to_anion(
                comp.at_percent, comp.elements, comp.cov_total, m.anions, m.excluded)
            _, out["metal_to_sulfur_err_counting"] = metal_to_anion(
                comp.at_percent, comp.elements, comp.cov_counting, m.anions, m.excluded)
    except ElementError as exc:   # e.g. every site element measured at zero
        out["reason"] = str(exc)
    return out


def entropy_table(quants, per="atom", anions=ANIONS, model="auto", exclude=()):
    """One row per cluster of each :class:`helpers.quant.ClusterQuant`, for any material.

    The site model (:func:`site_model`) is chosen once from the quantified elements (``model``,
    ``anions``, ``exclude``); a cluster without a composition (NaN at%) gets a row of NaN with
    its reason.

    Columns: workflow, cluster, n_pixels, site_model (its description), n_cations (species on
    the site), s_conf_R, s_conf_R_err (total: counting + k-factor), s_conf_R_err_counting,
    s_max_R, s_over_max, metal_to_sulfur (metal : anion; NaN for an alloy), metal_to_sulfur_err,
    metal_to_sulfur_err_counting, reason, and name (the cluster's composition name) when the
    quantifications carry names (:func:`helpers.quant.quantify_workflows`).
    """
    import pandas as pd

    rows = []
    for q in quants:
        for c in q.clusters:
            comp = q.compositions[c]
            m = site_model(comp.elements, model, anions, exclude, per)
            smax = ideal_maximum(len(m.sites), per, m.kind)
            vals = _row(comp, m, per)
            s_over = vals["s_conf_R"] / smax if smax > 0 else float("nan")
            rows.append(dict(workflow=q.workflow, cluster=c, n_pixels=comp.n_pixels,
                             site_model=m.describe(), n_cations=len(m.sites),
                             s_conf_R=vals["s_conf_R"], s_conf_R_err=vals["s_conf_R_err"],
                             s_conf_R_err_counting=vals["s_conf_R_err_counting"],
                             s_max_R=smax, s_over_max=s_over,
                             metal_to_sulfur=vals["metal_to_sulfur"],
                             metal_to_sulfur_err=vals["metal_to_sulfur_err"],
                             metal_to_sulfur_err_counting=vals["metal_to_sulfur_err_counting"],
                             reason=vals["reason"],
                             **({"name": q.names.get(c, "")} if getattr(q, "names", None)
                                else {})))
    return pd.DataFrame(rows)
