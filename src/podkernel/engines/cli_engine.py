"""What the engines driven through a Podman-like command line share: the commands themselves, builds
beside a watchdog, and the hand-over to the abandoned-container protocol (abandoned.py)."""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from ..errors import PodkernelError
from ..model.internal_commands import REMOVE_ABANDONED, STOP_BUILD, SWEEP
from ..model.launch import Address, Launch
from ..model.settings import KernelSettings
from ..system import processes
from ..system.host import add_program_dirs_to_path, gpu_warnings
from ..system.lifeline import run_watchdog
from . import abandoned
from .base import ContainerEngine, Monitor, OutputHandler, to_stderr

WATCHDOG_NAME = "podkernel-watchdog"
BUILD_WATCHDOG_NAME = "podkernel-build-watchdog"
REMOVE_ATTEMPTS = 3  # see CliEngine.remove
REMOVE_RETRY_S = 0.2


class CliEngine(ContainerEngine):
    """An engine driven through its command line, ``ENGINE ARGS...``."""

    # What the engine says (in lower case) when asked about an image that it does not have.
    missing_image_phrases: tuple[str, ...] = ("no such image",)

    def __init__(self):
        self._executable: str | None = None

    @property
    def executable(self) -> str:
        """The engine's command, found on PATH (with the sbin folders its network backend needs)."""
        if self._executable is None:
            add_program_dirs_to_path()
            path = shutil.which(self.name)
            if path is None:
                raise PodkernelError(f"{self.name} is not installed or not on PATH: {self.install_hint} and try again")
            self._executable = path
        return self._executable

    def command(self, args: list[str]) -> list[str]:
        """The engine's full command line for ``args``."""
        return [self.executable, *args]

    def install_warnings(self, settings: KernelSettings) -> list[str]:
        return [
            *super().install_warnings(settings),
            *self.run_arg_warnings(settings.run_args),
            *self.host_warnings(settings),
        ]

    def run_arg_warnings(self, run_args: list[str]) -> list[str]:
        """What the engine makes of the user's run args other than the user may expect."""
        return []

    def host_warnings(self, settings: KernelSettings) -> list[str]:
        """What the host where the kernel runs lacks for its flags: this machine, here."""
        warnings = []
        if settings.keep_id and self.supports_keep_id and os.geteuid() == 0:
            warnings.append("--keep-id only takes effect when this kernel runs under rootless Podman (not as root)")
        return warnings + gpu_warnings(settings.gpu)

    def describe_run(self, run_args: list[str]) -> list[str]:
        return [shlex.join([self.executable, "run", *run_args])]

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(args), text=True, **kwargs)

    def _capture(self, args: list[str]) -> subprocess.CompletedProcess:
        return self._run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def _stream(self, process: subprocess.Popen, lines, what: str, advice: str, show: OutputHandler, stop) -> None:
        """Hand each of ``lines``, the output of ``process``, to ``show``; on failure quote the last
        one in the error. Cut short meanwhile (start_guard.Stopped, Ctrl-C), ``stop`` ends it first,
        while its output is read and dropped: a process blocked on a full pipe would never stop."""
        tail: deque[str] = deque(maxlen=20)
        try:
            for line in lines:
                show(line)
                if line.strip():
                    tail.append(line.rstrip())
        finally:
            if process.poll() is None:
                stopping = threading.Thread(target=stop, daemon=True)
                stopping.start()
                while stopping.is_alive():
                    if select.select([lines], [], [], 0.05)[0] and not os.read(lines.fileno(), 65536):
                        stopping.join()
            process.wait()
        if process.returncode != 0:
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

    def run_once(self, run_args: list[str]) -> subprocess.CompletedProcess:
        return self._capture(["run", "--rm", *run_args])

    def reach_published(self, container: str, port: int, directory: str) -> Address:
        return self.published_ports(container)[port]

    def missing_tools(self, tools: tuple[str, ...]) -> list[str]:
        return [tool for tool in tools if shutil.which(tool) is None]

    def image_id(self, reference: str) -> str | None:
        return self.image_id_soon(reference)()

    def image_id_soon(self, reference: str) -> Callable[[], str | None]:
        process = subprocess.Popen(
            self.command(["image", "inspect", "--format", "{{.Id}}", reference]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def answer() -> str | None:
            output, errors = process.communicate()
            if process.returncode == 0 and output.strip():
                return output.strip()
            if process.returncode == 0 or any(phrase in errors.lower() for phrase in self.missing_image_phrases):
                return None
            failed = subprocess.CompletedProcess(process.args, process.returncode, output, errors)
            raise self._fail(f"image inspect {reference}", failed, f"check that {self.display_name} works")

        return answer

    def image_command(self, image_id: str) -> tuple[list[str], list[str]]:
        result = self._capture(
            ["image", "inspect", "--format", "{{json .Config.Entrypoint}}\n{{json .Config.Cmd}}", image_id]
        )
        if result.returncode != 0:
            raise self._fail("image inspect", result, "check that the image exists")
        entrypoint, command = (json.loads(line) or [] for line in result.stdout.splitlines()[:2])
        return list(entrypoint), list(command)

    def image_user(self, image_id: str) -> str:
        return self._capture(["image", "inspect", "--format", "{{.Config.User}}", image_id]).stdout.strip()

    def image_user_ids(self, image_id: str) -> tuple[int, int] | None:
        """By asking ``id`` in the image."""
        result = self._capture(["run", "--rm", "--entrypoint", "sh", image_id, "-c", "id -u; id -g"])
        words = result.stdout.split()
        if result.returncode != 0 or len(words) != 2 or not all(word.isdigit() for word in words):
            return None
        return int(words[0]), int(words[1])

    def pull(self, reference: str, show: OutputHandler = to_stderr) -> None:
        process = subprocess.Popen(
            self.command(["pull", reference]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._stream(
            process,
            process.stdout,
            f"{self.name} pull {reference}",
            f"check the image name and that its registry is reachable ({self.name} login for private ones)",
            show,
            process.kill,
        )

    def build(self, directory: str, build_args: list[str], show: OutputHandler = to_stderr, tag: str = "") -> str:
        """The build runs in a session of its own, beside a watchdog: cut short however (Ctrl-C, its
        frontend gone, this process killed), it is stopped the engine's clean way, never killed
        midway, which leaves the engine's half-done work behind."""
        import tempfile  # not on a start path that builds nothing

        abandoned.remove_stale_iidfiles(tempfile.gettempdir())
        handle, iidfile = tempfile.mkstemp(prefix=f"podkernel-{os.getpid()}-", suffix=".iid")
        try:  # the ID file is this code's to remove until its watchdog runs (Ctrl-C can land here)
            os.close(handle)
            watchdog, output_read, output_write, lifeline = self._start_build_watchdog(iidfile)
        except BaseException:
            os.unlink(iidfile)
            raise
        process: subprocess.Popen | None = None
        try:
            with os.fdopen(output_read, encoding="utf-8", errors="replace") as lines:
                try:
                    process = subprocess.Popen(
                        self.command(
                            ["build", *build_args, *(["--tag", tag] if tag else []), "--iidfile", iidfile, directory]
                        ),
                        stdin=subprocess.DEVNULL,
                        stdout=output_write,
                        stderr=output_write,
                        start_new_session=True,
                    )
                finally:
                    os.close(output_write)
                what = f"{self.name} build {directory}"
                advice = "fix the Containerfile or the build args, then try again"
                self._stream(process, lines, what, advice, show, lambda: self.stop_build(process.pid))
            with open(iidfile, encoding="utf-8") as stream:
                return stream.read().strip()
        finally:
            if process is None or process.poll() is not None:  # ended: the watchdog goes before its lifeline
                os.killpg(watchdog.pid, signal.SIGKILL)
                watchdog.wait()
                os.unlink(iidfile)
            os.close(lifeline)  # a build still running (stopping it was cut short): the watchdog's now

    def _start_build_watchdog(self, iidfile: str) -> tuple[subprocess.Popen, int, int, int]:
        """The build's watchdog, and the pipe ends: the build's output (read, write) and the lifeline's write end."""
        output_read, output_write = os.pipe()
        lifeline_read, lifeline_write = os.pipe()
        try:
            command = self.build_watchdog_command(iidfile, output_read)
            watchdog = run_watchdog(BUILD_WATCHDOG_NAME, command, lifeline_read, output_read)
        finally:
            os.close(lifeline_read)
        return watchdog, output_read, output_write, lifeline_write

    def build_watchdog_command(self, iidfile: str, output: int) -> list[str]:
        """What a build's watchdog runs once its caller has died: ``podkernel stop-build``."""
        return STOP_BUILD.argv(self.word, iidfile, output)

    def stop_build(self, pid: int) -> None:
        """It is killed outright only when it has not ended after BUILD_STOP_S. Here: the engine's
        client is asked to stop (SIGTERM); a daemon builds and cleans up by itself."""
        processes.signal_all([pid], signal.SIGTERM)
        if not processes.wait_gone([pid], abandoned.BUILD_STOP_S):
            processes.kill_all([pid])

    def stop_abandoned_build(self, iidfile: str, output: int) -> None:
        abandoned.stop_abandoned_build(self, iidfile, output)

    def run_detached(self, run_args: list[str], output: int, launch: Launch) -> dict[str, Address]:
        """The engine runs in a session of its own: killing the caller's process group (jupyter_client's
        way to stop a kernel) must not cut a ``run`` short, which leaves what the engine had set up
        but not recorded yet (network rules, a monitor waiting forever); the watchdog waits for it
        instead (abandoned.remove_abandoned). The ports are the launch's own, on this machine."""
        returncode = self._run(
            ["run", *run_args], stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True
        ).returncode
        if returncode != 0:
            raise PodkernelError(
                f"{self.name} could not start the kernel's container (exit {returncode}): see its message above"
            )
        return dict(launch.published_ports)

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
        """SIGINT to every process of the container but its init.

        The kernel need not be the init's direct child: an entrypoint script or a ``sh -c``
        wrapper that does not ``exec`` stands between them in many images, and the init
        forwards a signal to its child alone. A wrapper shell that gets SIGINT too waits for
        its child, as it does on Ctrl-C in a terminal. The processes are found in the host's
        /proc (``main_pid`` is the container's main process, as the host sees it); where they
        may not be signalled from here, the engine forwards the signal to the init instead.
        """
        targets = processes.container_processes(main_pid)
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
        """The removal runs in a session of its own, so that killing the caller's process group
        cannot cut it short.

        A failed removal is tried again: Podman fails one whose container the runtime already has
        as stopped while Podman still has it running (its conmon was killed during the start:
        "container state improper"), and leaves it "stopping"; the next ``rm`` removes it.
        """
        for attempt in range(REMOVE_ATTEMPTS):
            if attempt:
                time.sleep(REMOVE_RETRY_S)
            result = self._run(
                ["rm", "--force", "--ignore", "--time", str(stop_timeout), container],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            if result.returncode == 0:
                return True
        print(f"podkernel: could not remove {container}: {' '.join(result.stderr.split())}", file=sys.stderr)
        return False

    def remove_abandoned(self, container: str) -> bool:
        return abandoned.remove_abandoned(self, container)

    def end_monitor(self, monitor: Monitor) -> None:
        abandoned.end_monitor(self, monitor)

    def published_ports(self, container: str) -> dict[int, int]:
        """The host ports a running container's ports are published on, by container port."""
        by_port = {}
        for line in self._capture(["port", container]).stdout.splitlines():
            inside, _, outside = line.partition(" -> ")
            inside, outside = inside.split("/")[0], outside.rpartition(":")[2]
            if inside.isdigit() and outside.isdigit():
                by_port[int(inside)] = int(outside)
        return by_port

    def main_pid(self, container: str) -> int | None:
        pid = self._capture(["inspect", "--format", "{{.State.Pid}}", container]).stdout.strip()
        return int(pid) if pid.isdigit() and pid != "0" else None

    def start_sweep(self) -> None:
        """``podkernel sweep``, in a session of its own, while this kernel starts."""
        subprocess.Popen(
            SWEEP.argv(self.word),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def watchdog_command(self, container: str, private_dir: str, pidfile: str, output: int) -> list[str]:
        """``podkernel remove-abandoned``: the kernel goes first, then its key, then the container."""
        return REMOVE_ABANDONED.argv(self.word, container, private_dir, pidfile, output)

    def start_watchdog(
        self, lifeline: int, output: int, private_dir: str, container: str, pidfile: str
    ) -> subprocess.Popen:
        """It holds the read end ``output`` of the engine's output: an engine still starting the
        container must not die of a broken pipe midway."""
        return run_watchdog(
            WATCHDOG_NAME, self.watchdog_command(container, private_dir, pidfile, output), lifeline, output
        )
