"""Line intensities of a spectrum: exspy's EDS model fitted by Poisson maximum likelihood.

:func:`fit_line_intensities` fits exspy's EDS model (polynomial background + one Gaussian per
line, the lines of a family tied at their database weights) to a cluster spectrum by
Poisson-weighted linear least squares and returns each family's main-line intensity *with its
covariance*. Fitting (not windows) because Ag Lb1 (3.15 keV) sits on Cd La (3.13 keV) and In La
(3.29 keV) is next to them. :func:`window_line_intensities` is exspy's quick background-window
integration, kept for comparison.

Uncertainty model (this package's own contribution; exspy reports none)
------------------------------------------------------------------------
Counting. The cluster spectrum ``y`` (channels ``c``) is a sum of Poisson counts, so
``Var(y_c) = mu_c`` (hard mask) or ``sum_x w_x^2 y_xc`` (weights ``w_x``). The model is linear
in its free parameters, ``mu = X beta`` (columns of ``X``: one fixed-shape line family per element
with unit main-line area, and the background polynomial basis). With ``W = diag(1 / mu_c)``,
iterated to convergence (this fixed point *is* the Poisson maximum-likelihood fit)::

    beta = (X^T W X)^-1 X^T W y,      Cov(beta) = (X^T W X)^-1

If the model misses something (an element not listed, a wrong detector resolution), the
reduced chi^2 exceeds 1 by more than its scatter (5 sigma) and ``Cov(beta)`` is multiplied by it
(Birge ratio, as HyperSpy does); ``LineFit.error_scale`` reports the factor on the sigmas.
For weighted spectra the sandwich form ``B diag(V) B^T``, ``B = (X^T W X)^-1 X^T W``, is used with
the variance spectrum ``V``. The background's uncertainty and the line overlaps enter through the
off-diagonal terms: ``Cov(I)`` is the line block of ``Cov(beta)``, not just its diagonal.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import uniform_filter1d

from ..errors import DataError, ElementError, ParameterError
from ..xray.lines import family_of, gaussian_channels

# HyperSpy warns once per Expression component that numexpr is missing; nothing to act on.
logging.getLogger("hyperspy._components.expression").setLevel(logging.ERROR)

#: Default fit range margin (keV) below the lowest and above the highest line used.
FIT_MARGIN_LOW = 0.8

FIT_MARGIN_HIGH = 1.0

#: Floor (counts) on the model variance used as a weight, so empty channels cannot dominate.
VARIANCE_FLOOR = 0.5

#: chi^2/dof above 1 + CHI2_TOLERANCE * sqrt(2/dof) scales the errors by sqrt(chi^2/dof).
CHI2_TOLERANCE = 5.0

#: Lowest energy (keV) a fit may start at: below it lies the detector's zero-energy peak.
FIT_MIN_ENERGY = 0.2


def energy_range_of(signal):
    ax = signal.axes_manager.signal_axes[0]
    return float(ax.low_value), float(ax.high_value)


def beam_energy_of(signal):
    try:
        return float(signal.metadata.Acquisition_instrument.TEM.beam_energy)
    except AttributeError:
        return 200.0


def default_fit_range(signal, xray_lines):
    """Energy window (keV) of the fit: from just below the lowest line of the quantified families
    to just above their highest line, inside the spectrum and below the beam energy."""
    energies = []
    for xl in xray_lines:
        fam = family_of(xl)
        main = fam[xl][0]
        # the family's lines near the main one (L families span ~1 keV)
        energies += [e for e, _ in fam.values() if abs(e - main) < 1.5]
    lo_s, hi_s = energy_range_of(signal)
    lo = max(lo_s, FIT_MIN_ENERGY, min(energies) - FIT_MARGIN_LOW)
    hi = min(hi_s, max(energies) + FIT_MARGIN_HIGH, beam_energy_of(signal))
    return lo, hi


def build_line_model(spectrum, xray_lines, energy_range=None, background_order=6):
    """exspy's EDS model of one spectrum: polynomial background + every line family in range.

    The spectrum is cropped to ``energy_range`` first (default :func:`default_fit_range`); lines
    of the sample's elements that fall in the range are added by exspy (``add_family_lines``),
    including families that are not quantified (they are fitted as nuisance components).

    Returns
    -------
    exspy.models.EDSTEMModel
    """
    s, lo, hi, elements = _fit_window(spectrum, xray_lines, energy_range)
    s = s.deepcopy()
    s.metadata.set_item("Sample.elements", elements)
    s.metadata.set_item("Sample.xray_lines", list(xray_lines))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = s.create_model(auto_background=False, auto_add_lines=False)
        m.add_polynomial_background(order=background_order)
        # every family (Ka, La, Ma) of every element that lies inside the window
        lines = s._get_lines_from_elements(elements, only_one=False, only_lines=("Ka", "La", "Ma"))
        m.add_family_lines(list(lines))
    _check_in_range(xray_lines, [c.name for c in m.xray_lines], lo, hi)
    return m


def _fit_window(spectrum, xray_lines, energy_range):
    """The spectrum cropped to ``energy_range`` (default :func:`default_fit_range`), the range,
    and the elements whose families the model holds (the lines' and the sample's)."""
    if energy_range is None:
        energy_range = default_fit_range(spectrum, xray_lines)
    lo, hi = energy_range
    s = spectrum.isig[float(lo):float(hi)]
    elements = sorted({xl.split("_")[0] for xl in xray_lines}
                      | set(s.metadata.get_item("Sample.elements", [])))
    return s, lo, hi, elements


def _check_in_range(xray_lines, found, lo, hi):
    """ElementError naming the ``xray_lines`` not among the model's lines ``found``."""
    missing = [xl for xl in xray_lines if xl not in found]
    if missing:
        raise ElementError(f"Lines {missing} are outside the fit range {lo:.2f}-{hi:.2f} keV: "
                           "widen energy_range or remove those elements.")


