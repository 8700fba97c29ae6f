"""The docker engine path: the real docker CLI against Podman's Docker-compatible API service."""

import os
import shutil
import signal
import socket
import subprocess
import time

from helpers import podkernel
from kernel_helpers import (
    DEBIAN_IMAGE,
    container_of,
    execute,
    podman,
    running_kernel,
    start_kernel,
    start_sleeping_cell,
    wait_until_removed,
    watchdogs_of,
)
from podkernel.model.labels import KERNEL_LABEL, LAUNCHER_HOST_LABEL, LAUNCHER_PID_LABEL, LAUNCHER_UID_LABEL


def test_docker_engine_kernel_runs_interrupts_and_cleans_up(docker_host, install):
    name = install("--engine", "docker", "--display-name", "Python via docker", DEBIAN_IMAGE)
    shown = podkernel("show", name, check=True).stdout
    assert shown.split()[:2] == [shutil.which("docker"), "run"]
    assert "--pidfile" not in shown and ":U" not in shown
    with running_kernel(name) as (manager, client):
        reply, printed = execute(client, "import os; print(6 * 7, os.environ['PODKERNEL_CONNECTION_FILE'])")
        assert printed.strip() == "42 /run/podkernel/connection.json"
        message_id = start_sleeping_cell(client)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != message_id:
            reply = client.get_shell_msg(timeout=30)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        listing = podkernel("ps", check=True, env=dict(os.environ, PODKERNEL_ENGINE="docker")).stdout
        assert name in listing and "running" in listing


def test_a_docker_kernel_killed_with_its_watchdog_is_removed_by_the_next_start(docker_host, install):
    """The launcher and its watchdog killed at once leave the kernel running under the daemon;
    the next start of a kernel removes it (labelled as this user's, on this machine), and leaves
    alone one labelled as another user's, whose launcher may be hidden from this one's /proc."""
    name = install("--engine", "docker", DEBIAN_IMAGE)
    ended = subprocess.Popen(["true"])
    ended.wait()
    other_user = str(os.getuid() + 1)
    others = "podkernel-other-0badc0de"
    labels = {
        KERNEL_LABEL: "other",
        LAUNCHER_PID_LABEL: ended.pid,
        LAUNCHER_HOST_LABEL: socket.gethostname(),
        LAUNCHER_UID_LABEL: other_user,
    }
    docker_env = dict(os.environ, PODKERNEL_ENGINE="docker")
    try:
        subprocess.run(
            ["docker", "run", "--detach", "--rm", "--name", others]
            + [word for key, value in labels.items() for word in ("--label", f"{key}={value}")]
            + ["--entrypoint", "sleep", DEBIAN_IMAGE, "600"],
            check=True,
            capture_output=True,
        )
        manager, client = start_kernel(name)
        client.stop_channels()
        orphan = container_of(manager)
        launcher = manager.provisioner.process
        watchdogs = watchdogs_of(orphan["Name"])
        assert len(watchdogs) == 1, watchdogs
        for pid in (*watchdogs, launcher.pid):
            os.kill(pid, signal.SIGKILL)
        launcher.wait()
        time.sleep(2)  # nothing else removes it
        assert podman("inspect", "--format", "{{.State.Running}}", orphan["Id"]).strip() == "true"
        listing = podkernel("ps", check=True, env=docker_env).stdout
        assert f"pid {launcher.pid}: gone" in listing and f"of uid {other_user}" in listing
        with running_kernel(name) as (_, client):
            wait_until_removed(orphan["Id"])
            assert execute(client, "print(6 * 7)")[1].strip() == "42"
        manager.cleanup_resources()
        assert "another user's" in podkernel("prune", check=True, env=docker_env).stdout
        assert podman("inspect", "--format", "{{.State.Running}}", others).strip() == "true"
    finally:
        subprocess.run(["docker", "rm", "--force", others], capture_output=True)
