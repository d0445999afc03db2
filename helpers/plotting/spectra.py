"""Figures of spectra: a spectrum with its lines marked, cluster mean spectra, a fitted
cluster spectrum with its model, one pixel against its cluster."""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..quant import cluster_spectra
from ..xray.lines import line_energy, xray_line_positions
from .core import cluster_color, mpl


def plot_spectrum(energy, counts, ax=None, elements=None, label=None, color=None,
                  mark_lines=True, beam_energy=None, log=False, energy_range=None):
    """A spectrum with the main X-ray lines of ``elements`` marked and labelled.

    Parameters
    ----------
    energy : 1-D array (keV)
    counts : 1-D array
    elements : list of str, optional; their Kα/Lα/Mα-family lines with weight ≥ 0.1 are marked
    """
    _, plt = mpl()
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
    _, plt = mpl()
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
        top = lf.observed.max()
        for xl, I in zip(comp.xray_lines, comp.intensities):
            el, ln = xl.split("_", 1)
            e = line_energy(el, ln)
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


def plot_pixel_vs_cluster(signal, labels, cluster=None, ax=None, energy_range=(1.5, 10.5)):
    """One pixel's spectrum next to its cluster's summed spectrum (scaled to the same total):
    why averaging raises the signal-to-noise ratio.

    ``cluster`` None: the largest cluster. When no pixel carries a cluster (every pixel noise
    or masked) the axes say so instead of failing: a figure is no reason to lose a run.
    """
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    ax = ax or plt.subplots(figsize=(8, 3.2))[1]
    if cluster is None:
        sizes = np.bincount(labels[labels >= 0].ravel())
        if sizes.size == 0:
            ax.text(0.5, 0.5, "no pixel belongs to a cluster (all noise or masked)",
                    ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return ax
        cluster = int(np.argmax(sizes))
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
