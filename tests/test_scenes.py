"""The random scene generator (helpers.scenes): seeded, small, fast."""
import numpy as np
import pytest
from scipy import ndimage

from helpers.errors import ParameterError
from helpers.xray.choice import choose_line
from helpers.xray.kfactors import load_kfactors
from helpers.simulate.scenes import (DOSE_RANGE, FRACTION_RANGE, KINDS, N_PHASES, SULFUR_RANGE,
                            random_scene, scene_suite)

# a short energy axis (512 channels of 40 eV, to 20.4 keV) keeps every scene under a second
FAST = dict(n_channels=512, channel_width=0.04)


@pytest.fixture(scope="module")
def scenes():
    """Twelve 40x40 scenes of the default distribution."""
    return [random_scene(seed, size=40, **FAST) for seed in range(12)]


def test_same_seed_same_bytes():
    a, ta = random_scene(3, size=32, **FAST)
    b, tb = random_scene(3, size=32, **FAST)
    assert a.data.dtype == b.data.dtype and a.data.tobytes() == b.data.tobytes()
    assert np.array_equal(ta.labels, tb.labels) and ta.params == tb.params
    c, _ = random_scene(4, size=32, **FAST)
    assert c.data.tobytes() != a.data.tobytes()


def test_an_override_leaves_the_other_draws_alone():
    _, g = random_scene(5, size=32, kind="grains", **FAST)
    _, l = random_scene(5, size=32, kind="lamellae", **FAST)
    assert g.params["scene"]["kind"] == "grains" and l.params["scene"]["kind"] == "lamellae"
    assert g.compositions == l.compositions
    assert g.params["dose"] == l.params["dose"]


def test_phase_count_and_area_fractions(scenes):
    kinds = set()
    for _, t in scenes:
        sc = t.params["scene"]
        kinds.add(sc["kind"])
        n = sc["n_phases"]
        assert N_PHASES[0] <= n <= N_PHASES[1] and len(t.phase_names) == n
        assert t.path_lengths.shape[-1] == n == t.unit_spectra.shape[0]
        lab = t.labels[t.labels >= 0]
        frac = np.bincount(lab, minlength=n) / lab.size
        np.testing.assert_allclose(frac, sc["fractions"], atol=1e-6)
        assert FRACTION_RANGE[0] <= frac.min() and frac.max() <= FRACTION_RANGE[1]
        assert all(FRACTION_RANGE[0] <= f <= FRACTION_RANGE[1] for f in sc["target_fractions"])
        # the map shows the phase that is there: label k <=> material of phase k only
        for k in range(n):
            assert np.all(t.path_lengths[..., k][t.labels != k] == 0)
        assert np.all(t.thickness[t.labels < 0] == 0) and np.all(t.thickness[t.labels >= 0] > 0)
    assert len(kinds) >= 3


def test_compositions(scenes):
    table = load_kfactors()
    fams = set()
    for s, t in scenes:
        sc = t.params["scene"]
        fams.add(sc["family"])
        for c in t.compositions.values():
            assert sum(c.values()) == pytest.approx(100.0, abs=1e-9)
            assert min(c.values()) > 0
            if sc["family"] == "alloy":
                assert "S" not in c
            else:
                assert SULFUR_RANGE[0] - 1e-9 <= c["S"] <= SULFUR_RANGE[1] + 1e-9
        for e in t.elements:   # every element is quantifiable with the package's table
            choose_line(e, (-0.1, 20.3), 200.0, table)
        assert sorted(s.metadata.Sample.elements) == sorted(t.elements)
        pair = sc["close_pair"]
        if pair:
            a, b = (t.compositions[t.phase_names[i]] for i in pair["phases"])
            d = {e: b[e] - a[e] for e in a}
            assert sorted(round(abs(v), 9) for v in d.values() if abs(v) > 1e-9) == [3.0, 3.0]
            assert sc["min_pair_difference"] == pytest.approx(3.0, abs=1e-5)
    assert fams == {"alloy", "sulfide"}


