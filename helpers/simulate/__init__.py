"""A physics-based STEM-EDX spectrum-image simulator with known ground truth.

Why a simulator: the paper's data are not shipped, and a method can only be *tested* against
data whose truth is known. The simulation follows the physics that matters for the analysis:

* characteristic lines from exspy's X-ray line database (every line of each family inside the
  energy range, at its database weight relative to the family's main line Ka/La/Ma);
* Cliff-Lorimer intensities: the main line of element *i* gets ``I_i ∝ t · w_i / k_i`` (``t`` path
  length, ``w_i`` weight fraction, ``k_i`` from the same k-factor table the quantification uses),
  so a perfect analysis recovers the true composition exactly;
* Gaussian peaks integrated over each channel, FWHM growing with energy (Fiori-Newbury law used by
  exspy, 130 eV at Mn Ka by default);
* a Kramers bremsstrahlung continuum (∝ Z̄ (E0 − E)/E) cut at low energy by detector absorption;
* a per-pixel thickness map (gradient, spheres), vacuum or a thin carbon support, and Poisson
  counting noise at a realistic dose (tens of counts per pixel, as in the paper).

Presets (compositions from the paper's Tables 1 and 2, ``../shared/reference/paper_tables.json``):

``hea6``
    6-cation multiphase sulfide: chalcopyrite, jalpaite and minority-wurtzite grains in a
    majority-wurtzite matrix (Table 1, workflow 1 values), thickness gradient, a little vacuum.
``hea7``
    7-cation nanoparticles of *uniform* composition (Table 2, workflow 2) on a carbon film. Their
    sphere-like thickness makes minor-element maps look like a core-shell structure.
``hea7_coreshell``
    The same particles with a real Co/Mn/Zn-enriched core (half the particle radius).
``hea_alloy``
    A high-entropy alloy: equimolar CrMnFeCoNi matrix with Cr-rich and NiMn-rich precipitates
    (no anion; the K lines of five neighbouring 3d metals overlap, Kb on the next one's Ka).

Modules: :mod:`.truth` (the ground truth carried by a signal), :mod:`.spectra` (phase spectra),
:mod:`.geometry` (preset geometries), :mod:`.presets` (:func:`simulate`), :mod:`.scenes`
(:func:`random_scene`: random samples for the generalisation benchmark), :mod:`.large` (maps
larger than memory, written block by block).
"""
from .geometry import smooth_field  # noqa: F401
from .large import large_truth, write_simulated_map  # noqa: F401
from .presets import PRESETS, SIMULATOR_VERSION, simulate  # noqa: F401
from .scenes import random_scene, scene_suite  # noqa: F401
from .spectra import (characteristic_spectrum, continuum_spectrum, detector_efficiency,  # noqa: F401
                      energy_axis, phase_unit_spectrum)
from .truth import GroundTruth, get_truth  # noqa: F401
