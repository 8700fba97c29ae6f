"""Every way a kernel can end, both interrupt modes, restarts, many kernels at once, ps and prune.

Launchers are also killed at random moments of ``podman run``, and builds cut short at random
moments (the seed is in the message).

Each path runs three times in a row; after each test the autouse fixture checks that no
podkernel container and no launcher or watchdog process is left (within 10 seconds).
"""

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from jupyter_client.ioloop import AsyncIOLoopKernelManager
from jupyter_client.manager import KernelManager, start_new_kernel

from helpers import podkernel
from kernel_helpers import (
    BASE_IMAGE,
    DEBIAN_IMAGE,
    IRKERNEL_IMAGE,
    PYTHON_SLEEPING_CELL,
    R_SLEEPING_CELL,
    command_lines,
    container_of,
    execute,
    key_dirs,
    leftovers,
    podkernel_containers,
    podman,
    podman_image_prune,
    running_kernel,
    runtime_states,
    start_kernel,
    start_sleeping_cell,
    wait_until_removed,
    waiting,
    watchdogs_of,
)
from podkernel.engines.abandoned import BUILD_STOP_S
from podkernel.model.labels import KERNEL_LABEL
from podkernel.system.processes import INIT_PROGRAMS, container_processes, descendants, program_name

REPEATS = [1, 2, 3]
KILLED_STARTS = 12  # per kind of kill
KILLED_BUILDS = 8  # per kind of kill

# A kernel that ignores shutdown_request, SIGTERM and SIGINT.
STUBBORN_KERNEL = """
import os, signal, sys
from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp

class StubbornKernel(IPythonKernel):
    async def shutdown_request(self, stream, ident, parent):
        pass

class StubbornApp(IPKernelApp):
    def init_signal(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

StubbornApp.launch_instance(kernel_class=StubbornKernel, argv=["-f", os.environ["PODKERNEL_CONNECTION_FILE"]])
"""

FRONTEND = """
import sys, time
from jupyter_client.manager import start_new_kernel
manager, client = start_new_kernel(kernel_name=sys.argv[1], startup_timeout=120)
print(manager.provisioner.process.pid, flush=True)
time.sleep(600)
"""


