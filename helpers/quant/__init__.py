"""Cluster spectra and Cliff-Lorimer quantification with per-element uncertainties.

The chain (paper: "the association of each measurement with that cluster can be used as a
weighting to calculate a representative 'average' spectrum ... significantly higher
signal-to-noise ratio than any individual measurement"):

1. :func:`cluster_spectra` sums the **raw counts** of each cluster's pixels (hard mask, or
   membership probabilities as weights) over the navigation axes, in the original resolution.
2. :func:`fit_line_intensities` fits exspy's EDS model (polynomial background + one Gaussian per
   line, the lines of a family tied at their database weights) to a cluster spectrum by
   Poisson-weighted linear least squares and returns each family's main-line intensity *with its
   covariance*. Fitting (not windows) because Ag Lb1 (3.15 keV) sits on Cd La (3.13 keV) and
   In La (3.29 keV) is next to them. :func:`window_line_intensities` is exspy's quick
   background-window integration, kept for comparison.
3. :func:`cliff_lorimer` turns intensities into atomic percent with exspy's
   ``quantification(method="CL", composition_units="atomic")`` (k-factors on exspy's weight
   basis; ``navigation_mask=None`` because exspy otherwise zeroes spectra below 1 count per
   channel) and propagates the counting and k-factor uncertainties.

Modules, in the order of the chain: :mod:`.spectra` (cluster spectra and pixel weights),
:mod:`.linefit` (line intensities with covariances), :mod:`.composition` (at% with propagated
errors), :mod:`.clusters` (every cluster of a segmentation), :mod:`.names` (short
composition names of the clusters), :mod:`.tables` (tables for the notebooks and the results
files). The uncertainty model is described in :mod:`.linefit`
(counting) and :mod:`.composition` (k-factors). Figures are in :mod:`helpers.plotting`.
"""
from .composition import Composition, cl_jacobians, cliff_lorimer  # noqa: F401
from .clusters import (ClusterQuant, quant_lines, quantify_clusters,  # noqa: F401
                       quantify_spectra, quantify_spectrum, quantify_workflows)
from .linefit import (LineFit, build_line_model, default_fit_range,  # noqa: F401
                      design_matrix, fit_line_intensities, poisson_linear_fit,
                      window_line_intensities)
from .names import cluster_names, display_name, name_workflows, names_frame  # noqa: F401
from .spectra import (cluster_mean_spectra, cluster_spectra, cluster_spectra_stack,  # noqa: F401
                      cluster_weights, get_spectrum, interior_labels, soft_weights)
from .tables import (composition_table, compositions_frame, first_fitted,  # noqa: F401
                     fit_quality, kfactor_table, method_difference, save_results, truth_table)
