"""The line to quantify for each element, and its k-factor, for any element and beam energy.

Where a k-factor comes from, in order:

1. the user's k-factor file (``KFACTORS``), as given: values measured on their instrument;
2. the package's 200 kV table (``data/kfactors_200kV.csv``), carried to the beam energy by the
   theoretical model's energy dependence (:func:`helpers.xray.model.scaled_table_kfactor`;
   unchanged at 200 kV);
3. the theoretical model (:mod:`helpers.xray.model`: Bote-Salvat cross-sections, xraydb
   yields and line fractions, SDD efficiency) for every other element and line family, with
   the larger uncertainty the comparison with the table sets.

Every :class:`~helpers.xray.kfactors.KFactor` records its source, which
``compositions_detail.csv`` carries. The simulator and the quantification both ask here, so a
simulated map is quantified with the k-factors it was generated with.
"""
from __future__ import annotations

from functools import lru_cache

from ..errors import ElementError
from .ionisation import FAMILY_SHELL, LineNotExcitedError, edge_energy
from .kfactors import K_LINE_MAX_KEV, PACKAGE_SOURCE, KFactor, load_kfactors
from .lines import database, line_energy
from .model import model_kfactor_entry, scaled_table_kfactor


#: Lines whose shell has a lower overvoltage are used only when no other family is available.
MIN_OVERVOLTAGE = 1.5


def _overvoltage(element, line, beam_energy):
    try:
        return float(beam_energy) / edge_energy(element, FAMILY_SHELL[line])
    except (KeyError, ValueError, ElementError):
        return float("inf")


@lru_cache(maxsize=4096)
def _model(element, line, beam_energy):
    return model_kfactor_entry(element, line, beam_energy)


@lru_cache(maxsize=4096)
def _scaled(kf, beam_energy):
    return scaled_table_kfactor(kf, beam_energy)


def resolve_kfactor(element, line, beam_energy, table=None):
    """The k-factor of ``element``'s main line ``line`` ("Ka", "La", "Ma") at ``beam_energy`` kV:
    the user's value, else the package table's scaled to the beam energy, else the model's.

    Raises
    ------
    LineNotExcitedError
        When the line's shell edge lies above the beam energy.
    """
    table = load_kfactors() if table is None else table
    kf = table.get((element, line))
    if kf is None:
        return _model(element, line, float(beam_energy))
    if kf.source == PACKAGE_SOURCE:
        return _scaled(kf, float(beam_energy))
    return kf


def _candidates(element, energy_range, beam_energy, table):
    """Main lines of ``element`` inside the energy range and excited: the user's / table's
    lines when it has any there, otherwise every family exspy lists."""
    db = database()
    lines = db[element]["Atomic_properties"]["Xray_lines"]
    lo, hi = energy_range
    inside = {ln: line_energy(element, ln) for ln in FAMILY_SHELL if ln in lines
              and lo < line_energy(element, ln) < min(hi, beam_energy)}
    tabled = {ln: e for ln, e in inside.items() if (element, ln) in table}
    return tabled or inside


def choose_line(element: str, energy_range: tuple[float, float], beam_energy: float,
                table=None) -> KFactor:
    """The line of ``element`` to quantify, and its k-factor (:func:`resolve_kfactor`).

    The K line is used when it lies inside the energy range and below ``K_LINE_MAX_KEV``;
    otherwise the L line, then the M line, then a K line above that limit; a line whose shell is
    barely excited (overvoltage ``E0 / E_edge`` below ``MIN_OVERVOLTAGE``) goes after the
    others (at 20 kV thorium is quantified from Th Ma, not Th La). Lines must be excited (edge
    below the beam energy) and inside ``energy_range`` (keV). When the k-factor
    table (yours or the package's) has lines of the element inside the range, only those are
    considered, so a user's file decides the line.

    Raises
    ------
    ElementError
        If the element is unknown or none of its lines falls inside the range.
    """
    db = database()
    if element not in db:
        raise ElementError(f"Unknown element symbol {element!r}: use a chemical symbol such as "
                           "'Fe' or 'Cd' (case-sensitive).")
    table = load_kfactors() if table is None else table
    inside = _candidates(element, energy_range, beam_energy, table)
    order = [p for p in ("Ka", "La", "Ma") if p in inside
             and (p != "Ka" or inside[p] <= K_LINE_MAX_KEV)] + (["Ka"] if "Ka" in inside else [])
    # a line barely excited (overvoltage below MIN_OVERVOLTAGE: Th La at 20 kV) gives few
    # counts and a steep, poorly known cross-section: the next family is used when there is one
    strong = [ln for ln in order if _overvoltage(element, ln, beam_energy) >= MIN_OVERVOLTAGE]
    order = list(dict.fromkeys(strong + order))
    for line in order:
        try:
            return resolve_kfactor(element, line, beam_energy, table)
        except LineNotExcitedError:    # line energy below the beam, its edge above it
            continue
    lo, hi = energy_range
    lines = db[element]["Atomic_properties"]["Xray_lines"]
    known = ", ".join(f"{element}_{ln} {line_energy(element, ln):.2f} keV" for ln in FAMILY_SHELL
                      if ln in lines)
    raise ElementError(f"{element} has no line inside the energy range {lo:.2f}-{hi:.2f} keV "
                       f"excited at {beam_energy:g} kV ({known}): remove it from the elements or "
                       "record a wider energy range.")