@dataclass
class _Design:
    """Design matrix of a line model: columns = line families (unit main-line area) + background."""

    X: np.ndarray
    names: list          # family main-line names, e.g. "Fe_Ka"
    n_lines: int
    energies: np.ndarray
    t_domain: tuple      # (lo, hi) of the background polynomial's variable
    order: int


def design_matrix(model):
    """Columns of the (linear) EDS model: one per line family, then the background polynomial.

    Each family column is the main line's Gaussian with unit area plus its sub-lines at the
    weights exspy ties them with (``A_sub = weight * A_main``); peak positions and widths are the
    model's (fixed). The background is a polynomial in ``t = (E - mid) / half_width`` (same
    function space as exspy's ``Polynomial``, better conditioned).
    """
    ax = model.signal.axes_manager.signal_axes[0]
    E = np.asarray(ax.axis, dtype=float)
    width = float(ax.scale)
    cols, names = [], []
    for main in model.xray_lines:
        old = main.A.value
        main.A.value = 1.0
        col = gaussian_channels(E, width, main.centre.value, main.sigma.value)
        for comp in model.family_lines:
            if comp.A.twin is main.A:
                col = col + comp.A.value * gaussian_channels(E, width, comp.centre.value,
                                                          comp.sigma.value)
        main.A.value = old
        cols.append(col)
        names.append(main.name)
    bg = model.background_components[0]
    order = len(bg.parameters) - 1
    lo, hi = E[0], E[-1]
    t = (E - (lo + hi) / 2) / ((hi - lo) / 2)
    for i in range(order + 1):
        cols.append(t ** i)
    return _Design(np.stack(cols, axis=1), names, len(names), E, (lo, hi), order)


