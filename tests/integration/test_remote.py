"""Kernels on another machine: Podman over SSH, against a second host that tests/remote-host
makes on this one (a network namespace with its own sshd and Podman, storage and network,
and this work tree, /tmp and /home hidden from it), driven through real Jupyter clients."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager, start_new_kernel
from nbclient import NotebookClient
from remote_helpers import NETNS, REMOVAL_BOUND_S, SSH_PERSIST_S, command_lines

from helpers import podkernel
from kernel_helpers import (
    DEBIAN_IMAGE,
    PYPI_IMAGE,
    execute,
    podkernel_containers,
    podkernel_processes,
    running_kernel,
    start_kernel,
    start_sleeping_cell,
)
from podkernel.engines.remote.link import SERVER_ALIVE_S
from podkernel.system import processes

FRONTEND = """
import sys, time
from jupyter_client.manager import start_new_kernel
manager, client = start_new_kernel(kernel_name=sys.argv[1], startup_timeout=120)
print(manager.provisioner.process.pid, flush=True)
time.sleep(600)
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the simulated remote host needs root (tests/remote-host)")


@pytest.fixture(params=["root", "rootless"])
def there(request, remote):
    """The remote host's Podman a test's kernels run with: root's, or a user's rootless one.
    After the test: no kernel container and no secret left in either."""
    yield getattr(remote, request.param)
    for side in (remote.root, remote.rootless):
        deadline = time.monotonic() + REMOVAL_BOUND_S
        while (side.containers() or side.secrets()) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = side.containers(), side.secrets()
        if left[0]:
            side.podman("rm", "--force", "--time", "0", *left[0], check=False)
        assert left == ([], []), f"left in {side}'s Podman there: containers {left[0]}, secrets {left[1]}"


def wait_until(condition, timeout: float, what: str) -> float:
    """Wait until ``condition()``; return how long it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def the_remote_container(there) -> str:
    names = there.containers()
    assert len(names) == 1, names
    return names[0]


def test_a_remote_kernel_runs_there_and_keeps_its_key(remote, there, install):
    """install's trial runs there too; the kernel runs in a container of the remote Podman (none
    here), and its key is in no inspect, environment or command line there; its ports are on the
    remote's 127.0.0.1 only."""
    result = podkernel("install", "--name", "far", *there.args(), PYPI_IMAGE, check=True)
    assert "ok: ipython" in result.stdout and there.url in result.stdout
    assert "this machine" not in podkernel("list", check=True).stdout.split("far", 1)[1].splitlines()[0]
    with running_kernel("far") as (manager, client):
        assert execute(client, "print(6 * 7)")[1].strip() == "42"
        assert podkernel_containers() == []
        container = the_remote_container(there)
        key = json.loads(Path(manager.connection_file).read_text())["key"]
        inspect = there.podman("container", "inspect", container)
        assert key not in inspect
        main_pid = int(there.podman("inspect", "--format", "{{.State.Pid}}", container))
        for pid in [main_pid, *processes.descendants(main_pid)]:  # the same machine's /proc, here
            for view in ("environ", "cmdline"):
                assert key.encode() not in Path(f"/proc/{pid}/{view}").read_bytes()
        assert key not in " ".join(" ".join(args) for args in command_lines().values())
        # Published on the remote's 127.0.0.1: neither its other address nor this host reaches them.
        ports = [int(line.rpartition(":")[2]) for line in there.podman("port", container).splitlines()]
        assert len(ports) == 5
        probe = "import socket,sys; s=socket.socket(); s.settimeout(2); print(s.connect_ex((sys.argv[1], int(sys.argv[2]))))"  # noqa: E501
        for port in ports:
            inside = subprocess.run(
                ["nsenter", f"--net=/run/netns/{NETNS}", sys.executable, "-c", probe, remote.address, str(port)],
                capture_output=True,
                text=True,
            ).stdout.strip()
            here = subprocess.run(
                [sys.executable, "-c", probe, remote.address, str(port)], capture_output=True, text=True
            )
            assert inside != "0" and here.stdout.strip() != "0", (port, inside, here.stdout)


