"""Figures: cluster colours, maps with scale bars, spectra with line markers, results, saving.

Every figure that shows cluster labels takes its colours from :func:`cluster_colors`, so cluster
*k* has the same colour in the cluster map, the embedding scatter, the mean-spectrum plot and the
composition bar chart. Noise (label -1) is always grey; masked vacuum/support pixels (label -2 in
the *display* arrays built by :func:`display_labels`) are drawn black.

All plotting functions take ``ax=None`` (a new figure is made) and return the axes. Modules:
:mod:`.core` (colours, scale bars, :func:`plot_map`, :func:`save_figure`), :mod:`.maps`,
:mod:`.spectra`, :mod:`.decomposition`, :mod:`.results`.
"""
from .core import (MASKED_COLOR, MASKED_LABEL, NOISE_COLOR, add_scalebar,  # noqa: F401
                   binned_scale, cluster_color, cluster_colors, display_labels, plot_map,
                   save_figure)
from .decomposition import (plot_gmm_criteria, plot_pca_components, plot_scree,  # noqa: F401
                            plot_thickness_check)
from .maps import (plot_cluster_map, plot_clusters, plot_correlation_matrix,  # noqa: F401
                   plot_element_maps, plot_embedding, plot_probability_maps, plot_spatial_prior)
from .results import (plot_compositions, plot_contingency, plot_entropy,  # noqa: F401
                      plot_method_comparison, plot_metal_to_sulfur, plot_z_scores)
from .spectra import (plot_cluster_spectra, plot_cluster_spectrum, plot_pixel_vs_cluster,  # noqa: F401
                      plot_spectrum)
