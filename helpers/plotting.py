"""Figures: cluster colours, maps with scale bars, spectra with line markers, saving.

Every figure that shows cluster labels takes its colours from :func:`cluster_colors`, so cluster
*k* has the same colour in the cluster map, the embedding scatter, the mean-spectrum plot and the
composition bar chart. Noise (label -1) is always grey; masked vacuum/support pixels (label -2 in
the *display* arrays built by :func:`display_labels`) are drawn black.

All plotting functions take ``ax=None`` (a new figure is made) and return the axes.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

NOISE_COLOR = (0.62, 0.62, 0.62, 1.0)   # HDBSCAN noise / unassigned: grey
MASKED_COLOR = (0.0, 0.0, 0.0, 1.0)     # vacuum / support excluded from clustering: black
MASKED_LABEL = -2                       # display-only code for masked pixels (never saved)


def _mpl():
    import matplotlib
    import matplotlib.pyplot as plt
    return matplotlib, plt


def cluster_colors(n_clusters: int) -> list:
    """RGBA colour of each cluster 0..n_clusters-1 (tab10, then tab20 beyond 10 clusters).

    The colour depends only on the cluster number, never on how many clusters a figure shows,
    so the same cluster keeps its colour across figures and notebooks.
    """
    _, plt = _mpl()
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


def _axis_scale(signal_or_scale):
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
                          color=color, frameon=False, size_vertical=max(n_pixels_wide / 100, 0.5))
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
    _, plt = _mpl()
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
    px, units = _axis_scale(scale)
    add_scalebar(ax, px, units or "px", n_pixels_wide=data.shape[1])
    return ax


def plot_cluster_map(labels, ax=None, mask=None, scale=None, title=None, legend=True,
                     names=None):
    """Cluster map in the shared colours: noise grey, masked vacuum/support black.

    Parameters
    ----------
    labels : (rows, cols) int array
    mask : (rows, cols) bool array, optional; True = sample pixel
    scale : HyperSpy signal or (pixel_size, units), for the scale bar
    names : dict {label: str}, optional legend names
    """
    matplotlib, plt = _mpl()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    lab = display_labels(labels, mask)
    n = int(max(lab.max() + 1, 0))
    colors = [MASKED_COLOR, NOISE_COLOR] + cluster_colors(n)
    cmap = ListedColormap(colors)
    ax.imshow(lab + 2, cmap=cmap, vmin=-0.5, vmax=len(colors) - 0.5, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    px, units = _axis_scale(scale)
    add_scalebar(ax, px, units or "px", n_pixels_wide=lab.shape[1])
    if legend:
        present = sorted(set(np.unique(lab).tolist()))
        handles = []
        for k in present:
            if k == MASKED_LABEL:
                name = "vacuum/support"
            elif k == -1:
                name = "noise"
            else:
                name = (names or {}).get(k, f"cluster {k}")
            handles.append(Patch(color=cluster_color(k), label=name))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8,
                  frameon=False)
    return ax


def plot_embedding(embedding, labels, ax=None, dims=(0, 1), s=3, title=None):
    """Scatter of an embedding (UMAP or PCA scores) coloured by cluster, noise grey."""
    _, plt = _mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    emb = np.asarray(embedding)
    lab = np.asarray(labels).ravel()
    for k in sorted(np.unique(lab)):
        sel = lab == k
        ax.scatter(emb[sel, dims[0]], emb[sel, dims[1]], s=s, color=cluster_color(int(k)),
                   label="noise" if k == -1 else f"cluster {k}", alpha=0.6 if k == -1 else 0.9,
                   linewidths=0)
    ax.set_xlabel(f"dim {dims[0]}")
    ax.set_ylabel(f"dim {dims[1]}")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, markerscale=3, frameon=False, loc="best")
    return ax


def xray_line_positions(elements, beam_energy=None, energy_range=None, min_weight=0.1):
    """{'Fe_Ka': keV, ...} for the lines of ``elements`` in exspy's database.

    Lines with a relative weight below ``min_weight`` or above the beam energy are skipped.
    """
    from exspy.material import elements as db
    out = {}
    for el in elements:
        try:
            lines = db[el]["Atomic_properties"]["Xray_lines"]
        except KeyError:
            continue
        for name in lines.keys():
            e = float(lines[name]["energy (keV)"])
            w = float(lines[name]["weight"])
            if w < min_weight:
                continue
            if beam_energy is not None and e >= beam_energy:
                continue
            if energy_range is not None and not (energy_range[0] <= e <= energy_range[1]):
                continue
            out[f"{el}_{name}"] = e
    return out


def plot_spectrum(energy, counts, ax=None, elements=None, label=None, color=None,
                  mark_lines=True, beam_energy=None, log=False, energy_range=None):
    """A spectrum with the main X-ray lines of ``elements`` marked and labelled.

    Parameters
    ----------
    energy : 1-D array (keV)
    counts : 1-D array
    elements : list of str, optional; their Kα/Lα/Mα-family lines with weight ≥ 0.1 are marked
    """
    _, plt = _mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    energy = np.asarray(energy, float)
    counts = np.asarray(counts, float)
    ax.plot(energy, counts, lw=0.8, color=color, label=label)
    if energy_range is not None:
        ax.set_xlim(*energy_range)
    if log:
        ax.set_yscale("log")
    if mark_lines and elements:
        lo, hi = ax.get_xlim()
        pos = xray_line_positions(elements, beam_energy, (max(lo, energy[0]), min(hi, energy[-1])),
                                  min_weight=0.3)
        ymax = np.nanmax(counts) if counts.size else 1
        for name, e in sorted(pos.items(), key=lambda t: t[1]):
            i = int(np.clip(np.searchsorted(energy, e), 0, len(energy) - 1))
            ax.axvline(e, color="0.6", lw=0.5, ls=":")
            ax.annotate(name.replace("_", " "), (e, counts[i]), xytext=(0, 6),
                        textcoords="offset points", rotation=90, fontsize=7, ha="center",
                        va="bottom")
        ax.set_ylim(top=ymax * 1.35 if not log else ymax * 5)
    ax.set_xlabel("Energy (keV)")
    ax.set_ylabel("Counts")
    return ax


def plot_cluster_spectra(energy, spectra, ax=None, elements=None, normalize=True, labels=None):
    """Mean spectrum of each cluster in the shared cluster colours.

    Parameters
    ----------
    energy : (n_channels,) keV
    spectra : dict {label: (n_channels,) array}
    normalize : bool
        Divide each spectrum by its sum, so phases are compared by shape, not by thickness.
    """
    _, plt = _mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    for k in sorted(spectra):
        s = np.asarray(spectra[k], float)
        if normalize and s.sum() > 0:
            s = s / s.sum()
        ax.plot(energy, s, lw=0.9, color=cluster_color(int(k)),
                label=(labels or {}).get(k, f"cluster {k}"))
    if elements:
        pos = xray_line_positions(elements, energy_range=(energy[0], energy[-1]), min_weight=0.5)
        for name, e in pos.items():
            ax.axvline(e, color="0.7", lw=0.5, ls=":")
            ax.text(e, 1.0, name.replace("_", " "), rotation=90, fontsize=7, ha="center",
                    va="top", transform=ax.get_xaxis_transform())
    ax.set_xlabel("Energy (keV)")
    ax.set_ylabel("fraction of counts" if normalize else "counts")
    ax.legend(fontsize=8, frameon=False)
    return ax


def figure_dir(output_dir=None) -> Path:
    """Where figures go: ``OUTPUT_DIR/figures``, or the project's ``figures/`` when None."""
    if output_dir is None:
        env = os.environ.get("HEA_FIGURE_DIR")
        if env:
            return Path(env)
        return Path(__file__).resolve().parent.parent / "figures"
    return Path(output_dir) / "figures"


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
    from .errors import OutputError
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