def wait_for_new_container(manager, old_id: str, timeout: float = 30) -> None:
    """Wait until the kernel runs in a container other than ``old_id``, and ``old_id`` is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = podman(
            "ps",
            "--all",
            "--no-trunc",
            "--format",
            "{{.ID}}",
            "--filter",
            f"label=io.podkernel.connection-file={manager.connection_file}",
        ).split()
        if ids and old_id not in ids:
            return
        time.sleep(0.05)
    raise AssertionError(f"no fresh container replaced {old_id}")


def launcher_of(manager) -> subprocess.Popen:
    return manager.provisioner.process


def wait_for_new_process(before: set[int], matches, timeout: float = 60) -> None:
    """Wait, polling /proc every millisecond, until a process not in ``before`` runs arguments that ``matches``."""
    deadline = time.monotonic() + timeout
    while not any(pid not in before and matches(args) for pid, args in command_lines().items()):
        assert time.monotonic() < deadline, "the process awaited never started"
        time.sleep(0.001)


def wait_until_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("attempt", REPEATS)
def test_graceful_shutdown(install, attempt):
    with running_kernel(install(DEBIAN_IMAGE)) as (manager, client):
        assert execute(client, "1")[0]["status"] == "ok"


@pytest.mark.parametrize("attempt", REPEATS)
def test_shutdown_now_kills_the_launcher_group(install, attempt):
    manager, client = start_new_kernel(kernel_name=install(DEBIAN_IMAGE), startup_timeout=120)
    client.stop_channels()
    manager.shutdown_kernel(now=True)


@pytest.mark.parametrize("attempt", REPEATS)
def test_frontend_killed(install, attempt):
    name = install(DEBIAN_IMAGE)
    frontend = subprocess.Popen([sys.executable, "-c", FRONTEND, name], stdout=subprocess.PIPE, text=True)
    launcher_pid = int(frontend.stdout.readline())
    assert podkernel_containers()
    frontend.kill()
    frontend.wait()
    wait_until_gone(launcher_pid)


@pytest.mark.parametrize("attempt", REPEATS)
def test_kernel_that_ignores_shutdown_and_signals(install, attempt):
    name = install(DEBIAN_IMAGE, "--", "python3", "-c", STUBBORN_KERNEL)
    with running_kernel(name) as (manager, client):
        assert execute(client, "1")[0]["status"] == "ok"
        client.shutdown()  # ignored
        time.sleep(1)
        assert manager.is_alive()


@pytest.mark.parametrize("attempt", REPEATS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_launcher_signalled(install, attempt, signum):
    manager, client = start_new_kernel(kernel_name=install(DEBIAN_IMAGE), startup_timeout=120)
    client.stop_channels()
    launcher = launcher_of(manager)
    launcher.send_signal(signum)
    assert launcher.wait(timeout=10) == 0
    manager.cleanup_resources()


@pytest.mark.parametrize("kill", ["launcher SIGKILL", "launcher group SIGKILL"])
def test_launcher_killed_while_the_engine_starts_the_container(install, kill):
    """Killed while ``podman run`` starts the container, the launcher leaves nothing behind:
    no container, no process, no state in the OCI runtime. Half the kills land at a random
    moment of the run's first half second, half within 0.1 s of conmon's start (a run cut
    short then leaves a conmon waiting forever: the run must be let finish, then removed)."""
    seed = int(os.environ.get("PODKERNEL_SEED") or int.from_bytes(os.urandom(4), "big"))
    chooser = random.Random(seed)
    name = install(DEBIAN_IMAGE)
    for attempt in range(KILLED_STARTS):
        states, before = runtime_states(), set(command_lines())
        after = "conmon" if attempt % 2 else "podman run"
        delay = chooser.uniform(0, 0.1 if after == "conmon" else 0.5)
        manager = KernelManager(kernel_name=name)
        manager.start_kernel()
        launcher = launcher_of(manager)
        if after == "conmon":
            wait_for_new_process(before, lambda args: "conmon" in args[0] and "podkernel-" in " ".join(args))
        else:
            wait_for_new_process(before, lambda args: args[0].endswith("podman") and "run" in args)
        time.sleep(delay)
        if kill == "launcher SIGKILL":
            launcher.kill()
        else:
            os.killpg(os.getpgid(launcher.pid), signal.SIGKILL)
        launcher.wait()
        manager.cleanup_resources()
        containers, processes = leftovers()
        left_states = runtime_states() - states
        assert (containers, processes, left_states) == ([], [], set()), (
            f"seed {seed} (replay: PODKERNEL_SEED={seed}), attempt {attempt}: killed {delay:.3f} s after {after} "
            f"started, left containers {containers}, processes {processes}, runtime states {left_states}"
        )


def test_the_watchdog_ends_what_a_run_killed_by_another_hand_left(tmp_path):
    """``podman run`` itself killed (by the user, by the OOM killer) just after it starts conmon
    leaves a conmon and runc's ``init`` waiting forever, which Podman knows nothing of: what the
    watchdog runs, ``podkernel remove-abandoned``, ends them and runc's state of the container.
    The kill lands at a random moment of conmon's first 80 ms; ``--network none`` leaves no
    network state behind, which only a finished run could tear down."""
    seed = int(os.environ.get("PODKERNEL_SEED") or int.from_bytes(os.urandom(4), "big"))
    chooser = random.Random(seed)
    output_read, output_write = os.pipe()
    for attempt in range(6):
        name = f"podkernel-killed-run-{os.urandom(4).hex()}"
        states, before = runtime_states(), set(command_lines())
        run = subprocess.Popen(
            ["podman", "run", "--detach", "--rm", "--network", "none", "--name", name]
            + ["--label", f"{KERNEL_LABEL}=killed-run", BASE_IMAGE, "sleep", "600"],
            stdout=output_write,
            stderr=output_write,
            start_new_session=True,
        )
        wait_for_new_process(before, lambda args, name=name: "conmon" in args[0] and name in args)
        delay = chooser.uniform(0, 0.08)
        time.sleep(delay)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        private = tmp_path / name
        private.mkdir()
        subprocess.run(
            [sys.executable, "-m", "podkernel", "remove-abandoned", "podman", name, str(private)]
            + [str(private / "container.pid"), str(output_read)],
            pass_fds=(output_read,),
            timeout=120,
        )
        containers, processes = leftovers()
        left_states = runtime_states() - states
        assert (containers, processes, left_states, private.exists()) == ([], [], set(), False), (
            f"seed {seed} (replay: PODKERNEL_SEED={seed}), attempt {attempt}: podman run killed {delay:.3f} s "
            f"after conmon started; left containers {containers}, processes {processes}, runtime states {left_states}"
        )
    os.close(output_read)
    os.close(output_write)


@pytest.mark.parametrize("kill", ["launcher group SIGKILL", "launcher SIGTERM", "Ctrl-C on podkernel build"])
def test_a_build_cut_short_at_a_random_moment_leaves_nothing(install, tmp_path, kill):
    """A ``--build`` kernel's build cut short at a random moment of its first 3 s (its COPY, a
    RUN step, a commit, or the kernel's start after it) leaves nothing behind: no working
    container, no RUN step or runtime ``init`` running, no runtime state, no image ID file, and
    no half-written image that ``podman image prune`` then fails on. Each start builds anew."""
    seed = int(os.environ.get("PODKERNEL_SEED") or int.from_bytes(os.urandom(4), "big"))
    chooser = random.Random(seed)
    (tmp_path / "Containerfile").write_text(
        f"FROM {DEBIAN_IMAGE}\nCOPY stamp /stamp\nRUN sleep 0.5; cat /stamp\nRUN cat /stamp > /copy\n"
    )
    (tmp_path / "stamp").write_text("installed")
    name = install("--build", str(tmp_path))
    for attempt in range(KILLED_BUILDS):
        (tmp_path / "stamp").write_text(f"{seed} {attempt}")
        states = runtime_states()
        delay = chooser.uniform(0, 3)
        if kill == "Ctrl-C on podkernel build":
            build = subprocess.Popen(
                [sys.executable, "-m", "podkernel", "build", name],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, as a terminal's foreground job has
            )
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(build.pid, signal.SIGINT)
            build.wait(timeout=60)
        else:
            manager = KernelManager(kernel_name=name)
            manager.start_kernel()
            launcher = launcher_of(manager)
            time.sleep(delay)
            if kill == "launcher SIGTERM":
                launcher.terminate()
            else:
                os.killpg(os.getpgid(launcher.pid), signal.SIGKILL)
            launcher.wait(timeout=60)
            manager.cleanup_resources()
        containers, processes = leftovers(BUILD_STOP_S)
        left_states = runtime_states() - states
        pruned = podman_image_prune()
        assert (containers, processes, left_states, pruned.returncode) == ([], [], set(), 0), (
            f"seed {seed} (replay: PODKERNEL_SEED={seed}), attempt {attempt}: {kill} {delay:.3f} s after the start; "
            f"left containers {containers}, processes {processes}, runtime states {left_states}; "
            f"podman image prune: {pruned.stderr.strip()}"
        )


@pytest.mark.parametrize("attempt", REPEATS)
def test_kernel_death_ends_the_launcher_with_an_error(install, attempt):
    manager, client = start_new_kernel(kernel_name=install(DEBIAN_IMAGE), startup_timeout=120)
    try:
        client.execute("import os; os._exit(3)")
        started = time.monotonic()
        assert launcher_of(manager).wait(timeout=10) != 0
        assert time.monotonic() - started < 5
    finally:
        client.stop_channels()
        manager.cleanup_resources()


def test_restarter_restarts_a_crashed_kernel(install):
    name = install(DEBIAN_IMAGE)

    async def scenario():
        manager = AsyncIOLoopKernelManager(kernel_name=name)
        await manager.start_kernel()
        restarted = asyncio.Event()
        manager.add_restart_callback(restarted.set, "restart")
        manager.start_restarter()
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=120)
            first = container_of(manager)["Id"]
            client.execute("import os; os._exit(1)")
            await asyncio.wait_for(restarted.wait(), 60)
            await client.wait_for_ready(timeout=120)
            reply = await client.execute("print('alive again')", reply=True, timeout=60)
            assert reply["content"]["status"] == "ok"
            assert container_of(manager)["Id"] != first
        finally:
            manager.stop_restarter()
            client.stop_channels()
            await manager.shutdown_kernel()

    asyncio.run(scenario())


@pytest.mark.parametrize("attempt", REPEATS)
@pytest.mark.parametrize("now", [False, True], ids=["graceful", "now"])
def test_restart_reuses_the_ports(install, attempt, now):
    with running_kernel(install(DEBIAN_IMAGE)) as (manager, client):
        execute(client, "state = 1")
        first = container_of(manager)["Id"]
        manager.restart_kernel(now=now)
        wait_for_new_container(manager, first)
        client.wait_for_ready(timeout=120)
        reply, _ = execute(client, "state")
        assert reply["ename"] == "NameError"


def interrupt_running_cell(client, code: str, interrupt) -> tuple[dict, float]:
    """Run ``code`` (a sleeping cell), interrupt it once it runs; return its reply and how long it took.

    It returns once the kernel is idle again: IRkernel answers an interrupted cell, then
    aborts whatever request reaches it before it reports idle.
    """
    message_id = start_sleeping_cell(client, code)
    started = time.monotonic()
    interrupt()
    while True:
        reply = client.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == message_id:
            break
    elapsed = time.monotonic() - started
    while True:
        status = client.get_iopub_msg(timeout=30)
        if status["parent_header"].get("msg_id") == message_id and status["content"].get("execution_state") == "idle":
            return reply["content"], elapsed


def interrupts_python_by_signal(name: str) -> None:
    """A sleeping cell ends in KeyboardInterrupt within 1 s, and the kernel keeps its state."""
    with running_kernel(name) as (manager, client):
        execute(client, "kept = 'kept'")
        reply, elapsed = interrupt_running_cell(client, PYTHON_SLEEPING_CELL, manager.interrupt_kernel)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
        assert elapsed < 1
        assert manager.is_alive()
        assert execute(client, "print(kept)")[1].strip() == "kept"


@pytest.mark.parametrize("attempt", REPEATS)
def test_signal_interrupt_python(install, attempt):
    interrupts_python_by_signal(install("--interrupt-mode", "signal", DEBIAN_IMAGE))


def test_a_signal_interrupt_skips_the_init_that_would_forward_it_again(install):
    """Each process gets one SIGINT: Podman's init, signalled too, would forward a second one to
    the kernel, which lands wherever the first left it (IRkernel died of it under load)."""
    with running_kernel(install("--interrupt-mode", "signal", DEBIAN_IMAGE)) as (manager, client):
        main_pid = container_of(manager)["State"]["Pid"]
        assert program_name(main_pid) in INIT_PROGRAMS
        signalled = container_processes(main_pid)
        assert main_pid not in signalled
        assert [program_name(pid) for pid in signalled] == ["python3"]


# Kernels behind a wrapper that does not exec them, as real images' entrypoints often are: the
# container's init forwards a signal to its direct child alone.
WRAPPERS = {
    "bash": ["bash", "-c", 'python3 -m ipykernel_launcher -f "$PODKERNEL_CONNECTION_FILE"; echo kernel ended'],
    "sh": ["sh", "-c", 'cd /; python3 -m ipykernel_launcher -f "$PODKERNEL_CONNECTION_FILE"; echo kernel ended'],
    "script": [
        "sh",
        "-c",
        'printf "#!/bin/sh\\nset -e\\npython3 -m ipykernel_launcher -f \\"\\$1\\"\\n" > /tmp/entry'
        ' && chmod +x /tmp/entry && /tmp/entry "$PODKERNEL_CONNECTION_FILE"',
    ],
}


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_signal_interrupt_reaches_a_kernel_behind_a_wrapper(install, wrapper):
    interrupts_python_by_signal(install("--interrupt-mode", "signal", DEBIAN_IMAGE, "--", *WRAPPERS[wrapper]))


@pytest.mark.parametrize("attempt", REPEATS)
def test_signal_interrupt_r(install, attempt):
    name = install("--interrupt-mode", "signal", "--language", "R", IRKERNEL_IMAGE)
    with running_kernel(name) as (manager, client):
        execute(client, "kept <- 42")
        for _ in range(3):
            reply, elapsed = interrupt_running_cell(client, R_SLEEPING_CELL, manager.interrupt_kernel)
            assert elapsed < 1, reply
            assert manager.is_alive()
        assert execute(client, "cat(kept)")[1].strip() == "42"


@pytest.mark.cleanup_grace(60)  # 16 removals at once take longer on 2 cores, above all rootless
def test_sixteen_kernels_at_once(install):
    name = install(DEBIAN_IMAGE)
    with ThreadPoolExecutor(16) as pool:
        started = list(pool.map(lambda _: start_new_kernel(kernel_name=name, startup_timeout=300), range(16)))
    try:
        assert len(podkernel_containers()) == 16
        for index, (_manager, client) in enumerate(started):
            assert execute(client, f"print({index} * 2)")[1].strip() == str(index * 2)
    finally:
        for _manager, client in started:
            client.stop_channels()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda pair: pair[0].shutdown_kernel(), started))


def test_a_kernel_killed_with_its_watchdog_and_conmon_is_removed_by_the_next_start(install):
    """Every process of the launcher's session killed at once (a batch job's end, the OOM killer)
    leaves the kernel running in its container; the next start, of any kernel of this user,
    removes it and the private directory with its key, and leaves a live kernel alone, and a
    warm container that waits for a start."""
    name = install(DEBIAN_IMAGE)
    warm = install("--warm", "--name", "swept-warm", DEBIAN_IMAGE)
    try:
        [ready] = waiting(warm)
        with running_kernel(name) as (bystander, _):
            manager, client = start_kernel(name)
            client.stop_channels()
            orphan = container_of(manager)
            mine = f"podkernel-{launcher_of(manager).pid}-"
            left = {path for path in key_dirs() if os.path.basename(path).startswith(mine)}
            assert len(left) == 1, left
            watchdogs = watchdogs_of(orphan["Name"])
            assert len(watchdogs) == 1, watchdogs
            for pid in (*watchdogs, orphan["State"]["ConmonPid"], launcher_of(manager).pid):
                os.kill(pid, signal.SIGKILL)
            launcher_of(manager).wait()
            time.sleep(2)  # nothing else removes it
            assert podman("inspect", "--format", "{{.State.Running}}", orphan["Id"]).strip() == "true"
            with running_kernel(name) as (_, client):
                wait_until_removed(orphan["Id"])
                assert execute(client, "print(6 * 7)")[1].strip() == "42"
            assert not left & key_dirs()  # the key goes with it
            assert container_of(bystander)["State"]["Running"]
            assert waiting(warm) == [ready]
            manager.cleanup_resources()
    finally:
        podkernel("remove", warm, check=True)


def kill_at_once(launcher: int, conmon_of: str | None) -> None:
    """SIGKILL the launcher, everything it started and, with ``conmon_of`` (a container name
    prefix), the conmon of such a container, as the kill of a cgroup would: all are stopped
    first, again until no new one appears, so that nothing started in between escapes."""
    stopped: set[int] = set()
    while True:
        conmons = {
            pid
            for pid, args in command_lines().items()
            if conmon_of and "conmon" in args[0] and conmon_of in " ".join(args)
        }
        new = ({launcher, *descendants(launcher)} | conmons) - stopped
        if not new:
            break
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= new
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("conmon", ["conmon killed too", "conmon spared"])
def test_kernels_killed_with_their_watchdog_at_random_moments_are_swept_by_the_next_start(install, conmon):
    """The launcher and everything it started (its watchdog, ``podman run``) killed at once, at a
    random moment of the first 2.5 s of a start, with the kernel's conmon or without it (Podman
    puts conmon in a cgroup of its own, which a batch job's kill can miss); the next start of
    the kernel runs, and afterwards nothing is left: no container, process, key or runtime state."""
    seed = int(os.environ.get("PODKERNEL_SEED") or int.from_bytes(os.urandom(4), "big"))
    chooser = random.Random(seed)
    name = install(DEBIAN_IMAGE)
    for attempt in range(KILLED_STARTS):
        states = runtime_states()
        delay = chooser.uniform(0, 2.5)
        manager = KernelManager(kernel_name=name)
        manager.start_kernel()
        launcher = launcher_of(manager)
        time.sleep(delay)
        kill_at_once(launcher.pid, f"podkernel-{name}-" if conmon == "conmon killed too" else None)
        launcher.wait()
        manager.cleanup_resources()
        with running_kernel(name) as (_, client):
            assert execute(client, "print(6 * 7)")[1].strip() == "42"
        containers, processes = leftovers()
        left_states = runtime_states() - states
        assert (containers, processes, left_states) == ([], [], set()), (
            f"seed {seed} (replay: PODKERNEL_SEED={seed}), attempt {attempt}: killed {delay:.3f} s after the start, "
            f"{conmon}; "
            f"left containers {containers}, processes and files {processes}, runtime states {left_states}"
        )


def test_ps_and_prune(install):
    bystander = podman(
        "run", "--detach", "--rm", "--label", "io.podkernel.other=yes", BASE_IMAGE, "sleep", "300"
    ).strip()
    try:
        name = install(DEBIAN_IMAGE)
        with running_kernel(name) as (manager, client):
            container = container_of(manager)["Name"]
            listing = podkernel("ps", check=True).stdout
            assert container in listing and "running" in listing
            assert "Nothing to prune" in podkernel("prune", check=True).stdout
            # Lose the launcher and its watchdog at once: the container is orphaned.
            watchdogs = ["pgrep", "--uid", str(os.getuid()), "-f", "podkernel-watchdog"]  # ours, not other users'
            for pid in subprocess.run(watchdogs, capture_output=True, text=True).stdout.split():
                os.kill(int(pid), signal.SIGKILL)
            launcher_of(manager).kill()
            launcher_of(manager).wait()
            assert "gone" in podkernel("ps", check=True).stdout
            assert container in podkernel("prune", check=True).stdout
            assert podkernel_containers() == []
        # --all removes running kernels' containers too, and nothing else.
        manager, client = start_kernel(name)
        client.stop_channels()
        assert container_of(manager)["Name"] in podkernel("prune", "--all", check=True).stdout
        assert launcher_of(manager).wait(timeout=10) != 0
        manager.cleanup_resources()
        assert bystander in podman("ps", "--no-trunc", "--format", "{{.ID}}")
    finally:
        podman("rm", "--force", "--time", "0", bystander)
