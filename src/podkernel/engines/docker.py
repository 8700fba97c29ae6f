"""Docker, through the ``docker`` command line: the same command lines where Docker has them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from typing import TYPE_CHECKING

from ..connection import CONTAINER_PATH
from .base import ContainerEngine, HostFacts
from .podman import GPU_ARGS

if TYPE_CHECKING:
    from ..plan import Launch


class DockerEngine(ContainerEngine):
    """The ``docker`` CLI. Docker has no ``--pidfile``, no passthrough logging and no ``:U`` mounts."""

    name = "docker"
    display_name = "Docker"
    install_hint = "install the Docker CLI and engine, or use --engine podman"
    copy_for_any_user = True

    def gpu_args(self, kind: str | None) -> list[str]:
        return ["--gpus", "all"] if kind == "nvidia" else list(GPU_ARGS.get(kind or "", []))

    def kernel_args(self, launch: Launch, run_args: list[str]) -> list[str]:
        """The copy is readable and writable by any container user instead (inside a directory
        only the host user can enter), and older kernels may rewrite it; the kernel's output
        stays in ``docker logs``; the PID comes from ``docker inspect`` (see run_detached)."""
        return [
            "--volume",
            f"{launch.connection_copy}:{CONTAINER_PATH}{':z' if launch.selinux else ''}",
            "--env",
            "JUPYTER_ALLOW_INSECURE_WRITES=true",
        ]

    def run_detached(self, run_args: list[str], output: int, launch: Launch) -> None:
        """``docker run``, then the container's main PID into the pidfile."""
        super().run_detached(run_args, output, launch)
        pid = self._capture(["inspect", "--format", "{{.State.Pid}}", launch.container_name]).stdout.strip()
        with open(launch.container_pidfile, "w", encoding="ascii") as handle:
            handle.write(pid)

    def remove(self, container: str, stop_timeout: int) -> bool:
        """Stop (SIGTERM, then SIGKILL after ``stop_timeout`` s); Docker's ``--rm`` removes it, ``rm`` makes sure."""
        self._run(
            ["stop", "--time", str(stop_timeout), container],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        result = self._capture(["rm", "--force", container])
        if result.returncode != 0 and not self._is_gone(result):
            print(f"podkernel: could not remove {container}: {' '.join(result.stderr.split())}", file=sys.stderr)
            return False
        return True

    def host_facts(self) -> HostFacts:
        info = self._info("{{json .}}")
        return HostFacts(
            version=info.get("ServerVersion", "?"),
            rootless=any("rootless" in option for option in info.get("SecurityOptions") or []),
            storage_driver=info.get("Driver", "?"),
            runtime=info.get("DefaultRuntime", "?"),
        )

    def remove_command(self, container: str) -> list[str]:
        return [self.executable, "rm", "--force", container]

    def containers(self, label: str) -> list[dict]:
        result = self._capture(["ps", "--all", "--no-trunc", "--filter", f"label={label}", "--format", "{{json .}}"])
        if result.returncode != 0:
            raise self._fail("ps", result, "check that Docker works (docker info)")
        records = []
        for line in result.stdout.splitlines():
            record = json.loads(line)
            labels = dict(item.partition("=")[::2] for item in record.get("Labels", "").split(",") if item)
            created = datetime.strptime(" ".join(record["CreatedAt"].split()[:3]), "%Y-%m-%d %H:%M:%S %z")
            records.append(
                {
                    "Id": record["ID"],
                    "Names": [record["Names"]],
                    "Labels": labels,
                    "State": record.get("State", ""),
                    "Created": created.timestamp(),
                }
            )
        return records
