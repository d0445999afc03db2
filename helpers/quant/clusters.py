"""Quantification of every cluster of a segmentation: cluster spectra → line fit → Cliff-Lorimer.

:func:`quantify_clusters` is what notebooks 05/06 and the benchmarks call for one labelling;
:func:`quantify_workflows` does it for both workflows' labels
(:func:`helpers.workflows.workflow_labels`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError, ElementError, KFactorWarning, ParameterError
from ..xray.choice import choose_line
from ..xray.kfactors import defaulted_elements, load_kfactors
from .composition import Composition, absorption_factors, cliff_lorimer
from .linefit import beam_energy_of, energy_range_of, fit_line_intensities, window_line_intensities
from .spectra import (cluster_spectra, interior_and_whole_spectra, interior_labels, new_like,
                      select_spectra, soft_weights)


def quant_lines(signal, elements=None, kfactors=None):
    """The line quantified for each element, chosen by :func:`helpers.kfactors.choose_line`.

    Returns
    -------
    list of KFactor
        In element order; ``.xray_line`` is exspy's name (e.g. ``"Ag_La"``).
    """
    table = load_kfactors(kfactors)
    if elements is None:
        elements = list(signal.metadata.get_item("Sample.elements", []))
    if len(elements) < 2:
        raise ElementError("Quantification needs at least two elements: set them with "
                           "ELEMENTS=[...] or in the file's metadata.")
    rng = energy_range_of(signal)
    lines = [choose_line(el, rng, beam_energy_of(signal), table) for el in elements]
    missing = defaulted_elements(lines, kfactors)
    if missing:
        name = getattr(kfactors, "name", None) or str(kfactors)
        warnings.warn(f"k-factor file {name} lacks {', '.join(missing)}: using the package's "
                      "values for them (its table scaled to the beam energy, or its model; add "
                      "rows to use your own).",
                      KFactorWarning, stacklevel=2)
    return lines


def quantify_spectra(spectra, elements=None, kfactors=None, method="fit", energy_range=None,
                     background_order=6, thickness=None):
    """Line intensities (``method="fit"`` or ``"windows"``) and CL composition of a spectrum or
    of each spectrum of a 1-D stack.

    ``thickness`` (nm, optional) switches on exspy's absorption correction for a foil of that
    thickness (:func:`helpers.quant.composition.absorption_factors`); the corrected intensities
    ``a_i I_i`` and their covariance then go through the same Cliff-Lorimer and propagation
    (the factors ``a_i`` are treated as exact: their own uncertainty, from the thickness, is
    not propagated). Off by default: the thin-film approximation of the paper.

    Returns
    -------
    list of Composition
        ``.fit`` holds the :class:`LineFit` (model, fitted curve) for ``method="fit"``. A
        spectrum that cannot be quantified (no counts, no characteristic counts) gets a
        composition of NaN at% with its ``reason``; the others are quantified as usual.
    """
    lines = quant_lines(spectra, elements, kfactors)
    xls = [kf.xray_line for kf in lines]
    if method == "fit":
        fits = fit_line_intensities(spectra, xls, energy_range, background_order)
        n = len(xls)
        I = np.array([np.zeros(n) if f is None else f.intensities for f in fits])
        C = np.array([np.eye(n) if f is None else f.covariance for f in fits])
        I, C, acf = _absorb(spectra, I, C, lines, thickness)
        comps = cliff_lorimer(spectra, I, C, lines, "fit")
        for j, (c, f) in enumerate(zip(comps, fits)):
            c.absorption = None if acf is None else acf[j]
            if f is None:
                comps[j] = Composition.unquantified(lines, "fit", "no counts in the fit window "
                                                    "(an empty cluster spectrum)")
            else:
                c.fit = f
    elif method == "windows":
        I, cov = window_line_intensities(spectra, xls)
        I, cov, _ = _absorb(spectra, I, cov, lines, thickness)
        comps = cliff_lorimer(spectra, I, cov, lines, "windows")
    else:
        raise ParameterError(f"method must be 'fit' or 'windows', got {method!r}.")
    return comps


def _absorb(spectra, I, C, lines, thickness):
    """Intensities and covariances corrected for absorption (unchanged without a thickness)."""
    if thickness is None:
        return I, C, None
    if not float(thickness) > 0:
        raise ParameterError(f"THICKNESS_NM={thickness!r}: give the foil thickness in nm (> 0), "
                             "or None for no absorption correction.")
    acf = absorption_factors(spectra, I, lines, thickness)
    return I * acf, C * acf[:, :, None] * acf[:, None, :], acf


def quantify_spectrum(spectrum, elements=None, kfactors=None, method="fit", energy_range=None,
                      background_order=6):
    """:func:`quantify_spectra` for one spectrum; returns its :class:`Composition`."""
    if spectrum.axes_manager.navigation_dimension != 0:
        raise ParameterError("quantify_spectrum takes one spectrum: use quantify_spectra for a "
                             "stack, or helpers.quant.get_spectrum(spectra, i).")
    return quantify_spectra(spectrum, elements, kfactors, method, energy_range,
                            background_order)[0]


@dataclass
class ClusterQuant:
    """Quantification of every cluster of one segmentation.

    Attributes
    ----------
    workflow : int or str
    clusters : list of int
    compositions : dict ``{cluster: Composition}``
    spectra : EDSTEMSpectrum stack from :func:`cluster_spectra`
    names : dict ``{cluster: str}``, optional
        Short composition names (:func:`helpers.quant.names.cluster_names`), set by
        :func:`quantify_workflows`.
    """

    workflow: object
    clusters: list
    compositions: dict
    spectra: object
    method: str = "fit"
    labels: np.ndarray = field(default=None, repr=False)
    names: dict = None

    @property
    def elements(self):
        return self.compositions[self.clusters[0]].elements

    def table(self):
        """Long table: workflow, cluster, n_pixels, element, at_percent, at_percent_err
        (total), at_percent_err_counting, xray_line, k_factor, k_factor_err, k_factor_source,
        method, reason (why a cluster has NaN at%; empty when quantified), name (the cluster's
        short composition name, when :attr:`names` is set)."""
        import pandas as pd

        rows = []
        for c in self.clusters:
            comp = self.compositions[c]
            sources = getattr(comp, "kfactor_sources", None) or [""] * len(comp.elements)
            for e, xl, x, et, ec, k, ke, src in zip(comp.elements, comp.xray_lines,
                                                    comp.at_percent, comp.err_total,
                                                    comp.err_counting, comp.kfactors,
                                                    comp.kfactor_errs, sources):
                rows.append(dict(workflow=self.workflow, cluster=c, n_pixels=comp.n_pixels,
                                 element=e, at_percent=float(x), at_percent_err=float(et),
                                 at_percent_err_counting=float(ec), xray_line=xl,
                                 k_factor=float(k), k_factor_err=float(ke), k_factor_source=src,
                                 method=self.method, reason=comp.reason,
                                 **({"name": self.names.get(c, "")} if self.names else {})))
        return pd.DataFrame(rows)


def quantify_clusters(signal, labels, probabilities=None, workflow=1, elements=None,
                      kfactors=None, method="fit", clusters=None, min_pixels=1,
                      exclude_boundary=True, thickness=None):
    """Representative spectrum and composition (at% ± σ) of every cluster.

    Parameters
    ----------
    signal : EDSTEMSpectrum
        Raw-count spectrum image.
    labels : ndarray of int (rows, cols)
        -1 = noise, never quantified.
    probabilities : ndarray (rows, cols, n_clusters), optional
        Use membership probabilities as weights (otherwise hard masks).
    workflow : int or str
        Tag carried into the tables (1 = PCA+GMM, 2 = UMAP+HDBSCAN).
    elements, kfactors
        Default: the signal's elements and the package's 200 kV table.
    method : {"fit", "windows"}
    min_pixels : int
        Clusters with fewer labelled pixels get a row of NaN at% (with the reason) instead of
        a composition; so do clusters whose spectrum has no characteristic counts.
    exclude_boundary : bool
        Hard masks only: quantify each cluster from its interior pixels
        (:func:`interior_labels`) and add a *segmentation* uncertainty, the per-element
        difference between the whole-mask and the interior compositions, to ``cov_total``
        (it measures how much the answer depends on where the cluster's edge is drawn).
        False = the paper's plain mask of every pixel.
    thickness : float, optional
        Foil thickness (nm) for exspy's absorption correction (:func:`quantify_spectra`);
        None (default): none, the thin-film approximation.

    Returns
    -------
    ClusterQuant
        ``n_pixels`` of each composition is the number of pixels (or weight) quantified;
        ``spectra`` holds the spectra of the clusters that had enough pixels.
    """
    use_interior = exclude_boundary and probabilities is None
    if use_interior:
        spectra, whole = interior_and_whole_spectra(signal, interior_labels(labels), labels,
                                                     clusters)
    else:
        spectra = cluster_spectra(signal, labels, probabilities, clusters)
    ids = list(spectra.metadata.Clusters.ids)
    n_pix = list(spectra.metadata.Clusters.n_pixels)
    wsum = list(spectra.metadata.Clusters.weight_sum)
    keep = [i for i in range(len(ids)) if n_pix[i] >= min_pixels and wsum[i] > 0]
    if keep and len(keep) < len(ids):
        spectra = select_spectra(spectra, keep)
        if use_interior:
            whole = select_spectra(whole, keep)
    comps = _quantify_kept(spectra, whole if use_interior else None, elements, kfactors,
                           method, thickness) if keep else []
    lines = None
    out = {}
    for i, c in enumerate(ids):
        if i in keep:
            comp = comps[keep.index(i)]
        else:   # too small to quantify: a row of NaN that says why
            lines = lines or quant_lines(signal, elements, kfactors)
            comp = Composition.unquantified(lines, method, f"fewer than {min_pixels} pixels"
                                            if n_pix[i] < min_pixels else "zero weight")
        comp.n_pixels = float(wsum[i]) if probabilities is not None else int(n_pix[i])
        out[c] = comp
    return ClusterQuant(workflow, ids, out, spectra, method, np.asarray(labels))


def _quantify_kept(spectra, whole, elements, kfactors, method, thickness=None):
    """Compositions of the spectra of ``spectra``; with ``whole`` (the same clusters' whole-mask
    spectra), each gets the segmentation uncertainty: the per-element difference between the
    whole-mask and the interior compositions, added to ``cov_total``."""
    if spectra.data.shape[0] == 0:
        return []
    if whole is None:
        return quantify_spectra(spectra, elements, kfactors, method, thickness=thickness)
    # interior and whole-mask spectra fitted as one stack: one model, one exspy CL call
    n = spectra.data.shape[0]
    both = new_like(spectra, np.concatenate([spectra.data, whole.data]),
                    title=spectra.metadata.General.title)
    both_comps = quantify_spectra(both, elements, kfactors, method, thickness=thickness)
    comps = both_comps[:n]
    for comp, w in zip(comps, both_comps[n:]):
        if comp.quantified and w.quantified:
            d = w.at_percent - comp.at_percent
            comp.err_segmentation = np.abs(d)
            comp.cov_total = comp.cov_total + np.diag(d ** 2)
    return comps


def quantify_workflows(signal, labels, weighted=False, method="fit", elements=None,
                       kfactors=None, min_pixels=1, exclude_boundary=True, thickness=None):
    """:func:`quantify_clusters` for each workflow of ``labels`` (from :func:`workflow_labels`).

    ``weighted=True`` uses the workflows' probabilities as weights (:func:`soft_weights`) where
    they are available, hard masks otherwise; ``exclude_boundary`` applies to hard masks;
    ``thickness`` (nm) switches on the absorption correction.

    Returns
    -------
    dict ``{workflow: ClusterQuant}``; a workflow without any cluster is left out. Each one's
    ``names`` holds its clusters' short composition names (:mod:`helpers.quant.names`).
    """
    out = {}
    for wf, (lab, prob) in labels.items():
        if not np.any(np.asarray(lab) >= 0):
            continue
        w = soft_weights(lab, prob) if (weighted and prob is not None) else None
        out[wf] = quantify_clusters(signal, lab, probabilities=w, workflow=wf, elements=elements,
                                    kfactors=kfactors, method=method, min_pixels=min_pixels,
                                    exclude_boundary=exclude_boundary, thickness=thickness)
    if not out:
        raise DataError("Neither workflow produced a cluster: nothing to quantify. Check the "
                        "clustering parameters in notebooks 03 and 04.")
    from .names import name_workflows
    name_workflows(out)
    return out
