"""The checks that ``podkernel doctor`` prints, in the order the engine names them
(ContainerEngine.doctor_checks): what a kernel needs from the engine and from this machine, each
with its fix. Later checks use what earlier ones found."""

from __future__ import annotations

import os
import shutil
import socket
import time

from ..engines import container_engine
from ..engines.base import ContainerEngine, HostFacts
from ..errors import PodkernelError
from ..launcher.reaper import kernel_containers
from ..model.launch import Address
from ..system import kernelspecs
from ..system.private_dir import make_private_dir, private_dir_path
from . import host_checks
from .check import FAIL, PASS, WARN, Check

with open(os.path.join(os.path.dirname(__file__), "listener.py"), encoding="utf-8") as _listener:
    LISTENER = _listener.read()  # run in a container: greets the first connection to its port
LISTENER_PORT = 5555  # inside the container
ANSWER_WAIT_S = 15


class Doctor:
    """Runs the checks in order; later checks use what earlier ones found."""

    def __init__(self, image: str | None, engine: ContainerEngine):
        self.image = image
        self.path_at_start = os.environ.get("PATH", "")  # before the engine adds what it needs
        self.engine = engine
        self.facts: HostFacts | None = None
        self.link_failed: Check | None = None

    def run(self) -> list[Check]:
        return [getattr(self, name)() for name in self.engine.doctor_checks()]

    def ssh_link(self) -> Check:
        """The way to the engine: reachable, its host key known, the key accepted."""
        try:
            detail = self.engine.connect()
        except PodkernelError as error:
            problem, _, fix = str(error).partition(" -- ")
            self.link_failed = Check("SSH", FAIL, problem, fix)
            return self.link_failed
        return Check("SSH", PASS, detail)

    def engine_installed(self) -> Check:
        engine, name = self.engine, self.engine.display_name
        if self.link_failed is not None:
            return Check(name, FAIL, "not reachable", f"fix the {self.link_failed.name} check first")
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
        every container start copies the whole image (README, "Install")."""
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
        """A port published on 127.0.0.1 answers."""
        return self._published_port_answers(
            "Ports",
            lambda port: f"a port published on 127.0.0.1 ({port}) is reachable",
            f"check the network backend ({self.engine.name} info) and firewall rules",
        )

    def port_forward(self) -> Check:
        """A port published on the remote host's 127.0.0.1 answers through the SSH link here."""
        if self.link_failed is not None:
            return Check("Port forward", FAIL, "not reachable", f"fix the {self.link_failed.name} check first")
        return self._published_port_answers(
            "Port forward",
            lambda _: "a port published on its 127.0.0.1 answers here through SSH",
            "allow TCP and Unix socket forwarding in the remote sshd_config (AllowTcpForwarding, "
            "AllowStreamLocalForwarding)",
        )

    def _published_port_answers(self, name: str, passed, fix: str) -> Check:
        """Run a listener that publishes a port on its host's 127.0.0.1, and connect to it from here."""
        if failed := self._needs_engine(name):
            return failed
        if self.image is None:
            return Check(name, WARN, "no local image to try", "pass --image IMAGE with an image that has python3")
        publish = ["--detach", "--publish", f"127.0.0.1::{LISTENER_PORT}", "--entrypoint", "python3", self.image]
        container = self.engine.run_once([*publish, "-c", LISTENER, str(LISTENER_PORT)])
        if container.returncode != 0:
            return Check(
                name,
                WARN,
                f"could not start a listener in {self.image} (python3 needed)",
                "pass --image IMAGE with an image that has python3",
            )
        directory = private_dir_path()
        make_private_dir(directory)
        try:
            address = self.engine.reach_published(container.stdout.strip(), LISTENER_PORT, directory)
            if _answers(address):
                return Check(name, PASS, passed(address if isinstance(address, int) else "the port"))
            return Check(name, FAIL, f"{self.engine.display_name}'s published port did not answer", fix)
        except (PodkernelError, KeyError) as error:
            return Check(name, FAIL, str(error) or "the port is not published", fix)
        finally:
            self.engine.remove(container.stdout.strip(), stop_timeout=0)
            shutil.rmtree(directory, ignore_errors=True)

    def remote_tools(self) -> Check:
        """What cleans up after a killed launcher where the containers run: each kernel's session there."""
        if self.link_failed is not None:
            return Check("Remote tools", FAIL, "not reachable", f"fix the {self.link_failed.name} check first")
        tools = self.engine.cleanup_tools()
        if missing := self.engine.missing_tools(tools):
            return Check(
                "Remote tools",
                FAIL,
                f"missing there: {', '.join(missing)}",
                "install coreutils and the podman command on the remote host",
            )
        return Check("Remote tools", PASS, ", ".join(tools) + ": there, for each kernel's clean-up")

    def watchdog_tool(self) -> Check:
        return host_checks.watchdog_tool()

    def search_path(self) -> Check:
        return host_checks.search_path(self.path_at_start, self.engine.name)

    def selinux(self) -> Check:
        return host_checks.selinux()

    def nvidia_cdi(self) -> Check:
        return host_checks.nvidia_cdi()

    def kernels_dir(self) -> Check:
        return host_checks.kernels_dir()

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


def _answers(address: Address) -> bool:
    """Whether the doctor's listener greets at ``address`` (a port on 127.0.0.1, or a Unix socket) in time."""
    deadline = time.monotonic() + ANSWER_WAIT_S
    while time.monotonic() < deadline:
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        with socket.socket(family) as client:
            client.settimeout(2)
            try:
                client.connect(address if isinstance(address, str) else ("127.0.0.1", address))
                if client.recv(64) == b"podkernel-doctor":
                    return True
            except OSError:
                pass
        time.sleep(0.2)
    return False


def run_checks(
    image: str | None = None, engine: str | None = None, remote: dict[str, str] | None = None
) -> list[Check]:
    """The checks of ``engine`` (a name, or the default) here, or with ``remote`` (a remote setting:
    model.remote_host.remote_setting) on that machine and on the way there."""
    return Doctor(image, container_engine(engine, remote)).run()
