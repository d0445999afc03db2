"""A physics-based STEM-EDX spectrum-image simulator with known ground truth.

Why a simulator: the paper's data are not shipped, and a method can only be *tested* against
data whose truth is known. The simulation follows the physics that matters for the analysis:

* characteristic lines from exspy's X-ray line database (every line of each family inside the
  energy range, at its database weight relative to the family's main line Ka/La/Ma);
* Cliff-Lorimer intensities: the main line of element *i* gets ``I_i ∝ t · w_i / k_i`` (``t`` path
  length, ``w_i`` weight fraction, ``k_i`` from the same k-factor table the quantification uses),
  so a perfect analysis recovers the true composition exactly;
* Gaussian peaks integrated over each channel, FWHM growing with energy (Fiori-Newbury law used by
  exspy, 130 eV at Mn Ka by default);
* a Kramers bremsstrahlung continuum (∝ Z̄ (E0 − E)/E) cut at low energy by detector absorption;
* a per-pixel thickness map (gradient, spheres), vacuum or a thin carbon support, and Poisson
  counting noise at a realistic dose (tens of counts per pixel, as in the paper).

Presets (compositions from the paper's Tables 1 and 2, ``../shared/reference/paper_tables.json``):

``hea6``
    6-cation multiphase sulfide: chalcopyrite, jalpaite and minority-wurtzite grains in a
    majority-wurtzite matrix (Table 1, workflow 1 values), thickness gradient, a little vacuum.
``hea7``
    7-cation nanoparticles of *uniform* composition (Table 2, workflow 2) on a carbon film. Their
    sphere-like thickness makes minor-element maps look like a core-shell structure.
``hea7_coreshell``
    The same particles with a real Co/Mn/Zn-enriched core (half the particle radius).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.special import erf

from .errors import ParameterError
from .kfactors import load_kfactors

# Table 1, workflow 1 (at%) -- the hea6 phases
_HEA6_PHASES = {
    "chalcopyrite": {"Ag": 1.39, "Cd": 0.67, "Cu": 17.6, "Fe": 25.4, "Mn": 2.51, "S": 52.1, "Zn": 0.35},
    "jalpaite": {"Ag": 39.0, "Cd": 15.8, "Cu": 5.06, "Fe": 0.71, "Mn": 0.81, "S": 38.5, "Zn": 0.11},
    "majority wurtzite": {"Ag": 2.78, "Cd": 7.70, "Cu": 1.03, "Fe": 5.56, "Mn": 17.3, "S": 60.2, "Zn": 5.45},
    "minority wurtzite": {"Ag": 10.8, "Cd": 7.00, "Cu": 8.59, "Fe": 10.5, "Mn": 9.45, "S": 51.1, "Zn": 2.45},
}
# Table 2, workflow 2 (at%) -- the uniform hea7 particles
_HEA7_UNIFORM = {"Ag": 19.19, "Co": 3.24, "Cu": 11.3, "Ga": 2.88, "In": 7.72, "Mn": 0.90, "S": 51.92,
                 "Zn": 2.84}
# hea7_coreshell: a core enriched in Co, Mn and Zn (the other elements scaled down to make room)
_HEA7_CORE_ENRICHED = {"Co": 9.0, "Mn": 6.0, "Zn": 9.0}

PRESETS = {
    "hea6": dict(dose=40.0, pixel_nm=40.0, description="6-cation multiphase sulfide (Table 1)"),
    "hea7": dict(dose=15.0, pixel_nm=0.8, description="7-cation uniform nanoparticles (Table 2)"),
    "hea7_coreshell": dict(dose=15.0, pixel_nm=0.8,
                           description="7-cation nanoparticles with a Co/Mn/Zn-rich core"),
}

# Bump when the simulation changes, so cached demo files on disk are regenerated.
SIMULATOR_VERSION = 1
# Relative strength of a family that has no k-factor in the table (e.g. Fe L next to Fe K), as a
# fraction of the quantified family's main line: weak, and only there so spectra look real.
_MINOR_FAMILY_YIELD = 0.05
# Fraction of counts in the bremsstrahlung continuum for a typical sulfide pixel (thin film).
_CONTINUUM_FRACTION = 0.25


@dataclass
class GroundTruth:
    """What the simulator knows and an analysis should recover.

    Attributes
    ----------
    preset : str
    elements : list of str
    labels : ndarray of int, shape (rows, cols)
        Phase index per pixel; -1 for vacuum or support.
    phase_names : list of str
        ``phase_names[i]`` is the phase of label ``i``.
    compositions : dict
        ``{phase_name: {element: at%}}``, each summing to 100.
    thickness : ndarray, shape (rows, cols)
        Total path length of material (arbitrary units, 1 = typical).
    path_lengths : ndarray, shape (rows, cols, n_phases)
        Path length through each phase (core-shell pixels see both).
    unit_spectra : ndarray, shape (n_phases, n_channels)
        Expected counts per unit path length of each phase.
    background_spectrum : ndarray, shape (n_channels,)
        Expected counts every pixel receives from the support or stray scattering.
    params : dict
        The arguments the simulation was made with.
    """

    preset: str
    elements: list
    labels: np.ndarray
    phase_names: list
    compositions: dict
    thickness: np.ndarray
    path_lengths: np.ndarray
    unit_spectra: np.ndarray
    background_spectrum: np.ndarray
    params: dict = field(default_factory=dict)

    def expected_counts(self, rows=slice(None)):
        """Expected (noise-free) counts of the pixels in ``rows``: shape (r, cols, n_channels)."""
        return self.path_lengths[rows] @ self.unit_spectra + self.background_spectrum

    def to_dict(self):
        """Plain dict (arrays and builtins) for HyperSpy metadata or ``np.savez``."""
        return {
            "preset": self.preset, "elements": list(self.elements), "labels": self.labels,
            "phase_names": list(self.phase_names),
            "compositions": {p: dict(c) for p, c in self.compositions.items()},
            "thickness": self.thickness, "path_lengths": self.path_lengths,
            "unit_spectra": self.unit_spectra, "background_spectrum": self.background_spectrum,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict` (accepts a HyperSpy DictionaryTreeBrowser's ``as_dictionary()``)."""
        return cls(
            preset=str(d["preset"]), elements=[str(e) for e in d["elements"]],
            labels=np.asarray(d["labels"]), phase_names=[str(p) for p in d["phase_names"]],
            compositions={str(p): {str(e): float(v) for e, v in c.items()}
                          for p, c in d["compositions"].items()},
            thickness=np.asarray(d["thickness"]), path_lengths=np.asarray(d["path_lengths"]),
            unit_spectra=np.asarray(d["unit_spectra"]),
            background_spectrum=np.asarray(d["background_spectrum"]),
            params=dict(d.get("params", {})),
        )