def database_design(spectrum, xray_lines, energy_range=None, background_order=6):
    """:func:`design_matrix` of :func:`build_line_model`, read from exspy's line database without
    building the model: the same lines, energies, widths and family weights, through the same
    exspy calls ``add_family_lines`` makes (``_get_lines_from_elements``,
    ``_get_xray_lines_in_spectral_range``, ``_get_line_energy`` with the detector's resolution,
    the database's weights). Hand-written because building the model compiles a sympy expression
    per Gaussian (2.6 s of a 10 s pipeline at 256 x 256) that a fixed-shape design never uses;
    ``tests/test_quant.py`` checks the two designs are equal."""
    from exspy.material import elements as elements_db
    s, lo, hi, elements = _fit_window(spectrum, xray_lines, energy_range)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = s._get_lines_from_elements(elements, only_one=False, only_lines=("Ka", "La", "Ma"))
        found, _ = s._get_xray_lines_in_spectral_range(list(found))
    E = np.asarray(s.axes_manager.signal_axes[0].axis, dtype=float)
    width = float(s.axes_manager.signal_axes[0].scale)
    _check_in_range(xray_lines, found, lo, hi)
    fwhm_to_sigma = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    cols = []
    for main in found:
        element, line = main.split("_", 1)
        centre, fwhm = s._get_line_energy(main, FWHM_MnKa="auto")
        col = gaussian_channels(E, width, centre, fwhm * fwhm_to_sigma)
        db = elements_db[element]["Atomic_properties"]["Xray_lines"]
        for li in db.keys():
            sub = f"{element}_{li}"
            if line[0] in li and li != line and s._get_xray_lines_in_spectral_range([sub])[0]:
                c, f = s._get_line_energy(sub, FWHM_MnKa="auto")
                col = col + db[li]["weight"] * gaussian_channels(E, width, c, f * fwhm_to_sigma)
        cols.append(col)
    t = (E - (E[0] + E[-1]) / 2) / ((E[-1] - E[0]) / 2)
    cols += [t ** i for i in range(background_order + 1)]
    return _Design(np.stack(cols, axis=1), [str(x) for x in found], len(found), E,
                   (E[0], E[-1]), background_order)


#: Design matrices already built in this process, by energy axis, metadata, lines and range.
_DESIGNS = {}


def _design_key(spectra, xray_lines, energy_range, background_order):
    """Everything exspy's line model depends on: the energy axis, the acquisition metadata
    (beam energy, detector resolution), the elements, the lines, the range and the order."""
    ax = spectra.axes_manager.signal_axes[0]
    md = spectra.metadata
    acq = md.get_item("Acquisition_instrument")
    acq = repr(sorted(acq.as_dictionary().items())) if acq is not None else ""
    rng = None if energy_range is None else tuple(float(v) for v in energy_range)
    return (float(ax.offset), float(ax.scale), int(ax.size), str(ax.units), acq,
            tuple(sorted(md.get_item("Sample.elements", []))), tuple(xray_lines), rng,
            int(background_order))


def _cached_design(spectra, xray_lines, energy_range=None, background_order=6):
    """:func:`database_design` (the design of exspy's model, without building it), memoised in
    this process: it depends only on the energy axis and metadata, so every cluster stack of a
    map (both workflows, interior and whole masks) shares it.
    """
    key = _design_key(spectra, xray_lines, energy_range, background_order)
    d = _DESIGNS.get(key)
    if d is None:
        d = database_design(spectra, xray_lines, energy_range, background_order)
        if len(_DESIGNS) > 32:
            _DESIGNS.clear()
        _DESIGNS[key] = d
    return d


