"""Loader: demo names, real instrument files, and one test per kind of bad input."""
import hashlib
import warnings

import numpy as np
import pytest

from helpers import errors
from helpers.demo import demo_name, get_truth, parse_demo
from helpers.io import load_spectrum_image
from helpers.paths import real_data_dir

REAL = real_data_dir()
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real instrument files not found in {REAL}")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _energy_signal(data, signal_type=None, beam_energy=200.0, elements=("Fe", "S")):
    import hyperspy.api as hs

    s = hs.signals.Signal1D(np.asarray(data))
    ax = s.axes_manager[-1]
    ax.units, ax.scale, ax.offset, ax.name = "keV", 0.01, 0.0, "Energy"
    if signal_type:
        s.set_signal_type(signal_type)
        if beam_energy:
            s.set_microscope_parameters(beam_energy=beam_energy)
        if elements:
            s.set_elements(list(elements))
    return s


# ---------------------------------------------------------------- demo data
def test_demo_name_with_options_and_truth():
    s = load_spectrum_image("demo:hea6?size=32&dose=20&seed=5")
    assert s.data.shape[:2] == (32, 32)
    truth = get_truth(s)
    assert truth.labels.shape == (32, 32) and truth.params["seed"] == 5
    assert s.metadata.Sample.xray_lines == ["Ag_La", "Cd_La", "Cu_Ka", "Fe_Ka", "Mn_Ka", "S_Ka", "Zn_Ka"]
    assert demo_name("demo:hea6?size=32&dose=20&seed=5") == "hea6_dose20_seed5_size32"


def test_demo_bad_names_and_options():
    with pytest.raises(errors.InputFileError, match="Unknown demo 'hea9'"):
        load_spectrum_image("demo:hea9")
    with pytest.raises(errors.ParameterError, match="Unknown demo option 'colour'"):
        parse_demo("demo:hea6?colour=3")
    with pytest.raises(errors.ParameterError, match="must be a number"):
        parse_demo("demo:hea6?size=big")


def test_user_elements_replace_file_elements_and_beam_energy():
    s = load_spectrum_image("demo:hea7?size=16", elements=["Ag", "S"], beam_energy=300)
    assert list(s.metadata.Sample.elements) == ["Ag", "S"]
    assert s.metadata.Sample.xray_lines == ["Ag_La", "S_Ka"]
    assert s.metadata.Acquisition_instrument.TEM.beam_energy == 300


# ---------------------------------------------------------------- real instrument files
@needs_real
def test_real_bruker_bcf():
    path = REAL / "test_TEM.bcf"
    before = _sha(path)
    s = load_spectrum_image(path)
    assert s.data.shape == (64, 64, 2048)
    assert s.metadata.Acquisition_instrument.TEM.beam_energy == 200
    assert set(s.metadata.Sample.elements) == {"Cu", "O", "Pd", "Ti"}
    assert "Pd_La" in s.metadata.Sample.xray_lines
    assert s.axes_manager.signal_axes[0].units == "keV"
    assert 6.0 < s.data.sum(-1).mean() < 6.7
    assert _sha(path) == before


@needs_real
def test_real_velox_picks_the_spectrum_image(capsys):
    s = load_spectrum_image(REAL / "velox_SI_16x16.emd")
    assert s.data.shape == (16, 16, 4096)
    assert "using #" in capsys.readouterr().out  # says which signal it picked
    assert s.metadata.Acquisition_instrument.TEM.beam_energy == 300
    assert set(s.metadata.Sample.elements) == {"C", "O", "Ca", "Cu"}


@needs_real
def test_real_velox_eels_eds_lazy():
    s = load_spectrum_image(REAL / "velox_EELS_EDS_128x128.emd", lazy=True)
    assert s._lazy and s.data.shape == (128, 128, 4096)
    assert set(s.metadata.Sample.elements) == {"O", "Fe", "Co"}
    assert 0.6 < float(s.data.sum(-1).mean().compute()) < 0.75


# ---------------------------------------------------------------- bad input, one test each
def test_missing_file(tmp_path):
    with pytest.raises(errors.InputFileError, match="No such file"):
        load_spectrum_image(tmp_path / "nothere.emd")


def test_unreadable_file(tmp_path):
    bad = tmp_path / "notes.emd"
    bad.write_bytes(b"this is not an EMD file" * 10)
    before = _sha(bad)
    with pytest.raises(errors.InputFileError, match="Cannot read notes.emd"):
        load_spectrum_image(bad)
    assert _sha(bad) == before


