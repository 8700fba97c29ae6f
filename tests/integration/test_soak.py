"""Chaos soak: kernels killed at random moments of their life, then nothing may be left.

Each cycle, a frontend process starts a kernel with jupyter_client and runs start -> execute
-> interrupt a ``time.sleep(30)`` -> restart -> execute -> shutdown. At a uniformly random
moment of its first 5 s one of three things hits it: SIGKILL to the frontend's process group
(a Jupyter server crashing), SIGKILL to the launcher's process group (jupyter_client's own
kill), or SIGTERM to the launcher alone. A quarter of the cycles use a --build kernel whose
folder changes every time, so that kills land during the build at start too; one of the
other kernels is warm, so that kills land while a warm container is claimed, handed its
connection file, restarted into the next one. After every cycle and a grace period (once
the warm kernel is removed): no podkernel container, no launcher or watchdog process, no
private directory (with the kernel's key), no warm container's directory, no build's working
container or image ID file may be left, and ``podman image prune`` must work (a build cut short
while committing an image leaves one it fails on).

Run with ``pytest -m soak``; PODKERNEL_SOAK_CYCLES (default 200) and PODKERNEL_SOAK_SEED
(default: random) set the cycles and replay a run. Every failure message names the seed.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kernel_helpers import DEBIAN_IMAGE, PYPI_IMAGE, leftovers, podman_image_prune, warm_ups_done

pytestmark = pytest.mark.soak

CYCLES = int(os.environ.get("PODKERNEL_SOAK_CYCLES", "200"))
WORKERS = 3
KILL_WINDOW_S = 5.0
GRACE_S = 60.0  # rootless Podman under this load can take that long to let the last conmon go
WARM_IDLE_S = 10  # a warm container claimed by a launcher killed before its watchdog started ends itself by then
KILLS = ("frontend group SIGKILL", "launcher group SIGKILL", "launcher SIGTERM")

FRONTEND = """
import sys, time
from jupyter_client.manager import KernelManager
manager = KernelManager(kernel_name=sys.argv[1])
manager.start_kernel()
print("launcher", manager.provisioner.process.pid, flush=True)
client = manager.client()
client.start_channels()
client.wait_for_ready(timeout=120)
client.execute_interactive("x = 1", timeout=60)
message_id = client.execute("import time; time.sleep(30)")
time.sleep(0.5)
manager.interrupt_kernel()
while client.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != message_id:
    pass
