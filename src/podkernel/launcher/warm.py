"""Warm kernels: a container started ahead of time that waits for its connection file.

A kernel installed with ``--warm`` keeps one such container ready, started with a cold start's
run args behind a wrapper (plan/wrappers/) that waits on a FIFO; the launcher that claims it
writes the connection file into the FIFO, and the wrapper saves it inside the container and
execs the kernel (the key never touches the host's disk). Each warm container has a directory
here, private to this user, with the FIFO, its pidfile and ``warm.json``; a launcher claims it
by renaming ``ready`` to ``claimed`` (only one rename can succeed), and only when its digest
(settings, image ID, and the folder with ``--mount-cwd``) matches the start's. Unclaimed, it
ends itself after the kernel's idle time, even with no podkernel process left.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from ..engines import engine_for
from ..engines.base import ContainerEngine
from ..errors import PodkernelError
from ..model.connection import PORT_KEYS, Connection
from ..model.internal_commands import WARM_UP
from ..model.labels import WARM_LABEL
from ..model.launch import Launch, new_launch
from ..model.settings import KernelSettings
from ..plan.run_args import WARM_WAIT_NAME, kernel_command, preloadable_python_kernel, warm_run_args
from ..system import kernelspecs
from ..system.host import selinux_enabled
from ..system.private_dir import shared_private_dir
from ..system.processes import command_line, container_processes, program_name, read_pid
from .images import resolve_image
from .relay import hold_spare_port, translated_ports
from .userns import keep_id_userns

ROOT_NAME = "podkernel-warm"
STATE = "warm.json"
READY, CLAIMED, LAUNCHER = "ready", "claimed", "launcher"
FIFO = ".start"
OUTPUT = "output"  # a FIFO: the container's output, copied to stderr by the launcher that claims it
EXPIRY_MARGIN_S = 30  # a container this close to its idle end (or a quarter of it) is not claimed any more
WAITING_TIMEOUT_S = 30  # how long a new warm container may take to reach its wait
# The wrapper's exit statuses that say why an image cannot be kept warm.
EXIT_REASONS = {
    97: "the image lacks cat, sleep or mv, which the warm wrapper needs",
    126: "the image has no usable /bin/sh (or the kernel's Python) for the warm wrapper",
    127: "the image has no /bin/sh (or the kernel's Python) for the warm wrapper",
}


class WarmContainer(NamedTuple):
    """A claimed warm container: where its files are, and the ports it publishes."""

    directory: str
    container: str
    published_ports: dict[str, int]

    @property
    def fifo(self) -> str:
        return os.path.join(self.directory, FIFO)

    @property
    def output(self) -> str:
        return os.path.join(self.directory, OUTPUT)


def root() -> str:
    """The folder of the warm containers' directories, made private on first use."""
    return shared_private_dir(ROOT_NAME)


def digest(settings: KernelSettings, image_id: str, cwd: str) -> str:
    """What a warm container must match to be used: the kernel's settings, its image, its folder.

    Kept whole, as canonical JSON: hashing would load OpenSSL into every launcher.
    """
    facts = {"settings": settings.to_metadata(), "name": settings.name, "image": image_id}
    if settings.mount_cwd:
        facts["cwd"] = cwd
    return json.dumps(facts, sort_keys=True)


