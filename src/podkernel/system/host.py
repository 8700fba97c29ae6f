"""Facts about this host that change how a kernel's container is run, and the search path its engine needs."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ipaddress

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
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp


def nvidia_cdi_specs() -> list[str]:
    """The CDI spec files that describe NVIDIA GPUs (``nvidia.com/gpu``)."""
    import glob  # here, not on every kernel start's path

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


def listening_addresses(pid: int) -> dict[int, list[ipaddress.IPv4Address | ipaddress.IPv6Address]] | None:
    """The TCP ports that listen in the network namespace of process ``pid``, each with its addresses.

    Read from the host's /proc, so it works for any container whose process is visible here,
    without any tool inside the image. None when the process is gone or its tables not readable.
    """
    found: dict[int, list] | None = None
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        found = found or {}
        for row in rows:
            fields = row.split()
            if len(fields) < 4 or fields[3] != TCP_LISTEN:
                continue
            address, _, port = fields[1].partition(":")
            found.setdefault(int(port, 16), []).append(_proc_net_address(address))
    return found


def _proc_net_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words in host byte order, as hex."""
    raw = bytes.fromhex(text)
    import ipaddress  # here, not on every kernel start's path (milliseconds)

    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)) if sys.byteorder == "little" else raw
    return ipaddress.ip_address(words)


# Where the tools that engines run live. Root Podman's network backend runs iptables from
# /usr/sbin, which the PATH of services and desktop sessions often lacks ("netavark: No such
# file or directory"); the launcher runs the engine with these appended where missing.
SYSTEM_PROGRAM_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def missing_program_dirs(path: str) -> list[str]:
    """The system administration program folders that the search path ``path`` lacks."""
    present = set(path.split(os.pathsep))
    return [directory for directory in SYSTEM_PROGRAM_DIRS if directory not in present]


def add_program_dirs_to_path() -> None:
    """Append the folders :func:`missing_program_dirs` names to this process's ``PATH``."""
    search_path = os.environ.get("PATH", "")
    if missing := missing_program_dirs(search_path):
        os.environ["PATH"] = os.pathsep.join(filter(None, [search_path, *missing]))


def gpu_warnings(kind: str | None) -> list[str]:
    """What this machine lacks for the GPUs of ``kind`` (``nvidia``, ``amd``), with what to do."""
    if kind == "nvidia" and not nvidia_cdi_specs():
        return [
            "no NVIDIA CDI spec found in /etc/cdi or /var/run/cdi: "
            "generate one with: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
        ]
    if kind == "amd" and not os.path.exists("/dev/kfd"):
        return ["/dev/kfd is missing: install the ROCm kernel driver (amdgpu) for --gpu amd"]
    return []
