"""Cluster spectra and Cliff-Lorimer quantification with per-element uncertainties.

The chain (paper: "the association of each measurement with that cluster can be used as a
weighting to calculate a representative 'average' spectrum ... significantly higher
signal-to-noise ratio than any individual measurement"):

1. :func:`cluster_spectra` sums the **raw counts** of each cluster's pixels (hard mask, or
   membership probabilities as weights) over the navigation axes, in the original resolution.
2. :func:`fit_line_intensities` fits exspy's EDS model (polynomial background + one Gaussian per
   line, the lines of a family tied at their database weights) to a cluster spectrum by
   Poisson-weighted linear least squares and returns each family's main-line intensity *with its
   covariance*. Fitting (not windows) because Ag Lb1 (3.15 keV) sits on Cd La (3.13 keV) and
   In La (3.29 keV) is next to them. :func:`window_line_intensities` is exspy's quick
   background-window integration, kept for comparison.
3. :func:`cliff_lorimer` turns intensities into atomic percent with exspy's
   ``quantification(method="CL", composition_units="atomic")`` (k-factors on exspy's weight
   basis; ``navigation_mask=None`` because exspy otherwise zeroes spectra below 1 count per
   channel) and propagates the counting and k-factor uncertainties.

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

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError, ElementError, OutputError, ParameterError
from .kfactors import choose_line, defaulted_elements, load_kfactors

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


# ----------------------------------------------------------------------------------------------
# 1. representative spectra
# ----------------------------------------------------------------------------------------------
def _nav_shape(signal):
    return tuple(signal.data.shape[:-1])


def cluster_weights(labels, probabilities=None, clusters=None):
    """Pixel weights per cluster, shape (n_pixels, n_clusters), and the cluster ids.

    Parameters
    ----------
    labels : ndarray of int, shape (rows, cols)
        Cluster label per pixel, -1 = noise / unassigned (never quantified).
    probabilities : ndarray, shape (rows, cols, n_clusters), optional
        Membership probabilities (e.g. GMM ``predict_proba``); column ``j`` belongs to cluster
        ``clusters[j]`` (by default the sorted non-negative labels). When given, they are the
        weights; otherwise each pixel has weight 1 in its own cluster (hard mask).
    clusters : list of int, optional
        Which clusters (default: every label >= 0, sorted).
    """
    labels = np.asarray(labels)
    if labels.ndim < 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ParameterError("labels must be an integer array in the navigation shape "
                             "(rows, cols); -1 marks noise.")
    if clusters is None:
        clusters = sorted(int(c) for c in np.unique(labels) if c >= 0)
    clusters = [int(c) for c in clusters]
    if not clusters:
        raise DataError("No cluster to quantify: every label is -1 (noise); re-run the "
                        "clustering with other parameters.")
    flat = labels.reshape(-1)
    if probabilities is None:
        w = np.stack([(flat == c).astype(float) for c in clusters], axis=1)
    else:
        p = np.asarray(probabilities, dtype=float)
        if p.shape[:-1] != labels.shape or p.shape[-1] != len(clusters):
            raise ParameterError(f"probabilities must have shape {labels.shape + (len(clusters),)} "
                                 f"(navigation shape + one column per cluster), got {p.shape}.")
        if np.any(p < 0) or not np.all(np.isfinite(p)):
            raise ParameterError("probabilities must be finite and >= 0.")
        w = p.reshape(-1, len(clusters))
    return w, clusters


def _check_labels_shape(signal, labels):
    """The navigation shape, after checking that ``labels`` have it."""
    nav = _nav_shape(signal)
    if labels.shape != nav:
        raise ParameterError(f"labels have shape {labels.shape} but the spectrum image's "
                             f"navigation shape is {nav}: pass labels in the original "
                             "(un-binned) resolution.")
    return nav


def cluster_spectra(signal, labels, probabilities=None, clusters=None, block_rows=None):
    """Representative spectrum of each cluster: the (weighted) sum of its raw pixel spectra.

    The sum runs over the navigation axes in the original resolution, a block of rows at a time
    (or as a dask reduction when ``signal`` is lazy), so large maps never need a float copy.

    Parameters
    ----------
    signal : exspy.signals.EDSTEMSpectrum
        The raw-count spectrum image (rows, cols | channels).
    labels : ndarray of int, shape (rows, cols)
    probabilities : ndarray, optional
        Membership probabilities used as weights (see :func:`cluster_weights`).
    clusters : list of int, optional
    block_rows : int, optional
        Rows summed at a time for in-memory data.

    Returns
    -------
    exspy.signals.EDSTEMSpectrum
        Navigation axis ``cluster`` (one spectrum per cluster), same energy axis and metadata.
        ``metadata.Clusters`` holds ``ids``, ``n_pixels`` (hard count of labelled pixels),
        ``weight_sum`` and ``weighted`` ; ``metadata.Signal.Noise_properties.variance`` holds
        the variance spectrum ``sum_x w_x^2 y_x`` (equal to the spectrum for a hard mask).
    """
    labels = np.asarray(labels)
    nav = _check_labels_shape(signal, labels)
    w, clusters = cluster_weights(labels, probabilities, clusters)
    n_ch = signal.data.shape[-1]
    data = signal.data
    if getattr(signal, "_lazy", False):
        spec, var = _lazy_sums(signal, w, hard=probabilities is None)
    elif probabilities is None:
        # hard masks: sum each cluster's rows in the data's own dtype (no float copy of the map;
        # ~5x faster than the weight-matrix product below for uint8 counts)
        d2 = np.asarray(data).reshape((-1, n_ch))
        step = block_rows * nav[-1] if block_rows else max(1, int(2e7 // max(n_ch, 1)))
        acc = np.int64 if np.issubdtype(d2.dtype, np.integer) else np.float64
        flat = labels.reshape(-1)
        spec = np.zeros((len(clusters), n_ch))
        for i, c in enumerate(clusters):
            rows = np.flatnonzero(flat == c)
            for j0 in range(0, rows.size, step):
                spec[i] += d2[rows[j0:j0 + step]].sum(axis=0, dtype=acc)
        var = spec.copy()
    else:
        d2 = np.asarray(data).reshape((-1, n_ch))
        step = block_rows * nav[-1] if block_rows else max(1, int(2e7 // max(n_ch, 1)))
        spec = np.zeros((len(clusters), n_ch))
        var = np.zeros((len(clusters), n_ch))
        for i0 in range(0, d2.shape[0], step):
            blk = d2[i0:i0 + step].astype(float)
            wb = w[i0:i0 + step]
            spec += wb.T @ blk
            var += (wb ** 2).T @ blk
    return _spectra_signal(signal, spec, var, clusters, labels, w.sum(0), probabilities is not None)


def _lazy_sums(signal, w, hard):
    """Weighted sums ``w.T @ data`` of a lazy map in one pass over its chunks (and the variance
    sums ``(w**2).T @ data``, which equal them for a hard 0/1 mask)."""
    import dask.array as da

    d2 = signal.data.reshape((-1, signal.data.shape[-1]))
    spec = da.tensordot(w.T, d2, axes=1)
    if hard:
        spec = np.asarray(spec.compute(), dtype=float)
        return spec, spec.copy()
    var = da.tensordot((w ** 2).T, d2, axes=1)
    spec, var = da.compute(spec, var)
    return np.asarray(spec, dtype=float), np.asarray(var, dtype=float)


def _spectra_signal(signal, spec, var, clusters, labels, weight_sum, weighted):
    """The stack returned by :func:`cluster_spectra`, from its sums."""
    if np.any(spec < 0) or not np.all(np.isfinite(spec)):
        raise DataError("The spectrum image has negative or non-finite counts: quantification "
                        "needs raw counts (not normalised or denoised data).")
    out = _new_like(signal, spec, title="Cluster spectra")
    out.axes_manager.navigation_axes[0].name = "cluster"
    n_pix = [int(np.count_nonzero(labels == c)) for c in clusters]
    out.metadata.set_item("Clusters.ids", list(clusters))
    out.metadata.set_item("Clusters.n_pixels", n_pix)
    out.metadata.set_item("Clusters.weight_sum", [float(v) for v in weight_sum])
    out.metadata.set_item("Clusters.weighted", bool(weighted))
    out.metadata.set_item("Signal.Noise_properties.variance", _new_like(signal, var, title="var"))
    return out


def _interior_and_whole_spectra(signal, interior, labels, clusters=None):
    """:func:`cluster_spectra` of two hard labelings; a lazy map is read once for both."""
    if not getattr(signal, "_lazy", False):
        inner = cluster_spectra(signal, interior, None, clusters)
        return inner, cluster_spectra(signal, labels, None, inner.metadata.Clusters.ids)
    labels, interior = np.asarray(labels), np.asarray(interior)
    _check_labels_shape(signal, labels)
    wi, ids = cluster_weights(interior, None, clusters)
    ww, _ = cluster_weights(labels, None, ids)
    spec, var = _lazy_sums(signal, np.concatenate([wi, ww], axis=1), hard=True)
    k = len(ids)
    return (_spectra_signal(signal, spec[:k], var[:k], ids, interior, wi.sum(0), False),
            _spectra_signal(signal, spec[k:], var[k:], ids, labels, ww.sum(0), False))


def _new_like(signal, data, title=None):
    """An EDSTEMSpectrum with ``signal``'s energy axis and metadata but new data."""
    import exspy

    s = exspy.signals.EDSTEMSpectrum(np.asarray(data, dtype=float))
    src = signal.axes_manager.signal_axes[0]
    ax = s.axes_manager.signal_axes[0]
    ax.name, ax.units, ax.scale, ax.offset = src.name, src.units, src.scale, src.offset
    md = signal.metadata.as_dictionary()
    md.pop("Simulation", None)  # ground truth stays with the map, not its sums
    md.get("Signal", {}).pop("Noise_properties", None)
    s.metadata.add_dictionary(md)
    s.metadata.Signal.signal_type = "EDS_TEM"
    if title:
        s.metadata.General.title = title
    return s


