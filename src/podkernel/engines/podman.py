"""Podman, local: rootful or rootless."""

from __future__ import annotations

import json
import os
import subprocess
import time

from ..model.connection import CONTAINER_PATH
from ..model.launch import Launch
from ..plan.podman_options import gives_option
from ..plan.run_args import warm_mounts
from ..system import processes
from .abandoned import BUILD_STOP_S
from .base import HostFacts, Monitor
from .cli_engine import CliEngine

GPU_ARGS = {
    "nvidia": ["--device", "nvidia.com/gpu=all"],  # CDI
    "amd": ["--device", "/dev/kfd", "--device", "/dev/dri", "--group-add", "keep-groups", "--ipc=host"],
}


LIST_ATTEMPTS = 10
LIST_RETRY_S = 0.1


class PodmanEngine(CliEngine):
    """The ``podman`` command line."""

    name = "podman"
    display_name = "Podman"
    install_hint = "install Podman (e.g. apt-get install podman)"
    supports_keep_id = True
    missing_image_phrases = ("image not known", "no such image")

    def gpu_args(self, kind: str | None) -> list[str]:
        return list(GPU_ARGS.get(kind or "", []))

    def kernel_args(self, launch: Launch, run_args: list[str]) -> list[str]:
        """Podman writes the PID to ``--pidfile``, passes the kernel's output straight through, and
        hands the connection file's copy to the container's user (``:U``)."""
        args = ["--pidfile", launch.container_pidfile]
        if not gives_option(run_args, "--log-driver"):
            args += ["--log-driver", "passthrough"]
        if launch.start_fifo:
            return args + warm_mounts(launch)
        return args + ["--volume", f"{launch.connection_copy}:{CONTAINER_PATH}:{'U,z' if launch.selinux else 'U'}"]

    def run_arg_warnings(self, run_args: list[str]) -> list[str]:
        if gives_option(run_args, "--gpus"):
            return ["Podman ignores --gpus; use podkernel install --gpu nvidia (CDI) or --gpu amd instead"]
        return []

    def stop_build(self, pid: int) -> None:
        """Podman stops a build cleanly only by itself: killed or asked to stop (SIGINT, SIGTERM),
        ``podman build`` leaves its RUN step running, its working container in storage and the
        runtime's state of it, or an image with no manifest when cut short while committing one.
        So its RUN steps are killed instead, each as soon as it appears (a step runs in a session
        of its own, below the build): the build then fails at that step and removes its working
        container (``--force-rm``, on by default), or finishes what it is doing first."""
        deadline = time.monotonic() + BUILD_STOP_S
        while processes.state(pid) not in ("Z", "X") and time.monotonic() < deadline:
            own_session = processes.session(pid)
            processes.kill_all(
                [step for step in processes.descendants(pid) if processes.session(step) not in (own_session, None)]
            )
            time.sleep(0.02)
        if processes.state(pid) not in ("Z", "X"):
            processes.kill_all(processes.freeze_tree(pid))
        self._delete_stale_build_states()

    def _delete_stale_build_states(self) -> None:
        """Have the OCI runtime forget the RUN steps it keeps as stopped while their bundle is gone:
        a step killed at the wrong moment of its start leaves that state, which
        nothing else would ever delete."""
        runtime = self._capture(["info", "--format", "{{.Host.OCIRuntime.Path}}"]).stdout.strip()
        if not runtime:
            return
        listing = subprocess.run([runtime, "list", "--format", "json"], capture_output=True, text=True)
        try:
            states = json.loads(listing.stdout or "[]") or []
        except ValueError:
            return
        for state in states:
            if (
                str(state.get("id", "")).startswith("buildah-")
                and state.get("status") == "stopped"
                and not os.path.exists(state.get("bundle") or "/")
            ):
                subprocess.run([runtime, "delete", "--force", state["id"]], capture_output=True)

    def host_facts(self) -> HostFacts:
        info = self._info("json")
        runtime = info["host"].get("ociRuntime", {})
        return HostFacts(
            version=info.get("version", {}).get("Version", "?"),
            rootless=bool(info["host"]["security"].get("rootless", False)),
            storage_driver=info.get("store", {}).get("graphDriverName", "?"),
            runtime=f"{runtime.get('name', '?')} ({(runtime.get('version') or '?').splitlines()[0]})",
        )

    def version_advice(self, version: str) -> str:
        major_minor = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
        return "podkernel is tested with Podman 4.3 and newer; --keep-id needs 4.3" if major_minor < (4, 3) else ""

    def containers(self, label: str) -> list[dict]:
        result = self._list(["--filter", f"label={label}"])
        if result.returncode != 0:
            raise self._fail("ps", result, "check that it works (podman info)")
        return json.loads(result.stdout or "[]")

    def unrecorded_containers(self) -> list[str]:
        """Podman's "external" containers: in storage only (a build's working containers, and a
        container whose ``run`` was killed between creating it there and recording it)."""
        result = self._list(["--external"])
        records = json.loads(result.stdout or "[]") if result.returncode == 0 else []
        return [record["Names"][0] for record in records if record.get("State") == "storage" and record.get("Names")]

    def _list(self, args: list[str]) -> subprocess.CompletedProcess:
        """``podman ps --all --format json`` with ``args``. Podman 4's ``ps`` fails when a container
        that it has just listed is removed before it reads its state ("does not exist in
        database"): it is asked again then, a few times (a sweep that gave up left a kernel running)."""
        for _ in range(LIST_ATTEMPTS):
            result = self._capture(["ps", "--all", *args, "--format", "json"])
            if result.returncode == 0 or not self._is_gone(result):
                break
            time.sleep(LIST_RETRY_S)
        return result

    def exit_status(self, label: str) -> int | None:
        result = self._capture(
            ["events", "--stream=false", "--since", "10m", "--filter", f"label={label}", "--filter", "event=died"]
            + ["--format", "{{.ContainerExitCode}}"]
        )
        statuses = result.stdout.split()
        return int(statuses[-1]) if result.returncode == 0 and statuses and statuses[-1].isdigit() else None

    def monitors(self) -> list[Monitor]:
        """This user's conmon processes, each with the container and runtime it was started for."""
        found = []
        for pid in processes.all_pids():
            if processes.program_name(pid) == "conmon" and processes.is_mine(pid):
                if monitor := conmon_monitor(pid, processes.command_line(pid)):
                    found.append(monitor)
        return found


def conmon_monitor(pid: int, args: list[str]) -> Monitor | None:
    """What a conmon process's arguments say it monitors; None for one without a container name."""
    if not (name := _value(args, "-n")):
        return None
    runtime = [_value(args, "-r"), *_root_args(args)] if _value(args, "-r") else []
    return Monitor(pid, args, name, _value(args, "-c"), runtime, _value(args, "-p"))


def _value(args: list[str], flag: str) -> str:
    """The value that follows ``flag`` in a command line; empty when it has none."""
    return args[args.index(flag) + 1] if flag in args[:-1] else ""


def _root_args(conmon_args: list[str]) -> list[str]:
    """The runtime's ``--root`` among the arguments Podman had conmon pass it, if any."""
    runtime_args = [conmon_args[i + 1] for i, arg in enumerate(conmon_args[:-1]) if arg == "--runtime-arg"]
    for index, arg in enumerate(runtime_args):
        if arg.startswith("--root="):
            return [arg]
        if arg == "--root" and index + 1 < len(runtime_args):
            return [arg, runtime_args[index + 1]]
    return []
