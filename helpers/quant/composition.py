"""Cliff-Lorimer atomic percent through exspy, with propagated uncertainties.

Cliff-Lorimer. With k-factors ``k_i`` (weight basis, main line) and atomic weights ``A_i``::

    u_i = k_i I_i / A_i,     x_i = u_i / sum_j u_j        (atomic fraction; 100 x_i = at%)

    dx_i/dI_j = (delta_ij - x_i) k_j / (A_j U),   dx_i/dk_j = (delta_ij - x_i) x_j / k_j

    Cov_counting(x) = J_I Cov(I) J_I^T,   Cov_k(x) = J_k diag(sigma_k^2) J_k^T,
    Cov_total(x)    = Cov_counting + Cov_k

``sigma_counting`` is what repeated acquisitions of the same region would scatter by; it is the
right error when comparing clusters of *one* dataset (the k-factors are shared and their error
cancels to first order). ``sigma_total`` adds the k-factor error and is the error of an absolute
composition.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..xray.lines import atomic_weights


@dataclass
class Composition:
    """Composition of one spectrum, atomic percent, with covariances (at%^2).

    ``err_counting`` (Poisson statistics of this spectrum only) and ``err_total`` (plus k-factor
    uncertainty) are the square roots of the diagonals of ``cov_counting`` and ``cov_total``.
    """

    elements: list
    xray_lines: list
    at_percent: np.ndarray
    cov_counting: np.ndarray
    cov_total: np.ndarray
    intensities: np.ndarray
    intensity_cov: np.ndarray
    kfactors: np.ndarray
    kfactor_errs: np.ndarray
    method: str = "fit"
    n_pixels: float = np.nan
    fit: object = None
    err_segmentation: np.ndarray = None
    reason: str = ""            # why there is no composition (NaN at%); "" when quantified
    kfactor_sources: list = None   # where each k-factor came from (table, model, user file)
    absorption: np.ndarray = None  # absorption correction factors applied (None: thin film)

    @property
    def quantified(self):
        """True when the composition was measured (False: NaN at% and a ``reason``)."""
        return not self.reason

    @classmethod
    def unquantified(cls, lines, method, reason, intensities=None):
        """A composition of NaN at% that says why the spectrum could not be quantified."""
        n = len(lines)
        nan = np.full(n, np.nan)
        return cls([kf.element for kf in lines], [kf.xray_line for kf in lines], nan.copy(),
                   np.full((n, n), np.nan), np.full((n, n), np.nan),
                   nan.copy() if intensities is None else np.asarray(intensities, float),
                   np.full((n, n), np.nan), np.array([kf.k for kf in lines]),
                   np.array([kf.k_err for kf in lines]), method, reason=reason,
                   kfactor_sources=[kf.source for kf in lines])

    @property
    def err_counting(self):
        return np.sqrt(np.clip(np.diag(self.cov_counting), 0, None))

    @property
    def err_total(self):
        return np.sqrt(np.clip(np.diag(self.cov_total), 0, None))

    def as_dict(self):
        """``{element: (at%, err_total, err_counting)}``."""
        return {e: (float(x), float(t), float(c)) for e, x, t, c in
                zip(self.elements, self.at_percent, self.err_total, self.err_counting)}


#: exspy's Cliff-Lorimer ignores lines below this intensity (counts) as reference lines.
EXSPY_MIN_INTENSITY = 0.1


def cl_jacobians(intensities, kfactors, atomic_weights):
    """Atomic fractions ``x`` and their Jacobians ``dx/dI`` and ``dx/dk`` (see module docstring)."""
    I = np.asarray(intensities, float)
    k = np.asarray(kfactors, float)
    A = np.asarray(atomic_weights, float)
    u = k * I / A
    U = u.sum()
    if not U > 0:
        raise DataError("All line intensities are zero or negative: the spectrum has no "
                        "characteristic counts for these elements.")
    x = u / U
    eye = np.eye(len(I))
    J_I = (eye - x[:, None]) * (k / (A * U))[None, :]
    J_k = (eye - x[:, None]) * (x / k)[None, :]
    return x, J_I, J_k


def _exspy_cl(spectra, I, k, xray_lines):
    """exspy's Cliff-Lorimer on intensities ``I`` (n_spectra, n_lines); at% of the same shape.

    Calls the function that exspy's ``quantification(method="CL")`` calls on its stacked
    intensity array, and exspy's ``weight_to_atomic``, on NumPy arrays: the same numbers as
    :func:`_exspy_cl_signals` without building one HyperSpy signal per line (~1 s per call).
    """
    try:
        from exspy._misc.eds.utils import quantification_cliff_lorimer
    except ImportError:    # exspy moved it: take the public route
        return _exspy_cl_signals(spectra, I, k, xray_lines)
    from exspy.material import weight_to_atomic

    elements = [xl.split("_")[0] for xl in xray_lines]
    wt = 100.0 * quantification_cliff_lorimer(np.array(I, dtype=float).T, list(k))
    at = np.nan_to_num(np.asarray(weight_to_atomic(wt, elements), dtype=float))
    return at.T


def _exspy_cl_signals(spectra, I, k, xray_lines, thickness=None):
    """exspy's public ``quantification(method="CL", composition_units="atomic")`` on
    intensities ``I`` (n_spectra, n_lines); returns at% of the same shape. With ``thickness``
    (nm), exspy's absorption correction is applied (iterated to convergence)."""
    import hyperspy.api as hs

    base = spectra.isig[0:1].integrate1D(-1)
    sigs = []
    for j, xl in enumerate(xray_lines):
        img = base.deepcopy()
        img.data = I[:, j].reshape(np.shape(img.data)).astype(float)
        img = img.transpose(signal_axes=[])
        img.metadata.set_item("Sample.elements", [xl.split("_")[0]])
        img.metadata.set_item("Sample.xray_lines", [xl])
        sigs.append(img)
    old = hs.preferences.General.show_progressbar
    hs.preferences.General.show_progressbar = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # navigation_mask=None: exspy would otherwise zero spectra below 1 count per channel
            extra = {} if thickness is None else dict(absorption_correction=True,
                                                      thickness=float(thickness))
            res = spectra.quantification(sigs, method="CL", factors=list(k),
                                         composition_units="atomic", navigation_mask=None,
                                         plot_result=False, **extra)
    finally:
        hs.preferences.General.show_progressbar = old
    res = res[0] if isinstance(res, tuple) else res
    return np.stack([np.atleast_1d(np.asarray(r.data, float)).ravel() for r in res], axis=-1)


