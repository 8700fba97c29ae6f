"""Real kernels in real containers, driven through jupyter_client and nbclient."""

import json
import os
import shlex
import socket
import stat
import subprocess
import time

import nbformat
import pytest
from jupyter_client.manager import KernelManager, start_new_kernel
from nbclient import NotebookClient

from helpers import podkernel
from kernel_helpers import (
    BASE_IMAGE,
    DEBIAN_IMAGE,
    PYPI_IMAGE,
    ROOT,
    UID1000_IMAGE,
    container_of,
    execute,
    podman,
    podman_image_prune,
    running_kernel,
    start_sleeping_cell,
)
from podkernel.launcher.images import built_image_tag

ENTRYPOINT_JSON = '--entrypoint=["/bin/sh", "-c"]'


@pytest.fixture(scope="session")
def example_build_args():
    """Build args that make examples/python build from the local Debian image."""
    return ["--build-arg", f"BASE={BASE_IMAGE}"]


KERNELS = {
    "debian-ipykernel-6.17": lambda args: [DEBIAN_IMAGE],
    "pypi-ipykernel-inline-json-entrypoint": lambda args: [
        PYPI_IMAGE,
        ENTRYPOINT_JSON,
        "--",
        "exec python -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE",
    ],
    "build-dir-examples-python": lambda args: ["--build", str(ROOT / "examples" / "python"), *args],
    "image-user-uid-1000": lambda args: [UID1000_IMAGE],
}


@pytest.mark.parametrize("kind", list(KERNELS))
def test_kernel_starts_and_runs_code(kind, install, example_build_args, jupyter_dirs):
    name = install("--env", "PODKERNEL_TEST_GREETING=hello there", *KERNELS[kind](example_build_args))
    with running_kernel(name) as (manager, client):
        reply, printed = execute(
            client,
            "import os, sys\n"
            "print(6 * 7)\n"
            "print(os.getuid())\n"
            "print(os.environ['PODKERNEL_TEST_GREETING'])\n"
            "print(os.environ['PODKERNEL_CONNECTION_FILE'], os.environ['DOCKERNEL_CONNECTION_FILE'])\n"
            "print(os.path.exists('/run/.containerenv'))",
        )
        assert reply["status"] == "ok", reply
        answer, uid, greeting, connection_paths, in_container = printed.splitlines()
        assert answer == "42"
        assert greeting == "hello there"
        assert connection_paths == "/run/podkernel/connection.json /run/podkernel/connection.json"
        assert in_container == "True"
        assert uid == ("1000" if kind == "image-user-uid-1000" else "0")


def test_container_is_wired_as_promised(install):
    name = install(DEBIAN_IMAGE)
    with running_kernel(name) as (manager, client):
        with open(manager.connection_file) as handle:
            host_connection = json.load(handle)
        container = container_of(manager)
        assert container["Config"]["Labels"]["io.podkernel.kernel"] == name
        published = {
            int(port.split("/")[0]): bindings[0] for port, bindings in container["HostConfig"]["PortBindings"].items()
        }
        ports = [host_connection[key] for key in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]
        assert sorted(published) == sorted(ports)
        assert all(binding["HostIp"] == "127.0.0.1" for binding in published.values())
        # On spare ports: the launcher's relay listens on the connection file's own ports.
        assert not {int(binding["HostPort"]) for binding in published.values()} & set(ports)
        launcher = f"pid={manager.provisioner.process.pid},"
        for port in ports:
            listening = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
            assert "127.0.0.1:" in listening and launcher in listening, listening
        # The HMAC key is nowhere in the container's definition: not in args, labels, env or mounts.
        assert host_connection["key"] not in json.dumps(container)
        # The private copy: 0600, inside a directory only its owner can enter.
        source = next(m["Source"] for m in container["Mounts"] if m["Destination"] == "/run/podkernel/connection.json")
        assert stat.S_IMODE(os.stat(source).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(source)).st_mode) == 0o700
        assert container["Image"] == podman("image", "inspect", "--format", "{{.Id}}", DEBIAN_IMAGE).strip()
        private_dir = os.path.dirname(source)
    # The host's own connection file is never modified; the private copy is gone with the kernel.
    assert host_connection["ip"] == "127.0.0.1"
    assert not os.path.exists(private_dir)


