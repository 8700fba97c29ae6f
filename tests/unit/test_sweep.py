"""What ``podkernel sweep`` (containers.remove_launcherless) removes and what it leaves, against
an engine that lists made-up containers and monitors and records removals, with real processes
standing for live and ended launchers and for a run in progress."""

import os
import socket
import subprocess
import sys

import pytest

from podkernel.engines.base import Monitor
from podkernel.engines.podman import PodmanEngine
from podkernel.launcher.reaper import kernel_containers, remove_launcherless
from podkernel.model.labels import KERNEL_LABEL, LAUNCHER_HOST_LABEL, LAUNCHER_PID_LABEL, LAUNCHER_UID_LABEL, WARM_LABEL


class ListedEngine(PodmanEngine):
    """Podman's facts replaced by a listing; every removal and ended monitor is recorded."""

    def __init__(self, records: list[dict], unrecorded: list[str], monitors: list[Monitor]):
        super().__init__()
        self.records, self._unrecorded, self._monitors = records, unrecorded, monitors
        self.removed: list[str] = []
        self.ended: list[str] = []

    def containers(self, label):
        return [record for record in self.records if record["Names"][0] not in self.removed]

    def unrecorded_containers(self):
        return [name for name in self._unrecorded if name not in self.removed]

    def monitors(self):
        return [monitor for monitor in self._monitors if monitor.container not in self.ended]

    def remove(self, container, stop_timeout):
        self.removed.append(container)
        return True

    def end_monitor(self, monitor):
        self.ended.append(monitor.container)


def record(name: str, **labels: str) -> dict:
    return {"Id": f"id-{name}", "Names": [name], "Labels": {KERNEL_LABEL: "k", **labels}, "State": "running"}


@pytest.fixture
def processes():
    """(a live launcher's PID, an ended one's, a process that names ``podkernel-k-5e5e5e5e`` as a run would)."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "podkernel", "start"])
    run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--name", "podkernel-k-5e5e5e5e"])
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    yield live.pid, ended.pid, run.pid
    for process in (live, run):
        process.kill()
        process.wait()


def test_the_sweep_removes_what_no_launcher_owns_and_nothing_else(processes, tmp_path):
    live, ended, young = processes  # ``young``: a monitor's PID must be younger than STRANDED_AFTER_S
    engine = ListedEngine(
        records=[
            record("podkernel-k-00000001", **{LAUNCHER_PID_LABEL: str(live)}),
            record("podkernel-k-00000002", **{LAUNCHER_PID_LABEL: str(ended)}),
            record("podkernel-k-warm-00000003", **{WARM_LABEL: str(tmp_path)}),  # waits for a start
            # a remote kernel's, whose launcher runs on another machine: not this one's to judge
            record("podkernel-k-00000004", **{LAUNCHER_PID_LABEL: str(ended), LAUNCHER_HOST_LABEL: "elsewhere"}),
        ],
        unrecorded=["podkernel-k-0f0f0f0f", "podkernel-k-5e5e5e5e", "podkernel-test-base-working-container"],
        monitors=[
            Monitor(young, [], "podkernel-k-7a7a7a7a", "id-unknown", [], f"/tmp/podkernel-{ended}-ab/container.pid"),
            Monitor(young, [], "podkernel-k-7b7b7b7b", "id-unknown-2", [], f"/tmp/podkernel-{live}-ab/container.pid"),
            Monitor(young, [], "podkernel-k-00000001", "id-podkernel-k-00000001", [], ""),
        ],
    )
    remove_launcherless(engine)
    # The ended launcher's container, and the storage-only one that no run names.
    assert engine.removed == ["podkernel-k-00000002", "podkernel-k-0f0f0f0f"]
    # The conmon whose launcher ended, not the one of a live launcher's run in progress.
    assert engine.ended == ["podkernel-k-7a7a7a7a"]


class SharedListedEngine(ListedEngine):
    """A listing as a daemon gives it (Docker's): every user's containers together."""

    shared_by_users = True


def test_on_a_shared_engine_the_sweep_judges_only_this_users_containers(processes):
    """Another user's launcher may be hidden from this one's /proc, and a container without the
    labels (an older podkernel's) cannot say whose it is: both stay, as do another machine's."""
    live, ended, _ = processes
    me, here = str(os.getuid()), socket.gethostname()
    mine = {LAUNCHER_UID_LABEL: me, LAUNCHER_HOST_LABEL: here}
    engine = SharedListedEngine(
        records=[
            record("podkernel-k-00000001", **{LAUNCHER_PID_LABEL: str(live)}, **mine),
            record("podkernel-k-00000002", **{LAUNCHER_PID_LABEL: str(ended)}, **mine),
            record("podkernel-k-00000003", **{LAUNCHER_PID_LABEL: str(ended), LAUNCHER_UID_LABEL: str(int(me) + 1)}),
            record("podkernel-k-00000004", **{LAUNCHER_PID_LABEL: str(ended)}),
            record(
                "podkernel-k-00000005", **{LAUNCHER_PID_LABEL: str(ended), **mine, LAUNCHER_HOST_LABEL: "elsewhere"}
            ),
        ],
        unrecorded=[],
        monitors=[],
    )
    remove_launcherless(engine)
    assert engine.removed == ["podkernel-k-00000002"]
    owners = {c.name: (c.launcher_uid, c.launcher_host) for c in kernel_containers(engine)}
    assert owners["podkernel-k-00000003"] == (str(int(me) + 1), "")
    assert owners["podkernel-k-00000004"] == ("unknown", "")
    assert owners["podkernel-k-00000005"] == ("", "elsewhere")
