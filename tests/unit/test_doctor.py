"""doctor runs the checks that its engine names, in that order, and a way to the engine that fails
stops the checks that need it, each with a fix."""

import os

from podkernel.doctor.check import FAIL, PASS
from podkernel.doctor.checks import Doctor
from podkernel.engines.base import HostFacts
from podkernel.engines.cli_engine import CliEngine
from podkernel.errors import PodkernelError


class StandInEngine(CliEngine):
    """Answers doctor's questions without an engine; its way there may fail."""

    name = "stand-in"
    display_name = "Stand-in"
    install_hint = "nothing to install"

    def __init__(self, checks: tuple[str, ...], way_fails: bool = False, driver: str = "overlay"):
        super().__init__()
        self._executable = "/bin/true"
        self.checks, self.way_fails, self.driver = checks, way_fails, driver

    def doctor_checks(self):
        return self.checks

    def connect(self):
        if self.way_fails:
            raise PodkernelError("cannot reach the host -- check that it is up")
        return "the host: connected"

    def gpu_args(self, kind):
        return []

    def kernel_args(self, launch, run_args):
        return []

    def host_facts(self):
        return HostFacts("9.9", True, self.driver, "stand-in runtime")

    def monitors(self):
        return []

    def exit_status(self, label):
        return None

    def containers(self, label):
        return []


def test_the_engine_names_the_checks_and_their_order():
    results = Doctor(None, StandInEngine(("storage", "engine_installed", "mode", "watchdog_tool"))).run()
    assert [check.name for check in results] == ["Storage", "Stand-in", "Mode", "Watchdog"]
    assert results[0].status == FAIL  # storage asked before the engine was: it says to fix that first
    assert [check.status for check in results[1:]] == [PASS, PASS, PASS]
    assert results[2].detail == "rootless"


def test_a_failed_way_to_the_engine_is_one_row_with_its_fix_and_stops_what_needs_it():
    results = Doctor(None, StandInEngine(("ssh_link", "engine_installed", "remote_tools"), way_fails=True)).run()
    assert results[0] == ("SSH", FAIL, "cannot reach the host", "check that it is up")
    assert all(check.status == FAIL and "fix the SSH check first" in check.fix for check in results[1:])


def test_vfs_storage_is_a_warning_with_the_fix():
    engine = StandInEngine(("engine_installed", "storage"), driver="vfs")
    storage = Doctor(None, engine).run()[1]
    assert storage.status == "warn" and 'driver = "overlay"' in storage.fix


def test_the_path_check_names_what_root_lacks(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    path = Doctor(None, StandInEngine(("search_path",))).run()[0]
    if os.geteuid() == 0:
        assert path.status == "warn" and "/usr/sbin" in path.detail
    else:
        assert path.status == PASS


def test_the_listener_that_doctor_runs_in_a_container_greets_its_first_connection():
    import socket
    import subprocess
    import sys
    import time

    from podkernel.doctor.checks import LISTENER

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = subprocess.Popen([sys.executable, "-c", LISTENER, str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
                    assert client.recv(64) == b"podkernel-doctor"
                    break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "the listener never listened"
                time.sleep(0.05)
        assert listener.wait(timeout=5) == 0
    finally:
        listener.kill()
