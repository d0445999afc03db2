#!/usr/bin/env python
"""Generalisation benchmark: both workflows on random simulated scenes (``helpers.scenes``).

The presets are the paper's two samples; this asks how the workflows do on samples they were
not developed on. For every scene of :func:`helpers.scenes.scene_suite` it runs workflow 1
(PCA + GMM, with the TRUE number of phases as ``n_clusters``: the paper's user sets it by hand)
and workflow 2 (UMAP + HDBSCAN) with their default parameters, and measures against the truth:

* ARI over true sample pixels (vacuum/support excluded), unassigned pixels (HDBSCAN noise,
  pixels the automatic mask called vacuum) counted as one more label; the noise fraction;
* the per-pixel Poisson ceiling ARI (``tests/ceiling.py``), and ARI - ceiling;
* true phases found (rule in ``found_phases``);
* Cliff-Lorimer compositions of the clusters against the true phase compositions: |error| per
  (cluster, element) and the 2-sigma coverage of the reported total uncertainty.

Commands (from the project root)::

    .venv/bin/python benchmarks/generalisation.py            # 30 scenes 128x128 + 4 of 256x256
    .venv/bin/python benchmarks/generalisation.py --quick    # 6 scenes of 64x64 (harness check)
    .venv/bin/python benchmarks/generalisation.py --seeds 3 7 --size 128 --jobs 2
    .venv/bin/python benchmarks/generalisation.py --w2 min_samples=10 umap_input=spectra --tag w2ms10

Scenes run in ``--jobs`` long-lived worker processes (umap-learn's numba code costs ~30 s to
load in every new process), each scene inside its own try/except with its own empty result
cache; an exception, a timeout or a crashed worker is recorded for that scene and a fresh worker
goes on (``--isolate``: a fresh process for every scene instead).
Results: ``benchmarks/generalisation[_TAG].md`` and ``..._ari.png`` (``--quick`` and ``--seeds``
runs write them under ``benchmarks/_work/``), raw numbers in ``benchmarks/_work/generalisation[_TAG].json`` and
one JSON per scene in ``benchmarks/_work/generalisation[_TAG]/`` (``--resume`` reuses them).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "_work"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # tests/ceiling.py
warnings.filterwarnings("ignore")


# ============================================================================================
# ADAPTER: every call into the package's workflow / quantification functions is here (they
# are being moved to a new module: only this section should need to change).
# ============================================================================================
def _extras(r, rerun):
    """What every run also hands to :func:`evaluate` (not stored): the labels before the
    spatial prior (None when it was off), workflow 2's before its split test (None when it did
    not run) and a re-run for the split-half check."""
    before = None if r.spatial is None else np.asarray(r.labels_per_pixel)
    unsplit = getattr(r, "labels_unsplit", None)
    return dict(_labels_per_pixel=before, _rerun=rerun,
                _labels_unsplit=None if unsplit is None else np.asarray(unsplit),
                _probabilities=(r.probabilities, getattr(r, "probabilities_per_pixel", None)))


def own_probability(labels, probabilities):
    """Each pixel's probability of its own label: from per-cluster posteriors (W1,
    rows x cols x k) or a membership (W2, rows x cols); 0 where unassigned."""
    p = np.asarray(probabilities, float)
    if p.ndim == 3:
        p = np.take_along_axis(p, np.clip(labels, 0, p.shape[-1] - 1)[..., None], -1)[..., 0]
    return np.where(labels >= 0, p, 0.0)


def calibration(labels, probabilities, truth):
    """Mean probability of the own label over the assigned sample pixels, and the share of
    them whose cluster's majority phase is their true phase: equal for honest probabilities."""
    t = truth.labels
    m = (labels >= 0) & (t >= 0)
    if probabilities is None or not m.any():
        return None
    right = np.zeros(t.shape, bool)
    for c in np.unique(labels[m]):
        mc = m & (labels == c)
        right |= mc & (t == np.bincount(t[mc]).argmax())
    return dict(mean_probability=float(own_probability(labels, probabilities)[m].mean()),
                share_right=float(right[m].mean()))


def run_workflow1(signal, n_clusters, **params):
    """Workflow 1 (PCA + GMM). Returns (labels on the original grid, info dict)."""
    from helpers.workflows import workflow1
    r = workflow1(signal, n_clusters=n_clusters, **params)
    rerun = lambda s: workflow1(s, n_clusters=n_clusters, cache=False, **params).labels  # noqa: E731
    return np.asarray(r.labels), dict(n_clusters=int(r.n_clusters), n_components=int(r.n_components),
                                      noise_fraction_binned=float(r.noise_fraction),
                                      beta=_beta(r), **_extras(r, rerun))


def run_workflow2(signal, **params):
    """Workflow 2 (UMAP + HDBSCAN). Returns (labels on the original grid, info dict)."""
    from helpers.workflows import workflow2
    r = workflow2(signal, **params)
    rerun = lambda s: workflow2(s, cache=False, **params).labels  # noqa: E731
    return np.asarray(r.labels), dict(n_clusters=int(r.n_clusters), n_components=int(r.n_components),
                                      noise_fraction_binned=float(r.noise_fraction),
                                      min_cluster_size=int(r.params.get("min_cluster_size", -1)),
                                      min_samples=int(r.params.get("min_samples", -1)),
                                      beta=_beta(r),
                                      anisotropy=bool(r.params.get("spatial_anisotropy", False)),
                                      **_extras(r, rerun))


def _beta(r):
    return None if r.spatial is None else float(r.spatial.beta)


def split_half_ari(signal, rerun, labels, seed=0):
    """ARI between the labels of two independent halves of the counts
    (:func:`helpers.reproducibility.split_half`), the check a user can run without truth."""
    from helpers.reproducibility import split_half
    a = float(split_half(signal, rerun, labels, seed=seed).ari)
    return a if np.isfinite(a) else None   # one cluster in both halves: nothing to reproduce


def quantify(signal, labels, workflow=1):
    """Cliff-Lorimer composition of every cluster: list of dicts with ``cluster``,
    ``elements``, ``at_percent``, ``err_total`` and ``err_counting`` (1 sigma, at%; counting:
    the spectrum's Poisson statistics alone, without the k-factors' uncertainty)."""
    from helpers.quant import quantify_clusters
    q = quantify_clusters(signal, labels, workflow=workflow)
    return [dict(cluster=int(c), elements=list(q.compositions[c].elements),
                 at_percent=[float(x) for x in q.compositions[c].at_percent],
                 err_total=[float(x) for x in q.compositions[c].err_total],
                 err_counting=[float(x) for x in q.compositions[c].err_counting])
            for c in q.clusters]


def ceiling_ari(signal, truth):
    """Per-pixel Poisson ceiling (``tests/ceiling.py``)."""
    from ceiling import poisson_ceiling_ari
    return float(poisson_ceiling_ari(signal, truth))


def map_ceiling_labels(signal, truth, bin_factor=2):
    """Labels of the MAP per-pixel classifier (see :func:`map_ceiling_ari`) on the original
    grid, -1 where unassigned."""
    from ceiling import _bin
    counts = _bin(np.asarray(signal.data, dtype=np.float64), bin_factor)
    path = _bin(np.asarray(truth.path_lengths, float).sum(axis=-1), bin_factor).reshape(-1)
    bg = np.asarray(truth.background_spectrum, float) * bin_factor ** 2
    unit = np.asarray(truth.unit_spectra, float)
    c = counts.reshape(-1, counts.shape[-1])
    ll = np.empty((c.shape[0], unit.shape[0]))
    for k in range(unit.shape[0]):
        mu = np.maximum(path[:, None] * unit[k][None, :] + bg[None, :], 1e-300)
        ll[:, k] = (c * np.log(mu) - mu).sum(axis=1)
    share = _bin(np.moveaxis(np.eye(unit.shape[0])[np.clip(truth.labels, 0, None)]
                             * (truth.labels >= 0)[..., None], -1, -1), bin_factor).reshape(
        -1, unit.shape[0]).sum(0)
    lab = np.argmax(ll + np.log(np.maximum(share / share.sum(), 1e-12))[None, :], axis=1)
    lab[path <= 0] = -1
    rb, cb = counts.shape[:2]
    up = np.repeat(np.repeat(lab.reshape(rb, cb), bin_factor, 0), bin_factor, 1)
    out = np.full(truth.labels.shape, -1, int)
    out[:up.shape[0], :up.shape[1]] = up
    return out


def map_ceiling_ari(signal, truth, bin_factor=2):
    """As :func:`ceiling_ari` but maximum a posteriori: the log-likelihood of each phase plus
    the log of its true share of the binned pixels. The plain ceiling is maximum likelihood,
    which a mixture model with fitted weights (workflow 1) can beat when phases are unequal
    and counts low; this one is the Bayes classifier of pure binned pixels, a tighter bound."""
    from sklearn.metrics import adjusted_rand_score
    out = map_ceiling_labels(signal, truth, bin_factor)
    keep = (truth.labels >= 0) & (out >= 0)
    return float(adjusted_rand_score(truth.labels[keep], out[keep]))


