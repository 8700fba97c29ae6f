"""podkernel's containers as Podman sees them: which kernel, which launcher, and whether it still runs."""

from __future__ import annotations

import time
from typing import NamedTuple

from .engines import ContainerEngine
from .plan import KERNEL_LABEL, LAUNCHER_PID_LABEL


class KernelContainer(NamedTuple):
    """One container that podkernel started."""

    name: str
    kernel: str
    state: str
    created: float
    launcher_pid: int | None
    owner_alive: bool

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.created)


def launcher_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live ``podkernel start`` process (not just any process reusing the PID)."""
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return False
    return b"podkernel" in b" ".join(words) and b"start" in words


def kernel_containers(engine: ContainerEngine) -> list[KernelContainer]:
    """Every container carrying podkernel's kernel label, oldest first."""
    found = []
    for record in engine.containers(KERNEL_LABEL):
        labels = record.get("Labels") or {}
        pid_text = labels.get(LAUNCHER_PID_LABEL, "")
        pid = int(pid_text) if pid_text.isdigit() else None
        found.append(
            KernelContainer(
                name=(record.get("Names") or [record["Id"][:12]])[0],
                kernel=labels.get(KERNEL_LABEL, ""),
                state=record.get("State", ""),
                created=float(record.get("Created") or 0),
                launcher_pid=pid,
                owner_alive=launcher_alive(pid),
            )
        )
    return sorted(found, key=lambda container: container.created)


def format_age(seconds: float) -> str:
    """``42s``, ``7m``, ``3h``, ``2d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
