"""Podman on another machine, reached over SSH: the notebook stays here, the kernel runs there.

One OpenSSH connection per remote host (a ControlMaster, :class:`SshLink`) carries everything:
the remote Podman API socket forwarded to a local Unix socket (each ``podman --url`` command
goes through it), each kernel's ports forwarded from the remote's 127.0.0.1 to Unix sockets in
the kernel's private directory (only this user can connect to them), and one session per
kernel that streams the kernel's output back and is the remote container's dead-man's switch.
A process using the master holds it with an open connection, so that it cannot time out
between a check and a command.

What differs from local Podman, and why:

- The connection file cannot be mounted from here. It goes to the remote Podman as a secret
  (on stdin: never on a command line), mounted where a warm container's FIFO would be; the
  container's command is the warm wrapper (plan.py), which copies it into place at once and
  runs the kernel. The secret is removed as soon as the container runs; ``inspect`` never
  shows the key.
- There is no ``--pidfile`` or passthrough logging remotely: the kernel's session (a local
  ``ssh`` process) stands for the kernel's process. Its PID goes into the pidfile, so the
  supervisor sees the kernel end when the session ends: the container exited, or the link is
  lost (the master's keepalives give up after :data:`SERVER_ALIVE_S` ``×`` 3 seconds).
- The session's remote script waits for a heartbeat line every :data:`HEARTBEAT_S` seconds;
  when the heartbeats stop for :data:`REMOTE_TIMEOUT_S` seconds or the session ends (the
  launcher killed, the link cut, the master killed), it removes the container and the secret
  itself, whatever became of this machine.
- Interrupts go through ``podman kill --signal INT`` (the container's init forwards it to the
  kernel): the remote processes are not in this machine's /proc.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import threading
import time
from typing import TYPE_CHECKING, NamedTuple

from ..connection import CONTAINER_DIR, START_FIFO_PATH
from ..errors import PodkernelError
from ..plan import launcher_labels
from .base import ContainerEngine, Monitor
from .podman import PodmanEngine

if TYPE_CHECKING:
    from ..plan import Launch

HEARTBEAT_S = 2  # how often the launcher tells the remote script that it is alive
REMOTE_TIMEOUT_S = 10  # heartbeats missing this long: the remote script removes the container
SERVER_ALIVE_S = 5  # the master's keepalive interval; it gives up after three unanswered
# How long a master with no kernel left waits for the next start (PODKERNEL_SSH_PERSIST_S).
CONTROL_PERSIST_S = 60
CONNECT_TIMEOUT_S = 10
HOLD_ATTEMPTS = 3  # masters found ending before one holds, at most
RECHECK_AFTER_REMOVAL_S = 10  # a run in flight when the launcher died has ended by then

# The kernel's session on the remote host ($1: container, $2: the Podman socket, $3: seconds
# without a heartbeat that end it). In the background, the dead-man's switch: it reads
# heartbeat lines until one is late or the session's input ends, then removes the container
# and its secret (and again a little later, should a `run` have been in flight). Meanwhile the
# kernel's output streams back until the container has ended (`logs --follow` alone can
# outlive a container that its engine failed to remove), with 2 s for its last lines.
# (A background job's stdin is /dev/null in sh: the session's own goes to it as descriptor 3.)
SESSION_SCRIPT = (
    "trap '' HUP PIPE; "
    'c="$1"; api="unix://$2"; exec 3<&0; '
    '(while beat=$(timeout "$3" head -n 1 <&3) && [ -n "$beat" ]; do :; done; '
    'podman --url "$api" rm --force --ignore --time 0 "$c"; podman --url "$api" secret rm "$c"; '
    f'sleep {RECHECK_AFTER_REMOVAL_S}; podman --url "$api" rm --force --ignore --time 0 "$c"; '
    'podman --url "$api" secret rm "$c") >/dev/null 2>&1 & '
    "exec 3<&- </dev/null; "
    'podman --url "$api" logs --follow "$c" 2>&1 & logs=$!; '
    'podman --url "$api" wait "$c" >/dev/null 2>&1; '
    "i=0; while kill -0 $logs 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done; "
    "kill $logs 2>/dev/null; wait $logs 2>/dev/null"
)

_SSH_URL = re.compile(r"ssh://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+)(?P<socket>/.*)")


class RemoteHost(NamedTuple):
    """Where a remote Podman is: an SSH destination and the path of its API socket there."""

    user: str  # empty: ssh's default
    host: str
    port: int
    socket: str
    identity: str | None = None

    @classmethod
    def parse(cls, url: str, identity: str | None = None) -> RemoteHost:
        """Read ``ssh://USER@HOST:PORT/SOCKET`` (Podman's form; the port is required)."""
        match = _SSH_URL.fullmatch(url)
        if not match:
            raise PodkernelError(
                f"{url!r} is not a remote Podman URL: give ssh://USER@HOST:PORT/path/to/podman.sock "
                "(with the port, as Podman needs it)"
            )
        return cls(
            match["user"] or "", match["host"].strip("[]"), int(match["port"]), match["socket"], identity or None
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user + '@' if self.user else ''}{host}:{self.port}{self.socket}"

    @property
    def destination(self) -> str:
        """What ssh is given: without a user, ssh's own default (~/.ssh/config, else this user's name)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def to_word(self) -> str:
        """One command-line word that :func:`from_word` reads back (for the watchdog)."""
        return json.dumps({"url": self.url, "identity": self.identity})

    @classmethod
    def from_word(cls, word: str) -> RemoteHost:
        data = json.loads(word)
        return cls.parse(data["url"], data.get("identity"))


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


def control_persist_s() -> int:
    """How long an SSH master outlives its last kernel: $PODKERNEL_SSH_PERSIST_S, else CONTROL_PERSIST_S."""
    value = os.environ.get("PODKERNEL_SSH_PERSIST_S", "")
    return int(value) if value.isdigit() and int(value) > 0 else CONTROL_PERSIST_S


def _runtime_parent() -> str:
    from ..connection import private_dir_path

    return os.path.dirname(private_dir_path())


class SshLink:
    """The one SSH connection to a remote host that all of this user's kernels there share.

    Its files (the master's control socket, the forwarded Podman socket, a lock and the master's
    log) live in a directory only this user can enter. The master runs detached and ends by
    itself :func:`control_persist_s` seconds after its last session (every kernel holds one),
    or when the host stops answering its keepalives.
    """

    def __init__(self, host: RemoteHost):
        self.host = host
        digest = hashlib.sha256(f"{host.url} {host.identity}".encode()).hexdigest()[:16]
        self.directory = os.path.join(_runtime_parent(), f"podkernel-ssh-{digest}")
        self.control = os.path.join(self.directory, "control")
        self.api = os.path.join(self.directory, "podman.sock")
        self._hold: socket.socket | None = None

    def ssh(self, *args: str) -> list[str]:
        """An ``ssh`` command line through this link's master (``args`` go before the destination)."""
        options = [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            # Podman's own SSH client reads this file only; both must know the same hosts.
            "-o", f"UserKnownHostsFile={os.path.expanduser('~/.ssh/known_hosts')}",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
            "-p", str(self.host.port),
        ]  # fmt: skip
        if self.host.identity:
            options += ["-i", os.path.expanduser(self.host.identity), "-o", "IdentitiesOnly=yes"]
        return ["ssh", *options, "-S", self.control, *args, self.host.destination]

    def _check(self) -> bool:
        """Whether the master runs: it listens on its control socket (a connection there costs
        microseconds, ``ssh -O check`` a process)."""
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(self.control)
            except OSError:
                return False
        return True

    def ensure(self) -> None:
        """Make sure the master runs, starting it if need be (one launcher at a time)."""
        if self._check():
            return
        self._make_directory()
        with open(os.path.join(self.directory, "lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._check():
                return
            for stale in (self.control, self.api):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)
            log_path = os.path.join(self.directory, "master.log")
            with open(log_path, "w") as log:
                master = subprocess.run(
                    self.ssh(
                        "-M", "-N", "-f",
                        "-o", f"ControlPersist={control_persist_s()}",
                        "-o", f"ServerAliveInterval={SERVER_ALIVE_S}",
                        "-o", "ServerAliveCountMax=3",
                        "-o", "ExitOnForwardFailure=yes",
                        "-o", "StreamLocalBindUnlink=yes",
                        "-L", f"{self.api}:{self.host.socket}",
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,  # shared by every kernel: no launcher's process group
                )  # fmt: skip
            if master.returncode != 0:
                with open(log_path, errors="replace") as log:
                    lines = [line.strip() for line in log if line.strip()]
                raise PodkernelError(
                    f"cannot reach {self.host.destination} port {self.host.port} over SSH: "
                    f"{lines[-1] if lines else f'ssh exit {master.returncode}'} -- {_ssh_advice(lines, self.host)}"
                )

    def hold(self) -> None:
        """Make sure the master runs and stays up while this process uses it.

        A master whose ControlPersist time runs out can end just after a check found it running
        (15 of 40 lookups aimed at that moment failed). So this process holds a connection to
        the remote Podman's API open through the master, which no master times out on while it
        is open; Podman's answer on it proves that the master has taken it.
        """
        if self._hold is not None and _still_open(self._hold):
            return
        self.release()
        for _ in range(HOLD_ATTEMPTS):
            self.ensure()
            self._hold = self._ping()
            if self._hold is not None:
                return
            time.sleep(0.05)  # the master was ending: the next ensure() starts another
        raise PodkernelError(
            f"Podman on {self.host.host} does not answer at {self.host.socket}: the connection through SSH "
            "was closed -- check that Podman's API service runs there (systemctl --user enable --now "
            "podman.socket; as root, systemctl enable --now podman.socket) and that the path is right"
        )

    def release(self) -> None:
        """Let the master time out again as far as this process is concerned (see :meth:`hold`)."""
        if self._hold is not None:
            self._hold.close()
            self._hold = None

    def _ping(self) -> socket.socket | None:
        """A connection to the remote Podman's API that has answered a ping, or None when the
        connection was refused or closed before the answer."""
        connection = socket.socket(socket.AF_UNIX)
        connection.settimeout(CONNECT_TIMEOUT_S)
        answer = b""
        try:
            connection.connect(self.api)
            connection.sendall(b"HEAD /_ping HTTP/1.1\r\nHost: podman\r\n\r\n")
            while b"\r\n\r\n" not in answer:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            connection.close()
            raise PodkernelError(
                f"Podman on {self.host.host} gave no answer within {CONNECT_TIMEOUT_S} s at {self.host.socket} "
                "-- check that its API service there works (podman info, on that host)"
            ) from None
        except OSError:
            pass
        if not answer.startswith(b"HTTP/1.1 200"):
            connection.close()
            return None
        connection.setblocking(False)
        return connection

    def _make_directory(self) -> None:
        try:
            os.mkdir(self.directory, 0o700)
        except FileExistsError:
            pass
        info = os.lstat(self.directory)
        if info.st_uid != os.getuid() or info.st_mode & 0o077 or os.path.islink(self.directory):
            raise PodkernelError(f"{self.directory} is not this user's private directory: remove it and try again")

    def forward(self, forwards: list[tuple[str, int]]) -> None:
        """Forward each local Unix socket path to its port on the remote host's 127.0.0.1."""
        self._forwarding("forward", forwards)

    def cancel(self, forwards: list[tuple[str, int]]) -> None:
        """End forwards made by :meth:`forward` and remove their sockets."""
        with contextlib.suppress(PodkernelError):
            self._forwarding("cancel", forwards)
        for path, _ in forwards:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _forwarding(self, operation: str, forwards: list[tuple[str, int]]) -> None:
        specs = [arg for path, port in forwards for arg in ("-L", f"{path}:127.0.0.1:{port}")]
        result = subprocess.run(
            self.ssh("-O", operation, "-o", "StreamLocalBindUnlink=yes", *specs),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise PodkernelError(
                f"SSH could not {operation} the kernel's ports: {' '.join(result.stderr.split())}: restart the kernel"
            )


def _still_open(connection: socket.socket) -> bool:
    """Whether the other end has not closed a (non-blocking) connection."""
    try:
        return connection.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _ssh_advice(lines: list[str], host: RemoteHost) -> str:
    """What to do about a failed SSH connection, from what ssh said."""
    said = " ".join(lines).lower()
    if "host key verification failed" in said or "no host key is known" in said:
        return f"the host key of {host.host} is not known here: ssh -p {host.port} {host.destination} once to accept it"
    if "permission denied" in said:
        return "check the user and the key (--identity, or the system connection's identity)"
    return f"check that {host.host} is up and that ssh -p {host.port} {host.destination} works"


class RemotePodmanEngine(PodmanEngine):
    """Podman on another machine, through ``podman --url`` over one SSH master per host."""

    remote = True
    supports_keep_id = False

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

    def run_detached(self, run_args: list[str], output: int, launch: Launch) -> dict[str, str]:
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
        script = " ".join(["sh", "-c", shlex.quote(SESSION_SCRIPT), "podkernel-session"])
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
        ContainerEngine.stop_build(self, pid)


def _beat(stream) -> None:
    """Write a heartbeat line every HEARTBEAT_S seconds until the session's input is closed."""
    try:
        while True:
            stream.write(b"beat\n")
            stream.flush()
            time.sleep(HEARTBEAT_S)
    except (OSError, ValueError):
        pass
