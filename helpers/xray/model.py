"""Theoretical (standardless) Cliff-Lorimer k-factors for any element, line family and beam energy.

The Cliff-Lorimer ratio ``C_A / C_B = k_AB I_A / I_B`` (weight fractions) of a thin specimen (no
absorption, no fluorescence) follows from the number of main-line photons that one electron makes
and the detector records per unit mass of each element. This module computes it from first
principles and tabulated atomic data, relative to Si Ka (``k_Si,Ka = 1``, the normalisation of
``helpers/xray/data/kfactors_200kV.csv``)::

    k_A = P_Si,Ka / P_A,line          P = n_s(E0) * omega_s * a_line * eps(E_line) / A

Symbols
-------
``s``
    The shell whose vacancy emits the main line: K for ``Ka`` (K-L2,3 = Ka1 + Ka2), L3 for ``La``
    (L3-M4,5 = La1 + La2), M5 for ``Ma`` (M5-N6,7 = Ma1 + Ma2). This is what exspy calls the
    family's main line; its fitted intensity is the one the table's k-factors refer to.
``n_s(E0)``
    Vacancies made in shell ``s`` per atom and incident electron (cm^2): direct electron-impact
    ionisation plus the vacancies that other shells hand on to ``s``::

        n_K  = Q_K
        n_L1 = Q_L1 + r(K->L1) n_K
        n_L2 = Q_L2 + r(K->L2) n_K + f_12 n_L1
        n_L3 = Q_L3 + r(K->L3) n_K + f_13 n_L1 + f_23 n_L2
        n_Mj = Q_Mj + sum_X r(X->Mj) n_X  + sum_{i<j} f_ij(M) n_Mi      (X = K, L1, L2, L3)

    ``f_ij`` are Coster-Kronig probabilities (direct, not cumulative: the chain above adds the
    routes through intermediate subshells). ``r(X->Y) = omega_X * R(X-Y)`` is the radiative
    vacancy transfer: the fluorescence yield of X times the fraction of its X-ray emission whose
    final state is a hole in Y (lines whose final level is a blend, e.g. ``M4,5``, are split by
    the subshells' occupancies 4 : 6, ``L2,3`` by 2 : 4). Auger transitions between shells (a
    K-LL Auger electron leaves two L holes) are NOT included: the database has no Auger rates. With
    Bote-Salvat cross sections this omits <= 1 % of L3 vacancies of heavy elements at 300 kV and
    an estimated 3-5 % of M5 vacancies at 200-300 kV (the L shells' cross section is 6-11 % of
    M5's and about two thirds of an L vacancy's decays are Auger), less at SEM voltages.
``Q_s(E0)``
    Electron-impact ionisation cross-section of subshell ``s`` at beam energy ``E0``
    (:func:`ionisation_cross_section`), from the analytical formulas of Bote, Salvat, Jablonski and
    Powell (2009), fitted to distorted-wave (DWBA) and plane-wave (PWBA) Born calculations of
    Bote and Salvat (2008), with overvoltage ``U = E0 / I_s`` (``I_s`` the ionisation energy used
    in the fit, column ``edge_eV`` of the CSV) and ``a0`` the Bohr radius::

        U <= 16:  Q = 4 pi a0^2 (U - 1) / U^2 * [a1 + a2 U + a3/(1+U) + a4/(1+U)^3 + a5/(1+U)^5]^2
        U >  16:  Q = 4 pi a0^2 A_nlj / beta^2 * U / (U + B)
                      * ([ln X^2 - beta^2] (1 + g1/X) + g2 + g3 (1 - beta^2)^(1/4) + g4/X)

    where ``X = sqrt(E0 (E0 + 2 mc^2)) / mc^2`` (= beta gamma) and
    ``beta^2 = E0 (E0 + 2 mc^2) / (E0 + mc^2)^2``. The two branches differ by up to 1.2 %
    (median 0.2 %) at U = 16; to keep k(E0) free of steps they are blended linearly in ln U for
    16/1.15 < U < 16*1.15 (a change within the fits' accuracy). The formula is relativistic and
    valid from the threshold to 1 GeV; per its abstract it reproduces the numerical DWBA/PWBA
    database to within about 1 %, except near threshold. ``Q = 0`` for ``U <= 1``: a line whose
    shell edge lies at or above the beam energy is not excited and is refused
    (:class:`LineNotExcitedError`). Parameters for Z = 1-99, shells K, L1-L3, M1-M5:
    ``helpers/xray/data/bote_salvat_2009.csv`` (source and transcription check in its header).
``omega_s``
    Fluorescence yield of shell ``s``.
``a_line``
    Fraction of shell ``s``'s X-ray emission that goes into the main line: the summed relative
    intensities of the database's lines from ``s`` ending in L (Ka1+Ka2+Ka3), M4,5 (La1+La2) or
    N6,7 (Ma). The database normalises the lines of each initial level to 1. Exception: for
    Z < 18 (3p subshell not full in the free atom) the database's K-beta share is a free-atom
    interpolation (Kb/Ka = 0.12-0.13 from Mg to Cl, against ~0.01-0.08 measured in solids), so
    ``a_Ka = 1 / (1 + w_Kb)`` with exspy's Kb weight, the ratio the family fit assumes. This
    matters for the reference itself: ``a_Si,Ka`` = 0.973 instead of 0.887.
``eps(E)``
    Detector efficiency at the line energy (exspy's energy of the main line),
    :meth:`DetectorModel.efficiency`::

        eps(E) = T_window(E) * exp(-mu_Al t_Al - mu_Si t_dead - mu_ice t_ice)
                 * [1 - exp(-mu_Si t_crystal)]

    ``T_window`` is 1 (windowless), ``exp(-mu_Be t)`` (Be) or, for an ultra-thin polymer window on
    a Si support grid, ``f_open exp(-mu_pol t_pol - mu_Al t_Al,win) + (1 - f_open) exp(-mu_Si
    t_grid)``. ``mu = (mu/rho) rho`` with the mass attenuation coefficients of the database and
    densities Si 2.33, Al 2.70, Be 1.848, polyimide (C22H10N2O5) 1.42, ice 0.92 g/cm^3. Defaults
    (:class:`DetectorModel`, a Super-X-like windowless SDD; Schlossmacher et al., Microscopy Today
    18 (2010) 14): no window, 30 nm Al light shield, 50 nm Si dead layer, 450 um Si.
``A``
    Standard atomic weight.

Data sources
------------
Fluorescence yields, Coster-Kronig probabilities, relative line intensities, atomic weights and
mass attenuation coefficients come from ``xraydb`` (Elam, Ravel and Sieber, Radiat. Phys. Chem.
63 (2002) 121, which states the source of each quantity; K and L yields and Coster-Kronig
probabilities follow Krause 1979; attenuation is photo-absorption plus scattering). It was chosen
over xraylib because it has M-shell Coster-Kronig probabilities and M-line intensities for every
element from La to U, while xraylib 4.3.0 has no M-shell Coster-Kronig data below Ho (Z = 67),
no M4->M5 value below Yb (70) and no M-line radiative rates below Gd (64) - all needed for the
rare-earth Ma lines, where M3->M5 and M4->M5 transfers raise M5 vacancies by up to ~60 %.
Where the database has no value for the main-line shell of an element (La M5 yield; Ca and Sc
have no L3-M4,5 line in the free atom), the value of the nearest heavier element that has one is
used and the result carries a doubled uncertainty (:data:`FALLBACK_EXTRA_REL_ERR`).

Uncertainty
-----------
The relative error of a model k-factor (:data:`MODEL_REL_ERR`) is set per error class - the
family, with K lines split at 1.2 and 12 keV - from the comparison with the package's 200 kV
table (:func:`compare_with_table`, :func:`derive_model_rel_err`; numbers and the worst entries in
``helpers/xray/data/KFACTOR_MODEL.md``): the smallest error (floor 10 %) with which 90 % of the
class's entries agree within the table's and the model's errors combined. The table is itself
theoretical, so this measures how far two generic calculations differ, not the error against a
given instrument. Values borrowed from a neighbouring element, and lanthanide Ma lines, get
twice their class's error. Scaling a table k-factor to another beam energy with the model's
energy dependence (:func:`scaled_table_kfactor`) adds ``max(2 %, 25 % of |ln scale|)``.

Not modelled: absorption and fluorescence in the specimen (thin-film limit), ionisation by fast
secondary and backscattered electrons, coherent bremsstrahlung, chemical shifts of soft lines,
incomplete charge collection and escape peaks, and Auger-driven vacancy transfer between shells.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ElementError, ParameterError
from .atomic import atomic_data, shell_vacancies, yield_and_fraction
from .detector import DEFAULT_DETECTOR, DetectorModel
from .ionisation import FAMILY_SHELL, LineNotExcitedError, check_line, edge_energy, symbol, z_number
from .kfactors import KFactor, load_kfactors
from .lines import line_energy


REFERENCE = ("Si", "Ka")

TABLE_BEAM_KV = 200.0

AVOGADRO = 6.02214076e23

# Error classes: the line family, with K lines split by energy because the model-table
# disagreement depends on it (soft lines: window, ice and light-element yields; hard lines: the
# crystal thickness, i.e. the instrument).
SOFT_KA_MAX_KEV = 1.2

HARD_KA_MIN_KEV = 12.0  # = helpers.kfactors.K_LINE_MAX_KEV: above it L lines are preferred

ERROR_CLASSES = ("Ka<1.2keV", "Ka", "Ka>12keV", "La", "Ma")

# Relative error of a model k-factor per class: the smallest value (>= the floor, in steps of
# 0.01) with which >= 90 % of the class's entries of the 200 kV table agree with the model within
# the combined (table and model, in quadrature) error; derive_model_rel_err() computes it and
# tests/test_kfactor_model.py checks these constants against it. Numbers: KFACTOR_MODEL.md.
MODEL_REL_ERR_FLOOR = 0.10

MODEL_REL_ERR_COVERAGE = 0.90

MODEL_REL_ERR = {"Ka<1.2keV": 0.44, "Ka": 0.23, "Ka>12keV": 4.37, "La": 0.32, "Ma": 0.43}

FALLBACK_EXTRA_REL_ERR = 1.0  # a value borrowed from a neighbouring element doubles the error

# Lanthanide M5 yields (Z <= 71) follow the free atom's 4f occupancy (omega_M5: Ce 0.0011, Nd
# 0.0032, Gd 0.0071), which differs between compounds; the table (Ta-Pb) cannot test them, so
# their Ma error is doubled too.
LANTHANIDE_MA_MAX_Z = 71


def _require_excited(z: int, line: str, beam_energy_kv: float):
    shell = FAMILY_SHELL[line]
    edge = edge_energy(z, shell)
    if not beam_energy_kv > edge:
        raise LineNotExcitedError(
            f"{symbol(z)}_{line} is not excited at {beam_energy_kv:g} kV: its {shell} edge is at "
            f"{edge:.3g} keV, at or above the beam energy. Use another line of {symbol(z)} or a "
            "higher beam energy.")


def _line_energy_kev(z: int, line: str) -> float:
    sym = symbol(z)
    try:
        return line_energy(sym, line)
    except ElementError:
        raise ElementError(f"{sym}_{line} is not in exspy's X-ray line database, so it has no "
                           "k-factor: use a line exspy lists for this element.") from None


def line_yield(element, line: str, beam_energy_kv: float, detector: DetectorModel | None = None,
               ) -> float:
    """Recorded main-line photons per incident electron per g/cm^2 of the element (into 4 pi).

    ``N_A / A * n_s(E0) * omega_s * a_line * eps(E_line)`` (module docstring). Multiply by the
    detector's solid angle / 4 pi, the dose and the element's areal mass to get counts; the ratio
    of two elements' yields is the inverse of their k-factor ratio. This is the quantity a
    simulator should use to generate line intensities consistent with :func:`model_kfactor`.

    Parameters
    ----------
    element : str or int
        Chemical symbol or atomic number.
    line : {"Ka", "La", "Ma"}
        Main line of the family.
    beam_energy_kv : float
        Beam energy (kV).
    detector : DetectorModel, optional
        Default :data:`DEFAULT_DETECTOR` (windowless SDD).

    Raises
    ------
    LineNotExcitedError
        If the line's shell edge is at or above the beam energy.
    ElementError
        If the element or line is unknown.
    """
    z = z_number(element)
    check_line(line)
    if not (isinstance(beam_energy_kv, (int, float, np.floating, np.integer))
            and math.isfinite(beam_energy_kv) and beam_energy_kv > 0):
        raise ParameterError("Beam energy must be a positive number of kV, got "
                             f"{beam_energy_kv!r}.")
    e_line = _line_energy_kev(z, line)
    _require_excited(z, line, float(beam_energy_kv))
    shell = FAMILY_SHELL[line]
    n = shell_vacancies(z, float(beam_energy_kv), upto=shell)[shell]
    omega, frac, _ = yield_and_fraction(z, line)
    eps = (detector or DEFAULT_DETECTOR).efficiency(e_line)
    return AVOGADRO / atomic_data(z)["mass"] * n * omega * frac * eps


def model_kfactor(element, line: str, beam_energy_kv: float,
                  detector: DetectorModel | None = None) -> float:
    """Theoretical Cliff-Lorimer k-factor of a main line, relative to Si Ka (weight basis).

    ``k = P_Si,Ka / P_element,line`` with ``P`` from :func:`line_yield`.

    Parameters
    ----------
    element : str or int
        Chemical symbol or atomic number.
    line : {"Ka", "La", "Ma"}
        Main line of the K, L or M family (exspy's notion of the measured line).
    beam_energy_kv : float
        Beam energy (kV), e.g. 5-300.
    detector : DetectorModel, optional
        Detector efficiency model; default windowless SDD (:data:`DEFAULT_DETECTOR`).

    Returns
    -------
    float
        ``k_element,Si`` such that ``C_el / C_Si = k I_el / I_Si``.

    Raises
    ------
    LineNotExcitedError
        If the line (or Si Ka) is not excited at this beam energy.
    ElementError
        If the element or line is unknown or exspy does not list the line.
    """
    ref = line_yield(*REFERENCE, beam_energy_kv, detector)
    return ref / line_yield(element, line, beam_energy_kv, detector)


def _parse_lines(elements_lines):
    out = []
    for item in elements_lines:
        if isinstance(item, str):
            if "_" not in item:
                raise ElementError(f"{item!r} is not a line: write it as 'Fe_Ka'.")
            el, ln = item.split("_", 1)
        else:
            el, ln = item
        out.append((str(el), str(ln)))
    return out


def model_kfactors(elements_lines, beam_energy_kv: float, detector: DetectorModel | None = None,
                   unexcited: str = "raise") -> dict:
    """Model k-factors of several lines.

    Parameters
    ----------
    elements_lines : iterable
        ``"Fe_Ka"`` strings or ``(element, line)`` pairs.
    beam_energy_kv : float
        Beam energy (kV).
    detector : DetectorModel, optional
        Default windowless SDD.
    unexcited : {"raise", "none"}
        What to do with a line that the beam cannot excite: raise
        :class:`LineNotExcitedError` (default) or return None for it.

    Returns
    -------
    dict
        ``{(element, line): k}``.
    """
    if unexcited not in ("raise", "none"):
        raise ParameterError("unexcited must be 'raise' or 'none'.")
    ref = line_yield(*REFERENCE, beam_energy_kv, detector)
    out = {}
    for el, ln in _parse_lines(elements_lines):
        try:
            out[(el, ln)] = ref / line_yield(el, ln, beam_energy_kv, detector)
        except LineNotExcitedError:
            if unexcited == "raise":
                raise
            out[(el, ln)] = None
    return out


def error_class(element, line: str) -> str:
    """The uncertainty class of a line.

    One of ``"Ka<1.2keV"``, ``"Ka"`` (1.2-12 keV), ``"Ka>12keV"``, ``"La"``, ``"Ma"``.
    """
    check_line(line)
    if line != "Ka":
        return line
    e = _line_energy_kev(z_number(element), line)
    if e < SOFT_KA_MAX_KEV:
        return "Ka<1.2keV"
    return "Ka>12keV" if e > HARD_KA_MIN_KEV else "Ka"


def model_rel_err(element, line: str) -> float:
    """Relative error of a model k-factor: :data:`MODEL_REL_ERR` of its :func:`error_class`,
    doubled when a yield or line fraction was borrowed from a neighbouring element."""
    rel = MODEL_REL_ERR[error_class(element, line)]
    z = z_number(element)
    if yield_and_fraction(z, line)[2] is not None:
        rel *= 1.0 + FALLBACK_EXTRA_REL_ERR
    elif line == "Ma" and z <= LANTHANIDE_MA_MAX_Z:
        rel *= 2.0
    return rel


def _source(beam_energy_kv, detector) -> str:
    det = detector or DEFAULT_DETECTOR
    return f"model (Bote-Salvat + xraydb, {beam_energy_kv:g} kV, {det.label})"


def model_kfactor_entry(element, line: str, beam_energy_kv: float,
                        detector: DetectorModel | None = None) -> KFactor:
    """One model k-factor as a :class:`~helpers.kfactors.KFactor` with its model error.

    The source reads e.g. ``"model (Bote-Salvat + xraydb, 200 kV, windowless SDD)"``; a value
    that borrowed a yield or line fraction from a neighbouring element says so.
    """
    k = model_kfactor(element, line, beam_energy_kv, detector)
    sym = symbol(element)
    src = _source(beam_energy_kv, detector)
    borrowed = yield_and_fraction(z_number(element), line)[2]
    if borrowed is not None:
        src = src[:-1] + f"; {FAMILY_SHELL[line]} data borrowed from Z={borrowed})"
    return KFactor(sym, line, k, k * model_rel_err(sym, line), src)


def model_kfactor_table(elements_lines, beam_energy_kv: float,
                        detector: DetectorModel | None = None, unexcited: str = "raise") -> dict:
    """Model k-factors as ``{(element, line): KFactor}``, the format of ``load_kfactors``.

    Lines the beam cannot excite raise (``unexcited="raise"``) or are left out
    (``unexcited="skip"``). The result can be passed as ``user_table`` to
    :func:`helpers.kfactors.load_kfactors`.
    """
    if unexcited not in ("raise", "skip"):
        raise ParameterError("unexcited must be 'raise' or 'skip'.")
    out = {}
    for el, ln in _parse_lines(elements_lines):
        try:
            kf = model_kfactor_entry(el, ln, beam_energy_kv, detector)
        except LineNotExcitedError:
            if unexcited == "raise":
                raise
            continue
        out[(kf.element, kf.line)] = kf
    return out


def all_model_lines(z_min: int = 6, z_max: int = 92) -> list:
    """Every (element, main line) that exspy lists for Z in ``[z_min, z_max]``."""
    from exspy.material import elements as db

    out = []
    for el in db.keys():
        z = db[el]["General_properties"]["Z"]
        if z_min <= z <= z_max:
            lines = db[el]["Atomic_properties"]["Xray_lines"]
            out += [(z, el, ln) for ln in FAMILY_SHELL if ln in lines]
    return [(el, ln) for _, el, ln in sorted(out)]


SCALE_REL_ERR_PER_LN = 0.25  # error of the model's energy dependence: 25 % of |ln(scale)|

SCALE_REL_ERR_MIN = 0.02  # ... and at least 2 % whenever the energy differs


def scaled_table_kfactor(kf_table_entry: KFactor, beam_energy_kv: float,
                         detector: DetectorModel | None = None,
                         table_beam_kv: float = TABLE_BEAM_KV) -> KFactor:
    """A measured (table) k-factor carried to another beam energy with the model's trend.

    ``k(E) = k_table * model(E) / model(E_table)``. The detector efficiency cancels in the
    ratio, so only the energy dependence of the cross sections (and cascades) enters. The
    relative error adds, in quadrature to the table's, ``max(0.02, 0.25 |ln(scale)|)`` (0 when
    ``E == E_table``): a judgement of how well Bote-Salvat's energy dependence is known relative
    to Si K, not a fitted number.

    Parameters
    ----------
    kf_table_entry : KFactor
        The table's value (e.g. from :func:`helpers.kfactors.load_kfactors`).
    beam_energy_kv : float
        Target beam energy (kV).
    detector : DetectorModel, optional
        Only matters through rounding; default windowless SDD.
    table_beam_kv : float
        Beam energy the table refers to (200 kV for the package table).

    Raises
    ------
    LineNotExcitedError
        If the line is not excited at ``beam_energy_kv``.
    """
    el, ln = kf_table_entry.element, kf_table_entry.line
    if math.isclose(beam_energy_kv, table_beam_kv):
        return kf_table_entry
    scale = (model_kfactor(el, ln, beam_energy_kv, detector)
             / model_kfactor(el, ln, table_beam_kv, detector))
    k = kf_table_entry.k * scale
    rel_tab = kf_table_entry.k_err / kf_table_entry.k
    rel_scale = max(SCALE_REL_ERR_MIN, SCALE_REL_ERR_PER_LN * abs(math.log(scale)))
    k_err = k * math.hypot(rel_tab, rel_scale)
    src = (f"{kf_table_entry.source} scaled {table_beam_kv:g} -> {beam_energy_kv:g} kV by "
           f"model (Bote-Salvat + xraydb) x{scale:.3f}")
    return KFactor(el, ln, k, k_err, src)


def compare_with_table(table=None, beam_energy_kv: float = TABLE_BEAM_KV,
                       detector: DetectorModel | None = None):
    """Model versus tabulated k-factors, one row per (element, line).

    Parameters
    ----------
    table : dict, optional
        ``{(element, line): KFactor}``; default the package's 200 kV table.
    beam_energy_kv : float
        Beam energy of the table and the model (kV).
    detector : DetectorModel, optional
        Default windowless SDD (the table's stated detector).

    Returns
    -------
    pandas.DataFrame
        Columns ``element, line, energy_kev, table_k, table_err, model_k, model_err, ratio``
        (model / table), ``log_ratio``, ``combined_rel_err`` (table and model relative errors
        in quadrature) and ``within`` (``|ratio - 1| <= combined_rel_err``).
    """
    import pandas as pd

    table = load_kfactors() if table is None else table
    rows = []
    for (el, ln), kf in table.items():
        if ln not in FAMILY_SHELL:
            continue
        mk = model_kfactor(el, ln, beam_energy_kv, detector)
        rel_m = model_rel_err(el, ln)
        ratio = mk / kf.k
        comb = math.hypot(kf.k_err / kf.k, rel_m)
        rows.append({"element": el, "line": ln, "error_class": error_class(el, ln),
                     "energy_kev": line_energy(el, ln),
                     "table_k": kf.k, "table_err": kf.k_err, "model_k": mk,
                     "model_err": mk * rel_m, "ratio": ratio, "log_ratio": math.log(ratio),
                     "combined_rel_err": comb, "within": abs(ratio - 1.0) <= comb})
    return pd.DataFrame(rows)


def comparison_summary(df=None, by: str = "line"):
    """Statistics of :func:`compare_with_table`'s output per family (or per error class).

    Parameters
    ----------
    df : pandas.DataFrame, optional
        Output of :func:`compare_with_table`; computed if omitted.
    by : {"line", "error_class"}
        Group by line family or by uncertainty class.

    Returns
    -------
    pandas.DataFrame
        One row per group; columns ``n``, ``median_ratio``, ``rms_log_ratio`` (root mean square
        of ``ln(model / table)``), ``fraction_within``, ``model_rel_err`` (the assigned error;
        for a family, the range over its classes) and ``worst`` (largest ``|ln ratio|``).
    """
    import pandas as pd

    df = compare_with_table() if df is None else df
    out = []
    for key, g in df.groupby(by, sort=False):
        worst = g.iloc[int(np.argmax(np.abs(g["log_ratio"].to_numpy())))]
        rel = sorted({MODEL_REL_ERR[c] for c in g["error_class"]})
        out.append({by: key, "n": len(g), "median_ratio": float(g["ratio"].median()),
                    "rms_log_ratio": float(np.sqrt(np.mean(g["log_ratio"] ** 2))),
                    "fraction_within": float(g["within"].mean()),
                    "model_rel_err": "/".join(f"{r:.2f}" for r in rel),
                    "worst": f"{worst['element']}_{worst['line']} {worst['ratio']:.2f}"})
    return pd.DataFrame(out).set_index(by)


def derive_model_rel_err(df=None, coverage: float = MODEL_REL_ERR_COVERAGE,
                         floor: float = MODEL_REL_ERR_FLOOR) -> dict:
    """The per-class model error that the table comparison supports.

    For each error class, the smallest relative error ``s >= floor`` (in steps of 0.01) such
    that a fraction ``>= coverage`` of the class's table entries satisfy
    ``|model / table - 1| <= sqrt((k_err / k)_table^2 + s^2)``. This is how
    :data:`MODEL_REL_ERR` was set; it is a coverage interval, more conservative than the rms
    ``ln`` ratio (also reported by :func:`comparison_summary`).

    Returns
    -------
    dict
        ``{error_class: relative error}`` for the classes present in the table.
    """
    df = compare_with_table() if df is None else df
    out = {}
    for cls, g in df.groupby("error_class", sort=False):
        dev = np.abs(g["ratio"].to_numpy() - 1.0)
        t_rel = (g["table_err"] / g["table_k"]).to_numpy()
        s = floor
        while np.mean(dev <= np.hypot(t_rel, s) + 1e-12) < coverage:
            s = round(s + 0.01, 2)
        out[cls] = s
    return out
