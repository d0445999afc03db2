"""Representative spectra: the raw counts of each cluster's pixels, summed (hard masks) or
weighted (membership probabilities), over the navigation axes in the original resolution.

The sums run a block of rows at a time for in-memory maps and as one dask reduction for lazy
ones, so large maps never need a float copy.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import DataError, ParameterError
from ..progress import dask_bar


def nav_shape(signal):
    return tuple(signal.data.shape[:-1])


def cluster_weights(labels, probabilities=None, clusters=None):
    """Pixel weights per cluster, shape (n_pixels, n_clusters), and the cluster ids.

    Parameters
    ----------
    labels : ndarray of int, shape (rows, cols)
        Cluster label per pixel, -1 = noise / unassigned (never quantified).
    probabilities : ndarray, shape (rows, cols, n_clusters), optional
        Membership probabilities (e.g. GMM ``predict_proba``); column ``j`` belongs to cluster
        ``clusters[j]`` (by default the sorted non-negative labels). When given, they are the
        weights; otherwise each pixel has weight 1 in its own cluster (hard mask).
    clusters : list of int, optional
        Which clusters (default: every label >= 0, sorted).
    """
    labels = np.asarray(labels)
    if labels.ndim < 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ParameterError("labels must be an integer array in the navigation shape "
                             "(rows, cols); -1 marks noise.")
    if clusters is None:
        clusters = sorted(int(c) for c in np.unique(labels) if c >= 0)
    clusters = [int(c) for c in clusters]
    if not clusters:
        raise DataError("No cluster to quantify: every label is -1 (noise); re-run the "
                        "clustering with other parameters.")
    flat = labels.reshape(-1)
    if probabilities is None:
        w = np.stack([(flat == c).astype(float) for c in clusters], axis=1)
    else:
        p = np.asarray(probabilities, dtype=float)
        if p.shape[:-1] != labels.shape or p.shape[-1] != len(clusters):
            raise ParameterError(f"probabilities must have shape {labels.shape + (len(clusters),)} "
                                 f"(navigation shape + one column per cluster), got {p.shape}.")
        if np.any(p < 0) or not np.all(np.isfinite(p)):
            raise ParameterError("probabilities must be finite and >= 0.")
        w = p.reshape(-1, len(clusters))
    return w, clusters


def check_labels_shape(signal, labels):
    """The navigation shape, after checking that ``labels`` have it."""
    nav = nav_shape(signal)
    if labels.shape != nav:
        raise ParameterError(f"labels have shape {labels.shape} but the spectrum image's "
                             f"navigation shape is {nav}: pass labels in the original "
                             "(un-binned) resolution.")
    return nav


def cluster_spectra(signal, labels, probabilities=None, clusters=None, block_rows=None):
    """Representative spectrum of each cluster: the (weighted) sum of its raw pixel spectra.

    The sum runs over the navigation axes in the original resolution, a block of rows at a time
    (or as a dask reduction when ``signal`` is lazy), so large maps never need a float copy.

    Parameters
    ----------
    signal : exspy.signals.EDSTEMSpectrum
        The raw-count spectrum image (rows, cols | channels).
    labels : ndarray of int, shape (rows, cols)
    probabilities : ndarray, optional
        Membership probabilities used as weights (see :func:`cluster_weights`).
    clusters : list of int, optional
    block_rows : int, optional
        Rows summed at a time for in-memory data.

    Returns
    -------
    exspy.signals.EDSTEMSpectrum
        Navigation axis ``cluster`` (one spectrum per cluster), same energy axis and metadata.
        ``metadata.Clusters`` holds ``ids``, ``n_pixels`` (hard count of labelled pixels),
        ``weight_sum`` and ``weighted`` ; ``metadata.Signal.Noise_properties.variance`` holds
        the variance spectrum ``sum_x w_x^2 y_x`` (equal to the spectrum for a hard mask).
    """
    labels = np.asarray(labels)
    nav = check_labels_shape(signal, labels)
    w, clusters = cluster_weights(labels, probabilities, clusters)
    n_ch = signal.data.shape[-1]
    data = signal.data
    if getattr(signal, "_lazy", False):
        spec, var = _lazy_sums(signal, w, hard=probabilities is None)
    elif probabilities is None:
        # hard masks: sum each cluster's rows in the data's own dtype (no float copy of the map;
        # ~5x faster than the weight-matrix product below for uint8 counts)
        flat = labels.reshape(-1)
        spec = _row_sums(data, [np.flatnonzero(flat == c) for c in clusters],
                         block_rows * nav[-1] if block_rows else None)
        var = spec.copy()
    else:
        # weights: a sparse product per block of rows (EDS counts are mostly zeros; a dense
        # float copy of each block cost 10x more), spectra and variances in one product
        from scipy import sparse
        d2 = np.asarray(data).reshape((-1, n_ch))
        step = block_rows * nav[-1] if block_rows else 4096
        ww = np.hstack([w, w ** 2])
        acc = np.zeros((n_ch, ww.shape[1]))
        for i0 in range(0, d2.shape[0], step):
            acc += sparse.csr_matrix(d2[i0:i0 + step]).T @ ww[i0:i0 + step]
        spec, var = acc[:, :len(clusters)].T.copy(), acc[:, len(clusters):].T.copy()
    return _spectra_signal(signal, spec, var, clusters, labels, w.sum(0), probabilities is not None)


def cluster_spectra_stack(signal, labels, probabilities=None, names=None, workflow=None):
    """Every cluster's summed raw spectrum, hard and weighted, as one HyperSpy signal.

    The file-friendly form of :func:`cluster_spectra` (written by notebook 05 as
    ``results/cluster_spectra_workflow{1,2}.hspy``): ``hs.load(...).plot()`` browses it, and
    exspy's tools (``get_lines_intensity``, ``quantification``) run on it as on any spectrum.

    Parameters
    ----------
    signal : exspy.signals.EDSTEMSpectrum
        The raw-count spectrum image; its energy axis and metadata (elements, X-ray lines,
        beam energy, detector) are copied.
    labels : ndarray of int, shape (rows, cols)
        -1 = noise / unassigned (in no cluster).
    probabilities : ndarray, optional
        The workflow's probabilities (posteriors per cluster, or one membership per pixel):
        the weights of the *weighted* spectra (:func:`soft_weights`). None: hard spectra only.
    names : dict ``{cluster: str}``, optional
        Cluster names for the metadata.
    workflow : int, optional

    Returns
    -------
    exspy.signals.EDSTEMSpectrum
        Navigation axes ``cluster`` (one per cluster, sorted) and ``weighting`` (index 0: hard
        sums over each cluster's pixels; 1: weighted sums, when ``probabilities`` are given).
        ``metadata.Clusters``: ``ids``, ``names``, ``n_pixels``, ``weighting``, ``weight_sum``
        (one list per weighting), ``workflow``; ``metadata.Signal.Noise_properties.variance``
        the Poisson variance of each sum (``sum_x w_x^2 y_x``).
    """
    hard = cluster_spectra(signal, labels)
    ids = list(hard.metadata.Clusters.ids)
    parts = [hard]
    if probabilities is not None:
        parts.append(cluster_spectra(signal, labels, soft_weights(labels, probabilities, ids),
                                     ids))
    variances = [p.metadata.Signal.Noise_properties.variance.data for p in parts]
    title = "Cluster spectra" + (f", workflow {workflow}" if workflow is not None else "")
    out = new_like(signal, np.stack([p.data for p in parts]), title=title)
    out.axes_manager.navigation_axes[0].name = "cluster"
    out.axes_manager.navigation_axes[1].name = "weighting"
    names = names or {}
    out.metadata.set_item("Clusters.ids", ids)
    out.metadata.set_item("Clusters.names", [str(names.get(c, f"cluster {c}")) for c in ids])
    out.metadata.set_item("Clusters.n_pixels", list(hard.metadata.Clusters.n_pixels))
    out.metadata.set_item("Clusters.weighting", ["hard", "weighted"][:len(parts)])
    out.metadata.set_item("Clusters.weight_sum",
                          [list(p.metadata.Clusters.weight_sum) for p in parts])
    if workflow is not None:
        out.metadata.set_item("Clusters.workflow", int(workflow))
    out.metadata.set_item("Signal.Noise_properties.variance",
                          new_like(signal, np.stack(variances), title="variance"))
    return out


def _lazy_sums(signal, w, hard):
    """Weighted sums ``w.T @ data`` of a lazy map in one pass over its chunks (and the variance
    sums ``(w**2).T @ data``, which equal them for a hard 0/1 mask)."""
    import dask.array as da

    d2 = signal.data.reshape((-1, signal.data.shape[-1]))
    spec = da.tensordot(w.T, d2, axes=1)
    if hard:
        with dask_bar("cluster spectra"):
            spec = np.asarray(spec.compute(), dtype=float)
        return spec, spec.copy()
    var = da.tensordot((w ** 2).T, d2, axes=1)
    with dask_bar("cluster spectra"):
        spec, var = da.compute(spec, var)
    return np.asarray(spec, dtype=float), np.asarray(var, dtype=float)


def _row_sums(data, rows, step=None):
    """Summed spectra of the pixels (flat indices) in each of ``rows``, in the data's own dtype
    ``step`` pixels at a time (no float copy of the map)."""
    n_ch = data.shape[-1]
    d2 = np.asarray(data).reshape((-1, n_ch))
    step = step or max(1, int(2e7 // max(n_ch, 1)))
    acc = np.int64 if np.issubdtype(d2.dtype, np.integer) else np.float64
    spec = np.zeros((len(rows), n_ch))
    for i, r in enumerate(rows):
        for j0 in range(0, r.size, step):
            spec[i] += d2[r[j0:j0 + step]].sum(axis=0, dtype=acc)
    return spec


def _spectra_signal(signal, spec, var, clusters, labels, weight_sum, weighted, n_pixels=None):
    """The stack returned by :func:`cluster_spectra`, from its sums (``n_pixels`` counted in
    ``labels`` when not given)."""
    if np.any(spec < 0) or not np.all(np.isfinite(spec)):
        raise DataError("The spectrum image has negative or non-finite counts: quantification "
                        "needs raw counts (not normalised or denoised data).")
    out = new_like(signal, spec, title="Cluster spectra")
    out.axes_manager.navigation_axes[0].name = "cluster"
    n_pix = (n_pixels if n_pixels is not None else
             [int(np.count_nonzero(labels == c)) for c in clusters])
    out.metadata.set_item("Clusters.ids", list(clusters))
    out.metadata.set_item("Clusters.n_pixels", n_pix)
    out.metadata.set_item("Clusters.weight_sum", [float(v) for v in weight_sum])
    out.metadata.set_item("Clusters.weighted", bool(weighted))
    out.metadata.set_item("Signal.Noise_properties.variance", new_like(signal, var, title="var"))
    return out


def mask_spectra(signal, masks):
    """The summed raw spectra of several pixel masks (which may overlap) as one stack, like
    :func:`cluster_spectra` (ids 0, 1, ...); in-memory maps only. One signal for all masks:
    building the stack costs more than summing a few hundred pixels."""
    spec = _row_sums(signal.data, [np.flatnonzero(np.ravel(m)) for m in masks])
    n_pix = [int(np.count_nonzero(m)) for m in masks]
    return _spectra_signal(signal, spec, spec.copy(), list(range(len(masks))), None,
                           [float(n) for n in n_pix], False, n_pixels=n_pix)


def interior_and_whole_spectra(signal, interior, labels, clusters=None):
    """:func:`cluster_spectra` of two hard labelings; a lazy map is read once for both."""
    if not getattr(signal, "_lazy", False):
        inner = cluster_spectra(signal, interior, None, clusters)
        return inner, cluster_spectra(signal, labels, None, inner.metadata.Clusters.ids)
    labels, interior = np.asarray(labels), np.asarray(interior)
    check_labels_shape(signal, labels)
    wi, ids = cluster_weights(interior, None, clusters)
    ww, _ = cluster_weights(labels, None, ids)
    spec, var = _lazy_sums(signal, np.concatenate([wi, ww], axis=1), hard=True)
    k = len(ids)
    return (_spectra_signal(signal, spec[:k], var[:k], ids, interior, wi.sum(0), False),
            _spectra_signal(signal, spec[k:], var[k:], ids, labels, ww.sum(0), False))


def new_like(signal, data, title=None):
    """An EDSTEMSpectrum with ``signal``'s energy axis and metadata but new data."""
    import exspy   # deferred: exspy/HyperSpy take seconds to import

    s = exspy.signals.EDSTEMSpectrum(np.asarray(data, dtype=float))
    src = signal.axes_manager.signal_axes[0]
    ax = s.axes_manager.signal_axes[0]
    ax.name, ax.units, ax.scale, ax.offset = src.name, src.units, src.scale, src.offset
    md = signal.metadata.as_dictionary()
    md.pop("Simulation", None)  # ground truth stays with the map, not its sums
    md.get("Signal", {}).pop("Noise_properties", None)
    s.metadata.add_dictionary(md)
    s.metadata.Signal.signal_type = "EDS_TEM"
    if title:
        s.metadata.General.title = title
    return s


def get_spectrum(spectra, index):
    """One spectrum (and its variance spectrum) of a stack from :func:`cluster_spectra`."""
    s = spectra.inav[index]
    var = spectra.metadata.get_item("Signal.Noise_properties.variance")
    if var is not None and var.axes_manager.navigation_dimension:
        v = var.inav[index]
        s.metadata.set_item("Signal.Noise_properties.variance", v)
    return s


def select_spectra(spectra, keep):
    """The spectra ``keep`` (indices) of a stack, with their variance and cluster metadata."""
    out = new_like(spectra, np.asarray(spectra.data)[list(keep)],
                   title=spectra.metadata.General.title)
    out.axes_manager.navigation_axes[0].name = "cluster"
    var = spectra.metadata.get_item("Signal.Noise_properties.variance")
    if var is not None:
        out.metadata.set_item("Signal.Noise_properties.variance",
                              new_like(spectra, var.data[keep], title="var"))
    for key in ("ids", "n_pixels", "weight_sum"):
        vals = list(spectra.metadata.Clusters[key])
        out.metadata.Clusters[key] = [vals[i] for i in keep]
    return out


def interior_labels(labels, min_fraction=0.1, min_pixels=10):
    """Labels with each cluster's boundary pixels set to -1 (a one-pixel erosion of its mask).

    Why: a pixel on a grain boundary holds two phases (side by side in the probe, through the
    foil, or in one 2x2 block of the binned grid the clusters were found on), so the boundary
    pixels of a cluster bias its spectrum towards its neighbours. On simulated hea6 the
    interior pixels' composition was 2-3x closer to the true phase than the whole mask's.
    A cluster whose interior would keep fewer than ``min_fraction`` of its pixels (or fewer
    than ``min_pixels``) keeps all of them (small particles, thin lines).
    """
    lab = np.asarray(labels)
    out = np.full(lab.shape, -1, dtype=lab.dtype)
    for c in np.unique(lab[lab >= 0]):
        m = lab == c
        inner = ndimage.binary_erosion(m, structure=np.ones((3, 3), bool))
        keep = inner if inner.sum() >= max(min_pixels, min_fraction * m.sum()) else m
        out[keep] = c
    return out


def soft_weights(labels, probabilities, clusters=None):
    """Per-cluster weights (rows, cols, n_clusters) from a workflow's probabilities.

    Workflow 1 (GMM) gives posteriors per cluster (rows, cols, k): used as they are, columns
    restricted to ``clusters``. Workflow 2 (HDBSCAN) gives one membership strength per pixel
    (rows, cols): it weights the pixel in its own cluster only. Noise pixels get weight 0.
    """
    labels = np.asarray(labels)
    clusters = sorted(int(c) for c in np.unique(labels) if c >= 0) if clusters is None \
        else list(clusters)
    p = np.asarray(probabilities, float)
    if p.ndim == labels.ndim + 1:
        if p.shape[-1] <= max(clusters):
            raise ParameterError("probabilities have fewer columns than the cluster labels.")
        w = p[..., clusters]
        return np.where((labels >= 0)[..., None], w, 0.0)
    if p.shape != labels.shape:
        raise ParameterError("probabilities must be (rows, cols) or (rows, cols, n_clusters).")
    return np.stack([np.where(labels == c, p, 0.0) for c in clusters], axis=-1)


def cluster_mean_spectra(signal_or_counts, labels, energy=None):
    """Mean raw spectrum of each cluster {label: (channels,)} (noise and vacuum excluded).

    ``signal_or_counts``: a spectrum image (original grid, with ``labels`` of the same grid) or
    a (pixels, channels) count matrix with flat labels.
    """
    data = signal_or_counts.data if hasattr(signal_or_counts, "axes_manager") else signal_or_counts
    lab = np.asarray(labels)
    if data.ndim == 3:
        flat = data.reshape(-1, data.shape[-1])
        lab = lab.reshape(-1)
    else:
        flat = data
        lab = lab.ravel()
    out = {}
    for k in sorted(set(lab[lab >= 0].tolist())):
        s = flat[lab == k].mean(axis=0)
        out[int(k)] = np.asarray(s.compute() if hasattr(s, "compute") else s, float)
    return out
