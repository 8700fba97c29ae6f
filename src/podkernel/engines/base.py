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
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from .. import processes
from ..connection import CONTAINER_DIR, START_FIFO_PATH
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
# execs the rest: the command that ends the kernel and removes what it had (watchdog_command).
WATCHDOG_SCRIPT = 'read -r _; exec "$@"'
WATCHDOG_NAME = "podkernel-watchdog"
ABANDONED_RUN_FINISH_S = 60  # how long the watchdog lets an engine's run of the container go on
ABANDONED_EXIT_S = 2  # how long a process, once killed, may take to end
BUILD_WATCHDOG_NAME = "podkernel-build-watchdog"
BUILD_STOP_S = 30  # how long a build asked to stop may take before it is killed outright


# Where the tools that engines run live. Root Podman's network backend runs iptables from
# /usr/sbin, which the PATH of services and desktop sessions often lacks ("netavark: No such
# file or directory"); the launcher runs the engine with these appended where missing.
SYSTEM_PROGRAM_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def missing_program_dirs(path: str) -> list[str]:
    """The system administration program folders that the search path ``path`` lacks."""
    present = set(path.split(os.pathsep))
    return [directory for directory in SYSTEM_PROGRAM_DIRS if directory not in present]


# The init programs a container may run as its main process (``comm``: Podman's --init runs
# catatonit as /run/podman-init). An init forwards SIGINT to its child: signalled itself as well,
# the kernel would get two interrupts, the second landing wherever the first left it.
INIT_PROGRAMS = ("catatonit", "podman-init", "tini", "docker-init", "dumb-init")


def container_processes(main_pid: int) -> list[int]:
    """A container's processes as the host sees them: its main process's descendants, and the
    main process itself unless it is an init; read from /proc, where anyone may read ``stat``."""
    found = processes.descendants(main_pid)
    program = processes.program_name(main_pid)
    return found if not program or program in INIT_PROGRAMS else [main_pid, *found]


class Monitor(NamedTuple):
    """A process that an engine runs beside a container and that waits for it to end.

    Should the engine's ``run`` die after starting it, before recording the container, the
    monitor waits forever on the OCI runtime's ``init``, and the engine knows neither.
    """

    pid: int
    command: list[str]  # its arguments: a PID since reused runs others
    container: str  # the container's name
    container_id: str
    runtime: list[str]  # the OCI runtime (runc, crun) and its global options, as the monitor runs it
    pidfile: str = ""  # where it writes the container's PID (in the launcher's private directory)


def warm_mounts(launch: Launch) -> list[str]:
    """A warm container's mounts: a tmpfs where its user writes the connection file it is handed
    through the FIFO (mode 0666 inside a directory only the host user can enter)."""
    return [
        "--tmpfs",
        f"{CONTAINER_DIR}:mode=1777",
        "--volume",
        f"{launch.start_fifo}:{START_FIFO_PATH}{':z' if launch.selinux else ''}",
    ]