def test_unsupported_format(tmp_path):
    bad = tmp_path / "table.xyz123"
    bad.write_text("1,2,3\n")
    with pytest.raises(errors.InputFileError, match="Cannot read"):
        load_spectrum_image(bad)


def test_image_is_not_a_spectrum_image(tmp_path):
    import hyperspy.api as hs

    path = tmp_path / "haadf.hspy"
    hs.signals.Signal2D(np.ones((8, 8))).save(path)
    with pytest.raises(errors.NotSpectrumImageError, match="it is an image"):
        load_spectrum_image(path)


def test_single_spectrum_has_no_navigation_axes(tmp_path):
    path = tmp_path / "sum.hspy"
    _energy_signal(np.ones(100), "EDS_TEM").save(path)
    with pytest.raises(errors.NotSpectrumImageError, match="single spectrum"):
        load_spectrum_image(path)


def test_line_scan_is_refused():
    with pytest.raises(errors.NotSpectrumImageError, match="line scan"):
        load_spectrum_image(_energy_signal(np.ones((5, 100)), "EDS_TEM"))


def test_missing_beam_energy(tmp_path):
    path = tmp_path / "nobeam.hspy"
    _energy_signal(np.ones((4, 4, 1000)), "EDS_TEM", beam_energy=None).save(path)
    with pytest.raises(errors.MetadataError, match="beam energy.*beam_energy=200"):
        load_spectrum_image(path)
    s = load_spectrum_image(path, beam_energy=200)  # and the fix works
    assert s.metadata.Acquisition_instrument.TEM.beam_energy == 200


def test_no_elements_anywhere():
    s = _energy_signal(np.ones((4, 4, 2000)), "EDS_TEM", elements=None)
    with pytest.raises(errors.MetadataError, match="No elements"):
        load_spectrum_image(s)


def test_unknown_element():
    with pytest.raises(errors.ElementError, match="Unknown element symbol.*'Xx'"):
        load_spectrum_image("demo:hea6?size=16", elements=["Fe", "Xx"])


def test_element_without_line_in_range():
    s = _energy_signal(np.ones((4, 4, 60)), "EDS_TEM")  # 0-0.6 keV: no Fe line at all
    with pytest.raises(errors.ElementError, match="Fe has no line"):
        load_spectrum_image(s)


def test_fe_l_line_is_quantified_when_the_k_line_is_out_of_range():
    """0-3 keV: Fe Ka is outside, so Fe La (0.70 keV) is used, with the model's k-factor."""
    s = load_spectrum_image(_energy_signal(np.ones((4, 4, 300)), "EDS_TEM"))
    assert "Fe_La" in s.metadata.Sample.xray_lines


@pytest.mark.parametrize("data,match", [
    (np.zeros((4, 4, 0)), "empty"),
    (np.zeros((4, 4, 100)), "no counts"),
    (np.where(np.eye(4)[..., None] > 0, np.nan, 1.0) * np.ones((4, 4, 100)), "NaN"),
    (np.full((4, 4, 100), np.inf), "NaN or infinite"),
    (-np.ones((4, 4, 100)), "negative"),
])
def test_unusable_counts(data, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = _energy_signal(data, "EDS_TEM")
    with pytest.raises(errors.DataError, match=match):
        load_spectrum_image(s)


def test_errors_are_package_exceptions_and_builtins():
    assert issubclass(errors.InputFileError, FileNotFoundError)
    for cls in (errors.NotSpectrumImageError, errors.MetadataError, errors.DataError):
        assert issubclass(cls, errors.HEAError) and issubclass(cls, ValueError)


def test_demo_cache_roundtrip_and_stale_version(tmp_path, monkeypatch):
    import helpers.demo as hio

    monkeypatch.setenv("HEA_DEMO_DIR", str(tmp_path))
    monkeypatch.setattr(hio, "DEMO_CACHE_MIN_PIXELS", 0)
    a = load_spectrum_image("demo:hea7?size=24&seed=2")
    cached = tmp_path / "hea7_seed2_size24.hspy"
    assert cached.is_file()
    b = load_spectrum_image("demo:hea7?size=24&seed=2")
    assert np.array_equal(a.data, b.data) and get_truth(b).labels.shape == (24, 24)
    # a file written by another simulator version is not trusted: it is regenerated
    monkeypatch.setattr(hio, "SIMULATOR_VERSION", hio.SIMULATOR_VERSION + 1)
    mtime = cached.stat().st_mtime_ns
    load_spectrum_image("demo:hea7?size=24&seed=2")
    assert cached.stat().st_mtime_ns != mtime
