"""Cliff-Lorimer k-factor tables: the package's 200 kV table and users' files.

The table is a CSV (``element,line,k_factor,k_factor_err``; weight basis; main line of a family)
shipped in ``helpers/xray/data/kfactors_200kV.csv``. Users pass their own file with the same columns;
its rows replace the defaults for the elements it lists.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import KFactorError

DEFAULT_TABLE = Path(__file__).parent / "data" / "kfactors_200kV.csv"
#: Source of the package table's values (scaled or model values say so in their own source).
PACKAGE_SOURCE = "package 200 kV table"

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
    source: str = "package 200 kV table"   # PACKAGE_SOURCE

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
    table = read_kfactor_csv(DEFAULT_TABLE, source=PACKAGE_SOURCE)
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


def defaulted_elements(lines, user_table) -> list[str]:
    """Elements whose k-factor came from the package (its table or its model) although
    ``user_table`` was given.

    A user's k-factor file replaces the package values only for the elements it lists; this
    names the others so the caller can say so (mixing instrument-specific and generic values is
    common, but should never be silent).
    """
    if user_table is None:
        return []
    return [kf.element for kf in lines
            if kf.source.startswith(PACKAGE_SOURCE) or kf.source.startswith("model")]
