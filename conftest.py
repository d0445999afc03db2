"""Loaded by pytest for every test path of the project (tests/ and, with nbval, notebooks/):
kernels started by the tests and by nbval inherit this environment, so long steps show no
progress bar there (helpers.progress): a bar's text changes from run to run and would differ from
the committed outputs."""
import os

os.environ["HEA_PROGRESS"] = "0"
