"""Facts about this host that change how a kernel's container is run."""

from __future__ import annotations

import glob
import ipaddress
import os
import sys

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
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)) if sys.byteorder == "little" else raw
    return ipaddress.ip_address(words)
