"""The interface every container engine implements: what the launcher, the commands and the doctor
may ask of one. Everything that differs between engines is answered here, by the engine object.

Facts (class attributes and pure methods) only compute arguments and words, so the launch plan
stays unit-testable without an engine installed; verbs run the engine. A new engine implements
the abstract members (most come from cli_engine.CliEngine for an engine driven through its
command line) and overrides the hooks where it differs.
"""

from __future__ import annotations

import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple

from ..model.launch import Address, Launch
from ..model.settings import KernelSettings
from ..plan.run_args import run_args

OutputHandler = Callable[[str], None]


class HostFacts(NamedTuple):
    """What ``ENGINE info`` says that ``podkernel doctor`` reports."""

    version: str
    rootless: bool
    storage_driver: str
    runtime: str  # the OCI runtime and its version, for people to read


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


def to_stderr(line: str) -> None:
    """Where build and pull output goes by default: stderr, where Jupyter logs it."""
    sys.stderr.write(line)


# The doctor's checks (doctor/checks.py), in the order they run on an engine of this machine.
LOCAL_CHECKS = (
    "engine_installed", "mode", "storage", "runtime", "container_runs", "port_reachable",
    "watchdog_tool", "search_path", "selinux", "nvidia_cdi", "kernels_dir", "orphans",
)  # fmt: skip


