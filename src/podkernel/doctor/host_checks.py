"""The doctor's checks of this machine: what the launcher, its watchdog and the engine need here."""

from __future__ import annotations

import os
import shutil

from ..system import kernelspecs
from ..system.host import missing_program_dirs, nvidia_cdi_specs, selinux_enabled, selinux_enforcing
from .check import FAIL, PASS, WARN, Check


def watchdog_tool() -> Check:
    if shutil.which("sh") is None:
        return Check("Watchdog", FAIL, "sh is missing", "install a POSIX shell (dash or bash)")
    return Check("Watchdog", PASS, "sh is there to clean up after a killed launcher")


def search_path(path_at_start: str, engine_name: str) -> Check:
    """Root's engines run iptables from the sbin folders, which many PATHs lack."""
    missing = missing_program_dirs(path_at_start)
    if missing and os.geteuid() == 0:
        return Check(
            "PATH",
            WARN,
            f"PATH lacks {', '.join(missing)}: {engine_name}'s network backend cannot find iptables there "
            "(podkernel adds them for the kernels it starts)",
            f"add {os.pathsep.join(missing)} to PATH for your own {engine_name} commands",
        )
    return Check("PATH", PASS, "has what the engine needs")


def selinux() -> Check:
    if not selinux_enabled():
        return Check("SELinux", PASS, "disabled")
    state = "enforcing" if selinux_enforcing() else "permissive"
    return Check(
        "SELinux", PASS, f"{state}: the connection file is mounted with :z; label your own mounts with :z or :Z"
    )


def nvidia_cdi() -> Check:
    specs = nvidia_cdi_specs()
    if not specs:
        return Check(
            "NVIDIA CDI",
            PASS,
            "no NVIDIA CDI spec (only --gpu nvidia needs one)",
            "for NVIDIA GPUs: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml",
        )
    return Check("NVIDIA CDI", PASS, ", ".join(specs))


def kernels_dir() -> Check:
    directory = kernelspecs.Location().kernels_dir()
    count = len(kernelspecs.installed())
    return Check("Kernels", PASS, f"--user installs go to {directory}; {count} podkernel kernel(s) visible")
