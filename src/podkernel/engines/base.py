"""What podkernel asks of a container engine: a small interface, apart from the code that uses it.

An engine has two kinds of members. Pure facts (``gpu_args``, ``kernel_args``,
``install_warnings``, ...) only compute arguments and words, so the launch plan that uses
them stays unit-testable without any engine installed. Operations run the engine's command
line; only the engine modules run one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ..errors import PodkernelError

if TYPE_CHECKING:
    from ..plan import Launch
    from ..settings import KernelSettings

OutputHandler = Callable[[str], None]


class HostFacts(NamedTuple):
    """What ``ENGINE info`` says that ``podkernel doctor`` reports."""

    version: str
    rootless: bool
    storage_driver: str
    runtime: str  # the OCI runtime and its version, for people to read


# The watchdog: `read` waits, without polling, on a pipe whose other end only the supervisor
# holds; the kernel closes it the instant the supervisor dies, however it dies. Then the script
# kills the container's main process (pid in $2) at once, removes the private directory ($1)
# and execs the rest: the command that removes the container.
WATCHDOG_SCRIPT = 'read -r _; kill -KILL "$(cat "$2" 2>/dev/null)" 2>/dev/null; rm -rf -- "$1"; shift 2; exec "$@"'
WATCHDOG_NAME = "podkernel-watchdog"


# Where the tools that engines run live. Root Podman's network backend runs iptables from
# /usr/sbin, which the PATH of services and desktop sessions often lacks ("netavark: No such
# file or directory"); the launcher runs the engine with these appended where missing.
SYSTEM_PROGRAM_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def missing_program_dirs(path: str) -> list[str]:
    """The system administration program folders that the search path ``path`` lacks."""
    present = set(path.split(os.pathsep))
    return [directory for directory in SYSTEM_PROGRAM_DIRS if directory not in present]


# The inits that engines run as a container's main process (--init): they forward signals.
INIT_PROGRAMS = ("catatonit", "tini", "docker-init", "dumb-init")


def container_processes(main_pid: int) -> list[int]:
    """A container's processes as the host sees them: its main process's descendants, and the
    main process itself unless it is an init; read from /proc, where anyone may read ``stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, waiting = [], list(children.get(main_pid, []))
    while waiting:
        pid = waiting.pop()
        found.append(pid)
        waiting += children.get(pid, [])
    try:
        with open(f"/proc/{main_pid}/comm", encoding="utf-8", errors="replace") as handle:
            is_init = handle.read().strip() in INIT_PROGRAMS
    except OSError:
        return found
    return found if is_init else [main_pid, *found]


def to_stderr(line: str) -> None:
    """Where build and pull output goes by default: stderr, where Jupyter logs it."""
    sys.stderr.write(line)


