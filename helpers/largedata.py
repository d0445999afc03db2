"""Spectrum images larger than memory: write one chunk by chunk, reduce it lazily.

A real JEOL or Velox map is 512 × 512 pixels × 4096 channels of 8-bit counts, about 1 GB on
disk and 8 GB once converted to float64: NumPy cannot hold it comfortably next to its copies.
Everything here works on blocks of rows (dask) so that peak memory stays a few hundred MB
above the size of the *reduced* data:

* :func:`large_truth` builds the simulator's :class:`~helpers.simulate.GroundTruth` at any size
  without drawing the counts (:func:`helpers.simulate.simulate` draws them all in memory);
* :func:`write_simulated_map` writes Poisson counts from that truth to an ``.hspy`` file, one
  block of rows at a time, through HyperSpy's own writer (so ``hs.load(path, lazy=True)`` and
  :func:`helpers.io.load_spectrum_image` read it back with its metadata and truth);
* :func:`lazy_binned_counts` crops the energy range and sums ``bin_factor`` × ``bin_factor``
  pixels and ``energy_bin`` channels chunk by chunk (``dask.array.coarsen``), so the 1 GB map is
  read once and only the ~40× smaller binned matrix is ever in memory;
* :func:`lazy_features` does the per-pixel normalisation and per-channel scaling of
  :func:`helpers.preprocess.make_features` on the dask blocks too.

Hand-written because HyperSpy's ``rebin`` on a lazy signal keeps the full channel axis and
returns a lazy signal of float64, and the simulator has no block-wise mode.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from .errors import DataError, OutputError, ParameterError


# --------------------------------------------------------------------------------------------
# ground truth at any size
# --------------------------------------------------------------------------------------------
def large_truth(preset="hea6", size=512, n_channels=4096, channel_width=0.01, offset=-0.1,
                dose=None, seed=0, beam_energy=200.0, energy_resolution_mnka=130.0):
    """Ground truth of ``simulate(preset, size, n_channels, ...)`` without drawing its counts.

    :func:`helpers.simulate.simulate` draws the geometry from its random generator *before*
    any counts and the spectra do not use the generator, so

    * the geometry (labels, thickness, path lengths) is that of a ``simulate`` call of the same
      size and seed with only 64 channels (cheap: 64 channels of counts);
    * the phase spectra are those of a 16 × 16 ``simulate`` call with the requested energy
      axis, rescaled so the mean total counts per pixel of the large map equal ``dose``
      (``simulate`` scales phases and background by one common factor, so this is exact).

    Returns
    -------
    truth : GroundTruth
        Identical to ``simulate(...)[1]`` of the same arguments (up to float rounding).
    template : EDSTEMSpectrum
        The small 16 × 16 signal, whose axes and metadata describe the large map.
    """
    from .simulate import GroundTruth, simulate

    shape = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
    kw = dict(channel_width=channel_width, offset=offset, dose=dose, seed=seed,
              beam_energy=beam_energy, energy_resolution_mnka=energy_resolution_mnka)
    # 64 wide channels over the same energy span: the geometry only depends on size and seed
    _, geo = simulate(preset, size=shape, n_channels=64,
                      **dict(kw, channel_width=channel_width * n_channels / 64))
    template, spec = simulate(preset, size=16, n_channels=n_channels, **kw)
    unit, bg = spec.unit_spectra, spec.background_spectrum
    path = geo.path_lengths
    dose_ = float(spec.params["dose"])
    mean_total = float((path.reshape(-1, path.shape[-1]) @ unit.sum(1)).mean() + bg.sum())
    f = dose_ / mean_total
    params = dict(spec.params, size=list(shape))
    truth = GroundTruth(preset=geo.preset, elements=list(geo.elements), labels=geo.labels,
                        phase_names=list(geo.phase_names), compositions=geo.compositions,
                        thickness=geo.thickness, path_lengths=path, unit_spectra=unit * f,
                        background_spectrum=bg * f, params=params)
    return truth, template


def _poisson_block(truth, r0, r1, seed, dtype):
    """Poisson counts of rows r0:r1, from their own seed (same block, same counts)."""
    rng = np.random.default_rng([int(seed), int(r0)])
    lam = truth.expected_counts(slice(r0, r1))
    counts = rng.poisson(lam)
    top = np.iinfo(dtype).max
    return np.minimum(counts, top).astype(dtype)


def write_simulated_map(path, preset="hea6", size=512, n_channels=4096, dtype=np.uint8,
                        block_rows=8, seed=0, overwrite=False, **kwargs):
    """Write a simulated spectrum image to ``path`` (``.hspy``) one block of rows at a time.

    The counts are Poisson draws from :func:`large_truth`'s expected counts; block ``i`` has its
    own random stream (seeded by ``seed`` and its first row), so the file is reproducible and
    no more than a couple of blocks are ever in memory (dask computes one per thread). The map
    is therefore *statistically* identical to ``simulate(...)`` of the same arguments (same
    truth, same expected counts) but not byte-identical: the noise is drawn in another order.

    Parameters
    ----------
    path : str or Path
        Output file, ``.hspy``.
    preset, size, n_channels, seed, **kwargs
        As for :func:`helpers.simulate.simulate` (``dose``, ``channel_width``, ...).
    dtype : numpy unsigned integer type
        Storage type; counts above its maximum are clipped (and counted in the return value).
    block_rows : int
        Rows per block, also the HDF5 chunk height.
    overwrite : bool

    Returns
    -------
    dict with ``path``, ``truth`` (GroundTruth), ``shape``, ``nbytes`` (of the counts),
    ``max_expected`` (upper bound of the expected counts of any pixel and channel) and
    ``dtype_max``.
    """
    import dask
    import dask.array as da
    import exspy

    path = Path(path)
    if path.suffix != ".hspy":
        raise ParameterError(f"write_simulated_map writes HyperSpy .hspy files, got {path.name}: "
                             "use a name ending in .hspy.")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists: pass overwrite=True or choose another name.")
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(dtype)
    truth, template = large_truth(preset, size, n_channels, seed=seed, **kwargs)
    rows, cols = truth.labels.shape
    block_rows = int(max(1, min(block_rows, rows)))
    chunks = (tuple(min(block_rows, rows - r) for r in range(0, rows, block_rows)), (cols,),
              (n_channels,))
    starts = np.cumsum((0,) + chunks[0])

    def block(block_id=None):
        i = block_id[0]
        return _poisson_block(truth, starts[i], starts[i + 1], seed, dtype)

    data = da.map_blocks(block, chunks=chunks, dtype=dtype,
                         meta=np.empty((0, 0, 0), dtype=dtype))
    s = exspy.signals.LazyEDSTEMSpectrum(data)
    s.metadata.add_dictionary(copy.deepcopy(template.metadata.as_dictionary()))
    s.metadata.General.title = f"Simulated {preset}, {rows}x{cols}x{n_channels} (block-wise)"
    for src, dst in zip(template.axes_manager._axes, s.axes_manager._axes):
        dst.name, dst.units, dst.scale, dst.offset = src.name, src.units, src.scale, src.offset
    s.metadata.set_item("Simulation", truth.to_dict())
    s.metadata.set_item("Simulation.params.written_by", "helpers.largedata.write_simulated_map")
    with dask.config.set(scheduler="threads"):
        s.save(path, overwrite=True, chunks=(block_rows, cols, n_channels), show_progressbar=False)
    # upper bound of any pixel's expected counts in any channel: with it far below the dtype's
    # maximum (255), clipping has probability ~0 (it is applied, but never bites)
    bound = float((truth.path_lengths.max(axis=(0, 1)) @ truth.unit_spectra).max()
                  + truth.background_spectrum.max())
    return dict(path=path, truth=truth, shape=(rows, cols, n_channels),
                nbytes=int(rows * cols * n_channels * dtype.itemsize), max_expected=bound,
                dtype_max=int(np.iinfo(dtype).max))


# --------------------------------------------------------------------------------------------
# lazy reduction
# --------------------------------------------------------------------------------------------
def _dask_data(signal):
    import dask.array as da

    data = signal.data if hasattr(signal, "axes_manager") else signal
    if not hasattr(data, "dask"):
        data = da.from_array(np.asarray(data), chunks=(max(1, 2 ** 24 // max(
            1, int(np.prod(np.shape(data)[1:])))), -1, -1))
    if data.ndim != 3:
        raise DataError(f"Expected a spectrum image (rows, cols, channels), got shape {data.shape}.")
    return data


def lazy_binned_counts(signal, bin_factor=2, energy_range=None, energy_bin="auto"):
    """Crop, bin pixels and bin channels chunk by chunk; return the small result in memory.

    Parameters
    ----------
    signal : EDS spectrum image, lazy or not
    bin_factor : int
        ``bin_factor`` × ``bin_factor`` pixels summed (rows/columns that do not fill a bin are
        dropped, as in :func:`helpers.preprocess.bin_navigation`).
    energy_range : (lo, hi) keV, optional
        Default :func:`helpers.preprocess.useful_energy_range`.
    energy_bin : int or "auto"
        Adjacent channels summed (auto: :func:`helpers.preprocess.auto_energy_bin`).

    Returns
    -------
    dict like :func:`helpers.preprocess.prepare`: ``counts`` (pixels, channels) float32,
    ``binned_shape``, ``original_shape``, ``energy``, ``energy_range``, ``bin_factor``,
    ``energy_bin``.
    """
    import dask.array as da

    from . import preprocess as pp

    data = _dask_data(signal)
    f = int(bin_factor)
    if f < 1:
        raise ParameterError(f"bin_factor must be a positive integer, got {bin_factor!r}.")
    er = pp.useful_energy_range(signal) if energy_range is None else tuple(energy_range)
    sl = pp.energy_slice(signal, er)
    energy = pp.energy_axis(signal)[sl]
    eb = energy_bin
    if eb == "auto":
        eb = pp.auto_energy_bin(signal) if hasattr(pp, "auto_energy_bin") else 1
    eb = int(eb)
    r, c, _ = data.shape
    r2, c2 = (r // f) * f, (c // f) * f
    n = ((sl.stop - sl.start) // eb) * eb
    sub = data[:r2, :c2, sl.start:sl.start + n]
    # chunks must hold whole bins: rows in multiples of f, the channel axis in one piece
    rc = max(f, (sub.chunks[0][0] // f) * f)
    sub = sub.rechunk((rc, -1, -1))
    binned = da.coarsen(np.sum, sub.astype(np.float32), {0: f, 1: f, 2: eb}, trim_excess=True)
    counts = binned.compute()
    rb, cb, ch = counts.shape
    energy = energy[:n].reshape(-1, eb).mean(axis=1)
    return {"counts": counts.reshape(rb * cb, ch), "binned_shape": (rb, cb),
            "original_shape": (r, c), "energy": energy, "energy_range": (float(er[0]), float(er[1])),
            "bin_factor": f, "energy_bin": eb}


def lazy_features(counts, normalization="total", scaling="standard", fit_mask=None,
                  block_pixels=16384, dtype=np.float32):
    """:func:`helpers.preprocess.make_features` computed a block of pixels at a time.

    Normalisation is per pixel (block-local); the channel scaling needs each channel's mean
    (and, for ``"standard"``, variance) over the sample pixels, accumulated over blocks first.
    Same result as ``make_features`` (to float32 rounding) without its float64 copies of the
    whole matrix. ``"robust"`` (medians) is not block-wise: it falls back to ``make_features``.
    """
    X = np.asarray(counts)
    n, ch = X.shape
    keep = np.ones(n, bool) if fit_mask is None else np.asarray(fit_mask, bool)
    if keep.sum() == 0:
        raise DataError("No sample pixels to fit the scaling: check the mask.")
    if scaling not in ("poisson", "standard", "none", None) or \
            normalization not in ("total", "none", None):
        from .preprocess import make_features
        return make_features(X, normalization, scaling, fit_mask).astype(dtype)

    def norm(b):
        b = b.astype(np.float64)
        if normalization == "total":
            tot = b.sum(axis=1, keepdims=True)
            b = np.divide(b, tot, out=np.zeros_like(b), where=tot > 0)
        return b

    s1, s2 = np.zeros(ch), np.zeros(ch)
    for i0 in range(0, n, block_pixels):
        b = norm(X[i0:i0 + block_pixels])[keep[i0:i0 + block_pixels]]
        s1 += b.sum(axis=0)
        s2 += (b * b).sum(axis=0)
    m = keep.sum()
    mu = s1 / m
    if scaling == "poisson":
        floor = max(float(mu[mu > 0].mean()) * 1e-3, 1e-12) if np.any(mu > 0) else 1.0
        div = np.sqrt(np.maximum(mu, floor))
    elif scaling == "standard":     # as sklearn's StandardScaler: population std, 0 -> 1
        sd = np.sqrt(np.maximum(s2 / m - mu * mu, 0.0))
        div = np.where(sd < 10 * np.finfo(float).eps * np.maximum(np.abs(mu), 1.0), 1.0, sd)
    else:
        div = np.ones(ch)
    out = np.empty((n, ch), dtype=dtype)
    for i0 in range(0, n, block_pixels):
        out[i0:i0 + block_pixels] = (norm(X[i0:i0 + block_pixels]) - mu) / div
    return out
