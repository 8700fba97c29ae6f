"""The supervisor's paths with a fake engine (tests/unit/fake_engine.py): no Podman, milliseconds each."""

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

FAKE_ENGINE = Path(__file__).with_name("fake_engine.py")
# A frontend: starts the launcher (argv[2:]); with argv[1] "piped", reads its stderr itself,
# so that the launcher's stderr is a pipe nobody reads once the frontend has died.
FRONTEND = """
import subprocess, sys, time
piped = subprocess.PIPE if sys.argv[1] == "piped" else None
launcher = subprocess.Popen([sys.executable, *sys.argv[2:]], stderr=piped)
print(launcher.pid, flush=True)
time.sleep(60)
"""


def events(work: Path) -> list[str]:
    path = work / "events"
    return path.read_text().splitlines() if path.exists() else []


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(")")[-1].split()[0] != "Z"


def group_alive(pgid: int) -> bool:
    """Whether any live process is left in the process group ``pgid`` (the fake container)."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def kernel_pid(work: Path) -> int:
    return int((work / "private" / "container.pid").read_text())


@pytest.fixture
def launcher(tmp_path):
    """Start the fake launcher; yield (process, work dir) once its kernel runs."""
    started = []

    def start(*options, env: dict | None = None):
        process = subprocess.Popen(
            [sys.executable, str(FAKE_ENGINE), str(tmp_path), *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(launcher_env(), **(env or {})),
        )
        started.append(process)
        wait_for(lambda: "kernel running" in events(tmp_path))
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def launcher_env() -> dict:
    source = str(Path(__file__).resolve().parents[2] / "src")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])))


def watchdog_finished(work: Path) -> bool:
    return "watchdog removed" in events(work)


def test_sigint_is_forwarded_and_the_kernel_keeps_running(launcher, tmp_path):
    process = launcher()
    process.send_signal(signal.SIGINT)
    wait_for(lambda: "kernel got SIGINT" in events(tmp_path))
    assert process.poll() is None and pid_alive(kernel_pid(tmp_path))  # the wrapper shell
    assert "signal INT" not in events(tmp_path)  # reached from the host, not forwarded by the engine


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stopping_signal_removes_the_container_and_dismisses_the_watchdog(launcher, tmp_path, signum):
    process = launcher()
    pid = kernel_pid(tmp_path)
    process.send_signal(signum)
    assert process.wait(timeout=10) == 0
    assert events(tmp_path)[-1] == "remove 1"
    assert f"{signum.name} received: stopping the kernel's container" in process.stderr.read()
    assert not group_alive(pid)
    assert not (tmp_path / "private").exists()
    time.sleep(0.2)
    assert not watchdog_finished(tmp_path)


def test_a_private_dir_left_by_a_launcher_killed_with_its_watchdog_starts_a_sweep(launcher, tmp_path):
    """Such a directory means that a container may run on with no owner: the next start removes
    the directory and starts a sweep of launcherless containers; a live launcher's stays."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    abandoned, live = runtime / f"podkernel-{ended.pid}-0011", runtime / f"podkernel-{os.getpid()}-0022"
    for path in (abandoned, live):
        path.mkdir()
        (path / "connection.json").write_text("{}")
    env = {"XDG_RUNTIME_DIR": "", "TMPDIR": str(runtime)}
    first = launcher(env=env)
    assert events(tmp_path).count("sweep") == 1
    assert not abandoned.exists() and live.exists()
    first.terminate()
    assert first.wait(timeout=10) == 0
    (tmp_path / "events").unlink()
    launcher(env=env)  # nothing left to sweep
    assert "sweep" not in events(tmp_path)


def test_kernel_gone_ends_the_launcher_with_an_error(launcher, tmp_path):
    process = launcher()
    os.killpg(kernel_pid(tmp_path), signal.SIGKILL)
    assert process.wait(timeout=10) == 1
    assert "has exited" in process.stderr.read()
    assert not any(line.startswith("remove") for line in events(tmp_path))
    assert not (tmp_path / "private").exists()