def mask_oracle(signal, truth, all_counts=False):
    """Which true phases could be told from every other phase by a test that knew their true
    masks: each phase's summed spectrum on the test colour of the split test's checkerboard
    against every other's, compared as the split test confirms a split (Wald chi-square on
    line-intensity fractions, the absorption direction of the larger phase left out; p below
    ALPHA / number of phases and a difference >= MIN_DIFFERENCE). One bool per phase: an upper
    bound for a method that has to find the masks in the data and confirm them on counts its
    search did not see.

    ``all_counts=True``: every pixel's counts, p below 0.05 / number of phases and no smallest
    difference -- whether the phases differ at all at that dose (identifiable), the bound for
    any method however it finds and tests its regions."""
    from helpers.quant.clusters import quant_lines
    from helpers.quant.linefit import fit_line_intensities
    from helpers.quant.spectra import cluster_spectra
    from helpers.workflows import split as S
    from helpers.workflows.fractions import wald_fractions
    t, n = truth.labels, len(truth.phase_names)
    lines = quant_lines(signal)
    lab = np.where((t >= 0) & (all_counts | ~S.checkerboard(t.shape)), t, -1)
    alpha, min_diff = (0.05, 0.0) if all_counts else (S.ALPHA, S.MIN_DIFFERENCE)
    size = np.bincount(lab[lab >= 0], minlength=n)
    present = [p for p in range(n) if size[p] >= S.MIN_PART]
    fits = dict(zip(present, fit_line_intensities(cluster_spectra(signal, lab, clusters=present),
                                                  [k.xray_line for k in lines])))
    along = S.absorption_direction(signal, lab, present, lines)
    ok = [p in present and fits[p] is not None for p in range(n)]
    for p in range(n):
        for q in range(n):
            if q == p or not ok[p] or q not in present or fits[q] is None:
                continue
            _, _, pv, diff = wald_fractions(fits[p], fits[q],
                                            along.get(q if size[q] > size[p] else p))
            if not (pv < alpha / n and diff >= min_diff):
                ok[p] = False
    return ok


def potts_oracle_labels(signal, truth, beta, anisotropy=False):
    """Labels of workflow 2's spatial prior started from the *true* labels: the clusters'
    spectra are estimated from the truth, the data term is the workflow's (its energy range
    and channel binning), the coupling ``beta`` the one workflow 2 used on this map (estimated
    from clean true labels it would be so large that nothing moves), and the prior relabels
    every pixel as it does after clustering (:func:`helpers.spatial.regularise_labels`, noise
    test on; ``anisotropy`` workflow 2's setting, so the direction factors are read off the
    true labels). A phase this loses (e.g. a 1-2 px layer at ~10 counts per pixel, outweighed by
    its neighbours) is beyond any labelling by that prior, however well the clusters were
    found."""
    from helpers.preprocess import auto_energy_bin, energy_slice, useful_energy_range
    from helpers.spatial import regularise_labels
    keep = truth.labels >= 0
    sl = energy_slice(signal, useful_energy_range(signal))
    return regularise_labels(signal.data, np.where(keep, truth.labels, -1), mask=keep,
                             beta=float(beta), energy_bin=auto_energy_bin(signal),
                             anisotropy=anisotropy,
                             channels=(sl.start, sl.stop)).labels


def make_scene(seed, size):
    from helpers.simulate.scenes import random_scene
    kind = os.environ.get("HEA_BENCH_KIND") or None       # --kind: one geometry only
    return random_scene(seed, size=size, kind=kind)


def default_suite():
    from helpers.simulate.scenes import scene_suite
    return scene_suite()
# ============================================================================================


FOUND_PURITY = 0.5        # a cluster "finds" phase p if >= 50 % of its pixels are p ...
FOUND_COMPLETENESS = 0.5  # ... and it covers >= 50 % of p's pixels
SMALL_PHASE = 0.02        # "every phase >= 2 % of the sample"
MATCH_PURITY = 0.5        # clusters quantified against their majority phase if purity >= 50 %
PURE_CLUSTER = 0.9        # 2-sigma coverage also reported for clusters this pure and the rest
BAD_DELTA = -0.2          # ARI - ceiling below this: a failure worth a regression case
INFORMATIVE = 0.5         # scenes whose ceiling is at least this can tell methods apart


# --------------------------------------------------------------------------------------------
# metrics (child side)
# --------------------------------------------------------------------------------------------
def ari(labels, truth):
    """ARI over true sample pixels; unassigned (-1) is one more label."""
    from sklearn.metrics import adjusted_rand_score
    keep = truth.labels >= 0
    return float(adjusted_rand_score(truth.labels[keep], np.asarray(labels)[keep]))


def ari_assigned(labels, truth):
    """ARI over true sample pixels that received a cluster."""
    from sklearn.metrics import adjusted_rand_score
    labels = np.asarray(labels)
    keep = (truth.labels >= 0) & (labels >= 0)
    return float(adjusted_rand_score(truth.labels[keep], labels[keep])) if keep.any() else None


def contingency(labels, truth):
    """(clusters, counts[cluster, phase]) over true sample pixels, unassigned excluded."""
    t = truth.labels
    keep = (t >= 0) & (labels >= 0)
    clusters = np.unique(labels[keep])
    n = len(truth.phase_names)
    m = np.zeros((len(clusters), n), int)
    for i, c in enumerate(clusters):
        m[i] = np.bincount(t[keep & (labels == c)], minlength=n)
    return clusters, m


def found_phases(labels, truth):
    """Phase p is found if some cluster has >= FOUND_PURITY of its (true-sample) pixels in p
    and holds >= FOUND_COMPLETENESS of p's pixels. Returns a list of bools, one per phase."""
    clusters, m = contingency(labels, truth)
    size_p = np.bincount(truth.labels[truth.labels >= 0], minlength=len(truth.phase_names))
    if len(clusters) == 0:
        return [False] * len(size_p)
    size_c = m.sum(1, keepdims=True)
    purity = m / np.maximum(size_c, 1)
    complete = m / np.maximum(size_p[None, :], 1)
    return [bool(np.any((purity[:, p] >= FOUND_PURITY) & (complete[:, p] >= FOUND_COMPLETENESS)))
            for p in range(len(size_p))]


def composition_errors(quant, labels, truth):
    """Errors of each cluster's composition against its majority phase (purity >= MATCH_PURITY).
    A cluster with no pixel left to quantify (NaN at%, e.g. a few pixels, all on boundaries)
    is counted in ``n_unquantified``, not in the errors."""
    clusters, m = contingency(labels, truth)
    row = {int(c): i for i, c in enumerate(clusters)}
    per, errs, covered = [], [], []
    unmatched = unquantified = 0
    for q in quant:
        if not np.all(np.isfinite(q["at_percent"])):
            unquantified += 1
            continue
        i = row.get(q["cluster"])
        if i is None or m[i].sum() == 0:
            unmatched += 1
            continue
        p = int(np.argmax(m[i]))
        purity = float(m[i, p] / m[i].sum())
        if purity < MATCH_PURITY:
            unmatched += 1
            continue
        true = truth.compositions[truth.phase_names[p]]
        e = np.array([x - true.get(el, 0.0) for el, x in zip(q["elements"], q["at_percent"])])
        s = np.asarray(q["err_total"])
        cov = np.abs(e) <= 2 * s
        cov_counting = np.abs(e) <= 2 * np.asarray(q.get("err_counting", s))
        per.append(dict(cluster=q["cluster"], phase=p, purity=purity,
                        max_abs_error=float(np.max(np.abs(e))),
                        worst_element=q["elements"][int(np.argmax(np.abs(e)))],
                        coverage_2sigma=float(cov.mean()), covered=[bool(x) for x in cov],
                        covered_counting=[bool(x) for x in cov_counting]))
        errs += list(np.abs(e))
        covered += list(cov)
    return dict(n_matched=len(per), n_unmatched=unmatched, n_unquantified=unquantified,
                abs_error_median=float(np.median(errs)) if errs else None,
                abs_error_max=float(np.max(errs)) if errs else None,
                coverage_2sigma=float(np.mean(covered)) if covered else None,
                abs_errors=[float(x) for x in errs], covered=[bool(x) for x in covered],
                clusters=per)


def _coverage_by_purity(comp, key="covered", pure=PURE_CLUSTER):
    """The 2-sigma coverage flags ``key`` ("covered" or "covered_counting") of
    ``composition_errors``' clusters, split by purity: (those of clusters >= ``pure``, those of
    the others). A cluster that mixes phases is compared with its majority phase, whose
    composition its own (honestly measured) one is not, so its misses say how pure the clusters
    are, not how honest the error bars."""
    hi, lo = [], []
    for c in comp.get("clusters", []):
        (hi if c["purity"] >= pure else lo).extend(c.get(key, []))
    return hi, lo


