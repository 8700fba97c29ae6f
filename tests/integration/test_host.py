"""The kernel in its host: the notebook's folder, file ownership, and where build output goes."""

import json
import os
import socket
import subprocess

import pytest
from jupyter_client.manager import start_new_kernel

from helpers import podkernel
from kernel_helpers import DEBIAN_IMAGE, UID1000_IMAGE, execute, podman
from podkernel.launcher import relay

ROOTLESS = os.geteuid() != 0


def write_from_kernel(name: str, folder, **start_options) -> tuple[str, os.stat_result]:
    """Start the kernel in ``folder``; have it report its cwd and write a file there."""
    manager, client = start_new_kernel(kernel_name=name, startup_timeout=120, cwd=str(folder), **start_options)
    try:
        reply, printed = execute(client, "import os\nprint(os.getcwd())\nopen('from-kernel.txt', 'w').write('hi')")
        assert reply["status"] == "ok", reply
    finally:
        client.stop_channels()
        manager.shutdown_kernel()
    written = folder / "from-kernel.txt"
    assert written.read_text() == "hi"
    return printed.strip(), written.stat()


def test_mount_cwd_works_in_the_notebook_folder(install, tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    cwd, stat = write_from_kernel(install("--mount-cwd", DEBIAN_IMAGE), folder)
    assert cwd == str(folder)
    assert stat.st_uid == os.getuid()


@pytest.mark.skipif(not ROOTLESS, reason="--keep-id is about rootless Podman")
def test_keep_id_makes_files_from_a_uid_1000_image_yours(install, tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    cwd, stat = write_from_kernel(install("--mount-cwd", "--keep-id", UID1000_IMAGE), folder)
    assert cwd == str(folder)
    assert (stat.st_uid, stat.st_gid) == (os.getuid(), os.getgid())


def test_build_output_goes_to_stderr_never_stdout(install, tmp_path):
    build_dir = tmp_path / "kernel"
    build_dir.mkdir()
    (build_dir / "Containerfile").write_text(f"FROM {DEBIAN_IMAGE}\nRUN echo built > /built\n")
    name = install("--build", str(build_dir))
    out, err = tmp_path / "launcher.out", tmp_path / "launcher.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        manager, client = start_new_kernel(kernel_name=name, startup_timeout=120, stdout=stdout, stderr=stderr)
        client.stop_channels()
        manager.shutdown_kernel()
    assert "STEP 2/2" in err.read_text()
    assert out.read_text() == ""


def test_port_taken_by_another_program_is_reported(install, tmp_path):
    name = install(DEBIAN_IMAGE)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        connection = tmp_path / "kernel.json"
        ports = {
            key: port if key == "shell_port" else 0
            for key in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
        }
        connection.write_text(json.dumps(dict(ports, ip="127.0.0.1", key="k", transport="tcp")))
        result = podkernel("start", name, str(connection))
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert f"port(s) {port} of this kernel are taken by another program" in last_line


def test_doctor_on_this_machine():
    result = podkernel("doctor", "--image", DEBIAN_IMAGE, check=True)
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") >= 4}
    for check in ("Podman", "Mode", "OCI runtime", "Container", "Ports", "Watchdog", "SELinux", "Kernels"):
        assert "ok" in rows[check], result.stdout
    assert "rootless" in rows["Mode"] if ROOTLESS else "rootful" in rows["Mode"]
    driver = podman("info", "--format", "{{.Store.GraphDriverName}}").strip()
    assert driver in rows["Storage"]
    assert rows["Storage"].split("│")[2].strip() == ("warning" if driver == "vfs" else "ok"), rows["Storage"]


def test_doctor_warns_about_vfs_storage(tmp_path):
    """The suite runs on overlay; vfs (rootless Podman's default before 4.5) is set up here alone."""
    conf = tmp_path / "config" / "containers" / "storage.conf"  # where rootless Podman reads it
    conf.parent.mkdir(parents=True)
    conf.write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{tmp_path}/run"\ngraphroot = "{tmp_path}/graph"\n')
    # Root's Podman reads CONTAINERS_STORAGE_CONF; rootless Podman given it keeps the driver its
    # database recorded ("overwritten by graph driver from database"), but reads XDG_CONFIG_HOME's.
    env = dict(
        os.environ,
        **({"XDG_CONFIG_HOME": str(tmp_path / "config")} if ROOTLESS else {"CONTAINERS_STORAGE_CONF": str(conf)}),
    )
    result = podkernel("doctor", "--image", DEBIAN_IMAGE, env=env)
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") >= 4}
    assert rows["Storage"].split("│")[2].strip() == "warning", result.stdout
    assert "vfs" in rows["Storage"] and 'driver = "overlay"' in result.stdout


def test_doctor_shows_podmans_message_when_a_container_cannot_run():
    result = podkernel("doctor", "--image", "localhost/podkernel-no-such-image:never")
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "podkernel-no-such-image" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("Error: 1 check(s) failed: Container")


@pytest.mark.skipif(ROOTLESS, reason="adding a port translation takes root")
def test_a_port_translated_elsewhere_is_passed_over_as_a_spare():
    """A killed ``podman run`` leaves its port translations behind; a launcher, even a rootless
    one that cannot read them, must not publish a kernel on such a port (its connections go
    elsewhere). Here a real DNAT rule sends the port to another listener."""
    elsewhere = socket.create_server(("127.0.0.1", 0))
    holder = relay.hold_spare_port()
    port = holder.getsockname()[1]
    rule = ["OUTPUT", "-d", "127.0.0.1", "-p", "tcp", "--dport", str(port), "-j", "DNAT"]
    rule += ["--to-destination", f"127.0.0.1:{elsewhere.getsockname()[1]}"]
    subprocess.run(["iptables", "-t", "nat", "-I", *rule], check=True)
    try:
        assert not relay.reaches_itself(holder)
    finally:
        subprocess.run(["iptables", "-t", "nat", "-D", *rule], check=True)
        holder.close()
        elsewhere.close()
