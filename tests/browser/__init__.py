"""Helpers for the end-to-end JupyterLab browser test (tests/test_browser.py)."""