def thin_recall(labels, truth):
    """Recall of the three-pixel lamellae: share of each such phase's pixels lying in clusters
    whose majority phase it is. Returns {phase index: recall} (empty when none)."""
    thin = truth.params["scene"].get("three_px_phases") or []
    if not thin:
        return {}
    clusters, m = contingency(labels, truth)
    major = m.argmax(1) if len(clusters) else np.zeros(0, int)
    size_p = np.bincount(truth.labels[truth.labels >= 0], minlength=len(truth.phase_names))
    return {str(p): float(m[major == p, p].sum() / max(size_p[p], 1)) for p in thin}


def thin_kept(labels, before, truth):
    """Of the three-pixel lamellae's pixels that the labels before the prior had right (in a
    cluster whose majority phase is theirs), the share still right after it:
    {phase index: share} (empty when none)."""
    thin = truth.params["scene"].get("three_px_phases") or []
    if not thin:
        return {}
    right = [_majority_phase(lab, truth) for lab in (before, labels)]
    out = {}
    for p in thin:
        was, still = ((truth.labels == p) & (r == p) for r in right)
        if was.any():
            out[str(p)] = float((was & still).sum() / was.sum())
    return out


def _majority_phase(labels, truth):
    """Each pixel's cluster's majority phase (-1 where unassigned)."""
    clusters, m = contingency(labels, truth)
    major = np.full(labels.shape, -1)
    for c, p in zip(clusters.tolist(), m.argmax(1).tolist()):
        major[labels == c] = p
    return major


def _label_metrics(labels, truth):
    sample = truth.labels >= 0
    found = found_phases(labels, truth)
    fr = np.bincount(truth.labels[sample], minlength=len(found)) / sample.sum()
    return dict(ari=ari(labels, truth), ari_assigned=ari_assigned(labels, truth),
                noise_fraction=float(np.mean(labels[sample] < 0)),
                found=found, n_found=int(sum(found)), all_found=bool(all(found)),
                all_found_ge2=bool(all(f for f, x in zip(found, fr) if x >= SMALL_PHASE)),
                all_found_ge1=bool(all(f for f, x in zip(found, fr) if x >= 0.01)),
                thin_recall=thin_recall(labels, truth))


def evaluate(workflow, run, signal, truth, split_half=False):
    """One workflow on one scene: labels, then every metric; errors recorded, never raised."""
    out = dict(error=None)
    t0 = time.perf_counter()
    try:
        labels, info = run()
    except Exception as exc:  # recorded, not fatal
        out.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=6))
        return out, None
    out["time_s"] = time.perf_counter() - t0
    before, rerun = info.pop("_labels_per_pixel", None), info.pop("_rerun", None)
    unsplit = info.pop("_labels_unsplit", None)
    prob, prob_pp = info.pop("_probabilities", (None, None))
    out.update(info)
    out.update(_label_metrics(labels, truth))
    out["calibration"] = calibration(labels, prob, truth)
    if prob_pp is not None:   # the per-pixel model's probabilities, of the same labels
        out["calibration_per_pixel"] = calibration(labels, prob_pp, truth)
    if before is not None:   # the same run without the spatial prior
        out["no_prior"] = _label_metrics(before, truth)
        out["thin_kept"] = thin_kept(labels, before, truth)
    if unsplit is not None:   # the same run before workflow 2's split test
        out["no_split"] = _label_metrics(unsplit, truth)
    if split_half and rerun is not None:
        t1 = time.perf_counter()
        try:
            out["split_half_ari"] = split_half_ari(signal, rerun, labels)
        except Exception as exc:
            out["split_half_error"] = f"{type(exc).__name__}: {exc}"
        out["split_half_time_s"] = time.perf_counter() - t1
    t0 = time.perf_counter()
    try:
        q = quantify(signal, labels, workflow=workflow)
        out["composition"] = composition_errors(q, labels, truth)
    except Exception as exc:
        out["composition"] = dict(error=f"{type(exc).__name__}: {exc}")
    out["quant_time_s"] = time.perf_counter() - t0
    return out, labels


SCENE_KEYS = ("kind", "family", "n_phases", "fractions", "min_fraction", "dose", "dose_sample",
              "min_pair_difference", "close_pair", "vacuum_fraction", "sample_fraction", "style",
              "orientation", "stripe_width_px", "three_px_phases", "layer_phase",
              "layer_width_px", "grain_px", "corr_px", "n_particles", "radius_px",
              "thickness_ratio", "system")


def run_scene(seed, size, w1_params, w2_params):
    """Everything measured on one scene (a JSON-able dict)."""
    rec = dict(seed=int(seed), size=int(size), error=None, split_half_ari=None)
    t0 = time.perf_counter()
    signal, truth = make_scene(seed, size)
    rec["scene_time_s"] = time.perf_counter() - t0
    sc = truth.params["scene"]
    rec["scene"] = {k: sc[k] for k in SCENE_KEYS if k in sc}
    rec["scene"]["elements"] = list(truth.elements)
    n = int(sc["n_phases"])
    rec["n_sample_pixels"] = int((truth.labels >= 0).sum())
    try:
        rec["ceiling"] = ceiling_ari(signal, truth)
    except Exception as exc:
        rec["ceiling"] = None
        rec["ceiling_error"] = f"{type(exc).__name__}: {exc}"
    try:
        rec["ceiling_map"] = map_ceiling_ari(signal, truth)
        # which phases the classifier that knows the true spectra finds: no per-pixel method
        # can be expected to find a phase it cannot
        cm = _label_metrics(map_ceiling_labels(signal, truth), truth)
        rec["ceiling_map_found"] = {k: cm[k] for k in ("found", "n_found", "all_found_ge2")}
    except Exception as exc:
        rec["ceiling_map"] = None
        rec["ceiling_map_error"] = f"{type(exc).__name__}: {exc}"
    fr = np.bincount(truth.labels[truth.labels >= 0], minlength=n) / rec["n_sample_pixels"]
    for key, every in (("mask_oracle", False), ("ident_oracle", True)):
        try:
            found = mask_oracle(signal, truth, all_counts=every)
            rec[key] = dict(found=found, n_found=int(sum(found)), all_found_ge2=bool(
                all(f for f, x in zip(found, fr) if x >= SMALL_PHASE)))
        except Exception as exc:
            rec[key] = None
            rec[key + "_error"] = f"{type(exc).__name__}: {exc}"
    sh = os.environ.get("HEA_BENCH_SPLIT_HALF") == "1"
    rec["w1"], _ = evaluate(1, lambda: run_workflow1(signal, n, **w1_params), signal, truth, sh)
    rec["w2"], _ = evaluate(2, lambda: run_workflow2(signal, **w2_params), signal, truth, sh)
    rec["potts_oracle"] = None
    if rec["w2"].get("beta"):           # 0 or None: one cluster, no coupling to start from
        try:
            pm = _label_metrics(potts_oracle_labels(signal, truth, rec["w2"]["beta"],
                                                    rec["w2"].get("anisotropy", False)), truth)
            rec["potts_oracle"] = {k: pm[k] for k in ("ari", "found", "n_found",
                                                      "all_found_ge2")}
        except Exception as exc:
            rec["potts_oracle_error"] = f"{type(exc).__name__}: {exc}"
    rec["w1"]["n_clusters_requested"] = n
    for w in ("w1", "w2"):
        a = rec[w].get("ari")
        rec[w]["ari_minus_ceiling"] = (a - rec["ceiling"]) if a is not None and \
            rec["ceiling"] is not None else None
    rec["total_time_s"] = time.perf_counter() - t0
    return rec


# --------------------------------------------------------------------------------------------
# command line parsing of workflow parameters
# --------------------------------------------------------------------------------------------
def parse_params(items):
    """``["min_samples=10", "umap_input=spectra"]`` -> {"min_samples": 10, "umap_input": "spectra"}."""
    out = {}
    for it in items or []:
        if "=" not in it:
            raise SystemExit(f"workflow parameter {it!r} must be key=value")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k.strip()] = v
    return out


def parse_seeds(items):
    seeds = []
    for it in items:
        for part in str(it).split(","):
            if "-" in part.strip("-"):
                a, b = part.split("-")
                seeds += list(range(int(a), int(b) + 1))
            elif part:
                seeds.append(int(part))
    return seeds


# --------------------------------------------------------------------------------------------
# parent: one process per scene
# --------------------------------------------------------------------------------------------
def child_env(jobs):
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env.setdefault(k, threads)
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _scene_path(out_dir, seed, size):
    return out_dir / f"scene_{seed}_{size}.json"


