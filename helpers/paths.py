"""Where things live: the project root and the folders found from the environment.

One place for every path the package derives from its own location, so that a moved or
pip-installed package needs changing here only. Environment variables override each default.
"""
from __future__ import annotations

import os
from pathlib import Path

#: The project folder (the one holding ``helpers/``, ``notebooks/``, ``runs/``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def demo_dir() -> Path:
    """Folder of cached demo data: env ``HEA_DEMO_DIR``, else ``data/demo`` in the project."""
    env = os.environ.get("HEA_DEMO_DIR")
    return Path(env) if env else PROJECT_ROOT / "data" / "demo"


def real_data_dir() -> Path:
    """Folder of the optional real instrument files (env ``HEA_REAL_DATA``, else ``../shared/data/real``)."""
    env = os.environ.get("HEA_REAL_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data" / "real"


def notebooks_dir() -> Path:
    """The project's numbered notebooks."""
    return PROJECT_ROOT / "notebooks"
