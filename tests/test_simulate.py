"""The simulator's physics: dose, line positions, Cliff-Lorimer intensities, determinism."""
import numpy as np
import pytest

from helpers.simulate import simulate
from helpers.xray.choice import choose_line
from helpers.xray.kfactors import load_kfactors
from helpers.xray.lines import at_to_wt, line_energy


@pytest.mark.parametrize("preset,dose", [("hea6", 40.0), ("hea7", 15.0), ("hea7_coreshell", 25.0)])
def test_mean_counts_match_requested_dose(preset, dose):
    s, _ = simulate(preset, size=48, dose=dose, seed=1)
    mean = s.data.sum(-1).mean()
    assert abs(mean - dose) / dose < 0.05, (mean, dose)


def test_truth_is_consistent_with_labels():
    s, truth = simulate("hea7_coreshell", size=64, seed=2)
    assert truth.labels.shape == s.data.shape[:2]
    assert set(np.unique(truth.labels)) == {-1, 0, 1}
    for comp in truth.compositions.values():
        assert sum(comp.values()) == pytest.approx(100.0)
    # core pixels see core material, support pixels see no material
    assert (truth.path_lengths[truth.labels == 1, 1] > 0).all()
    assert (truth.thickness[truth.labels == -1] == 0).all()
    # the core really is enriched in Co, Mn and Zn
    for el in ("Co", "Mn", "Zn"):
        assert truth.compositions["core"][el] > 2 * truth.compositions["shell"][el]


def _least_overlapped_phase(truth, element, energy, tol=0.06):
    """The phase where ``element``'s main line is least disturbed by other elements' lines."""
    from exspy.material import elements as db

    def score(comp):
        others = 0.0
        for el, c in comp.items():
            if el == element:
                continue
            xl = db[el]["Atomic_properties"]["Xray_lines"]
            for ln in xl.keys():
                if abs(xl[ln]["energy (keV)"] - energy) < tol:
                    others += c * xl[ln]["weight"]
        return comp[element] / (1e-9 + others) if others else comp[element] * 1e9

    return max(range(len(truth.phase_names)),
               key=lambda p: score(truth.compositions[truth.phase_names[p]]))


@pytest.mark.parametrize("preset", ["hea6", "hea7"])
def test_strong_line_centres_within_one_channel(preset):
    from scipy.optimize import curve_fit

    s, truth = simulate(preset, size=16, dose=20000, seed=3)
    axis = s.axes_manager.signal_axes[0]
    energies, width = axis.axis, axis.scale
    for xray_line in s.metadata.Sample.xray_lines:
        el, line = xray_line.split("_")
        e0 = line_energy(el, line)
        phase = _least_overlapped_phase(truth, el, e0)
        spec = s.data[truth.labels == phase].sum(0).astype(float)
        win = np.abs(energies - e0) < 0.1
        x, y = energies[win], spec[win]

        def model(x, a, c, sig, b0, b1):
            return a * np.exp(-0.5 * ((x - c) / sig) ** 2) + b0 + b1 * (x - e0)

        p, _ = curve_fit(model, x, y, p0=[y.max(), e0, 0.05, y.min(), 0.0])
        assert abs(p[1] - e0) < width, (xray_line, p[1], e0)


def test_window_integration_recovers_cliff_lorimer_ratios():
    """High dose, lines free of overlaps: background-subtracted windows give w/k ratios within 3 %."""
    import exspy

    s, truth = simulate("hea6", size=16, dose=20000, seed=4)
    phase = truth.phase_names.index("chalcopyrite")
    spec = exspy.signals.EDSTEMSpectrum(s.data[truth.labels == phase].sum(0).astype(float))
    spec.axes_manager.signal_axes[0].update_from(s.axes_manager.signal_axes[0],
                                                 ["scale", "offset", "units", "name"])
    spec.metadata.Acquisition_instrument = s.metadata.Acquisition_instrument.deepcopy()
    lines = ["S_Ka", "Fe_Ka", "Cu_Ka"]
    spec.set_elements(["S", "Fe", "Cu"])
    spec.set_lines(lines)
    bw = spec.estimate_background_windows(xray_lines=lines, line_width=[2.0, 2.0],
                                          windows_width=1.0)
    intens = spec.get_lines_intensity(xray_lines=lines, background_windows=bw,
                                      integration_windows=3.0)
    measured = {i.metadata.Sample.xray_lines[0]: float(i.data[0] if i.data.ndim else i.data)
                for i in intens}
    table = load_kfactors()
    wt = at_to_wt(truth.compositions["chalcopyrite"])
    expect = {ln: wt[ln.split("_")[0]] / table[tuple(ln.split("_"))].k for ln in lines}
    for ln in ("Fe_Ka", "Cu_Ka"):
        ratio, true_ratio = measured[ln] / measured["S_Ka"], expect[ln] / expect["S_Ka"]
        assert abs(ratio / true_ratio - 1) < 0.03, (ln, ratio, true_ratio)


def test_same_seed_same_bytes_and_different_seed_differs():
    a, ta = simulate("hea6", size=24, seed=7)
    b, tb = simulate("hea6", size=24, seed=7)
    c, _ = simulate("hea6", size=24, seed=8)
    assert a.data.tobytes() == b.data.tobytes()
    assert np.array_equal(ta.labels, tb.labels)
    assert a.data.tobytes() != c.data.tobytes()


def test_metadata_complete():
    s, truth = simulate("hea6", size=16, n_channels=1024, seed=0)
    md = s.metadata
    assert md.Acquisition_instrument.TEM.beam_energy == 200.0
    assert md.Acquisition_instrument.TEM.Detector.EDS.energy_resolution_MnKa == 130.0
    assert list(md.Sample.elements) == truth.elements
    assert len(md.Sample.xray_lines) == len(truth.elements)
    e_ax = s.axes_manager.signal_axes[0]
    assert e_ax.units == "keV" and e_ax.size == 1024
    assert all(ax.units == "nm" for ax in s.axes_manager.navigation_axes)
    # the line the quantification will use is the one the loader chooses
    for ln in md.Sample.xray_lines:
        el = ln.split("_")[0]
        assert choose_line(el, (e_ax.low_value, e_ax.high_value), 200.0).xray_line == ln


def test_bad_simulation_parameters():
    from helpers.errors import ParameterError

    with pytest.raises(ParameterError, match="Unknown demo preset"):
        simulate("hea9")
    with pytest.raises(ParameterError, match="dose"):
        simulate("hea6", size=16, dose=0)
    with pytest.raises(ParameterError, match="size"):
        simulate("hea6", size=2)