def get_spectrum(spectra, index):
    """One spectrum (and its variance spectrum) of a stack from :func:`cluster_spectra`."""
    s = spectra.inav[index]
    var = spectra.metadata.get_item("Signal.Noise_properties.variance")
    if var is not None and var.axes_manager.navigation_dimension:
        v = var.inav[index]
        s.metadata.set_item("Signal.Noise_properties.variance", v)
    return s


# ----------------------------------------------------------------------------------------------
# 2. line intensities
# ----------------------------------------------------------------------------------------------
def _energy_range(signal):
    ax = signal.axes_manager.signal_axes[0]
    return float(ax.low_value), float(ax.high_value)


def _beam_energy(signal):
    try:
        return float(signal.metadata.Acquisition_instrument.TEM.beam_energy)
    except AttributeError:
        return 200.0


def quant_lines(signal, elements=None, kfactors=None):
    """The line quantified for each element, chosen by :func:`helpers.kfactors.choose_line`.

    Returns
    -------
    list of KFactor
        In element order; ``.xray_line`` is exspy's name (e.g. ``"Ag_La"``).
    """
    table = load_kfactors(kfactors)
    if elements is None:
        elements = list(signal.metadata.get_item("Sample.elements", []))
    if len(elements) < 2:
        raise ElementError("Quantification needs at least two elements: set them with "
                           "ELEMENTS=[...] or in the file's metadata.")
    rng = _energy_range(signal)
    lines = [choose_line(el, rng, _beam_energy(signal), table) for el in elements]
    missing = defaulted_elements(lines, kfactors)
    if missing:
        from .errors import KFactorWarning

        name = getattr(kfactors, "name", None) or str(kfactors)
        warnings.warn(f"k-factor file {name} lacks {', '.join(missing)}: using the package's "
                      "default 200 kV values for them (add rows to use your own).",
                      KFactorWarning, stacklevel=2)
    return lines


