"""Pre-processing: bin the scan, crop the energy range, normalise and scale the features; the
same reductions chunk by chunk for maps larger than memory (:func:`lazy_binned_counts`,
:func:`lazy_features`); and binomial thinning of the counts (:func:`thin_counts`).

Why each step (the notebooks explain this at length):

* **Binning ×2** sums 2×2 pixels: 4× the counts per pixel, 4× fewer pixels (the paper does it to
  save memory; it also lifts pixels above the Poisson floor). When the map size is not a multiple
  of the factor, the last rows/columns are cropped with a warning; they get label -1 later.
* **Energy crop** keeps the channels that can hold signal: from just below the lowest X-ray line
  of the elements to just above the highest. Channels outside only add noise.
* **Per-pixel normalisation to total counts** (``normalization="total"``): a thicker pixel gives
  more counts of *every* line, in the same proportions. Dividing each spectrum by its total turns
  counts into spectral shape, so clusters separate compositions, not thick from thin.
* **Energy binning** (``energy_bin="auto"``) sums adjacent channels to about half the detector
  FWHM: peaks stay resolved, and each feature holds enough counts to be roughly Gaussian.
* **Channel scaling** (default ``"standard"``: centre and divide by the standard deviation of
  each channel over sample pixels). ``"robust"`` is the paper's scikit-learn ``RobustScaler``
  (median / inter-quartile range; for channels that are zero in most pixels the IQR is 0 and
  scikit-learn leaves them unscaled, so at tens of counts per pixel single counts in rare
  channels become outliers that a GMM turns into one-pixel clusters). ``"poisson"`` divides by
  the square root of the mean (Keenan & Kotula, Surf. Interface Anal. 2004); it whitens
  Poisson noise well at high counts but suffers from the same rare-channel outliers at tens of
  counts. Measured on simulated hea6 (96x96, 40 counts/px, seeds 0-2): total + standard ARI
  0.82-0.89, total + robust 0.4, total + poisson < 0.2, none (raw counts) + robust 0.48-0.88,
  because without normalisation thick and thin regions of one phase split on some seeds.
"""
from __future__ import annotations

import warnings

import numpy as np

from .errors import DataError, HEAWarning, ParameterError
from .xray.lines import xray_line_positions

NORMALIZATIONS = ("total", "sqrt_total", "none")
SCALINGS = ("poisson", "robust", "standard", "none")


class NoCountsWarning(HEAWarning):
    """The energy range of the elements' lines holds no counts: there is nothing to cluster."""


class BinningCropWarning(UserWarning):
    """The map size is not a multiple of the bin factor; edge rows/columns were dropped."""


def _as_array(signal):
    # not hasattr(.., "data"): NumPy arrays have a .data memoryview too
    return signal.data if hasattr(signal, "axes_manager") else signal


def bin_navigation(data, factor=2):
    """Sum ``factor`` × ``factor`` blocks of pixels of a (rows, cols, channels) array.

    Hand-written (a reshape and a sum) because it works the same on NumPy and Dask arrays and
    crops instead of failing when the size is not a multiple of ``factor``.

    Parameters
    ----------
    data : (rows, cols, channels) array, or a HyperSpy signal (its ``.data`` is used)
    factor : int ≥ 1

    Returns
    -------
    binned : (rows // factor, cols // factor, channels) array of float32 sums
    cropped_shape : (rows', cols') the part of the original map that was used
    """
    data = _as_array(data)
    if data.ndim != 3:
        raise DataError(f"Expected a spectrum image with 2 navigation axes and 1 energy axis, "
                        f"got an array of shape {data.shape}: load a 2-D EDS map.")
    r, c, ch = data.shape
    r2, c2 = _check_factor(data.shape, factor)
    d = data[:r2, :c2]
    if factor == 1:
        out = d.astype(np.float32)
    else:
        # summed straight into float32 (no float copy of the whole map first, and no int64
        # result twice the size of the float32 one: element maps bin all 4096 channels)
        out = d.reshape(r2 // factor, factor, c2 // factor, factor, ch).sum(axis=(1, 3),
                                                                           dtype=np.float32)
    if hasattr(out, "compute"):
        out = out.compute()
    return np.asarray(out, dtype=np.float32), (r2, c2)


