"""Podman, local: rootful or rootless."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..connection import CONTAINER_PATH
from ..podman_options import gives_option
from .base import ContainerEngine, HostFacts

if TYPE_CHECKING:
    from ..plan import Launch
    from ..settings import KernelSettings

GPU_ARGS = {
    "nvidia": ["--device", "nvidia.com/gpu=all"],  # CDI
    "amd": ["--device", "/dev/kfd", "--device", "/dev/dri", "--group-add", "keep-groups", "--ipc=host"],
}


class PodmanEngine(ContainerEngine):
    """The ``podman`` command line."""

    name = "podman"
    display_name = "Podman"
    install_hint = "install Podman (e.g. apt-get install podman)"
    supports_keep_id = True

    def gpu_args(self, kind: str | None) -> list[str]:
        return list(GPU_ARGS.get(kind or "", []))

    def kernel_args(self, launch: Launch, run_args: list[str]) -> list[str]:
        """Podman writes the PID to ``--pidfile``, passes the kernel's output straight through, and
        hands the connection file's copy to the container's user (``:U``)."""
        args = ["--pidfile", launch.container_pidfile]
        if not gives_option(run_args, "--log-driver"):
            args += ["--log-driver", "passthrough"]
        return args + ["--volume", f"{launch.connection_copy}:{CONTAINER_PATH}:{'U,z' if launch.selinux else 'U'}"]

    def install_warnings(self, settings: KernelSettings) -> list[str]:
        warnings = super().install_warnings(settings)
        if gives_option(settings.run_args, "--gpus"):
            warnings.append("Podman ignores --gpus; use podkernel install --gpu nvidia (CDI) or --gpu amd instead")
        return warnings

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
        result = self._capture(["ps", "--all", "--filter", f"label={label}", "--format", "json"])
        if result.returncode != 0:
            raise self._fail("ps", result, "check that it works (podman info)")
        return json.loads(result.stdout or "[]")