# --------------------------------------------------------------------------------------------
# stage figures (notebooks 01-04)
# --------------------------------------------------------------------------------------------
def plot_element_maps(maps, ncols=None, scale=None, cmap="viridis", axes=None, titles=None):
    """Element maps in a grid (the paper's Fig. 2/4 layout), each with a scale bar.

    Parameters
    ----------
    maps : dict {line: Signal2D or 2-D array}, in display order (pairs next to each other)
    ncols : int, optional (default: 2 for ≤ 8 maps, else 4)
    scale : signal or (pixel_size, units), used when the maps carry no calibration

    Returns
    -------
    array of axes
    """
    _, plt = _mpl()
    n = len(maps)
    ncols = ncols or (2 if n <= 8 else 4)
    nrows = int(np.ceil(n / ncols))
    if axes is None:
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows), squeeze=False)
    axes = np.asarray(axes).reshape(-1)
    for ax, (line, m) in zip(axes, maps.items()):
        title = (titles or {}).get(line, line.replace("_", " "))
        plot_map(m, ax=ax, title=title, scale=scale, cmap=cmap)
    for ax in axes[n:]:
        ax.axis("off")
    return axes


def plot_correlation_matrix(corr, ax=None, title="Element correlation"):
    """Heat map of an element-element correlation DataFrame (-1 blue .. +1 red)."""
    _, plt = _mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.2))
    v = corr.values
    im = ax.imshow(v, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr.columns)), corr.columns)
    ax.set_yticks(range(len(corr.index)), corr.index)
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            ax.text(j, i, f"{v[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(v[i, j]) > 0.6 else "black")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title)
    return ax


def plot_scree(pca_result, ax=None, n_components=None):
    """Scree plot: explained-variance ratio (log axis) per component, elbow marked.

    Parameters
    ----------
    pca_result : helpers.decompose.PCAResult
    n_components : int, optional; also mark the number actually used
    """
    _, plt = _mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    evr = np.asarray(pca_result.explained_variance_ratio)
    k = np.arange(1, evr.size + 1)
    ax.semilogy(k, evr, "o-", ms=4, color="0.2")
    e = pca_result.elbow
    ax.semilogy([e], [evr[e - 1]], "o", ms=10, mfc="none", mec="C3", mew=2,
                label=f"automatic elbow: {e}")
    if n_components is not None and n_components != e:
        ax.axvline(n_components, color="C0", ls="--", lw=1, label=f"used: {n_components}")
    ax.set_xlabel("component")
    ax.set_ylabel("explained variance ratio")
    ax.set_title("Scree plot")
    ax.legend(frameon=False)
    return ax


def plot_pca_components(pca_result, n_components, binned_shape, energy=None, mask=None,
                        scale=None, max_shown=6, fig=None):
    """Score map and loading of the first ``n_components`` PCA components (up to ``max_shown``).

    Returns
    -------
    array of axes (2 rows: score maps, loadings)
    """
    _, plt = _mpl()
    n = int(min(n_components, max_shown, pca_result.all_scores.shape[1]))
    if fig is None:
        fig = plt.figure(figsize=(2.6 * n, 5.2))
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        img = pca_result.all_scores[:, i].reshape(binned_shape).astype(float)
        if mask is not None:
            img = np.where(np.asarray(mask, bool).reshape(binned_shape), img, np.nan)
        lim = np.nanpercentile(np.abs(img), 99) or 1.0
        plot_map(img, ax=axes[0, i], title=f"PC {i + 1} scores", scale=scale, cmap="RdBu_r",
                 colorbar=False, vmin=-lim, vmax=lim)
        x = energy if energy is not None and len(energy) == pca_result.components.shape[1] \
            else np.arange(pca_result.components.shape[1])
        axes[1, i].plot(x, pca_result.components[i], lw=0.8, color="0.2")
        axes[1, i].set_title(f"PC {i + 1} loading", fontsize=9)
        axes[1, i].set_xlabel("Energy (keV)" if energy is not None else "feature")
    if n_components > n:
        fig.suptitle(f"first {n} of {n_components} components shown")
    fig.tight_layout()
    return axes


def plot_gmm_criteria(criteria, ax=None, n_clusters=None):
    """BIC and AIC against the number of Gaussian-mixture components."""
    _, plt = _mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(criteria["n"], criteria["bic"], "o-", label="BIC")
    ax.plot(criteria["n"], criteria["aic"], "s--", label="AIC")
    if n_clusters is not None:
        ax.axvline(n_clusters, color="0.5", ls=":", label=f"N_CLUSTERS = {n_clusters}")
    ax.set_xlabel("number of clusters")
    ax.set_ylabel("information criterion (lower is better)")
    ax.legend(frameon=False)
    return ax


def plot_probability_maps(result, scale=None, axes=None):
    """Posterior probability (W1) or membership strength (W2) maps of each cluster."""
    _, plt = _mpl()
    prob = np.asarray(result.probabilities)
    if prob.ndim == 2:    # W2: one membership map, show per cluster where labelled
        k = result.n_clusters
        maps = [np.where(result.labels == j, prob, np.nan) for j in range(k)]
    else:
        k = prob.shape[-1]
        maps = [np.where(result.mask, prob[..., j], np.nan) for j in range(k)]
    if axes is None:
        _, axes = plt.subplots(1, max(k, 1), figsize=(3.0 * max(k, 1), 3.0), squeeze=False)
    axes = np.asarray(axes).reshape(-1)
    for j in range(k):
        plot_map(maps[j], ax=axes[j], title=f"cluster {j}", scale=scale, cmap="magma",
                 colorbar=j == k - 1, vmin=0, vmax=1)
        for sp in axes[j].spines.values():
            sp.set_edgecolor(cluster_color(j))
            sp.set_linewidth(3)
    return axes


def plot_clusters(result, scale=None, title=None, fig=None):
    """Cluster map next to the embedding (W2) or PCA-score (W1) scatter, shared colours.

    Returns
    -------
    array of two axes
    """
    _, plt = _mpl()
    if fig is None:
        fig = plt.figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    wf = "workflow 2 (UMAP + HDBSCAN)" if result.workflow == 2 else "workflow 1 (PCA + GMM)"
    n_noise = int(np.sum(result.labels_binned[result.mask_binned] < 0))
    t = title or f"{wf}: {result.n_clusters} clusters" + (
        f", noise {100 * result.noise_fraction:.0f} %" if result.workflow == 2 else "")
    plot_cluster_map(result.labels, ax=axes[0], mask=result.mask, scale=scale, title=t)
    m = result.mask_binned.ravel()
    emb = result.embedding if result.workflow == 2 and result.embedding is not None \
        else result.scores
    if emb.shape[1] >= 2:
        plot_embedding(emb[m], result.labels_binned.ravel()[m], ax=axes[1],
                       title="UMAP embedding" if result.workflow == 2 else "PCA scores")
    else:
        axes[1].hist(emb[m, 0], bins=50)
    if result.workflow == 2 and n_noise:
        axes[1].set_title(axes[1].get_title() + f" ({n_noise} noise px)")
    fig.tight_layout()
    return axes


def plot_thickness_check(features_by_norm, pcas_by_norm, scale=None, fig=None):
    """Total counts next to the first PCA score map for each feature normalisation.

    Parameters
    ----------
    features_by_norm : dict {normalization: helpers.cluster.Features}
    pcas_by_norm : dict {normalization: PCAResult}

    Returns
    -------
    array of axes
    """
    from .decompose import score_count_correlation
    _, plt = _mpl()
    norms = list(features_by_norm)
    if fig is None:
        fig = plt.figure(figsize=(3.6 * (1 + len(norms)), 3.4))
    axes = fig.subplots(1, 1 + len(norms))
    f0 = features_by_norm[norms[0]]
    tot = f0.counts.sum(axis=1)
    img = np.where(f0.mask, tot, np.nan).reshape(f0.binned_shape)
    plot_map(img, ax=axes[0], title="total counts (binned)", scale=scale, cmap="gray")
    for ax, norm in zip(axes[1:], norms):
        f, p = features_by_norm[norm], pcas_by_norm[norm]
        c = score_count_correlation(p, tot, f.mask, n=3)
        i = int(np.argmax(c))
        sc = np.where(f.mask, p.all_scores[:, i], np.nan).reshape(f.binned_shape)
        plot_map(sc, ax=ax, scale=scale, cmap="RdBu_r",
                 title=f"norm={norm!r}: PC{i + 1}\n|corr with counts| = {c[i]:.2f}")
    fig.tight_layout()
    return axes


def binned_scale(signal, bin_factor):
    """(pixel size, units) of a signal's scan after ``bin_factor`` × ``bin_factor`` binning."""
    px, units = _axis_scale(signal)
    return (None, None) if px is None else (px * bin_factor, units)
