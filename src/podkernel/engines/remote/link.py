"""The one SSH connection to a remote host that all of this user's kernels there share.

An OpenSSH ControlMaster, started by the first start and shared by every kernel to that host,
forwards the remote Podman API socket to a Unix socket here (each ``podman --url`` goes through
it) and each kernel's ports from the remote's 127.0.0.1 to Unix sockets in the kernel's private
directory (only this user can connect to them). A process using the master holds it with an
open connection, so that it cannot time out between a check and a command.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time

from ...errors import PodkernelError
from ...model.remote_host import RemoteHost
from ...system.private_dir import shared_private_dir

SERVER_ALIVE_S = 5  # the master's keepalive interval; it gives up after three unanswered
# How long a master with no kernel left waits for the next start (PODKERNEL_SSH_PERSIST_S).
CONTROL_PERSIST_S = 60
CONNECT_TIMEOUT_S = 10
HOLD_ATTEMPTS = 3  # masters found ending before one holds, at most


def control_persist_s() -> int:
    """How long an SSH master outlives its last kernel: $PODKERNEL_SSH_PERSIST_S, else CONTROL_PERSIST_S."""
    value = os.environ.get("PODKERNEL_SSH_PERSIST_S", "")
    return int(value) if value.isdigit() and int(value) > 0 else CONTROL_PERSIST_S


class SshLink:
    """The one SSH connection to a remote host that all of this user's kernels there share.

    Its files (the master's control socket, the forwarded Podman socket, a lock and the master's
    log) live in a directory only this user can enter. The master runs detached and ends by
    itself :func:`control_persist_s` seconds after its last session (every kernel holds one),
    or when the host stops answering its keepalives.
    """

    def __init__(self, host: RemoteHost):
        import hashlib  # loads OpenSSL: only for a remote kernel

        self.host = host
        digest = hashlib.sha256(f"{host.url} {host.identity}".encode()).hexdigest()[:16]
        self.directory = shared_private_dir(f"podkernel-ssh-{digest}")
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
                    f"{lines[-1] if lines else f'ssh exit {master.returncode}'} -- {ssh_advice(lines, self.host)}"
                )

    def hold(self) -> None:
        """Make sure the master runs and stays up while this process uses it.

        A master whose ControlPersist time runs out can end just after a check found it running.
        So this process holds a connection to the remote Podman's API open through the master,
        which no master times out on while it is open; Podman's answer on it proves that the
        master has taken it.
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


def ssh_advice(lines: list[str], host: RemoteHost) -> str:
    """What to do about a failed SSH connection, from what ssh said."""
    said = " ".join(lines).lower()
    if "host key verification failed" in said or "no host key is known" in said:
        return f"the host key of {host.host} is not known here: ssh -p {host.port} {host.destination} once to accept it"
    if "permission denied" in said:
        return "check the user and the key (--identity, or the system connection's identity)"
    return f"check that {host.host} is up and that ssh -p {host.port} {host.destination} works"
