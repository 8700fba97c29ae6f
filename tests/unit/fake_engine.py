"""A container engine without containers, so that the supervisor's paths run in milliseconds.

The "container" is a local process that notes SIGINT and ends on SIGTERM. Run as a script,
this supervises one such kernel as ``podkernel start`` would:

    python fake_engine.py WORK_DIR [--remove-fails] [--build-seconds N]

The engine's command line is a script, WORK_DIR/fake, that only builds: it sleeps N seconds
and writes an image ID, through the engine's real build() (its session, its watchdog).

Every engine call, and what the kernel and the watchdog do, is a line in WORK_DIR/events;
the supervisor's private directory is WORK_DIR/private.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

from podkernel.engines.base import HostFacts
from podkernel.engines.cli_engine import CliEngine
from podkernel.launcher.relay import PortRelay
from podkernel.launcher.start_guard import StartGuard, Stopped, pidfd
from podkernel.launcher.supervisor import Supervisor
from podkernel.model.connection import Connection
from podkernel.model.launch import Launch, new_launch

KERNEL = """
import signal, sys, time
events = sys.argv[1]
def note(word):
    with open(events, "a") as handle:
        handle.write(word + "\\n")
signal.signal(signal.SIGINT, lambda *_: note("kernel got SIGINT"))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
note("kernel running")
while True:
    time.sleep(1)
"""

# The fake engine's command line: `fake build SECONDS --iidfile FILE DIRECTORY`.
CLI = """
import os, sys, time
print("build pid", os.getpid(), flush=True)
time.sleep(float(sys.argv[2]))
with open(sys.argv[sys.argv.index("--iidfile") + 1], "w") as handle:
    handle.write("sha256:fake")
"""


class FakeEngine(CliEngine):
    """Runs the kernel as a child process in a session of its own; every call is noted in ``events``."""

    name = "fake"
    display_name = "Fake"
    install_hint = "nothing to install"

    def __init__(self, work_dir: str, remove_fails: bool = False):
        super().__init__()
        self.work_dir = work_dir
        self.events = os.path.join(work_dir, "events")
        self.remove_fails = remove_fails
        self.kernel: subprocess.Popen | None = None
        self._executable = os.path.join(work_dir, "fake")
        if not os.path.exists(self._executable):
            with open(self._executable, "w", encoding="utf-8") as handle:
                handle.write(f"#!{sys.executable}\n{CLI}")
            os.chmod(self._executable, 0o755)

    def note(self, line: str) -> None:
        with open(self.events, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def gpu_args(self, kind):
        return []

    def kernel_args(self, launch, run_args):
        return []

    def host_facts(self):
        return HostFacts("0", False, "none", "none")

    def containers(self, label):
        return []

    def exit_status(self, label):
        return None

    def build_for(self, seconds: float) -> None:
        """A build that runs ``seconds``, through the engine's real build()."""
        self.build(self.work_dir, [str(seconds)], show=lambda line: self.note(line.strip()))

    def build_watchdog_command(self, iidfile: str, output: int) -> list[str]:
        """The real stop_abandoned_build, run by this script with this engine (noted when done)."""
        return [sys.executable, __file__, self.work_dir, "--stop-build", iidfile, str(output)]

    def run_detached(self, run_args: list[str], output: int, launch: Launch) -> dict:
        # Behind a wrapper shell that does not exec, as many images' entrypoints are.
        wrapped = f"{shlex.quote(sys.executable)} -c {shlex.quote(KERNEL)} {shlex.quote(self.events)}; echo after"
        self.kernel = subprocess.Popen(["sh", "-c", wrapped], stdout=output, stderr=output, start_new_session=True)
        for path in (launch.container_pidfile, os.path.join(self.work_dir, "container.pgid")):
            with open(path, "w", encoding="ascii") as handle:
                handle.write(str(self.kernel.pid))
        self.note(f"kernel pid {self.kernel.pid}")
        self.note("run")
        return dict(launch.published_ports)

    def signal(self, container: str, signal_name: str) -> None:
        self.note(f"signal {signal_name}")
        if self.kernel is not None:
            os.kill(self.kernel.pid, signal.Signals[f"SIG{signal_name}"])

    def remove(self, container: str, stop_timeout: int) -> bool:
        self.note(f"remove {stop_timeout}")
        if self.remove_fails:
            return False
        if self.kernel is not None:  # the whole "container": the wrapper's process group
            os.killpg(self.kernel.pid, signal.SIGTERM)
            self.kernel.wait()
        return True

    def monitors(self):
        return []

    def start_sweep(self) -> None:
        self.note("sweep")

    def watchdog_command(self, container: str, private_dir: str, pidfile: str, output: int) -> list[str]:
        """The watchdog's removal: the wrapper's process group and the private directory, noted so
        that a test sees the hand-off."""
        group = os.path.join(self.work_dir, "container.pgid")  # outside the private dir
        script = f'kill -KILL -"$(cat {group})"; rm -rf -- "$0"; echo "watchdog removed" >> "{self.events}"'
        return ["sh", "-c", script, private_dir]


def main() -> int:
    work_dir = sys.argv[1]
    engine = FakeEngine(work_dir, remove_fails="--remove-fails" in sys.argv)
    if sys.argv[2:3] == ["--stop-build"]:
        engine.stop_abandoned_build(sys.argv[3], int(sys.argv[4]))
        engine.note("build watchdog stopped the build")
        return 0
    guard = StartGuard(pidfd(os.getppid()))
    launch = new_launch(
        "fake",
        "img",
        suffix="test",
        ports={},
        published_ports={},
        connection_file="connection.json",
        private_dir=os.path.join(work_dir, "private"),
        launcher_pid=os.getpid(),
        cwd=work_dir,
        userns=None,
        selinux=False,
    )
    if "--build-seconds" in sys.argv:
        engine.build_for(float(sys.argv[sys.argv.index("--build-seconds") + 1]))
    print("supervising", flush=True)
    connection = Connection(ports={}, info={"key": "secret", "transport": "tcp"})
    return Supervisor(engine, launch, PortRelay({}), guard).run([], connection)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Stopped:
        sys.exit(0)
