"""Figures of the decomposition: scree plot, score maps and loadings, GMM criteria, the
thickness check of notebook 02."""
from __future__ import annotations

import numpy as np

from ..decompose import score_count_correlation
from .core import mpl, plot_map


def plot_scree(pca_result, ax=None, n_components=None):
    """Scree plot: explained-variance ratio (log axis) per component, elbow marked.

    Parameters
    ----------
    pca_result : helpers.decompose.PCAResult
    n_components : int, optional; also mark the number actually used
    """
    _, plt = mpl()
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
    _, plt = mpl()
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
    _, plt = mpl()
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
    _, plt = mpl()
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
