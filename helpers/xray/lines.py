"""X-ray lines from exspy's database: energies, families, weights, detector peak shape.

Every module that needs a line energy, the lines of a family, an atomic weight or the shape of a
peak on the detector asks here, so the database is read in one way only (exspy's
``exspy.material.elements``, the table HyperSpy's EDS tools use themselves).
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf

from ..errors import ElementError


def database():
    """exspy's element database (``exspy.material.elements``), imported on first use.

    exspy is heavy to import (it loads HyperSpy); deferring it keeps ``import helpers`` fast.
    """
    from exspy.material import elements

    return elements


def line_energy(element: str, line: str) -> float:
    """Energy (keV) of an X-ray line from exspy's database."""
    try:
        return float(database()[element]["Atomic_properties"]["Xray_lines"][line]["energy (keV)"])
    except (KeyError, AttributeError):
        raise ElementError(f"{element} {line} is not in exspy's X-ray line database: check the "
                           "element symbol (e.g. 'Fe', case-sensitive).") from None


def element_lines(element: str):
    """exspy's ``Xray_lines`` node of ``element`` (KeyError for an unknown symbol)."""
    return database()[element]["Atomic_properties"]["Xray_lines"]


def family_lines(element, family):
    """``{line: (energy keV, weight)}`` of one family (``"K"``, ``"L"``, ``"M"``) of ``element``."""
    lines = element_lines(element)
    return {ln: (float(lines[ln]["energy (keV)"]), float(lines[ln]["weight"]))
            for ln in lines.keys() if ln.startswith(family)}


def family_of(xray_line):
    """``{"Fe_Ka": (energy, weight), "Fe_Kb": ...}``: the lines of the family of ``xray_line``
    (``"Fe_Ka"``), named in exspy's notation."""
    element, line = xray_line.split("_", 1)
    lines = element_lines(element)
    return {f"{element}_{ln}": (float(lines[ln]["energy (keV)"]), float(lines[ln]["weight"]))
            for ln in lines.keys() if ln[0] == line[0]}


def xray_line_positions(elements, beam_energy=None, energy_range=None, min_weight=0.1):
    """{'Fe_Ka': keV, ...} for the lines of ``elements`` in exspy's database.

    Lines with a relative weight below ``min_weight`` or above the beam energy are skipped.
    """
    db = database()
    out = {}
    for el in elements:
        try:
            lines = db[el]["Atomic_properties"]["Xray_lines"]
        except KeyError:
            continue
        for name in lines.keys():
            e = float(lines[name]["energy (keV)"])
            w = float(lines[name]["weight"])
            if w < min_weight:
                continue
            if beam_energy is not None and e >= beam_energy:
                continue
            if energy_range is not None and not (energy_range[0] <= e <= energy_range[1]):
                continue
            out[f"{el}_{name}"] = e
    return out


def atomic_weight(element):
    """Atomic weight (g/mol) from exspy's database."""
    return float(database()[element]["General_properties"]["atomic_weight"])


def atomic_number(element):
    """Atomic number Z from exspy's database."""
    return int(database()[element]["General_properties"]["Z"])


def atomic_weights(elements):
    """Atomic weights of ``elements`` as an array."""
    return np.array([atomic_weight(e) for e in elements])


def at_to_wt(composition):
    """Atomic percent -> weight fractions (sum 1)."""
    m = {e: c * atomic_weight(e) for e, c in composition.items()}
    tot = sum(m.values())
    return {e: v / tot for e, v in m.items()}


def fwhm_kev(energy_kev, resolution_mnka_ev=130.0):
    """Detector FWHM (keV) at ``energy_kev``: exspy's Fiori-Newbury law, vectorised."""
    from exspy._misc.eds.utils import get_FWHM_at_Energy

    return np.vectorize(lambda e: get_FWHM_at_Energy(resolution_mnka_ev, e))(energy_kev)


def gaussian_channels(energies, width, centre, sigma):
    """A unit-area Gaussian (``sigma`` keV) integrated over channels of ``width`` keV centred at
    ``energies``: the peak shape of both the simulator and the line fit."""
    lo = (energies - width / 2 - centre) / (np.sqrt(2) * sigma)
    hi = (energies + width / 2 - centre) / (np.sqrt(2) * sigma)
    return 0.5 * (erf(hi) - erf(lo))
