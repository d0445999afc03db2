"""Helpers for the STEM-EDX high-entropy-material notebooks.

Implements Eggeman et al., Faraday Discuss. 2025 (DOI 10.1039/d5fd00101c): element maps,
two clustering workflows (PCA + GMM, UMAP + HDBSCAN), cluster quantification with error bars,
and configurational entropy. Submodules are imported lazily so ``import helpers`` is quick.

The data flow reads one way, and so do the imports (checked by ``tests/test_architecture.py``)::

    file or demo name ─ io (demo ← simulate ← xray) ─► signal
        ─ preprocess, maps ─► features ─ decompose, cluster ─► workflows ─► labels
        ─ quant ─► compositions ─ entropy, compare ─► tables
        ─ results (files), plotting (figures), widgets (sliders) ─ execution, runner (batch)
        ─ distributed (the batch on a dask cluster)

``errors``, ``paths``, ``cache``, ``numba_cache``, ``progress`` and ``results`` are utilities every
layer may use; ``report`` writes a run's ``index.html`` after the batch.
"""
import importlib
import warnings

__version__ = "0.1.0"

_SUBMODULES = (
    "errors", "paths", "cache", "numba_cache", "results", "xray", "simulate", "demo", "io",
    "preprocess", "maps", "decompose", "hdbscan_counts", "cluster", "mixture", "multinomial",
    "spatial",
    "workflows", "quant", "reproducibility", "entropy", "compare", "plotting", "widgets",
    "execution", "notebook_graph", "run_check", "report", "runner", "distributed", "progress",
)

# HyperSpy 2.5 warns about exspy's old import paths on every import; nothing a user can act on.
warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in the HyperSpy 3.0.*")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


def show_versions(print_out=True):
    """Print (and return) the versions of Python and of the packages this analysis depends on.

    Parameters
    ----------
    print_out : bool
        Print a table; the dict is returned in every case.
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    packages = ["numpy", "scipy", "hyperspy", "exspy", "rosettasciio", "scikit-learn",
                "umap-learn", "hdbscan", "numba", "matplotlib", "ipywidgets", "papermill"]
    found = {"python": platform.python_version(), "helpers": __version__}
    for p in packages:
        try:
            found[p] = version(p)
        except PackageNotFoundError:
            found[p] = "not installed"
    if print_out:
        for k, v in found.items():
            print(f"{k:>14}  {v}")
    return found