@pytest.mark.parametrize("mode", ["message", "signal"])
def test_a_remote_kernel_is_interrupted(remote, there, install, mode):
    name = install("--interrupt-mode", mode, *there.args(), DEBIAN_IMAGE)
    with running_kernel(name) as (manager, client):
        execute(client, "kept = 'kept'")
        message_id = start_sleeping_cell(client)
        started = time.monotonic()
        manager.interrupt_kernel()
        while (reply := client.get_shell_msg(timeout=30))["parent_header"].get("msg_id") != message_id:
            pass
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - started < 2
        assert execute(client, "print(kept)")[1].strip() == "kept"


def test_a_remote_restart_gives_a_fresh_container(remote, there, install):
    name = install(*there.args(), PYPI_IMAGE)
    with running_kernel(name) as (manager, client):
        execute(client, "state = 1")
        before = the_remote_container(there)
        manager.restart_kernel(now=False)
        client.wait_for_ready(timeout=60)
        reply, _ = execute(client, "state")
        assert reply["status"] == "error"  # a new kernel
        wait_until(lambda: there.containers() and before not in there.containers(), 15, "the swap")
        assert len(there.containers()) == 1


@pytest.mark.parametrize("now", [False, True], ids=["graceful", "now"])
def test_a_remote_kernel_shuts_down(remote, there, install, now):
    manager, client = start_new_kernel(kernel_name=install(*there.args(), PYPI_IMAGE), startup_timeout=120)
    assert execute(client, "1")[0]["status"] == "ok"
    client.stop_channels()
    manager.shutdown_kernel(now=now)


@pytest.mark.parametrize("kill", ["frontend", "launcher", "launcher group"])
def test_a_remote_kernel_whose_frontend_or_launcher_is_killed_is_removed_there(remote, there, install, kill):
    name = install(*there.args(), PYPI_IMAGE)
    frontend = subprocess.Popen([sys.executable, "-c", FRONTEND, name], stdout=subprocess.PIPE, text=True)
    launcher = int(frontend.stdout.readline())
    container = the_remote_container(there)
    started = time.monotonic()
    if kill == "frontend":
        frontend.kill()
    elif kill == "launcher":
        os.kill(launcher, signal.SIGKILL)
    else:
        os.killpg(os.getpgid(launcher), signal.SIGKILL)
    took = wait_until(lambda: container not in there.containers(), REMOVAL_BOUND_S, "the removal there")
    print(f"{kill} SIGKILL: the remote container was gone {took:.1f} s later ({time.monotonic() - started:.1f})")
    frontend.kill()
    frontend.wait()


def kill_the_master(remote):
    for pid in remote.masters():
        os.kill(pid, signal.SIGKILL)


def take_the_link_down(remote):
    subprocess.run(["ip", "link", "set", "pkr-host", "down"], check=True)


@pytest.mark.parametrize("cut", [kill_the_master, take_the_link_down], ids=["master killed", "link down"])
def test_a_cut_link_ends_the_kernel_here_and_removes_it_there(remote, there, install, cut):
    """The remote container goes within REMOVAL_BOUND_S (its session's heartbeats stop), and the
    launcher here ends, so that the frontend sees the kernel die (and can restart it)."""
    manager, client = start_kernel(install(*there.args(), PYPI_IMAGE))
    client.stop_channels()
    container = the_remote_container(there)
    launcher = manager.provisioner.process
    cut(remote)
    try:
        took = wait_until(lambda: container not in there.containers(), REMOVAL_BOUND_S, "the removal there")
        ended = wait_until(lambda: launcher.poll() is not None, 3 * SERVER_ALIVE_S + 10, "the launcher's end")
        print(f"{cut.__name__}: removed there after {took:.1f} s, the launcher ended after {ended:.1f} s more")
        assert launcher.returncode != 0
    finally:
        subprocess.run(["ip", "link", "set", "pkr-host", "up"], check=True)
        manager.shutdown_kernel(now=True)
    # The next start makes a new connection.
    with running_kernel(manager.kernel_name) as (_, client):
        assert execute(client, "1")[0]["status"] == "ok"


