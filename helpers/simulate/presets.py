"""The demo presets (``hea6``, ``hea7``, ``hea7_coreshell``, ``hea_alloy``) and :func:`simulate`,
the simulator's entry point. What each preset holds, and where its compositions come from, is
described once, in the package docstring (:mod:`helpers.simulate`).
"""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..xray.choice import choose_line
from ..xray.kfactors import load_kfactors
from .geometry import hea6_geometry, hea7_geometry, precipitate_geometry
from .spectra import continuum_spectrum, energy_axis, phase_unit_spectrum
from .truth import GroundTruth

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

# hea_alloy: an aged Cantor alloy, equimolar CrMnFeCoNi with Cr-rich (sigma-like) and NiMn-rich
# (L1_0-like) precipitates; five neighbouring 3d metals, so Cr Kb / Mn Ka, Mn Kb / Fe Ka,
# Fe Kb / Co Ka and Co Kb / Ni Ka overlap (no anion: an alloy)
_ALLOY_PHASES = {
    "fcc matrix (CrMnFeCoNi)": {"Co": 20.0, "Cr": 20.0, "Fe": 20.0, "Mn": 20.0, "Ni": 20.0},
    "Cr-rich precipitate": {"Co": 14.0, "Cr": 48.0, "Fe": 18.0, "Mn": 12.0, "Ni": 8.0},
    "NiMn-rich precipitate": {"Co": 12.0, "Cr": 8.0, "Fe": 12.0, "Mn": 32.0, "Ni": 36.0},
}
_ALLOY_AREAS = (0.12, 0.10)

PRESETS = {
    "hea6": dict(dose=40.0, pixel_nm=40.0, description="6-cation multiphase sulfide (Table 1)"),
    "hea7": dict(dose=15.0, pixel_nm=0.8, description="7-cation uniform nanoparticles (Table 2)"),
    "hea7_coreshell": dict(dose=15.0, pixel_nm=0.8,
                           description="7-cation nanoparticles with a Co/Mn/Zn-rich core"),
    "hea_alloy": dict(dose=50.0, pixel_nm=2.0,
                      description="CrMnFeCoNi alloy with Cr-rich and NiMn-rich precipitates"),
}

# Bump when the simulation changes, so cached demo files on disk are regenerated.
SIMULATOR_VERSION = 1


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
    compositions, labels, thickness, path, support = _preset_scene(preset, rng, shape)
    table = load_kfactors(kfactors)
    energies = energy_axis(n_channels, channel_width, offset)
    unit, background = scene_spectra(compositions, path, energies, channel_width, beam_energy,
                                     energy_resolution_mnka, table, dose, support)
    elements = sorted({e for c in compositions.values() for e in c})
    truth = GroundTruth(preset=preset, elements=elements, labels=labels,
                        phase_names=list(compositions), compositions=compositions,
                        thickness=thickness, path_lengths=path, unit_spectra=unit,
                        background_spectrum=background, params=params)
    data = draw_counts(truth, rng, dtype)
    s = make_signal(data, truth, f"Simulated {preset}: {cfg['description']}", table)
    return s, truth


def _preset_scene(preset, rng, shape):
    """Compositions (normalised at%), labels, thickness, path lengths and support of a preset."""
    if preset == "hea6":
        compositions = {p: _normalise(c) for p, c in _HEA6_PHASES.items()}
        labels, thickness, path = hea6_geometry(rng, shape)
        return compositions, labels, thickness, path, None
    if preset == "hea_alloy":
        compositions = {p: _normalise(c) for p, c in _ALLOY_PHASES.items()}
        labels, thickness, path = precipitate_geometry(rng, shape, _ALLOY_AREAS)
        return compositions, labels, thickness, path, None
    if preset == "hea7":
        compositions = {"nanoparticle": _normalise(_HEA7_UNIFORM)}
        labels, thickness, path = hea7_geometry(rng, shape)
    else:
        compositions = {"shell": _normalise(_HEA7_UNIFORM), "core": _normalise(_core_composition())}
        labels, thickness, path = hea7_geometry(rng, shape, core_fraction=0.5)
    return compositions, labels, thickness, path, {"C": 100.0}


