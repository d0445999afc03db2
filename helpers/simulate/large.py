"""Simulated spectrum images larger than memory, written one block of rows at a time.

* :func:`large_truth` builds the simulator's :class:`~helpers.simulate.GroundTruth` at any size
  without drawing the counts (:func:`helpers.simulate.simulate` draws them all in memory);
* :func:`write_simulated_map` writes Poisson counts from that truth to an ``.hspy`` file, one
  block of rows at a time, through HyperSpy's own writer (so ``hs.load(path, lazy=True)`` and
  :func:`helpers.io.load_spectrum_image` read it back with its metadata and truth).

Hand-written because the simulator has no block-wise mode.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from ..errors import OutputError, ParameterError
from .presets import simulate
from .truth import GroundTruth


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
    # threads on purpose, also under a distributed.Client: the blocks are written into one HDF5
    # file, which only this process may hold open (the only scheduler named in helpers)
    with dask.config.set(scheduler="threads"):
        s.save(path, overwrite=True, chunks=(block_rows, cols, n_channels), show_progressbar=False)
    # upper bound of any pixel's expected counts in any channel: with it far below the dtype's
    # maximum (255), clipping has probability ~0 (it is applied, but never bites)
    bound = float((truth.path_lengths.max(axis=(0, 1)) @ truth.unit_spectra).max()
                  + truth.background_spectrum.max())
    return dict(path=path, truth=truth, shape=(rows, cols, n_channels),
                nbytes=int(rows * cols * n_channels * dtype.itemsize), max_expected=bound,
                dtype_max=int(np.iinfo(dtype).max))