def _finish(rec, seed, size, args, out_dir, wall):
    rec["wall_s"] = wall
    rec["config"] = config(args)
    _scene_path(out_dir, seed, size).write_text(json.dumps(rec, indent=1))
    status = rec.get("error") or (f"ceiling {_fmt(rec.get('ceiling'))}  "
                                  f"W1 {_fmt(rec['w1'].get('ari'))}  W2 {_fmt(rec['w2'].get('ari'))}")
    print(f"[{time.strftime('%H:%M:%S')}] scene {seed} ({size}x{size}) {wall:.0f} s: {status}",
          flush=True)
    return rec


def _cached(seed, size, args, out_dir):
    out = _scene_path(out_dir, seed, size)
    if args.resume and out.is_file():
        rec = json.loads(out.read_text())
        if rec.get("config") == config(args) and not rec.get("error"):
            return rec
    return None


def _child_cmd(args):
    cmd = [sys.executable, str(Path(__file__).resolve())]
    if args.w1:
        cmd += ["--w1", *args.w1]
    if args.w2:
        cmd += ["--w2", *args.w2]
    if args.split_half:
        cmd += ["--split-half"]
    return cmd


def run_isolated(seed, size, args, out_dir, env):
    """One scene in a fresh process (``--isolate``): nothing leaks between scenes."""
    hit = _cached(seed, size, args, out_dir)
    if hit is not None:
        return hit
    out = _scene_path(out_dir, seed, size)
    out.unlink(missing_ok=True)
    cache = tempfile.mkdtemp(prefix=f"hea_cache_{seed}_{size}_")
    cmd = _child_cmd(args) + ["--scene", f"{seed}:{size}", "--out", str(out)]
    t0 = time.perf_counter()
    err = None
    try:
        p = subprocess.run(cmd, env={**env, "HEA_CACHE_DIR": cache}, capture_output=True,
                           text=True, timeout=args.timeout)
        if p.returncode != 0 or not out.is_file():
            err = f"process exited {p.returncode}: {p.stderr.strip()[-1500:]}"
    except subprocess.TimeoutExpired:
        err = f"timeout after {args.timeout} s"
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    rec = json.loads(out.read_text()) if err is None else \
        dict(seed=seed, size=size, error=err, split_half_ari=None)
    return _finish(rec, seed, size, args, out_dir, time.perf_counter() - t0)


class Worker:
    """A long-lived child (``--worker``) that runs scenes sent on its stdin, one at a time.

    umap-learn's numba functions cost ~30 s to load or compile in every new process, more than
    the work on a 128x128 scene; a worker pays it once. Each scene still runs inside its own
    try/except with its own empty result cache; if the worker dies or exceeds the timeout on a
    scene, that scene is recorded as failed and a fresh worker takes the next one.
    """

    def __init__(self, args, env, log):
        self.args, self.env, self.log = args, env, log
        self.p = None

    def _start(self):
        self.p = subprocess.Popen(_child_cmd(self.args) + ["--worker"], env=self.env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(self.log, "ab"), bufsize=0)
        self.buf = b""

    def _readline(self, deadline):
        import select
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 5.0))
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise EOFError
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def run(self, seed, size, out_dir):
        hit = _cached(seed, size, self.args, out_dir)
        if hit is not None:
            return hit
        out = _scene_path(out_dir, seed, size)
        out.unlink(missing_ok=True)
        if self.p is None or self.p.poll() is not None:
            self._start()
        t0 = time.perf_counter()
        err = None
        try:
            self.p.stdin.write(f"{seed}:{size}:{out}\n".encode())
            deadline = time.monotonic() + self.args.timeout
            while not self._readline(deadline).startswith("@@DONE"):
                pass
        except TimeoutError:
            err = f"timeout after {self.args.timeout} s"
        except (EOFError, BrokenPipeError):
            self.p.wait()
            err = f"worker process died (exit {self.p.returncode}); see {self.log.name}"
        if err is not None:
            self.kill()
            rec = dict(seed=seed, size=size, error=err, split_half_ari=None)
        else:
            rec = json.loads(out.read_text())
        return _finish(rec, seed, size, self.args, out_dir, time.perf_counter() - t0)

    def kill(self):
        if self.p is not None and self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p = None

    def close(self):
        if self.p is not None and self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(timeout=30)
            except Exception:
                self.p.kill()
                self.p.wait()
        self.p = None


def worker_loop(args):
    """Child side of :class:`Worker`: ``seed:size:out_path`` lines in, ``@@DONE`` lines out."""
    w1, w2 = parse_params(args.w1), parse_params(args.w2)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        seed, size, out = line.split(":", 2)
        child_scene(int(seed), int(size), Path(out), w1, w2)
        sys.stdout.write(f"@@DONE {seed}:{size}\n")
        sys.stdout.flush()


def child_scene(seed, size, out, w1, w2):
    """One scene, inside a try, with its own empty result cache; the record goes to ``out``."""
    cache = tempfile.mkdtemp(prefix=f"hea_cache_{seed}_{size}_")
    old = os.environ.get("HEA_CACHE_DIR")
    os.environ["HEA_CACHE_DIR"] = cache
    try:
        rec = run_scene(seed, size, w1, w2)
    except Exception as exc:
        rec = dict(seed=seed, size=size, error=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc(limit=8), split_half_ari=None)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if old is None:
            os.environ.pop("HEA_CACHE_DIR", None)
        else:
            os.environ["HEA_CACHE_DIR"] = old
    out.write_text(json.dumps(rec, indent=1))


def config(args):
    return dict(w1=parse_params(args.w1), w2=parse_params(args.w2),
                split_half=bool(getattr(args, "split_half", False)),
                kind=getattr(args, "kind", None))


def _fmt(x, d=3):
    return "–" if x is None else f"{x:.{d}f}"


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def _vals(recs, w, key):
    return np.array([r[w][key] for r in recs if not r.get("error") and w in r
                     and r[w].get(key) is not None], float)


def _split_half_summary(runs, w):
    """Spearman correlation of the split-half ARI with the ARI against truth."""
    from scipy.stats import spearmanr
    pairs = [(r[w]["split_half_ari"], r[w]["ari"]) for r in runs
             if r[w].get("split_half_ari") is not None]
    if len(pairs) < 3:
        return dict(split_half_spearman=None, n_split_half=len(pairs))
    rho = spearmanr(*zip(*pairs)).statistic
    return dict(split_half_spearman=float(rho), n_split_half=len(pairs),
                split_half_median=float(np.median([p[0] for p in pairs])))


def _prior_summary(runs, w):
    """The spatial prior against the same run's per-pixel labels (when the prior was on)."""
    with_prior = [r for r in runs if r[w].get("no_prior")]
    if not with_prior:
        return {}
    gain = np.array([r[w]["ari"] - r[w]["no_prior"]["ari"] for r in with_prior])
    before = np.array([r[w]["no_prior"]["ari"] - r["ceiling"] for r in with_prior
                       if r.get("ceiling") is not None])
    thin = [(r[w]["thin_recall"], r[w]["no_prior"]["thin_recall"]) for r in with_prior
            if r[w].get("thin_recall")]
    lost = [[int(r["seed"]), int(r["size"])] for r in with_prior
            if r[w]["no_prior"]["all_found_ge1"] and not r[w]["all_found_ge1"]]
    # phases >= 1 % that the per-pixel labels found and the prior lost, scene by scene
    phase_lost = [[int(r["seed"]), int(r["size"]), p] for r in with_prior
                  for p, (a, b, x) in enumerate(zip(r[w]["found"], r[w]["no_prior"]["found"],
                                                    r["scene"]["fractions"]))
                  if b and not a and x >= 0.01]
    n_found_before = sum(int(b and x >= 0.01) for r in with_prior
                         for b, x in zip(r[w]["no_prior"]["found"], r["scene"]["fractions"]))
    # "kept": of the pixels of a 3-px lamellae phase that the per-pixel labels found, those
    # they had right, the share still right with the prior
    kept = [v for r in with_prior for p, v in (r[w].get("thin_kept") or {}).items()
            if r[w]["no_prior"]["found"][int(p)]]
    return dict(prior_gain_median=float(np.median(gain)), prior_gain_min=float(gain.min()),
                prior_worse_001=int(np.sum(gain < -0.01)),
                prior_worse_cases=[[int(r["seed"]), int(r["size"]), round(float(g), 3)]
                                   for r, g in zip(with_prior, gain) if g < -0.01],
                no_prior_delta_median=float(np.median(before)) if before.size else None,
                all_found_ge1=float(np.mean([r[w]["all_found_ge1"] for r in with_prior])),
                no_prior_all_found_ge1=float(np.mean([r[w]["no_prior"]["all_found_ge1"]
                                                      for r in with_prior])),
                phase_ge1_lost_by_prior=lost,
                phases_lost=phase_lost, n_phases_lost=len(phase_lost),
                n_phases_found_before=n_found_before,
                thin_kept_min=float(min(kept)) if kept else None, n_thin_kept=len(kept),
                thin_recall_min=float(min(min(a.values()) for a, _ in thin)) if thin else None,
                no_prior_thin_recall_min=float(min(min(b.values()) for _, b in thin))
                if thin else None, n_thin=len(thin))