manager.restart_kernel()
print("launcher", manager.provisioner.process.pid, flush=True)
client.wait_for_ready(timeout=120)
client.execute_interactive("y = 2", timeout=60)
client.stop_channels()
manager.shutdown_kernel()
print("done", flush=True)
"""


def private_dirs() -> list[str]:
    """The private directories (each with a kernel's key) of this user's launchers."""
    found = []
    for parent in {os.environ.get("XDG_RUNTIME_DIR") or "", os.environ.get("TMPDIR") or "/tmp"}:
        if parent and os.path.isdir(parent):
            found += [
                os.path.join(parent, name)
                for name in os.listdir(parent)
                if name.startswith("podkernel-")
                and os.path.isdir(os.path.join(parent, name))
                and os.stat(os.path.join(parent, name)).st_uid == os.getuid()
            ]
    return found


def warm_dirs(name: str) -> list[str]:
    """Directories of a kernel's warm containers that are still there (warm.py)."""
    root = Path(os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp") / "podkernel-warm"
    return sorted(str(path) for path in root.glob(f"{name}--*")) if root.is_dir() else []


class Cycle:
    """One frontend's life, and the kill that cuts it short."""

    def __init__(self, kernel: str, moment: float, kill: str):
        self.kernel, self.moment, self.kill = kernel, moment, kill
        self.launchers: list[int] = []
        self.what_happened = "not run"

    def run(self) -> None:
        frontend = subprocess.Popen(
            [sys.executable, "-c", FRONTEND, self.kernel],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        reader = threading.Thread(target=self._read, args=(frontend,), daemon=True)
        reader.start()
        finished = self._wait(frontend, self.moment)
        if finished:
            self.what_happened = "finished before the kill"
        else:
            self.what_happened = self._strike(frontend)
            time.sleep(1)  # the frontend, if alive, notices; then it goes too
        try:
            os.killpg(frontend.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        frontend.wait()

    def _read(self, frontend: subprocess.Popen) -> None:
        for line in frontend.stdout:
            if line.startswith("launcher "):
                self.launchers.append(int(line.split()[1]))

    @staticmethod
    def _wait(frontend: subprocess.Popen, seconds: float) -> bool:
        try:
            frontend.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _strike(self, frontend: subprocess.Popen) -> str:
        kill = self.kill if self.launchers else KILLS[0]  # no launcher yet: the frontend dies
        try:
            if kill == "frontend group SIGKILL":
                os.killpg(frontend.pid, signal.SIGKILL)
            elif kill == "launcher group SIGKILL":
                os.killpg(os.getpgid(self.launchers[-1]), signal.SIGKILL)
            else:
                os.kill(self.launchers[-1], signal.SIGTERM)
        except ProcessLookupError:
            return f"{kill} (already gone)"
        return kill

    def __str__(self) -> str:
        return f"{self.kernel} {self.what_happened} at {self.moment:.3f} s (launchers {self.launchers})"


@pytest.mark.cleanup_grace(GRACE_S)
def test_random_kills_leave_nothing_behind(install, tmp_path):
    seed = int(os.environ.get("PODKERNEL_SOAK_SEED") or int.from_bytes(os.urandom(4), "big"))
    chooser = random.Random(seed)
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    (build_dir / "Containerfile").write_text(f"FROM {DEBIAN_IMAGE}\nCOPY stamp /stamp\nRUN cat /stamp\n")
    (build_dir / "stamp").write_text("0")
    kernels = [
        install(DEBIAN_IMAGE),
        install(PYPI_IMAGE),
        install("--name", "soak-signal", "--interrupt-mode", "signal", DEBIAN_IMAGE),
        install("--name", "soak-warm", "--warm", "--warm-idle", str(WARM_IDLE_S), PYPI_IMAGE),
    ]
    build_kernel = install("--name", "soak-build", "--build", str(build_dir))
    cycles = [
        Cycle(
            build_kernel if index % 4 == 3 else chooser.choice(kernels),
            chooser.uniform(0, KILL_WINDOW_S),
            chooser.choice(KILLS),
        )
        for index in range(CYCLES)
    ]
    before = set(private_dirs())
    started = time.monotonic()
    pending = list(enumerate(cycles))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not pending:
                    return
                index, cycle = pending.pop(0)
                if cycle.kernel == build_kernel:
                    (build_dir / "stamp").write_text(str(index))  # a real build at this start
            cycle.run()

    workers = [threading.Thread(target=work) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    warm_ups_done(timeout=120)
    subprocess.run([sys.executable, "-m", "podkernel", "remove", "soak-warm"], check=True, capture_output=True)
    containers, processes = leftovers(GRACE_S)
    directories = sorted(set(private_dirs()) - before) + warm_dirs("soak-warm")
    pruned = podman_image_prune()  # fails on an image a build cut short while committing left half-written
    report = (
        f"seed {seed} (replay: PODKERNEL_SOAK_SEED={seed} PODKERNEL_SOAK_CYCLES={CYCLES} pytest -m soak); "
        f"{CYCLES} cycles in {time.monotonic() - started:.0f} s; kills: "
        + ", ".join(f"{kill}: {sum(c.what_happened.startswith(kill) for c in cycles)}" for kill in KILLS)
        + f", finished first: {sum(c.what_happened.startswith('finished') for c in cycles)}"
    )
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / f"soak-{'root' if os.geteuid() == 0 else 'rootless'}.txt").write_text(report + "\n")
    assert (containers, processes, directories, pruned.stderr.strip()) == ([], [], [], ""), (
        f"left behind after {report}: containers {containers}, processes {processes}, private dirs {directories}, "
        f"podman image prune says {pruned.stderr.strip()!r}; "
        f"cycles: {'; '.join(map(str, cycles))}"
    )
