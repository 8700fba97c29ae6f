"""Reading /proc and ending a tree of processes (real processes, no container engine)."""

import os
import subprocess
import sys
import time

from podkernel.engines.podman import conmon_monitor
from podkernel.launcher.reaper import launcher_ended
from podkernel.system import processes

# A tree that keeps growing: every process starts a child, then waits.
GROWING_TREE = """
import os, sys, time
for _ in range(int(sys.argv[1])):
    if os.fork():
        break
    time.sleep(0.01)
time.sleep(60)
"""

CONMON_ARGS = (
    "/usr/bin/conmon --api-version 1 -c 70927dac -u 70927dac -r /usr/bin/runc -b /storage/70927dac/userdata "
    "-p /run/user/1001/podkernel-c9e3/container.pid -n podkernel-soak-signal-2f983fcc --exit-dir /exits "
    "--full-attach -l passthrough --log-level warning --runtime-arg --log-format=json --runtime-arg --log "
    "--runtime-arg=/oci-log --conmon-pidfile /conmon.pid --exit-command /usr/bin/podman"
).split()


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_descendants_and_command_line():
    root = subprocess.Popen([sys.executable, "-c", GROWING_TREE, "3"])
    try:
        wait_for(lambda: len(processes.descendants(root.pid)) == 3)
        assert processes.command_line(root.pid)[-2:] == [GROWING_TREE, "3"]
        assert processes.is_mine(root.pid)
        assert processes.read_pid("/nonexistent") is None
    finally:
        processes.kill_all([root.pid, *processes.descendants(root.pid)])
        root.wait()


def test_a_frozen_tree_is_complete_even_while_it_grows():
    """Frozen while its processes still fork, the whole tree is found, and killed."""
    for depth in (1, 5, 20):
        root = subprocess.Popen([sys.executable, "-c", GROWING_TREE, str(depth)], start_new_session=True)
        time.sleep(0.05)
        tree = processes.freeze_tree(root.pid)
        try:
            assert sorted(tree[1:]) == sorted(processes.descendants(root.pid)), "a process escaped the freeze"
            assert {processes.state(pid) for pid in tree} == {"T"}
        finally:
            processes.kill_all(tree)
        root.wait()
        assert processes.wait_gone(tree, 5)


def test_conmon_monitor_reads_the_container_and_runtime():
    monitor = conmon_monitor(42, CONMON_ARGS)
    assert (monitor.container, monitor.container_id, monitor.runtime) == (
        "podkernel-soak-signal-2f983fcc",
        "70927dac",
        ["/usr/bin/runc"],
    )
    assert monitor.pidfile == "/run/user/1001/podkernel-c9e3/container.pid"
    with_root = CONMON_ARGS + ["--runtime-arg", "--root", "--runtime-arg", "/run/custom"]
    assert conmon_monitor(42, with_root).runtime == ["/usr/bin/runc", "--root", "/run/custom"]
    assert conmon_monitor(42, ["/usr/bin/conmon", "--version"]) is None


def test_a_monitor_whoselauncher_ended_is_stranded_at_once():
    """Its pidfile names the private directory, and so the launcher, of the start that ran it."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    assert launcher_ended(f"/tmp/podkernel-{ended.pid}-0a1b/container.pid")
    assert not launcher_ended(f"/tmp/podkernel-{os.getpid()}-0a1b/container.pid")
    assert not launcher_ended("/tmp/podkernel-warm/kernel--0a1b/container.pid")  # a warm container's: by age
    assert not launcher_ended("")


def test_files_of_ended_processes_are_removed_unless_a_process_names_them(tmp_path):
    """A private directory or file named ``podkernel-[KIND-]PID-...`` goes once its creator has
    ended and no process names it; a live creator's, or one a watchdog still names, stays."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    gone = [tmp_path / f"podkernel-{ended.pid}-0011", tmp_path / f"podkernel-spec-{ended.pid}-ab"]
    kept = [tmp_path / f"podkernel-{os.getpid()}-0022", tmp_path / f"podkernel-{ended.pid}-0033"]
    for path in gone + kept:
        path.mkdir()
        (path / "connection.json").write_text("{}")
    (tmp_path / f"podkernel-{ended.pid}-0044.iid").write_text("")
    # names it, as a watchdog does (a shell could exec sleep and drop the name)
    watchdog = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(kept[1])])
    try:
        # A sweep that meets any process of this user in the middle of exec removes nothing (that
        # one may name a path): on a busy machine it takes another sweep, as at the next start.
        removed = []
        for _ in range(20):
            removed += processes.remove_abandoned(str(path) for path in tmp_path.iterdir())
            assert kept[1].exists()
            if len(list(tmp_path.iterdir())) == len(kept):
                break
            time.sleep(0.05)
    finally:
        watchdog.kill()
        watchdog.wait()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(path.name for path in kept)
    assert sorted(removed) == sorted(str(path) for path in [*gone, tmp_path / f"podkernel-{ended.pid}-0044.iid"])
