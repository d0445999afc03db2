"""Expected spectra of a phase: characteristic lines, bremsstrahlung, detector efficiency.

* characteristic lines from exspy's X-ray line database (every line of each family inside the
  energy range, at its database weight relative to the family's main line Ka/La/Ma);
* Cliff-Lorimer intensities: the main line of element *i* gets ``I_i ∝ t · w_i / k_i`` (``t`` path
  length, ``w_i`` weight fraction, ``k_i`` from the same k-factor table the quantification uses),
  so a perfect analysis recovers the true composition exactly;
* Gaussian peaks integrated over each channel, FWHM growing with energy (Fiori-Newbury law used by
  exspy, 130 eV at Mn Ka by default);
* a Kramers bremsstrahlung continuum (∝ Z̄ (E0 − E)/E) cut at low energy by detector absorption.
"""
from __future__ import annotations

import numpy as np

from ..xray.choice import resolve_kfactor
from ..xray.ionisation import LineNotExcitedError
from ..xray.kfactors import load_kfactors
from ..xray.lines import at_to_wt, atomic_number, family_lines, fwhm_kev, gaussian_channels

# Relative strength of a family that has no k-factor in the table (e.g. Fe L next to Fe K), as a
# fraction of the quantified family's main line: weak, and only there so spectra look real.
_MINOR_FAMILY_YIELD = 0.05

# Fraction of counts in the bremsstrahlung continuum for a typical sulfide pixel (thin film).
_CONTINUUM_FRACTION = 0.25


def energy_axis(n_channels, channel_width, offset):
    """Channel centres (keV)."""
    return offset + channel_width * np.arange(n_channels)


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
        quant = _main_line_kfactors(el, fams, beam_energy, table)
        if not quant:
            continue
        main_strength = {f: w / k for f, k in quant.items()}
        ref = max(main_strength.values())
        for fam, lines in fams.items():
            strength = main_strength.get(fam, _MINOR_FAMILY_YIELD * ref)
            for ln, (energy, weight) in lines.items():
                sigma = fwhm_kev(energy, resolution_mnka_ev) / (2.0 * np.sqrt(2.0 * np.log(2.0)))
                spec += strength * weight * gaussian_channels(energies, channel_width, energy,
                                                              sigma)
    return spec


def _main_line_kfactors(element, families, beam_energy, table):
    """k-factor of each family's main line the simulation gives its table-like intensity: the
    table's families (scaled to the beam energy, :func:`helpers.xray.choice.resolve_kfactor`,
    as the quantification does); for an element the table lacks, the model's value of every
    excited family. Other families get :data:`_MINOR_FAMILY_YIELD`."""
    tabled = [f for f in families if (element, f + "a") in table]
    out = {}
    for f in tabled or families:
        try:
            out[f] = resolve_kfactor(element, f + "a", beam_energy, table).k
        except LineNotExcitedError:
            continue
    return out


def detector_efficiency(energies):
    """Smooth SDD efficiency: low-energy absorption in window/dead layer, high-energy transmission."""
    e = np.clip(energies, 1e-3, None)
    return np.exp(-(0.45 / e) ** 3) * (1.0 - np.exp(-(28.0 / e) ** 2))


def continuum_spectrum(composition, energies, beam_energy=200.0):
    """Kramers bremsstrahlung shape ∝ Z̄ (E0 − E)/E times detector efficiency (per unit path)."""
    wt = at_to_wt(composition)
    zbar = sum(w * float(atomic_number(e)) for e, w in wt.items())
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