def drain(fd: int, ended=None) -> None:
    """Read and drop what comes from the file descriptor ``fd`` until its end; then set the
    ``threading.Event`` ``ended``, if any."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass
    if ended is not None:
        ended.set()


def remove_stale_iidfiles(directory: str) -> None:
    """Remove this user's image ID files in ``directory`` (``podkernel-PID-*.iid``) whose creator
    PID has ended and that no process names: a creator killed before its build's watchdog
    started left them. One still named (a build being stopped) stays, so that no other user can
    put a link in its place while the engine may still write it."""
    import glob

    processes.remove_abandoned(glob.glob(os.path.join(directory, "podkernel-*-*.iid")))


def to_stderr(line: str) -> None:
    """Where build and pull output goes by default: stderr, where Jupyter logs it."""
    sys.stderr.write(line)


REMOVE_ATTEMPTS = 2  # see ContainerEngine.remove


class ContainerEngine(ABC):
    """One container engine, driven through its command line. Output for people goes to stderr."""

    name: str  # what --engine and the kernelspec call it
    display_name: str  # what people call it
    install_hint: str
    supports_keep_id = False  # whether --keep-id can map the host user into the container
    remote = False  # whether the containers run on another machine (engines/remote.py)
    # Whether every user's containers are listed together (a daemon's), not each user's apart:
    # then only a container labelled as this user's (plan.launcher_labels) is this user's to judge.
    shared_by_users = False
    # Whether the connection file's copy must be readable by any container user, because the
    # engine cannot hand a mounted file to the container's user (it stays in a 0700 directory).
    copy_for_any_user = False
    # What the engine says (in lower case) when asked about an image that it does not have.
    missing_image_phrases: tuple[str, ...] = ("no such image",)

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

    @property
    def word(self) -> str:
        """This engine as one word on a watchdog's command line (engines.engine_from_word)."""
        return self.name

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

    def watchdog_command(self, container: str, private_dir: str, pidfile: str, output: int) -> list[str]:
        """What the watchdog runs once the launcher has died: ``podkernel remove-abandoned``, which
        kills the kernel (PID in ``pidfile``), removes ``private_dir`` and then the container,
        reading and dropping the engine's output (file descriptor ``output``) meanwhile."""
        return [
            sys.executable,
            "-m",
            "podkernel",
            "remove-abandoned",
            self.word,
            container,
            private_dir,
            pidfile,
            str(output),
        ]

    # Operations.

    def command(self, args: list[str]) -> list[str]:
        """The engine's full command line for ``args``."""
        return [self.executable, *args]

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(args), text=True, **kwargs)

    def _capture(self, args: list[str]) -> subprocess.CompletedProcess:
        return self._run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def _stream(
        self, process: subprocess.Popen, lines, what: str, advice: str, show: OutputHandler, stop: Callable[[], None]
    ) -> None:
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
                import select
                import threading

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
        """The full ID of a local image, or None when the engine has no such image.

        Any other failure to look it up (the engine not answering) is an error, never taken
        for a missing image: that would pull, and blame the image's name.
        """
        return self.image_id_soon(reference)()

    def image_id_soon(self, reference: str) -> Callable[[], str | None]:
        """Start looking up :meth:`image_id` now; the function returned waits for the answer."""
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
        """An image's entrypoint and command (``ENTRYPOINT``, ``CMD``), each a list of words."""
        result = self._capture(
            ["image", "inspect", "--format", "{{json .Config.Entrypoint}}\n{{json .Config.Cmd}}", image_id]
        )
        if result.returncode != 0:
            raise self._fail("image inspect", result, "check that the image exists")
        entrypoint, command = (json.loads(line) or [] for line in result.stdout.splitlines()[:2])
        return list(entrypoint), list(command)

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
        """Build a directory's Containerfile with the user's build args (and ``tag``); return the image ID.

        The build runs in a session of its own, beside a watchdog: cut short however (Ctrl-C, its
        frontend gone, this process killed), it is stopped the engine's clean way
        (:meth:`stop_build`), never killed midway, which leaves the engine's half-done work behind.
        """
        import tempfile

        remove_stale_iidfiles(tempfile.gettempdir())
        handle, iidfile = tempfile.mkstemp(prefix=f"podkernel-{os.getpid()}-", suffix=".iid")
        try:  # the ID file is this code's to remove until its watchdog runs (Ctrl-C can land here)
            os.close(handle)
            output_read, output_write = os.pipe()
            lifeline_read, lifeline_write = os.pipe()
            try:
                watchdog = _run_watchdog(
                    BUILD_WATCHDOG_NAME, self.build_watchdog_command(iidfile, output_read), lifeline_read, output_read
                )
            finally:
                os.close(lifeline_read)
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
                self._stream(
                    process,
                    lines,
                    f"{self.name} build {directory}",
                    "fix the Containerfile or the build args, then try again",
                    show,
                    lambda: self.stop_build(process.pid),
                )
            with open(iidfile, encoding="utf-8") as stream:
                return stream.read().strip()
        finally:
            if process is None or process.poll() is not None:  # ended: the watchdog goes before its lifeline
                os.killpg(watchdog.pid, signal.SIGKILL)
                watchdog.wait()
                os.unlink(iidfile)
            os.close(lifeline_write)  # a build still running (stopping it was cut short): the watchdog's now

    def build_watchdog_command(self, iidfile: str, output: int) -> list[str]:
        """What a build's watchdog runs once its caller has died: ``podkernel stop-build``
        (:meth:`stop_abandoned_build`)."""
        return [sys.executable, "-m", "podkernel", "stop-build", self.word, iidfile, str(output)]

    def stop_build(self, pid: int) -> None:
        """Stop the engine's build ``pid`` so that it leaves nothing behind; it is killed outright
        only when it has not ended after BUILD_STOP_S. Here: the engine's client is asked to
        stop (SIGTERM), for a daemon builds and cleans up by itself."""
        processes.signal_all([pid], signal.SIGTERM)
        if not processes.wait_gone([pid], BUILD_STOP_S):
            processes.kill_all([pid])

    def stop_abandoned_build(self, iidfile: str, output: int) -> None:
        """Stop the build that writes ``iidfile``, whose caller has died (:meth:`stop_build`);
        meanwhile read and drop its output (the read end ``output``) until it has ended. Then
        remove ``iidfile``."""
        import threading

        ended = threading.Event()
        threading.Thread(target=drain, args=(output, ended), daemon=True).start()
        deadline = time.monotonic() + BUILD_STOP_S + ABANDONED_EXIT_S
        while not ended.wait(0.05) and time.monotonic() < deadline:
            for pid, args in processes.naming([iidfile])[iidfile].items():
                if ("--iidfile", iidfile) in zip(args, args[1:], strict=False):  # the build, not this watchdog
                    self.stop_build(pid)
        try:
            os.unlink(iidfile)
        except FileNotFoundError:
            pass

    def run_detached(self, run_args: list[str], output: int, launch: Launch) -> None:
        """``ENGINE run`` the given arguments (which include ``--detach``).

        The engine's output, and the container's own where it passes through, goes to the file
        descriptor ``output``. Once this returns, ``launch.container_pidfile`` holds the PID of
        the container's main process. The engine runs in a session of its own: killing the
        caller's process group (jupyter_client's way to stop a kernel) must not cut a ``run``
        short, which leaves what the engine had set up but not recorded yet (network rules,
        a monitor waiting forever); the watchdog waits for it instead (remove_abandoned).
        """
        returncode = self._run(
            ["run", *run_args], stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True
        ).returncode
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

        A failed removal is tried once more: Podman fails one whose container the runtime already
        has as stopped while Podman still has it running (its conmon was killed during the start:
        "container state improper"), and leaves it "stopping"; the next ``rm`` removes it.
        """
        for _ in range(REMOVE_ATTEMPTS):
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
        """Remove a container whose launcher died, however far its start had got.

        The engine's own ``run`` of it may still be running: it is waited for (the engine
        records and tears down only what a finished ``run`` set up), and killed only if it does
        not end in time; then the container is removed, and any monitor of it that a killed
        ``run`` left waiting forever (:meth:`monitors`) is ended. Returns whether it is gone.
        """
        runs = [pid for pid in processes.all_pids() if self._is_run_of(pid, container)]
        if not processes.wait_gone(runs, ABANDONED_RUN_FINISH_S):
            processes.kill_all(runs)
            processes.wait_gone(runs, ABANDONED_EXIT_S)
        watching = [monitor for monitor in self.monitors() if monitor.container == container]
        gone = self.remove(container, 0)
        if gone:
            for monitor in watching:
                self.end_monitor(monitor)
        return gone

    def end_monitor(self, monitor: Monitor) -> None:
        """End a monitor whose container the engine has removed or never recorded, and whatever it
        started, then have the runtime delete what it kept of the container.

        All are frozen first, so that none can start another. A monitor that runs the engine
        (its exit command, once its container has ended) is finishing as it should: it is let
        go on, since an engine killed midway can leave its locks or network rules behind.
        """
        if processes.command_line(monitor.pid) == monitor.command:
            tree = processes.freeze_tree(monitor.pid)
            if any(processes.program_name(pid) == self.name for pid in tree):
                processes.signal_all(tree, signal.SIGCONT)
                processes.wait_gone([monitor.pid], ABANDONED_RUN_FINISH_S)
            else:
                processes.signal_all(tree, signal.SIGKILL)
                processes.wait_gone(tree, ABANDONED_EXIT_S)
        if monitor.runtime and monitor.container_id:
            subprocess.run(
                [*monitor.runtime, "delete", "--force", monitor.container_id],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def _is_run_of(self, pid: int, container: str) -> bool:
        """Whether ``pid`` is this user's ``ENGINE run`` of ``container``."""
        args = processes.command_line(pid)
        return (
            bool(args)
            and os.path.basename(args[0]) == self.name
            and "run" in args
            and container in args
            and processes.is_mine(pid)
        )

    @abstractmethod
    def monitors(self) -> list[Monitor]:
        """This user's container monitors: the processes, run beside each container, that wait
        for it to end (Podman's conmon); none where a daemon owns them."""

    def unrecorded_containers(self) -> list[str]:
        """The names of containers in the engine's storage that the engine never recorded (its
        ``run`` killed between the two); none where the engine keeps no such thing."""
        return []

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
        """The host PID of a running container's main process; None when it does not run."""
        pid = self._capture(["inspect", "--format", "{{.State.Pid}}", container]).stdout.strip()
        return int(pid) if pid.isdigit() and pid != "0" else None

    @abstractmethod
    def exit_status(self, label: str) -> int | None:
        """The exit status of the container carrying ``label`` that ended in the last few minutes,
        from the engine's events (the container itself is gone: ``--rm``); None when none ended."""

    @abstractmethod
    def containers(self, label: str) -> list[dict]:
        """The containers (running or not) that carry ``label``, as records with Podman's JSON keys:
        ``Id``, ``Names``, ``Labels``, ``State``, ``Created`` (seconds since the epoch)."""

    def start_sweep(self) -> None:
        """Start ``podkernel sweep``, in a session of its own: it removes the containers whose
        launcher is gone (containers.remove_launcherless) while this kernel starts."""
        subprocess.Popen(
            [sys.executable, "-m", "podkernel", "sweep", self.word],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start_watchdog(
        self, lifeline: int, output: int, private_dir: str, container: str, pidfile: str
    ) -> subprocess.Popen:
        """Start the watchdog, in a session of its own, reading the pipe end ``lifeline``.

        When the pipe's other end closes (the supervisor is gone, however it died) the watchdog
        kills the kernel's process, removes ``private_dir`` and removes the container. It holds
        the read end ``output`` of the engine's output too: an engine still starting the container
        must not die of a broken pipe midway.
        """
        return _run_watchdog(
            WATCHDOG_NAME, self.watchdog_command(container, private_dir, pidfile, output), lifeline, output
        )


def _run_watchdog(name: str, command: list[str], lifeline: int, output: int) -> subprocess.Popen:
    """``sh`` named ``name``, in a session of its own, that runs ``command`` once ``lifeline``
    (its stdin) reaches its end; it keeps ``output`` open meanwhile."""
    return subprocess.Popen(
        ["sh", "-c", WATCHDOG_SCRIPT, name, *command],
        stdin=lifeline,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(output,),
        start_new_session=True,
    )