def _check_factor(shape, factor):
    """Rows and columns kept by binning ``factor`` x ``factor``; warns when some are dropped."""
    if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, (int, np.integer)) \
            or factor < 1:
        raise ParameterError(f"BIN_FACTOR must be a positive integer, got {factor!r}: use 1 "
                             "(no binning) or 2 (the paper's choice).")
    r, c = shape[:2]
    if factor > min(r, c):
        raise ParameterError(f"BIN_FACTOR={factor} is larger than the map ({r}x{c}): use a "
                             "smaller factor.")
    r2, c2 = (r // factor) * factor, (c // factor) * factor
    if (r2, c2) != (r, c):
        warnings.warn(f"Map of {r}x{c} pixels is not a multiple of BIN_FACTOR={factor}: the last "
                      f"{r - r2} row(s) and {c - c2} column(s) are dropped (label -1).",
                      BinningCropWarning, stacklevel=3)
    return r2, c2


def upsample_labels(labels_binned, factor, original_shape, fill=-1):
    """Labels of a binned grid back on the original (rows, cols) grid.

    Each binned pixel's label is copied to its ``factor`` × ``factor`` block; rows/columns that
    binning cropped get ``fill`` (-1, unassigned). Works for extra trailing axes too
    (e.g. probabilities of shape (rows_b, cols_b, k)).
    """
    lab = np.asarray(labels_binned)
    up = np.repeat(np.repeat(lab, factor, axis=0), factor, axis=1)
    out = np.full(tuple(original_shape[:2]) + lab.shape[2:], fill, dtype=up.dtype)
    out[:up.shape[0], :up.shape[1]] = up
    return out


def energy_axis(signal):
    """Energies (keV) of the channels of a HyperSpy EDS signal."""
    ax = signal.axes_manager.signal_axes[0]
    return np.asarray(ax.axis, dtype=float)


def signal_elements(signal):
    """Element symbols recorded in a signal's metadata (``Sample.elements``)."""
    try:
        return list(signal.metadata.Sample.elements)
    except AttributeError:
        return []


def useful_energy_range(signal, elements=None, margin_fwhm=3.0, min_energy=0.2):
    """Energy range (keV) that can hold signal from the elements' X-ray lines.

    From ``margin_fwhm`` peak widths below the lowest line (with weight ≥ 0.1, above
    ``min_energy``, below the beam energy) to the same margin above the highest line, clipped to
    the recorded axis. Without known elements the whole axis above ``min_energy`` is used.

    Returns
    -------
    (lo, hi) in keV
    """
    e = energy_axis(signal)
    elements = list(elements) if elements else signal_elements(signal)
    try:
        beam = float(signal.metadata.Acquisition_instrument.TEM.beam_energy)
    except AttributeError:
        beam = None
    try:
        fwhm_mn = float(signal.metadata.Acquisition_instrument.TEM.Detector.EDS.
                        energy_resolution_MnKa) / 1000.0
    except AttributeError:
        fwhm_mn = 0.13
    lines = xray_line_positions(elements, beam, (min_energy, e[-1]), min_weight=0.1)
    if not lines:
        return float(max(e[0], min_energy)), float(e[-1])
    lo_line, hi_line = min(lines.values()), max(lines.values())
    # FWHM grows with energy (Fano law); sqrt scaling from Mn Ka is good enough for a margin

    def fw(en):   # keV; FWHM^2 = FWHM_Mn^2 + 2.5 eV * (E - E_MnKa), in eV (standard Fano law)
        return 1e-3 * np.sqrt(max((1e3 * fwhm_mn) ** 2 + 2.5 * 1e3 * (en - 5.895), 400.0))
    lo = lo_line - margin_fwhm * fw(max(lo_line, 0.3))
    hi = hi_line + margin_fwhm * fw(hi_line)
    return float(max(lo, e[0], min_energy)), float(min(hi, e[-1]))


def energy_slice(signal, energy_range):
    """Slice of channel indices covering ``energy_range`` (keV)."""
    e = energy_axis(signal)
    lo, hi = energy_range
    if not hi > lo:
        raise ParameterError(f"Energy range {energy_range} is empty: give (low, high) in keV with "
                             "low < high.")
    i0 = int(np.searchsorted(e, lo, side="left"))
    i1 = int(np.searchsorted(e, hi, side="right"))
    if i1 - i0 < 2:
        raise ParameterError(f"Energy range {lo:.2f}-{hi:.2f} keV holds fewer than 2 channels of "
                             f"the recorded {e[0]:.2f}-{e[-1]:.2f} keV: widen it.")
    return slice(i0, i1)


def total_counts(counts):
    """Total counts per pixel (sum over the last axis)."""
    return np.asarray(counts, dtype=float).sum(axis=-1)


def normalize_features(counts, method="total"):
    """Per-pixel normalisation of a (pixels, channels) count matrix.

    ``"total"``: divide each row by its total counts (empty rows stay zero), so the features
    are spectral *shape* and do not depend on thickness. ``"none"``: counts as they are.
    """
    X = np.asarray(counts, dtype=np.float64)
    if method == "none" or method is None:
        return X.copy()
    if method in ("total", "sqrt_total"):
        tot = X.sum(axis=1, keepdims=True)
        F = np.divide(X, tot, out=np.zeros_like(X), where=tot > 0)
        return np.sqrt(F) if method == "sqrt_total" else F
    raise ParameterError(f"Unknown normalization {method!r}: use one of {NORMALIZATIONS}.")


def scale_features(X, method="standard", fit_mask=None):
    """Centre and scale each channel; the scaler is fitted on ``fit_mask`` rows only.

    Parameters
    ----------
    X : (pixels, channels) array
    method : {"poisson", "robust", "standard", "none"}
        ``"poisson"``: (x - mean) / sqrt(mean) per channel, which makes Poisson noise about
        equally large in every channel; ``"robust"``: scikit-learn ``RobustScaler`` (the
        paper's choice); ``"standard"``: ``StandardScaler``; ``"none"``: centring only.
    fit_mask : (pixels,) bool, optional
        Rows used to fit the scaler (sample pixels, not vacuum).

    Returns
    -------
    (pixels, channels) float array
    """
    X = np.asarray(X, dtype=np.float64)
    fit = X if fit_mask is None else X[np.asarray(fit_mask, bool)]
    if fit.shape[0] == 0:
        raise DataError("No pixels left to fit the scaler (everything is masked as vacuum): "
                        "check the mask or the data.")
    if method == "poisson":
        mu = fit.mean(axis=0)
        floor = max(float(mu[mu > 0].mean()) * 1e-3, 1e-12) if np.any(mu > 0) else 1.0
        return (X - mu) / np.sqrt(np.maximum(mu, floor))
    if method == "robust":
        from sklearn.preprocessing import RobustScaler
        return RobustScaler().fit(fit).transform(X)
    if method == "standard":
        from sklearn.preprocessing import StandardScaler
        return StandardScaler().fit(fit).transform(X)
    if method == "none" or method is None:
        return X - fit.mean(axis=0)
    raise ParameterError(f"Unknown scaling {method!r}: use one of {SCALINGS}.")


def check_counts(data):
    """Raise :class:`DataError` for empty, all-zero, negative or non-finite data."""
    arr = np.asarray(data)
    if arr.size == 0:
        raise DataError("The spectrum image is empty: check the file.")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise DataError("The spectrum image contains NaN or infinite values: remove or repair "
                        "those pixels before clustering.")
    if arr.min() < 0:
        raise DataError("The spectrum image contains negative counts: EDS counts cannot be "
                        "negative; was a background subtracted already? Use raw counts.")
    if not np.any(arr):
        raise DataError("The spectrum image is all zeros: check the file or the acquisition.")


def auto_energy_bin(signal, fraction=0.5):
    """Channels to sum so a feature channel is about ``fraction`` × FWHM(Mn Kα) wide.

    Peaks stay resolved (the detector cannot separate finer detail), while sparse single
    channels, whose Poisson noise is far from Gaussian at tens of counts per pixel, are merged.
    """
    try:
        width = float(signal.axes_manager.signal_axes[0].scale)
        fwhm = float(signal.metadata.Acquisition_instrument.TEM.Detector.EDS.
                     energy_resolution_MnKa) / 1000.0
    except AttributeError:
        return 1
    return int(max(1, np.floor(fraction * fwhm / width)))


def bin_energy(counts, energy, factor):
    """Sum ``factor`` adjacent channels (the last incomplete group is dropped).

    Returns
    -------
    counts : (..., channels // factor), energy : centre of each summed channel (keV)
    """
    n = (counts.shape[-1] // factor) * factor
    if n == 0:
        raise ParameterError(f"energy_bin={factor} is larger than the {counts.shape[-1]} channels "
                             "of the energy range: use a smaller factor.")
    c = counts[..., :n].reshape(*counts.shape[:-1], n // factor, factor).sum(axis=-1)
    e = np.asarray(energy[:n]).reshape(-1, factor).mean(axis=1)
    return c, e


def prepare(signal, bin_factor=2, energy_range=None, energy_bin="auto"):
    """Binned count matrix of the useful energy range.

    Parameters
    ----------
    signal : HyperSpy EDS spectrum image (rows, cols | channels) or (rows, cols, channels) array
    bin_factor : int
    energy_range : (lo, hi) keV or None for :func:`useful_energy_range`
    energy_bin : int or "auto"
        Sum this many adjacent channels (:func:`auto_energy_bin`: half the detector FWHM).

    Returns
    -------
    dict with ``counts`` (pixels, channels) float32 binned counts of the cropped range,
    ``binned_shape`` (rows_b, cols_b), ``original_shape`` (rows, cols), ``energy`` (keV of the
    kept channels), ``energy_range``, ``bin_factor``.
    """
    data = _as_array(signal)
    if hasattr(signal, "axes_manager"):
        er = useful_energy_range(signal) if energy_range is None else tuple(energy_range)
        sl = energy_slice(signal, er)
        energy = energy_axis(signal)[sl]
    else:
        sl = slice(None)
        energy = np.arange(data.shape[-1], dtype=float)
        energy_bin = 1 if energy_bin == "auto" else energy_bin
        er = (float(energy[0]), float(energy[-1]))
    if hasattr(data, "dask") and hasattr(signal, "axes_manager"):
        # lazy (larger-than-memory) map: crop, bin pixels and channels chunk by chunk; the
        # full-resolution data is read once and never held in memory
        _check_factor(data.shape, bin_factor)
        lz = lazy_binned_counts(signal, bin_factor, er, energy_bin)
        rb, cb = lz["binned_shape"]
        binned = lz["counts"].reshape(rb, cb, -1)
        energy, energy_bin = lz["energy"], 1
    else:
        binned, _ = bin_navigation(data[..., sl], bin_factor)
    if binned.size and not np.any(binned) and hasattr(signal, "axes_manager"):
        # nothing to separate: the workflows then find one cluster (every pixel alike) and the
        # quantification says it has no counts, so the run completes and says why
        warnings.warn(f"No X-ray counts between {er[0]:.2f} and {er[1]:.2f} keV, where the lines "
                      f"of {', '.join(signal_elements(signal)) or 'the elements'} lie (the counts "
                      "sit elsewhere, e.g. in the zero-energy peak): nothing to cluster, every "
                      "pixel looks the same; check ELEMENTS and the energy calibration.",
                      NoCountsWarning, stacklevel=3)
    else:
        check_counts(binned)
    eb = auto_energy_bin(signal) if energy_bin == "auto" else int(energy_bin)
    if eb > 1:
        binned, energy = bin_energy(binned, energy, eb)
    rb, cb, ch = binned.shape
    return {"counts": binned.reshape(rb * cb, ch), "binned_shape": (rb, cb),
            "original_shape": tuple(data.shape[:2]), "energy": energy,
            "energy_range": (float(er[0]), float(er[1])), "bin_factor": int(bin_factor)}


def smooth_counts(counts, shape, mask, sigma, guide=None, radius=None):
    """Counts of each pixel replaced by a weighted sum over its sample neighbours.

    Pooling neighbours' counts lifts a low-dose pixel's signal-to-noise before the features are
    built: phases that differ by a few at% show up as clusters only in pooled counts. Weights
    are a spatial Gaussian of width ``sigma`` times, when a ``guide`` is given, a range term
    ``exp(-|g_i - g_j|^2 / d0)``: ``d0`` is the median squared guide difference of adjacent
    sample pixels (mostly one phase, so it measures the noise), so neighbours that differ by
    more than noise (another phase) hardly contribute and edges and small particles survive
    (a bilateral filter; hand-written: scipy/scikit-image have none for multichannel counts
    guided by another image). Only sample pixels (``mask``) contribute, so vacuum does not
    bleed in. Each pixel's pooled counts are rescaled to one pixel's worth.

    Parameters
    ----------
    counts : (pixels, channels) array
    shape : (rows, cols) with rows * cols == pixels
    mask : (pixels,) bool, True = sample
    sigma : float
        Spatial width in pixels of ``shape``; 0 returns ``counts`` unchanged.
    guide : (pixels, k) array, optional
        Per-pixel features that tell phases apart (e.g. the first PCA scores).
    radius : int, optional
        Half-width of the window (default ``ceil(2 sigma)``).

    Returns
    -------
    (pixels, channels) float32
    """
    if not sigma:
        return counts
    rows, cols = shape
    m = np.asarray(mask, bool).reshape(rows, cols)
    r = int(np.ceil(2 * sigma)) if radius is None else int(radius)
    cube = np.asarray(counts, np.float32).reshape(rows, cols, -1)
    pad = lambda a: np.pad(a, [(r, r), (r, r)] + [(0, 0)] * (a.ndim - 2))  # noqa: E731
    cp, mp = pad(cube * m[..., None]), pad(m.astype(np.float32))
    if guide is not None:
        g = np.asarray(guide, np.float32).reshape(rows, cols, -1)
        d_adj = np.concatenate([((g[1:] - g[:-1]) ** 2).sum(-1)[m[1:] & m[:-1]],
                                ((g[:, 1:] - g[:, :-1]) ** 2).sum(-1)[m[:, 1:] & m[:, :-1]]])
        d0 = float(np.median(d_adj)) if d_adj.size else 0.0
        gp = pad(g)
    num = np.zeros_like(cube)
    den = np.zeros((rows, cols), np.float32)
    for dr in range(-r, r + 1):
        for dc in range(-r, r + 1):
            w = np.exp(-(dr * dr + dc * dc) / (2 * sigma * sigma)) * \
                mp[r + dr:r + dr + rows, r + dc:r + dc + cols]
            if guide is not None and d0 > 0:
                d = ((gp[r + dr:r + dr + rows, r + dc:r + dc + cols] - g) ** 2).sum(-1)
                w = w * np.exp(-d / d0)
            num += w[..., None] * cp[r + dr:r + dr + rows, r + dc:r + dc + cols]
            den += w
    out = np.where(m[..., None], num / np.maximum(den, 1e-12)[..., None], cube)
    return out.reshape(rows * cols, -1).astype(np.float32)


def make_features(counts, normalization="total", scaling="standard", fit_mask=None):
    """Features for clustering: per-pixel normalisation then per-channel scaling.

    See :func:`normalize_features` and :func:`scale_features`.
    """
    return scale_features(normalize_features(counts, normalization), scaling, fit_mask)


# --------------------------------------------------------------------------------------------
# maps larger than memory: the same reductions on dask blocks
# --------------------------------------------------------------------------------------------
# Hand-written because HyperSpy's ``rebin`` on a lazy signal keeps the full channel axis and
# returns a lazy signal of float64; these read the map once and keep only the reduced result.
def _dask_data(signal):
    import dask.array as da

    data = signal.data if hasattr(signal, "axes_manager") else signal
    if not hasattr(data, "dask"):
        data = da.from_array(np.asarray(data), chunks=(max(1, 2 ** 24 // max(
            1, int(np.prod(np.shape(data)[1:])))), -1, -1))
    if data.ndim != 3:
        raise DataError(f"Expected a spectrum image (rows, cols, channels), got shape {data.shape}.")
    return data


def lazy_binned_counts(signal, bin_factor=2, energy_range=None, energy_bin="auto"):
    """Crop, bin pixels and bin channels chunk by chunk; return the small result in memory.

    Parameters
    ----------
    signal : EDS spectrum image, lazy or not
    bin_factor : int
        ``bin_factor`` × ``bin_factor`` pixels summed (rows/columns that do not fill a bin are
        dropped, as in :func:`bin_navigation`).
    energy_range : (lo, hi) keV, optional
        Default :func:`useful_energy_range`.
    energy_bin : int or "auto"
        Adjacent channels summed (auto: :func:`auto_energy_bin`).

    Returns
    -------
    dict like :func:`prepare`: ``counts`` (pixels, channels) float32,
    ``binned_shape``, ``original_shape``, ``energy``, ``energy_range``, ``bin_factor``,
    ``energy_bin``.
    """
    import dask.array as da

    data = _dask_data(signal)
    f = int(bin_factor)
    if f < 1:
        raise ParameterError(f"bin_factor must be a positive integer, got {bin_factor!r}.")
    er = useful_energy_range(signal) if energy_range is None else tuple(energy_range)
    sl = energy_slice(signal, er)
    energy = energy_axis(signal)[sl]
    eb = energy_bin
    if eb == "auto":
        eb = auto_energy_bin(signal)
    eb = int(eb)
    r, c, _ = data.shape
    r2, c2 = (r // f) * f, (c // f) * f
    n = ((sl.stop - sl.start) // eb) * eb
    sub = data[:r2, :c2, sl.start:sl.start + n]
    # chunks must hold whole bins: rows in multiples of f, the channel axis in one piece
    rc = max(f, (sub.chunks[0][0] // f) * f)
    sub = sub.rechunk((rc, -1, -1))
    binned = da.coarsen(np.sum, sub.astype(np.float32), {0: f, 1: f, 2: eb}, trim_excess=True)
    counts = binned.compute()
    rb, cb, ch = counts.shape
    energy = energy[:n].reshape(-1, eb).mean(axis=1)
    return {"counts": counts.reshape(rb * cb, ch), "binned_shape": (rb, cb),
            "original_shape": (r, c), "energy": energy, "energy_range": (float(er[0]), float(er[1])),
            "bin_factor": f, "energy_bin": eb}


def lazy_features(counts, normalization="total", scaling="standard", fit_mask=None,
                  block_pixels=16384, dtype=np.float32):
    """:func:`make_features` computed a block of pixels at a time.

    Normalisation is per pixel (block-local); the channel scaling needs each channel's mean
    (and, for ``"standard"``, variance) over the sample pixels, accumulated over blocks first.
    Same result as ``make_features`` (to float32 rounding) without its float64 copies of the
    whole matrix. ``"robust"`` (medians) is not block-wise: it falls back to ``make_features``.
    """
    X = np.asarray(counts)
    n, ch = X.shape
    keep = np.ones(n, bool) if fit_mask is None else np.asarray(fit_mask, bool)
    if keep.sum() == 0:
        raise DataError("No sample pixels to fit the scaling: check the mask.")
    if scaling not in ("poisson", "standard", "none", None) or \
            normalization not in ("total", "none", None):
        return make_features(X, normalization, scaling, fit_mask).astype(dtype)

    def norm(b):
        b = b.astype(np.float64)
        if normalization == "total":
            tot = b.sum(axis=1, keepdims=True)
            b = np.divide(b, tot, out=np.zeros_like(b), where=tot > 0)
        return b

    s1, s2 = np.zeros(ch), np.zeros(ch)
    for i0 in range(0, n, block_pixels):
        b = norm(X[i0:i0 + block_pixels])[keep[i0:i0 + block_pixels]]
        s1 += b.sum(axis=0)
        s2 += (b * b).sum(axis=0)
    m = keep.sum()
    mu = s1 / m
    if scaling == "poisson":
        floor = max(float(mu[mu > 0].mean()) * 1e-3, 1e-12) if np.any(mu > 0) else 1.0
        div = np.sqrt(np.maximum(mu, floor))
    elif scaling == "standard":     # as sklearn's StandardScaler: population std, 0 -> 1
        sd = np.sqrt(np.maximum(s2 / m - mu * mu, 0.0))
        div = np.where(sd < 10 * np.finfo(float).eps * np.maximum(np.abs(mu), 1.0), 1.0, sd)
    else:
        div = np.ones(ch)
    out = np.empty((n, ch), dtype=dtype)
    for i0 in range(0, n, block_pixels):
        out[i0:i0 + block_pixels] = (norm(X[i0:i0 + block_pixels]) - mu) / div
    return out


# --------------------------------------------------------------------------------------------
# count splitting
# --------------------------------------------------------------------------------------------
def _with_data(signal, data):
    """A copy of ``signal`` (axes, metadata) holding ``data``, without copying the old data."""
    if hasattr(signal, "_deepcopy_with_new_data") and not getattr(signal, "_lazy", False):
        return signal._deepcopy_with_new_data(data)
    out = signal.deepcopy()
    if getattr(out, "_lazy", False) and not hasattr(data, "map_blocks"):
        out.compute()             # a lazy signal given in-memory data (a dask array stays lazy)
    out.data = data
    return out


def thin_counts(signal, fraction=0.5, seed=0):
    """Split a spectrum image's counts into two independent halves (binomial thinning).

    Each count is sent to the first image with probability ``fraction``. For Poisson data the
    two images are independent Poisson images with means ``fraction * mu`` and
    ``(1 - fraction) * mu``: one can be used to find clusters, the other to test them. A lazily
    loaded map is thinned block by block and its halves stay lazy (:func:`_thin_lazy`).

    Returns
    -------
    (train, test) : two signals like ``signal``
    """
    if not 0 < fraction < 1:
        raise ParameterError(f"fraction must be between 0 and 1, got {fraction}.")
    data = signal.data
    if hasattr(data, "map_blocks"):
        return _thin_lazy(signal, fraction, seed)
    data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.integer):
        if np.any(data != np.round(data)) or np.any(data < 0):
            raise ParameterError("Count splitting needs raw integer counts.")
    a = _thinned(data, fraction, np.random.default_rng(seed))
    train, test = _with_data(signal, a), _with_data(signal, data - a)
    return train, test


def _thinned(data, fraction, rng):
    """The first half of binomial thinning of the counts ``data``. Only the non-zero entries are
    drawn (a few % of a sparse EDS map): the same distribution as drawing every entry, 20x
    faster and without an int64 copy of the whole map."""
    flat = data.reshape(-1)
    nz = np.flatnonzero(flat)
    a = np.zeros(flat.shape, data.dtype)
    a[nz] = rng.binomial(flat[nz].astype(np.int64), fraction)
    return a.reshape(data.shape)


def _thin_lazy(signal, fraction, seed):
    """:func:`thin_counts` of a lazy signal, block by block, still lazy: loading a map larger
    than memory to split it would defeat the lazy load. Each block draws from its own
    generator, seeded by ``seed`` and the block's position, so both halves (computed
    separately) see the same draws and a rerun with the same chunks gives the same halves."""
    d = signal.data
    if not np.issubdtype(d.dtype, np.integer):
        raise ParameterError("Count splitting of a lazily loaded map needs integer counts; "
                             f"this one is {d.dtype}. Load it with lazy=False to check them.")

    def half(block, block_info=None):
        loc = block_info[0]["chunk-location"] if block_info else (0,)
        return _thinned(block, fraction, np.random.default_rng([int(seed), *loc]))

    a = d.map_blocks(half, dtype=d.dtype)
    return _with_data(signal, a), _with_data(signal, d - a)
