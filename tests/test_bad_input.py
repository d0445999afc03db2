"""Bad input not covered elsewhere (see the README's troubleshooting table): SEM data and
k-factor files that lack an element. Each asserts the type, the message and that no file changed."""
import hashlib
import warnings

import numpy as np
import pytest

from helpers import errors, quant
from helpers.io import load_spectrum_image
from helpers.simulate import simulate


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small():
    return simulate("hea6", size=24, seed=3)


def test_sem_data_loads_with_a_warning_saying_what_works(tmp_path, small):
    s, _ = small
    sem = s.deepcopy()
    sem.set_signal_type("EDS_SEM")
    path = tmp_path / "sem_map.hspy"
    sem.save(path)
    before = _sha(path)
    with pytest.warns(UserWarning, match="SEM EDS data: element maps and clustering apply as "
                                         "they are; the compositions use thin-film Cliff-Lorimer"):
        loaded = load_spectrum_image(path)
    # quantified like TEM data (no refusal), remembered as SEM, the SEM record kept
    from helpers.io import is_sem
    assert loaded.metadata.Signal.signal_type == "EDS_TEM" and is_sem(loaded)
    assert loaded.metadata.Acquisition_instrument.TEM.beam_energy == \
        s.metadata.Acquisition_instrument.TEM.beam_energy
    assert _sha(path) == before


def test_kfactor_file_lacking_an_element_uses_the_default_and_says_so(tmp_path, small):
    s, truth = small
    kf = tmp_path / "my_kfactors.csv"
    kf.write_text("element,line,k_factor,k_factor_err\nFe,Ka,1.40,0.04\nCu,Ka,1.60,0.05\n")
    before = _sha(kf)
    with pytest.warns(errors.KFactorWarning, match=r"my_kfactors.csv lacks Ag, Cd, Mn, S, Zn: "
                                                    r"using the package.s values"):
        lines = quant.quant_lines(s, kfactors=kf)
    by_el = {k.element: k for k in lines}
    assert by_el["Fe"].k == 1.40 and by_el["Fe"].source == "my_kfactors.csv"
    assert by_el["S"].source == "package 200 kV table"
    assert _sha(kf) == before


def test_element_in_no_kfactor_table_gets_the_model_and_says_so(tmp_path):
    """Ba is in neither the user's file nor the package table: the standardless model gives its
    k-factor (source and larger error recorded) and a KFactorWarning names it."""
    import hyperspy.api as hs

    s = hs.signals.Signal1D(np.ones((4, 4, 2000)))
    s.axes_manager[-1].units, s.axes_manager[-1].scale = "keV", 0.01
    s.set_signal_type("EDS_TEM")
    s.set_microscope_parameters(beam_energy=200)
    kf = tmp_path / "k.csv"
    kf.write_text("element,line,k_factor,k_factor_err\nFe,Ka,1.40,0.04\n")
    before = _sha(kf)
    loaded = load_spectrum_image(s, elements=["Fe", "Ba"], kfactors=kf)
    assert loaded.metadata.Sample.xray_lines == ["Ba_La", "Fe_Ka"]
    with pytest.warns(errors.KFactorWarning, match="lacks Ba"):
        lines = quant.quant_lines(loaded, kfactors=kf)
    ba = next(x for x in lines if x.element == "Ba")
    assert ba.source.startswith("model") and ba.k_err / ba.k > 0.2
    assert _sha(kf) == before


def test_kfactor_file_with_wrong_columns(tmp_path):
    from helpers.xray.kfactors import load_kfactors

    kf = tmp_path / "bad.csv"
    kf.write_text("el,k\nFe,1.3\n")
    with pytest.raises(errors.KFactorError, match="must have the columns element,line,k_factor"):
        load_kfactors(kf)
    kf.write_text("element,line,k_factor,k_factor_err\nFe,Ka,-1,0.1\n")
    with pytest.raises(errors.KFactorError, match="k_factor must be > 0"):
        load_kfactors(kf)


def test_warning_and_error_types_are_the_packages():
    assert issubclass(errors.KFactorWarning, errors.HEAWarning)
    assert issubclass(errors.KFactorError, errors.HEAError)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(errors.KFactorWarning):
            warnings.warn("x", errors.KFactorWarning)