def _read_state(directory: str) -> dict | None:
    try:
        with open(os.path.join(directory, STATE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _entries(name: str) -> list[str]:
    """The directories of the kernel's warm containers (``NAME--SUFFIX``)."""
    base = root()
    return [
        os.path.join(base, entry)
        for entry in sorted(os.listdir(base))
        if "--" in entry and entry.rsplit("--", 1)[0] == name and os.path.isdir(os.path.join(base, entry))
    ]


def _is_waiting(directory: str) -> bool:
    """Whether the container's wrapper waits on its FIFO now (its ``cat`` runs, or a Python kernel's
    own Python, renamed while it waits), read from /proc."""
    main_pid = read_pid(os.path.join(directory, "container.pid"))
    return main_pid is not None and any(
        program_name(pid) in ("cat", WARM_WAIT_NAME) for pid in container_processes(main_pid)
    )


def claim(settings: KernelSettings, image_id: str, cwd: str) -> WarmContainer | None:
    """Take a waiting warm container that matches this start, or None; stale directories are tidied."""
    wanted = digest(settings, image_id, cwd)
    now = time.time()
    for directory in _entries(settings.name):
        state = _read_state(directory)
        ready = os.path.join(directory, READY)
        margin = min(EXPIRY_MARGIN_S, settings.warm_idle_s / 4)
        if _tidy(directory, state):
            continue
        if state["digest"] != wanted or now > state["expires"] - margin or not os.path.exists(ready):
            continue
        try:
            os.rename(ready, os.path.join(directory, CLAIMED))
        except FileNotFoundError:  # another launcher was quicker
            continue
        if not _is_waiting(directory):  # ended or removed meanwhile: its directory is all that is left
            shutil.rmtree(directory, ignore_errors=True)
            continue
        with open(os.path.join(directory, LAUNCHER), "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
        return WarmContainer(directory, state["container"], state["published_ports"])
    return None


def release(warm: WarmContainer) -> None:
    """Give a claimed warm container back, unused, to the next start."""
    try:
        os.unlink(os.path.join(warm.directory, LAUNCHER))
        os.rename(os.path.join(warm.directory, CLAIMED), os.path.join(warm.directory, READY))
    except OSError:
        pass  # then it waits until its idle time is over, and ends itself


def _tidy(directory: str, state: dict | None) -> bool:
    """Remove the directory of a warm container that has ended itself (idle time over, and no
    launcher alive that owns it); whether it did."""
    if state is not None and time.time() < state["expires"] + EXPIRY_MARGIN_S:
        return False
    try:  # no state yet: being prepared, unless that began long ago
        if state is None and time.time() - os.stat(directory).st_mtime < 2 * WAITING_TIMEOUT_S:
            return False
    except OSError:
        return False
    launcher = read_pid(os.path.join(directory, LAUNCHER))
    if launcher is not None and any("podkernel" in word for word in command_line(launcher)):
        return False  # its kernel runs (its watchdog removes the directory)
    shutil.rmtree(directory, ignore_errors=True)
    return True


def hand_over(warm: WarmContainer, connection: Connection) -> None:
    """Give the claimed container its connection file: the kernel starts at once."""
    contents = dict(connection.info, ip="0.0.0.0", **{key: warm.published_ports[key] for key in PORT_KEYS})
    try:
        descriptor = os.open(warm.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise PodkernelError(f"warm container {warm.container} stopped waiting: restart the kernel") from None
        raise
    os.set_blocking(descriptor, True)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(contents, handle)


@contextmanager
def _kernel_lock(name: str) -> Iterator[None]:
    """One preparation or removal at a time per kernel."""
    with open(os.path.join(root(), f"{name}.lock"), "w", encoding="ascii") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def prepare(
    settings: KernelSettings,
    engine: ContainerEngine,
    image_id: str,
    cwd: str,
    still_wanted: Callable[[], bool] = lambda: True,
) -> str:
    """Start a warm container for the kernel unless one waits already; say what happened, for people.

    ``still_wanted`` is asked once this holds the kernel's lock: the kernel may have been
    removed, or switched off, while this waited.
    """
    with _kernel_lock(settings.name):
        if not still_wanted():
            return f"kernel {settings.name} no longer wants a warm container"
        wanted = digest(settings, image_id, cwd)
        if waiting := _waiting_one(settings, wanted):
            return f"warm container {waiting['container']} is waiting{waiting.get('preloaded', '')}"
        command = kernel_command(settings, *engine.image_command(image_id))  # only for a new one: a Podman call
        if not command:
            return _cold(settings.name, "the image has no command and the kernel none after --")
        preloaded = ", its kernel's modules imported" if preloadable_python_kernel(command) else ""
        launch = _warm_launch(settings, engine, image_id, cwd)
        directory = os.path.dirname(launch.connection_copy)
        output_path = os.path.join(directory, OUTPUT)
        os.mkfifo(output_path, 0o600)
        output = os.open(output_path, os.O_RDWR | os.O_CLOEXEC)  # read-write: opening does not wait for a reader
        try:
            engine.run_detached(warm_run_args(settings, launch, engine, command, settings.warm_idle_s), output, launch)
        except PodkernelError:
            shutil.rmtree(directory, ignore_errors=True)
            return _cold(settings.name, f"{engine.name} could not start a warm container")
        finally:
            os.close(output)
        state = {
            "container": launch.container_name,
            "published_ports": launch.published_ports,
            "digest": wanted,
            "expires": time.time() + settings.warm_idle_s,
            "preloaded": preloaded,
        }
        with open(os.path.join(directory, STATE), "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        if reason := _wait_until_waiting(engine, launch):
            return _cold(settings.name, reason)
        open(os.path.join(directory, READY), "w").close()
        _forget_cold(settings.name)
        return f"warm container {launch.container_name} is waiting (for {settings.warm_idle_s} s at most){preloaded}"


def _waiting_one(settings: KernelSettings, wanted: str) -> dict | None:
    """The state of a warm container that waits for the kernel with digest ``wanted``, and will
    for a while yet; None when none does."""
    for directory in _entries(settings.name):
        state = _read_state(directory)
        if state and state["digest"] == wanted and os.path.exists(os.path.join(directory, READY)):
            margin = min(2 * EXPIRY_MARGIN_S, settings.warm_idle_s / 2)
            if time.time() < state["expires"] - margin and _is_waiting(directory):
                return state
    return None


def _warm_launch(settings: KernelSettings, engine: ContainerEngine, image_id: str, cwd: str) -> Launch:
    """A new warm container's launch, in a new directory with its FIFO, on spare ports."""
    suffix = os.urandom(4).hex()
    directory = os.path.join(root(), f"{settings.name}--{suffix}")
    os.mkdir(directory, 0o700)
    fifo = os.path.join(directory, FIFO)
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)  # any container user may read it; no other host user can reach it
    avoid = translated_ports()
    spares = {key: hold_spare_port(avoid) for key in PORT_KEYS}
    ports = {key: spare.getsockname()[1] for key, spare in spares.items()}
    for spare in spares.values():
        spare.close()
    return new_launch(
        settings.name,
        image_id,
        suffix=f"warm-{suffix}",
        private_dir=directory,
        ports=ports,
        published_ports=ports,
        connection_file="",
        launcher_pid="",
        cwd=cwd,
        userns=keep_id_userns(settings, engine, image_id),
        selinux=selinux_enabled(),
        start_fifo=fifo,
    )


def _wait_until_waiting(engine: ContainerEngine, launch: Launch) -> str:
    """Wait until a new warm container waits for its start; else remove it and say why ("" when it waits)."""
    directory = os.path.dirname(launch.connection_copy)
    deadline = time.monotonic() + WAITING_TIMEOUT_S
    while not _is_waiting(directory):
        if engine.main_pid(launch.container_name) is None or time.monotonic() > deadline:
            status = engine.exit_status(f"{WARM_LABEL}={directory}")
            engine.remove(launch.container_name, stop_timeout=0)
            shutil.rmtree(directory, ignore_errors=True)
            return EXIT_REASONS.get(status or 0, f"the warm wrapper ended with status {status}")
        time.sleep(0.05)
    return ""


def _cold_path(name: str) -> str:
    return os.path.join(root(), f"{name}.cold")


def _cold(name: str, reason: str) -> str:
    """Note why the kernel starts cold (``show`` tells), and return it."""
    with open(_cold_path(name), "w", encoding="utf-8") as handle:
        handle.write(reason)
    return f"starts cold: {reason}"


def _forget_cold(name: str) -> None:
    try:
        os.unlink(_cold_path(name))
    except FileNotFoundError:
        pass


def status(name: str) -> str:
    """For ``show``: whether a warm container waits for the kernel, or why it starts cold."""
    try:
        with open(_cold_path(name), encoding="utf-8") as handle:
            return f"starts cold: {handle.read().strip()}"
    except FileNotFoundError:
        pass
    waiting = [directory for directory in _entries(name) if os.path.exists(os.path.join(directory, READY))]
    waiting = [state["container"] for state in map(_read_state, waiting) if state and time.time() < state["expires"]]
    return f"warm container(s) waiting: {', '.join(waiting)}" if waiting else "no warm container waits right now"


def discard(engine: ContainerEngine, name: str) -> list[str]:
    """Remove the kernel's waiting warm containers (claimed ones belong to their launchers)."""
    with _kernel_lock(name):
        removed = _discard_waiting(engine, name)
    _forget_cold(name)
    return removed


def _discard_waiting(engine: ContainerEngine, name: str) -> list[str]:
    removed = []
    for directory in _entries(name):
        state = _read_state(directory)
        if _tidy(directory, state):
            continue
        ready = os.path.join(directory, READY)
        try:
            os.rename(ready, os.path.join(directory, CLAIMED))  # claimed by this removal
        except FileNotFoundError:
            if os.path.exists(os.path.join(directory, LAUNCHER)) or (state and time.time() < state["expires"]):
                continue
        if state:
            engine.remove(state["container"], stop_timeout=0)
            removed.append(state["container"])
        shutil.rmtree(directory, ignore_errors=True)
    return removed


def warm_up(name: str, resource_dir: str | None = None) -> str:
    """Prepare a warm container for an installed warm kernel, unless one waits; say what happened."""
    settings = kernelspecs.load(name, resource_dir).settings
    if not settings.warm:
        return f"kernel {settings.name} is not warm"
    engine = engine_for(settings)
    image_id = resolve_image(settings, engine, show=lambda line: None)

    def still_wanted() -> bool:
        try:
            return kernelspecs.load(name, resource_dir).settings == settings
        except PodkernelError:  # removed meanwhile
            return False

    return prepare(settings, engine, image_id, os.getcwd(), still_wanted)


def start_warming(name: str, resource_dir: str | None) -> None:
    """Prepare the kernel's next warm container in the background, in a session of its own."""
    subprocess.Popen(
        WARM_UP.argv(name, *([resource_dir] if resource_dir else [])),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
