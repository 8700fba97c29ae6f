"""Integration fixtures: real Podman, real test images, real kernels, and a check that nothing is left."""

import shutil
import subprocess
import unittest

import pytest

from helpers import podkernel
from kernel_helpers import ROOT, assert_nothing_left


@pytest.fixture(scope="session", autouse=True)
def test_images():
    """Build the test images once (a rerun only finds them by tag)."""
    if shutil.which("podman") is None:
        pytest.fail("integration tests need Podman: run ./scripts/test, which installs it")
    subprocess.run([str(ROOT / "tests" / "images" / "build-test-images")], check=True)


@pytest.fixture(autouse=True)
def nothing_left_behind(request):
    """After each test: no podkernel container and no launcher or watchdog process."""
    yield
    if not isinstance(request.instance, unittest.TestCase):  # those check in tearDownClass
        grace = request.node.get_closest_marker("cleanup_grace")
        assert_nothing_left(*(grace.args if grace else ()))


@pytest.fixture
def install(jupyter_dirs):
    """Install a kernel with the real command line; return its name."""

    def run(*args: str) -> str:
        result = podkernel("install", *args, check=True)
        first_line = result.stdout.splitlines()[0]
        assert first_line.startswith("Installed kernel ")
        return first_line.split()[2]

    return run
