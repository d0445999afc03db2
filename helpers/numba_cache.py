"""Keep umap-learn's numba compilation on disk, so it is paid once, not in every kernel.

umap-learn compiles its numba functions without ``cache=True`` (pynndescent caches most of
its own), so every new Python process (each notebook kernel, each batch-runner notebook) pays
tens of seconds of JIT compilation on its first UMAP call. numba implements ``cache=True`` by
calling ``Dispatcher.enable_caching()``; :func:`enable` calls it for the module-level numba
functions of umap-learn and pynndescent that lack it. The cache is numba's own: keyed on the
source file (its modification time) and the argument types, stored next to the package in
``__pycache__`` or, where that is read-only, in numba's user cache folder, or in
``$NUMBA_CACHE_DIR`` when set. A changed umap-learn simply recompiles. Results are unchanged:
the same machine code is loaded instead of regenerated.

Switch off with the environment variable ``HEA_NUMBA_CACHE=0``.
"""
from __future__ import annotations

import importlib
import os

_MODULES = ("umap.umap_", "umap.layouts", "umap.distances", "umap.utils", "umap.sparse",
            "umap.spectral", "pynndescent.pynndescent_", "pynndescent.utils",
            "pynndescent.distances", "pynndescent.sparse", "pynndescent.rp_trees",
            "pynndescent.graph_utils", "pynndescent.search", "pynndescent.sparse_nndescent",
            "pynndescent.threaded_rp_trees")
_DONE = {"n": None}


def enable():
    """Turn on numba's on-disk cache for umap-learn's and pynndescent's numba functions.

    Idempotent and cheap after the first call. Returns the number of functions with caching on
    (0 when disabled by ``HEA_NUMBA_CACHE=0`` or when numba's internals are not as expected).
    """
    if _DONE["n"] is not None:
        return _DONE["n"]
    if os.environ.get("HEA_NUMBA_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        _DONE["n"] = 0
        return 0
    n = 0
    try:
        from numba.core.caching import NullCache
        from numba.core.registry import CPUDispatcher
    except ImportError:   # numba reorganised: run uncached, never fail
        _DONE["n"] = 0
        return 0
    for name in _MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        for obj in list(vars(mod).values()):
            if not isinstance(obj, CPUDispatcher):
                continue
            if isinstance(getattr(obj, "_cache", None), NullCache):
                try:
                    obj.enable_caching()
                except Exception:
                    continue
            n += 1  # cached now, whether switched on here or earlier in this process
    _DONE["n"] = n
    return n
