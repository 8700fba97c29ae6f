"""The second host that tests/remote-host makes on this machine, as the remote tests see it."""

import subprocess
from pathlib import Path

from podkernel.engines.remote.engine import REMOTE_TIMEOUT_S
from podkernel.model.labels import KERNEL_LABEL

NETNS = "podkernel-remote"
# The documented bound: a remote container is gone this long after its launcher or the link died.
REMOVAL_BOUND_S = REMOTE_TIMEOUT_S + 5
SSH_PERSIST_S = 5  # the master outlives its last kernel this long here (PODKERNEL_SSH_PERSIST_S)


class Side:
    """One of the second host's Podman services, as a kernel reaches it: root's or a user's."""

    def __init__(self, url: str, identity: str):
        self.url, self.identity = url, identity
        self.socket = "/" + url.split("/", 3)[3]
        self.destination = url.split("//", 1)[1].split(":", 1)[0]  # USER@ADDRESS
        self.rootless = not url.startswith("ssh://root@")

    def __repr__(self) -> str:
        return "rootless" if self.rootless else "root"

    def args(self) -> list[str]:
        """install's options for a kernel there."""
        return ["--url", self.url, "--identity", self.identity]

    def podman(self, *args: str, check: bool = True) -> str:
        """That Podman, through its socket (this machine is that host, too)."""
        result = subprocess.run(["podman", "--url", f"unix://{self.socket}", *args], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"podman there ({self}) {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def containers(self) -> list[str]:
        """Its kernels' containers."""
        return self.podman("ps", "--all", "--filter", f"label={KERNEL_LABEL}", "--format", "{{.Names}}").split()

    def secrets(self) -> list[str]:
        return self.podman("secret", "ls", "--format", "{{.Name}}").split()

    def masters(self) -> list[int]:
        """This user's SSH masters to this Podman there (podkernel's, shared by its kernels)."""
        return [
            pid
            for pid, args in command_lines().items()
            if args[:1] == ["ssh"]
            and "-M" in args
            and args[-1:] == [self.destination]
            and any(arg.endswith(f":{self.socket}") for arg in args)
        ]


class Remote:
    """The simulated remote host: its address, key, and its two Podman services."""

    def __init__(self, variables: dict[str, str], state: Path):
        self.identity = variables["REMOTE_IDENTITY"]
        self.address = variables["REMOTE_ADDRESS"]
        self.known_hosts = variables["REMOTE_KNOWN_HOSTS"]
        self.root = Side(variables["REMOTE_URL"], self.identity)
        self.rootless = Side(variables["REMOTE_ROOTLESS_URL"], self.identity)
        self.state = state

    def masters(self) -> list[int]:
        """This user's SSH masters to it, as either user there."""
        return self.root.masters() + self.rootless.masters()


def command_lines() -> dict[int, list[str]]:
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
            except OSError:
                pass
    return lines
