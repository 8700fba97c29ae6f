"""Every way a kernel can end, both interrupt modes, restarts, many kernels at once, ps and prune.

Each path runs three times in a row; after each test the autouse fixture checks that no
podkernel container and no launcher or watchdog process is left (within 10 seconds).
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from jupyter_client.ioloop import AsyncIOLoopKernelManager
from jupyter_client.manager import start_new_kernel

from helpers import podkernel
from kernel_helpers import (
    BASE_IMAGE,
    DEBIAN_IMAGE,
    IRKERNEL_IMAGE,
    container_of,
    execute,
    podkernel_containers,
    podman,
    running_kernel,
)

REPEATS = [1, 2, 3]

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


def interrupt_running_cell(manager, client, code: str, interrupt) -> tuple[dict, float]:
    """Run ``code``, interrupt it after 1.5 s; return its reply and how long the reply took.

    It returns once the kernel is idle again: IRkernel answers an interrupted cell, then
    aborts whatever request reaches it before it reports idle.
    """
    message_id = client.execute(code, stop_on_error=False)
    time.sleep(1.5)
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
        reply, elapsed = interrupt_running_cell(
            manager, client, "import time\nfor _ in range(600): time.sleep(0.1)", manager.interrupt_kernel
        )
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
        assert elapsed < 1
        assert manager.is_alive()
        assert execute(client, "print(kept)")[1].strip() == "kept"


@pytest.mark.parametrize("attempt", REPEATS)
def test_signal_interrupt_python(install, attempt):
    interrupts_python_by_signal(install("--interrupt-mode", "signal", DEBIAN_IMAGE))


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
        reply, elapsed = interrupt_running_cell(manager, client, "Sys.sleep(60)", manager.interrupt_kernel)
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
        manager, client = start_new_kernel(kernel_name=name, startup_timeout=120)
        client.stop_channels()
        assert container_of(manager)["Name"] in podkernel("prune", "--all", check=True).stdout
        assert launcher_of(manager).wait(timeout=10) != 0
        manager.cleanup_resources()
        assert bystander in podman("ps", "--no-trunc", "--format", "{{.ID}}")
    finally:
        podman("rm", "--force", "--time", "0", bystander)
