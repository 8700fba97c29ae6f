"""Warm kernels on real Podman: a pre-started container becomes the kernel, is never used twice or
when it no longer matches, ends itself when idle, and behaves as a cold kernel in every other way."""

import json
import os
import signal
import subprocess
import time

import pytest
from jupyter_client.manager import KernelManager

from helpers import podkernel
from kernel_helpers import (
    DEBIAN_IMAGE,
    PYPI_IMAGE,
    containers,
    execute,
    podman,
    running_kernel,
    start_sleeping_cell,
    waiting,
    warm_ups_done,
)
from podkernel.plan.run_args import WARM_WAIT_NAME
from podkernel.system.processes import descendants, program_name


@pytest.fixture
def warm_kernel(install):
    """Install a warm kernel; afterwards wait for warm-ups and remove it (and its waiting containers)."""
    names = []

    def make(*args: str) -> str:
        names.append(install("--warm", *args))
        return names[-1]

    yield make
    warm_ups_done()
    if names:
        podkernel("remove", *set(names), check=True)


def kernel_container(name: str) -> str:
    """The container that runs the kernel now (not a waiting one; a previous one may still be going)."""
    deadline = time.monotonic() + 10
    while True:
        running = [c for c in containers() if c.startswith(f"podkernel-{name}-") and c not in waiting(name)]
        if len(running) == 1 or time.monotonic() > deadline:
            assert len(running) == 1, containers()
            return running[0]
        time.sleep(0.1)