def test_a_notebook_runs_on_a_remote_kernel_with_nbclient(remote, there, install):
    name = install(*there.args(), PYPI_IMAGE)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import platform\nx = 21"), nbformat.v4.new_code_cell("print(x * 2)")]
    NotebookClient(notebook, kernel_name=name, timeout=60).execute()
    assert notebook.cells[1].outputs[0]["text"].strip() == "42"


def test_a_remote_kernel_built_there_from_a_local_folder(remote, there, install, tmp_path):
    (tmp_path / "Containerfile").write_text(f"FROM {PYPI_IMAGE}\nCOPY marker.txt /marker.txt\n")
    marker = f"built from here {random.random()}"
    (tmp_path / "marker.txt").write_text(marker)
    name = install("--name", "far-build", *there.args(), "--build", str(tmp_path))
    with running_kernel(name) as (manager, client):
        assert execute(client, "print(open('/marker.txt').read())")[1].strip() == marker
    assert "localhost/podkernel-build/far-build" in there.podman("images", "--format", "{{.Repository}}")


def test_ps_prune_and_doctor_on_a_system_connection(remote, there, install, tmp_path, monkeypatch):
    """A Podman system connection names the host; ps, prune and doctor look there. (As root,
    Podman saves connections in /etc/containers/containers.conf: the test works on a copy.)"""
    config = tmp_path / "containers.conf"
    system = Path("/etc/containers/containers.conf")
    config.write_text(system.read_text() if system.exists() else "")
    monkeypatch.setenv("CONTAINERS_CONF", str(config))
    subprocess.run(
        ["podman", "system", "connection", "add", "--identity", there.identity, "far", there.url], check=True
    )
    try:
        name = install("--connection", "far", PYPI_IMAGE)
        doctor = podkernel("doctor", "--connection", "far", "--image", PYPI_IMAGE)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "Port forward" in doctor.stdout and "FAILED" not in doctor.stdout
        manager, client = start_kernel(name)
        client.stop_channels()
        container = the_remote_container(there)
        assert container in podkernel("ps", "--connection", "far", check=True).stdout
        assert "No podkernel containers" in podkernel("ps", check=True).stdout  # this machine has none
        assert container in podkernel("prune", "--all", "--connection", "far", check=True).stdout
        assert manager.provisioner.process.wait(timeout=3 * SERVER_ALIVE_S + 10) != 0
        manager.cleanup_resources()
    finally:
        subprocess.run(["podman", "system", "connection", "remove", "far"], check=True)