@pytest.mark.parametrize("stderr", ["inherited", "piped"])
def test_frontend_gone_removes_the_container(tmp_path, stderr):
    """Also when the launcher's stderr was a pipe to the frontend: saying why it stops must not
    keep it from stopping."""
    frontend = subprocess.Popen(
        [sys.executable, "-c", FRONTEND, stderr, str(FAKE_ENGINE), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=launcher_env(),
    )
    launcher_pid = int(frontend.stdout.readline())
    wait_for(lambda: "kernel running" in events(tmp_path))
    pid = kernel_pid(tmp_path)
    frontend.kill()
    frontend.wait()
    wait_for(lambda: not pid_alive(launcher_pid))
    assert "remove 1" in events(tmp_path)
    assert not group_alive(pid)
    assert not (tmp_path / "private").exists()


def test_a_failing_remove_leaves_the_watchdog_to_try_again(launcher, tmp_path):
    process = launcher("--remove-fails")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    wait_for(lambda: watchdog_finished(tmp_path))


def test_launcher_killed_hands_over_to_the_watchdog(launcher, tmp_path):
    process = launcher()
    pid = kernel_pid(tmp_path)
    process.kill()
    process.wait()
    wait_for(lambda: watchdog_finished(tmp_path))
    wait_for(lambda: not group_alive(pid))
    assert not (tmp_path / "private").exists()


def build_pid(work: Path) -> int:
    wait_for(lambda: any(line.startswith("build pid") for line in events(work)))
    return next(int(line.split()[-1]) for line in events(work) if line.startswith("build pid"))


def start_building(work: Path) -> subprocess.Popen:
    """The fake launcher, building for 30 s, in a process group of its own (as Jupyter starts it)."""
    return subprocess.Popen(
        [sys.executable, str(FAKE_ENGINE), str(work), "--build-seconds", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=launcher_env(),
        start_new_session=True,
    )


def test_sigterm_during_the_build_stops_it_and_leaves_nothing(tmp_path):
    process = start_building(tmp_path)
    build = build_pid(tmp_path)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert not pid_alive(build)
    assert "run" not in events(tmp_path) and not (tmp_path / "private").exists()


def test_frontend_gone_during_the_build_stops_it(tmp_path):
    frontend = subprocess.Popen(
        [sys.executable, "-c", FRONTEND, "inherited", str(FAKE_ENGINE), str(tmp_path), "--build-seconds", "30"],
        stdout=subprocess.PIPE,
        text=True,
        env=launcher_env(),
    )
    launcher_pid = int(frontend.stdout.readline())
    build = build_pid(tmp_path)
    frontend.kill()
    frontend.wait()
    wait_for(lambda: not pid_alive(launcher_pid))
    assert not pid_alive(build)
    assert "run" not in events(tmp_path) and not (tmp_path / "private").exists()


def test_launcher_killed_during_the_build_leaves_the_build_watchdog_to_stop_it(tmp_path):
    """The build runs in a session of its own (a kill of the launcher's group misses it); once the
    launcher has died, the build's watchdog stops the build and removes its image ID file."""
    process = start_building(tmp_path)
    build = build_pid(tmp_path)
    iidfiles = [path for path in Path(tempfile.gettempdir()).glob("podkernel-*.iid") if str(build) in _owner(path)]
    os.killpg(os.getpgid(process.pid), signal.SIGKILL)
    process.wait()
    wait_for(lambda: "build watchdog stopped the build" in events(tmp_path))
    assert not pid_alive(build)
    assert iidfiles and not any(path.exists() for path in iidfiles)


def _owner(iidfile: Path) -> str:
    """The PIDs of the processes whose command line names ``iidfile``."""
    owners = []
    for entry in Path("/proc").iterdir():
        try:
            if str(iidfile).encode() in (entry / "cmdline").read_bytes():
                owners.append(entry.name)
        except OSError:
            continue
    return " ".join(owners)


def stop_a_start(work: Path, delay: float, signum: signal.Signals) -> None:
    """Start the fake launcher, send ``signum`` after ``delay`` s, and check that nothing is left."""
    process = subprocess.Popen(
        [sys.executable, str(FAKE_ENGINE), str(work), "--build-seconds", "0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=launcher_env(),
    )
    time.sleep(delay)
    process.send_signal(signum)
    process.wait(timeout=10)
    wait_for(lambda: not (work / "private").exists(), timeout=5)
    for kernel in [int(line.split()[-1]) for line in events(work) if line.startswith("kernel pid")]:
        # It ran: it must be gone, by the supervisor's hand or by the watchdog's.
        wait_for(lambda: "remove 1" in events(work) or watchdog_finished(work), timeout=5)
        wait_for(lambda pid=kernel: not group_alive(pid), timeout=5)


def test_a_stop_at_any_moment_of_a_start_leaves_nothing(tmp_path):
    """SIGTERM or SIGKILL at a random moment of the start; the seed is in every failure message."""
    seed = int.from_bytes(os.urandom(4), "big")
    chooser = random.Random(seed)
    for attempt in range(40):
        work = tmp_path / str(attempt)
        work.mkdir()
        delay, signum = chooser.uniform(0, 0.4), chooser.choice([signal.SIGTERM, signal.SIGKILL])
        try:
            stop_a_start(work, delay, signum)
        except AssertionError:
            replay = f"seed {seed}, attempt {attempt}: {signum.name} after {delay:.3f} s"
            raise AssertionError(f"left behind ({replay}): {events(work)}") from None


def test_image_id_files_of_dead_creators_are_removed_at_the_next_build(tmp_path):
    """A creator killed before its build's watchdog started leaves its empty ID file: the next
    build removes it, but not one whose creator lives or that a process names (a build being
    stopped, which may still write it)."""
    from podkernel.engines.abandoned import remove_stale_iidfiles

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"podkernel-{dead.pid}-abc.iid"
    alive = tmp_path / f"podkernel-{os.getpid()}-def.iid"
    named = tmp_path / f"podkernel-{dead.pid}-ghi.iid"
    for path in (stale, alive, named):
        path.write_text("")
    holder = subprocess.Popen(["sh", "-c", "sleep 30", "build", str(named)])
    try:
        wait_for(lambda: str(named).encode() in Path(f"/proc/{holder.pid}/cmdline").read_bytes())  # exec'd
        remove_stale_iidfiles(str(tmp_path))
    finally:
        holder.kill()
        holder.wait()
    assert (stale.exists(), alive.exists(), named.exists()) == (False, True, True)
