"""The docker engine path: the real docker CLI against Podman's Docker-compatible API service."""

import os
import shutil
import time

from helpers import podkernel
from kernel_helpers import DEBIAN_IMAGE, execute, running_kernel


def test_docker_engine_kernel_runs_interrupts_and_cleans_up(docker_host, install):
    name = install("--engine", "docker", "--display-name", "Python via docker", DEBIAN_IMAGE)
    shown = podkernel("show", name, check=True).stdout
    assert shown.split()[:2] == [shutil.which("docker"), "run"]
    assert "--pidfile" not in shown and ":U" not in shown
    with running_kernel(name) as (manager, client):
        reply, printed = execute(client, "import os; print(6 * 7, os.environ['PODKERNEL_CONNECTION_FILE'])")
        assert printed.strip() == "42 /run/podkernel/connection.json"
        message_id = client.execute("import time\nfor _ in range(600): time.sleep(0.1)", stop_on_error=False)
        time.sleep(1)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != message_id:
            reply = client.get_shell_msg(timeout=30)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        listing = podkernel("ps", check=True, env=dict(os.environ, PODKERNEL_ENGINE="docker")).stdout
        assert name in listing and "running" in listing