class _LazyModel:
    """exspy's model of a fitted stack, built and filled in with the fitted values on first use."""

    def __init__(self, spectra, xray_lines, energy_range, background_order, design, single):
        self.args = (spectra, list(xray_lines), energy_range, background_order)
        self.design, self.single = design, single
        self.values = []          # (beta, cov) per spectrum, in stack order
        self._model = None

    def get(self):
        if self._model is None:
            self._model = self._build()
        return self._model

    def _build(self):
        m = build_line_model(*self.args)
        d = self.design
        scale = float(m.signal.axes_manager.signal_axes[0].scale)
        bg_comp = m.background_components[0]
        for j, value in enumerate(self.values):
            if value is None:        # an empty spectrum: not fitted
                continue
            beta, cov = value
            idx = () if self.single else (j,)
            for i, name in enumerate(d.names):
                m[name].A.map["values"][idx] = beta[i]
                m[name].A.map["std"][idx] = float(np.sqrt(max(cov[i, i], 0)))
                m[name].A.map["is_set"][idx] = True
            p = np.polynomial.Polynomial(beta[d.n_lines:], domain=list(d.t_domain),
                                         window=[-1, 1])
            coef = np.pad(p.convert().coef, (0, d.order + 1))[:d.order + 1] / scale
            for i in range(d.order + 1):
                par = getattr(bg_comp, f"a{i}")
                par.map["values"][idx] = float(coef[i])
                par.map["is_set"][idx] = True
        m.fetch_stored_values()
        return m