def absorption_factors(spectra, intensities, lines, thickness):
    """Absorption correction factors (n_spectra, n_lines) of a thin foil ``thickness`` nm thick,
    from exspy's absorption-corrected Cliff-Lorimer (mass absorption coefficients of the
    measured composition, the detector take-off angle from the metadata, iterated to
    convergence).

    Returned as the factors ``a_i`` that make the plain Cliff-Lorimer of ``a_i I_i`` equal
    exspy's corrected composition (normalised to mean 1: only their ratios matter). Lines with
    no positive intensity get 1.
    """
    I = np.atleast_2d(np.asarray(intensities, float))
    k = np.array([kf.k for kf in lines])
    xls = [kf.xray_line for kf in lines]
    pos = np.where(I > 0, I, np.nan)
    floor = np.nanmax(np.where(np.isfinite(pos), pos, 0), axis=1, keepdims=True) * 1e-9
    Ic = np.where(I > 0, I, np.maximum(floor, 1e-12))
    at = _exspy_cl_signals(spectra, Ic, k, xls, thickness)
    A = atomic_weights([kf.element for kf in lines])
    wt = at * A[None, :]
    acf = wt / (k[None, :] * Ic)
    acf = np.where(I > 0, acf, np.nan)
    acf = acf / np.nanmean(acf, axis=1, keepdims=True)
    return np.where(np.isfinite(acf), acf, 1.0)


def cliff_lorimer(spectra, intensities, intensity_covs, lines, method="fit"):
    """Cliff-Lorimer atomic percent through exspy, with propagated uncertainties.

    Intensities are not clipped at zero: an absent element's fitted intensity scatters around 0,
    and so does its at% (e.g. -0.05 ± 0.12); clipping would bias it and shrink its scatter
    below the reported σ. (The entropy treats negative fractions as 0.)

    Parameters
    ----------
    spectra : EDSTEMSpectrum
        The spectrum (or 1-D stack) the intensities came from; exspy's ``quantification`` is
        called on it.
    intensities : ndarray (n_spectra, n_lines) or (n_lines,)
    intensity_covs : ndarray (n_spectra, n_lines, n_lines) or (n_lines, n_lines)
        Covariance of the intensities (counts^2).
    lines : list of KFactor
        From :func:`quant_lines`: element, line, k and its 1-sigma error.

    Returns
    -------
    list of Composition
    """
    xray_lines = [kf.xray_line for kf in lines]
    elements = [kf.element for kf in lines]
    k = np.array([kf.k for kf in lines])
    k_err = np.array([kf.k_err for kf in lines])
    I = np.atleast_2d(np.asarray(intensities, float))
    C = np.asarray(intensity_covs, float).reshape(I.shape[0], I.shape[1], I.shape[1])
    A = atomic_weights(elements)
    # spectra whose lines hold no characteristic counts cannot be quantified; they get a
    # composition of NaN with the reason, and the others are quantified as usual
    # (exspy's CL needs two lines above 0.1 counts: with fewer it reports 100 % of one element)
    ok = [j for j in range(I.shape[0])
          if (k * I[j] / A).sum() > 0 and np.sum(I[j] > EXSPY_MIN_INTENSITY) >= 2]
    at = _exspy_cl(spectra, I[ok], k, xray_lines) if ok else np.empty((0, len(k)))
    out = []
    for j in range(I.shape[0]):
        if j not in ok:
            out.append(Composition.unquantified(
                lines, method, "no characteristic counts: fewer than two lines have a positive "
                "fitted intensity (too few pixels or counts in this cluster)", I[j]))
            continue
        x, J_I, J_k = cl_jacobians(I[j], k, A)
        a = at[ok.index(j)]
        if not np.allclose(a, 100 * x, atol=1e-6):  # guards the propagation formula
            raise RuntimeError("Internal check failed: exspy's CL result differs from the "
                               "propagation formula.")
        cov_c = 1e4 * J_I @ C[j] @ J_I.T
        cov_k = 1e4 * J_k @ np.diag(k_err ** 2) @ J_k.T
        out.append(Composition(elements, xray_lines, a, cov_c, cov_c + cov_k, I[j], C[j],
                               k, k_err, method, kfactor_sources=[kf.source for kf in lines]))
    return out
