"""The names podkernel gives its containers and the labels it puts on them.

A container's labels say which kernel it runs, for which connection file, and whose launcher
(PID, machine, user) owns it; ``ps``, ``prune`` and the sweep read them back.
"""

from __future__ import annotations

import os
import re
import socket

LABEL_PREFIX = "io.podkernel"
KERNEL_LABEL = f"{LABEL_PREFIX}.kernel"
CONNECTION_FILE_LABEL = f"{LABEL_PREFIX}.connection-file"
LAUNCHER_PID_LABEL = f"{LABEL_PREFIX}.launcher-pid"
# On a container that others than this machine's user may list (Docker's, another machine's):
# the machine its launcher runs on, and the user who runs it (launcher_labels).
LAUNCHER_HOST_LABEL = f"{LABEL_PREFIX}.launcher-host"
LAUNCHER_UID_LABEL = f"{LABEL_PREFIX}.launcher-uid"
WARM_LABEL = f"{LABEL_PREFIX}.warm"  # on a warm container: its host directory (launcher/warm.py)


def launcher_labels() -> list[str]:
    """The run args that label a container with the machine and the user whose launcher runs it:
    only they can tell whether that launcher still runs (launcher.reaper.kernel_containers)."""
    return [
        "--label",
        f"{LAUNCHER_HOST_LABEL}={socket.gethostname()}",
        "--label",
        f"{LAUNCHER_UID_LABEL}={os.getuid()}",
    ]


def container_name(kernel_name: str, suffix: str) -> str:
    """A container name that says whose it is: ``podkernel-NAME-SUFFIX`` (SUFFIX ends in 8 random hex digits)."""
    base = kernel_name if kernel_name.startswith("podkernel") else f"podkernel-{kernel_name}"
    return f"{base}-{suffix}"


def is_container_name(name: str) -> bool:
    """Whether ``name`` looks like one that :func:`container_name` makes (a build's working
    container named after a ``podkernel-...`` base image does not)."""
    return re.fullmatch(r"podkernel.*-[0-9a-f]{8}", name) is not None
