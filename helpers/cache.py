"""On-disk cache of intermediate results, keyed by a hash of the data and the parameters.

Each notebook can run on its own: it asks for, say, the UMAP embedding of this data with these
parameters; if an earlier notebook (or an earlier run) computed it, it is read back in
milliseconds, otherwise it is computed and stored. Nothing is ever looked up by file name or
by notebook, only by content, so a changed parameter or a changed file can never return a stale
result.

Location: ``$HEA_CACHE_DIR`` if set, else ``<project>/.cache/hea`` (git-ignored), else
``~/.cache/hea-edx``. Entries are pickles written atomically (temporary file + rename), so an
interrupted run never leaves a half-written entry. Delete the folder (or call
:func:`clear_cache`) at any time; it only costs recomputation.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from .paths import PROJECT_ROOT

_ENABLED = True
STATS = {"hits": 0, "misses": 0}   # counters, handy in tests and notebooks


def set_enabled(flag: bool):
    """Switch the cache on or off for this process (e.g. for timing)."""
    global _ENABLED
    _ENABLED = bool(flag)


def cache_dir() -> Path:
    """The cache folder (created if needed)."""
    env = os.environ.get("HEA_CACHE_DIR")
    candidates = [Path(env)] if env else []
    candidates += [PROJECT_ROOT / ".cache" / "hea",
                   Path.home() / ".cache" / "hea-edx"]
    for d in candidates:
        try:
            d.mkdir(parents=True, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            continue
    return Path(tempfile.gettempdir()) / "hea-edx-cache"


def data_hash(signal) -> str:
    """Content hash of a spectrum image (counts, shape, dtype and axis calibration).

    Works on NumPy arrays, HyperSpy signals and lazy (Dask) signals (hashed block by block).
    """
    h = hashlib.blake2b(digest_size=16)
    data = signal.data if hasattr(signal, "axes_manager") else signal
    h.update(repr((tuple(data.shape), str(data.dtype))).encode())
    if hasattr(signal, "axes_manager"):
        cal = [(a.name, float(a.scale), float(a.offset), str(a.units), a.size)
               for a in signal.axes_manager._axes]
        h.update(repr(cal).encode())
        try:
            h.update(repr(sorted(signal.metadata.Sample.elements)).encode())
        except AttributeError:
            pass
        try:
            h.update(repr(float(signal.metadata.Acquisition_instrument.TEM.beam_energy)).encode())
        except AttributeError:
            pass
    if hasattr(data, "numblocks") and hasattr(data, "compute"):   # dask: block by block
        for idx in np.ndindex(*data.numblocks):
            h.update(np.ascontiguousarray(data.blocks[idx].compute()).tobytes())
    else:
        h.update(np.ascontiguousarray(np.asarray(data)).tobytes())
    return h.hexdigest()


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return hashlib.blake2b(np.ascontiguousarray(v).tobytes(), digest_size=12).hexdigest()
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in sorted(v.items())}
    if isinstance(v, Path):
        return str(v)
    return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)


def make_key(stage: str, data_key: str, params: dict) -> str:
    """Cache key: the stage name, the data hash and every parameter that changes the result."""
    blob = json.dumps({"stage": stage, "data": data_key, "params": _jsonable(params)},
                      sort_keys=True)
    return f"{stage}-{hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()}"


def _path(key):
    return cache_dir() / f"{key}.pkl"


def load(key):
    """The cached object for ``key``, or None."""
    p = _path(key)
    if not p.exists():
        return None
    try:
        with open(p, "rb") as f:
            return pickle.load(f)
    except Exception:   # corrupt or from an incompatible version: recompute
        return None


def save(key, obj):
    """Store ``obj`` under ``key`` atomically; silently skipped if the folder is not writable."""
    d = cache_dir()
    try:
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, _path(key))
    except OSError:
        pass


def cached(stage, data_key, params, compute, enabled=True):
    """Return the cached result of ``compute()`` for (stage, data, params), computing if needed.

    Parameters
    ----------
    stage : str
        Name of the computation, e.g. ``"umap"``.
    data_key : str
        :func:`data_hash` of the input data (or of an upstream result).
    params : dict
        Every parameter that changes the result.
    compute : callable() -> object (picklable)
    enabled : bool
        False: always compute, never store.
    """
    if not (enabled and _ENABLED):
        return compute()
    key = make_key(stage, data_key, params)
    obj = load(key)
    if obj is not None:
        STATS["hits"] += 1
        return obj
    STATS["misses"] += 1
    obj = compute()
    save(key, obj)
    return obj


def clear_cache():
    """Delete every cache entry; returns how many were removed."""
    n = 0
    for p in cache_dir().glob("*.pkl"):
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n
