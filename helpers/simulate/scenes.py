"""Random scenes for the simulator: a generalisation test set beyond the three presets.

The presets (:mod:`helpers.simulate`) are the paper's two samples; an analysis tuned on them can
still fail on the next sample. :func:`random_scene` draws, from one integer seed, a whole new
sample with known truth and simulates it with the same physics (:func:`helpers.simulate.
phase_unit_spectrum`: exspy line database, Cliff-Lorimer intensities with the package's
k-factor table, Kramers continuum, Poisson counts):

* 2-6 phases, area fractions between 1 % and 70 % of the sample;
* one of four geometries:

  ``grains``     additively weighted Voronoi grains or thresholded smooth random fields;
  ``lamellae``   parallel stripes (axis-aligned or tilted) 3 px to tens of px wide in a matrix,
                 some phases exactly 3 px wide;
  ``particles``  discs on a thin carbon film; support pixels are labelled -1 (as in ``hea7``);
  ``boundary``   Voronoi grains whose boundaries carry a 1-3 px thick layer of another phase;

* compositions around a high-entropy sulfide (5-8 metals of Mn Fe Co Ni Cu Zn Ag Cd In Ga Sn,
  S 45-60 at%) or a high-entropy alloy (Cantor Cr-Mn-Fe-Co-Ni, Al-Co-Cr-Fe-Ni, Al-Ti-V-Cr-Nb-Mo,
  Ti-Zr-Nb-Mo-V, no anion), often with a pair of phases that differ by only 3 at% in two
  elements;
* a dose of 2-100 counts per pixel (log-uniform), a thickness gradient (up to 3x) with
  undulation, optional vacuum at an edge.

Every choice comes from ``numpy.random.SeedSequence(seed)`` split into independent streams
(choices, geometry, compositions, dose, noise), so overriding one choice (``kind=``, ``dose=``)
leaves the others as they were, and the same arguments always give the same bytes.

The scene description (what was drawn, and what was realised: fractions, stripe widths, the
closest pair of phases...) is ``truth.params["scene"]``.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import ParameterError
from ..xray.kfactors import load_kfactors
from .presets import draw_counts, make_signal, scene_spectra
from .spectra import energy_axis
from .truth import GroundTruth

#: Bump when the scene distribution changes (benchmark numbers are comparable within a version).
SCENE_VERSION = 1

KINDS = ("grains", "lamellae", "particles", "boundary")
KIND_WEIGHTS = (0.35, 0.25, 0.2, 0.2)
FAMILIES = ("sulfide", "alloy")

SULFIDE_METALS = ("Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ag", "Cd", "In", "Ga", "Sn")
ALLOY_SYSTEMS = {
    "cantor": ("Cr", "Mn", "Fe", "Co", "Ni"),
    "alcocrfeni": ("Al", "Co", "Cr", "Fe", "Ni"),
    "refractory": ("Al", "Ti", "V", "Cr", "Nb", "Mo"),
    "tizrnbmov": ("Ti", "Zr", "Nb", "Mo", "V"),
}
N_PHASES = (2, 6)
FRACTION_RANGE = (0.01, 0.70)   # realised area fractions of the sample (guaranteed)
TARGET_RANGE = (0.0125, 0.68)   # drawn targets: a margin for the geometry's quantisation
MAX_GEOMETRY_ATTEMPTS = 40
DOSE_RANGE = (2.0, 100.0)
SULFUR_RANGE = (45.0, 60.0)
CLOSE_PAIR_DELTA = 3.0          # at%: the close pair differs by this in two elements
CLOSE_PAIR_PROBABILITY = 0.4
MIN_DISTINCT = 6.0              # at%: other pairs differ by at least this in some element
MIN_ELEMENT = 0.1               # at%: floor of every element of a phase's system


def _f(x):
    return float(np.round(float(x), 6))


# ----------------------------------------------------------------------------------------------
# random draws
# ----------------------------------------------------------------------------------------------
def draw_fractions(rng, n, lo=FRACTION_RANGE[0], hi=FRACTION_RANGE[1], alpha=0.8):
    """``n`` area fractions summing to 1, each in [lo, hi] (Dirichlet, then projected)."""
    if not (n * lo <= 1 <= n * hi):
        raise ParameterError(f"{n} fractions cannot all lie in [{lo}, {hi}].")
    f = rng.dirichlet(np.full(n, alpha))
    for _ in range(200):   # alternate clip and renormalise (converges: the box meets the simplex)
        f = np.clip(f, lo, hi)
        f = f / f.sum()
        if f.min() >= lo - 1e-12 and f.max() <= hi + 1e-12:
            break
    free = (f > lo + 1e-9) & (f < hi - 1e-9)   # make the sum exact on the free entries
    if free.any():
        f[free] += (1 - f.sum()) / free.sum()
    return np.clip(f, lo, hi)


def _close_pair(rng, comp, anion):
    """A copy of ``comp`` with +delta in one element and -delta in another (both non-anion)."""
    els = [e for e in comp if e != anion]
    rich = [e for e in els if comp[e] >= CLOSE_PAIR_DELTA + 2.0]
    if len(els) < 2 or not rich:
        return None
    down = rng.choice(rich)
    up = rng.choice([e for e in els if e != down])
    new = dict(comp)
    new[down] -= CLOSE_PAIR_DELTA
    new[up] += CLOSE_PAIR_DELTA
    return new, str(up), str(down)


def linf(a, b):
    """Largest per-element difference (at%) of two compositions."""
    return max(abs(a.get(e, 0.0) - b.get(e, 0.0)) for e in set(a) | set(b))


def draw_compositions(rng, n, family, close_pair):
    """``n`` phase compositions (at%, sum 100) of one high-entropy system.

    Returns (compositions list, system dict for the description, close-pair record or None).
    """
    if family == "sulfide":
        metals = sorted(rng.choice(SULFIDE_METALS, size=int(rng.integers(5, 9)), replace=False))
        anion = "S"
        system = dict(family=family, name="sulfide", metals=[str(m) for m in metals])
    else:
        name = str(rng.choice(sorted(ALLOY_SYSTEMS)))
        metals = list(ALLOY_SYSTEMS[name])
        anion = None
        system = dict(family=family, name=name, metals=metals)
    m = len(metals)

    def one():
        conc = rng.uniform(1.0, 8.0)             # small: enriched in few metals; large: equimolar
        w = rng.dirichlet(np.full(m, conc))
        total = 100.0 - (rng.uniform(*SULFUR_RANGE) if anion else 0.0)
        w = np.maximum(w, MIN_ELEMENT / total)   # no metal below MIN_ELEMENT at% ...
        c = {el: total * x / w.sum() for el, x in zip(metals, w)}   # ... and S exactly as drawn
        if anion:
            c[anion] = 100.0 - total
        return c

    n_distinct = n - 1 if close_pair else n
    comps = []
    for _ in range(n_distinct):
        best, best_d = None, -1.0
        for _try in range(60):   # rejection: every distinct pair differs by >= MIN_DISTINCT at%
            c = one()
            d = min((linf(c, o) for o in comps), default=np.inf)
            if d >= MIN_DISTINCT:
                best = c
                break
            if d > best_d:
                best, best_d = c, d
        comps.append(best)
    pair = None
    if close_pair:
        i = int(rng.integers(len(comps)))
        made = _close_pair(rng, comps[i], anion)
        if made is None:
            comps.append(one())
        else:
            new, up, down = made
            comps.append(new)
            pair = dict(phases=[i, len(comps) - 1], up=up, down=down, delta=CLOSE_PAIR_DELTA)
    order = rng.permutation(n)      # the close pair is not always the last two phases
    comps = [comps[k] for k in order]
    if pair is not None:
        inv = {int(old): new for new, old in enumerate(order)}
        pair["phases"] = sorted(inv[p] for p in pair["phases"])
    comps = [{e: 100.0 * v / sum(c.values()) for e, v in sorted(c.items())} for c in comps]
    return comps, system, pair


# ----------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------
def _smooth(rng, shape, corr):
    f = ndimage.gaussian_filter(rng.standard_normal(shape), corr, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def assign_by_score(scores, targets, mask, tol=0.002, n_iter=400):
    """``argmax_k(scores_k + w_k)`` over ``mask`` with offsets ``w`` tuned to hit ``targets``.

    The offsets solve the dual of a semi-discrete assignment (gradient ascent, step shrinking
    when the error changes sign), so each phase gets its target area while keeping the shapes
    its score field gives it. Returns (labels with -1 outside ``mask``, realised fractions).
    """
    k = scores.shape[0]
    s = scores[:, mask]                                 # (k, n)
    n = s.shape[1]
    w = np.zeros(k)
    step = np.full(k, 0.5 * float(np.std(s)) + 1e-9)
    last = np.zeros(k)
    targets = np.asarray(targets, float)
    for _ in range(n_iter):
        lab = np.argmax(s + w[:, None], axis=0)
        f = np.bincount(lab, minlength=k) / n
        err = targets - f
        if np.max(np.abs(err)) < tol:
            break
        flip = np.sign(err) != np.sign(last)
        step[flip] *= 0.6
        w += step * np.sign(err) * np.minimum(1.0, np.abs(err) / np.maximum(targets, 1e-3) * 4)
        last = err
    out = np.full(mask.shape, -1, np.int64)
    out[mask] = lab
    return out, f


def _seeds_distance(rng, shape, n_seeds):
    """Distance (px) of each pixel to the nearest of ``n_seeds`` random points."""
    img = np.ones(shape, bool)
    rr = rng.integers(0, shape[0], n_seeds)
    cc = rng.integers(0, shape[1], n_seeds)
    img[rr, cc] = False
    return ndimage.distance_transform_edt(img)


def _vacuum(rng, shape, frac):
    """Vacuum beyond a wavy line across one corner or edge, about ``frac`` of the field."""
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols] / np.array([rows, cols])[:, None, None]
    a = rng.uniform(0, 2 * np.pi)
    edge = np.cos(a) * xx + np.sin(a) * yy + 0.05 * _smooth(rng, shape, max(min(shape) / 10, 1.5))
    return edge < np.quantile(edge, frac)


def _thickness(rng, shape, desc):
    """Gradient (up to 3x) along a random direction times a gentle undulation; mean 1."""
    rows, cols = shape
    ratio = float(np.exp(rng.uniform(0, np.log(3.0))))
    amp = float(rng.uniform(0.0, 0.25))
    corr = float(rng.uniform(4, 20))
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    ramp = np.cos(a) * xx + np.sin(a) * yy
    ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-12)
    t = (1.0 + (ratio - 1.0) * ramp) * (1.0 + amp * _smooth(rng, shape, corr))
    t = np.clip(t, 0.05, None)
    desc.update(thickness_ratio=_f(ratio), undulation=_f(amp), undulation_corr_px=_f(corr))
    return t / t.mean()


def _geom_grains(rng, shape, targets, sample, desc):
    n = len(targets)
    style = str(rng.choice(["voronoi", "field"]))
    if style == "voronoi":
        grain_px = float(np.exp(rng.uniform(np.log(8), np.log(40))))   # mean grain diameter
        n_cells = int(np.clip(round(sample.sum() / (0.8 * grain_px ** 2)), n, 400))
        per = np.maximum(1, np.round(np.asarray(targets) * n_cells)).astype(int)
        scores = np.stack([-_seeds_distance(rng, shape, int(p)) for p in per])
        desc.update(style=style, grain_px=_f(grain_px), n_cells=int(per.sum()))
    else:
        corr = float(np.exp(rng.uniform(np.log(2), np.log(12))))
        scores = np.stack([_smooth(rng, shape, corr) for _ in range(n)])
        desc.update(style=style, corr_px=_f(corr))
    labels, _ = assign_by_score(scores, targets, sample)
    return labels


def _geom_lamellae(rng, shape, targets, sample, desc):
    rows, cols = shape
    n = len(targets)
    orient = str(rng.choice(["vertical", "horizontal", "tilted"]))
    theta = {"vertical": 0.0, "horizontal": 90.0}.get(orient, float(rng.uniform(10, 80)))
    th = np.deg2rad(theta)
    yy, xx = np.mgrid[0:rows, 0:cols] + 0.5
    u = xx * np.cos(th) + yy * np.sin(th)              # coordinate across the stripes (px)
    u0 = int(np.floor(u[sample].min())) if sample.any() else 0
    length = int(np.ceil(u.max())) - u0
    matrix = int(np.argmax(targets))
    widths = {}
    three = [k for k in range(n) if k != matrix and rng.random() < 0.4]
    if not three and rng.random() < 0.5 and n > 1:
        three = [int(rng.choice([k for k in range(n) if k != matrix]))]
    stripes = []
    for k in range(n):
        if k == matrix:
            continue
        w = 3 if k in three else int(round(np.exp(rng.uniform(np.log(4), np.log(40)))))
        if k not in three:   # a minor phase cannot be one stripe wider than its share
            w = int(np.clip(w, 3, max(3, round(targets[k] * length))))
        widths[k] = w
        n_k = max(1, int(round(targets[k] * length / w)))
        stripes += [(k, w)] * n_k
    order = rng.permutation(len(stripes))
    stripes = [stripes[i] for i in order]
    gap_total = max(len(stripes) + 1, length - sum(w for _, w in stripes))
    cuts = np.sort(rng.choice(np.arange(1, gap_total), size=len(stripes), replace=False)) \
        if gap_total - 1 >= len(stripes) else np.arange(1, len(stripes) + 1)
    gaps = np.diff(np.concatenate([[0], cuts, [gap_total]]))
    labels = np.full(shape, matrix, np.int64)
    pos = u0 + int(gaps[0])
    table = []
    for (k, w), g in zip(stripes, gaps[1:]):
        labels[(u >= pos) & (u < pos + w)] = k
        table.append([int(pos), int(pos + w), int(k)])
        pos += w + int(g)
    labels[~sample] = -1
    desc.update(orientation=orient, angle_deg=_f(theta), matrix_phase=matrix,
                stripe_width_px={str(k): int(w) for k, w in widths.items()},
                three_px_phases=[int(k) for k in sorted(three)], stripes=table)
    return labels


def _geom_particles(rng, shape, targets, desc):
    """Discs on a support: labels (-1 = support) and per-pixel path-length (0..1 per particle)."""
    rows, cols = shape
    n = len(targets)
    rmin = float(rng.uniform(2.5, 6.0))
    rmax = float(rmin * np.exp(rng.uniform(np.log(1.5), np.log(4.0))))
    rmax = min(rmax, min(shape) / 4)
    rmin = min(rmin, rmax)
    coverage = float(rng.uniform(0.2, 0.5))
    discs, covered = [], 0.0
    for _ in range(6000):
        if covered >= coverage * rows * cols:
            break
        r = float(np.exp(rng.uniform(np.log(rmin), np.log(rmax))))
        cy, cx = rng.uniform(r + 1, rows - r - 1), rng.uniform(r + 1, cols - r - 1)
        if all((cy - y) ** 2 + (cx - x) ** 2 > (r + q + 1.5) ** 2 for y, x, q in discs):
            discs.append((cy, cx, r))
            covered += np.pi * r * r
    while len(discs) < n:                      # tiny maps: make room for one disc per phase
        r = max(1.5, rmin / 2)
        discs.append((rng.uniform(r, rows - r), rng.uniform(r, cols - r), r))
    areas = np.array([np.pi * r * r for _, _, r in discs])
    # phases to particles: the smallest targets first get one particle each (smallest discs),
    # then the rest by size, each to the phase furthest below its target.
    phase_of = np.full(len(discs), -1)
    by_size = np.argsort(areas)
    for k, d in zip(np.argsort(targets), by_size[:n]):
        phase_of[d] = k
    have = np.bincount(phase_of[phase_of >= 0], weights=areas[phase_of >= 0], minlength=n)
    for d in by_size[::-1]:
        if phase_of[d] >= 0:
            continue
        k = int(np.argmax(np.asarray(targets) * areas.sum() - have))
        phase_of[d] = k
        have[k] += areas[d]
    yy, xx = np.mgrid[0:rows, 0:cols] + 0.5
    labels = np.full(shape, -1, np.int64)
    path = np.zeros(shape + (n,))
    for (cy, cx, r), k in zip(discs, phase_of):
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        inside = d2 < r * r
        f = float(rng.uniform(0.7, 1.3))
        path[..., k] += np.where(inside, f * np.sqrt(np.clip(r * r - d2, 0, None)) / r, 0.0)
        labels[inside] = k
    desc.update(n_particles=len(discs), radius_px=[_f(rmin), _f(rmax)], coverage=_f(covered /
                                                                                   (rows * cols)))
    return labels, path


def _cells(rng, shape, n_cells):
    """Voronoi cell index of every pixel for ``n_cells`` random seeds."""
    from scipy.spatial import cKDTree
    rows, cols = shape
    pts = np.column_stack([rng.uniform(0, rows, n_cells), rng.uniform(0, cols, n_cells)])
    yy, xx = np.mgrid[0:rows, 0:cols] + 0.5
    _, cell = cKDTree(pts).query(np.column_stack([yy.ravel(), xx.ravel()]))
    return cell.reshape(shape)


def _edges(cell, width):
    """Pixels on a cell boundary, ``width`` (1-3) px across."""
    edge = np.zeros(cell.shape, bool)
    edge[:, :-1] |= cell[:, :-1] != cell[:, 1:]
    edge[:-1, :] |= cell[:-1, :] != cell[1:, :]
    if width == 2:     # the line and its neighbour below/right: 2 px across
        grown = edge.copy()
        grown[1:, :] |= edge[:-1, :]
        grown[:, 1:] |= edge[:, :-1]
        edge = grown
    elif width == 3:   # one pixel on each side: 3 px across
        edge = ndimage.binary_dilation(edge, structure=ndimage.generate_binary_structure(2, 1))
    return edge


def _geom_boundary(rng, shape, targets, sample, desc):
    """Voronoi grains of the other phases; their boundaries, 1-3 px thick, are phase ``layer``.

    The layer is the phase of smallest target; the number of grains is chosen (bisection) so
    that the layer's area is close to its target, within what a width of 1-3 px allows.
    """
    n = len(targets)
    layer = int(np.argmin(targets))
    width = int(rng.integers(1, 4))
    want = float(targets[layer])
    lo, hi = 4, 400
    cell_seed = int(rng.integers(2 ** 31))
    best = None
    for _ in range(9):        # the boundary area grows with the number of grains
        mid = int(round(np.sqrt(lo * hi)))
        cell = _cells(np.random.default_rng(cell_seed), shape, mid)
        edge = _edges(cell, width) & sample
        f = edge.sum() / max(sample.sum(), 1)
        if best is None or abs(f - want) < abs(best[2] - want):
            best = (mid, cell, f, edge)
        if f > want:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1:
            break
    n_cells, cell, _, edge = best
    others = [k for k in range(n) if k != layer]
    labels = np.full(shape, -1, np.int64)
    grain_area = sample & ~edge
    if len(others) == 1:
        labels[grain_area] = others[0]
    else:
        t = np.asarray([targets[k] for k in others])
        t = t / t.sum()
        # whole cells to phases: largest cells first, each to the phase furthest below target
        ids, area = np.unique(cell[grain_area], return_counts=True)
        have = np.zeros(len(others))
        owner = {}
        rank = np.argsort(t)[::-1]
        for j, i in enumerate(np.argsort(area)[::-1]):
            # every grain phase gets at least one cell: the smallest targets the smallest of
            # the first len(others) cells... kept simple: the j-th biggest target the j-th cell
            kk = int(rank[j]) if j < len(others) else int(np.argmax(t * area.sum() - have))
            owner[int(ids[i])] = kk
            have[kk] += area[i]
        lut = np.full(n_cells, -1)
        for c, kk in owner.items():
            lut[c] = others[kk]
        labels[grain_area] = lut[cell[grain_area]]
    labels[edge] = layer
    desc.update(layer_phase=layer, layer_width_px=width, n_cells=n_cells,
                grain_px=_f(np.sqrt(sample.sum() / n_cells)))
    return labels


def _geometry(rng, shape, kind, targets, vac, desc):
    """(labels, path_lengths, thickness, vacuum mask) of one scene."""
    n = len(targets)
    vmask = _vacuum(rng, shape, float(rng.uniform(0.03, 0.2))) if vac else np.zeros(shape, bool)
    sample = ~vmask
    if kind == "particles":
        labels, path = _geom_particles(rng, shape, targets, desc)
        desc.update(thickness_ratio=1.0, undulation=0.0)
        return labels, path, path.sum(-1), vmask
    if kind == "grains":
        labels = _geom_grains(rng, shape, targets, sample, desc)
    elif kind == "lamellae":
        labels = _geom_lamellae(rng, shape, targets, sample, desc)
    else:
        labels = _geom_boundary(rng, shape, targets, sample, desc)
    thickness = _thickness(rng, shape, desc) * sample
    path = np.zeros(shape + (n,))
    for k in range(n):
        path[..., k] = np.where(labels == k, thickness, 0.0)
    return labels, path, thickness, vmask


# ----------------------------------------------------------------------------------------------
# public
# ----------------------------------------------------------------------------------------------
def random_scene(seed, size=128, n_channels=2048, dose=None, kind=None, family=None,
                 n_phases=None, vacuum=None, close_pair=None, channel_width=0.01, offset=-0.1,
                 beam_energy=200.0, energy_resolution_mnka=130.0, pixel_nm=None, dtype=None,
                 kfactors=None):
    """Simulate a random sample (geometry, phases, dose) drawn from ``seed``.

    Parameters
    ----------
    seed : int
        Seed of every choice and of the counting noise: same arguments, same bytes.
    size : int or (rows, cols)
    n_channels, channel_width, offset, beam_energy, energy_resolution_mnka, dtype, kfactors
        As :func:`helpers.simulate.simulate`.
    dose : float, optional
        Mean total counts per pixel over the whole map (like ``simulate``); drawn log-uniform in
        2-100 when None.
    kind : {"grains", "lamellae", "particles", "boundary"}, optional
    family : {"sulfide", "alloy"}, optional
    n_phases : int, optional
        2-6; drawn when None.
    vacuum : bool, optional
        Vacuum at an edge (never for ``particles``, which have a support film instead).
    close_pair : bool, optional
        Make two phases differ by only 3 at% in two elements.
    pixel_nm : float, optional
        Drawn (2-40 nm) when None.

    Returns
    -------
    signal : exspy.signals.EDSTEMSpectrum
        As ``simulate``: full metadata, truth in ``metadata.Simulation``.
    truth : GroundTruth
        ``preset == "random"``; ``params["scene"]`` describes the scene.
    """
    shape = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
    if len(shape) != 2 or min(shape) < 16:
        raise ParameterError(f"size must be an int or (rows, cols) of at least 16 pixels, got {size!r}.")
    if n_channels < 64 or channel_width <= 0:
        raise ParameterError("n_channels must be >= 64 and channel_width > 0 keV.")
    streams = np.random.SeedSequence(int(seed)).spawn(5)
    r_choice, r_geom, r_comp, r_dose, r_noise = (np.random.default_rng(s) for s in streams)
    c = _draw_choices(r_choice, r_dose, kind, family, n_phases, vacuum, close_pair, pixel_nm,
                      dose)
    labels, path, thickness, desc = _draw_geometry(r_geom, shape, c)
    n = c["n"]
    comps, system, pair = draw_compositions(r_comp, n, c["family"], c["close"])
    names = [f"P{k}" for k in range(n)]
    compositions = {nm: {e: float(v) for e, v in cp.items()} for nm, cp in zip(names, comps)}
    elements = sorted({e for cp in compositions.values() for e in cp})
    pairs = [(linf(comps[i], comps[j]), i, j) for i in range(n) for j in range(i + 1, n)]
    dmin, pi, pj = min(pairs)
    support = {"C": 100.0} if c["kind"] == "particles" else None
    desc.update(support="carbon" if support else "none", system=system,
                close_pair=pair if pair is not None else {}, min_pair_difference=_f(dmin),
                closest_pair=[int(pi), int(pj)])
    table = load_kfactors(kfactors)
    energies = energy_axis(n_channels, channel_width, offset)
    unit, background = scene_spectra(compositions, path, energies, channel_width, beam_energy,
                                     energy_resolution_mnka, table, c["dose"], support)
    is_sample = (labels >= 0).ravel()
    desc.update(dose=_f(c["dose"]), dose_sample=_f((path.reshape(-1, n)[is_sample]
                                                    @ unit.sum(1)).mean() + background.sum()))
    params = dict(version=SCENE_VERSION, preset="random", seed=int(seed), size=list(shape),
                  n_channels=int(n_channels), channel_width=float(channel_width),
                  offset=float(offset), dose=float(c["dose"]), beam_energy=float(beam_energy),
                  energy_resolution_mnka=float(energy_resolution_mnka),
                  pixel_nm=float(c["pixel_nm"]), scene=desc)
    truth = GroundTruth(preset="random", elements=elements, labels=labels, phase_names=names,
                        compositions=compositions, thickness=thickness, path_lengths=path,
                        unit_spectra=unit, background_spectrum=background, params=params)
    title = (f"Random scene {seed}: {n}-phase {c['family']} {c['kind']}, "
             f"dose {c['dose']:.3g}")
    return make_signal(draw_counts(truth, r_noise, dtype), truth, title, table), truth


def _draw_choices(r_choice, r_dose, kind, family, n_phases, vacuum, close_pair, pixel_nm, dose):
    """The scene's kind, family, phase count, vacuum, close pair, pixel size and dose: always
    drawn in the same order, so an override does not shift the other draws."""
    d_kind = str(r_choice.choice(KINDS, p=KIND_WEIGHTS))
    d_family = str(r_choice.choice(FAMILIES))
    d_n = int(r_choice.integers(N_PHASES[0], N_PHASES[1] + 1))
    d_vac = bool(r_choice.random() < 0.4)
    d_close = bool(r_choice.random() < CLOSE_PAIR_PROBABILITY)
    d_pixel = float(np.exp(r_choice.uniform(np.log(2), np.log(40))))
    kind = d_kind if kind is None else str(kind)
    family = d_family if family is None else str(family)
    n = d_n if n_phases is None else int(n_phases)
    if kind not in KINDS:
        raise ParameterError(f"kind={kind!r} is unknown: use one of {', '.join(KINDS)}.")
    if family not in FAMILIES:
        raise ParameterError(f"family={family!r} is unknown: use one of {', '.join(FAMILIES)}.")
    if not N_PHASES[0] <= n <= N_PHASES[1]:
        raise ParameterError(f"n_phases must be {N_PHASES[0]}-{N_PHASES[1]}, got {n}.")
    d_dose = float(np.exp(r_dose.uniform(np.log(DOSE_RANGE[0]), np.log(DOSE_RANGE[1]))))
    dose = d_dose if dose is None else float(dose)
    if not dose > 0:
        raise ParameterError(f"dose must be > 0 counts per pixel, got {dose}.")
    return dict(kind=kind, family=family, n=n,
                vac=(d_vac if vacuum is None else bool(vacuum)) and kind != "particles",
                close=d_close if close_pair is None else bool(close_pair),
                pixel_nm=d_pixel if pixel_nm is None else float(pixel_nm), dose=dose)


def _draw_geometry(r_geom, shape, c):
    """Labels, path lengths, thickness and the scene description; redrawn (same stream, so
    still determined by the seed) until every realised fraction lies in FRACTION_RANGE: stripes,
    particles and whole grains quantise the areas."""
    n = c["n"]
    targets = draw_fractions(r_geom, n, *TARGET_RANGE)
    for attempt in range(1, MAX_GEOMETRY_ATTEMPTS + 1):
        desc = dict(kind=c["kind"], family=c["family"], n_phases=n,
                    target_fractions=[_f(x) for x in targets])
        labels, path, thickness, vmask = _geometry(r_geom, shape, c["kind"], targets, c["vac"],
                                                   desc)
        is_sample = labels >= 0
        realised = np.bincount(labels[is_sample], minlength=n) / max(int(is_sample.sum()), 1)
        if FRACTION_RANGE[0] <= realised.min() and realised.max() <= FRACTION_RANGE[1]:
            break
    desc.update(geometry_attempts=attempt, fractions=[_f(x) for x in realised],
                min_fraction=_f(realised.min()), vacuum=bool(c["vac"]),
                vacuum_fraction=_f(vmask.mean()), sample_fraction=_f(is_sample.mean()))
    return labels, path, thickness, desc


def scene_suite(n=30, size=128, first_seed=0, n_large=4, large_size=256):
    """The benchmark's scenes: ``n`` seeds at ``size`` plus ``n_large`` further seeds at
    ``large_size``. Returns a list of ``(seed, size)``."""
    specs = [(first_seed + i, int(size)) for i in range(int(n))]
    specs += [(first_seed + int(n) + i, int(large_size)) for i in range(int(n_large))]
    return specs
