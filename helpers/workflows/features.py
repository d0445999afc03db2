"""Features of a spectrum image for clustering, their PCA and their UMAP embedding (cached).

:func:`compute_features` bins, crops, masks, normalises and scales (:mod:`helpers.preprocess`,
:func:`helpers.maps.sample_mask`); :func:`pca_of_features` and :func:`embedding_for` add the
decomposition and the embedding. Results are kept in the content-keyed cache
(:mod:`helpers.cache`): a notebook asking again for the features, PCA or UMAP of the same data
and parameters gets them back in milliseconds.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import cache as _cache   # (workflow functions take a ``cache`` flag)
from ..cluster import UMAP_EPOCHS, UMAP_NEIGHBOURS, umap_embed
from ..decompose import pca
from ..errors import DataError, ParameterError
from ..maps import sample_mask
from ..preprocess import (auto_energy_bin, energy_slice, lazy_binned_counts, lazy_features,
                          make_features, prepare, smooth_counts)


@dataclass
class Features:
    """Binned, cropped, normalised and scaled features of a spectrum image."""
    X: np.ndarray                 # (n_binned_pixels, channels) scaled features
    counts: np.ndarray            # (n_binned_pixels, channels) binned raw counts (cropped range)
    mask: np.ndarray              # (n_binned_pixels,) bool, True = sample (clustered)
    binned_shape: tuple
    original_shape: tuple
    energy: np.ndarray            # keV of the kept channels
    energy_range: tuple
    bin_factor: int
    key: str                      # cache key of (data, preprocessing parameters)
    params: dict = field(default_factory=dict)
    #: (n_binned_pixels, channels) pooled counts the features were built from, None if unpooled
    pooled: np.ndarray = None

    @property
    def pooling(self):
        """:func:`pooling_grid` of these features."""
        return pooling_grid(self.mask, self.binned_shape, self.params)

    @property
    def mask_image(self):
        """(rows_b, cols_b) sample mask on the binned grid."""
        return self.mask.reshape(self.binned_shape)


def pooling_grid(mask, binned_shape, params):
    """(rows, cols, sigma) of the clustered pixels (``mask``, flat, on the binned grid) when
    the features were pooled (``params["smoothing"]``), for
    :func:`helpers.multinomial.merge_insignificant`; None for per-pixel features."""
    sigma = params.get("smoothing", 0)
    if not sigma:
        return None
    rows, cols = np.divmod(np.flatnonzero(np.ravel(mask)), binned_shape[1])
    return rows, cols, float(sigma)


def as_signal(signal):
    """A loaded spectrum image: ``signal`` itself, or the file / demo it names."""
    if isinstance(signal, (str,)) or hasattr(signal, "__fspath__"):
        from ..io import load_spectrum_image   # io sits below workflows; deferred: rarely used
        return load_spectrum_image(signal, verbose=False)
    return signal


def compute_features(signal, bin_factor=2, energy_range=None, normalization="total",
                     scaling="standard", mask="auto", energy_bin="auto", smoothing=0):
    """Bin, crop, mask, normalise and scale a spectrum image into clustering features.

    Parameters
    ----------
    signal : EDSTEMSpectrum, (rows, cols, channels) array, or a path / demo name
    bin_factor : int
        Sum ``bin_factor`` × ``bin_factor`` pixels (the paper: 2).
    energy_range : (lo, hi) keV or None for the elements' useful range
    normalization : {"total", "none"}
        ``"total"`` divides each pixel by its total counts (thickness-independent features).
    scaling : {"poisson", "robust", "standard", "none"}
        Per-channel scaling; ``"robust"`` is the paper's RobustScaler.
    mask : "auto", None/False, or (rows, cols) bool array
        Sample pixels to cluster (True). ``"auto"``: :func:`helpers.maps.sample_mask` on the
        binned total counts; None/False: every pixel.
    energy_bin : int or "auto"
        Adjacent channels summed (auto: half the detector FWHM, see
        :func:`helpers.preprocess.auto_energy_bin`).
    smoothing : float
        0: features of each binned pixel's own counts. sigma > 0: of its counts pooled over
        neighbours (Gaussian of width sigma binned pixels, edge-preserving weights guided by
        the unpooled PCA scores, :func:`helpers.preprocess.smooth_counts`); the pooled counts
        are kept in ``Features.pooled``.

    Returns
    -------
    Features
    """
    signal = as_signal(signal)
    dh = _cache.data_hash(signal)
    args = dict(bin_factor=bin_factor, energy_range=energy_range, normalization=normalization,
                scaling=scaling, mask=mask, energy_bin=energy_bin, smoothing=smoothing)
    memo_key = _cache.make_key("features-args", dh, args)
    hit = _FEATURES_MEMO.get(memo_key)
    if hit is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            feats = _compute_features(signal, dh, **args)
        hit = (feats, list(caught))
        if len(_FEATURES_MEMO) >= 2:
            _FEATURES_MEMO.pop(next(iter(_FEATURES_MEMO)))
        _FEATURES_MEMO[memo_key] = hit
    feats, caught = hit
    for w in caught:   # the same warnings on every call, from their original place
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno,
                               registry=_WARNED)
    return feats


#: Fewest (binned, unmasked) pixels the workflows cluster: UMAP's default neighbourhood is 15
#: pixels and a mixture of a few clusters needs several pixels each.
MIN_SAMPLE_PIXELS = 20

#: Features of the last maps seen in this process (workflow 1 and 2 of one map share them).
_FEATURES_MEMO = {}
_LAZY_COUNTS = {}   # the last lazy map's counts for the spatial prior (spatial_counts)

_WARNED = {}   # as a module's __warningregistry__: a "default" warning shows once per place


def _compute_features(signal, dh, bin_factor, energy_range, normalization, scaling, mask,
                      energy_bin, smoothing=0):
    prep = prepare(signal, bin_factor=bin_factor, energy_range=energy_range,
                   energy_bin=energy_bin)
    counts = prep["counts"]
    rb, cb = prep["binned_shape"]
    if isinstance(mask, str):
        if mask != "auto":
            raise ParameterError(f"mask={mask!r} is unknown: use 'auto', None or a boolean array.")
        # binning already averages Poisson noise; extra smoothing would blur particle edges
        m = sample_mask(counts.sum(axis=1).reshape(rb, cb),
                        smooth=0.0 if bin_factor >= 2 else 1.0).ravel()
        mask_param = "auto"
    elif mask is None or mask is False:
        m = np.ones(rb * cb, bool)
        mask_param = None
    else:
        mm = np.asarray(mask, bool)
        if mm.shape == (rb, cb):
            m = mm.ravel()
        elif mm.shape == tuple(prep["original_shape"]):
            f = prep["bin_factor"]
            sub = mm[:rb * f, :cb * f].reshape(rb, f, cb, f)
            m = (sub.mean(axis=(1, 3)) >= 0.5).ravel()
        else:
            raise ParameterError(f"mask shape {mm.shape} matches neither the map "
                                 f"{prep['original_shape']} nor the binned map {(rb, cb)}.")
        mask_param = mm
    if m.sum() < MIN_SAMPLE_PIXELS:
        raise DataError(f"Only {int(m.sum())} of {m.size} pixels are left to cluster after binning "
                        f"x{prep['bin_factor']} and masking vacuum/support (at least "
                        f"{MIN_SAMPLE_PIXELS} are needed): try BIN_FACTOR = 1, mask=None, or a "
                        "larger map; check that the map holds counts.")
    pooled = counts if not smoothing else smooth_counts(
        counts, (rb, cb), m, smoothing, guide=_guide(counts, m, normalization, scaling))
    if getattr(signal, "_lazy", False):   # block-wise: no float64 copies of the matrix
        X = lazy_features(pooled, normalization, scaling, fit_mask=m)
    else:
        X = make_features(pooled, normalization, scaling, fit_mask=m)
    params = dict(bin_factor=int(bin_factor), energy_range=prep["energy_range"],
                  energy_bin=energy_bin,
                  normalization=normalization, scaling=scaling, mask=mask_param)
    if smoothing:
        params["smoothing"] = float(smoothing)
    key = _cache.make_key("features", dh, params)
    return Features(X=X, counts=counts, mask=m, binned_shape=(rb, cb),
                    original_shape=prep["original_shape"], energy=prep["energy"],
                    energy_range=prep["energy_range"], bin_factor=int(bin_factor), key=key,
                    params=params, pooled=pooled if smoothing else None)


def _guide(counts, m, normalization, scaling, n_components=8):
    """First PCA scores of the unpooled features: what tells phases apart, for the pooling's
    edge-preserving weights (:func:`helpers.preprocess.smooth_counts`)."""
    X = make_features(counts, normalization, scaling, fit_mask=m)
    return pca(X, n_components=n_components, max_components=n_components,
               fit_mask=m).all_scores


def pca_of_features(signal, n_components=None, max_components=30, random_state=0, cache=True,
                  features=None, **feature_kw):
    """PCA of the features (cached). Returns ``(Features, PCAResult)``.

    ``feature_kw`` are the arguments of :func:`compute_features`.
    """
    feats = features if features is not None else compute_features(signal, **feature_kw)
    res = _cache.cached("pca", feats.key, dict(max_components=max_components,
                                               random_state=random_state),
                        lambda: pca(feats.X, None, max_components=max_components,
                                    random_state=random_state, fit_mask=feats.mask),
                        enabled=cache)
    if n_components is not None:
        res = res.with_components(n_components)
    return feats, res


def embedding_for(signal, umap_input="pca", n_components=None, umap_dims=4, n_neighbors=15,
                  random_state=0, max_components=30, cache=True, features=None, n_epochs=None,
                  **feature_kw):
    """UMAP embedding of the sample pixels (cached). Returns ``(Features, PCAResult, embedding)``.

    ``embedding`` has one row per binned pixel; masked rows are NaN.
    """
    if umap_input not in ("pca", "spectra"):
        raise ParameterError(f"UMAP_INPUT={umap_input!r} is unknown: use 'pca' (PCA scores, "
                             "fast) or 'spectra' (full scaled spectra, the paper's way).")
    feats, p = pca_of_features(signal, n_components=n_components, max_components=max_components,
                             random_state=random_state, cache=cache, features=features,
                             **feature_kw)
    if n_components is None and umap_input == "pca":
        # UMAP needs more input than output dimensions: an elbow of 2 would leave it a plane to
        # tear into fragments. Components beyond the elbow are mostly noise and cost little.
        p = p.with_components(min(max(p.elbow, 2 * umap_dims), p.all_scores.shape[1]))
    m = feats.mask
    data = p.scores if umap_input == "pca" else feats.X
    params = dict(umap_input=umap_input, n_components=p.n_components if umap_input == "pca"
                  else None, umap_dims=umap_dims, n_neighbors=n_neighbors,
                  random_state=random_state, max_components=max_components,
                  n_epochs=UMAP_EPOCHS if n_epochs is None else n_epochs,
                  neighbours=UMAP_NEIGHBOURS)

    def run():
        emb = np.full((m.size, umap_dims), np.nan)
        emb[m] = umap_embed(data[m], n_components=umap_dims, n_neighbors=n_neighbors,
                            random_state=random_state, n_epochs=n_epochs)
        return emb

    emb = _cache.cached("umap", feats.key, params, run, enabled=cache)
    return feats, p, emb


def spatial_counts(signal, feats):
    """The raw counts the spatial prior reads, on the original pixel grid: ``(counts, channels,
    energy_bin)`` for :func:`helpers.spatial.regularise_labels`. In memory: the map itself with
    the features' channel range and binning (no copy). Lazy: reduced chunk by chunk to that
    range and binning first (:func:`helpers.preprocess.lazy_binned_counts`, bin factor 1), once
    for both workflows."""
    eb = feats.params.get("energy_bin", "auto")
    eb = auto_energy_bin(signal) if eb == "auto" else int(eb)
    if getattr(signal, "_lazy", False):
        # one pass over the file for both workflows (the same dask array, held here so its id
        # cannot be reused), kept as 16-bit integers when the counts fit (half of float32)
        key = (tuple(feats.energy_range), eb)
        if _LAZY_COUNTS.get("src") is not signal.data or _LAZY_COUNTS.get("key") != key:
            _LAZY_COUNTS.clear()
            lz = lazy_binned_counts(signal, 1, feats.energy_range, eb)
            rows, cols = lz["original_shape"]
            c = lz["counts"].reshape(rows, cols, -1)
            if np.issubdtype(signal.data.dtype, np.integer) and c.size and c.min() >= 0 \
                    and c.max() < 2 ** 16:
                c = c.astype(np.uint16)
            _LAZY_COUNTS.update(src=signal.data, key=key, counts=c)
        return _LAZY_COUNTS["counts"], None, 1
    if not hasattr(signal, "axes_manager"):
        return np.asarray(signal), None, 1
    sl = energy_slice(signal, feats.energy_range)
    return signal.data, (sl.start, sl.stop), eb
