"""Figures of maps: element maps, correlations, cluster maps, embeddings, probabilities."""
from __future__ import annotations

import numpy as np

from .core import (MASKED_COLOR, MASKED_LABEL, NOISE_COLOR, add_scalebar, axis_scale,
                   cluster_color, cluster_colors, display_labels, mpl, plot_map)


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
    matplotlib, plt = mpl()
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
    px, units = axis_scale(scale)
    add_scalebar(ax, px, units or "px", n_pixels_wide=lab.shape[1])
    if legend:
        present = sorted(set(np.unique(lab).tolist()))
        handles = []
        for k in present:
            if k == MASKED_LABEL:
                name = "vacuum/support"
            elif k == -1:   # without a mask, -1 is noise and vacuum alike
                name = "noise" if mask is not None else "unassigned (noise, vacuum)"
            else:
                name = (names or {}).get(k, f"cluster {k}")
            handles.append(Patch(color=cluster_color(k), label=name))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8,
                  frameon=False)
    return ax


def plot_embedding(embedding, labels, ax=None, dims=(0, 1), s=3, title=None):
    """Scatter of an embedding (UMAP or PCA scores) coloured by cluster, noise grey."""
    _, plt = mpl()
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
    _, plt = mpl()
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
    _, plt = mpl()
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


def plot_probability_maps(result, scale=None, axes=None, per_pixel=False):
    """Posterior probability (W1) or membership strength (W2) maps of each cluster: the
    result's own (with the spatial prior, the prior's), or with ``per_pixel`` the per-pixel
    model's (``result.probabilities_per_pixel``, when the prior ran)."""
    _, plt = mpl()
    pp = getattr(result, "probabilities_per_pixel", None)
    prob = np.asarray(pp if per_pixel and pp is not None else result.probabilities)
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
    _, plt = mpl()
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


def plot_spatial_prior(result, regularised=None, scale=None, fig=None):
    """Per-pixel labels next to the labels regularised by the spatial prior, shared colours.

    ``result`` is a workflow result; ``regularised`` another one at some coupling (default:
    ``result`` itself, whose per-pixel labels are ``result.labels_per_pixel``).

    Returns
    -------
    array of two axes
    """
    _, plt = mpl()
    reg = result if regularised is None else regularised
    before = reg.labels_per_pixel if reg.labels_per_pixel is not None else result.labels
    if fig is None:
        fig = plt.figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    sample = np.asarray(reg.mask, bool)
    changed = float(np.mean((reg.labels != before)[sample])) if sample.any() else 0.0
    beta = reg.spatial.beta if reg.spatial is not None else 0.0
    plot_cluster_map(before, ax=axes[0], mask=reg.mask, scale=scale,
                     title=f"workflow {reg.workflow}: per pixel")
    plot_cluster_map(reg.labels, ax=axes[1], mask=reg.mask, scale=scale,
                     title=f"with the spatial prior (beta = {beta:.2f}): "
                           f"{100 * changed:.1f} % changed")
    fig.tight_layout()
    fig.subplots_adjust(wspace=0.55)   # tight_layout ignores the left map's outside legend
    return axes
