"""Shared fixtures: every test gets its own Jupyter data and path directories."""

import os
import subprocess
import sys

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


def podkernel(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the podkernel command line as a user would, with this interpreter."""
    result = subprocess.run(
        [sys.executable, "-m", "podkernel", *args], capture_output=True, text=True,
        env=env if env is not None else os.environ.copy(), stdin=subprocess.DEVNULL, timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podkernel {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result
