"""Shared fixtures: every test gets its own Jupyter data and path directories."""

import pytest


@pytest.fixture
def jupyter_dirs(tmp_path, monkeypatch):
    """A private JUPYTER_DATA_DIR (where --user installs go) that is also the only JUPYTER_PATH."""
    data = tmp_path / "jupyter-data"
    data.mkdir()
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    return data
