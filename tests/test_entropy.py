"""Configurational entropy: the paper's values, the ideal maximum, and error propagation."""
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import entropy, results
from helpers.errors import ElementError, ParameterError

TABLES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper_tables.json"


@pytest.fixture(scope="module")
def table1():
    if not TABLES.exists():
        pytest.skip("paper_tables.json is not available")
    return json.loads(TABLES.read_text())


def _cluster(t, wf, i):
    els = sorted(t["table1_6cation"][wf])
    return [t["table1_6cation"][wf][e][i][0] for e in els], els


def test_paper_table1_entropies(table1):
    """0.858 R (workflow 1, cluster iv), 0.529 R (i), 0.482 R (ii); maximum 0.896 R."""
    expected = table1["configurational_entropy_S_over_R"]["values"]
    for wf, key in (("workflow1", "table1_workflow1"), ("workflow2", "table1_workflow2")):
        got = [entropy.configurational_entropy(*_cluster(table1, wf, i))[0] for i in range(4)]
        np.testing.assert_allclose(got, expected[key], atol=6e-4)
    x, els = _cluster(table1, "workflow1", 3)
    assert entropy.configurational_entropy(x, els)[0] == pytest.approx(0.858, abs=5e-4)
    assert entropy.ideal_maximum(6) == pytest.approx(0.896, abs=5e-4)
    assert entropy.ideal_maximum(7) == pytest.approx(0.973, abs=5e-4)


def test_conventions_and_limits():
    els = ["Ag", "Cd", "Cu", "Fe", "Mn", "S", "Zn"]
    equal = [50 / 6] * 5 + [50.0] + [50 / 6]
    s, _ = entropy.configurational_entropy(equal, els)
    assert s == pytest.approx(entropy.ideal_maximum(6))
    s_fu, _ = entropy.configurational_entropy(equal, els, per="formula_unit")
    assert s_fu == pytest.approx(np.log(6))
    # S content does not change the cation-site entropy
    assert entropy.configurational_entropy([10] * 5 + [40] + [10], els)[0] == pytest.approx(s)
    # one cation: zero entropy; a zero fraction contributes nothing
    assert entropy.configurational_entropy([50, 0, 0, 0, 0, 50, 0], els)[0] == pytest.approx(0.0)
    with pytest.raises(ParameterError):
        entropy.configurational_entropy(equal, els, per="mole")
    with pytest.raises(ElementError):
        entropy.configurational_entropy([100.0], ["S"])
    with pytest.raises(ElementError):
        entropy.metal_to_sulfur([50, 50], ["Fe", "Cu"])


def test_error_propagation_matches_monte_carlo():
    """Linear propagation of a composition covariance agrees with sampling it."""
    rng = np.random.default_rng(0)
    els = ["Ag", "Cd", "Cu", "Fe", "Mn", "S", "Zn"]
    x = np.array([10.8, 7.0, 8.59, 10.5, 9.45, 51.1, 2.45])
    sd = np.array([0.3, 0.25, 0.25, 0.3, 0.3, 0.8, 0.12])
    corr = np.eye(7)
    corr[0, 1] = corr[1, 0] = -0.5  # Ag/Cd overlap makes their errors anticorrelated
    cov = corr * np.outer(sd, sd)
    s, se = entropy.configurational_entropy(x, els, cov)
    r, re = entropy.metal_to_sulfur(x, els, cov)
    draws = rng.multivariate_normal(x, cov, size=20000)
    s_mc = [entropy.configurational_entropy(d, els)[0] for d in draws]
    r_mc = [entropy.metal_to_sulfur(d, els)[0] for d in draws]
    assert se == pytest.approx(np.std(s_mc), rel=0.1)
    assert re == pytest.approx(np.std(r_mc), rel=0.1)
    assert r == pytest.approx((x.sum() - 51.1) / 51.1)