def _split_summary(runs, w):
    """Workflow 2's split test against the same run's labels before it (when it ran)."""
    tested = [r for r in runs if r[w].get("no_split")]
    if not tested:
        return {}
    change = np.array([r[w]["ari"] - r[w]["no_split"]["ari"] for r in tested])
    split = change != 0
    return dict(split_scenes=int(split.sum()), n_split_tested=len(tested),
                split_change_median=float(np.median(change[split])) if split.any() else None,
                split_change_min=float(change.min()), split_change_max=float(change.max()),
                split_worse_001=int(np.sum(change < -0.01)),
                split_worse_cases=[[int(r["seed"]), int(r["size"]), round(float(c), 3)]
                                   for r, c in zip(tested, change) if c < -0.01],
                no_split_all_found_ge2=float(np.mean([r[w]["no_split"]["all_found_ge2"]
                                                      for r in tested])),
                no_split_phases_found=int(sum(r[w]["no_split"]["n_found"] for r in tested)))


def summarise(recs):
    ok = [r for r in recs if not r.get("error")]
    s = dict(n_scenes=len(recs), n_ok=len(ok), n_failed=len(recs) - len(ok))
    for w in ("w1", "w2"):
        d = _vals(ok, w, "ari_minus_ceiling")
        a = _vals(ok, w, "ari")
        errs = [e for r in ok for e in r[w].get("composition", {}).get("abs_errors", [])]
        cov = [c for r in ok for c in r[w].get("composition", {}).get("covered", [])]
        split = [_coverage_by_purity(r[w].get("composition", {})) for r in ok]
        cov_pure = [c for hi, _ in split for c in hi]
        cov_mixed = [c for _, lo in split for c in lo]
        cov_pure_counting = [c for r in ok for c in _coverage_by_purity(
            r[w].get("composition", {}), "covered_counting")[0]]
        runs = [r for r in ok if r[w].get("error") is None]
        inf = np.array([r[w]["ari_minus_ceiling"] for r in runs if r.get("ceiling") is not None
                        and r["ceiling"] >= INFORMATIVE and r[w].get("ari_minus_ceiling")
                        is not None])
        dm = np.array([r[w]["ari"] - r["ceiling_map"] for r in runs
                       if r.get("ceiling_map") is not None])
        s[w] = dict(
            delta_median_informative=float(np.median(inf)) if inf.size else None,
            delta_p10_informative=float(np.percentile(inf, 10)) if inf.size else None,
            n_informative=int(inf.size),
            delta_map_median=float(np.median(dm)) if dm.size else None,
            above_ceiling=int(np.sum(d > 0.02)),
            regression_cases=[[int(r["seed"]), int(r["size"])] for r in
                              sorted(runs, key=lambda r: r[w]["ari_minus_ceiling"])
                              if r[w].get("ari_minus_ceiling") is not None
                              and r[w]["ari_minus_ceiling"] < BAD_DELTA],
            n_ok=len(runs), n_error=len(ok) - len(runs),
            ari_median=float(np.median(a)) if a.size else None,
            delta_median=float(np.median(d)) if d.size else None,
            delta_p10=float(np.percentile(d, 10)) if d.size else None,
            delta_min=float(d.min()) if d.size else None,
            all_found_ge2=float(np.mean([r[w]["all_found_ge2"] for r in runs])) if runs else None,
            all_found=float(np.mean([r[w]["all_found"] for r in runs])) if runs else None,
            phases_found=(int(sum(r[w]["n_found"] for r in runs)),
                          int(sum(len(r[w]["found"]) for r in runs))),
            noise_median=float(np.median(_vals(ok, w, "noise_fraction"))) if runs else None,
            noise_max=float(np.max(_vals(ok, w, "noise_fraction"))) if runs else None,
            comp_error_median=float(np.median(errs)) if errs else None,
            comp_error_p90=float(np.percentile(errs, 90)) if errs else None,
            coverage_2sigma=float(np.mean(cov)) if cov else None,
            n_comp_values=len(errs),
            coverage_2sigma_pure=float(np.mean(cov_pure)) if cov_pure else None,
            n_comp_values_pure=len(cov_pure),
            coverage_2sigma_pure_counting=(float(np.mean(cov_pure_counting))
                                           if cov_pure_counting else None),
            coverage_2sigma_mixed=float(np.mean(cov_mixed)) if cov_mixed else None,
            n_comp_values_mixed=len(cov_mixed),
            n_unquantified=int(sum(r[w].get("composition", {}).get("n_unquantified", 0)
                                   for r in runs)),
            time_median=float(np.median(_vals(ok, w, "time_s"))) if runs else None)
        s[w].update(_split_half_summary(runs, w), **_prior_summary(runs, w),
                    **_split_summary(runs, w), **_calibration_summary(runs, w))
    c = np.array([r["ceiling"] for r in ok if r.get("ceiling") is not None])
    s["ceiling_median"] = float(np.median(c)) if c.size else None
    s["n_low_ceiling"] = int(np.sum(c < 0.1))
    cm = np.array([r["ceiling_map"] for r in ok if r.get("ceiling_map") is not None])
    s["ceiling_map_median"] = float(np.median(cm)) if cm.size else None
    # each oracle: how often it finds every phase, and the workflows among the scenes it does
    finds = {k: (lambda r, k=k: bool((r.get(k) or {}).get("all_found_ge2")))
             for k in ("ceiling_map_found", "mask_oracle", "potts_oracle")}
    for key, name in (("ceiling_map_found", "ceiling"), ("mask_oracle", "mask"),
                      ("potts_oracle", "potts"), ("ident_oracle", "ident")):
        o = [r[key] for r in ok if r.get(key)]
        s[f"{name}_all_found_ge2"] = float(np.mean([f["all_found_ge2"] for f in o])) if o else None
        s[f"{name}_phases_found"] = (int(sum(f["n_found"] for f in o)),
                                     int(sum(len(f["found"]) for f in o)), len(o))
    for w, pred, share, count in (
            ("w1", finds["ceiling_map_found"], "where_ceiling_does", "n_ceiling_finds_all"),
            ("w2", finds["ceiling_map_found"], "where_ceiling_does", "n_ceiling_finds_all"),
            ("w1", finds["mask_oracle"], "where_masks_tell", "n_masks_tell_all"),
            ("w2", finds["mask_oracle"], "where_masks_tell", "n_masks_tell_all"),
            ("w2", finds["potts_oracle"], "where_potts_does", "n_potts_finds_all"),
            ("w2", lambda r: finds["potts_oracle"](r) and finds["mask_oracle"](r),
             "where_both_do", "n_both_find_all")):
        among = [r for r in ok if pred(r) and r[w].get("error") is None]
        s[w]["all_found_ge2_" + share] = (
            float(np.mean([r[w]["all_found_ge2"] for r in among])) if among else None)
        s[w][count] = len(among)
    return s


def _oracles(r):
    """'told / kept' phases of the two oracles for the per-scene table."""
    n = lambda o: "–" if not o else str(o["n_found"])  # noqa: E731
    return f"{n(r.get('mask_oracle'))} / {n(r.get('potts_oracle'))} of {r['scene']['n_phases']}"


def _calibration_summary(runs, w):
    """Median and 90th percentile over the scenes of |mean probability of the own label -
    share of pixels right| (the workflow's probabilities, and the per-pixel model's), and the
    mean signed gap (> 0: too confident)."""
    out = {}
    for key, name in (("calibration", "calib"), ("calibration_per_pixel", "calib_pp")):
        g = np.array([r[w][key]["mean_probability"] - r[w][key]["share_right"]
                      for r in runs if r[w].get(key)])
        out[f"{name}_gap_median"] = float(np.median(np.abs(g))) if g.size else None
        out[f"{name}_gap_p90"] = float(np.percentile(np.abs(g), 90)) if g.size else None
        out[f"{name}_gap_mean"] = float(g.mean()) if g.size else None
    return out


def describe(sc):
    bits = [f"{sc['n_phases']}-phase {sc['family']} {sc['kind']}"]
    if sc.get("style"):
        bits.append(sc["style"])
    if sc.get("orientation"):
        w = sc.get("stripe_width_px", {})
        lo, hi = (min(w.values()), max(w.values())) if w else ("?", "?")
        bits.append(f"{sc['orientation']} stripes {lo} px" if lo == hi else
                    f"{sc['orientation']} stripes {lo}-{hi} px")
    if sc.get("layer_width_px"):
        bits.append(f"layer {sc['layer_width_px']} px (P{sc['layer_phase']})")
    if sc.get("n_particles"):
        bits.append(f"{sc['n_particles']} particles r {sc['radius_px'][0]:.0f}-"
                    f"{sc['radius_px'][1]:.0f} px")
    if sc.get("close_pair"):
        cp = sc["close_pair"]
        bits.append(f"close pair P{cp['phases'][0]}/P{cp['phases'][1]} "
                    f"(±{cp['delta']:g} {cp['up']}/{cp['down']})")
    if sc.get("vacuum_fraction", 0) > 0:
        bits.append(f"vacuum {100 * sc['vacuum_fraction']:.0f} %")
    return ", ".join(bits)


