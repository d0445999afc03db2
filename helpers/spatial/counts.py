"""Counts of the sample pixels prepared for the spatial prior (channel-binned, cropped, one
BLAS thread for the thin products), cluster spectra and the multinomial data term."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ..errors import DataError, ParameterError


def one_blas_thread():
    """Context limiting BLAS to one thread: the products here are thin (k = a few columns),
    and on a shared two-core machine OpenBLAS's threads made them 10-100x slower. The loaded
    libraries are scanned once per process (a scan takes about 10 ms, a slider move's tenth)."""
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:          # pragma: no cover - threadpoolctl comes with scikit-learn
        from contextlib import nullcontext
        return nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


_CONTROLLER = None


@dataclass
class PreparedCounts:
    """Counts of the sample pixels, cropped and channel-binned, read a block at a time.

    Without channel binning the caller's array is not copied (only a view and the row
    indices of the sample pixels are kept); with it, one binned copy is made (``energy_bin``
    times smaller).

    Attributes
    ----------
    source : (n_rows, n_channels) array
        Counts; the sample pixels are rows ``rows`` (all rows in order when None), the
        features columns ``cols``.
    rows : (n_sample,) int array or None
    cols : slice
    totals : (n_sample,) float64
        Total counts of each sample pixel over the kept channels.
    mask : (rows, cols) bool
    shape : (rows, cols)
    chunk : int
        Pixels per block.
    """
    source: np.ndarray
    rows: np.ndarray
    cols: slice
    totals: np.ndarray
    mask: np.ndarray
    shape: tuple
    chunk: int = 8192

    @property
    def n_pixels(self):
        return int(self.totals.size)

    @property
    def n_features(self):
        return len(range(*self.cols.indices(self.source.shape[1])))

    def blocks(self, dtype=np.float64):
        """Yield (start, stop, block of counts as ``dtype``) over the sample pixels (float32
        is exact for sums of integer counts below 2**24, and half the memory traffic)."""
        n = self.n_pixels
        for i0 in range(0, n, self.chunk):
            i1 = min(n, i0 + self.chunk)
            r = slice(i0, i1) if self.rows is None else self.rows[i0:i1]
            yield i0, i1, np.asarray(self.source[r, self.cols], dtype=dtype)

    def dot(self, W):
        """counts @ W for a (n_features, j) matrix: (n_sample, j) float64."""
        W = np.asarray(W, np.float64)
        out = np.empty((self.n_pixels, W.shape[1]))
        for i0, i1, b in self.blocks():
            out[i0:i1] = b @ W
        return out

    def label_sums(self, labels, n_clusters):
        """Summed counts of the pixels of each label 0..n_clusters-1 (negative: skipped)."""
        lab = np.asarray(labels)
        out = np.zeros((n_clusters, self.n_features))
        for i0, i1, b in self.blocks():
            li = lab[i0:i1]
            k = li >= 0
            ind = sparse.csr_matrix((np.ones(int(k.sum())), (li[k], np.flatnonzero(k))),
                                    shape=(n_clusters, i1 - i0))
            out += ind @ b
        return out

    def toarray(self):
        """(n_sample, n_features) float64 copy (for small maps and tests)."""
        return np.concatenate([b for *_, b in self.blocks()]) if self.n_pixels else \
            np.zeros((0, self.n_features))


def check_counts(counts):
    counts = np.asarray(counts)
    if counts.ndim != 3:
        raise DataError(f"counts must be a (rows, cols, channels) array, got shape "
                        f"{counts.shape}: pass the spectrum image's .data.")
    if counts.size == 0:
        raise DataError("counts is empty.")
    if not (np.issubdtype(counts.dtype, np.integer) or np.issubdtype(counts.dtype, np.floating)):
        raise DataError(f"counts must be numbers, got dtype {counts.dtype}.")
    return counts


def check_mask(mask, shape):
    if mask is None:
        return np.ones(shape, bool)
    m = np.asarray(mask, bool)
    if m.shape != tuple(shape):
        raise ParameterError(f"mask has shape {m.shape}, the map {tuple(shape)}: pass a "
                             "(rows, cols) boolean mask of the same map (True = sample).")
    return m


def prepare_counts(counts, mask=None, energy_bin=1, channels=None, chunk_pixels=8192):
    """Crop and channel-bin the counts of the sample pixels (checked: finite, >= 0).

    Parameters
    ----------
    counts : (rows, cols, channels) array of non-negative counts (any integer or float dtype)
    mask : (rows, cols) bool, optional
        Sample pixels (True). None: every pixel.
    energy_bin : int
        Adjacent channels summed (1 = none). About half the detector FWHM keeps the peaks
        resolved and makes everything faster; the incomplete last group is dropped.
    channels : (start, stop) or slice, optional
        Channel range kept before binning (e.g. the useful energy range). None: all.
    chunk_pixels : int
        Pixels processed at a time at most; fewer when there are many features, so that a
        float64 block stays within 16 MiB.

    Returns
    -------
    PreparedCounts
    """
    counts = check_counts(counts)
    rows, cols, nch = counts.shape
    m = check_mask(mask, (rows, cols))
    if isinstance(energy_bin, (bool, np.bool_)) or not isinstance(energy_bin, (int, np.integer)) \
            or energy_bin < 1:
        raise ParameterError(f"energy_bin must be a positive integer, got {energy_bin!r}.")
    sl = channels if isinstance(channels, slice) else (
        slice(None) if channels is None else slice(int(channels[0]), int(channels[1])))
    lo, hi, step = sl.indices(nch)
    if step != 1 or hi - lo < energy_bin:
        raise ParameterError(f"channels={channels!r} keeps fewer than energy_bin={energy_bin} "
                             "channels (or has a step): pass (start, stop) channel indices.")
    f = int(energy_bin)
    nb = (hi - lo) // f
    hi = lo + nb * f
    chunk_pixels = int(max(64, min(int(chunk_pixels), 2 ** 21 // max(nb, 1))))
    flat = counts.reshape(rows * cols, nch)
    idx = np.flatnonzero(m.ravel())
    check = not np.issubdtype(counts.dtype, np.unsignedinteger)

    def checked(block):
        if check and block.size and (not np.all(np.isfinite(block)) or block.min() < 0):
            raise DataError("counts contain negative, NaN or infinite values: pass raw counts.")
        return block

    if f == 1:
        source, sel, cols_sl = flat, (None if idx.size == flat.shape[0] else idx), slice(lo, hi)
    else:
        if np.issubdtype(counts.dtype, np.integer):
            acc = np.uint16 if (counts.dtype.itemsize == 1 and f <= 257) else np.int64
        else:
            acc = np.float64
        source = np.empty((idx.size, nb), acc)
        for i0 in range(0, idx.size, chunk_pixels):
            block = checked(flat[idx[i0:i0 + chunk_pixels], lo:hi])
            b = source[i0:i0 + chunk_pixels]
            np.copyto(b, block[:, 0::f], casting="unsafe")
            for j in range(1, f):
                b += block[:, j::f]
        sel, cols_sl = None, slice(0, nb)
    prep = PreparedCounts(source=source, rows=sel, cols=cols_sl, totals=np.zeros(idx.size),
                          mask=m, shape=(rows, cols), chunk=int(chunk_pixels))
    n = idx.size
    for i0 in range(0, n, prep.chunk):
        r = slice(i0, min(n, i0 + prep.chunk)) if sel is None else sel[i0:i0 + prep.chunk]
        b = source[r, cols_sl]
        if f == 1:
            checked(b)
        prep.totals[i0:i0 + b.shape[0]] = b.sum(axis=1, dtype=np.float64)
    return prep


def cluster_log_spectra(X, labels, n_clusters, pseudo_count=0.5):
    """Log spectral shape of each cluster: summed counts of its pixels + pseudo-count.

    Parameters
    ----------
    X : PreparedCounts, or (n, features) dense or sparse counts
    labels : (n,) int, 0..n_clusters-1; negative = not used (noise)
    n_clusters : int
    pseudo_count : float
        Added to every feature of every cluster (avoids log 0; as in
        :func:`helpers.cluster.poisson_mixture_refine`).

    Returns
    -------
    (n_clusters, features) float64 array of log p_k (each row's exp sums to 1)
    """
    lab = np.asarray(labels)
    if isinstance(X, PreparedCounts):
        s = X.label_sums(lab, n_clusters)
    else:
        keep = lab >= 0
        ind = sparse.csr_matrix((np.ones(int(keep.sum())), (lab[keep], np.flatnonzero(keep))),
                                shape=(n_clusters, lab.size))
        s = np.asarray(ind @ X, float)
    s = s + pseudo_count
    return np.log(s) - np.log(s.sum(axis=1, keepdims=True))


def check_labels(labels, shape):
    lab = np.asarray(labels)
    if lab.shape != tuple(shape):
        raise ParameterError(f"labels have shape {lab.shape}, the map {tuple(shape)}: pass "
                             "labels on the original (rows, cols) grid.")
    if not np.issubdtype(lab.dtype, np.integer):
        if not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
            raise ParameterError("labels must be integers (-1 = noise / unassigned).")
        lab = lab.astype(np.int64)
    return lab


def encode(lab_sample):
    clusters = np.unique(lab_sample[lab_sample >= 0])
    if clusters.size == 0:
        raise ParameterError("No sample pixel has a cluster label (>= 0): nothing to regularise.")
    enc = np.full(lab_sample.shape, -1, np.int64)
    good = lab_sample >= 0
    enc[good] = np.searchsorted(clusters, lab_sample[good])
    return clusters, enc


def data_term(counts, labels, mask=None, energy_bin=1, channels=None, pseudo_count=0.5):
    """Multinomial log-likelihood of every pixel under every cluster's spectral shape.

    Parameters
    ----------
    counts : (rows, cols, channels) raw counts
    labels : (rows, cols) int; clusters >= 0 define the spectra, -1 pixels are not used
    mask : (rows, cols) bool, optional (None: every pixel)
    energy_bin, channels : see :func:`prepare_counts`
    pseudo_count : float

    Returns
    -------
    D : (rows, cols, k) float64, NaN outside ``mask``; column j is cluster ``clusters[j]``
    clusters : (k,) int, the cluster values of ``labels``
    """
    prep = prepare_counts(counts, mask, energy_bin, channels)
    lab = check_labels(labels, prep.shape)
    clusters, lab_s = encode(lab[prep.mask])
    with one_blas_thread():
        logp = cluster_log_spectra(prep, lab_s, clusters.size, pseudo_count)
        D = np.full(prep.shape + (clusters.size,), np.nan)
        D[prep.mask] = prep.dot(logp.T)
    return D, clusters
