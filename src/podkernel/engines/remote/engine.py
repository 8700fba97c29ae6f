"""The remote Podman engine: the notebook stays here, the kernel runs there (README, "Kernels on
another machine", tells the whole story).

What differs from local Podman: the connection file goes there as a secret (on stdin), mounted
where the warm wrapper reads it; the kernel's session (a local ``ssh`` process running
session.sh there) stands for the kernel's process in the pidfile, streams its output back and
is the container's dead-man's switch (heartbeats every :data:`HEARTBEAT_S` s; none for
:data:`REMOTE_TIMEOUT_S` s, or the session's end, removes the container and its secret);
the kernel's ports come here as Unix sockets (link.py); interrupts go through ``podman kill
--signal INT``, since the remote processes are not in this machine's /proc.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import time

from ...errors import PodkernelError
from ...model.connection import CONTAINER_DIR, START_FIFO_PATH
from ...model.labels import launcher_labels
from ...model.launch import Address, Launch
from ...model.remote_host import RemoteHost
from ...model.settings import KernelSettings
from ...plan.run_args import kernel_command, remote_run_args
from ..base import Monitor
from ..cli_engine import CliEngine
from ..podman import PodmanEngine
from .link import SshLink

HEARTBEAT_S = 2  # how often the launcher tells the remote script that it is alive
REMOTE_TIMEOUT_S = 10  # heartbeats missing this long: the remote script removes the container
SESSION_FILE = os.path.join(os.path.dirname(__file__), "session.sh")  # each kernel's session there


def session_script() -> str:
    """The session's script, read when used (a local start uses none)."""
    with open(SESSION_FILE, encoding="utf-8") as handle:
        return handle.read()


