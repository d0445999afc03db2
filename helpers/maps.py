"""Element maps, element correlations and the vacuum/support mask.

* :func:`element_maps`: background-subtracted line intensities per pixel through exspy's
  ``get_lines_intensity`` with background windows on both sides of each line
  (``estimate_background_windows``), one line per element (the line quantification uses,
  from :func:`helpers.kfactors.choose_line`).
* :func:`correlation_matrix`: Pearson correlation between element maps over sample pixels. By
  default each map is first divided by the pixel's total line intensity: thickness raises every
  element together and would make all maps look correlated; after the division a positive
  correlation means "these elements go up *relative to the others* in the same places", which is
  what the paper reads off Fig. 2 (Fe-Cu, Ag-Cd, Mn-Zn).
* :func:`sample_mask`: which pixels are sample, which are vacuum or support film.
"""
from __future__ import annotations

import numpy as np

from .errors import DataError, ElementError, ParameterError
from .preprocess import bin_navigation, energy_axis, signal_elements
from .xray.choice import choose_line


# --------------------------------------------------------------------------------------------
# vacuum / support mask
# --------------------------------------------------------------------------------------------
def otsu_threshold(values, bins=256):
    """Otsu's threshold of a 1-D sample (hand-written: scikit-image is not a dependency).

    Returns
    -------
    float
        Threshold that maximises the between-class variance.
    """
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() == v.max():
        return float(v.min()) if v.size else 0.0
    hist, edges = np.histogram(v, bins=bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist).astype(float)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    between[(w0 == 0) | (w1 == 0)] = -1
    i = int(np.argmax(between))
    return float(edges[i + 1])


def sample_mask(totals, smooth=1.0, contrast=0.3, threshold=None):
    """True where a pixel is sample, False where it is vacuum or support film.

    Method: smooth the total-count map (Gaussian, ``smooth`` pixels) to beat Poisson noise,
    apply Otsu's threshold to log(1 + counts), and accept the split only if it separates two
    populations of very different brightness: the median of the dark class must be below
    ``contrast`` times the median of the bright class. Vacuum or a carbon film gives only a few
    per cent of a sulfide's counts, whereas a thickness gradient inside the sample (a factor of
    2-3) does not pass this test, so a map without vacuum is left unmasked.

    Parameters
    ----------
    totals : (rows, cols) array of total counts per pixel, or a HyperSpy spectrum image
    smooth : float
        Gaussian sigma in pixels (0 = none).
    contrast : float
        Maximum dark/bright median ratio for the dark class to count as vacuum/support.
    threshold : float, optional
        Fixed threshold on the smoothed total counts instead of the automatic one.

    Returns
    -------
    (rows, cols) bool array
    """
    if hasattr(totals, "axes_manager"):
        totals = total_counts_map(totals)
    t = np.asarray(totals, dtype=float)
    if t.ndim != 2:
        raise DataError(f"sample_mask needs a 2-D map of total counts, got shape {t.shape}.")
    if smooth and smooth > 0:
        from scipy.ndimage import gaussian_filter
        t = gaussian_filter(t, smooth, mode="nearest")
    if threshold is not None:
        return t > float(threshold)
    lt = np.log1p(np.maximum(t, 0))
    thr = otsu_threshold(lt)
    bright = lt > thr
    if bright.all() or not bright.any():
        return np.ones(t.shape, bool)
    ratio = np.median(t[~bright]) / max(np.median(t[bright]), 1e-12)
    if ratio >= contrast:
        return np.ones(t.shape, bool)
    return bright


def total_counts_map(signal):
    """(rows, cols) total counts per pixel of a spectrum image (lazy signals are computed)."""
    data = signal.data if hasattr(signal, "axes_manager") else signal
    tot = data.sum(axis=-1, dtype=np.float64) if hasattr(data, "sum") else np.sum(data, -1)
    if hasattr(tot, "compute"):
        tot = tot.compute()
    return np.asarray(tot, dtype=float)


# --------------------------------------------------------------------------------------------
# element maps
# --------------------------------------------------------------------------------------------
def map_lines(signal, elements=None):
    """One X-ray line per element (the one quantification uses), e.g. ``['Ag_La', 'Fe_Ka']``."""
    elements = list(elements) if elements else signal_elements(signal)
    if not elements:
        raise ElementError("No elements are known for this data: pass ELEMENTS, e.g. "
                           "['Fe', 'Cu', 'S'].")
    e = energy_axis(signal)
    try:
        beam = float(signal.metadata.Acquisition_instrument.TEM.beam_energy)
    except AttributeError:
        beam = 200.0
    recorded = {}
    try:
        for ln in signal.metadata.Sample.xray_lines:
            recorded[ln.split("_")[0]] = ln
    except AttributeError:
        pass
    lines = []
    for el in elements:
        if el in recorded:
            lines.append(recorded[el])
        else:
            lines.append(choose_line(el, (float(e[0]), float(e[-1])), beam).xray_line)
    return lines


