"""Static checks over the code: pyflakes finds undefined names and unused imports."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyflakes_is_clean():
    result = subprocess.run([sys.executable, "-m", "pyflakes", "src", "tests", "bench", "examples"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.stdout + result.stderr == ""
