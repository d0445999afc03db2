"""Shared pytest fixtures (small, seeded simulations). Append new fixtures at the end."""
import os
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))        # tests/ceiling.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # helpers without pip install


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own result cache (never the user's ``.cache/``)."""
    old = os.environ.get("HEA_CACHE_DIR")
    os.environ["HEA_CACHE_DIR"] = str(tmp_path_factory.mktemp("hea_cache"))
    yield
    if old is None:
        os.environ.pop("HEA_CACHE_DIR", None)
    else:
        os.environ["HEA_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def hea6_96():
    """(signal, truth) of the hea6 preset, 96x96 pixels, default dose, seed 0."""
    from helpers.simulate import simulate
    return simulate("hea6", size=96, seed=0)


@pytest.fixture(scope="session")
def hea7_96():
    """(signal, truth) of the hea7 preset (uniform particles on carbon), 96x96, seed 0."""
    from helpers.simulate import simulate
    return simulate("hea7", size=96, seed=0)
