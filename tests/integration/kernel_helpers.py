"""Helpers for integration tests: Podman queries, running kernels, and what they leave behind."""

import json
import os
import re
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager

from podkernel.engines.cli_engine import WATCHDOG_NAME
from podkernel.model.labels import KERNEL_LABEL

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/podkernel-test-base:bookworm"
DEBIAN_IMAGE = "localhost/podkernel-test-debian-ipykernel"
PYPI_IMAGE = "localhost/podkernel-test-pypi-ipykernel"
UID1000_IMAGE = "localhost/podkernel-test-uid1000"
IRKERNEL_IMAGE = "localhost/podkernel-test-irkernel"
LEFTOVER_GRACE_S = 10


def podman(*args: str) -> str:
    result = subprocess.run(["podman", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def podkernel_containers() -> list[str]:
    return podman("ps", "--all", "--filter", f"label={KERNEL_LABEL}", "--format", "{{.Names}}").split()


def podkernel_processes() -> list[str]:
    """This user's processes of podkernel's kernels and builds: launchers, watchdogs and what
    they run, builds podkernel started, the conmon of any container, and any runtime ``init``
    (which lives for milliseconds of a start, or of a build's RUN step).

    Other users' processes are theirs: another user's kernel on the same machine is not a leftover.
    """
    found = []
    iid_prefix = os.path.join(tempfile.gettempdir(), "podkernel-")
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
            or "podkernel-build-watchdog" in command
            or "podkernel remove-abandoned" in command
            or "podkernel stop-build" in command
            or (command.startswith("ssh ") and "podkernel-session" in command)  # a remote kernel's session
            or (" build " in command and f"--iidfile {iid_prefix}" in command)
            or command.strip().endswith(("runc init", "crun init"))
            or (command.startswith("/usr/bin/conmon") and " -n podkernel-" in command)
        ):
            found.append(f"{entry.name}: {command.strip()}")
    return found


def runtime_states() -> set[str]:
    """The containers, builds' RUN steps included, that the OCI runtime (runc) keeps state for:
    the state of a container whose start was killed midway outlives it unless it is deleted."""
    root = Path(os.environ["XDG_RUNTIME_DIR"], "runc") if os.getuid() else Path("/run/runc")
    return {path.name for path in root.iterdir()} if root.is_dir() else set()


def build_containers() -> set[str]:
    """Builds' working containers in Podman's storage (``Storage`` in ``ps --external``): a build
    removes each when it ends; one cut short the wrong way leaves it, with a copy of its image."""
    for _ in range(10):  # it fails while a container it has just listed is being removed
        listed = subprocess.run(
            ["podman", "ps", "--all", "--external", "--format", "{{.ID}} {{.Names}} {{.Status}}"],
            capture_output=True,
            text=True,
        )
        if listed.returncode == 0:
            break
        time.sleep(0.2)
    assert listed.returncode == 0, f"podman ps --external failed: {listed.stderr.strip()}"
    return {" ".join(line.split()[:2]) for line in listed.stdout.splitlines() if line.split()[2:] == ["Storage"]}


def iid_files() -> set[str]:
    """The image ID files of podkernel's builds (``--iidfile``), each removed once its build ends."""
    return {str(path) for path in Path(tempfile.gettempdir()).glob("podkernel-*.iid")}


def key_dirs() -> set[str]:
    """The private directories that hold a kernel's connection file (connection.private_dir_path),
    and the staged kernelspecs of install's trial starts."""
    parents = {tempfile.gettempdir(), os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()}
    return {
        str(path)
        for parent in parents
        for path in Path(parent).glob("podkernel-*")
        if re.fullmatch(r"podkernel-(spec-)?[0-9]+-[0-9a-z_]+", path.name)
    }


class Preexisting:
    """What was there before these tests ran (on a long-lived machine, say): not theirs to answer for."""

    build_containers: set[str] = set()
    iid_files: set[str] = set()
    key_dirs: set[str] = set()

    @classmethod
    def note(cls) -> None:
        cls.build_containers, cls.iid_files, cls.key_dirs = build_containers(), iid_files(), key_dirs()


def leftovers(grace_s: float = LEFTOVER_GRACE_S, expected: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """What podkernel has left, after waiting up to ``grace_s`` for it to go: containers (its
    kernels' and builds' working containers) and processes (and files: builds' image IDs, kernels'
    keys, staged kernelspecs), but for the files in ``expected``."""
    deadline = time.monotonic() + grace_s
    while True:
        containers = podkernel_containers() + sorted(build_containers() - Preexisting.build_containers)
        processes = (
            podkernel_processes()
            + sorted(iid_files() - Preexisting.iid_files)
            + sorted(key_dirs() - Preexisting.key_dirs - expected)
        )
        if (not containers and not processes) or time.monotonic() > deadline:
            return containers, processes
        time.sleep(0.2)


def assert_nothing_left(grace_s: float = LEFTOVER_GRACE_S) -> None:
    containers, processes = leftovers(grace_s)
    if containers:
        subprocess.run(
            ["podman", "rm", "--force", "--time", "0", *(name.split()[0] for name in containers)], capture_output=True
        )
    assert (containers, processes) == ([], []), f"podkernel left {containers} and {processes} behind"


def podman_image_prune() -> subprocess.CompletedProcess:
    """``podman image prune``, as a user runs it: it fails on an image that a build cut short
    while committing left without a manifest. Tried thrice: it also fails now and then while
    another container's removal holds the layers it looks at."""
    for _ in range(3):
        pruned = subprocess.run(["podman", "image", "prune", "--force"], capture_output=True, text=True)
        if pruned.returncode == 0:
            break
        time.sleep(1)
    return pruned


def start_kernel(name: str, timeout: float = 120) -> tuple[KernelManager, BlockingKernelClient]:
    """Start a kernel as start_new_kernel does; one that never answers fails with the network's state."""
    manager = KernelManager(kernel_name=name)
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
    except RuntimeError as error:
        state = network_state(manager)
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        raise AssertionError(f"kernel {name}: {error}; network:\n{state}") from None
    return manager, client


@contextmanager
def running_kernel(name: str, timeout: float = 120):
    """A started kernel and its client; shut down gracefully at the end."""
    manager, client = start_kernel(name, timeout)
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


PYTHON_SLEEPING_CELL = "print('running', flush=True)\nimport time\nfor _ in range(600): time.sleep(0.1)"
R_SLEEPING_CELL = 'cat("running\\n")\nSys.sleep(60)'


def start_sleeping_cell(client, code: str = PYTHON_SLEEPING_CELL, timeout: float = 60) -> str:
    """Send a cell that prints ``running`` and then sleeps; return its message ID once it printed.

    An interrupt sent at a fixed delay after the request can land before the kernel runs the cell
    (a loaded machine): IRkernel, for one, dies of a SIGINT between two requests. Waiting for the
    cell's own output makes an interrupt test exercise the interrupt alone.
    """
    message_id = client.execute(code, stop_on_error=False)
    deadline = time.monotonic() + timeout
    while True:
        message = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if (
            message["parent_header"].get("msg_id") == message_id
            and message["msg_type"] == "stream"
            and "running" in message["content"]["text"]
        ):
            time.sleep(0.3)  # from printing into the sleep
            return message_id


def container_of(manager) -> dict:
    """``podman inspect`` of the running container that serves this kernel manager."""
    names = podman(
        "ps", "--filter", f"label=io.podkernel.connection-file={manager.connection_file}", "--format", "{{.Names}}"
    ).split()
    assert len(names) == 1, names
    return json.loads(podman("container", "inspect", names[0]))[0]


WARM_LABEL = "io.podkernel.warm"


def containers() -> dict[str, str]:
    """Every podkernel container: name -> its warm directory ("" for a cold one)."""
    listed = podman(
        "ps",
        "--all",
        "--filter",
        "label=io.podkernel.kernel",
        "--format",
        f'{{{{.Names}}}} {{{{index .Labels "{WARM_LABEL}"}}}}',
    )
    return dict((line.split(" ", 1) + [""])[:2] for line in listed.splitlines())


def waiting(name: str) -> list[str]:
    """The kernel's warm containers that wait for a start."""
    return [
        container
        for container, directory in containers().items()
        if container.startswith(f"podkernel-{name}-warm-") and directory and os.path.exists(f"{directory}/ready")
    ]


def network_state(manager) -> str:
    """For a failure message: the launcher's sockets, the kernel's containers and their ports, and
    (as root) the port translations; what a hung connection is waiting on shows there."""
    ports = {str(port) for key, port in manager.get_connection_info().items() if key.endswith("_port")}
    commands = [
        "podman ps --all --format '{{.Names}} {{.Status}} {{.Ports}}'",
        f"ss -tanp | grep -E ':({'|'.join(sorted(ports))})\\b|pid={manager.provisioner.process.pid},'",
    ]
    if os.geteuid() == 0:
        commands.append("iptables -t nat -S | grep -E 'DNAT|HOSTPORT' | tail -40")
    return "\n".join(
        f"$ {command}\n" + subprocess.run(command, shell=True, capture_output=True, text=True).stdout
        for command in commands
    )


def kernel_running_containers() -> list[str]:
    """The podkernel containers that run a kernel: cold ones, and warm ones a launcher has claimed."""
    return [
        container
        for container, directory in containers().items()
        if not directory or os.path.exists(f"{directory}/launcher")
    ]


def warm_ups_done(timeout: float = 60) -> None:
    """Wait for the background preparations of warm containers to end."""
    deadline = time.monotonic() + timeout
    while any("podkernel warm-up" in " ".join(args) for args in command_lines().values()):
        assert time.monotonic() < deadline, "a warm-up did not end"
        time.sleep(0.1)


def command_lines() -> dict[int, list[str]]:
    """This user's processes and their arguments."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == os.getuid():
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    found[int(entry)] = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
    return found


def watchdogs_of(container: str) -> list[int]:
    """The PIDs of the launcher watchdogs that would remove ``container``."""
    return [pid for pid, args in command_lines().items() if WATCHDOG_NAME in args and container in args]


def wait_until_removed(container_id: str, timeout: float = 60) -> None:
    """Wait until the container ``container_id`` is gone, removed by another hand (a start's sweep)."""
    deadline = time.monotonic() + timeout
    while container_id in podman("ps", "--all", "--no-trunc", "--format", "{{.ID}}"):
        assert time.monotonic() < deadline, "the orphaned container is still there"
        time.sleep(0.5)
