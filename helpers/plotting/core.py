"""Shared figure machinery: cluster colours, scale bars, image maps, saving figures.

Every figure that shows cluster labels takes its colours from :func:`cluster_colors`, so cluster
*k* has the same colour in every figure. Noise (label -1) is always grey; masked vacuum/support
pixels (label -2 in the *display* arrays built by :func:`display_labels`) are drawn black.
"""
from __future__ import annotations

import numpy as np

from ..errors import OutputError
from ..results import figure_dir

NOISE_COLOR = (0.62, 0.62, 0.62, 1.0)   # HDBSCAN noise / unassigned: grey

MASKED_COLOR = (0.0, 0.0, 0.0, 1.0)     # vacuum / support excluded from clustering: black

MASKED_LABEL = -2                       # display-only code for masked pixels (never saved)


def mpl():
    """matplotlib and pyplot, imported on first use (they cost a second at ``import helpers``)."""
    import matplotlib
    import matplotlib.pyplot as plt
    return matplotlib, plt


def cluster_colors(n_clusters: int) -> list:
    """RGBA colour of each cluster 0..n_clusters-1 (tab10, then tab20 beyond 10 clusters).

    The colour depends only on the cluster number, never on how many clusters a figure shows,
    so the same cluster keeps its colour across figures and notebooks.
    """
    _, plt = mpl()
    base = list(plt.get_cmap("tab10").colors)
    extra = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i % 2 == 1]
    palette = base + extra
    return [(*palette[k % len(palette)], 1.0) for k in range(int(n_clusters))]


def cluster_color(label: int):
    """Colour of one label: grey for noise (-1), black for masked (-2), else the palette."""
    if label == -1:
        return NOISE_COLOR
    if label == MASKED_LABEL:
        return MASKED_COLOR
    return cluster_colors(label + 1)[label]


def display_labels(labels, mask=None):
    """Labels for display: masked (vacuum/support) pixels become ``MASKED_LABEL`` (-2).

    Parameters
    ----------
    labels : ndarray of int
        Cluster labels, -1 = noise or unassigned.
    mask : ndarray of bool, optional
        True where the pixel is sample (clustered); False = vacuum/support.
    """
    out = np.asarray(labels).copy()
    if mask is not None:
        out[~np.asarray(mask, bool)] = MASKED_LABEL
    return out


def axis_scale(signal_or_scale):
    """(pixel size, units) of the navigation axes of a HyperSpy signal, or pass-through."""
    if signal_or_scale is None:
        return None, None
    if isinstance(signal_or_scale, tuple):
        return signal_or_scale
    try:
        ax = signal_or_scale.axes_manager.navigation_axes[0]
        return float(ax.scale), str(ax.units)
    except (AttributeError, IndexError):
        return None, None


def _nice_length(length):
    """The largest 1-2-5 number not above ``length``."""
    if length <= 0:
        return 0.0
    exp = np.floor(np.log10(length))
    for m in (5, 2, 1):
        if m * 10 ** exp <= length:
            return m * 10 ** exp
    return 10 ** exp


def add_scalebar(ax, pixel_size, units="nm", n_pixels_wide=None, color="white", frac=0.25):
    """Add a scale bar (matplotlib's ``AnchoredSizeBar``) in real units to an image axes.

    Parameters
    ----------
    ax : matplotlib axes showing an image drawn with one data unit per pixel
    pixel_size : float
        Size of one (displayed) pixel in ``units``.
    units : str
    n_pixels_wide : int, optional
        Image width in pixels; read from the axes limits when omitted.
    frac : float
        Target bar length as a fraction of the image width (rounded down to 1-2-5).
    """
    if pixel_size is None or not np.isfinite(pixel_size) or pixel_size <= 0:
        return ax
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
    if n_pixels_wide is None:
        x0, x1 = ax.get_xlim()
        n_pixels_wide = abs(x1 - x0)
    length = _nice_length(frac * n_pixels_wide * pixel_size)
    if units in ("nm",) and length >= 1000:
        label = f"{length / 1000:g} µm"
    else:
        label = f"{length:g} {units}"
    bar = AnchoredSizeBar(ax.transData, length / pixel_size, label, "lower right", pad=0.3,
                          color=color, frameon=True, size_vertical=max(n_pixels_wide / 100, 0.5))
    # on a dark translucent box: readable on bright maps and on masked (white) regions alike
    bar.patch.set_facecolor("black")
    bar.patch.set_alpha(0.45)
    bar.patch.set_edgecolor("none")
    ax.add_artist(bar)
    return ax


def plot_map(image, ax=None, title=None, scale=None, cmap="viridis", colorbar=True, **kw):
    """Show a 2-D map with a scale bar.

    Parameters
    ----------
    image : 2-D array or HyperSpy Signal2D
    scale : HyperSpy signal, (pixel_size, units) tuple, or None
        Where to read the pixel size for the scale bar; a Signal2D's own axes are used if None.
    """
    _, plt = mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    if hasattr(image, "axes_manager") and scale is None:
        am = image.axes_manager        # exspy line maps keep the scan axes as navigation axes
        axes2 = am.signal_axes if len(am.signal_axes) == 2 else am.navigation_axes
        if len(axes2) == 2:
            scale = (float(axes2[0].scale), str(axes2[0].units))
    data = np.asarray(image.data if hasattr(image, "axes_manager") else image, float)
    im = ax.imshow(data, cmap=cmap, interpolation="nearest", **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    px, units = axis_scale(scale)
    add_scalebar(ax, px, units or "px", n_pixels_wide=data.shape[1])
    return ax


def save_figure(fig_or_ax, name, output_dir=None, formats=("png",), dpi=150):
    """Save a figure (or the figure of an axes / array of axes) as ``figures/<name>.<fmt>``.

    Parameters
    ----------
    fig_or_ax : Figure, Axes, or array of Axes
    name : str
        File stem, e.g. ``"03_gmm_cluster_map"``.
    output_dir : str or Path, optional
        Run folder; figures go to ``output_dir/figures``. None: the project's ``figures/``.

    Returns
    -------
    list of Path written.
    """
    obj = fig_or_ax
    if isinstance(obj, np.ndarray):
        obj = obj.ravel()[0]
    fig = getattr(obj, "figure", obj)
    if hasattr(fig, "get_figure") and fig.get_figure() is not None and fig.get_figure() is not fig:
        fig = fig.get_figure()
    d = figure_dir(output_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for fmt in formats:
            p = d / f"{name}.{fmt}"
            fig.savefig(p, dpi=dpi, bbox_inches="tight")
            paths.append(p)
    except OSError as e:
        raise OutputError(f"Cannot write figure {name!r} to {d}: {e.strerror}; choose a writable "
                          "OUTPUT_DIR.") from None
    return paths


def binned_scale(signal, bin_factor):
    """(pixel size, units) of a signal's scan after ``bin_factor`` × ``bin_factor`` binning."""
    px, units = axis_scale(signal)
    return (None, None) if px is None else (px * bin_factor, units)