class ContainerEngine(ABC):
    """One container engine. Output for people goes to stderr."""

    name: str  # what --engine and the kernelspec call it
    display_name: str  # what people call it
    install_hint: str
    supports_keep_id = False  # whether --keep-id can map the host user into the container
    supports_warm = True  # whether a warm container can wait here for a start (launcher/warm.py)
    # Whether the kernel's ports are published on spare ports of this machine that the launcher
    # holds for them (launcher/relay.py); otherwise run_detached says where they are reached.
    publishes_on_spare_ports = True
    # Whether every user's containers are listed together (a daemon's), not each user's apart:
    # then only a container labelled as this user's (model.labels.launcher_labels) is this user's to judge.
    shared_by_users = False
    # Whether the connection file's copy must be readable by any container user, because the
    # engine cannot hand a mounted file to the container's user (it stays in a 0700 directory).
    copy_for_any_user = False

    # Facts: arguments and words, no engine process.

    @property
    def word(self) -> str:
        """This engine as one word on a hidden subcommand's line (engines.engine_from_word)."""
        return self.name

    @abstractmethod
    def gpu_args(self, kind: str | None) -> list[str]:
        """The plan's: run args that pass the host's GPUs of ``kind`` (``nvidia``, ``amd``) in; none for None."""

    @abstractmethod
    def kernel_args(self, launch: Launch, run_args: list[str]) -> list[str]:
        """The plan's: run args, besides podkernel's common ones, that hand the kernel its connection
        file, tell the launcher the kernel's PID and route the kernel's output; ``run_args`` are the user's."""

    def install_warnings(self, settings: KernelSettings) -> list[str]:
        """install's: what will not work on this engine as the user may expect, with what to do instead."""
        if settings.keep_id and not self.supports_keep_id:
            return [f"--keep-id is for rootless Podman; {self.display_name} kernels run as the image's user"]
        return []

    def run_args(self, settings: KernelSettings, launch: Launch) -> list[str]:
        """The launcher's and show's: the arguments after ``ENGINE run`` that start the kernel."""
        return run_args(settings, launch, self)

    def published_placeholder(self, key: str) -> str:
        """show's: what stands for the host port that the kernel port ``key`` is published on."""
        return "{published_" + key + "}"

    def doctor_checks(self) -> tuple[str, ...]:
        """doctor's: the names of its checks that apply to this engine, in order."""
        return LOCAL_CHECKS

    # Verbs: each runs the engine.

    @property
    @abstractmethod
    def executable(self) -> str:
        """The engine's command; a one-line error when it is not installed."""

    @abstractmethod
    def describe_run(self, run_args: list[str]) -> list[str]:
        """show's: the lines that tell people what a start runs with ``run_args``."""

    @abstractmethod
    def host_facts(self) -> HostFacts:
        """doctor's: version, mode, storage and runtime, from ``ENGINE info``."""

    def version_advice(self, version: str) -> str:
        """doctor's: what to do about an engine version podkernel is not tested with; ``""`` when fine."""
        return ""

    def connect(self) -> str:
        """doctor's: make sure the way to the engine works; describe it ("" where there is no way to
        check: the engine is on this machine). A failure is an error whose message ends in ``-- FIX``."""
        return ""

    @abstractmethod
    def run_once(self, run_args: list[str]) -> subprocess.CompletedProcess:
        """doctor's: ``ENGINE run --rm`` with the given arguments, its output captured."""

    @abstractmethod
    def reach_published(self, container: str, port: int, directory: str) -> Address:
        """doctor's: where this machine reaches ``port`` of a running container, published on its
        host's 127.0.0.1 (a forward may be made in the private ``directory``)."""

    @abstractmethod
    def missing_tools(self, tools: tuple[str, ...]) -> list[str]:
        """doctor's: which of ``tools`` the host where containers run lacks."""

    def cleanup_tools(self) -> tuple[str, ...]:
        """doctor's: the programs that clean up after a killed launcher need where they run."""
        return ("sh",)

    @abstractmethod
    def image_id(self, reference: str) -> str | None:
        """The launcher's: the full ID of a local image, None when the engine has no such image.
        Any other failure is an error, never taken for a missing image."""

    @abstractmethod
    def image_id_soon(self, reference: str) -> Callable[[], str | None]:
        """The launcher's: start looking up :meth:`image_id` now; the function returned waits for it."""

    @abstractmethod
    def image_command(self, image_id: str) -> tuple[list[str], list[str]]:
        """The plan's (warm and remote kernels): an image's entrypoint and command, as lists of words."""

    @abstractmethod
    def image_user(self, image_id: str) -> str:
        """--keep-id's: the user an image runs as (its ``USER``), ``""`` when unset."""

    @abstractmethod
    def image_user_ids(self, image_id: str) -> tuple[int, int] | None:
        """--keep-id's: the uid and gid of the image's user inside it; None when that cannot be found."""

    @abstractmethod
    def pull(self, reference: str, show: OutputHandler = to_stderr) -> None:
        """The launcher's: pull an image, handing the engine's progress lines to ``show``."""

    @abstractmethod
    def build(self, directory: str, build_args: list[str], show: OutputHandler = to_stderr, tag: str = "") -> str:
        """The launcher's: build a folder with the user's build args (and ``tag``); return the image ID.
        Cut short however, the build is stopped the engine's clean way (:meth:`stop_build`)."""

    @abstractmethod
    def stop_build(self, pid: int) -> None:
        """Stop the engine's build ``pid`` so that it leaves nothing behind."""

    @abstractmethod
    def stop_abandoned_build(self, iidfile: str, output: int) -> None:
        """The build watchdog's (``podkernel stop-build``): stop the build that writes ``iidfile``,
        whose caller has died, reading and dropping its output (``output``); then remove ``iidfile``."""

    @abstractmethod
    def run_detached(self, run_args: list[str], output: int, launch: Launch) -> dict[str, Address]:
        """The supervisor's: ``ENGINE run`` the given arguments (which include ``--detach``).

        The engine's output, and the container's own where it passes through, goes to the file
        descriptor ``output``. Once this returns, ``launch.container_pidfile`` holds the PID of the
        process that stands for the kernel. Returns where this machine reaches the kernel's ports,
        by key (the relay forwards to them).
        """

    @abstractmethod
    def interrupt(self, container: str, main_pid: int) -> None:
        """The supervisor's: interrupt the kernel as Ctrl-C would (``main_pid``: the pidfile's)."""

    @abstractmethod
    def remove(self, container: str, stop_timeout: int) -> bool:
        """Stop (SIGTERM, then SIGKILL after ``stop_timeout`` s) and remove a container, if it exists;
        whether it is gone (a failure is reported on stderr)."""

    @abstractmethod
    def remove_abandoned(self, container: str) -> bool:
        """The watchdog's (``podkernel remove-abandoned``): remove a container whose launcher died,
        however far its start had got; whether it is gone."""

    @abstractmethod
    def watchdog_command(self, container: str, private_dir: str, pidfile: str, output: int) -> list[str]:
        """What the watchdog runs once the launcher has died: it kills the kernel (PID in ``pidfile``),
        removes ``private_dir`` and then the container, reading and dropping ``output`` meanwhile."""

    @abstractmethod
    def start_watchdog(
        self, lifeline: int, output: int, private_dir: str, container: str, pidfile: str
    ) -> subprocess.Popen:
        """The supervisor's: start the watchdog (:meth:`watchdog_command`), in a session of its own,
        reading the pipe end ``lifeline``; it holds ``output`` open meanwhile."""

    def start_sweep(self) -> None:
        """The supervisor's: remove, in the background, the containers whose launcher is gone
        (launcher.reaper.remove_launcherless); a no-op where something else removes them."""
        return None

    @abstractmethod
    def monitors(self) -> list[Monitor]:
        """The sweep's and prune's: this user's container monitors (Podman's conmon); none where a
        daemon owns them."""

    @abstractmethod
    def end_monitor(self, monitor: Monitor) -> None:
        """The sweep's and prune's: end a monitor whose container the engine never recorded, and
        what it started."""

    def unrecorded_containers(self) -> list[str]:
        """The sweep's and prune's: the names of containers in the engine's storage that the engine
        never recorded (its ``run`` killed between the two); none where it keeps no such thing."""
        return []

    @abstractmethod
    def main_pid(self, container: str) -> int | None:
        """The trial's and warm's: the host PID of a running container's main process; None when it
        does not run."""

    @abstractmethod
    def exit_status(self, label: str) -> int | None:
        """The trial's and warm's: the exit status of the container carrying ``label`` that ended in
        the last few minutes (the container itself is gone: ``--rm``); None when none ended."""

    @abstractmethod
    def containers(self, label: str) -> list[dict]:
        """ps's, prune's, the sweep's and the trial's: the containers (running or not) that carry
        ``label``, as records with Podman's JSON keys: ``Id``, ``Names``, ``Labels``, ``State``,
        ``Created`` (seconds since the epoch)."""