class ContainerEngine(ABC):
    """One container engine, driven through its command line. Output for people goes to stderr."""

    name: str  # what --engine and the kernelspec call it
    display_name: str  # what people call it
    install_hint: str
    supports_keep_id = False  # whether --keep-id can map the host user into the container
    # Whether the connection file's copy must be readable by any container user, because the
    # engine cannot hand a mounted file to the container's user (it stays in a 0700 directory).
    copy_for_any_user = False

    def __init__(self):
        self._executable: str | None = None

    @property
    def executable(self) -> str:
        """The engine's command, found on PATH; a one-line error when it is not installed."""
        if self._executable is None:
            search_path = os.environ.get("PATH", "")
            if missing := missing_program_dirs(search_path):
                os.environ["PATH"] = os.pathsep.join(filter(None, [search_path, *missing]))
            path = shutil.which(self.name)
            if path is None:
                raise PodkernelError(f"{self.name} is not installed or not on PATH: {self.install_hint} and try again")
            self._executable = path
        return self._executable

    # Pure facts: arguments and words, no engine process.

    @abstractmethod
    def gpu_args(self, kind: str | None) -> list[str]:
        """The run args that pass the host's GPUs of ``kind`` (``nvidia``, ``amd``) in; none for None."""

    @abstractmethod
    def kernel_args(self, launch: Launch, run_args: list[str]) -> list[str]:
        """The run args, besides podkernel's common ones, that hand the kernel its connection file,
        tell the launcher the kernel's PID and route the kernel's output; ``run_args`` are the user's."""

    def install_warnings(self, settings: KernelSettings) -> list[str]:
        """What will not work on this engine as the user may expect, with what to do instead."""
        if settings.keep_id and not self.supports_keep_id:
            return [f"--keep-id is for rootless Podman; {self.display_name} kernels run as the image's user"]
        return []

    def remove_command(self, container: str) -> list[str]:
        """The command line that force-removes a container, for the watchdog to run later."""
        return [self.executable, "rm", "--force", "--ignore", "--time", "0", container]

    # Operations.

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([self.executable, *args], text=True, **kwargs)

    def _capture(self, args: list[str]) -> subprocess.CompletedProcess:
        return self._run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def _stream(self, args: list[str], what: str, advice: str, show: OutputHandler) -> None:
        """Run, handing each line of output to ``show``; on failure quote the last line in the error."""
        tail: deque[str] = deque(maxlen=20)
        process = subprocess.Popen(
            [self.executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                show(line)
                if line.strip():
                    tail.append(line.rstrip())
        finally:  # a start stopped meanwhile (start_guard.Stopped) must not leave a build running
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.wait() != 0:
            last = tail[-1] if tail else "no output"
            raise PodkernelError(f"{what} failed (exit {process.returncode}): {last} -- {advice}")

    def _fail(self, what: str, result: subprocess.CompletedProcess, advice: str) -> PodkernelError:
        message = " ".join(result.stderr.split()) or f"exit {result.returncode}"
        return PodkernelError(f"{self.name} {what} failed: {message} -- {advice}")

    def _info(self, format_: str) -> dict:
        result = self._capture(["info", "--format", format_])
        if result.returncode != 0:
            raise self._fail("info", result, f"check that {self.display_name} works")
        return json.loads(result.stdout)

    @abstractmethod
    def host_facts(self) -> HostFacts:
        """Version, mode, storage and runtime, from ``ENGINE info``."""

    def version_advice(self, version: str) -> str:
        """What to do about an engine version podkernel is not tested with; ``""`` when it is fine."""
        return ""

    def run_once(self, run_args: list[str]) -> subprocess.CompletedProcess:
        """``ENGINE run --rm`` with the given arguments, its output captured."""
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
        """Pull an image, handing the engine's progress lines to ``show``."""
        self._stream(
            ["pull", reference],
            f"{self.name} pull {reference}",
            f"check the image name and that its registry is reachable ({self.name} login for private ones)",
            show,
        )

    def build(self, directory: str, build_args: list[str], show: OutputHandler = to_stderr, tag: str = "") -> str:
        """Build a directory's Containerfile with the user's build args (and ``tag``); return the image ID."""
        import tempfile

        handle, iidfile = tempfile.mkstemp(prefix="podkernel-", suffix=".iid")
        os.close(handle)
        try:
            self._stream(
                ["build", *build_args, *(["--tag", tag] if tag else []), "--iidfile", iidfile, directory],
                f"{self.name} build {directory}",
                "fix the Containerfile or the build args, then try again",
                show,
            )
            with open(iidfile, encoding="utf-8") as stream:
                return stream.read().strip()
        finally:
            os.unlink(iidfile)

    def run_detached(self, run_args: list[str], output: int, launch: Launch) -> None:
        """``ENGINE run`` the given arguments (which include ``--detach``).

        The engine's output, and the container's own where it passes through, goes to the file
        descriptor ``output``. Once this returns, ``launch.container_pidfile`` holds the PID of
        the container's main process.
        """
        returncode = self._run(["run", *run_args], stdin=subprocess.DEVNULL, stdout=output, stderr=output).returncode
        if returncode != 0:
            raise PodkernelError(
                f"{self.name} could not start the kernel's container (exit {returncode}): see its message above"
            )

    def signal(self, container: str, signal_name: str) -> None:
        """Send a signal to the container's main process (its init, which forwards it).

        A container that is already gone is no error: the kernel ended meanwhile.
        """
        result = self._capture(["kill", "--signal", signal_name, container])
        if result.returncode != 0 and not self._is_gone(result):
            print(
                f"podkernel: could not send SIG{signal_name} to {container}: {' '.join(result.stderr.split())}",
                file=sys.stderr,
            )

    def interrupt(self, container: str, main_pid: int) -> None:
        """Interrupt the kernel as Ctrl-C would: SIGINT to every process of the container but its init.

        The kernel need not be the init's direct child: an entrypoint script or a ``sh -c``
        wrapper that does not ``exec`` stands between them in many images, and the init
        forwards a signal to its child alone. A wrapper shell that gets SIGINT too waits for
        its child, as it does on Ctrl-C in a terminal. The processes are found in the host's
        /proc (``main_pid`` is the container's main process, as the host sees it); where they
        may not be signalled from here, the engine forwards the signal to the init instead.
        """
        targets = container_processes(main_pid)
        try:
            for pid in targets:
                os.kill(pid, signal.SIGINT)
        except PermissionError:
            targets = []
        except ProcessLookupError:
            pass
        if not targets:
            self.signal(container, "INT")

    def _is_gone(self, result: subprocess.CompletedProcess) -> bool:
        """Whether a failed command failed only because its container no longer exists or runs."""
        message = result.stderr.lower()
        return any(words in message for words in ("no such container", "not running", "no container with"))

    def remove(self, container: str, stop_timeout: int) -> bool:
        """Stop (SIGTERM, then SIGKILL after ``stop_timeout`` s) and remove a container, if it exists.

        The removal runs in a session of its own, so that killing the caller's process group
        cannot cut it short. Returns whether the container is gone; a failure is reported on stderr.
        """
        result = self._run(
            ["rm", "--force", "--ignore", "--time", str(stop_timeout), container],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        if result.returncode != 0:
            print(f"podkernel: could not remove {container}: {' '.join(result.stderr.split())}", file=sys.stderr)
        return result.returncode == 0

    @abstractmethod
    def containers(self, label: str) -> list[dict]:
        """The containers (running or not) that carry ``label``, as records with Podman's JSON keys:
        ``Id``, ``Names``, ``Labels``, ``State``, ``Created`` (seconds since the epoch)."""

    def start_watchdog(self, lifeline: int, private_dir: str, container: str, pidfile: str) -> subprocess.Popen:
        """Start the watchdog, in a session of its own, reading the pipe end ``lifeline``.

        When the pipe's other end closes (the supervisor is gone, however it died) the watchdog
        kills the kernel's process, removes ``private_dir`` and removes the container.
        """
        return subprocess.Popen(
            ["sh", "-c", WATCHDOG_SCRIPT, WATCHDOG_NAME, private_dir, pidfile, *self.remove_command(container)],
            stdin=lifeline,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
