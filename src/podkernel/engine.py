"""The container engine adapter: the only module that runs ``podman`` (or ``docker``).

Everything podkernel asks of a container engine goes through :class:`PodmanEngine`, or
:class:`DockerEngine` for the ``docker`` CLI, whose command lines are nearly the same; the
rest of the code deals in argument lists and results, never in processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import deque
from datetime import datetime
from typing import Callable

from .errors import PodkernelError

OutputHandler = Callable[[str], None]


def to_stderr(line: str) -> None:
    """Where Podman's build and pull output goes by default: stderr, where Jupyter logs it."""
    sys.stderr.write(line)

ENGINES = ("podman", "docker")


def default_engine_name() -> str:
    """The engine new kernels use: ``$PODKERNEL_ENGINE``, else podman."""
    return os.environ.get("PODKERNEL_ENGINE") or "podman"


def container_engine(name: str | None = None) -> PodmanEngine:
    """The adapter for engine ``name`` (default: :func:`default_engine_name`)."""
    name = name or default_engine_name()
    if name not in ENGINES:
        raise PodkernelError(f"unknown container engine {name!r}: use podman or docker")
    return DockerEngine() if name == "docker" else PodmanEngine()


class PodmanEngine:
    """Runs ``podman`` subcommands. Output meant for people goes to stderr, never stdout."""

    name = "podman"
    install_hint = "install Podman (e.g. apt-get install podman)"

    def __init__(self):
        path = shutil.which(self.name)
        if path is None:
            raise PodkernelError(f"{self.name} is not installed or not on PATH: {self.install_hint} and try again")
        self.executable = path

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([self.executable, *args], text=True, **kwargs)

    def _capture(self, args: list[str]) -> subprocess.CompletedProcess:
        return self._run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def _stream(self, args: list[str], what: str, advice: str, show: OutputHandler) -> None:
        """Run, handing each line of output to ``show``; on failure quote the last line in the error."""
        tail: deque[str] = deque(maxlen=20)
        process = subprocess.Popen(
            [self.executable, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        assert process.stdout is not None
        for line in process.stdout:
            show(line)
            if line.strip():
                tail.append(line.rstrip())
        if process.wait() != 0:
            last = tail[-1] if tail else "no output"
            raise PodkernelError(f"{what} failed (exit {process.returncode}): {last} -- {advice}")

    def info(self) -> dict:
        """``podman info`` as a dict."""
        result = self._capture(["info", "--format", "json"])
        if result.returncode != 0:
            raise PodkernelError(f"{self.name} info failed: {' '.join(result.stderr.split())}")
        return json.loads(result.stdout)

    def run_once(self, run_args: list[str]) -> subprocess.CompletedProcess:
        """``podman run --rm`` with the given arguments, its output captured."""
        return self._capture(["run", "--rm", *run_args])

    def image_id(self, reference: str) -> str | None:
        """The full ID of a local image, or None when there is no such image here."""
        result = self._capture(["image", "inspect", "--format", "{{.Id}}", reference])
        return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None

    def image_user(self, image_id: str) -> str:
        """The user an image runs as (its ``USER``), ``""`` when unset."""
        return self._capture(["image", "inspect", "--format", "{{.Config.User}}", image_id]).stdout.strip()

    def image_user_ids(self, image_id: str) -> tuple[int, int] | None:
        """The uid and gid the image's user has inside it, by asking ``id`` there; None if that fails."""
        result = self._capture(["run", "--rm", "--entrypoint", "sh", image_id, "-c", "id -u; id -g"])
        words = result.stdout.split()
        if result.returncode != 0 or len(words) != 2 or not all(word.isdigit() for word in words):
            return None
        return int(words[0]), int(words[1])

    def pull(self, reference: str, show: OutputHandler = to_stderr) -> None:
        """Pull an image, handing Podman's progress lines to ``show``."""
        self._stream(
            ["pull", reference], f"{self.name} pull {reference}",
            "check the image name and that its registry is reachable (podman login for private ones)", show,
        )

    def build(self, directory: str, build_args: list[str], show: OutputHandler = to_stderr) -> str:
        """Build a directory's Containerfile with the user's build args; return the image ID."""
        import tempfile

        handle, iidfile = tempfile.mkstemp(prefix="podkernel-", suffix=".iid")
        os.close(handle)
        try:
            self._stream(
                ["build", *build_args, "--iidfile", iidfile, directory], f"{self.name} build {directory}",
                "fix the Containerfile or the build args, then try again", show,
            )
            with open(iidfile, encoding="utf-8") as stream:
                return stream.read().strip()
        finally:
            os.unlink(iidfile)

    def run_detached(self, run_args: list[str], output: int, container: str, pidfile: str) -> None:
        """``podman run`` the given arguments (which include ``--detach`` and ``--pidfile PIDFILE``).

        Podman's output, and the container's own when it logs by ``passthrough``, goes to the
        file descriptor ``output`` (a pipe: Podman refuses ``passthrough`` onto a terminal).
        Once this returns, ``pidfile`` holds the PID of the container's main process.
        """
        returncode = self._run(["run", *run_args], stdin=subprocess.DEVNULL, stdout=output, stderr=output).returncode
        if returncode != 0:
            raise PodkernelError(
                f"{self.name} could not start the kernel's container (exit {returncode}): see its message above"
            )

    def signal(self, container: str, signal_name: str) -> None:
        """Send a signal to the container's main process (its init, which forwards it)."""
        self._capture(["kill", "--signal", signal_name, container])

    def remove(self, container: str, stop_timeout: int) -> None:
        """Stop (SIGTERM, then SIGKILL after ``stop_timeout`` s) and remove a container, if it exists.

        The removal runs in a session of its own, so that killing the caller's process group
        cannot cut it short and leave a half-removed container.
        """
        self._run(
            ["rm", "--force", "--ignore", "--time", str(stop_timeout), container],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def containers(self, label: str) -> list[dict]:
        """``podman ps --all`` for the containers that carry ``label``, as Podman's JSON records."""
        result = self._capture(["ps", "--all", "--filter", f"label={label}", "--format", "json"])
        if result.returncode != 0:
            message = " ".join(result.stderr.split())
            raise PodkernelError(f"{self.name} ps failed: {message} -- check that it works ({self.name} info)")
        return json.loads(result.stdout or "[]")

    def remove_command(self, container: str) -> list[str]:
        """The command line that force-removes a container, for a watchdog to run later."""
        return [self.executable, "rm", "--force", "--ignore", "--time", "0", container]


class DockerEngine(PodmanEngine):
    """The ``docker`` CLI, for hosts with a Docker engine: the same command lines where Docker has them."""

    name = "docker"
    install_hint = "install the Docker CLI and engine, or use --engine podman"

    def run_detached(self, run_args: list[str], output: int, container: str, pidfile: str) -> None:
        """``docker run``, then the container's main PID into ``pidfile`` (Docker has no ``--pidfile``)."""
        super().run_detached(run_args, output, container, pidfile)
        pid = self._capture(["inspect", "--format", "{{.State.Pid}}", container]).stdout.strip()
        with open(pidfile, "w", encoding="ascii") as handle:
            handle.write(pid)

    def remove(self, container: str, stop_timeout: int) -> None:
        """Stop (SIGTERM, then SIGKILL after ``stop_timeout`` s) and remove; Docker's ``--rm`` finishes it."""
        self._run(
            ["stop", "--time", str(stop_timeout), container],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self._capture(["rm", "--force", container])

    def containers(self, label: str) -> list[dict]:
        """``docker ps --all`` for ``label``, in the shape of Podman's JSON records."""
        result = self._capture(["ps", "--all", "--no-trunc", "--filter", f"label={label}", "--format", "{{json .}}"])
        if result.returncode != 0:
            raise PodkernelError(f"docker ps failed: {' '.join(result.stderr.split())} -- check that Docker works")
        records = []
        for line in result.stdout.splitlines():
            record = json.loads(line)
            labels = dict(item.partition("=")[::2] for item in record.get("Labels", "").split(",") if item)
            created = datetime.strptime(" ".join(record["CreatedAt"].split()[:3]), "%Y-%m-%d %H:%M:%S %z")
            records.append({"Id": record["ID"], "Names": [record["Names"]], "Labels": labels,
                            "State": record.get("State", ""), "Created": created.timestamp()})
        return records

    def remove_command(self, container: str) -> list[str]:
        return [self.executable, "rm", "--force", container]