def _family_lines(element, line):
    """exspy database lines of the family of ``line`` (``{name: (energy, weight)}``)."""
    from exspy.material import elements as db

    lines = db[element]["Atomic_properties"]["Xray_lines"]
    return {f"{element}_{ln}": (float(lines[ln]["energy (keV)"]), float(lines[ln]["weight"]))
            for ln in lines.keys() if ln[0] == line[0]}


def default_fit_range(signal, xray_lines):
    """Energy window (keV) of the fit: from just below the lowest line of the quantified families
    to just above their highest line, inside the spectrum and below the beam energy."""
    energies = []
    for xl in xray_lines:
        el, ln = xl.split("_", 1)
        fam = _family_lines(el, ln)
        main = fam[xl][0]
        # the family's lines near the main one (L families span ~1 keV)
        energies += [e for e, _ in fam.values() if abs(e - main) < 1.5]
    lo_s, hi_s = _energy_range(signal)
    lo = max(lo_s, FIT_MIN_ENERGY, min(energies) - FIT_MARGIN_LOW)
    hi = min(hi_s, max(energies) + FIT_MARGIN_HIGH, _beam_energy(signal))
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
    if energy_range is None:
        energy_range = default_fit_range(spectrum, xray_lines)
    lo, hi = energy_range
    s = spectrum.isig[float(lo):float(hi)].deepcopy()
    elements = sorted({xl.split("_")[0] for xl in xray_lines}
                      | set(s.metadata.get_item("Sample.elements", [])))
    s.metadata.set_item("Sample.elements", elements)
    s.metadata.set_item("Sample.xray_lines", list(xray_lines))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = s.create_model(auto_background=False, auto_add_lines=False)
        m.add_polynomial_background(order=background_order)
        # every family (Ka, La, Ma) of every element that lies inside the window
        lines = s._get_lines_from_elements(elements, only_one=False, only_lines=("Ka", "La", "Ma"))
        m.add_family_lines(list(lines))
    missing = [xl for xl in xray_lines if xl not in [c.name for c in m.xray_lines]]
    if missing:
        raise ElementError(f"Lines {missing} are outside the fit range {lo:.2f}-{hi:.2f} keV: "
                           "widen energy_range or remove those elements.")
    return m


