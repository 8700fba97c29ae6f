"""The host checks that ``podkernel doctor`` prints: what a kernel needs from this host, each with its fix."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from typing import NamedTuple

from . import kernelspecs
from .containers import kernel_containers
from .engines import ContainerEngine, HostFacts, container_engine
from .engines.base import missing_program_dirs
from .errors import PodkernelError
from .host import nvidia_cdi_specs, selinux_enabled, selinux_enforcing

PASS, WARN, FAIL = "pass", "warn", "fail"
LISTENER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(1); c,_=s.accept(); c.sendall(b'podkernel-doctor')"
)


class Check(NamedTuple):
    name: str
    status: str
    detail: str
    fix: str = ""


class Doctor:
    """Runs the checks in order; later checks use what earlier ones found."""

    def __init__(self, image: str | None = None, engine: str | None = None, remote: dict[str, str] | None = None):
        """With ``remote`` (settings.remote_setting), the checks are about that machine and the way there."""
        self.image = image
        self.path_at_start = os.environ.get("PATH", "")  # before the engine adds what it needs
        self.engine: ContainerEngine = container_engine(engine, remote)
        self.facts: HostFacts | None = None
        self.ssh_failed: Check | None = None

    def checks(self) -> list[Callable[[], Check]]:
        if self.engine.remote:
            return [
                self.ssh_link,
                self.engine_installed,
                self.mode,
                self.storage,
                self.runtime,
                self.container_runs,
                self.port_forward,
                self.remote_tools,
                self.watchdog_tool,
                self.orphans,
            ]
        return [
            self.engine_installed,
            self.mode,
            self.storage,
            self.runtime,
            self.container_runs,
            self.port_reachable,
            self.watchdog_tool,
            self.search_path,
            self.selinux,
            self.nvidia_cdi,
            self.kernels_dir,
            self.orphans,
        ]

    def ssh_link(self) -> Check:
        """The SSH connection to the remote host: reachable, its host key known, the key accepted."""
        link = self.engine.link
        try:
            link.ensure()
        except PodkernelError as error:
            problem, _, fix = str(error).partition(" -- ")
            self.ssh_failed = Check("SSH", FAIL, problem, fix)
            return self.ssh_failed
        return Check("SSH", PASS, f"{link.host.destination} port {link.host.port}: connected, host key known")

    def engine_installed(self) -> Check:
        engine, name = self.engine, self.engine.display_name
        if self.ssh_failed is not None:
            return Check(name, FAIL, "not reachable", "fix the SSH check first")
        try:
            executable = engine.executable
        except PodkernelError as error:
            return Check(name, FAIL, str(error).split(":")[0], engine.install_hint)
        try:
            self.facts = engine.host_facts()
        except PodkernelError as error:
            return Check(name, FAIL, str(error), f"run `{engine.name} info` and fix what it reports")
        detail = f"{executable}, version {self.facts.version}"
        if advice := engine.version_advice(self.facts.version):
            return Check(name, WARN, detail, advice)
        return Check(name, PASS, detail)

    def _needs_engine(self, name: str) -> Check | None:
        if self.facts is None:
            return Check(
                name,
                FAIL,
                f"{self.engine.display_name} is not working",
                f"fix the {self.engine.display_name} check first",
            )
        return None

    def mode(self) -> Check:
        if failed := self._needs_engine("Mode"):
            return failed
        return Check("Mode", PASS, "rootless" if self.facts.rootless else "rootful (as root)")

    def storage(self) -> Check:
        """Rootless Podman before 4.5 without a storage.conf (Debian 12's) stores images with vfs:
        every container start copies the whole image (7.3 s instead of 0.14 s for a 460 MB image
        measured on Debian 12)."""
        if failed := self._needs_engine("Storage"):
            return failed
        driver = self.facts.storage_driver
        if driver == "vfs":
            return Check(
                "Storage",
                WARN,
                "vfs: each kernel start copies its whole image (seconds per start)",
                'put [storage] driver = "overlay" in ~/.config/containers/storage.conf, then '
                "`podman system reset` (it deletes your images and containers) and pull or build again",
            )
        return Check("Storage", PASS, driver)

    def runtime(self) -> Check:
        if failed := self._needs_engine("OCI runtime"):
            return failed
        return Check("OCI runtime", PASS, self.facts.runtime)

    def _probe_image(self) -> str | None:
        if self.image is None:
            candidates = [kernel.settings.image for kernel in kernelspecs.installed() if kernel.settings.image]
            self.image = next((image for image in candidates if self.engine.image_id(image)), None)
        return self.image

    def container_runs(self) -> Check:
        if failed := self._needs_engine("Container"):
            return failed
        image = self._probe_image()
        if image is None:
            return Check(
                "Container",
                WARN,
                "no local image to try",
                "install a kernel, or pass --image IMAGE with an image that has sh",
            )
        result = self.engine.run_once(["--entrypoint", "sh", image, "-c", "exit 0"])
        if result.returncode != 0:
            message = " ".join(result.stderr.split())[-300:]
            return Check(
                "Container",
                FAIL,
                f"{self.engine.name} run {image} failed: {message}",
                "fix the runtime: for 'cgroups'/'crun' errors set runtime=\"runc\", for ulimit errors "
                "set default_ulimits in containers.conf (see README)",
            )
        return Check("Container", PASS, f"{self.engine.name} run works ({image})")

    def port_reachable(self) -> Check:
        if failed := self._needs_engine("Ports"):
            return failed
        if self.image is None:
            return Check("Ports", WARN, "no local image to try", "pass --image IMAGE with an image that has python3")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        container = self.engine.run_once(
            [
                "--detach",
                "--publish",
                f"127.0.0.1:{port}:{port}",
                "--entrypoint",
                "python3",
                self.image,
                "-c",
                LISTENER,
                str(port),
            ]
        )
        if container.returncode != 0:
            return Check(
                "Ports",
                WARN,
                f"could not start a listener in {self.image} (python3 needed)",
                "pass --image IMAGE with an image that has python3",
            )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
                        if client.recv(64) == b"podkernel-doctor":
                            return Check("Ports", PASS, f"a port published on 127.0.0.1 ({port}) is reachable")
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    return Check(
                        "Ports",
                        FAIL,
                        f"127.0.0.1:{port} published by {self.engine.display_name} did not answer",
                        f"check the network backend ({self.engine.name} info) and firewall rules",
                    )
                time.sleep(0.2)
        finally:
            self.engine.remove(container.stdout.strip(), stop_timeout=0)

    def port_forward(self) -> Check:
        """A port published on the remote host's 127.0.0.1 answers through the SSH link here."""
        if failed := self._needs_engine("Port forward"):
            return failed
        if self.image is None:
            return Check(
                "Port forward", WARN, "no image there to try", "pass --image IMAGE with an image that has python3"
            )
        from .connection import make_private_dir, private_dir_path

        inside = 5555
        container = self.engine.run_once(
            ["--detach", "--publish", f"127.0.0.1::{inside}", "--entrypoint", "python3", self.image]
            + ["-c", LISTENER, str(inside)]
        )
        if container.returncode != 0:
            return Check(
                "Port forward",
                WARN,
                f"could not start a listener in {self.image} (python3 needed)",
                "pass --image IMAGE with an image that has python3",
            )
        directory = private_dir_path()
        make_private_dir(directory)
        forward = [(os.path.join(directory, "probe.sock"), 0)]
        try:
            forward = [(forward[0][0], self.engine.published_ports(container.stdout.strip())[inside])]
            self.engine.link.forward(forward)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                with socket.socket(socket.AF_UNIX) as client:
                    client.settimeout(2)
                    try:
                        client.connect(forward[0][0])
                        if client.recv(64) == b"podkernel-doctor":
                            return Check(
                                "Port forward", PASS, f"127.0.0.1:{forward[0][1]} there answers here through SSH"
                            )
                    except OSError:
                        pass
                time.sleep(0.2)
            return Check(
                "Port forward",
                FAIL,
                "a port published on the remote 127.0.0.1 did not answer through SSH",
                "allow TCP and Unix socket forwarding in the remote sshd_config (AllowTcpForwarding, "
                "AllowStreamLocalForwarding)",
            )
        except (PodkernelError, KeyError) as error:
            return Check("Port forward", FAIL, str(error), "check that the remote sshd allows port forwarding")
        finally:
            self.engine.link.cancel(forward)
            os.rmdir(directory)
            self.engine.remove(container.stdout.strip(), stop_timeout=0)

    def remote_tools(self) -> Check:
        """What a kernel's session runs on the remote host: its dead-man's switch and log stream."""
        if self.ssh_failed is not None:
            return Check("Remote tools", FAIL, "not reachable", "fix the SSH check first")
        import subprocess

        tools = ("sh", "timeout", "head", "sleep", "podman")
        found = subprocess.run(
            [*self.engine.link.ssh(), " ".join(f"command -v {tool} >/dev/null || echo {tool};" for tool in tools)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        missing = found.stdout.split()
        if found.returncode != 0 or missing:
            return Check(
                "Remote tools",
                FAIL,
                f"missing there: {', '.join(missing) or 'could not run a command over SSH'}",
                "install coreutils and the podman command on the remote host",
            )
        return Check("Remote tools", PASS, ", ".join(tools) + ": there, for each kernel's clean-up")

    def watchdog_tool(self) -> Check:
        if shutil.which("sh") is None:
            return Check("Watchdog", FAIL, "sh is missing", "install a POSIX shell (dash or bash)")
        return Check("Watchdog", PASS, "sh is there to clean up after a killed launcher")

    def search_path(self) -> Check:
        """Root's engines run iptables from the sbin folders, which many PATHs lack."""
        missing = missing_program_dirs(self.path_at_start)
        if missing and os.geteuid() == 0:
            return Check(
                "PATH",
                WARN,
                f"PATH lacks {', '.join(missing)}: {self.engine.name}'s network backend cannot find iptables there "
                "(podkernel adds them for the kernels it starts)",
                f"add {os.pathsep.join(missing)} to PATH for your own {self.engine.name} commands",
            )
        return Check("PATH", PASS, "has what the engine needs")

    def selinux(self) -> Check:
        if not selinux_enabled():
            return Check("SELinux", PASS, "disabled")
        state = "enforcing" if selinux_enforcing() else "permissive"
        return Check(
            "SELinux", PASS, f"{state}: the connection file is mounted with :z; label your own mounts with :z or :Z"
        )

    def nvidia_cdi(self) -> Check:
        specs = nvidia_cdi_specs()
        if not specs:
            return Check(
                "NVIDIA CDI",
                PASS,
                "no NVIDIA CDI spec (only --gpu nvidia needs one)",
                "for NVIDIA GPUs: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml",
            )
        return Check("NVIDIA CDI", PASS, ", ".join(specs))

    def kernels_dir(self) -> Check:
        directory = kernelspecs.Location().kernels_dir()
        count = len(kernelspecs.installed())
        return Check("Kernels", PASS, f"--user installs go to {directory}; {count} podkernel kernel(s) visible")

    def orphans(self) -> Check:
        if failed := self._needs_engine("Orphans"):
            return failed
        orphans = [c.name for c in kernel_containers(self.engine) if not c.owner_alive]
        if orphans:
            return Check(
                "Orphans",
                WARN,
                f"{len(orphans)} podkernel container(s) without a launcher: " + ", ".join(orphans),
                "podkernel prune",
            )
        return Check("Orphans", PASS, "no podkernel container without its launcher")


def run_checks(
    image: str | None = None, engine: str | None = None, remote: dict[str, str] | None = None
) -> list[Check]:
    doctor = Doctor(image, engine, remote)
    return [check() for check in doctor.checks()]