def diagnose(r, w):
    """A short guess at why workflow ``w`` did badly on scene record ``r``."""
    sc, x = r["scene"], r[w]
    fr = np.array(sc["fractions"])
    why = []
    if x.get("error"):
        return f"error: {x['error'][:120]}"
    if w == "w2" and x.get("n_clusters", 0) <= 1 and sc["n_phases"] > 1:
        why.append(f"one cluster for {sc['n_phases']} phases")
    elif x.get("n_clusters") is not None and x["n_clusters"] < sc["n_phases"]:
        why.append(f"{x['n_clusters']} clusters for {sc['n_phases']} phases")
    elif x.get("n_clusters") is not None and x["n_clusters"] > sc["n_phases"]:
        why.append(f"{x['n_clusters']} clusters for {sc['n_phases']} phases (split)")
    if x.get("noise_fraction", 0) > 0.2:
        why.append(f"{100 * x['noise_fraction']:.0f} % unassigned")
    missed = [p for p, f in enumerate(x.get("found", [])) if not f]
    if missed:
        why.append("missed " + ", ".join(f"P{p} ({100 * fr[p]:.1f} %)" for p in missed))
    if sc["dose_sample"] < 8:
        why.append(f"low dose ({sc['dose_sample']:.1f} counts/sample px)")
    if sc.get("min_pair_difference", 99) <= 3.01:
        cp = sc.get("close_pair") or {}
        if cp and any(p in missed for p in cp.get("phases", [])):
            why.append("close pair not separated")
    if sc.get("layer_width_px") and sc["layer_phase"] in missed:
        why.append(f"{sc['layer_width_px']} px layer: " + (
            "no 2x2 bin is pure" if sc["layer_width_px"] == 1 else "few pure 2x2 bins"))
    if sc.get("three_px_phases") and any(p in missed for p in sc["three_px_phases"]):
        why.append("3 px stripes")
    return "; ".join(why)


