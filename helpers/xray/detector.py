"""Detector efficiency of an SDD: window, light shield, dead layer, ice and crystal thickness,
with xraydb's mass attenuation coefficients (:class:`DetectorModel`, defaults of a windowless
Super-X-like detector)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ParameterError


_DENSITY = {"Si": 2.33, "Al": 2.70, "Be": 1.848, "C22H10N2O5": 1.42, "H2O": 0.92}


@lru_cache(maxsize=4096)
def _mu_lin(material: str, energy_ev: float) -> float:
    """Linear attenuation coefficient (1/cm) of a material at one energy (xraydb)."""
    import xraydb

    if material in ("Si", "Al", "Be"):
        return float(xraydb.mu_elam(material, energy_ev)) * _DENSITY[material]
    return float(xraydb.material_mu(material, energy_ev, density=_DENSITY[material]))


@dataclass(frozen=True)
class DetectorModel:
    """Efficiency model of an energy-dispersive X-ray detector (SDD).

    Parameters
    ----------
    window : {"none", "polymer", "be"}
        No window (windowless, e.g. FEI/Thermo Super-X), an ultra-thin polymer window with an Al
        coat on a Si support grid (Moxtek AP3.3-like), or a Be window.
    window_thickness_um : float, optional
        Polymer (polyimide) or Be thickness; default 0.3 um (polymer) or 8 um (Be).
    window_al_nm : float
        Al coat of the polymer window (nm); default 40.
    grid_open_fraction : float
        Open area of the polymer window's Si support grid; default 0.77.
    grid_thickness_um : float
        Thickness of the Si grid bars (um); default 380.
    al_layer_nm : float
        Al light-blocking / contact layer on the crystal (nm); default 30.
    dead_layer_um : float
        Inactive Si at the entrance face (um); default 0.05.
    crystal_thickness_um : float
        Active Si thickness (um), which sets the efficiency above ~10 keV; default 450.
    ice_nm : float
        Ice (contamination) layer on a cold sensor (nm); default 0.
    """

    window: str = "none"
    window_thickness_um: float | None = None
    window_al_nm: float = 40.0
    grid_open_fraction: float = 0.77
    grid_thickness_um: float = 380.0
    al_layer_nm: float = 30.0
    dead_layer_um: float = 0.05
    crystal_thickness_um: float = 450.0
    ice_nm: float = 0.0

    def __post_init__(self):
        if self.window not in ("none", "polymer", "be"):
            raise ParameterError(f"Detector window {self.window!r} is not one of 'none', "
                                 "'polymer', 'be'.")
        for name in ("window_al_nm", "grid_thickness_um", "al_layer_nm", "dead_layer_um",
                     "ice_nm"):
            if not getattr(self, name) >= 0:
                raise ParameterError(f"Detector {name} must be >= 0, got {getattr(self, name)}.")
        if not self.crystal_thickness_um > 0:
            raise ParameterError("Detector crystal_thickness_um must be > 0.")
        if not 0 < self.grid_open_fraction <= 1:
            raise ParameterError("Detector grid_open_fraction must be in (0, 1].")
        if self.window_thickness_um is not None and not self.window_thickness_um >= 0:
            raise ParameterError("Detector window_thickness_um must be >= 0.")

    @property
    def label(self) -> str:
        """Short description, e.g. ``"windowless SDD"``."""
        if self.window == "none":
            return "windowless SDD"
        t = self._window_t_um()
        return f"{'polymer' if self.window == 'polymer' else 'Be'} {t:g} um window SDD"

    def _window_t_um(self) -> float:
        if self.window_thickness_um is not None:
            return self.window_thickness_um
        return 0.3 if self.window == "polymer" else 8.0

    def _eff_one(self, e_ev: float) -> float:
        cm = 1e-4  # um -> cm
        att = (_mu_lin("Al", e_ev) * self.al_layer_nm * 1e-3
               + _mu_lin("Si", e_ev) * self.dead_layer_um
               + _mu_lin("H2O", e_ev) * self.ice_nm * 1e-3) * cm
        if self.window == "be":
            att += _mu_lin("Be", e_ev) * self._window_t_um() * cm
            t_win = 1.0
        elif self.window == "polymer":
            film = math.exp(-(_mu_lin("C22H10N2O5", e_ev) * self._window_t_um()
                              + _mu_lin("Al", e_ev) * self.window_al_nm * 1e-3) * cm)
            grid = math.exp(-_mu_lin("Si", e_ev) * self.grid_thickness_um * cm)
            t_win = self.grid_open_fraction * film + (1.0 - self.grid_open_fraction) * grid
        else:
            t_win = 1.0
        absorbed = -math.expm1(-_mu_lin("Si", e_ev) * self.crystal_thickness_um * cm)
        return t_win * math.exp(-att) * absorbed

    def efficiency(self, energy_kev):
        """Fraction of photons of energy ``energy_kev`` (keV) that the detector records.

        Parameters
        ----------
        energy_kev : float or array_like
            Photon energy (keV), 0.05-500.

        Returns
        -------
        float or numpy.ndarray
            Efficiency in (0, 1].
        """
        e = np.asarray(energy_kev, dtype=float)
        if np.any(~np.isfinite(e)) or np.any(e <= 0):
            raise ParameterError(f"Photon energy must be > 0 keV, got {energy_kev!r}.")
        vals = np.array([self._eff_one(round(float(v) * 1000.0, 3)) for v in e.ravel()])
        vals = vals.reshape(e.shape)
        return float(vals) if vals.ndim == 0 else vals


DEFAULT_DETECTOR = DetectorModel()


def detector_efficiency(energy_kev, detector: DetectorModel | None = None):
    """Detector efficiency at ``energy_kev`` (keV) for ``detector`` (default: windowless SDD).

    See :meth:`DetectorModel.efficiency`.
    """
    return (detector or DEFAULT_DETECTOR).efficiency(energy_kev)
