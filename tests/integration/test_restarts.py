"""Restarts with one client kept, as JupyterLab's server keeps its connections across them.

On rootful Podman a port published straight onto the connection file's port is a netfilter
translation to the container's address; a frontend that reconnects while the old
container's translation is still in place can have its connection pinned to that dead
address for the 120 s of conntrack's SYN_SENT timeout. The launcher's port relay makes
that impossible: frontends only ever connect to the launcher on 127.0.0.1.
"""

import json
import os
import queue
import statistics
import time

import pytest

from kernel_helpers import DEBIAN_IMAGE, PYPI_IMAGE, ROOT, network_state, running_kernel

RESTARTS = 20
ANSWER_WITHIN_S = 10


def answer_after_restart(client, code: str, expected: str, timeout: float) -> None:
    """Send ``code`` at once and wait for its reply and its printed output, within ``timeout``."""
    deadline = time.monotonic() + timeout
    message_id = client.execute(code)
    reply = printed = None
    while reply is None or printed is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {'reply' if reply is None else 'output'} to {code!r} within {timeout} s")
        if reply is None and client.shell_channel.msg_ready():
            message = client.get_shell_msg(timeout=0)
            if message["parent_header"].get("msg_id") == message_id:
                reply = message["content"]
            continue
        try:
            message = client.get_iopub_msg(timeout=min(remaining, 0.05))
        except queue.Empty:
            continue
        if message["parent_header"].get("msg_id") == message_id and message["msg_type"] == "stream":
            printed = message["content"]["text"].strip()
    assert reply["status"] == "ok", reply
    assert printed == expected


@pytest.mark.cleanup_grace(60)  # rootless removals of 20 containers may still be queued at the end
@pytest.mark.parametrize("image", [DEBIAN_IMAGE, PYPI_IMAGE], ids=["debian-ipykernel", "pypi-ipykernel"])
def test_one_client_across_twenty_restarts(install, image):
    """Half graceful, half ``now=True``: every new kernel answers an execute within 10 s."""
    times = []
    with running_kernel(install(image)) as (manager, client):
        answer_after_restart(client, "state = 'old'; print('before')", "before", 60)
        for index in range(RESTARTS):
            now = index % 2 == 1
            started = time.monotonic()
            manager.restart_kernel(now=now)
            try:
                answer_after_restart(client, f"print('state' in globals(), {index})", f"False {index}", ANSWER_WITHIN_S)
            except AssertionError as error:
                raise AssertionError(f"restart {index} (now={now}): {error}\n{network_state(manager)}") from None
            times.append(time.monotonic() - started)
            answer_after_restart(client, "state = 'old'; print('set')", "set", ANSWER_WITHIN_S)
    record_restart_times(image, times)


def record_restart_times(image: str, times: list[float]) -> None:
    """Keep the restart times (restart request until the new kernel has answered) for the closing report."""
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    backend = os.environ.get("PODKERNEL_TEST_BACKEND", "default")
    path = artifacts / f"restart-times-{backend}-{'root' if os.geteuid() == 0 else 'rootless'}.json"
    recorded = json.loads(path.read_text()) if path.exists() else {}
    recorded[image] = {"median_s": statistics.median(times), "worst_s": max(times), "all_s": times}
    path.write_text(json.dumps(recorded, indent=2))