def scene_spectra(compositions, path, energies, channel_width, beam_energy, resolution_mnka,
                  table, dose, support=None):
    """Unit spectra of the phases and the background every pixel sees, scaled to ``dose``.

    The background is a faint continuum: a thin support film of composition ``support`` (e.g.
    carbon, hea7) or, without a support, stray scatter. Everything is scaled so that the mean
    total counts per pixel of a map with path lengths ``path`` equal ``dose``.

    Returns
    -------
    unit : (n_phases, channels), background : (channels,)
    """
    unit, cscale = [], None
    for comp in compositions.values():
        spec, cscale = phase_unit_spectrum(comp, energies, channel_width, beam_energy,
                                           resolution_mnka, table, cscale)
        unit.append(spec)
    unit = np.array(unit)
    if support is not None:
        background = 0.04 * cscale * continuum_spectrum(support, energies, beam_energy) * 6.0
    else:   # stray scatter: a faint continuum of the sample itself (S for the sulfides)
        stray = {"S": 1} if any("S" in c for c in compositions.values()) \
            else next(iter(compositions.values()))
        background = 0.003 * unit.mean(0).sum() / continuum_spectrum(stray, energies).sum() \
            * continuum_spectrum(stray, energies)
    mean_total = (path.reshape(-1, path.shape[-1]) @ unit.sum(1)).mean() + background.sum()
    scale = dose / mean_total
    unit *= scale
    return unit, background * scale


def draw_counts(truth, rng, dtype=None):
    """Poisson counts of every pixel of ``truth`` (a block of rows at a time to bound memory),
    stored in ``dtype`` (the smallest unsigned type that holds them when None)."""
    rows, cols = truth.labels.shape
    n_channels = truth.unit_spectra.shape[1]
    block = max(1, int(2e7 // (cols * n_channels)))
    counts = []
    for r0 in range(0, rows, block):
        counts.append(rng.poisson(truth.expected_counts(slice(r0, r0 + block))).astype(np.uint32))
    data = np.concatenate(counts, axis=0)
    if dtype is None:
        dtype = np.uint8 if data.max() < 256 else np.uint16 if data.max() < 65536 else np.uint32
    return data.astype(dtype)


def make_signal(data, truth, title, table=None):
    """An ``EDSTEMSpectrum`` of simulated counts with complete metadata and the truth attached.

    Axes and microscope parameters come from ``truth.params`` (``pixel_nm``, ``channel_width``,
    ``offset``, ``beam_energy``, ``energy_resolution_mnka``); elements and the line of each
    (:func:`helpers.xray.choose_line` with ``table``) from ``truth.elements``.
    """
    import exspy

    p = truth.params
    table = load_kfactors() if table is None else table
    s = exspy.signals.EDSTEMSpectrum(data)
    s.metadata.General.title = title
    s.metadata.Signal.quantity = "X-rays (Counts)"
    ax = s.axes_manager
    for i, name in enumerate(("y", "x")):
        nav = ax.navigation_axes[::-1][i]  # HyperSpy orders navigation axes x first
        nav.name, nav.units, nav.scale, nav.offset = name, "nm", p["pixel_nm"], 0.0
    sig = ax.signal_axes[0]
    sig.name, sig.units = "Energy", "keV"
    sig.scale, sig.offset = p["channel_width"], p["offset"]
    s.set_microscope_parameters(beam_energy=p["beam_energy"],
                                energy_resolution_MnKa=p["energy_resolution_mnka"],
                                live_time=1.0, real_time=1.0)
    energies = energy_axis(p["n_channels"], p["channel_width"], p["offset"])
    s.set_elements(truth.elements)
    s.set_lines([choose_line(e, (energies[0], energies[-1]), p["beam_energy"], table).xray_line
                 for e in truth.elements])
    s.metadata.set_item("Simulation", truth.to_dict())
    return s