def write_report(recs, args, md_path, png_path, elapsed, argv=None):
    s = summarise(recs)
    ok = sorted([r for r in recs if not r.get("error")], key=lambda r: (r["size"], r["seed"]))
    cfg = config(args)
    kind_arg = f", kind={cfg['kind']!r}" if cfg.get("kind") else ""
    L = []
    L.append("# Generalisation benchmark: both workflows on random scenes\n")
    argv = sys.argv[1:] if argv is None else argv
    L.append(f"Run {date.today().isoformat()}, `{' '.join(['benchmarks/generalisation.py'] + argv)}`, "
             f"{s['n_scenes']} scenes ({s['n_failed']} failed), {elapsed / 60:.1f} min wall-clock "
             f"with {args.jobs} job(s) on {os.cpu_count()} cores. Scenes: `helpers.scenes."
             f"random_scene(seed, size{kind_arg})` "
             "(2048 channels of 10 eV), drawn from the seed alone.\n")
    L.append(f"Workflow parameters: W1 `workflow1(signal, n_clusters=<true number of phases>"
             f"{''.join(f', {k}={v!r}' for k, v in cfg['w1'].items())})` (n_clusters is the true "
             f"phase count, as the paper's user sets it by hand; everything else default); W2 "
             f"`workflow2(signal{''.join(f', {k}={v!r}' for k, v in cfg['w2'].items())})`"
             f"{' (all defaults)' if not cfg['w2'] else ''}.\n")
    L.append("**Definitions.** ARI: adjusted Rand index on the original pixel grid over true "
             "sample pixels (vacuum and support excluded); pixels a workflow left unassigned "
             "(HDBSCAN noise, or masked as vacuum) count as one more label. Ceiling: ARI of the "
             "per-pixel Poisson classifier that knows the true spectra and thickness "
             "(`tests/ceiling.py`, on the 2x2-binned grid, maximum likelihood); Δ = ARI − ceiling. "
             "MAP ceiling: the same classifier with the true phase shares as prior (Bayes "
             "classifier of pure binned pixels; W1's mixture weights let it beat the plain "
             "ceiling on unequal low-dose scenes). Noise: fraction of "
             "true sample pixels left unassigned. A true phase is **found** if one cluster has "
             f"≥ {100 * FOUND_PURITY:.0f} % of its pixels in that phase and covers ≥ "
             f"{100 * FOUND_COMPLETENESS:.0f} % of the phase's pixels. Composition: every cluster "
             f"whose majority phase holds ≥ {100 * MATCH_PURITY:.0f} % of its pixels is quantified "
             "(`quantify_clusters`, default fit, boundary pixels excluded) and compared with that "
             "phase's true at% for every element of the scene; |error| pooled over (cluster, "
             "element) of all scenes; 2σ coverage = share of those with |error| ≤ 2 × reported "
             "total σ (95 % expected). Split-half ARI (`--split-half`): ARI between the labels of "
             "two independent binomial halves of the counts, each clustered with the same "
             "parameters (`helpers.reproducibility.split_half`): what a user can check without "
             "truth. Probabilities: the workflow's probability of each assigned pixel's own label "
             "(with the spatial prior, its posterior marginals), averaged over the scene, against "
             "the share of those pixels whose cluster's majority phase is their true phase; "
             "equal when the probabilities are honest.\n")
    L.append("## Summary\n")
    L.append("| | W1 (PCA+GMM, true k) | W2 (UMAP+HDBSCAN) |")
    L.append("|---|---|---|")
    w1, w2 = s["w1"], s["w2"]

    def row(name, key, fmt=lambda v: _fmt(v)):
        L.append(f"| {name} | {fmt(w1.get(key))} | {fmt(w2.get(key))} |")
    row("median ARI", "ari_median")
    row("median Δ = ARI − ceiling", "delta_median")
    row("10th percentile of Δ", "delta_p10")
    row("worst Δ", "delta_min")
    row(f"median Δ on scenes with ceiling ≥ {INFORMATIVE}", "delta_median_informative")
    row(f"10th percentile of Δ on those", "delta_p10_informative")
    row(f"(scenes with ceiling ≥ {INFORMATIVE})", "n_informative", str)
    row("median ARI − MAP ceiling", "delta_map_median")
    row("scenes with ARI > ceiling + 0.02", "above_ceiling", str)
    row("scenes where every phase ≥ 2 % is found", "all_found_ge2", lambda v: _fmt(v, 2))
    row("scenes where every phase is found", "all_found", lambda v: _fmt(v, 2))
    def among(name, share, count, count_name="(such scenes)"):
        """The share of scenes with every phase found among those where an oracle does."""
        for k in (share, count):
            w1.setdefault(k, None)
            w2.setdefault(k, None)
        row(name, share, lambda v: _fmt(v, 2))
        row(count_name, count, lambda v: "–" if v is None else str(v))
    among("... among scenes where the MAP ceiling finds every phase ≥ 2 %",
          "all_found_ge2_where_ceiling_does", "n_ceiling_finds_all")
    among("... among scenes where known masks tell every phase ≥ 2 % apart",
          "all_found_ge2_where_masks_tell", "n_masks_tell_all",
          "(scenes where known masks tell every phase ≥ 2 % apart)")
    among("... among scenes where the prior started from the truth keeps every phase ≥ 2 %",
          "all_found_ge2_where_potts_does", "n_potts_finds_all")
    among("... among scenes where both (known masks, prior from the truth) do",
          "all_found_ge2_where_both_do", "n_both_find_all")
    row("true phases found (total)", "phases_found", lambda v: f"{v[0]} / {v[1]}")
    row("median noise fraction", "noise_median")
    row("max noise fraction", "noise_max")
    row("median \\|composition error\\| (at%)", "comp_error_median", lambda v: _fmt(v, 2))
    row("90th percentile \\|composition error\\| (at%)", "comp_error_p90", lambda v: _fmt(v, 2))
    row("2σ coverage", "coverage_2sigma", lambda v: _fmt(v, 2))
    row(f"... clusters ≥ {PURE_CLUSTER:.0%} pure", "coverage_2sigma_pure", lambda v: _fmt(v, 2))
    row("(their values)", "n_comp_values_pure", lambda v: "–" if v is None else str(v))
    row("... the same, counting σ only (no k-factor uncertainty)", "coverage_2sigma_pure_counting",
        lambda v: _fmt(v, 2))
    row(f"... clusters {MATCH_PURITY:.0%}-{PURE_CLUSTER:.0%} pure (compared with their majority "
        "phase)", "coverage_2sigma_mixed", lambda v: _fmt(v, 2))
    row("(their values)", "n_comp_values_mixed", lambda v: "–" if v is None else str(v))
    row("(cluster, element) values", "n_comp_values", str)
    row("probabilities: median \\|mean own-label probability − share right\\|",
        "calib_gap_median", lambda v: _fmt(v, 3))
    row("... 90th percentile", "calib_gap_p90", lambda v: _fmt(v, 3))
    row("... mean signed gap (> 0: too sure)", "calib_gap_mean", lambda v: _fmt(v, 3))
    row("... the per-pixel model's probabilities: median gap", "calib_pp_gap_median",
        lambda v: _fmt(v, 3))
    row("(clusters with no pixel left to quantify)", "n_unquantified", str)
    row("workflow errors", "n_error", str)
    row("median time per scene (s)", "time_median", lambda v: _fmt(v, 1))
    w1.setdefault("split_half_spearman", None)
    w2.setdefault("split_half_spearman", None)
    row("Spearman(split-half ARI, ARI vs truth)", "split_half_spearman")
    w1.setdefault("n_split_half", None)
    w2.setdefault("n_split_half", None)
    row("(scenes with a split-half ARI: not one cluster in both halves)", "n_split_half",
        lambda v: "–" if v is None else str(v))
    if "prior_gain_median" in w1 or "prior_gain_median" in w2:
        for k in ("prior_gain_median", "prior_gain_min", "prior_worse_001", "no_prior_delta_median",
                  "all_found_ge1", "no_prior_all_found_ge1", "n_phases_lost",
                  "n_phases_found_before", "thin_recall_min", "no_prior_thin_recall_min",
                  "n_thin", "thin_kept_min", "n_thin_kept"):
            w1.setdefault(k, None)
            w2.setdefault(k, None)
        L.append("| *spatial prior (same runs, labels before the prior)* | | |")
        row("median ARI gain from the prior", "prior_gain_median")
        row("worst ARI change from the prior", "prior_gain_min")
        row("scenes worse by > 0.01 with the prior", "prior_worse_001", lambda v: "–" if v is None else str(v))
        row("median Δ without the prior", "no_prior_delta_median")
        row("scenes with every phase ≥ 1 % found (prior)", "all_found_ge1")
        row("... without the prior", "no_prior_all_found_ge1")
        L.append("| phases ≥ 1 % found without the prior and lost with it | "
                 + " | ".join("–" if w.get("n_phases_lost") is None else
                              f"{w['n_phases_lost']} / {w['n_phases_found_before']}"
                              for w in (w1, w2)) + " |")
        row("min recall of 3-px lamellae (prior)", "thin_recall_min")
        row("... without the prior", "no_prior_thin_recall_min")
        row("(scenes with 3-px lamellae)", "n_thin", lambda v: "–" if v is None else str(v))
        row("3-px lamellae found without the prior: share of their right pixels kept (min)",
            "thin_kept_min")
        row("(such lamellae)", "n_thin_kept", lambda v: "–" if v is None else str(v))
    if "split_scenes" in w2:
        for k in ("split_scenes", "split_change_median", "split_change_min", "split_change_max",
                  "split_worse_001", "no_split_all_found_ge2", "no_split_phases_found"):
            w1.setdefault(k, None)
        L.append("| *split test (W2; same runs, labels before it)* | | |")
        row("scenes where a cluster was split", "split_scenes",
            lambda v: "–" if v is None else str(v))
        row("median ARI change where split", "split_change_median")
        row("worst ARI change from the split", "split_change_min")
        row("best ARI change from the split", "split_change_max")
        row("scenes worse by > 0.01 with the split", "split_worse_001",
            lambda v: "–" if v is None else str(v))
        w1.setdefault("split_worse_cases", None)
        row("... those scenes (seed: change)", "split_worse_cases",
            lambda v: "–" if not v else ", ".join(f"{a}: {c:+.3f}" for a, _, c in v))
        row("scenes where every phase ≥ 2 % is found, before the split", "no_split_all_found_ge2",
            lambda v: _fmt(v, 2))
        row("true phases found before the split (total)", "no_split_phases_found",
            lambda v: "–" if v is None else str(v))
    if s.get("ceiling_phases_found"):
        L.append(f"\nThe MAP ceiling (the classifier that knows the true spectra) itself finds "
                 f"every phase ≥ 2 % in {_fmt(s.get('ceiling_all_found_ge2'), 2)} of the "
                 f"scenes and {s['ceiling_phases_found'][0]} / {s['ceiling_phases_found'][1]} "
                 "phases: a phase it misses cannot be told apart pixel by pixel at that dose.")
    if s.get("mask_all_found_ge2") is not None:
        L.append(f"\nKnown masks (`mask_oracle`: each true phase's summed counts on the test "
                 "colour against every other phase's, by the split test's own confirmation) "
                 f"tell every phase ≥ 2 % apart in {_fmt(s['mask_all_found_ge2'], 2)} of the "
                 f"scenes and {s['mask_phases_found'][0]} / {s['mask_phases_found'][1]} phases "
                 "from all others: an upper bound for a method that has to find the regions "
                 "in the data. A phase told apart there but missed by a workflow was not "
                 "*found*; it was not too alike to tell.")
    if s.get("ident_all_found_ge2") is not None:
        L.append(f"\nWith *all* counts (`mask_oracle(all_counts=True)`: the same comparison on "
                 "every pixel, p < 0.05 / number of phases, no smallest difference), every phase "
                 f"≥ 2 % differs from every other in {_fmt(s['ident_all_found_ge2'], 2)} of the "
                 f"scenes ({s['ident_phases_found'][0]} / {s['ident_phases_found'][1]} phases): "
                 "the phases are there in the counts. What the known-masks bound loses against "
                 "this is the price of confirming on half the counts (sample splitting) and of "
                 "the smallest difference; what a workflow loses against that bound, the price "
                 "of finding the regions.")
    if s.get("potts_all_found_ge2") is not None:
        pf = s["potts_phases_found"]
        L.append(f"\nWorkflow 2's spatial prior started from the true labels (`potts_oracle_"
                 "labels`: the true clusters' spectra, the coupling workflow 2 used, every pixel "
                 f"relabelled) keeps every phase ≥ 2 % in {_fmt(s['potts_all_found_ge2'], 2)} "
                 f"of the {pf[2]} scenes where workflow 2 used a coupling, and {pf[0]} / {pf[1]} "
                 "of their phases: a phase it loses is beyond that prior even when the "
                 "clusters are found (a thin layer or lamella whose pixels are outweighed by "
                 "their neighbours at that dose).")
    L.append(f"\nMedian ceiling ARI {_fmt(s['ceiling_median'])} (MAP ceiling "
             f"{_fmt(s.get('ceiling_map_median'))}); {s['n_low_ceiling']} scenes have a ceiling "
             f"below 0.1 (nothing per-pixel can separate their phases: Δ ≈ 0 there says "
             f"nothing). ![ARI − ceiling per scene]"
             f"({png_path.name})\n")

    L.append("## Per scene\n")
    # with the spatial prior on, each workflow's per-pixel ARI (its labels before the prior)
    pp = any(r[w].get("no_prior") for r in ok for w in ("w1", "w2"))
    px = " {} per-px |" if pp else ""
    L.append("| seed | size | scene | min frac | dose/px | min diff at% | ceiling | MAP ceil. "
             "| masks / prior from truth | W1 ARI |"
             + px.format("W1") + " W1 Δ | W1 found | W1 err | W1 cov | W2 ARI |" + px.format("W2")
             + " W2 Δ | W2 k | W2 found | W2 noise | W2 err | W2 cov | split-half W1 / W2 |")
    L.append("|" + "---|" * (24 if pp else 22))
    for r in ok:
        sc = r["scene"]
        cells = [str(r["seed"]), str(r["size"]), describe(sc), f"{100 * sc['min_fraction']:.1f} %",
                 f"{sc['dose_sample']:.1f}", f"{sc['min_pair_difference']:.1f}",
                 _fmt(r.get("ceiling")), _fmt(r.get("ceiling_map")), _oracles(r)]
        for w in ("w1", "w2"):
            x = r[w]
            if x.get("error"):
                cells += ["error"] + [""] * ((5 if w == "w1" else 7) + pp)
                continue
            comp = x.get("composition", {})
            cells.append(_fmt(x["ari"]))
            if pp:
                cells.append(_fmt((x.get("no_prior") or {}).get("ari")))
            cells.append(_fmt(x["ari_minus_ceiling"]))
            if w == "w2":
                cells.append(str(x["n_clusters"]))
            cells.append(f"{x['n_found']}/{len(x['found'])}")
            if w == "w2":
                cells.append(_fmt(x["noise_fraction"], 2))
            cells += [_fmt(comp.get("abs_error_median"), 2), _fmt(comp.get("coverage_2sigma"), 2)]
        cells.append(f"{_fmt(r['w1'].get('split_half_ari'))} / "
                     f"{_fmt(r['w2'].get('split_half_ari'))}")
        L.append("| " + " | ".join(cells) + " |")
    L.append("\n*min frac*: smallest phase's share of the sample; *dose/px*: mean counts per "
             "sample pixel; *min diff at%*: largest per-element difference of the two most similar "
             "phases; *masks / prior from truth*: phases known masks tell apart from every other "
             "(`mask_oracle`) / phases workflow 2's prior started from the truth keeps found "
             "(`potts_oracle_labels`; – when workflow 2 used no coupling), of all phases; "
             "*per-px*: the same run's ARI before the spatial prior (its per-pixel labels); "
             "*k*: clusters; *err*: median |at% error|; *cov*: 2σ coverage.\n")

    L.append("## Worst scenes (regression cases)\n")
    for w, name in (("w1", "W1"), ("w2", "W2")):
        bad = sorted([r for r in ok if r[w].get("ari_minus_ceiling") is not None],
                     key=lambda r: r[w]["ari_minus_ceiling"])
        worst = [r for r in bad if r[w]["ari_minus_ceiling"] < BAD_DELTA][:10]
        L.append(f"**{name}**: {sum(r[w]['ari_minus_ceiling'] < BAD_DELTA for r in bad)} scenes "
                 f"with Δ < {BAD_DELTA}" + (", the worst 10:" if len(worst) == 10 else ":")
                 + ("" if worst else " none; the three lowest:") + "\n")
        worst = worst or bad[:3]
        for r in worst:
            L.append(f"- seed {r['seed']} ({r['size']}²): Δ {r[w]['ari_minus_ceiling']:+.3f} "
                     f"(ARI {r[w]['ari']:.3f}, ceiling {r['ceiling']:.3f}) — {describe(r['scene'])}"
                     f". {diagnose(r, w)}")
        errs = [r for r in ok if r[w].get("error")]
        for r in errs:
            L.append(f"- seed {r['seed']} ({r['size']}²): **{name} raised** {r[w]['error'][:200]}")
        L.append("")
    failed = [r for r in recs if r.get("error")]
    if failed:
        L.append("## Failed scenes\n")
        for r in failed:
            L.append(f"- seed {r['seed']} ({r['size']}²): {r['error'][:300]}")
        L.append("")
    md_path.write_text("\n".join(L) + "\n")
    plot(ok, png_path)
    return s