def test_early_connections_are_refused_never_dropped(install):
    """Until the kernel listens, connecting to its ports is refused, as with a kernel on the host.

    A port that accepts and then drops the connection (rootless Podman's proxy does, before the
    kernel listens) makes a frontend's IOPub lose its subscription: see relay.py.
    """
    name = install(DEBIAN_IMAGE)
    manager = KernelManager(kernel_name=name)
    manager.start_kernel()
    refused = dropped = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", manager.iopub_port), timeout=10) as connection:
                    greeting = connection.recv(10)
            except ConnectionRefusedError:
                refused += 1
                time.sleep(0.005)
                continue
            except ConnectionResetError:
                greeting = b""
            if greeting:
                break
            dropped += 1
        else:
            pytest.fail("the kernel never greeted on its IOPub port")
    finally:
        manager.shutdown_kernel(now=True)
    assert refused > 0, "connected at the first try: the test did not see the kernel starting"
    assert dropped == 0


def test_show_prints_exactly_what_start_ran(install):
    name = install(
        PYPI_IMAGE,
        ENTRYPOINT_JSON,
        "-e",
        "A=1",
        "--",
        "exec python -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE",
    )
    shown = shlex.split(podkernel("show", name, check=True).stdout)
    with running_kernel(name) as (manager, client):
        container = container_of(manager)
        ran = container["Config"]["CreateCommand"]
        with open(manager.connection_file) as handle:
            values = {key: str(value) for key, value in json.load(handle).items() if key.endswith("_port")}
        for binding_port, bindings in container["HostConfig"]["PortBindings"].items():
            key = next(key for key, value in values.items() if value == binding_port.split("/")[0])
            values["published_" + key] = bindings[0]["HostPort"]
        values["connection_file"] = manager.connection_file
        values["suffix"] = container["Name"].rsplit("-", 1)[1]
        values["launcher_pid"] = container["Config"]["Labels"]["io.podkernel.launcher-pid"]
        values["private_dir"] = os.path.dirname(ran[ran.index("--pidfile") + 1])
        filled = []
        for word in shown:
            for key, value in values.items():
                word = word.replace("{" + key + "}", value)
            filled.append(word)
        assert filled == ran
        assert values["launcher_pid"] == str(manager.provisioner.process.pid)


def test_message_interrupt_stops_the_cell_and_keeps_state(install):
    name = install(DEBIAN_IMAGE)
    with running_kernel(name) as (manager, client):
        assert execute(client, "kept = 'still here'")[0]["status"] == "ok"
        message_id = start_sleeping_cell(client)
        interrupted_at = time.monotonic()
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != message_id:
            reply = client.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - interrupted_at < 5
        reply, printed = execute(client, "print(kept)")
        assert printed.strip() == "still here"


def test_restart_gives_a_fresh_container(install):
    name = install(DEBIAN_IMAGE)
    with running_kernel(name) as (manager, client):
        execute(client, "state = 1")
        first = container_of(manager)["Id"]
        manager.restart_kernel()
        client.wait_for_ready(timeout=60)
        second = container_of(manager)["Id"]
        assert first != second
        assert first not in podman("ps", "--all", "--no-trunc", "--format", "{{.ID}}").split()
        reply, _ = execute(client, "state")
        assert reply["status"] == "error" and reply["ename"] == "NameError"


def test_build_kernel_picks_up_containerfile_changes_on_restart(install, tmp_path):
    build_dir = tmp_path / "kernel"
    build_dir.mkdir()
    containerfile = build_dir / "Containerfile"
    containerfile.write_text(f"FROM {DEBIAN_IMAGE}\nRUN echo first > /version\n")
    name = install("--build", str(build_dir))
    with running_kernel(name) as (manager, client):
        assert execute(client, "print(open('/version').read())")[1].strip() == "first"
        containerfile.write_text(f"FROM {DEBIAN_IMAGE}\nRUN echo second > /version\n")
        manager.restart_kernel()
        client.wait_for_ready(timeout=120)
        assert execute(client, "print(open('/version').read())")[1].strip() == "second"


def test_a_frontend_without_sbin_on_its_path_starts_kernels(install):
    """Services and desktop sessions often run without /usr/sbin on PATH, where root Podman's
    network backend finds iptables ("netavark: No such file or directory" without it)."""
    name = install(DEBIAN_IMAGE)
    manager, client = start_new_kernel(
        kernel_name=name, startup_timeout=120, env=dict(os.environ, PATH="/usr/local/bin:/usr/bin:/bin")
    )
    try:
        assert execute(client, "print(6 * 7)")[1].strip() == "42"
    finally:
        client.stop_channels()
        manager.shutdown_kernel()


