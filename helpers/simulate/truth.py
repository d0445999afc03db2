"""The simulator's ground truth: what a simulated map holds, and how it travels with the signal.

A :class:`GroundTruth` is stored in ``signal.metadata.Simulation`` (plain arrays and builtins),
so a demo file saved as ``.hspy`` carries it; :func:`get_truth` reads it back.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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


def get_truth(signal):
    """The simulator's ground truth carried by a demo signal, or None for real data."""
    if not signal.metadata.has_item("Simulation"):
        return None
    return GroundTruth.from_dict(signal.metadata.Simulation.as_dictionary())