def element_maps(signal, elements=None, lines=None, integration_width=2.0,
                 background_width=(2.0, 2.0), bin_factor=1):
    """Background-subtracted intensity map of one X-ray line per element (exspy).

    Parameters
    ----------
    signal : exspy EDSTEMSpectrum
    elements : list of str, optional (default: from the metadata)
    lines : list of str, optional, e.g. ``["Fe_Ka", "Ag_La"]`` (default: :func:`map_lines`)
    integration_width : float
        Integration window in FWHMs of the line (exspy's ``integration_windows``).
    background_width : (float, float)
        Position and width of the background windows in FWHMs (exspy's
        ``estimate_background_windows(line_width=...)``).
    bin_factor : int
        Sum ``bin_factor`` × ``bin_factor`` pixels first (maps of a few counts per pixel are
        mostly noise; binning trades resolution for counts).

    Returns
    -------
    dict {line: hyperspy Signal2D} in the order of ``lines``.
    """
    lines = list(lines) if lines else map_lines(signal, elements)
    sig = signal
    if bin_factor and bin_factor > 1:
        binned, _ = bin_navigation(signal.data, bin_factor)
        sig = signal._deepcopy_with_new_data(binned) if hasattr(signal, "_deepcopy_with_new_data") \
            else signal.deepcopy()
        for ax, old in zip(sig.axes_manager.navigation_axes, signal.axes_manager.navigation_axes):
            ax.scale = old.scale * bin_factor
    sig.metadata.Sample.xray_lines = lines
    try:
        bw = sig.estimate_background_windows(line_width=list(background_width), xray_lines=lines)
        maps = sig.get_lines_intensity(xray_lines=lines, background_windows=bw,
                                       integration_windows=integration_width, plot_result=False)
    except ValueError as e:
        raise ElementError(f"Cannot integrate lines {lines}: {e}; check ELEMENTS and the "
                           "energy range.") from None
    out = {}
    for ln, m in zip(lines, maps):
        if hasattr(m, "compute") and getattr(m, "_lazy", False):
            m.compute()
        out[ln] = m
    return out


def maps_array(maps):
    """(n_lines, rows, cols) float array of a dict of maps."""
    return np.stack([np.asarray(m.data, float) for m in maps.values()])


def correlation_matrix(maps, mask=None, relative=True, smooth=1.0):
    """Pearson correlation between element maps over sample pixels.

    Parameters
    ----------
    maps : dict {line: Signal2D or 2-D array}
    mask : (rows, cols) bool, optional; True = sample pixel used (vacuum excluded)
    relative : bool
        Divide each map by the sum of all maps per pixel first (removes the common thickness
        factor that makes every pair look positively correlated).
    smooth : float
        Gaussian sigma (pixels) applied to each map before correlating, to reduce Poisson noise.

    Returns
    -------
    pandas.DataFrame, lines × lines
    """
    import pandas as pd
    names = [ln.split("_")[0] for ln in maps]
    a = np.stack([np.asarray(m.data if hasattr(m, "axes_manager") else m, float) for m in maps.values()])
    if smooth and smooth > 0:
        from scipy.ndimage import gaussian_filter
        a = np.stack([gaussian_filter(x, smooth, mode="nearest") for x in a])
    a = np.clip(a, 0, None)
    if relative:
        s = a.sum(axis=0, keepdims=True)
        a = np.divide(a, s, out=np.zeros_like(a), where=s > 0)
    keep = np.ones(a.shape[1:], bool) if mask is None else np.asarray(mask, bool)
    if keep.shape != a.shape[1:]:
        raise ParameterError(f"Mask shape {keep.shape} differs from the map shape {a.shape[1:]}: "
                             "use a mask made on the same grid (same bin factor).")
    v = a[:, keep]
    if v.shape[1] < 3:
        raise DataError("Fewer than 3 sample pixels: cannot correlate element maps.")
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(v)
    return pd.DataFrame(c, index=names, columns=names)


def strongest_pairs(corr, n=3):
    """The ``n`` most positively correlated distinct element pairs, e.g. [('Fe', 'Cu', 0.8)].

    Pairs are picked greedily, each element used once (the way the paper pairs Fig. 2's maps).
    """
    c = corr.values.copy()
    names = list(corr.index)
    np.fill_diagonal(c, -np.inf)
    pairs, used = [], set()
    order = np.dstack(np.unravel_index(np.argsort(-c, axis=None), c.shape))[0]
    for i, j in order:
        if i >= j or names[i] in used or names[j] in used or not np.isfinite(c[i, j]):
            continue
        pairs.append((names[i], names[j], float(c[i, j])))
        used |= {names[i], names[j]}
        if len(pairs) == n:
            break
    return pairs


def summed_spectrum(signal, mask=None):
    """(energy keV, counts) of the spectrum summed over all (or the masked) pixels."""
    data = signal.data
    if mask is not None:
        s = np.asarray(data[np.asarray(mask, bool)].sum(axis=0), float)
    else:
        s = data.sum(axis=(0, 1))
        s = np.asarray(s.compute() if hasattr(s, "compute") else s, float)
    return energy_axis(signal), s


def order_by_pairs(maps, corr):
    """Reorder maps so the most correlated elements sit side by side (the paper's Fig. 2).

    Returns
    -------
    (ordered maps dict, list of (el_a, el_b, r) pairs)
    """
    pairs = strongest_pairs(corr, n=len(maps) // 2)
    order = [el for a, b, _ in pairs for el in (a, b)]
    order += [ln.split("_")[0] for ln in maps if ln.split("_")[0] not in order]
    return {ln: maps[ln] for el in order for ln in maps if ln.split("_")[0] == el}, pairs


def map_grid_mask(signal, bin_factor=1, smooth=1.0):
    """:func:`sample_mask` on the grid of :func:`element_maps` with the same ``bin_factor``."""
    tot = total_counts_map(signal)
    if bin_factor and bin_factor > 1:
        tot = bin_navigation(tot[..., None], bin_factor)[0][..., 0]
    return sample_mask(tot, smooth=smooth)