# ----------------------------------------------------------------------------------------------
# spectra
# ----------------------------------------------------------------------------------------------
def _db():
    from exspy.material import elements

    return elements


def energy_axis(n_channels, channel_width, offset):
    """Channel centres (keV)."""
    return offset + channel_width * np.arange(n_channels)


def fwhm_kev(energy_kev, resolution_mnka_ev=130.0):
    """Detector FWHM (keV) at ``energy_kev``: exspy's Fiori-Newbury law, vectorised."""
    from exspy._misc.eds.utils import get_FWHM_at_Energy

    return np.vectorize(lambda e: get_FWHM_at_Energy(resolution_mnka_ev, e))(energy_kev)


def _gaussian_counts(energies, width, centre, fwhm, area):
    """A Gaussian of given ``area`` integrated over channels of ``width`` centred at ``energies``."""
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    lo = (energies - width / 2 - centre) / (np.sqrt(2) * sigma)
    hi = (energies + width / 2 - centre) / (np.sqrt(2) * sigma)
    return area * 0.5 * (erf(hi) - erf(lo))


def family_lines(element, family):
    """``{line: (energy keV, weight)}`` of one family (``"K"``, ``"L"``, ``"M"``) of ``element``."""
    lines = _db()[element]["Atomic_properties"]["Xray_lines"]
    return {ln: (float(lines[ln]["energy (keV)"]), float(lines[ln]["weight"]))
            for ln in lines.keys() if ln.startswith(family)}


def at_to_wt(composition):
    """Atomic percent -> weight fractions (sum 1)."""
    db = _db()
    m = {e: c * float(db[e]["General_properties"]["atomic_weight"]) for e, c in composition.items()}
    tot = sum(m.values())
    return {e: v / tot for e, v in m.items()}


