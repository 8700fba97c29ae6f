"""Helpers shared by unit and integration tests."""

import os
import subprocess
import sys
from pathlib import Path


def podkernel(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the podkernel command line as a user would, with this interpreter."""
    result = subprocess.run(
        [sys.executable, "-m", "podkernel", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else os.environ.copy(),
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podkernel {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def cpu_seconds(pid: int) -> float:
    """The CPU time process ``pid`` has used so far (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
