"""Geometries of the presets: grains in a matrix with a thickness wedge (hea6), precipitates in
an alloy matrix (hea_alloy), particles on a support film with or without a core (hea7). Each
returns labels, thickness and path lengths."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def smooth_field(rng, shape, corr_px):
    f = ndimage.gaussian_filter(rng.standard_normal(shape), corr_px, mode="wrap")
    return (f - f.mean()) / f.std()


def hea6_geometry(rng, shape):
    rows, cols = shape
    corr = max(min(shape) / 14.0, 1.5)
    # grains: three smooth random fields; a pixel joins a grain phase where its field is high.
    area = {0: 0.17, 1: 0.09, 3: 0.13}  # chalcopyrite, jalpaite, minority wurtzite; rest = matrix
    labels = np.full(shape, 2, dtype=np.int64)
    best = np.full(shape, -np.inf)
    for phase, frac in area.items():
        f = smooth_field(rng, shape, corr)
        excess = f - np.quantile(f, 1 - frac)
        take = (excess > 0) & (excess > best)
        labels[take] = phase
        best = np.where(take, excess, best)
    # thickness: a gradient across the field (a wedge from the microtome) with gentle undulation
    x = np.linspace(0, 1, cols)[None, :]
    thickness = (0.55 + 0.9 * x) * (1 + 0.08 * smooth_field(rng, shape, corr * 2))
    # vacuum: beyond a wavy edge in one corner (~6 % of the field)
    yy, xx = np.mgrid[0:rows, 0:cols] / np.array([rows, cols])[:, None, None]
    edge = (1 - xx) + (1 - yy) + 0.06 * smooth_field(rng, shape, corr * 1.5)
    vacuum = edge < np.quantile(edge, 0.06)
    labels[vacuum] = -1
    thickness[vacuum] = 0.0
    path = np.zeros(shape + (4,))
    for p in range(4):
        path[..., p] = np.where(labels == p, thickness, 0.0)
    return labels, thickness, path


def precipitate_geometry(rng, shape, areas):
    """Precipitates of phases 1.. (area fractions ``areas``) in a matrix (phase 0) of a foil
    whose thickness falls off towards one edge (electropolished wedge) and undulates."""
    rows, cols = shape
    corr = max(min(shape) / 18.0, 1.5)
    labels = np.zeros(shape, dtype=np.int64)
    best = np.full(shape, -np.inf)
    for phase, frac in enumerate(areas, start=1):
        f = smooth_field(rng, shape, corr)
        excess = f - np.quantile(f, 1 - frac)
        take = (excess > 0) & (excess > best)
        labels[take] = phase
        best = np.where(take, excess, best)
    y = np.linspace(0, 1, rows)[:, None]
    thickness = (0.5 + 1.0 * y) * (1 + 0.1 * smooth_field(rng, shape, corr * 2)) * np.ones(shape)
    n = len(areas) + 1
    path = np.stack([np.where(labels == p, thickness, 0.0) for p in range(n)], axis=-1)
    return labels, thickness, path


def particles(rng, shape, n_target):
    """Non-overlapping discs: list of (row, col, radius) in pixels."""
    rows, cols = shape
    rmin, rmax = max(min(shape) / 24.0, 2.5), max(min(shape) / 11.0, 4.0)
    discs = []
    for _ in range(4000):
        if len(discs) >= n_target:
            break
        r = rng.uniform(rmin, rmax)
        cy, cx = rng.uniform(r + 1, rows - r - 1), rng.uniform(r + 1, cols - r - 1)
        if all((cy - y) ** 2 + (cx - x) ** 2 > (r + q + 1.5) ** 2 for y, x, q in discs):
            discs.append((cy, cx, r))
    return discs


def hea7_geometry(rng, shape, core_fraction=None):
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols] + 0.5
    n_phase = 1 if core_fraction is None else 2
    labels = np.full(shape, -1, dtype=np.int64)
    path = np.zeros(shape + (n_phase,))
    for cy, cx, r in particles(rng, shape, n_target=12):
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        inside = d2 < r * r
        chord = np.where(inside, 2 * np.sqrt(np.clip(r * r - d2, 0, None)), 0.0) / (2 * r)
        if core_fraction is None:
            path[..., 0] += chord
            labels[inside] = 0
        else:
            rc = core_fraction * r
            core = np.where(d2 < rc * rc, 2 * np.sqrt(np.clip(rc * rc - d2, 0, None)), 0.0) / (2 * r)
            path[..., 1] += core
            path[..., 0] += chord - core
            labels[inside] = 0
            labels[d2 < rc * rc] = 1
    thickness = path.sum(-1)
    return labels, thickness, path