def characteristic_spectrum(composition, energies, channel_width, beam_energy=200.0,
                            resolution_mnka_ev=130.0, kfactors=None):
    """Expected characteristic counts per unit path length of a phase (arbitrary scale).

    The main line of each family with a k-factor gets ``w / k``; the other lines of that family
    follow at their database weights; families without a k-factor get a small fixed yield
    relative to the element's strongest quantified family.
    """
    table = load_kfactors() if kfactors is None else kfactors
    wt = at_to_wt(composition)
    spec = np.zeros_like(energies)
    e_lo, e_hi = energies[0] - channel_width, min(energies[-1] + channel_width, beam_energy)
    for el, w in wt.items():
        fams = {}
        for fam in ("K", "L", "M"):
            lines = {ln: ew for ln, ew in family_lines(el, fam).items() if e_lo < ew[0] < e_hi}
            if lines:
                fams[fam] = lines
        quant = {f: table[(el, f + "a")].k for f in fams if (el, f + "a") in table}
        if not quant:
            continue
        main_strength = {f: w / k for f, k in quant.items()}
        ref = max(main_strength.values())
        for fam, lines in fams.items():
            strength = main_strength.get(fam, _MINOR_FAMILY_YIELD * ref)
            for ln, (energy, weight) in lines.items():
                spec += _gaussian_counts(energies, channel_width, energy,
                                         fwhm_kev(energy, resolution_mnka_ev), strength * weight)
    return spec


def detector_efficiency(energies):
    """Smooth SDD efficiency: low-energy absorption in window/dead layer, high-energy transmission."""
    e = np.clip(energies, 1e-3, None)
    return np.exp(-(0.45 / e) ** 3) * (1.0 - np.exp(-(28.0 / e) ** 2))


def continuum_spectrum(composition, energies, beam_energy=200.0):
    """Kramers bremsstrahlung shape ∝ Z̄ (E0 − E)/E times detector efficiency (per unit path)."""
    db = _db()
    wt = at_to_wt(composition)
    zbar = sum(w * float(db[e]["General_properties"]["Z"]) for e, w in wt.items())
    e = np.clip(energies, 0.05, None)
    shape = np.where(energies > 0, zbar * np.clip(beam_energy - e, 0, None) / e, 0.0)
    return shape * detector_efficiency(energies)


def phase_unit_spectrum(composition, energies, channel_width, beam_energy=200.0,
                        resolution_mnka_ev=130.0, kfactors=None, continuum_scale=None):
    """Characteristic + continuum per unit path length; returns (spectrum, continuum_scale)."""
    lines = characteristic_spectrum(composition, energies, channel_width, beam_energy,
                                    resolution_mnka_ev, kfactors)
    cont = continuum_spectrum(composition, energies, beam_energy)
    if continuum_scale is None:  # fix the continuum share on the first (reference) phase
        continuum_scale = _CONTINUUM_FRACTION / (1 - _CONTINUUM_FRACTION) * lines.sum() / cont.sum()
    return lines + continuum_scale * cont, continuum_scale


# ----------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------
def _smooth_field(rng, shape, corr_px):
    f = ndimage.gaussian_filter(rng.standard_normal(shape), corr_px, mode="wrap")
    return (f - f.mean()) / f.std()


def _hea6_geometry(rng, shape):
    rows, cols = shape
    corr = max(min(shape) / 14.0, 1.5)
    # grains: three smooth random fields; a pixel joins a grain phase where its field is high.
    area = {0: 0.17, 1: 0.09, 3: 0.13}  # chalcopyrite, jalpaite, minority wurtzite; rest = matrix
    labels = np.full(shape, 2, dtype=np.int64)
    best = np.full(shape, -np.inf)
    for phase, frac in area.items():
        f = _smooth_field(rng, shape, corr)
        excess = f - np.quantile(f, 1 - frac)
        take = (excess > 0) & (excess > best)
        labels[take] = phase
        best = np.where(take, excess, best)
    # thickness: a gradient across the field (a wedge from the microtome) with gentle undulation
    x = np.linspace(0, 1, cols)[None, :]
    thickness = (0.55 + 0.9 * x) * (1 + 0.08 * _smooth_field(rng, shape, corr * 2))
    # vacuum: beyond a wavy edge in one corner (~6 % of the field)
    yy, xx = np.mgrid[0:rows, 0:cols] / np.array([rows, cols])[:, None, None]
    edge = (1 - xx) + (1 - yy) + 0.06 * _smooth_field(rng, shape, corr * 1.5)
    vacuum = edge < np.quantile(edge, 0.06)
    labels[vacuum] = -1
    thickness[vacuum] = 0.0
    path = np.zeros(shape + (4,))
    for p in range(4):
        path[..., p] = np.where(labels == p, thickness, 0.0)
    return labels, thickness, path