def test_entropy_table_from_quantification(tmp_path):
    """entropy_table / write_entropy on a real (simulated) quantification: the contract CSV."""
    import pandas as pd

    from helpers import quant, simulate

    s, truth = simulate.simulate("hea6", size=32, seed=3)
    q = quant.quantify_clusters(s, truth.labels, workflow=1)
    t = entropy.entropy_table([q])
    assert len(t) == len(q.clusters)
    for _, row in t.iterrows():
        comp = truth.compositions[truth.phase_names[int(row["cluster"])]]
        els = sorted(comp)
        s_true, _ = entropy.configurational_entropy([comp[e] for e in els], els)
        assert abs(row["s_conf_R"] - s_true) < max(3 * row["s_conf_R_err"], 0.02)
        assert row["s_conf_R_err_counting"] <= row["s_conf_R_err"] + 1e-12
        r_true, _ = entropy.metal_to_sulfur([comp[e] for e in els], els)
        assert abs(row["metal_to_sulfur"] - r_true) < 3 * row["metal_to_sulfur_err"]
    path = results.write_entropy(t, tmp_path)
    df = pd.read_csv(path)
    assert list(df.columns) == results.ENTROPY_COLUMNS


def test_site_model_follows_the_elements_and_can_be_set():
    assert entropy.site_model(["Cr", "Mn", "Fe", "Co", "Ni"]).kind == "alloy"
    m = entropy.site_model(["Ag", "Cu", "S", "Zn"])
    assert (m.kind, m.sites, m.anions, m.factor) == ("compound", ("Ag", "Cu", "Zn"), ("S",), 0.5)
    ox = entropy.site_model(["Co", "Cu", "Mg", "Ni", "O", "Zn"])      # a rock-salt HEO
    assert ox.kind == "compound" and ox.anions == ("O",)
    # a carbon support film and a Cu grid are not part of the phase
    m = entropy.site_model(["C", "Cr", "Cu", "Fe", "Ni"], exclude=["C", "Cu"])
    assert m.kind == "alloy" and m.sites == ("Cr", "Fe", "Ni") and m.excluded == ("C", "Cu")
    assert entropy.site_model(["Fe", "Ni", "O"], model="alloy").sites == ("Fe", "Ni", "O")
    with pytest.raises(ElementError):
        entropy.site_model(["Fe", "Ni"], model="compound")
    with pytest.raises(ParameterError):
        entropy.site_model(["Fe", "Ni"], model="glass")


def test_alloy_entropy_is_minus_sum_x_ln_x_per_atom_with_its_error():
    els = ["Co", "Cr", "Fe", "Mn", "Ni"]
    s, _ = entropy.configurational_entropy([20.0] * 5, els)
    assert s == pytest.approx(np.log(5))                       # 1.609 R, one mixed site
    assert entropy.ideal_maximum(5, kind="alloy") == pytest.approx(np.log(5))
    x = np.array([35.0, 10.0, 25.0, 10.0, 20.0])
    s, se = entropy.configurational_entropy(x, els, cov=np.diag((0.5 * np.ones(5)) ** 2))
    y = x / 100
    assert s == pytest.approx(-np.sum(y * np.log(y)))
    # Monte Carlo check of the propagated error
    rng = np.random.default_rng(0)
    draws = [entropy.configurational_entropy(x + rng.normal(0, 0.5, 5), els)[0]
             for _ in range(4000)]
    assert se == pytest.approx(np.std(draws), rel=0.1)
    # excluded carbon changes nothing but the renormalisation
    s2, _ = entropy.configurational_entropy(np.append(x * 0.9, 10.0), els + ["C"], exclude=["C"])
    assert s2 == pytest.approx(s)
    with pytest.raises(ElementError):
        entropy.metal_to_anion(x, els)


@pytest.mark.parametrize("x", [[20.0] * 5, [35.0, 10.0, 25.0, 10.0, 20.0]])
def test_entropy_error_covers_its_scatter_even_at_the_maximum(x):
    """At the equimolar maximum the first-order error vanishes; with the second-order term the
    reported sigma matches the Monte Carlo scatter (within 25 %) there and elsewhere."""
    els = ["Co", "Cr", "Fe", "Mn", "Ni"]
    x = np.array(x)
    cov = np.diag(np.full(5, 0.8 ** 2))
    s, se = entropy.configurational_entropy(x, els, cov=cov)
    rng = np.random.default_rng(1)
    draws = np.array([entropy.configurational_entropy(x + rng.normal(0, 0.8, 5), els)[0]
                      for _ in range(4000)])
    rms = np.sqrt(np.mean((draws - s) ** 2))       # spread about the reported value
    assert se > 0 and se == pytest.approx(rms, rel=0.25)
