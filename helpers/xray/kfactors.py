"""Cliff-Lorimer k-factor table and the choice of each element's quantification line.

The table is a CSV (``element,line,k_factor,k_factor_err``; weight basis; main line of a family)
shipped in ``helpers/xray/data/kfactors_200kV.csv``. Users pass their own file with the same columns;
its rows replace the defaults for the elements it lists.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import ElementError, KFactorError
from .lines import database, line_energy

DEFAULT_TABLE = Path(__file__).parent / "data" / "kfactors_200kV.csv"

# K lines are used up to this energy; above it the L (then M) line is preferred, as is common
# practice: SDD efficiency falls above ~15 keV and L-line k-factors are better known there.
K_LINE_MAX_KEV = 12.0


@dataclass(frozen=True)
class KFactor:
    """One k-factor: element, line (``"Ka"``, ``"La"``, ``"Ma"``), value and 1-sigma error."""

    element: str
    line: str
    k: float
    k_err: float
    source: str = "package 200 kV table"

    @property
    def xray_line(self) -> str:
        """The line in exspy's notation, e.g. ``"Fe_Ka"``."""
        return f"{self.element}_{self.line}"


def read_kfactor_csv(path, source=None) -> dict[tuple[str, str], KFactor]:
    """Read a k-factor CSV into ``{(element, line): KFactor}``.

    Lines starting with ``#`` are comments (use them to state the source of the values).

    Raises
    ------
    KFactorError
        If the file is missing, lacks a column, or holds a non-positive or non-numeric value.
    """
    path = Path(path)
    source = source or path.name
    if not path.is_file():
        raise KFactorError(f"k-factor file {path} does not exist: give the path of a CSV with "
                           "columns element,line,k_factor,k_factor_err.")
    with path.open(newline="") as fh:
        rows = [r for r in fh if r.strip() and not r.lstrip().startswith("#")]
    reader = csv.DictReader(rows)
    need = {"element", "line", "k_factor", "k_factor_err"}
    if reader.fieldnames is None or not need.issubset({f.strip() for f in reader.fieldnames}):
        raise KFactorError(f"k-factor file {path} must have the columns "
                           f"element,line,k_factor,k_factor_err; it has {reader.fieldnames}.")
    table = {}
    for n, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        el, line = row["element"], row["line"]
        if "_" in line:  # accept "Fe_Ka" as well as "Ka"
            el2, line = line.split("_", 1)
            el = el or el2
        try:
            k, k_err = float(row["k_factor"]), float(row["k_factor_err"])
        except ValueError:
            raise KFactorError(f"k-factor file {path}, row {n}: k_factor and k_factor_err "
                               f"must be numbers, got {row['k_factor']!r}, "
                               f"{row['k_factor_err']!r}.") from None
        if not (k > 0 and k_err >= 0):
            raise KFactorError(f"k-factor file {path}, row {n}: k_factor must be > 0 and "
                               f"k_factor_err >= 0 (got {k}, {k_err}).")
        table[(el, line)] = KFactor(el, line, k, k_err, source)
    return table


def load_kfactors(user_table=None) -> dict[tuple[str, str], KFactor]:
    """The default 200 kV table, with the rows of ``user_table`` (a path or dict) replacing it.

    Parameters
    ----------
    user_table : str, Path, dict or None
        A CSV path in the same format, or a ``{(element, line): KFactor}`` /
        ``{"Fe_Ka": (k, k_err)}`` mapping.
    """
    table = read_kfactor_csv(DEFAULT_TABLE, source="package 200 kV table")
    if user_table is None:
        return table
    if isinstance(user_table, dict):
        for key, val in user_table.items():
            if isinstance(val, KFactor):
                table[(val.element, val.line)] = val
            else:
                el, line = key if isinstance(key, tuple) else key.split("_", 1)
                k, k_err = val if isinstance(val, (tuple, list)) else (val, 0.0)
                table[(el, line)] = KFactor(el, line, float(k), float(k_err), "user")
        return table
    user = read_kfactor_csv(user_table)
    # a user's row replaces every default row of that element, so their line choice wins
    for el in {e for e, _ in user}:
        for key in [key for key in table if key[0] == el]:
            del table[key]
    table.update(user)
    return table


def choose_line(element: str, energy_range: tuple[float, float], beam_energy: float,
                table=None) -> KFactor:
    """The line of ``element`` to quantify, and its k-factor.

    The K line is used when it lies inside the energy range and below ``K_LINE_MAX_KEV``;
    otherwise the L line, then the M line, then a K line above that limit. Lines must be
    excited (energy below the beam energy) and inside ``energy_range`` (keV).

    Raises
    ------
    ElementError
        If the element is unknown or none of its tabulated lines falls inside the range.
    KFactorError
        If the table has no k-factor for any line of this element.
    """
    db = database()
    if element not in db:
        raise ElementError(f"Unknown element symbol {element!r}: use a chemical symbol such as "
                           "'Fe' or 'Cd' (case-sensitive).")
    table = load_kfactors() if table is None else table
    rows = {line: kf for (el, line), kf in table.items() if el == element}
    if not rows:
        raise KFactorError(f"No k-factor for {element}: add a row for it to your k-factor CSV "
                           "(element,line,k_factor,k_factor_err).")
    lo, hi = energy_range
    inside = {line: line_energy(element, line) for line in rows
              if line in db[element]["Atomic_properties"]["Xray_lines"]
              and lo < line_energy(element, line) < min(hi, beam_energy)}
    for pref in ("Ka", "La", "Ma"):
        if pref in inside and (pref != "Ka" or inside[pref] <= K_LINE_MAX_KEV):
            return rows[pref]
    if "Ka" in inside:
        return rows["Ka"]
    known = ", ".join(f"{element}_{ln} {line_energy(element, ln):.2f} keV" for ln in rows
                      if ln in db[element]["Atomic_properties"]["Xray_lines"])
    raise ElementError(f"{element} has no line with a k-factor inside the energy range "
                       f"{lo:.2f}-{hi:.2f} keV ({known}): remove it from the elements or "
                       "record a wider energy range.")


def defaulted_elements(lines, user_table) -> list[str]:
    """Elements whose k-factor came from the package table although ``user_table`` was given.

    A user's k-factor file replaces the package values only for the elements it lists; this
    names the others so the caller can say so (mixing instrument-specific and generic values is
    common, but should never be silent).
    """
    if user_table is None:
        return []
    return [kf.element for kf in lines if kf.source == "package 200 kV table"]
