"""Figures of results: cluster compositions with error bars, window vs fit, entropies,
metal : anion ratios, z-scores of composition differences, contingency tables."""
from __future__ import annotations

import numpy as np

from ..compare import z_threshold
from ..quant.names import display_name
from .core import cluster_color


def plot_compositions(quant, ax=None, error="total", elements=None):
    """Grouped bar chart: at% of each element per cluster, with ±1σ error bars; the legend
    gives each cluster's number, name (``quant.names``) and pixels."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    els = elements or quant.elements
    n = len(quant.clusters)
    width = 0.8 / n
    xs = np.arange(len(els))
    names = getattr(quant, "names", None) or {}
    for j, c in enumerate(quant.clusters):
        comp = quant.compositions[c]
        idx = [comp.elements.index(e) for e in els]
        err = (comp.err_total if error == "total" else comp.err_counting)[idx]
        ax.bar(xs + (j - (n - 1) / 2) * width, comp.at_percent[idx], width, yerr=err,
               capsize=2, label=f"cluster {display_name(c, names.get(c))} ({comp.n_pixels:.0f} px)",
               color=cluster_color(int(c)))
    ax.set_xticks(xs, els)
    ax.set_ylabel("at%")
    ax.set_title(f"Workflow {quant.workflow}: cluster compositions (±1σ {error})")
    if n <= 10:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


def plot_method_comparison(fit_quant, window_quant, ax=None):
    """Window-integration at% against fitted at% for every (cluster, element), with the 1:1 line."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 4.5))[1]
    allv = []
    names = getattr(fit_quant, "names", None) or {}
    for j, c in enumerate(fit_quant.clusters):
        f = fit_quant.compositions[c]
        w = window_quant.compositions.get(c)
        if w is None or not (f.quantified and w.quantified):
            continue
        ax.errorbar(f.at_percent, w.at_percent, xerr=f.err_counting, yerr=w.err_counting,
                    fmt="o", ms=4, color=cluster_color(int(c)),
                    label=f"cluster {display_name(c, names.get(c))}")
        for e, x, y in zip(f.elements, f.at_percent, w.at_percent):
            if abs(x - y) > 2:
                ax.annotate(e, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=8)
        allv += list(f.at_percent) + list(w.at_percent)
    hi = max(allv, default=1.0) * 1.05
    ax.plot([0, hi], [0, hi], color="0.5", lw=0.8)
    ax.set_xlabel("fitted model (at%)")
    ax.set_ylabel("background windows (at%)")
    ax.set_title("Window integration vs model fit")
    if len(fit_quant.clusters) <= 8:
        ax.legend(fontsize=8)
    return ax


def _bars(table, ax, value, err_col, ylabel, title):
    """Bars of ``value`` ± ``err_col``, one group per workflow, each bar in its cluster's colour
    (the colour of that cluster in the workflow's maps; cluster numbers are the workflows' own,
    so clusters are not aligned across workflows)."""
    wfs = list(dict.fromkeys(table["workflow"]))
    x, ticks = 0.0, []
    for wf in wfs:
        t = table[table["workflow"] == wf]
        xs = x + np.arange(len(t))
        ax.bar(xs, t[value], 0.8, yerr=t[err_col], capsize=3,
               color=[cluster_color(int(c)) for c in t["cluster"]], edgecolor="k", lw=0.4)
        names = t["name"] if "name" in t else [""] * len(t)
        ticks += [(xi, display_name(c, nm)) for xi, c, nm in zip(xs, t["cluster"], names)]
        ax.annotate(f"workflow {wf}", (xs.mean(), 1), xytext=(0, -4),   # above the bars:
                    textcoords="offset points", xycoords=("data", "axes fraction"),
                    ha="center", va="top", fontsize=9, fontweight="bold")  # names below
        x += len(t) + 1
    named = "name" in table and table["name"].astype(bool).any()
    ax.set_xticks([p for p, _ in ticks], [lab for _, lab in ticks],
                  **({"rotation": 30, "ha": "right", "fontsize": 8} if named else {}))
    ax.set_xlabel("cluster (numbered within each workflow)")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.12 * (hi - lo))   # room for the workflow labels
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return ax


def plot_entropy(table, ax=None, error="total"):
    """Entropy of every cluster (±1σ) per workflow, against the ideal maximum ``f ln N``."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(max(6, 0.3 * len(table) + 3), 3.5))[1]
    err_col = "s_conf_R_err" if error == "total" else "s_conf_R_err_counting"
    _bars(table, ax, "s_conf_R", err_col, r"$S_\mathrm{conf}$ / R",
          f"Configurational entropy (±1σ {error})")
    for smax in sorted(set(table["s_max_R"])):
        n = int(table.loc[table["s_max_R"] == smax, "n_cations"].iloc[0])
        ax.axhline(smax, color="k", ls="--", lw=0.8)
        ax.annotate(f"ideal max, {n} cations: {smax:.3f} R", (0, smax), xytext=(2, 2),
                    textcoords="offset points", fontsize=8)
    ax.set_ylim(0, max(table["s_max_R"]) * 1.15)
    return ax


def plot_metal_to_sulfur(table, ax=None, error="total"):
    """Metal : anion ratio of every cluster of a compound (±1σ); 1 is stoichiometric MX."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(max(6, 0.3 * len(table) + 3), 3.2))[1]
    err_col = "metal_to_sulfur_err" if error == "total" else "metal_to_sulfur_err_counting"
    anions = {m.split(")")[-1].split(",")[0].strip() for m in table.get("site_model", [])}
    anion = "/".join(sorted(a for a in anions if a)) or "anion"
    _bars(table, ax, "metal_to_sulfur", err_col, f"metal : {anion}",
          f"Metal : {anion} ratio (±1σ {error})")
    ax.axhline(1.0, color="k", ls="--", lw=0.8, label=f"M{anion} (1 : 1)")
    ax.legend(fontsize=8)
    return ax


def plot_z_scores(diff, ax=None, alpha=0.05, title=None):
    """Bar chart of per-element z-scores with the Bonferroni threshold (from
    :func:`composition_difference`)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3))[1]
    thr = z_threshold(len(diff), alpha)
    colors = ["C3" if s else "C0" for s in diff["significant"]]
    ax.bar(diff["element"], diff["z"], color=colors)
    for s in (-thr, thr):
        ax.axhline(s, color="k", ls="--", lw=0.8)
    ax.annotate(f"|z| = {thr:.2f} (p = {alpha} family-wise)", (0, thr), xytext=(2, 2),
                textcoords="offset points", fontsize=8)
    ax.set_ylabel("z = Δat% / σ")
    ax.set_title(title or "Composition difference between two clusters")
    return ax


def plot_contingency(table, ax=None, title=None):
    """Heat map of a contingency table (pixel counts) with the counts written in."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 4))[1]
    v = table.values
    ax.imshow(v, cmap="Blues")
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            ax.text(j, i, str(v[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if v[i, j] > v.max() / 2 else "black")
    ax.set_xticks(range(v.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(v.shape[0]), [str(r) for r in table.index])
    ax.set_xlabel(table.columns.name or "b")
    ax.set_ylabel(table.index.name or "a")
    ax.set_title(title or "Pixels per cluster pair (-1 = noise / vacuum)")
    return ax
