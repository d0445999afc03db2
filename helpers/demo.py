"""Demo data: named simulations (``"demo:hea6?size=96&dose=40"``), cached on disk, with truth.

A demo name is a preset of :mod:`helpers.simulate` plus options. :func:`load_demo` simulates it
or reloads an up-to-date copy from :func:`helpers.paths.demo_dir`; :func:`write_demo_data`
writes the demo files (``make demo``). :func:`helpers.io.load_spectrum_image` accepts demo names
wherever it accepts a file, and :func:`get_truth` gives a demo's ground truth (None for real data).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from .errors import InputFileError, ParameterError
from .paths import demo_dir
from .simulate import PRESETS, SIMULATOR_VERSION, get_truth, random_scene, simulate  # noqa: F401
from .simulate.scenes import SCENE_VERSION

#: The demo name of the random scenes (``demo:random?seed=7&size=128``): any seed is a new sample.
RANDOM = "random"

DEMO_PREFIX = "demo:"

# Demo maps at least this many pixels are kept on disk after the first simulation (fast reloads).
DEMO_CACHE_MIN_PIXELS = 128 * 128


def is_demo(source) -> bool:
    """True when ``source`` is a demo name (``"demo:..."``), not a file."""
    return str(source).startswith(DEMO_PREFIX)


def load_demo(source: str, lazy=False, folder=None, cache_min_pixels=None):
    """Simulate a demo (or reload it from :func:`demo_dir` when an up-to-date copy is there).

    Demo files are written atomically (temporary name, then rename) and carry the simulator
    version, so a stale file is never used.
    """
    import hyperspy.api as hs

    name, opts = parse_demo(source)
    path = Path(folder or demo_dir()) / f"{demo_name(source)}.hspy"
    if path.is_file():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sig = hs.load(path, lazy=bool(lazy))
            version = SCENE_VERSION if name == RANDOM else SIMULATOR_VERSION
            if int(sig.metadata.get_item("Simulation.params.version", -1)) == version:
                return sig
        except Exception:  # a damaged cache file is simply regenerated
            pass
    sig, _ = random_scene(**{"seed": 0, **opts}) if name == RANDOM else simulate(name, **opts)
    if cache_min_pixels is None:
        cache_min_pixels = DEMO_CACHE_MIN_PIXELS
    if np.prod(sig.data.shape[:2]) >= cache_min_pixels:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.hspy")
            sig.save(tmp, overwrite=True)
            os.replace(tmp, path)
        except OSError:  # read-only project folder: just keep it in memory
            pass
    return sig.as_lazy() if lazy else sig


def parse_demo(source: str):
    """Split ``"demo:NAME?key=value&..."`` into ``(NAME, options)`` with numeric values."""
    body = source[len(DEMO_PREFIX):]
    name, _, query = body.partition("?")
    if name not in PRESETS and name != RANDOM:
        raise InputFileError(f"Unknown demo {name!r}: use one of "
                             f"{', '.join(DEMO_PREFIX + p for p in [*PRESETS, RANDOM])}.")
    allowed = {"size", "dose", "seed", "n_channels", "channel_width", "beam_energy",
               "energy_resolution_mnka", "pixel_nm"} | ({"n_phases"} if name == RANDOM else set())
    opts = {}
    for key, val in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise ParameterError(f"Unknown demo option {key!r} in {source!r}: allowed are "
                                 f"{', '.join(sorted(allowed))}.")
        try:
            num = float(val)
        except ValueError:
            raise ParameterError(f"Demo option {key}={val!r} in {source!r} must be a number.") from None
        opts[key] = int(num) if num.is_integer() and key in {"size", "seed", "n_channels",
                                                             "n_phases"} else num
    return name, opts


def demo_name(source: str) -> str:
    """A short, file-system-safe name for an input: demo preset + options, or the file stem."""
    if str(source).startswith(DEMO_PREFIX):
        name, opts = parse_demo(str(source))
        return "_".join([name] + [f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}"
                                  for k, v in sorted(opts.items())])
    return Path(source).stem


def write_demo_data(folder=None, sources=("demo:hea6", "demo:hea7", "demo:hea7_coreshell")):
    """Simulate the demo data into ``folder`` (default :func:`helpers.paths.demo_dir`).

    Each source gives ``<name>.hspy`` (the signal, truth in its metadata) and ``<name>_truth.npz``
    (labels, thickness, compositions as plain arrays for other tools). Up-to-date files are kept.
    Returns the list of ``.hspy`` paths.
    """
    folder = Path(folder) if folder is not None else demo_dir()
    out = []
    for src in sources:
        sig = load_demo(src, folder=folder, cache_min_pixels=0)
        d = get_truth(sig).to_dict()
        name = demo_name(src)
        np.savez_compressed(folder / f"{name}_truth.npz", labels=d["labels"],
                            thickness=d["thickness"], phase_names=np.array(d["phase_names"]),
                            elements=np.array(d["elements"]),
                            compositions_at_percent=np.array(
                                [[d["compositions"][ph].get(e, 0.0) for e in d["elements"]]
                                 for ph in d["phase_names"]]))
        out.append(folder / f"{name}.hspy")
    return out
