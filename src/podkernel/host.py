"""Facts about this host that change how a kernel's container is run."""

from __future__ import annotations

import glob
import os

SELINUX_ENFORCE = "/sys/fs/selinux/enforce"


def selinux_enabled() -> bool:
    """Whether SELinux is enabled (enforcing or permissive): mounts then need a label."""
    return os.path.exists(SELINUX_ENFORCE)


def selinux_enforcing() -> bool:
    try:
        with open(SELINUX_ENFORCE, encoding="ascii") as handle:
            return handle.read().strip() == "1"
    except OSError:
        return False


CDI_DIRS = ("/etc/cdi", "/var/run/cdi")


def nvidia_cdi_specs() -> list[str]:
    """The CDI spec files that describe NVIDIA GPUs (``nvidia.com/gpu``)."""
    found = []
    for directory in CDI_DIRS:
        for path in sorted(glob.glob(os.path.join(directory, "*.json")) + glob.glob(os.path.join(directory, "*.yaml"))):
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    if "nvidia.com/gpu" in handle.read():
                        found.append(path)
            except OSError:
                continue
    return found