def poisson_linear_fit(y, X, variance=None, var_factor=1.0, n_iter=8, tol=1e-6):
    """Poisson maximum-likelihood fit of a linear model ``mu = X beta`` by iteratively
    reweighted least squares, with the parameter covariance.

    Hand-written because HyperSpy's linear fit scales its covariance by the reduced chi-square
    and does not iterate the Poisson weights ``1/mu``.

    Parameters
    ----------
    y : ndarray, shape (n_channels,)
        Counts (a sum of Poisson variables).
    X : ndarray, shape (n_channels, n_params)
    variance : ndarray, optional
        Variance spectrum of ``y`` when it is not Poisson (weighted sums, ``sum w^2 y``); the
        covariance then uses the sandwich form.
    var_factor : float
        ``Var(y) ~ var_factor * mu`` for the weights (1 for a hard-mask sum).

    Returns
    -------
    beta : ndarray (n_params,)
    cov : ndarray (n_params, n_params)
    mu : ndarray (n_channels,)
        The fitted model.
    """
    y = np.asarray(y, dtype=float)
    scale = np.linalg.norm(X, axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    v = np.maximum(uniform_filter1d(y, 5), VARIANCE_FLOOR)
    beta_s = None
    for _ in range(n_iter):
        w = 1.0 / (var_factor * v)
        Xw = Xs * w[:, None]
        F = Xs.T @ Xw
        new = np.linalg.solve(F, Xw.T @ y)
        mu = Xs @ new
        v = np.maximum(mu, VARIANCE_FLOOR)
        if beta_s is not None and np.max(np.abs(new - beta_s)) <= tol * np.max(np.abs(new)):
            beta_s = new
            break
        beta_s = new
    w = 1.0 / (var_factor * v)
    Xw = Xs * w[:, None]
    F_inv = np.linalg.inv(Xs.T @ Xw)
    if variance is None:
        cov_s = F_inv
    else:
        B = F_inv @ Xw.T
        cov_s = B @ (np.asarray(variance, dtype=float)[:, None] * B.T)
    beta = beta_s / scale
    cov = cov_s / np.outer(scale, scale)
    return beta, cov, Xs @ beta_s


@dataclass
class LineFit:
    """Fitted line intensities of one spectrum.

    Attributes
    ----------
    xray_lines : list of str
        The quantified lines, in the order of ``intensities``.
    intensities : ndarray
        Main-line areas (counts).
    covariance : ndarray
        Their covariance (counts^2), background and overlaps included.
    model : exspy model
        exspy's EDS model of the spectrum stack with the fitted values written in
        (``model.plot()``, ``model.get_lines_intensity()`` work; index ``index``). Built on
        first access: quantification itself needs only the model's design matrix.
    fitted : ndarray
        Model counts per channel in the fit window; ``energies`` the window's channel energies.
    reduced_chi2 : float
        Pearson chi^2 / degrees of freedom (about 1 when the model describes the spectrum).
    error_scale : float
        Factor applied to the Poisson standard errors: sqrt(reduced_chi2) when the fit is
        significantly worse than Poisson noise allows (model incomplete), otherwise 1.
    all_lines, all_intensities, all_covariance
        Every fitted family (quantified and nuisance).
    """

    xray_lines: list
    intensities: np.ndarray
    covariance: np.ndarray
    _model: object = field(repr=False)
    fitted: np.ndarray
    energies: np.ndarray
    observed: np.ndarray
    reduced_chi2: float
    all_lines: list = field(default_factory=list)
    all_intensities: np.ndarray = None
    all_covariance: np.ndarray = None
    background: np.ndarray = None
    index: int = 0
    error_scale: float = 1.0

    @property
    def sigma(self):
        return np.sqrt(np.diag(self.covariance))

    @property
    def model(self):
        return self._model.get() if isinstance(self._model, _LazyModel) else self._model


def _variance_of(spectrum):
    var = spectrum.metadata.get_item("Signal.Noise_properties.variance")
    if var is None or not hasattr(var, "data"):
        return None
    return np.asarray(var.data, dtype=float)


def _as_stack(spectra):
    """Counts as (n_spectra, n_channels) and whether the input was a single spectrum."""
    nd = spectra.axes_manager.navigation_dimension
    if nd > 1:
        raise ParameterError("Pass one spectrum or a 1-D stack of spectra (e.g. from "
                             "cluster_spectra), not a spectrum image.")
    y = np.asarray(spectra.data, dtype=float)
    return (y[None, :] if nd == 0 else y), nd == 0


def fit_line_intensities(spectra, xray_lines, energy_range=None, background_order=6,
                         variance=None):
    """Fit exspy's EDS model to a spectrum (or a stack); line intensities with covariances.

    The columns of the fit are those of exspy's model of the stack (its components are the same
    for every cluster; read from exspy's database once per energy axis and metadata, see
    :func:`_cached_design`);
    each spectrum is then fitted by :func:`poisson_linear_fit`. ``LineFit.model`` is that
    exspy model with the results written into its parameter maps (built on first access), so
    ``model.plot()`` and ``model.get_lines_intensity()`` work.

    Parameters
    ----------
    spectra : exspy EDSTEMSpectrum
        One spectrum, or a 1-D stack (``cluster_spectra``), of raw counts.
    xray_lines : list of str
        Lines to report, e.g. ``["Ag_La", "Cd_La", "S_Ka"]`` (see :func:`quant_lines`).
    energy_range : (float, float), optional
        Fit window in keV (default :func:`default_fit_range`).
    background_order : int
        Order of exspy's polynomial background (6, exspy's default).
    variance : ndarray, optional
        Variance spectra (same shape as the data) for weighted sums; read from
        ``metadata.Signal.Noise_properties.variance`` when None. Where it equals the counts
        (hard mask) the plain Poisson covariance is used.

    Returns
    -------
    list of LineFit or None
        One per spectrum (a list of one for a single spectrum); None for a spectrum without
        counts in the fit window (nothing to fit).
    """
    Y, single = _as_stack(spectra)
    if not np.all(np.isfinite(Y)) or np.any(Y < 0):
        raise DataError("The spectrum has negative or non-finite counts: quantify raw counts.")
    d = _cached_design(spectra, xray_lines, energy_range, background_order)
    full_ax = spectra.axes_manager.signal_axes[0]
    i0 = int(round((d.energies[0] - full_ax.offset) / full_ax.scale))
    n = d.X.shape[0]
    if variance is None:
        variance = _variance_of(spectra)
    V = None if variance is None else np.asarray(variance, float).reshape(Y.shape)
    model = _LazyModel(spectra, xray_lines, energy_range, background_order, d, single)
    sel = [d.names.index(xl) for xl in xray_lines]
    fits = []
    for j in range(Y.shape[0]):
        y = Y[j, i0:i0 + n]
        if not y.sum() > 0:   # nothing to fit: the caller reports this spectrum unquantified
            model.values.append(None)
            fits.append(None)
            continue
        v = None if V is None else V[j, i0:i0 + n]
        beta, cov, mu, chi2, scale2 = _fit_one(y, v, d.X)
        model.values.append((beta, cov))
        fits.append(LineFit(list(xray_lines), beta[sel], cov[np.ix_(sel, sel)], model, mu,
                            d.energies, y, chi2, list(d.names), beta[:d.n_lines],
                            cov[:d.n_lines, :d.n_lines],
                            background=d.X[:, d.n_lines:] @ beta[d.n_lines:],
                            index=j, error_scale=float(np.sqrt(scale2))))
    return fits


def _fit_one(y, v, X):
    """Poisson fit of one spectrum window ``y`` (variance spectrum ``v`` for weighted sums):
    ``(beta, cov, mu, reduced chi^2, factor applied to cov)``."""
    if v is not None and np.allclose(v, y):
        v = None  # hard mask: plain Poisson
    var_factor = 1.0 if v is None else max(v.sum() / max(y.sum(), 1e-12), 1e-12)
    beta, cov, mu = poisson_linear_fit(y, X, variance=v, var_factor=var_factor)
    dof = max(X.shape[0] - X.shape[1], 1)
    chi2 = float(np.sum((y - mu) ** 2 / np.maximum(mu, VARIANCE_FLOOR) / var_factor) / dof)
    # A model that misses something (an element not listed, a wrong detector resolution or
    # calibration) leaves chi^2/dof well above 1; then the Poisson covariance understates the
    # error and is scaled by chi^2/dof (Birge ratio), as HyperSpy's linear fit does. Within
    # statistical scatter of 1 (5 standard deviations) it is left exact.
    scale2 = chi2 if chi2 > 1 + CHI2_TOLERANCE * np.sqrt(2.0 / dof) else 1.0
    return beta, cov * scale2, mu, chi2, scale2


def window_line_intensities(spectra, xray_lines, line_width=(2.0, 2.0), windows_width=1.0,
                            integration_width=2.0):
    """exspy's background-window integration, with Poisson standard errors.

    ``I = N_peak - f (N_bg1 + N_bg2)``, ``f = n_peak / (n_bg1 + n_bg2)`` (channel counts of the
    windows, exspy's flat background), so ``Var(I) = N_peak + f^2 (N_bg1 + N_bg2)``. Fine for
    isolated lines; biased where lines overlap (Ag Lb1 on Cd La), which the fit handles.

    Returns
    -------
    intensities : ndarray (n_spectra, n_lines)
    covariances : ndarray (n_spectra, n_lines, n_lines), diagonal
    """
    s = spectra
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iw = s.estimate_integration_windows(windows_width=integration_width, xray_lines=xray_lines)
        bw = s.estimate_background_windows(line_width=list(line_width),
                                           windows_width=windows_width, xray_lines=xray_lines)
        net = s.get_lines_intensity(xray_lines=xray_lines, integration_windows=iw,
                                    background_windows=bw)
        gross = s.get_lines_intensity(xray_lines=xray_lines, integration_windows=iw)
    I = np.stack([np.atleast_1d(np.asarray(v.data, float)).ravel() for v in net], axis=-1)
    N_p = np.stack([np.atleast_1d(np.asarray(v.data, float)).ravel() for v in gross], axis=-1)
    ax = s.axes_manager.signal_axes[0]
    f = []
    for win, b in zip(iw, bw):
        idx = [float(ax.value2index(e)) for e in list(b) + list(win)]
        f.append((idx[5] - idx[4]) / ((idx[1] - idx[0]) + (idx[3] - idx[2])))
    var = N_p + np.array(f)[None, :] * np.clip(N_p - I, 0, None)
    cov = np.stack([np.diag(v) for v in var])
    return I, cov