def gone(names: set[str], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while names & set(containers()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_warm_kernel_starts_in_the_container_that_waited(warm_kernel):
    name = warm_kernel("--name", "warmed", PYPI_IMAGE)
    [ready] = waiting(name)
    assert "warm: waits for a start" in podkernel("ps", check=True).stdout
    with running_kernel(name) as (manager, client):
        assert kernel_container(name) == ready
        reply = client.execute_interactive("import os; print(open(os.environ['PODKERNEL_CONNECTION_FILE']).read())")
        assert reply["content"]["status"] == "ok"
        warm_ups_done()
        assert len(waiting(name)) == 1 and ready not in waiting(name)  # the next one, already made
    warm_ups_done()
    assert gone({ready})  # used once, then gone with its kernel


# What a kernel can tell of how it was started.
PROBE = """
import json, os, sys
print(json.dumps({
    "argv": sys.argv, "path": sys.path[0], "cwd": os.getcwd(), "umask": os.umask(0o22),
    "name": open("/proc/self/comm").read().strip(), "init": open("/proc/1/comm").read().strip(),
    "environment": sorted(os.environ), "main": type(sys.modules["__main__"]).__name__,
}))
"""


def test_a_warm_python_kernel_waits_with_its_modules_imported_and_runs_as_a_cold_one(install, warm_kernel):
    name = warm_kernel("--name", "preloaded", PYPI_IMAGE)
    assert "its kernel's modules imported" in podkernel("warm", name, check=True).stdout  # a new one waits
    [ready] = waiting(name)
    main_pid = int(podman("inspect", "--format", "{{.State.Pid}}", ready))
    [waiter] = [pid for pid in descendants(main_pid) if program_name(pid) == WARM_WAIT_NAME]
    with open(f"/proc/{waiter}/maps") as maps:
        assert "zmq" in maps.read(), "ipykernel (and pyzmq with it) is imported while the kernel waits"
    reports = {}
    for kernel in (name, install("--name", "cold-twin", PYPI_IMAGE)):
        with running_kernel(kernel) as (_, client):
            reply, printed = execute(client, PROBE)
            assert reply["status"] == "ok", reply
            reports[kernel] = json.loads(printed)
    warm, cold = reports[name], reports["cold-twin"]
    variables = set(warm["environment"]) ^ set(cold["environment"])
    assert warm == cold, f"{[key for key in warm if warm[key] != cold[key]]} differ; variables in one only: {variables}"


def test_warm_restarts_interrupts_and_shutdown(warm_kernel):
    name = warm_kernel("--name", "warm-signal", "--interrupt-mode", "signal", DEBIAN_IMAGE)
    with running_kernel(name) as (manager, client):
        used = {kernel_container(name)}
        for restart in range(3):
            warm_ups_done()
            manager.restart_kernel(now=bool(restart % 2))
            client.wait_for_ready(timeout=60)
            current = kernel_container(name)
            assert "-warm-" in current and current not in used, (current, used)
            used.add(current)
            message_id = start_sleeping_cell(client)
            manager.interrupt_kernel()
            reply = client.get_shell_msg(timeout=10)
            assert reply["parent_header"]["msg_id"] == message_id
            assert reply["content"]["ename"] == "KeyboardInterrupt"
    warm_ups_done()
    assert gone(used)


def test_a_warm_container_that_no_longer_matches_is_not_used(warm_kernel, tmp_path):
    tag = "localhost/podkernel-test-warm-retagged"
    podman("tag", DEBIAN_IMAGE, tag)
    try:
        name = warm_kernel("--name", "retagged", tag)
        [ready] = waiting(name)
        podman("tag", PYPI_IMAGE, tag)  # the image's name now means another image
        with running_kernel(name):
            assert kernel_container(name) != ready
            assert "-warm-" not in kernel_container(name)
    finally:
        podman("untag", tag, tag)  # this name only: without one, untag takes every name the image has
    # --replace with other run args: the old kernel's waiting container is gone at once
    name = warm_kernel("--name", "edited", DEBIAN_IMAGE)
    [before] = waiting(name)
    warm_kernel("--replace", "--name", "edited", DEBIAN_IMAGE, "--env=EDITED=1")
    assert before not in containers() and len(waiting(name)) == 1
    with running_kernel(name) as (_, client):
        reply = client.execute_interactive("import os; print(os.environ.get('EDITED'))")
        assert reply["content"]["status"] == "ok"


def test_a_warm_container_ends_itself_when_idle_even_with_every_podkernel_process_killed(warm_kernel):
    name = warm_kernel("--name", "idle", "--warm-idle", "10", DEBIAN_IMAGE)
    [ready] = waiting(name)
    started = time.monotonic()
    subprocess.run(["pkill", "-KILL", "-f", "podkernel (start|warm-up)"], check=False)
    while ready in containers():
        assert time.monotonic() - started < 25, f"{ready} still there after {time.monotonic() - started:.0f} s"
        time.sleep(0.5)
    print(f"idle warm container gone after {time.monotonic() - started:.1f} s (idle time 10 s)")


def test_an_image_that_cannot_be_kept_warm_starts_cold_and_says_why(warm_kernel, tmp_path):
    """Without ``sleep`` the shell's wait cannot be: a command that is more than a Python kernel
    (here a ``cd`` first) waits in the shell."""
    (tmp_path / "Containerfile").write_text(f"FROM {DEBIAN_IMAGE}\nRUN rm /usr/bin/sleep\n")
    command = ["sh", "-c", 'cd / && exec python3 -m ipykernel_launcher -f "$PODKERNEL_CONNECTION_FILE"']
    args = ["--no-check", "--warm", "--name", "no-sleep", "--build", str(tmp_path), "--", "--", *command]
    result = podkernel("install", *args, check=True)
    assert "starts cold: the image lacks cat, sleep or mv" in result.stdout
    assert "starts cold: the image lacks cat, sleep or mv" in podkernel("show", "no-sleep", check=True).stdout
    try:
        with running_kernel("no-sleep") as (_, client):
            assert "-warm-" not in kernel_container("no-sleep")
            assert client.execute_interactive("1 + 1")["content"]["status"] == "ok"
    finally:
        warm_ups_done()
        podkernel("remove", "no-sleep", check=True)


def test_warm_off_and_prune_remove_waiting_containers(warm_kernel):
    name = warm_kernel("--name", "switched", DEBIAN_IMAGE)
    [ready] = waiting(name)
    result = podkernel("warm", name, "--off", check=True)
    assert f"Removed warm container {ready}" in result.stdout and waiting(name) == []
    podkernel("warm", name, check=True)
    [again] = waiting(name)
    result = podkernel("prune", check=True)
    assert f"Removed {again} (kernel {name}, warm)" in result.stdout and waiting(name) == []


def test_the_launcher_of_a_warm_kernel_killed_leaves_only_the_next_warm_container(warm_kernel):
    name = warm_kernel("--name", "killed", DEBIAN_IMAGE)
    manager = KernelManager(kernel_name=name)
    manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    used = kernel_container(name)
    os.killpg(manager.provisioner.process.pid, signal.SIGKILL)
    client.stop_channels()
    deadline = time.monotonic() + 20
    while used in containers():
        assert time.monotonic() < deadline, f"{used} left after its launcher was killed"
        time.sleep(0.2)
    manager.cleanup_resources()
    warm_ups_done()
    assert len(waiting(name)) == 1


def test_a_warm_kernel_with_the_docker_engine(docker_host, warm_kernel):  # the engine outlives the kernel
    name = warm_kernel("--engine", "docker", "--name", "warm-docker", DEBIAN_IMAGE)
    [ready] = waiting(name)
    with running_kernel(name) as (manager, client):
        assert kernel_container(name) == ready
        assert client.execute_interactive("print(6 * 7)")["content"]["status"] == "ok"
        manager.restart_kernel()
        client.wait_for_ready(timeout=60)
        assert kernel_container(name) != ready
