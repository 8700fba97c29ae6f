"""Helpers for integration tests: Podman queries, running kernels, and what they leave behind."""

import json
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from podkernel.plan import KERNEL_LABEL

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/podkernel-test-base:bookworm"
DEBIAN_IMAGE = "localhost/podkernel-test-debian-ipykernel"
PYPI_IMAGE = "localhost/podkernel-test-pypi-ipykernel"
UID1000_IMAGE = "localhost/podkernel-test-uid1000"
IRKERNEL_IMAGE = "localhost/podkernel-test-irkernel"
LEFTOVER_GRACE_S = 10


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout


def podkernel_containers() -> list[str]:
    return podman("ps", "--all", "--filter", f"label={KERNEL_LABEL}", "--format", "{{.Names}}").split()


def podkernel_processes() -> list[str]:
    """This user's processes of podkernel's kernels: launchers, watchdogs, and the conmon of any container.

    Other users' processes are theirs: another user's kernel on the same machine is not a leftover.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if (
            "podkernel start" in command
            or "podkernel-watchdog" in command
            or (command.startswith("/usr/bin/conmon") and " -n podkernel-" in command)
        ):
            found.append(f"{entry.name}: {command.strip()}")
    return found


def leftovers(grace_s: float = LEFTOVER_GRACE_S) -> tuple[list[str], list[str]]:
    deadline = time.monotonic() + grace_s
    while True:
        containers, processes = podkernel_containers(), podkernel_processes()
        if (not containers and not processes) or time.monotonic() > deadline:
            return containers, processes
        time.sleep(0.2)


def assert_nothing_left(grace_s: float = LEFTOVER_GRACE_S) -> None:
    containers, processes = leftovers(grace_s)
    if containers:
        subprocess.run(["podman", "rm", "--force", "--time", "0", *containers], capture_output=True)
    assert (containers, processes) == ([], []), f"podkernel left {containers} and {processes} behind"


@contextmanager
def running_kernel(name: str, timeout: float = 120):
    """A started kernel and its client; shut down gracefully at the end."""
    manager, client = start_new_kernel(kernel_name=name, startup_timeout=timeout)
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel()


def execute(client, code: str, timeout: float = 60) -> tuple[dict, str]:
    """Run code; return the reply's content and everything printed to stdout."""
    printed = []

    def on_output(message):
        if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
            printed.append(message["content"]["text"])

    reply = client.execute_interactive(code, output_hook=on_output, timeout=timeout)
    return reply["content"], "".join(printed)


def container_of(manager) -> dict:
    """``podman inspect`` of the running container that serves this kernel manager."""
    names = podman(
        "ps", "--filter", f"label=io.podkernel.connection-file={manager.connection_file}", "--format", "{{.Names}}"
    ).split()
    assert len(names) == 1, names
    return json.loads(podman("container", "inspect", names[0]))[0]
