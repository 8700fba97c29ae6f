"""podkernel's containers as the engine lists them (which kernel, which launcher, whether it still runs),
and the sweep that removes those whose launcher is gone."""

from __future__ import annotations

import os
import socket
import time
from typing import NamedTuple

from ..engines.base import ContainerEngine, Monitor
from ..model.labels import (
    KERNEL_LABEL,
    LAUNCHER_HOST_LABEL,
    LAUNCHER_PID_LABEL,
    LAUNCHER_UID_LABEL,
    WARM_LABEL,
    is_container_name,
)
from ..system import processes
from .warm import LAUNCHER


class KernelContainer(NamedTuple):
    """One container that podkernel started."""

    name: str
    id: str
    kernel: str
    state: str
    created: float
    launcher_pid: int | None
    owner_alive: bool
    warm: bool = False  # a warm container that waits for a start (no launcher yet)
    launcher_host: str = ""  # another machine's name, where the launcher of a remote kernel runs
    launcher_uid: str = ""  # another user's, or "unknown", whose launcher runs it (a shared engine's)

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.created)


def launcher_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live ``podkernel start`` process (not just any process reusing the PID)."""
    words = processes.command_line(pid) if pid is not None else []
    return "podkernel" in " ".join(words) and "start" in words


def kernel_containers(engine: ContainerEngine) -> list[KernelContainer]:
    """Every container carrying podkernel's kernel label, oldest first. Whether its launcher
    lives is judged only for this machine's and this user's (where the engine lists other users'
    too, by the label that says so): another user's may be hidden from this one's /proc."""
    found = []
    me, here = str(os.getuid()), socket.gethostname()
    for record in engine.containers(KERNEL_LABEL):
        labels = record.get("Labels") or {}
        pid_text = labels.get(LAUNCHER_PID_LABEL, "")
        waiting = WARM_LABEL in labels
        if waiting:  # a claimed one's launcher notes its PID in the warm directory
            pid_text = _read_text(os.path.join(labels[WARM_LABEL], LAUNCHER))
            waiting = not pid_text
        pid = int(pid_text) if pid_text.isdigit() else None
        elsewhere = labels.get(LAUNCHER_HOST_LABEL, here)
        elsewhere = "" if elsewhere == here else elsewhere
        user = labels.get(LAUNCHER_UID_LABEL, "unknown" if engine.shared_by_users else me)
        user = "" if user == me else user
        found.append(
            KernelContainer(
                name=(record.get("Names") or [record["Id"][:12]])[0],
                id=record["Id"],
                kernel=labels.get(KERNEL_LABEL, ""),
                state=record.get("State", ""),
                created=float(record.get("Created") or 0),
                launcher_pid=pid,
                owner_alive=launcher_alive(pid) if not elsewhere and not user else True,  # not ours to judge
                warm=waiting,
                launcher_host=elsewhere,
                launcher_uid=user,
            )
        )
    return sorted(found, key=lambda container: container.created)


def remove_launcherless(engine: ContainerEngine) -> None:
    """Remove the containers whose launcher on this machine is gone, and what killed starts left
    (:func:`remove_left_by_killed_starts`). A warm container that waits for a
    start has no launcher yet and stays (it ends itself once idle). What a start runs once it
    found the private directory of a launcher killed with its watchdog (every process of a
    session or a batch job at once, say): their container would otherwise run until prune."""
    containers = kernel_containers(engine)
    for container in containers:
        if not container.warm and not container.owner_alive:
            engine.remove(container.name, stop_timeout=0)
    remove_left_by_killed_starts(engine)


def remove_left_by_killed_starts(engine: ContainerEngine) -> tuple[list[str], list[Monitor]]:
    """Remove the containers that starts killed midway left in storage only, then end the monitors
    they left waiting forever; return both. Call it after removing containers: one removed before
    its run had created it leaves its monitor stranded, so the engine's containers are listed afresh."""
    unrecorded = unrecorded_containers(engine)
    for name in unrecorded:
        engine.remove(name, stop_timeout=0)
    stranded = stranded_monitors(engine, kernel_containers(engine))
    for monitor in stranded:
        engine.end_monitor(monitor)
    return unrecorded, stranded


def unrecorded_containers(engine: ContainerEngine) -> list[str]:
    """Podkernel containers that a start killed midway left in the engine's storage only, with a
    layer of their own: named as podkernel names them, and named by no process (a ``run`` in
    progress names its container)."""
    names = [name for name in engine.unrecorded_containers() if is_container_name(name)]
    return [name for name, named_by in processes.naming(names).items() if not named_by]


# A monitor this old whose container the engine does not know was left by a killed start.
STRANDED_AFTER_S = 60


def stranded_monitors(engine: ContainerEngine, containers: list[KernelContainer]) -> list[Monitor]:
    """The monitors of podkernel containers (``containers``: all that the engine knows) that a start
    killed midway left waiting forever on a container that the engine never recorded: older than
    a run takes, or at once when the launcher whose private directory holds their pidfile has ended."""
    known = {container.id for container in containers}
    return [
        monitor
        for monitor in engine.monitors()
        if monitor.container.startswith("podkernel-")
        and monitor.container_id not in known
        and (processes.age_s(monitor.pid) > STRANDED_AFTER_S or launcher_ended(monitor.pidfile))
    ]


def launcher_ended(pidfile: str) -> bool:
    """Whether ``pidfile`` lies in a launcher's private directory (``podkernel-PID-RANDOM``) and
    that launcher has ended."""
    return bool(pidfile) and processes.creator_ended(os.path.dirname(pidfile))


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def format_age(seconds: float) -> str:
    """``42s``, ``7m``, ``3h``, ``2d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