def _particles(rng, shape, n_target):
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


def _hea7_geometry(rng, shape, core_fraction=None):
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols] + 0.5
    n_phase = 1 if core_fraction is None else 2
    labels = np.full(shape, -1, dtype=np.int64)
    path = np.zeros(shape + (n_phase,))
    for cy, cx, r in _particles(rng, shape, n_target=12):
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


def _core_composition():
    core = dict(_HEA7_UNIFORM)
    extra = sum(_HEA7_CORE_ENRICHED.values()) - sum(core[e] for e in _HEA7_CORE_ENRICHED)
    others = [e for e in core if e not in _HEA7_CORE_ENRICHED]
    scale = (sum(core[e] for e in others) - extra) / sum(core[e] for e in others)
    for e in others:
        core[e] *= scale
    core.update(_HEA7_CORE_ENRICHED)
    return core


def _normalise(c):
    tot = sum(c.values())
    return {e: 100.0 * v / tot for e, v in sorted(c.items())}


# ----------------------------------------------------------------------------------------------
# public
# ----------------------------------------------------------------------------------------------
def simulate(preset="hea6", size=256, n_channels=2048, channel_width=0.01, offset=-0.1,
             dose=None, seed=0, beam_energy=200.0, energy_resolution_mnka=130.0,
             pixel_nm=None, dtype=None, kfactors=None):
    """Simulate a STEM-EDX spectrum image of a preset sample, with its ground truth.

    Parameters
    ----------
    preset : {"hea6", "hea7", "hea7_coreshell"}
    size : int or (rows, cols)
        Navigation shape in pixels.
    n_channels, channel_width, offset : int, float, float
        Energy axis: channel count, width (keV) and energy of channel 0 (keV).
    dose : float, optional
        Mean total counts per pixel over the whole map (the preset's default, tens of counts,
        when None). The realised mean differs only by Poisson noise.
    seed : int
        Seed of every random choice (geometry and counting noise): same seed, same bytes.
    beam_energy : float
        kV.
    energy_resolution_mnka : float
        Detector FWHM at Mn Ka, eV.
    pixel_nm : float, optional
        Pixel size (nm); preset default when None.
    dtype : numpy dtype, optional
        Storage type of the counts; the smallest unsigned type that holds them when None.
    kfactors : str, Path or dict, optional
        k-factor table to generate line intensities with (the package default when None).

    Returns
    -------
    signal : exspy.signals.EDSTEMSpectrum
        Counts with complete metadata (beam energy, elements, X-ray lines, energy resolution,
        energy axis in keV, navigation axes in nm); the truth is also kept in
        ``signal.metadata.Simulation`` (see :func:`helpers.io.get_truth`).
    truth : GroundTruth
    """
    import exspy

    if preset not in PRESETS:
        raise ParameterError(f"Unknown demo preset {preset!r}: choose one of {', '.join(PRESETS)}.")
    shape = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
    if len(shape) != 2 or min(shape) < 8:
        raise ParameterError(f"size must be an int or (rows, cols) of at least 8 pixels, got {size!r}.")
    if n_channels < 64 or channel_width <= 0:
        raise ParameterError("n_channels must be >= 64 and channel_width > 0 keV.")
    cfg = PRESETS[preset]
    dose = float(cfg["dose"] if dose is None else dose)
    if not dose > 0:
        raise ParameterError(f"dose must be > 0 counts per pixel, got {dose}.")
    pixel_nm = float(cfg["pixel_nm"] if pixel_nm is None else pixel_nm)
    params = dict(version=SIMULATOR_VERSION, preset=preset, size=list(shape), n_channels=int(n_channels),
                  channel_width=float(channel_width), offset=float(offset), dose=dose,
                  seed=int(seed), beam_energy=float(beam_energy),
                  energy_resolution_mnka=float(energy_resolution_mnka), pixel_nm=pixel_nm)

    rng = np.random.default_rng(seed)
    if preset == "hea6":
        compositions = {p: _normalise(c) for p, c in _HEA6_PHASES.items()}
        labels, thickness, path = _hea6_geometry(rng, shape)
        support = None
    else:
        if preset == "hea7":
            compositions = {"nanoparticle": _normalise(_HEA7_UNIFORM)}
            labels, thickness, path = _hea7_geometry(rng, shape)
        else:
            compositions = {"shell": _normalise(_HEA7_UNIFORM), "core": _normalise(_core_composition())}
            labels, thickness, path = _hea7_geometry(rng, shape, core_fraction=0.5)
        support = {"C": 100.0}
    elements = sorted({e for c in compositions.values() for e in c})

    table = load_kfactors(kfactors)
    energies = energy_axis(n_channels, channel_width, offset)
    unit, cscale = [], None
    for comp in compositions.values():
        spec, cscale = phase_unit_spectrum(comp, energies, channel_width, beam_energy,
                                           energy_resolution_mnka, table, cscale)
        unit.append(spec)
    unit = np.array(unit)
    # every pixel also sees a faint continuum: a thin carbon film (hea7) or stray scatter (hea6)
    if support is not None:
        background = 0.04 * cscale * continuum_spectrum(support, energies, beam_energy) * 6.0
    else:
        background = 0.003 * unit.mean(0).sum() / continuum_spectrum({"S": 1}, energies).sum() \
            * continuum_spectrum({"S": 1}, energies)
    # scale everything so that the mean total counts per pixel equals the dose
    mean_total = (path.reshape(-1, path.shape[-1]) @ unit.sum(1)).mean() + background.sum()
    scale = dose / mean_total
    unit *= scale
    background = background * scale

    truth = GroundTruth(preset=preset, elements=elements, labels=labels,
                        phase_names=list(compositions), compositions=compositions,
                        thickness=thickness, path_lengths=path, unit_spectra=unit,
                        background_spectrum=background, params=params)

    # Poisson counts, a block of rows at a time to bound memory
    rows, cols = shape
    block = max(1, int(2e7 // (cols * n_channels)))
    counts = []
    for r0 in range(0, rows, block):
        counts.append(rng.poisson(truth.expected_counts(slice(r0, r0 + block))).astype(np.uint32))
    data = np.concatenate(counts, axis=0)
    if dtype is None:
        dtype = np.uint8 if data.max() < 256 else np.uint16 if data.max() < 65536 else np.uint32
    data = data.astype(dtype)

    s = exspy.signals.EDSTEMSpectrum(data)
    s.metadata.General.title = f"Simulated {preset}: {cfg['description']}"
    s.metadata.Signal.quantity = "X-rays (Counts)"
    ax = s.axes_manager
    for i, name in enumerate(("y", "x")):
        nav = ax.navigation_axes[::-1][i]  # HyperSpy orders navigation axes x first
        nav.name, nav.units, nav.scale, nav.offset = name, "nm", pixel_nm, 0.0
    sig = ax.signal_axes[0]
    sig.name, sig.units, sig.scale, sig.offset = "Energy", "keV", channel_width, offset
    s.set_microscope_parameters(beam_energy=beam_energy, energy_resolution_MnKa=energy_resolution_mnka,
                                live_time=1.0, real_time=1.0)
    from .kfactors import choose_line

    s.set_elements(elements)
    s.set_lines([choose_line(e, (energies[0], energies[-1]), beam_energy, table).xray_line
                 for e in elements])
    s.metadata.set_item("Simulation", truth.to_dict())
    return s, truth


def write_demo_data(folder=None, sources=("demo:hea6", "demo:hea7", "demo:hea7_coreshell")):
    """Simulate the demo data into ``folder`` (default :func:`helpers.io.demo_dir`).

    Each source gives ``<name>.hspy`` (the signal, truth in its metadata) and ``<name>_truth.npz``
    (labels, thickness, compositions as plain arrays for other tools). Up-to-date files are kept.
    Returns the list of ``.hspy`` paths.
    """
    from pathlib import Path

    from .io import demo_dir, demo_name, get_truth, load_demo

    folder = Path(folder) if folder is not None else demo_dir()
    out = []
    for src in sources:
        sig = load_demo(src, folder=folder, cache_min_pixels=0)
        d = get_truth(sig).to_dict()
        name = demo_name(src)
        np.savez_compressed(folder / f"{name}_truth.npz", labels=d["labels"],
                            thickness=d["thickness"], phase_names=np.array(d["phase_names"]),
                            elements=np.array(d["elements"]),
                            compositions_at_percent=np.array(
                                [[d["compositions"][ph].get(e, 0.0) for e in d["elements"]]
                                 for ph in d["phase_names"]]))
        out.append(folder / f"{name}.hspy")
    return out
