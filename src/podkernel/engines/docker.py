"""Docker, through the ``docker`` command line: the same command lines where Docker has them."""

from __future__ import annotations

import json
import subprocess
import sys

from ..model.connection import CONTAINER_PATH
from ..model.labels import launcher_labels
from ..model.launch import Address, Launch
from ..plan.run_args import warm_mounts
from .base import HostFacts, Monitor
from .cli_engine import CliEngine
from .podman import GPU_ARGS

EVENTS_READ_S = 1.0


class DockerEngine(CliEngine):
    """The ``docker`` CLI. Docker has no ``--pidfile``, no passthrough logging and no ``:U`` mounts."""

    name = "docker"
    display_name = "Docker"
    install_hint = "install the Docker CLI and engine, or use --engine podman"
    copy_for_any_user = True
    shared_by_users = True

    def gpu_args(self, kind: str | None) -> list[str]:
        return ["--gpus", "all"] if kind == "nvidia" else list(GPU_ARGS.get(kind or "", []))

    def kernel_args(self, launch: Launch, run_args: list[str]) -> list[str]:
        """The copy is readable and writable by any container user instead (inside a directory
        only the host user can enter), and older kernels may rewrite it; the kernel's output
        stays in ``docker logs``; the PID comes from ``docker inspect`` (see run_detached).
        Labels name the machine and user whose launcher runs it: the daemon lists every user's."""
        if launch.start_fifo:
            return [*launcher_labels(), *warm_mounts(launch)]
        return [
            *launcher_labels(),
            "--volume",
            f"{launch.connection_copy}:{CONTAINER_PATH}{':z' if launch.selinux else ''}",
            "--env",
            "JUPYTER_ALLOW_INSECURE_WRITES=true",
        ]

    def run_detached(self, run_args: list[str], output: int, launch: Launch) -> dict[str, Address]:
        """``docker run``, then the container's main PID into the pidfile."""
        published = super().run_detached(run_args, output, launch)
        pid = self.main_pid(launch.container_name)
        with open(launch.container_pidfile, "w", encoding="ascii") as handle:
            handle.write(str(pid or ""))
        return published

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

    def monitors(self) -> list[Monitor]:
        """None: the daemon owns every container's monitor (containerd-shim), whatever became of ``docker run``."""
        return []

    def containers(self, label: str) -> list[dict]:
        import datetime  # here, not on every kernel start's path

        result = self._capture(["ps", "--all", "--no-trunc", "--filter", f"label={label}", "--format", "{{json .}}"])
        if result.returncode != 0:
            raise self._fail("ps", result, "check that Docker works (docker info)")
        records = []
        for line in result.stdout.splitlines():
            record = json.loads(line)
            labels = dict(item.partition("=")[::2] for item in record.get("Labels", "").split(",") if item)
            created = datetime.datetime.strptime(" ".join(record["CreatedAt"].split()[:3]), "%Y-%m-%d %H:%M:%S %z")
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

    def exit_status(self, label: str) -> int | None:
        """From the recent events, read for a second: ``docker events`` streams on, and Podman's
        Docker API answers nothing to ``--until`` or to these filters."""
        key, _, value = label.partition("=")
        try:
            result = self._run(
                ["events", "--since", "10m", "--format", "{{json .}}"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EVENTS_READ_S,
            )
            lines = result.stdout.splitlines()
        except subprocess.TimeoutExpired as stopped:
            output = stopped.stdout or b""
            lines = (output.decode(errors="replace") if isinstance(output, bytes) else output).splitlines()
        statuses = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            attributes = (event.get("Actor") or {}).get("Attributes") or {}
            if event.get("Action", event.get("status")) == "die" and attributes.get(key) == value:
                statuses.append(attributes.get("exitCode", ""))
        return int(statuses[-1]) if statuses and statuses[-1].isdigit() else None