def system_connection(name: str) -> RemoteHost:
    """The remote host of a Podman system connection (``podman system connection add``)."""
    try:
        result = subprocess.run(
            ["podman", "system", "connection", "list", "--format", "json"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise PodkernelError("podman is not installed here: a --connection needs the podman command") from None
    try:
        connections = json.loads(result.stdout or "[]") if result.returncode == 0 else []
    except ValueError:
        connections = []
    for connection in connections:
        if connection.get("Name") == name:
            return RemoteHost.parse(connection.get("URI", ""), connection.get("Identity") or None)
    known = ", ".join(sorted(connection.get("Name", "") for connection in connections)) or "none"
    raise PodkernelError(
        f"there is no Podman system connection named {name!r} (known: {known}): "
        "add it with podman system connection add NAME ssh://USER@HOST:PORT/path/to/podman.sock"
    )


def resolve_remote(remote: dict[str, str]) -> RemoteHost:
    """The host that a kernel's ``remote`` setting names: a system connection, or a URL and key."""
    if "connection" in remote:
        return system_connection(remote["connection"])
    return RemoteHost.parse(remote["url"], remote.get("identity"))


class RemotePodmanEngine(PodmanEngine):
    """Podman on another machine, through ``podman --url`` over one SSH master per host."""

    supports_keep_id = False
    supports_warm = False
    publishes_on_spare_ports = False  # the remote Podman picks them there: 127.0.0.1::PORT

    @classmethod
    def from_setting(cls, remote: dict[str, str]) -> RemotePodmanEngine:
        """Podman on the host that a kernel's ``remote`` setting names (model.remote_host.remote_setting)."""
        return cls(resolve_remote(remote))

    @classmethod
    def from_word(cls, word: str) -> RemotePodmanEngine:
        """Podman on the host of :attr:`word`, as a hidden subcommand's line gives it."""
        return cls(RemoteHost.from_word(word))

    def __init__(self, host: RemoteHost):
        super().__init__()
        self.host = host
        self.link = SshLink(host)
        self.display_name = f"Podman on {host.host}"
        self._forwards: list[tuple[str, int]] = []
        self._session: subprocess.Popen | None = None

    def command(self, args: list[str]) -> list[str]:
        self.link.hold()
        return [self.executable, "--url", f"unix://{self.link.api}", *args]

    def kernel_args(self, launch: Launch, run_args: list[str]) -> list[str]:
        """The connection file comes as a secret, mounted where the warm wrapper reads it; labels
        name this machine and user, whose launcher's PID the kernel's labels give."""
        return [
            *launcher_labels(),
            "--tmpfs",
            f"{CONTAINER_DIR}:mode=1777",
            "--secret",
            f"{launch.container_name},type=mount,target={START_FIFO_PATH},mode=0444",
        ]

    @property
    def word(self) -> str:
        return self.host.to_word()

    def host_warnings(self, settings: KernelSettings) -> list[str]:
        """None: this machine's devices and user do not matter to a kernel on another."""
        return []

    def run_args(self, settings: KernelSettings, launch: Launch) -> list[str]:
        """The warm wrapper hands the kernel its connection file: it needs the kernel's full command."""
        command = kernel_command(settings, *self.image_command(launch.image_id))
        return remote_run_args(settings, launch, self, command)

    def published_placeholder(self, key: str) -> str:
        return ""

    def describe_run(self, run_args: list[str]) -> list[str]:
        return [
            shlex.join(["podman", "--url", self.host.url, "run", *run_args]),
            f"# on {self.host.host}, through podkernel's SSH connection; the connection file goes as a secret "
            "named after the container, and the ports come here as Unix sockets in {private_dir}",
        ]

    def doctor_checks(self) -> tuple[str, ...]:
        return (
            "ssh_link", "engine_installed", "mode", "storage", "runtime", "container_runs",
            "port_forward", "remote_tools", "watchdog_tool", "orphans",
        )  # fmt: skip

    def connect(self) -> str:
        self.link.ensure()
        return f"{self.host.destination} port {self.host.port}: connected, host key known"

    def reach_published(self, container: str, port: int, directory: str) -> Address:
        """A forward to a Unix socket in ``directory``, ended when the container is removed."""
        self._forwards = [(os.path.join(directory, "probe.sock"), self.published_ports(container)[port])]
        self.link.forward(self._forwards)
        return self._forwards[0][0]

    def missing_tools(self, tools: tuple[str, ...]) -> list[str]:
        """Asked there over SSH; all of them when no command runs there."""
        found = subprocess.run(
            [*self.link.ssh(), " ".join(f"command -v {tool} >/dev/null || echo {tool};" for tool in tools)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        return found.stdout.split() if found.returncode == 0 else list(tools)

    def cleanup_tools(self) -> tuple[str, ...]:
        """What a kernel's session runs there: its dead-man's switch and log stream."""
        return ("sh", "timeout", "head", "sleep", "podman")

    def run_detached(self, run_args: list[str], output: int, launch: Launch) -> dict[str, Address]:
        """Hand the connection file over as a secret, run the container, forward its ports, and
        start the kernel's session; return the Unix sockets that reach the kernel's ports."""
        secret = launch.container_name
        with open(launch.connection_copy, encoding="utf-8") as copy:
            contents = copy.read()
        created = subprocess.run(  # through a pipe: Podman takes no other kind of stdin
            self.command(["secret", "create", secret, "-"]), input=contents, capture_output=True, text=True
        )
        if created.returncode != 0:
            raise self._fail("secret create", created, f"check that Podman on {self.host.host} works")
        try:
            super().run_detached(run_args, output, launch)
        finally:
            removed = subprocess.Popen(
                self.command(["secret", "rm", secret]),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ports = self._published(launch)
        removed.wait()
        directory = os.path.dirname(launch.connection_copy)
        self._forwards = [(os.path.join(directory, f"{key}.sock"), port) for key, port in ports.items()]
        self.link.forward(self._forwards)
        self._start_session(launch, output)
        self.link.release()  # the session holds the master from now on
        return {key: path for key, (path, _) in zip(ports, self._forwards, strict=True)}

    def _published(self, launch: Launch) -> dict[str, int]:
        """The remote host's ports that the container's ports are published on, by key."""
        by_port = self.published_ports(launch.container_name)
        try:
            return {key: by_port[int(port)] for key, port in launch.ports.items()}
        except KeyError:
            raise PodkernelError(
                f"the kernel's container on {self.host.host} does not publish every kernel port "
                f"(it publishes {sorted(by_port) or 'none'}): check its run args"
            ) from None

    def _start_session(self, launch: Launch, output: int) -> None:
        """The kernel's session: its PID stands for the kernel's in the pidfile."""
        script = " ".join(["sh", "-c", shlex.quote(session_script()), "podkernel-session"])
        args = [launch.container_name, self.host.socket, str(REMOTE_TIMEOUT_S)]
        self._session = subprocess.Popen(
            [*self.link.ssh(), f"{script} {' '.join(shlex.quote(arg) for arg in args)}"],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
        with open(launch.container_pidfile, "w", encoding="ascii") as pidfile:
            pidfile.write(str(self._session.pid))
        threading.Thread(target=_beat, args=(self._session.stdin,), daemon=True).start()

    def interrupt(self, container: str, main_pid: int) -> None:
        """SIGINT to the container's init, which forwards it to the kernel."""
        self.signal(container, "INT")

    def start_sweep(self) -> None:
        """None: a remote container whose launcher died is removed there by its session's
        dead-man's switch."""

    def remove(self, container: str, stop_timeout: int) -> bool:
        gone = super().remove(container, stop_timeout)
        if self._forwards:
            self.link.cancel(self._forwards)
            self._forwards = []
        return gone

    def remove_abandoned(self, container: str) -> bool:
        """As locally, and its secret too (the launcher may have died before removing it)."""
        gone = super().remove_abandoned(container)
        self._capture(["secret", "rm", container])
        return gone

    def monitors(self) -> list[Monitor]:
        """None here: the remote host's conmons are the remote Podman's own."""
        return []

    def stop_build(self, pid: int) -> None:
        """The client here is asked to stop (SIGTERM); the build itself runs in the remote
        service, whose handling of a client gone midway decides the rest (not tested here: no
        RUN step of it is a process of this machine to stop as local Podman's are)."""
        CliEngine.stop_build(self, pid)


def _beat(stream) -> None:
    """Write a heartbeat line every HEARTBEAT_S seconds until the session's input is closed."""
    try:
        while True:
            stream.write(b"beat\n")
            stream.flush()
            time.sleep(HEARTBEAT_S)
    except (OSError, ValueError):
        pass