def plot(ok, png_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a0, a1) = plt.subplots(2, 1, figsize=(max(8, 0.32 * len(ok) + 2), 7), sharex=True)
    x = np.arange(len(ok))
    for w, m, c, name in (("w1", "o", "C0", "W1 PCA+GMM (true k)"), ("w2", "s", "C3", "W2 UMAP+HDBSCAN")):
        d = [r[w].get("ari_minus_ceiling") for r in ok]
        a = [r[w].get("ari") for r in ok]
        d = np.array([np.nan if v is None else v for v in d])
        a = np.array([np.nan if v is None else v for v in a])
        a0.plot(x, d, m, color=c, label=name, alpha=0.85)
        a1.plot(x, a, m, color=c, label=name, alpha=0.85)
    a1.plot(x, [r.get("ceiling") or np.nan for r in ok], "k_", ms=14, label="per-pixel ceiling")
    a1.plot(x, [r.get("ceiling_map") or np.nan for r in ok], "_", color="0.55", ms=14,
            label="MAP ceiling")
    a0.axhline(0, color="k", lw=0.8)
    a0.set_ylabel("ARI − ceiling")
    a1.set_ylabel("ARI")
    for ax in (a0, a1):   # legends above the axes, clear of the points
        ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4,
                  frameon=False)
    a1.set_xticks(x)
    a1.set_xticklabels([f"{r['seed']}\n{r['scene']['kind'][:4]}" + ("\n256" if r["size"] > 128 else "")
                        for r in ok], fontsize=6)
    a1.set_xlabel("scene seed / kind")
    fig.suptitle("Generalisation: random scenes (helpers.scenes), default parameters")
    for ax in (a0, a1):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="6 scenes of 64x64 (outputs in _work/)")
    ap.add_argument("--seeds", nargs="+", help="seeds (e.g. 3 7 10-14) at --size, instead of the suite")
    ap.add_argument("--size", type=int, default=128, help="size of --seeds scenes")
    ap.add_argument("--jobs", type=int, default=1, help="scenes run in parallel (processes)")
    ap.add_argument("--w1", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra workflow-1 parameters")
    ap.add_argument("--w2", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra workflow-2 parameters")
    ap.add_argument("--tag", default="", help="output name suffix (tuning runs)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per scene")
    ap.add_argument("--resume", action="store_true", help="reuse per-scene results of the same config")
    ap.add_argument("--report-only", action="store_true", help="rebuild md/png from the json")
    ap.add_argument("--isolate", action="store_true",
                    help="a fresh process per scene (slower: ~30 s of numba loading each)")
    ap.add_argument("--split-half", action="store_true",
                    help="also the split-half ARI of each workflow (two more runs per scene)")
    ap.add_argument("--kind", choices=["grains", "lamellae", "particles", "boundary"],
                    help="every scene of this geometry (e.g. lamellae: more 3-px lamellae)")
    ap.add_argument("--scene", help=argparse.SUPPRESS)   # child: SEED:SIZE
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.split_half:   # children inherit the environment
        os.environ["HEA_BENCH_SPLIT_HALF"] = "1"
    if args.kind:
        os.environ["HEA_BENCH_KIND"] = args.kind

    if args.scene:   # child process (--isolate): one scene
        seed, size = (int(v) for v in args.scene.split(":"))
        child_scene(seed, size, Path(args.out), parse_params(args.w1), parse_params(args.w2))
        return 0
    if args.worker:
        worker_loop(args)
        return 0

    name = "generalisation" + (f"_{args.tag}" if args.tag else "") + ("_quick" if args.quick else "") \
        + ("_seeds" if args.seeds and not args.tag else "")
    out_dir = WORK / name
    out_dir.mkdir(parents=True, exist_ok=True)
    # only the whole suite (optionally tagged, e.g. a tuning run) reports into benchmarks/
    dest = WORK if (args.quick or args.seeds) else ROOT / "benchmarks"
    md_path, png_path = dest / f"{name}.md", dest / f"{name}_ari.png"
    json_path = WORK / f"{name}.json"
    if args.report_only:
        data = json.loads(json_path.read_text())
        args.jobs = int(data.get("jobs", args.jobs))
        # the header states the parameters of the stored run, not of this command line
        stored = ap.parse_args([a for a in data["argv"] if a != "--report-only"])
        args.w1, args.w2, args.kind, args.split_half = (stored.w1, stored.w2, stored.kind,
                                                        stored.split_half)
        write_report(data["scenes"], args, md_path, png_path, data["elapsed_s"], data["argv"])
        print(f"wrote {md_path}")
        return 0
    if args.quick:
        specs = [(s, 64) for s in range(6)]
    elif args.seeds:
        specs = [(s, args.size) for s in parse_seeds(args.seeds)]
    else:
        specs = default_suite()
    print(f"{len(specs)} scenes, {args.jobs} job(s); per-scene results in {out_dir}", flush=True)
    env = child_env(args.jobs)
    t0 = time.perf_counter()
    # the large scenes first when parallel, so the pool does not end on one long scene
    order = sorted(specs, key=lambda s: -s[1]) if args.jobs > 1 else specs
    if args.isolate:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            recs = list(pool.map(lambda s: run_isolated(s[0], s[1], args, out_dir, env), order))
    else:
        import queue
        import threading
        todo = queue.Queue()
        for spec in order:
            todo.put(spec)
        recs, lock = [], threading.Lock()

        def drain(i):
            w = Worker(args, env, out_dir / f"worker{i}.log")
            try:
                while True:
                    try:
                        seed, size = todo.get_nowait()
                    except queue.Empty:
                        return
                    rec = w.run(seed, size, out_dir)
                    with lock:
                        recs.append(rec)
            finally:
                w.close()

        threads = [threading.Thread(target=drain, args=(i,)) for i in range(max(1, args.jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.perf_counter() - t0
    recs = sorted(recs, key=lambda r: (r["size"], r["seed"]))
    summary = write_report(recs, args, md_path, png_path, elapsed)
    json_path.write_text(json.dumps(dict(date=date.today().isoformat(), argv=sys.argv[1:],
                                         config=config(args), elapsed_s=elapsed, jobs=args.jobs,
                                         summary=summary, scenes=recs), indent=1))
    print(f"wrote {md_path}, {png_path} and {json_path} ({elapsed / 60:.1f} min)")
    for w in ("w1", "w2"):
        x = summary[w]
        print(f"{w}: median Δ {_fmt(x['delta_median'])}, p10 Δ {_fmt(x['delta_p10'])}, "
              f"all phases ≥2 % found {_fmt(x['all_found_ge2'], 2)}, noise median "
              f"{_fmt(x['noise_median'])}, |comp err| median {_fmt(x['comp_error_median'], 2)} at%, "
              f"2σ coverage {_fmt(x['coverage_2sigma'], 2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
