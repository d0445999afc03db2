"""Loading and validating EDS spectrum images.

One entry point, :func:`load_spectrum_image`, takes a file path (anything HyperSpy/RosettaSciIO
reads: Velox .emd, Bruker .bcf, JEOL .pts, .hspy, ...) or a demo name (``"demo:hea6"``, optionally
``"demo:hea6?size=96&dose=40&seed=1"``) and returns an ``EDSTEMSpectrum`` that the rest of the
package can rely on: two navigation axes, an energy axis in keV, a beam energy, elements with one
quantifiable X-ray line each, and finite non-negative counts. Anything else is refused with a
one-line message that says what to do.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from . import demo
from .errors import (DataError, ElementError, InputFileError, MetadataError,
                     NotSpectrumImageError)
from .xray.choice import choose_line
from .xray.kfactors import load_kfactors
from .xray.lines import database

# Files larger than this are loaded lazily (dask) unless ``lazy`` is given.
LAZY_ABOVE_BYTES = 1 << 30
DEFAULT_RESOLUTION_EV = 130.0


def _load_file(path: Path, lazy):
    import hyperspy.api as hs

    if not path.exists():
        raise InputFileError(f"No such file: {path}. Check the path (relative paths are relative "
                             f"to {Path.cwd()}).")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a file: give the spectrum-image file inside it.")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"{path} cannot be read (permission denied): check its permissions.")
    if lazy is None:
        lazy = path.stat().st_size > LAZY_ABOVE_BYTES
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = hs.load(path, lazy=lazy)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise InputFileError(f"Reading {path.name} needs a package that is missing ({missing}): "
                             f"install it (for Velox .emd: pip install sparse).") from None
    except Exception as exc:  # RosettaSciIO raises many types for unknown or corrupt files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"Cannot read {path.name} as a spectrum image ({msg[:160]}): give a "
                             "file HyperSpy reads (.emd, .bcf, .pts, .hspy, .msa, ...).") from None
    return loaded if isinstance(loaded, list) else [loaded]


def _describe(sig):
    nav = "x".join(str(n) for n in sig.axes_manager.navigation_shape[::-1]) or "no navigation"
    sig_shape = "x".join(str(n) for n in sig.axes_manager.signal_shape[::-1])
    return f"'{sig.metadata.General.title}' ({type(sig).__name__}, {nav} x {sig_shape})"


def _is_eds(sig):
    return "EDS" in str(sig.metadata.Signal.get_item("signal_type", "")) or "EDS" in type(sig).__name__


def _candidates(signals):
    """Indices of the EDS spectrum images (2 navigation axes, 1 energy axis) among ``signals``."""
    found = [i for i, s in enumerate(signals) if s.axes_manager.signal_dimension == 1
             and s.axes_manager.navigation_dimension == 2 and _is_eds(s)]
    if not found:  # a 1-D signal without EDS type but with an energy axis is accepted too
        found = [i for i, s in enumerate(signals) if s.axes_manager.signal_dimension == 1
                 and s.axes_manager.navigation_dimension == 2
                 and str(s.axes_manager.signal_axes[0].units).lower() in ("kev", "ev")]
    return found


def _total(sig):
    t = sig.data.sum()
    return float(t.compute() if hasattr(t, "compute") else t)


def pick_spectrum_image(signals, source="the file", verbose=True, index=None):
    """From the signals of a file, pick the EDS spectrum image (2 navigation axes, 1 energy axis).

    Velox, Bruker and Phenom files hold several signals (images, per-detector sum spectra, line
    scans, one or more spectrum images). Rule: the spectrum image with the most pixels; among
    equally large ones, the one with the most counts (the longest acquisition). The choice is
    printed, with every spectrum image the file holds, so another can be chosen by ``index``
    (its number in that list: the file's signal number, ``SIGNAL`` / ``--signal``).

    Raises
    ------
    NotSpectrumImageError
        When the file holds no spectrum image, or ``index`` is not one of them.
    """
    found = _candidates(signals)
    if not found:
        raise _no_spectrum_image(signals, source)
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                or int(index) not in found:
            raise NotSpectrumImageError(
                f"SIGNAL={index!r}: {source} holds spectrum images as signals "
                f"{', '.join(f'#{i}' for i in found)}; choose one of those numbers.")
        chosen = signals[int(index)]
    else:
        size = {i: int(np.prod(signals[i].axes_manager.navigation_shape)) for i in found}
        biggest = [i for i in found if size[i] == max(size.values())]
        best = biggest[0] if len(biggest) == 1 else max(biggest, key=lambda i: _total(signals[i]))
        chosen = signals[best]
    if verbose and len(signals) > 1:
        idx = next(i for i, s in enumerate(signals) if s is chosen)
        print(f"{source} holds {len(signals)} signals; using #{idx}: {_describe(chosen)}")
        if len(found) > 1:
            others = ", ".join(f"#{i} {_describe(signals[i])}" for i in found if i != idx)
            rule = "chosen" if index is not None else "the largest, then the most counts"
            print(f"  ({rule}; other spectrum images: {others}; pick one with SIGNAL / --signal)")
    return chosen


def _no_spectrum_image(signals, source):
    what = "; ".join(_describe(s) for s in signals)
    if any(s.axes_manager.signal_dimension == 2 for s in signals) and len(signals) == 1:
        hint = "it is an image, not a spectrum image"
    elif any(s.axes_manager.navigation_dimension == 0 for s in signals) and len(signals) == 1:
        hint = "it is a single spectrum, not a spectrum image"
    elif any(s.axes_manager.navigation_dimension == 1 for s in signals) and len(signals) == 1:
        hint = "it is a line scan; a 2-D map is needed"
    else:
        hint = "none of its signals is an EDS spectrum image with two navigation axes"
    return NotSpectrumImageError(f"{source} holds no EDS spectrum image ({hint}: {what}): "
                                 "give a file with an EDS map (x, y, energy).")


#: Note shown for SEM data (notebook 05 repeats it next to the compositions).
SEM_NOTE = ("SEM EDS data: element maps and clustering apply as they are; the compositions use "
            "thin-film Cliff-Lorimer, an approximation for a bulk SEM sample (no absorption or "
            "fluorescence correction): read them as semi-quantitative.")


def is_sem(signal):
    """True for data recorded on a scanning electron microscope (loaded from an EDS_SEM file)."""
    return signal.metadata.get_item("Signal.original_signal_type", "") == "EDS_SEM"


def _as_eds_tem(sig):
    """The signal as ``EDS_TEM``, the type every later stage reads its metadata from.

    SEM data (``EDS_SEM``) are converted too, with the SEM's beam energy, detector and angles
    copied to the TEM place (the SEM record is kept) and ``Signal.original_signal_type`` noted,
    so quantification runs (with :data:`SEM_NOTE`) instead of refusing.
    """
    stype = str(sig.metadata.Signal.get_item("signal_type", ""))
    if stype == "EDS_SEM":
        warnings.warn(SEM_NOTE, stacklevel=3)
        sem = sig.metadata.get_item("Acquisition_instrument.SEM")
        sig.set_signal_type("EDS_TEM")
        if sem is not None and not sig.metadata.has_item("Acquisition_instrument.TEM"):
            sig.metadata.set_item("Acquisition_instrument.TEM", sem.deepcopy())
        sig.metadata.set_item("Signal.original_signal_type", "EDS_SEM")
        return sig
    if stype != "EDS_TEM":
        sig.set_signal_type("EDS_TEM")
    return sig


def _fix_energy_axis(sig):
    ax = sig.axes_manager.signal_axes[0]
    units = str(ax.units).strip().lower()
    if units == "ev":
        ax.scale, ax.offset, ax.units = ax.scale / 1000.0, ax.offset / 1000.0, "keV"
    elif units != "kev":
        if 0.001 <= ax.scale <= 0.1:  # a typical EDS channel width in keV
            ax.units = "keV"
        else:
            raise MetadataError(f"The energy axis has units {ax.units!r} and a channel width of "
                                f"{ax.scale}: calibrate it in keV (signal.axes_manager[-1].scale).")
    ax.name = "Energy"


def _check_counts(sig):
    data = sig.data
    if data.size == 0 or 0 in data.shape:
        raise DataError("The spectrum image is empty (no pixels or no channels): check the file.")
    if sig._lazy:
        import dask

        lo, hi, finite = dask.compute(data.min(), data.max(), np.isfinite(data).all())
    else:
        with np.errstate(invalid="ignore"):
            finite = bool(np.isfinite(data).all()) if data.dtype.kind == "f" else True
            lo, hi = (np.nanmin(data), np.nanmax(data))
    if not finite:
        raise DataError("The spectrum image holds NaN or infinite values: these are not X-ray "
                        "counts; fix or crop the data before analysis.")
    if lo < 0:
        raise DataError(f"The spectrum image holds negative counts (min {lo}): X-ray counts "
                        "cannot be negative; load the raw, not background-subtracted, data.")
    if hi == 0:
        raise DataError("The spectrum image holds no counts (all zero): check the acquisition "
                        "or the file.")


def _set_beam_energy(sig, beam_energy):
    key = "Acquisition_instrument.TEM.beam_energy"
    if beam_energy is not None:
        try:
            beam_energy = float(beam_energy)
        except (TypeError, ValueError):
            raise MetadataError(f"beam_energy must be a number in kV, got {beam_energy!r}.") from None
        if not 1 <= beam_energy <= 1000:
            raise MetadataError(f"beam_energy {beam_energy} kV is implausible: give it in kV "
                                "(e.g. 200).")
        sig.set_microscope_parameters(beam_energy=beam_energy)
    elif not sig.metadata.has_item(key):
        raise MetadataError("The file does not record the beam energy: pass beam_energy=200 "
                            "(kV; --beam-energy on the command line).")
    if not sig.metadata.has_item("Acquisition_instrument.TEM.Detector.EDS.energy_resolution_MnKa"):
        sig.set_microscope_parameters(energy_resolution_MnKa=DEFAULT_RESOLUTION_EV)


def _set_elements(sig, elements, kfactors=None):
    db = database()
    if elements is not None:
        if isinstance(elements, str):
            elements = [e.strip() for e in elements.replace(",", " ").split()]
        elements = list(dict.fromkeys(elements))
        bad = [e for e in elements if e not in db]
        if bad:
            raise ElementError(f"Unknown element symbol(s) {', '.join(map(repr, bad))}: use chemical "
                               "symbols such as 'Fe', 'Cd' (case-sensitive).")
        if sig.metadata.has_item("Sample.xray_lines"):
            del sig.metadata.Sample.xray_lines
        if sig.metadata.has_item("Sample.elements"):
            del sig.metadata.Sample.elements
        sig.set_elements(elements)
    present = list(sig.metadata.get_item("Sample.elements", []))
    if not present:
        raise MetadataError("No elements are recorded in the file and none were given: pass "
                            "elements=['Fe', 'S', ...] (--elements on the command line).")
    ax = sig.axes_manager.signal_axes[0]
    beam = sig._get_beam_energy()
    table = load_kfactors(kfactors)
    lines = [choose_line(e, (max(ax.low_value, 0.1), ax.high_value), beam, table).xray_line
             for e in present]
    if sig.metadata.has_item("Sample.xray_lines"):
        del sig.metadata.Sample.xray_lines
    sig.set_lines(lines)


def load_spectrum_image(source, elements=None, beam_energy=None, lazy=None, kfactors=None,
                        verbose=True, signal_index=None):
    """Load and validate an EDS spectrum image from a file or a demo name.

    Parameters
    ----------
    source : str or Path or EDSTEMSpectrum
        A file HyperSpy reads, a demo name (``"demo:hea6"``, ``"demo:hea7"``,
        ``"demo:hea7_coreshell"``, options as ``"demo:hea6?size=96&dose=40&seed=1"``), or an
        already loaded signal (validated on a copy).
    elements : list of str, optional
        Element symbols; replace those recorded in the file.
    beam_energy : float, optional
        Beam energy in kV, required when the file lacks it.
    lazy : bool, optional
        Load with dask; by default only files larger than 1 GiB are loaded lazily.
    kfactors : path or dict, optional
        k-factor table used to choose each element's line (default table when None).
    verbose : bool
        Say which signal was picked from multi-signal files.
    signal_index : int, optional
        Which spectrum image of a multi-signal file (its signal number, as printed); default
        the largest (see :func:`pick_spectrum_image`).

    Returns
    -------
    exspy.signals.EDSTEMSpectrum
        With an energy axis in keV, beam energy, elements and ``Sample.xray_lines`` set.

    Raises
    ------
    InputFileError, NotSpectrumImageError, MetadataError, ElementError, DataError
        With a one-line message naming the problem and the fix.
    """
    import hyperspy.signal

    if isinstance(source, hyperspy.signal.BaseSignal):
        sig = pick_spectrum_image([source], "the signal", verbose).deepcopy()
    elif demo.is_demo(source):
        sig = demo.load_demo(str(source), lazy=lazy)
    else:
        path = Path(source).expanduser()
        sig = pick_spectrum_image(_load_file(path, lazy), path.name, verbose, signal_index)
        sig.metadata.General.original_filename = path.name
    sig = _as_eds_tem(sig)
    _fix_energy_axis(sig)
    _check_counts(sig)
    _set_beam_energy(sig, beam_energy)
    _set_elements(sig, elements, kfactors)
    return sig