def test_lamellae_have_the_stated_widths():
    checked3 = 0
    for seed in range(5):
        _, t = random_scene(seed, size=48, kind="lamellae", vacuum=False, **FAST)
        sc = t.params["scene"]
        th = np.deg2rad(sc["angle_deg"])
        yy, xx = np.mgrid[0:48, 0:48] + 0.5
        u = xx * np.cos(th) + yy * np.sin(th)
        for u0, u1, k in sc["stripes"]:
            assert u1 - u0 == sc["stripe_width_px"][str(k)]
            inside = (u >= u0) & (u < u1)
            assert np.all(t.labels[inside] == k)
        if sc["orientation"] in ("vertical", "horizontal") and sc["three_px_phases"]:
            line = t.labels[0] if sc["orientation"] == "vertical" else t.labels[:, 0]
            for k in sc["three_px_phases"]:   # measured run lengths across the stripes
                runs = [len(list(g)) for g in _runs(line, k)]
                full = [s for s in sc["stripes"] if s[2] == k and s[1] <= 48]
                assert len(full) >= 1 and sorted(runs)[:len(full)] == [3] * len(full)
                checked3 += 1
    assert checked3 >= 2


def _runs(line, k):
    from itertools import groupby
    return [list(g) for v, g in groupby(line) if v == k]


def test_boundary_layer_is_thin():
    for seed in range(3):
        _, t = random_scene(seed, size=64, kind="boundary", **FAST)
        sc = t.params["scene"]
        w = sc["layer_width_px"]
        assert 1 <= w <= 3
        layer = t.labels == sc["layer_phase"]
        assert layer.any()
        # nothing but junctions survives an erosion one pixel wider than the layer
        survive = ndimage.binary_erosion(layer, np.ones((w + 1, w + 1), bool)).sum()
        assert survive <= 0.1 * layer.sum()


def test_particles_sit_on_a_support():
    s, t = random_scene(1, size=48, kind="particles", **FAST)
    sc = t.params["scene"]
    assert sc["support"] == "carbon" and (t.labels == -1).mean() > 0.3
    counts = s.data.sum(-1)
    assert counts[t.labels >= 0].mean() > 5 * counts[t.labels < 0].mean()


def test_dose_is_realised_within_poisson_noise():
    for seed, dose in ((0, 20.0), (2, 3.0)):
        s, t = random_scene(seed, size=48, dose=dose, **FAST)
        n = s.data.shape[0] * s.data.shape[1]
        mean = s.data.sum(-1).mean()
        assert abs(mean - dose) < 5 * np.sqrt(dose / n)
        assert t.params["dose"] == dose == t.params["scene"]["dose"]
    for _, t in (random_scene(seed, size=16, **FAST) for seed in range(6)):
        assert DOSE_RANGE[0] <= t.params["dose"] <= DOSE_RANGE[1]


def test_truth_round_trips_through_metadata(scenes):
    from helpers.demo import get_truth
    s, t = scenes[0]
    back = get_truth(s)
    assert back.preset == "random" == t.preset
    assert back.params == t.params and back.compositions == t.compositions
    assert back.phase_names == t.phase_names and back.elements == t.elements
    for a in ("labels", "thickness", "path_lengths", "unit_spectra", "background_spectrum"):
        np.testing.assert_array_equal(getattr(back, a), getattr(t, a))
    assert s.metadata.Acquisition_instrument.TEM.beam_energy == 200.0
    assert len(s.metadata.Sample.xray_lines) == len(t.elements)


def test_ceiling_is_computable_and_high_on_an_easy_scene():
    from ceiling import poisson_ceiling_ari
    s, t = random_scene(0, size=48, kind="grains", n_phases=2, close_pair=False, dose=100.0,
                        **FAST)
    c = poisson_ceiling_ari(s, t)
    assert 0.8 < c <= 1.0
    s, t = random_scene(3, size=32, **FAST)
    assert np.isfinite(poisson_ceiling_ari(s, t))


def test_scene_suite_and_bad_arguments():
    suite = scene_suite()
    assert len(suite) >= 30 + 3 and sum(sz == 128 for _, sz in suite) >= 30
    assert any(sz == 256 for _, sz in suite)
    assert len({seed for seed, _ in suite}) == len(suite)
    assert scene_suite(n=6, size=64, n_large=0) == [(i, 64) for i in range(6)]
    for bad in (dict(kind="foam"), dict(n_phases=7), dict(family="oxide"), dict(dose=0),
                dict(size=8)):
        with pytest.raises(ParameterError):
            random_scene(0, **{"size": 32, **FAST, **bad})
    assert set(KINDS) == {"grains", "lamellae", "particles", "boundary"}
