"""Atomic relaxation data from xraydb (Elam et al. 2002): fluorescence yields, Coster-Kronig
probabilities, radiative vacancy transfer and line fractions, and the vacancies an electron
makes in each shell (cross-sections from :mod:`.ionisation`). Formulas: :mod:`helpers.xray.model`."""
from __future__ import annotations

from functools import lru_cache


from ..errors import ElementError
from .ionisation import SHELLS, FAMILY_SHELL, bote_salvat_parameters, ionisation_cross_section, symbol, z_number


# final levels of the main line's transitions (database notation)
_MAIN_FINAL = {"Ka": ("L1", "L2", "L3", "L2,3"), "La": ("M4", "M5", "M4,5"),
               "Ma": ("N6", "N7", "N6,7")}

# subshell occupancies, to split a blended final level such as "M4,5"
_OCCUPANCY = {"K": 2, "L1": 2, "L2": 2, "L3": 4, "M1": 2, "M2": 2, "M3": 4, "M4": 4, "M5": 6,
              "N1": 2, "N2": 2, "N3": 4, "N4": 4, "N5": 6, "N6": 6, "N7": 8}


@lru_cache(maxsize=1)
def _xraydb_tables() -> dict:
    """Yields, line intensities, Coster-Kronig probabilities and masses of every element.

    Read in one pass from xraydb's SQLite file (its documented tables ``elements``,
    ``xray_levels``, ``xray_transitions`` and ``Coster_Kronig``): one query per table instead of
    dozens per element.
    """
    import sqlite3

    import xraydb

    con = sqlite3.connect(f"file:{xraydb.get_xraydb().dbname}?mode=ro", uri=True)
    try:
        elements = {sym: (int(z), float(mass)) for z, sym, mass in
                    con.execute("select atomic_number, element, molar_mass from elements")}
        levels = con.execute("select element, iupac_symbol, fluorescence_yield from xray_levels")
        lines = con.execute("select element, initial_level, final_level, intensity "
                            "from xray_transitions")
        ck = con.execute("select element, initial_level, final_level, transition_probability "
                         "from Coster_Kronig")
        by_z = {z: {"symbol": sym, "mass": mass, "omega": {}, "lines": {}, "ck": {}}
                for sym, (z, mass) in elements.items()}
        for sym, level, fy in levels:
            if sym in elements and level in SHELLS:
                by_z[elements[sym][0]]["omega"][level] = float(fy or 0.0)
        for sym, ini, fin, inten in lines:
            if sym in elements and ini in SHELLS:
                by_z[elements[sym][0]]["lines"].setdefault(ini, []).append((fin, float(inten)))
        for sym, ini, fin, prob in ck:
            if sym in elements and ini in SHELLS and fin in SHELLS:
                by_z[elements[sym][0]]["ck"][(ini, fin)] = float(prob or 0.0)
    finally:
        con.close()
    return by_z


def atomic_data(z: int) -> dict:
    """``{"symbol", "mass", "omega": {shell: yield}, "lines": {shell: [(final, intensity)]},
    "ck": {(initial, final): direct Coster-Kronig probability}}`` of one element (xraydb)."""
    try:
        return _xraydb_tables()[z]
    except KeyError:
        raise ElementError(f"Z = {z} is not in xraydb's tables.") from None


def _final_split(final: str) -> dict:
    """``"M4,5"`` -> ``{"M4": 0.4, "M5": 0.6}`` (by occupancy); ``"L3"`` -> ``{"L3": 1}``."""
    if "," not in final:
        return {final: 1.0}
    letter, nums = final[0], final[1:].split(",")
    subs = [letter + n for n in nums]
    occ = [_OCCUPANCY.get(s, 1) for s in subs]
    return {s: o / sum(occ) for s, o in zip(subs, occ)}


def _radiative_transfer(z: int, src: str, dst: str) -> float:
    """Vacancies handed from ``src`` to ``dst`` per ``src`` vacancy by X-ray emission."""
    at = atomic_data(z)
    frac = sum(w * _final_split(fin).get(dst, 0.0) for fin, w in at["lines"].get(src, []))
    return at["omega"].get(src, 0.0) * frac


# Below Ar the free-atom 3p (M2,3) subshell is not full, and the database's K-beta fraction
# (Scofield's free-atom rates, interpolated: K-beta/K-alpha = 0.12-0.13 from Mg to Cl) does not
# describe the solid (measured ~0.01 for Mg, 0.03 for Si, 0.08 for Cl). There the main-line
# fraction is taken from exspy's own Kb weight, the ratio the family fit ties K-beta to.
KBETA_FROM_EXSPY_BELOW_Z = 18


def _exspy_ka_fraction(z: int) -> float:
    from exspy.material import elements as db

    lines = db[symbol(z)]["Atomic_properties"]["Xray_lines"]
    others = sum(float(lines[n]["weight"]) for n in lines.keys() if n.startswith("K") and n != "Ka")
    return 1.0 / (1.0 + others)


def _main_fraction_raw(z: int, line: str) -> float:
    if line == "Ka" and z < KBETA_FROM_EXSPY_BELOW_Z:
        return _exspy_ka_fraction(z)
    at = atomic_data(z)
    shell = FAMILY_SHELL[line]
    return sum(w for fin, w in at["lines"].get(shell, []) if fin in _MAIN_FINAL[line])


@lru_cache(maxsize=None)
def yield_and_fraction(z: int, line: str):
    """``(omega, a, borrowed_from)`` of a main line; ``borrowed_from`` is None or the Z used."""
    shell = FAMILY_SHELL[line]
    omega = atomic_data(z)["omega"].get(shell, 0.0)
    frac = _main_fraction_raw(z, line)
    borrowed = None
    if omega <= 0 or frac <= 0:
        for z2 in range(z + 1, min(z + 8, 99)):
            o2, f2 = atomic_data(z2)["omega"].get(shell, 0.0), _main_fraction_raw(z2, line)
            if o2 > 0 and f2 > 0:
                omega = omega if omega > 0 else o2
                frac = frac if frac > 0 else f2
                borrowed = z2
                break
    return omega, frac, borrowed


def shell_vacancies(element, beam_energy_kv, upto: str = "M5") -> dict:
    """Vacancies per atom and incident electron (cm^2) in each subshell, with cascades.

    Direct Bote-Salvat ionisation plus Coster-Kronig transfers within the L and M shells and
    radiative transfers from K and L to lower shells (module docstring, ``n_s``).

    Parameters
    ----------
    element : str or int
        Chemical symbol or atomic number.
    beam_energy_kv : float
        Beam energy (kV).
    upto : str
        Last shell to compute (``"K"`` ... ``"M5"``); the shells below it receive nothing from it.

    Returns
    -------
    dict
        ``{shell: n_s}`` for the shells the atom has, down to ``upto``.
    """
    z = z_number(element)
    at = atomic_data(z)
    last = SHELLS.index(upto)
    have = [s for s in SHELLS[:last + 1] if (z, s) in bote_salvat_parameters()]
    n = {s: ionisation_cross_section(z, s, beam_energy_kv) for s in have}
    for j, sj in enumerate(have):
        if sj == "K":
            continue
        extra = 0.0
        for si in have[:j]:
            if si[0] != sj[0]:  # a shell above: radiative transfer (K->L, K->M, L->M)
                extra += _radiative_transfer(z, si, sj) * n[si]
            else:  # same shell: Coster-Kronig
                extra += at["ck"].get((si, sj), 0.0) * n[si]
        n[sj] += extra
    return n