def test_an_unreachable_host_is_one_line_naming_it(remote, there, install, tmp_path, monkeypatch):
    closed = there.url.replace(":22/", ":2222/")
    failed = podkernel("install", "--url", closed, "--identity", there.identity, PYPI_IMAGE)
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1, failed.stderr
    user = there.url.split("//")[1].split("@")[0]
    assert f"cannot reach {user}@{remote.address} port 2222 over SSH" in failed.stderr
    assert "Connection refused" in failed.stderr and "Traceback" not in failed.stderr
    (tmp_path / ".ssh").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))  # a home whose known_hosts lacks the host
    for pid in remote.masters():  # a connection made earlier is reused: none
        os.kill(pid, signal.SIGKILL)
    unknown = podkernel("install", *there.args(), PYPI_IMAGE)
    assert unknown.returncode == 1 and "host key of" in unknown.stderr and "ssh -p 22" in unknown.stderr
    assert not (Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels").exists()


def test_a_socket_path_where_podman_is_not_is_one_line_naming_it(remote, jupyter_dirs):
    wrong = remote.root.url.rsplit("/", 1)[0] + "/nothing.sock"
    failed = podkernel("install", "--url", wrong, "--identity", remote.identity, PYPI_IMAGE)
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1, failed.stderr
    socket_path = wrong.split(":22", 1)[1]
    assert f"Podman on {remote.address} does not answer at {socket_path}" in failed.stderr, failed.stderr
    assert "pull" not in failed.stderr and not (jupyter_dirs / "kernels").exists()


def test_the_ssh_master_ends_by_itself_after_the_last_kernel(remote, there, install):
    name = install(*there.args(), PYPI_IMAGE)
    with running_kernel(name):
        assert len(there.masters()) == 1
        time.sleep(SSH_PERSIST_S + 2)
        assert len(there.masters()) == 1  # a kernel holds it
    wait_until(lambda: not there.masters(), SSH_PERSIST_S + 10, "the master's end")
    assert not any("podkernel-session" in line for line in podkernel_processes())


MASTER_END_LOOKUPS = 30


def test_commands_made_as_the_master_ends_go_through(remote, monkeypatch):
    """A command made when the SSH master's idle time runs out is not lost: each lookup starts
    at a random moment around that end (OpenSSH ends an idle master at a whole second of the
    boot-time clock: this aims within 30 ms before to 10 ms after). Without podkernel's hold on
    the master, 15 of 40 such lookups failed here ("Cannot connect to Podman"), and install took
    one for a missing image and tried to pull it."""
    from podkernel.engines.remote import RemotePodmanEngine
    from podkernel.model.remote_host import RemoteHost

    monkeypatch.setenv("PODKERNEL_SSH_PERSIST_S", "1")
    host = RemoteHost.parse(remote.rootless.url, remote.identity)
    seed = int(os.environ.get("PODKERNEL_SEED") or int.from_bytes(os.urandom(4), "big"))
    chooser = random.Random(seed)
    for attempt in range(MASTER_END_LOOKUPS):
        engine = RemotePodmanEngine(host)  # a new process's, as each podkernel command is
        try:
            assert engine.image_id(DEBIAN_IMAGE), f"{DEBIAN_IMAGE} is not there"
        except Exception as error:
            raise AssertionError(f"seed {seed} (replay: PODKERNEL_SEED={seed}), lookup {attempt}: {error}") from None
        engine.link.release()
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        target = int(now) + 1 + chooser.uniform(-0.03, 0.01)
        time.sleep(target - now if target > now else target + 1 - now)


KILLED_REMOTE_STARTS = 8


@pytest.mark.parametrize("kill", ["launcher SIGKILL", "launcher group SIGKILL", "launcher SIGTERM"])
def test_a_remote_start_cut_short_at_a_random_moment_leaves_nothing(remote, there, install, kill):
    """Killed at a random moment of its start (making the SSH link, the secret, the run, the
    forwards, the session), the launcher leaves nothing there (container, secret) or here: what
    the watchdog here does not remove, the session's dead-man's switch there does."""
    import kernel_helpers

    name = install(*there.args(), PYPI_IMAGE)
    seed = int(os.environ.get("PODKERNEL_SEED") or int.from_bytes(os.urandom(4), "big"))
    chooser = random.Random(seed)
    for attempt in range(KILLED_REMOTE_STARTS):
        if chooser.random() < 0.3:  # now and then the first start of a host: the master is made too
            for pid in remote.masters():
                os.kill(pid, signal.SIGKILL)
        delay = chooser.uniform(0, 1.5)
        manager = KernelManager(kernel_name=name)
        manager.start_kernel()
        time.sleep(delay)
        launcher = manager.provisioner.process
        if kill == "launcher group SIGKILL":
            os.killpg(launcher.pid, signal.SIGKILL)
        else:
            launcher.send_signal(signal.SIGKILL if kill == "launcher SIGKILL" else signal.SIGTERM)
        launcher.wait(timeout=30)
        manager.cleanup_resources()
        replay = f"seed {seed} (replay: PODKERNEL_SEED={seed}), attempt {attempt}: {kill} {delay:.3f} s after the start"
        try:
            wait_until(lambda: not there.containers() and not there.secrets(), REMOVAL_BOUND_S, "removal")
        except AssertionError:
            raise AssertionError(f"{replay}: left there {there.containers()} {there.secrets()}") from None
        containers, processes_left = kernel_helpers.leftovers()
        assert (containers, processes_left) == ([], []), f"{replay}: left here {containers} {processes_left}"
