#!/usr/bin/env python
"""Benchmark of the Potts spatial prior (helpers/spatial.py) on the workflows' labels.

From the project root::

    .venv/bin/python benchmarks/spatial_prior.py              # hea6 128 + 256, hea7_coreshell 128
    .venv/bin/python benchmarks/spatial_prior.py --sizes 128  # smaller
    .venv/bin/python benchmarks/spatial_prior.py --graphcut   # also compare ICM with graph cuts

For each simulated map and each starting labelling (workflow 1, workflow 2, and the true
phases with 30 % of the pixels given a random cluster) it prints the ARI against the truth
before and after :func:`helpers.spatial.regularise_labels`, the per-pixel Poisson ceiling
(``tests/ceiling.py``), the estimated beta, the noise fraction before and after, and the
seconds the prior adds (wall clock and CPU time of this process; on a shared machine the wall
clock includes waiting for a core). ``--graphcut`` minimises the same energy (same data
term, same beta) by alpha-expansion with ``gco-wrapper`` (``pip install gco-wrapper``; not a
dependency of the project) and prints both energies.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))          # tests/ceiling.py
warnings.filterwarnings("ignore")


# ============================================================================================
# adapter: every call into the clustering package is here (it is being reorganised)
# ============================================================================================
def workflow_labels(signal, preset):
    """{name: (labels, mask)} of workflow 1 and 2 on the original grid, and the prior's
    channel settings {energy_bin, channels} (useful energy range, half the detector FWHM)."""
    from helpers.workflows import workflow1, workflow2
    from helpers.preprocess import auto_energy_bin, energy_slice, useful_energy_range
    n_clusters = 4 if preset == "hea6" else 2
    out = {}
    for name, run in (("workflow1", lambda: workflow1(signal, n_clusters=n_clusters)),
                      ("workflow2", lambda: workflow2(signal))):
        res = run()
        out[name] = (np.asarray(res.labels), np.asarray(res.mask, bool))
    sl = energy_slice(signal, useful_energy_range(signal))
    settings = dict(energy_bin=int(auto_energy_bin(signal)), channels=(sl.start, sl.stop))
    return out, settings


# ============================================================================================
from ceiling import ari_vs_truth, poisson_ceiling_ari  # noqa: E402
from helpers import spatial  # noqa: E402
from helpers.simulate import simulate  # noqa: E402


def flipped_truth(truth, fraction=0.3, seed=1):
    rng = np.random.default_rng(seed)
    lab = truth.labels.copy()
    k = int(lab.max()) + 1
    f = (rng.random(lab.shape) < fraction) & (lab >= 0)
    lab[f] = rng.integers(0, k, int(f.sum()))
    return lab, truth.labels >= 0


def graphcut_energy(result, mask):
    """Energy of alpha-expansion (gco-wrapper) on the result's data term and beta."""
    import gco
    D = np.nan_to_num(result.data)
    R, C = mask.shape
    idx = np.full((R, C), -1)
    idx[mask] = np.arange(mask.sum())
    edges, weights = [], []
    rr, cc = np.nonzero(mask)
    for dr, dc, w in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 2 ** -0.5), (1, -1, 2 ** -0.5)):
        r2, c2 = rr + dr, cc + dc
        ok = (r2 >= 0) & (r2 < R) & (c2 >= 0) & (c2 < C)
        ok[ok] &= mask[r2[ok], c2[ok]]
        edges.append(np.stack([idx[rr[ok], cc[ok]], idx[r2[ok], c2[ok]]], 1))
        weights.append(np.full(int(ok.sum()), w))
    e = np.concatenate(edges)
    e.sort(axis=1)
    U = -D[mask]
    U = U - U.min(axis=1, keepdims=True)
    # a label costing more than every neighbour's disagreement cannot win: clip (precision)
    U = np.minimum(U, 7.0 * result.beta + 1.0)
    L = D.shape[2]
    t0 = time.perf_counter()
    lab = gco.cut_general_graph(e.astype(np.int32), np.concatenate(weights), U.astype(float),
                                (1 - np.eye(L)) * result.beta, n_iter=20,
                                algorithm="expansion")
    dt = time.perf_counter() - t0
    full = np.zeros(mask.shape, int)
    full[mask] = lab
    own = np.searchsorted(result.clusters, np.maximum(result.labels, 0))
    e_icm = spatial.potts_energy(D, own, result.beta, mask)
    e_gc = spatial.potts_energy(D, full, result.beta, mask)
    e_pix = spatial.potts_energy(D, np.argmax(D, axis=2), result.beta, mask)
    agree = float(np.mean(full[mask] == own[mask]))
    return e_icm, e_gc, e_pix, agree, dt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--presets", nargs="+", default=["hea6", "hea7_coreshell"])
    ap.add_argument("--graphcut", action="store_true")
    args = ap.parse_args(argv)
    # warm-up: imports and first calls outside the timings
    spatial.regularise_labels(np.ones((8, 8, 16), np.uint8), np.zeros((8, 8), int))
    print("| map | start | ARI before | ARI after | ceiling | beta | noise before | noise after "
          "| wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    gc_rows = []
    for preset in args.presets:
        sizes = args.sizes if preset == "hea6" else [min(args.sizes)]
        for size in sizes:
            signal, truth = simulate(preset, size=size, seed=0)
            starts, settings = workflow_labels(signal, preset)
            starts["truth + 30 % flips"] = flipped_truth(truth)
            ceiling = poisson_ceiling_ari(signal, truth)
            data = np.asarray(signal.data)
            for name, (labels, mask) in starts.items():
                t0, c0 = time.perf_counter(), time.process_time()
                # salt-and-pepper flips understate the input labels' beta: no cap for them
                cap = not name.startswith("truth")
                r = spatial.regularise_labels(data, labels, mask, cap=cap, **settings)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                print(f"| {preset} {size}x{size} | {name} | {ari_vs_truth(labels, truth):.4f} | "
                      f"{ari_vs_truth(r.labels, truth):.4f} | {ceiling:.4f} | {r.beta:.2f} | "
                      f"{np.mean(labels[mask] < 0):.4f} | {np.mean(r.noise[mask]):.4f} | "
                      f"{wall:.2f} | {cpu:.2f} |", flush=True)
                if args.graphcut and r.clusters.size > 1:
                    gc_rows.append((f"{preset} {size} {name}",) + graphcut_energy(r, mask))
    if gc_rows:
        print("\n| map / start | E(ICM) - E(graph cut) | E(per-pixel) - E(graph cut) | "
              "labels agreeing | graph cut s |")
        print("|---|---|---|---|---|")
        for name, e_icm, e_gc, e_pix, agree, dt in gc_rows:
            print(f"| {name} | {e_icm - e_gc:.1f} | {e_pix - e_gc:.1f} | {agree:.5f} | "
                  f"{dt:.2f} |")


if __name__ == "__main__":
    main()