def test_built_image_is_tagged_and_kept_by_prune(install, tmp_path):
    """`podman image prune` deletes untagged images: each build kernel's current image has a tag."""
    (tmp_path / "Containerfile").write_text(f"FROM {DEBIAN_IMAGE}\nRUN echo {tmp_path.name} > /built-for\n")
    name = install("--build", str(tmp_path))
    tag = built_image_tag(name)
    built = podman("image", "inspect", "--format", "{{.Id}}", tag).strip()
    pruned = podman_image_prune()
    assert pruned.returncode == 0, pruned.stderr
    assert podman("image", "inspect", "--format", "{{.Id}}", tag).strip() == built


def test_build_command_prints_the_image_id(install):
    name = install(DEBIAN_IMAGE)
    result = podkernel("build", name, check=True)
    assert result.stdout.strip() == podman("image", "inspect", "--format", "{{.Id}}", DEBIAN_IMAGE).strip()


def test_notebook_runs_with_nbclient(install, example_build_args):
    name = install("--build", str(ROOT / "examples" / "python"), *example_build_args)
    notebook = nbformat.read(ROOT / "examples" / "python" / "example.ipynb", as_version=4)
    NotebookClient(notebook, kernel_name=name, timeout=120, startup_timeout=120).execute()
    printed = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "inside a container: True" in printed
    assert "connection file: /run/podkernel/connection.json" in printed
    assert "Debian GNU/Linux 12" in printed


def test_failed_build_shows_its_log_and_installs_nothing(jupyter_dirs, tmp_path):
    (tmp_path / "Containerfile").write_text(f"FROM {DEBIAN_IMAGE}\nRUN echo build-step-marker && exit 3\n")
    result = podkernel("install", "--build", str(tmp_path))
    assert result.returncode == 1
    assert "build-step-marker" in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Error: podman build") and "fix the Containerfile" in last_line
    assert not (jupyter_dirs / "kernels").exists() or not any((jupyter_dirs / "kernels").iterdir())


def test_missing_image_that_cannot_be_pulled(jupyter_dirs):
    result = podkernel("install", "localhost/podkernel-no-such-image:never")
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Error: podman pull localhost/podkernel-no-such-image:never failed")
    assert "Traceback" not in result.stderr
    assert not (jupyter_dirs / "kernels").exists() or not any((jupyter_dirs / "kernels").iterdir())


def test_an_engine_that_does_not_answer_is_not_taken_for_a_missing_image(jupyter_dirs, tmp_path):
    """Podman that cannot be reached (here: CONTAINER_HOST names a socket nobody serves) is the
    error, in one line: no pull is tried, and the image's name is not blamed."""
    env = {**os.environ, "CONTAINER_HOST": f"unix://{tmp_path}/nobody.sock"}
    result = podkernel("install", "--no-check", DEBIAN_IMAGE, env=env)
    assert result.returncode == 1
    assert "pull" not in result.stderr.lower() and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: podman image inspect {DEBIAN_IMAGE} failed") and "nobody.sock" in line, line
    assert not (jupyter_dirs / "kernels").exists() or not any((jupyter_dirs / "kernels").iterdir())


def test_start_with_missing_image_fails_in_one_line(install, jupyter_dirs, tmp_path):
    tag = "localhost/podkernel-test-short-lived"
    podman("tag", DEBIAN_IMAGE, tag)
    name = install(tag)
    podman("untag", tag, tag)
    connection = tmp_path / "connection.json"
    free_ports = []
    for _ in range(5):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free_ports.append(probe.getsockname()[1])
    connection.write_text(
        json.dumps(
            {
                "shell_port": free_ports[0],
                "iopub_port": free_ports[1],
                "stdin_port": free_ports[2],
                "control_port": free_ports[3],
                "hb_port": free_ports[4],
                "ip": "127.0.0.1",
                "key": "k",
                "transport": "tcp",
            }
        )
    )
    result = podkernel("start", name, str(connection))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("podkernel: error: podman pull")


def test_kernel_output_reaches_the_launchers_stderr(install, tmp_path):
    name = install(DEBIAN_IMAGE)
    log_path = tmp_path / "launcher.log"
    with open(log_path, "w") as log:
        manager, client = start_new_kernel(kernel_name=name, startup_timeout=120, stderr=log)
        try:
            execute(client, "import os; os.write(2, b'low-level-kernel-stderr-marker\\n')")
        finally:
            client.stop_channels()
            manager.shutdown_kernel()
    assert "low-level-kernel-stderr-marker" in log_path.read_text()
