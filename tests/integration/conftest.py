"""Integration fixtures: real Podman, real test images, real kernels, and a check that nothing is left."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import pytest
from remote_helpers import SSH_PERSIST_S, Remote

from helpers import podkernel
from kernel_helpers import BASE_IMAGE, DEBIAN_IMAGE, PYPI_IMAGE, ROOT, Preexisting, assert_nothing_left, leftovers


@pytest.fixture(scope="session", autouse=True)
def test_images():
    """Build the test images once (a rerun only finds them by tag)."""
    if shutil.which("podman") is None:
        pytest.fail("integration tests need Podman: run ./scripts/test, which installs it")
    subprocess.run([str(ROOT / "tests" / "images" / "build-test-images")], check=True)
    Preexisting.note()


@pytest.fixture(autouse=True)
def nothing_left_behind(request):
    """After each test: no podkernel container, no launcher or watchdog process, no build's leftovers."""
    yield
    if not isinstance(request.instance, unittest.TestCase):  # those check in tearDownClass
        grace = request.node.get_closest_marker("cleanup_grace")
        assert_nothing_left(*(grace.args if grace else ()))


@pytest.fixture
def install(jupyter_dirs):
    """Install a kernel with the real command line; return its name.

    The trial start is left out (``--no-check``) unless ``trial=True``: test_trial.py tests it,
    and many kernels here are made to misbehave on purpose.
    """

    def run(*args: str, trial: bool = False) -> str:
        result = podkernel("install", *([] if trial else ["--no-check"]), *args, check=True)
        first_line = result.stdout.splitlines()[0]
        assert first_line.startswith("Installed kernel ")
        return first_line.split()[2]

    return run


class Intruder:
    """Another local user attacking kernels' ports (tests/integration/intruder.py), through its socket."""

    def __init__(self, path: str):
        self.path = path

    def request(self, **request) -> dict:
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(self.path)
            connection.sendall(json.dumps(request).encode() + b"\n")
            answer = json.loads(connection.makefile().readline())
        assert answer["uid"] != os.getuid(), "the intruder must be another user"
        return answer


@pytest.fixture(scope="session")
def intruder():
    """As root, started here as nobody; in the rootless run, scripts/test-rootless starts it."""
    path = os.environ.get("PODKERNEL_TEST_INTRUDER")
    process = None
    if not path:
        if os.geteuid() != 0:
            pytest.fail("no intruder: run these tests as root, or through scripts/test-rootless")
        path = f"/tmp/podkernel-intruder-{os.getpid()}.sock"
        process = subprocess.Popen(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
                (Path(__file__).with_name("intruder.py")).read_text(),
                path,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout.readline().strip() == "ready"
    yield Intruder(path)
    if process is not None:
        process.kill()
        process.wait()
        os.unlink(path)


@pytest.fixture
def docker_host(tmp_path, monkeypatch):
    """A Docker-compatible API on a private socket (podman system service), as DOCKER_HOST."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on this machine")
    socket_path = tmp_path / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    deadline = time.monotonic() + 30
    while subprocess.run(["docker", "version"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline and service.poll() is None, "podman system service did not come up"
        time.sleep(0.2)
    yield
    # The check for leftovers comes after this teardown: removals still under way (a watchdog's,
    # a launcher's) must find the API they talk to, as they would find a real Docker daemon.
    leftovers()
    service.terminate()
    service.wait(timeout=30)


@pytest.fixture(scope="session")
def remote(tmp_path_factory):
    """As root: bring the second host up (and down after the last test),  give it the test images, and make a home
    whose known_hosts knows its key (as ssh and Podman read it)."""
    if os.geteuid() != 0:
        pytest.skip("the simulated remote host needs root (tests/remote-host)")
    state = Path(tempfile.mkdtemp(prefix="podkernel-remote-test-", dir="/var/tmp"))
    script = str(ROOT / "tests" / "remote-host")
    up = subprocess.run([script, "up", str(state), "/tmp", str(ROOT), "/home"], capture_output=True, text=True)
    if up.returncode != 0:
        subprocess.run([script, "down", str(state)], capture_output=True)
        pytest.fail(f"tests/remote-host up failed: {up.stderr.strip()}")
    variables = dict(line.split("=", 1) for line in up.stdout.splitlines() if "=" in line)
    variables = {key: value.strip("'") for key, value in variables.items()}
    home = tmp_path_factory.mktemp("home")
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "known_hosts").write_text(variables["REMOTE_KNOWN_HOSTS"] + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("PODKERNEL_SSH_PERSIST_S", str(SSH_PERSIST_S))
        try:
            subprocess.run(
                [script, "load", str(state), PYPI_IMAGE, DEBIAN_IMAGE, BASE_IMAGE], check=True, capture_output=True
            )
            yield Remote(variables, state)
        finally:
            subprocess.run([script, "down", str(state)], capture_output=True)