def _gauss_channel(energies, width, centre, sigma):
    """A unit-area Gaussian integrated over channels (same discretisation as the simulator)."""
    from scipy.special import erf

    lo = (energies - width / 2 - centre) / (np.sqrt(2) * sigma)
    hi = (energies + width / 2 - centre) / (np.sqrt(2) * sigma)
    return 0.5 * (erf(hi) - erf(lo))


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
        col = _gauss_channel(E, width, main.centre.value, main.sigma.value)
        for comp in model.family_lines:
            if comp.A.twin is main.A:
                col = col + comp.A.value * _gauss_channel(E, width, comp.centre.value,
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
    """:func:`design_matrix` of :func:`build_line_model`, memoised in this process.

    Building exspy's model compiles one sympy expression per Gaussian (about 1.5 s for the
    ~30 lines of a 6-element sample) while the design matrix it yields depends only on the
    energy axis and metadata: every cluster stack of a map (both workflows, interior and
    whole masks) shares it.
    """
    key = _design_key(spectra, xray_lines, energy_range, background_order)
    d = _DESIGNS.get(key)
    if d is None:
        d = design_matrix(build_line_model(spectra, xray_lines, energy_range, background_order))
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
        for j, (beta, cov) in enumerate(self.values):
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
    from scipy.ndimage import uniform_filter1d

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

    The columns of the fit come from exspy's model of the stack (its components are the same
    for every cluster; built once per energy axis and metadata, see :func:`_cached_design`);
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
    list of LineFit
        One per spectrum (a list of one for a single spectrum).
    """
    Y, single = _as_stack(spectra)
    if not np.all(np.isfinite(Y)) or np.any(Y < 0):
        raise DataError("The spectrum has negative or non-finite counts: quantify raw counts.")
    if np.any(Y.sum(-1) <= 0):
        raise DataError("A spectrum is empty (zero counts): quantify clusters that have pixels.")
    d = _cached_design(spectra, xray_lines, energy_range, background_order)
    full_ax = spectra.axes_manager.signal_axes[0]
    i0 = int(round((d.energies[0] - full_ax.offset) / full_ax.scale))
    n = d.X.shape[0]
    if variance is None:
        variance = _variance_of(spectra)
    V = None if variance is None else np.asarray(variance, float).reshape(Y.shape)
    model = _LazyModel(spectra, xray_lines, energy_range, background_order, d, single)
    fits = []
    for j in range(Y.shape[0]):
        y = Y[j, i0:i0 + n]
        v = None if V is None else V[j, i0:i0 + n]
        if v is not None and np.allclose(v, y):
            v = None  # hard mask: plain Poisson
        var_factor = 1.0 if v is None else max(v.sum() / max(y.sum(), 1e-12), 1e-12)
        beta, cov, mu = poisson_linear_fit(y, d.X, variance=v, var_factor=var_factor)
        dof = max(n - d.X.shape[1], 1)
        chi2 = float(np.sum((y - mu) ** 2 / np.maximum(mu, VARIANCE_FLOOR) / var_factor) / dof)
        # A model that misses something (an element not listed, a wrong detector resolution or
        # calibration) leaves chi^2/dof well above 1; then the Poisson covariance understates
        # the error and is scaled by chi^2/dof (Birge ratio), as HyperSpy's linear fit does.
        # Within statistical scatter of 1 (5 standard deviations) it is left exact.
        scale2 = chi2 if chi2 > 1 + CHI2_TOLERANCE * np.sqrt(2.0 / dof) else 1.0
        cov = cov * scale2
        model.values.append((beta, cov))
        sel = [d.names.index(xl) for xl in xray_lines]
        fits.append(LineFit(list(xray_lines), beta[sel], cov[np.ix_(sel, sel)], model, mu,
                            d.energies, y, chi2, list(d.names), beta[:d.n_lines],
                            cov[:d.n_lines, :d.n_lines], background=d.X[:, d.n_lines:] @ beta[d.n_lines:],
                            index=j, error_scale=float(np.sqrt(scale2))))
    return fits


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


# ----------------------------------------------------------------------------------------------
# 3. Cliff-Lorimer with uncertainties
# ----------------------------------------------------------------------------------------------
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


def _select(spectra, keep):
    """The spectra ``keep`` (indices) of a stack, with their variance and cluster metadata."""
    out = spectra.inav[keep] if len(keep) > 1 else spectra.inav[keep[0]:keep[0] + 1]
    var = spectra.metadata.get_item("Signal.Noise_properties.variance")
    if var is not None:
        out.metadata.set_item("Signal.Noise_properties.variance",
                              _new_like(spectra, var.data[keep], title="var"))
    for key in ("ids", "n_pixels", "weight_sum"):
        vals = list(spectra.metadata.Clusters[key])
        out.metadata.Clusters[key] = [vals[i] for i in keep]
    return out


def _atomic_weights(elements):
    from exspy.material import elements as db

    return np.array([float(db[e]["General_properties"]["atomic_weight"]) for e in elements])


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


def _exspy_cl_signals(spectra, I, k, xray_lines):
    """exspy's public ``quantification(method="CL", composition_units="atomic")`` on
    intensities ``I`` (n_spectra, n_lines); returns at% of the same shape."""
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
            res = spectra.quantification(sigs, method="CL", factors=list(k),
                                         composition_units="atomic", navigation_mask=None,
                                         plot_result=False)
    finally:
        hs.preferences.General.show_progressbar = old
    res = res[0] if isinstance(res, tuple) else res
    return np.stack([np.atleast_1d(np.asarray(r.data, float)).ravel() for r in res], axis=-1)


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
    at = _exspy_cl(spectra, I, k, xray_lines)
    A = _atomic_weights(elements)
    out = []
    for j in range(I.shape[0]):
        x, J_I, J_k = cl_jacobians(I[j], k, A)
        if not np.allclose(at[j], 100 * x, atol=1e-6):  # guards the propagation formula
            raise RuntimeError("Internal check failed: exspy's CL result differs from the "
                               "propagation formula.")
        cov_c = 1e4 * J_I @ C[j] @ J_I.T
        cov_k = 1e4 * J_k @ np.diag(k_err ** 2) @ J_k.T
        out.append(Composition(elements, xray_lines, at[j], cov_c, cov_c + cov_k, I[j], C[j],
                               k, k_err, method))
    return out


def quantify_spectra(spectra, elements=None, kfactors=None, method="fit", energy_range=None,
                     background_order=6):
    """Line intensities (``method="fit"`` or ``"windows"``) and CL composition of a spectrum or
    of each spectrum of a 1-D stack.

    Returns
    -------
    list of Composition
        ``.fit`` holds the :class:`LineFit` (model, fitted curve) for ``method="fit"``.
    """
    lines = quant_lines(spectra, elements, kfactors)
    xls = [kf.xray_line for kf in lines]
    if method == "fit":
        fits = fit_line_intensities(spectra, xls, energy_range, background_order)
        comps = cliff_lorimer(spectra, np.array([f.intensities for f in fits]),
                              np.array([f.covariance for f in fits]), lines, "fit")
        for c, f in zip(comps, fits):
            c.fit = f
    elif method == "windows":
        I, cov = window_line_intensities(spectra, xls)
        comps = cliff_lorimer(spectra, I, cov, lines, "windows")
    else:
        raise ParameterError(f"method must be 'fit' or 'windows', got {method!r}.")
    return comps


def quantify_spectrum(spectrum, elements=None, kfactors=None, method="fit", energy_range=None,
                      background_order=6):
    """:func:`quantify_spectra` for one spectrum; returns its :class:`Composition`."""
    if spectrum.axes_manager.navigation_dimension != 0:
        raise ParameterError("quantify_spectrum takes one spectrum: use quantify_spectra for a "
                             "stack, or helpers.quant.get_spectrum(spectra, i).")
    return quantify_spectra(spectrum, elements, kfactors, method, energy_range,
                            background_order)[0]


@dataclass
class ClusterQuant:
    """Quantification of every cluster of one segmentation.

    Attributes
    ----------
    workflow : int or str
    clusters : list of int
    compositions : dict ``{cluster: Composition}``
    spectra : EDSTEMSpectrum stack from :func:`cluster_spectra`
    """

    workflow: object
    clusters: list
    compositions: dict
    spectra: object
    method: str = "fit"
    labels: np.ndarray = field(default=None, repr=False)

    @property
    def elements(self):
        return self.compositions[self.clusters[0]].elements

    def table(self):
        """Long table: workflow, cluster, n_pixels, element, at_percent, at_percent_err
        (total), at_percent_err_counting, xray_line, method."""
        import pandas as pd

        rows = []
        for c in self.clusters:
            comp = self.compositions[c]
            for e, xl, x, et, ec in zip(comp.elements, comp.xray_lines, comp.at_percent,
                                        comp.err_total, comp.err_counting):
                rows.append(dict(workflow=self.workflow, cluster=c, n_pixels=comp.n_pixels,
                                 element=e, at_percent=float(x), at_percent_err=float(et),
                                 at_percent_err_counting=float(ec), xray_line=xl,
                                 method=self.method))
        return pd.DataFrame(rows)


def interior_labels(labels, min_fraction=0.1, min_pixels=10):
    """Labels with each cluster's boundary pixels set to -1 (a one-pixel erosion of its mask).

    Why: a pixel on a grain boundary holds two phases (side by side in the probe, through the
    foil, or in one 2x2 block of the binned grid the clusters were found on), so the boundary
    pixels of a cluster bias its spectrum towards its neighbours. On simulated hea6 the
    interior pixels' composition was 2-3x closer to the true phase than the whole mask's.
    A cluster whose interior would keep fewer than ``min_fraction`` of its pixels (or fewer
    than ``min_pixels``) keeps all of them (small particles, thin lines).
    """
    from scipy import ndimage

    lab = np.asarray(labels)
    out = np.full(lab.shape, -1, dtype=lab.dtype)
    for c in np.unique(lab[lab >= 0]):
        m = lab == c
        inner = ndimage.binary_erosion(m, structure=np.ones((3, 3), bool))
        keep = inner if inner.sum() >= max(min_pixels, min_fraction * m.sum()) else m
        out[keep] = c
    return out


def quantify_clusters(signal, labels, probabilities=None, workflow=1, elements=None,
                      kfactors=None, method="fit", clusters=None, min_pixels=1,
                      exclude_boundary=True):
    """Representative spectrum and composition (at% ± σ) of every cluster.

    Parameters
    ----------
    signal : EDSTEMSpectrum
        Raw-count spectrum image.
    labels : ndarray of int (rows, cols)
        -1 = noise, never quantified.
    probabilities : ndarray (rows, cols, n_clusters), optional
        Use membership probabilities as weights (otherwise hard masks).
    workflow : int or str
        Tag carried into the tables (1 = PCA+GMM, 2 = UMAP+HDBSCAN).
    elements, kfactors
        Default: the signal's elements and the package's 200 kV table.
    method : {"fit", "windows"}
    min_pixels : int
        Clusters with fewer labelled pixels are skipped.
    exclude_boundary : bool
        Hard masks only: quantify each cluster from its interior pixels
        (:func:`interior_labels`) and add a *segmentation* uncertainty, the per-element
        difference between the whole-mask and the interior compositions, to ``cov_total``
        (it measures how much the answer depends on where the cluster's edge is drawn).
        False = the paper's plain mask of every pixel.

    Returns
    -------
    ClusterQuant
        ``n_pixels`` of each composition is the number of pixels (or weight) quantified.
    """
    use_interior = exclude_boundary and probabilities is None
    if use_interior:
        spectra, whole = _interior_and_whole_spectra(signal, interior_labels(labels), labels,
                                                     clusters)
    else:
        spectra = cluster_spectra(signal, labels, probabilities, clusters)
    ids = list(spectra.metadata.Clusters.ids)
    n_pix = list(spectra.metadata.Clusters.n_pixels)
    wsum = list(spectra.metadata.Clusters.weight_sum)
    keep = [i for i in range(len(ids)) if n_pix[i] >= min_pixels and wsum[i] > 0]
    if not keep:
        raise DataError(f"No cluster has at least {min_pixels} pixels: lower min_pixels.")
    if len(keep) < len(ids):
        spectra = _select(spectra, keep)
        if use_interior:
            whole = _select(whole, keep)
    kept = [ids[i] for i in keep]
    seg = {}
    if use_interior:
        # interior and whole-mask spectra fitted as one stack: one model, one exspy CL call
        both = _new_like(spectra, np.concatenate([spectra.data, whole.data]),
                         title=spectra.metadata.General.title)
        both_comps = quantify_spectra(both, elements, kfactors, method)
        comps = both_comps[:len(kept)]
        for c, comp in zip(kept, both_comps[len(kept):]):
            seg[c] = comp.at_percent  # whole-mask composition
    else:
        comps = quantify_spectra(spectra, elements, kfactors, method)
    out = {}
    for c, i, comp in zip(kept, keep, comps):
        comp.n_pixels = float(wsum[i]) if probabilities is not None else int(n_pix[i])
        if c in seg:
            d = seg[c] - comp.at_percent
            comp.err_segmentation = np.abs(d)
            comp.cov_total = comp.cov_total + np.diag(d ** 2)
        out[c] = comp
    comps = out
    return ClusterQuant(workflow, kept, comps, spectra, method, np.asarray(labels))


# ----------------------------------------------------------------------------------------------
# the two workflows' labels, for notebooks 05 and 06
# ----------------------------------------------------------------------------------------------
LABEL_FILES = {1: "labels_workflow1.npy", 2: "labels_workflow2.npy"}


def soft_weights(labels, probabilities, clusters=None):
    """Per-cluster weights (rows, cols, n_clusters) from a workflow's probabilities.

    Workflow 1 (GMM) gives posteriors per cluster (rows, cols, k): used as they are, columns
    restricted to ``clusters``. Workflow 2 (HDBSCAN) gives one membership strength per pixel
    (rows, cols): it weights the pixel in its own cluster only. Noise pixels get weight 0.
    """
    labels = np.asarray(labels)
    clusters = sorted(int(c) for c in np.unique(labels) if c >= 0) if clusters is None \
        else list(clusters)
    p = np.asarray(probabilities, float)
    if p.ndim == labels.ndim + 1:
        if p.shape[-1] <= max(clusters):
            raise ParameterError("probabilities have fewer columns than the cluster labels.")
        w = p[..., clusters]
        return np.where((labels >= 0)[..., None], w, 0.0)
    if p.shape != labels.shape:
        raise ParameterError("probabilities must be (rows, cols) or (rows, cols, n_clusters).")
    return np.stack([np.where(labels == c, p, 0.0) for c in clusters], axis=-1)


def workflow_labels(signal, output_dir=None, n_clusters=4, n_components=None, bin_factor=2,
                    min_cluster_size=None, min_samples=None, umap_input="pca", random_state=0):
    """Labels (and probabilities) of both workflows on the original grid.

    Read from ``output_dir/results/labels_workflow{1,2}.npy`` (and
    ``probabilities_workflow{1,2}.npy`` when present) when notebooks 03 and 04 wrote them there
    (batch runs), otherwise computed with :func:`helpers.cluster.workflow1` and
    :func:`helpers.cluster.workflow2` (content-cached, so free after notebooks 03 and 04).

    Returns
    -------
    dict ``{1: (labels, probabilities or None), 2: (labels, probabilities or None)}``
    """
    from pathlib import Path

    nav = _nav_shape(signal)
    out = {}
    for wf, name in LABEL_FILES.items():
        path = None if output_dir is None else Path(output_dir) / "results" / name
        if path is not None and path.exists():
            lab = np.load(path, allow_pickle=False)
            if lab.shape != nav:
                raise DataError(f"{path} has shape {lab.shape}, but the data's navigation shape "
                                f"is {nav}: it belongs to another input; re-run notebooks 03-04.")
            prob = None
            ppath = path.with_name(f"probabilities_workflow{wf}.npy")
            if ppath.exists():  # written beside the labels by helpers.cluster.save_labels
                p = np.load(ppath, allow_pickle=False)
                prob = p if p.shape[:2] == nav else None
            out[wf] = (lab.astype(int), prob)
            continue
        from . import cluster

        if wf == 1:
            r = cluster.workflow1(signal, n_clusters=n_clusters, n_components=n_components,
                                  bin_factor=bin_factor, random_state=random_state)
        else:
            r = cluster.workflow2(signal, min_cluster_size=min_cluster_size,
                                  min_samples=min_samples, umap_input=umap_input,
                                  n_components=n_components, bin_factor=bin_factor,
                                  random_state=random_state)
        out[wf] = (np.asarray(r.labels, int), r.probabilities)
    return out


def quantify_workflows(signal, labels, weighted=False, method="fit", elements=None,
                       kfactors=None, min_pixels=1, exclude_boundary=True):
    """:func:`quantify_clusters` for each workflow of ``labels`` (from :func:`workflow_labels`).

    ``weighted=True`` uses the workflows' probabilities as weights (:func:`soft_weights`) where
    they are available, hard masks otherwise; ``exclude_boundary`` applies to hard masks.

    Returns
    -------
    dict ``{workflow: ClusterQuant}``; a workflow without any cluster is left out.
    """
    out = {}
    for wf, (lab, prob) in labels.items():
        if not np.any(np.asarray(lab) >= 0):
            continue
        w = soft_weights(lab, prob) if (weighted and prob is not None) else None
        out[wf] = quantify_clusters(signal, lab, probabilities=w, workflow=wf, elements=elements,
                                    kfactors=kfactors, method=method, min_pixels=min_pixels,
                                    exclude_boundary=exclude_boundary)
    if not out:
        raise DataError("Neither workflow produced a cluster: nothing to quantify. Check the "
                        "clustering parameters in notebooks 03 and 04.")
    return out


def truth_table(quant, truth):
    """Compare a workflow's cluster compositions with a demo's ground truth.

    Each cluster is matched to the phase most of its pixels belong to. Returns a long table:
    cluster, phase, purity (fraction of the cluster's pixels in that phase), element,
    at_percent, true_at_percent, error, z_counting (error / counting σ).
    """
    import pandas as pd

    rows = []
    spectra_ids = list(quant.clusters)
    for c in spectra_ids:
        comp = quant.compositions[c]
        lab = quant.labels if getattr(quant, "labels", None) is not None else None
        if lab is None:
            raise ParameterError("truth_table needs the labels: pass a ClusterQuant from "
                                 "quantify_clusters.")
        tl = truth.labels[lab == c]
        tl = tl[tl >= 0]
        if tl.size == 0:
            continue
        ph = int(np.bincount(tl).argmax())
        purity = float(np.mean(truth.labels[lab == c] == ph))
        tr = truth.compositions[truth.phase_names[ph]]
        for e, x, sc in zip(comp.elements, comp.at_percent, comp.err_counting):
            t = tr.get(e, 0.0)
            rows.append(dict(cluster=c, phase=truth.phase_names[ph], purity=purity, element=e,
                             at_percent=float(x), true_at_percent=float(t),
                             error=float(x - t), z_counting=float((x - t) / sc) if sc > 0
                             else np.nan))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# tables and files
# ----------------------------------------------------------------------------------------------
def composition_table(quant, error="total", digits=2):
    """Table-1-style wide table: rows = elements, columns = clusters, cells ``"x ± σ"``.

    Parameters
    ----------
    quant : ClusterQuant
    error : {"total", "counting"}
    """
    import pandas as pd

    if error not in ("total", "counting"):
        raise ParameterError("error must be 'total' or 'counting'.")
    cols = {}
    for c in quant.clusters:
        comp = quant.compositions[c]
        err = comp.err_total if error == "total" else comp.err_counting
        cols[f"cluster {c}"] = [f"{x:.{digits}f} ± {e:.{digits}f}" for x, e in
                                zip(comp.at_percent, err)]
    df = pd.DataFrame(cols, index=quant.elements)
    df.index.name = f"workflow {quant.workflow} (at%)"
    return df


def method_difference(fit_quants, window_quants):
    """At% from windows minus at% from the fit for every (workflow, cluster, element), sorted by
    the size of the difference (``{workflow: ClusterQuant}`` dicts of both methods)."""
    import pandas as pd

    rows = []
    for wf, qf in fit_quants.items():
        qw = window_quants.get(wf)
        if qw is None:
            continue
        for c in qf.clusters:
            if c not in qw.compositions:
                continue
            f, w = qf.compositions[c], qw.compositions[c]
            for i, e in enumerate(f.elements):
                rows.append(dict(workflow=wf, cluster=c, element=e, at_percent_fit=f.at_percent[i],
                                 err_counting_fit=f.err_counting[i],
                                 at_percent_windows=w.at_percent[i],
                                 windows_minus_fit=w.at_percent[i] - f.at_percent[i]))
    df = pd.DataFrame(rows)
    return df.reindex(df["windows_minus_fit"].abs().sort_values(ascending=False).index) \
        .reset_index(drop=True)


def results_dir(output_dir=None):
    """Where results go: ``OUTPUT_DIR/results``, or ``<project>/runs/interactive/results``."""
    from pathlib import Path

    if output_dir is None:
        return Path(__file__).resolve().parent.parent / "runs" / "interactive" / "results"
    return Path(output_dir) / "results"


def kfactor_table(signal, elements=None, kfactors=None):
    """The line and k-factor (± 1σ) used for each element, as a DataFrame."""
    import pandas as pd

    lines = quant_lines(signal, elements, kfactors)
    return pd.DataFrame([dict(element=kf.element, line=kf.xray_line, k_factor=kf.k,
                              k_factor_err=kf.k_err, relative_err=kf.k_err / kf.k)
                         for kf in lines]).set_index("element")


COMPOSITION_COLUMNS = ["workflow", "cluster", "n_pixels", "element", "at_percent",
                       "at_percent_err"]


def write_contract_csv(table, results_dir, stem, columns):
    """Write ``<stem>.csv`` (only ``columns``: the runner's contract) and ``<stem>_detail.csv``
    (every column) into ``results_dir``, creating it; returns the path of ``<stem>.csv``."""
    from pathlib import Path

    results_dir = Path(results_dir)
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the results folder {results_dir} ({exc}): choose a "
                          "writable OUTPUT_DIR.") from None
    path = results_dir / f"{stem}.csv"
    table[columns].to_csv(path, index=False)
    table.to_csv(results_dir / f"{stem}_detail.csv", index=False)
    return path


def write_compositions(quants, results_dir):
    """Write ``compositions.csv`` (the runner's contract columns, total σ) and
    ``compositions_detail.csv`` (plus counting σ, line and method) into ``results_dir``.

    Returns
    -------
    pathlib.Path of compositions.csv
    """
    import pandas as pd

    df = pd.concat([q.table() for q in quants], ignore_index=True)
    path = write_contract_csv(df, results_dir, "compositions", COMPOSITION_COLUMNS)
    return path


# ----------------------------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------------------------
def plot_cluster_spectrum(comp, ax=None, label_lines=True, log=False, title=None):
    """A cluster spectrum with its fitted model, background and quantified lines labelled.

    Parameters
    ----------
    comp : Composition from ``method="fit"`` (uses ``comp.fit``)
    """
    import matplotlib.pyplot as plt

    if comp.fit is None:
        raise ParameterError("plot_cluster_spectrum needs a fitted composition (method='fit').")
    lf = comp.fit
    ax = ax or plt.subplots(figsize=(8, 3.2))[1]
    ax.plot(lf.energies, lf.observed, color="0.55", lw=0.8, drawstyle="steps-mid", label="counts")
    ax.plot(lf.energies, lf.fitted, color="C3", lw=1.0, label="fitted model")
    ax.plot(lf.energies, lf.background, color="C0", lw=0.8, ls="--", label="background")
    if label_lines:
        from exspy.material import elements as db

        top = lf.observed.max()
        for xl, I in zip(comp.xray_lines, comp.intensities):
            el, ln = xl.split("_", 1)
            e = float(db[el]["Atomic_properties"]["Xray_lines"][ln]["energy (keV)"])
            i = int(np.argmin(np.abs(lf.energies - e)))
            ax.axvline(e, color="0.8", lw=0.6, zorder=0)
            ax.annotate(f"{el} {ln}", (e, lf.observed[i]), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=8, rotation=90,
                        va="bottom")
        ax.set_ylim(0.5 if log else 0, top * (1.35 if not log else 3))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("Energy (keV)")
    ax.set_ylabel("Counts per channel")
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_pixel_vs_cluster(signal, labels, cluster, ax=None, energy_range=(1.5, 10.5)):
    """One pixel's spectrum next to its cluster's summed spectrum (scaled to the same total):
    why averaging raises the signal-to-noise ratio."""
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    ax = ax or plt.subplots(figsize=(8, 3.2))[1]
    idx = np.argwhere(labels == cluster)
    if idx.size == 0:
        raise ParameterError(f"Cluster {cluster} has no pixels.")
    r, c = idx[len(idx) // 2]
    e_ax = signal.axes_manager.signal_axes[0]
    E = np.asarray(e_ax.axis)
    pix = np.asarray(signal.data[r, c], dtype=float)
    tot = np.asarray(cluster_spectra(signal, labels, clusters=[cluster]).data[0], float)
    sel = (E >= energy_range[0]) & (E <= energy_range[1])
    n_pix = int((labels == cluster).sum())
    ax.plot(E[sel], tot[sel] / n_pix, color="C3", lw=1,
            label=f"cluster {cluster}: sum of {n_pix} pixels / {n_pix} ({tot.sum():.3g} counts)")
    ax.plot(E[sel], pix[sel], color="0.4", lw=0.8, drawstyle="steps-mid",
            label=f"one pixel ({pix.sum():.0f} counts)")
    ax.set_xlabel("Energy (keV)")
    ax.set_ylabel("Counts per channel")
    ax.legend(fontsize=8)
    ax.set_title("One pixel vs the cluster average")
    return ax


def plot_compositions(quant, ax=None, error="total", elements=None):
    """Grouped bar chart: at% of each element per cluster, with ±1σ error bars."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    els = elements or quant.elements
    n = len(quant.clusters)
    width = 0.8 / n
    xs = np.arange(len(els))
    for j, c in enumerate(quant.clusters):
        comp = quant.compositions[c]
        idx = [comp.elements.index(e) for e in els]
        err = (comp.err_total if error == "total" else comp.err_counting)[idx]
        ax.bar(xs + (j - (n - 1) / 2) * width, comp.at_percent[idx], width, yerr=err,
               capsize=2, label=f"cluster {c} ({comp.n_pixels:.0f} px)", color=f"C{j % 10}")
    ax.set_xticks(xs, els)
    ax.set_ylabel("at%")
    ax.set_title(f"Workflow {quant.workflow}: cluster compositions (±1σ {error})")
    if n <= 10:
        ax.legend(fontsize=8)
    return ax


def plot_method_comparison(fit_quant, window_quant, ax=None):
    """Window-integration at% against fitted at% for every (cluster, element), with the 1:1 line."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 4.5))[1]
    allv = []
    for j, c in enumerate(fit_quant.clusters):
        f = fit_quant.compositions[c]
        w = window_quant.compositions[c]
        ax.errorbar(f.at_percent, w.at_percent, xerr=f.err_counting, yerr=w.err_counting,
                    fmt="o", ms=4, color=f"C{j % 10}", label=f"cluster {c}")
        for e, x, y in zip(f.elements, f.at_percent, w.at_percent):
            if abs(x - y) > 2:
                ax.annotate(e, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=8)
        allv += list(f.at_percent) + list(w.at_percent)
    hi = max(allv) * 1.05
    ax.plot([0, hi], [0, hi], color="0.5", lw=0.8)
    ax.set_xlabel("fitted model (at%)")
    ax.set_ylabel("background windows (at%)")
    ax.set_title("Window integration vs model fit")
    if len(fit_quant.clusters) <= 8:
        ax.legend(fontsize=8)
    return ax
